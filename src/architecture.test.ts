// The folder rules of DESIGN.md, checked on the source itself: no import cycles anywhere (type
// imports included: a cycle of types is still two modules that cannot be understood apart), and
// the raft core imports nothing outside src/raft but the two leaf modules every layer shares.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = dirname(fileURLToPath(import.meta.url));
const RELATIVE_IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?\sfrom\s+'(\.[^']+)'/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

/** Each module (path relative to src) and the modules it imports by relative path. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    const imports = [...text.matchAll(RELATIVE_IMPORT)].map((match) =>
      relative(SRC, join(dirname(file), match[1]!)).replace(/\.js$/, '.ts'),
    );
    graph.set(relative(SRC, file), imports);
  }
  return graph;
}

/** Tarjan's strongly connected components with more than one module (or a module importing itself). */
function cycles(graph: Map<string, string[]>): string[][] {
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (module: string): void => {
    order.set(module, order.size);
    low.set(module, order.get(module)!);
    stack.push(module);
    onStack.add(module);
    for (const next of graph.get(module) ?? []) {
      if (!graph.has(next)) continue;
      if (!order.has(next)) {
        visit(next);
        low.set(module, Math.min(low.get(module)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(module, Math.min(low.get(module)!, order.get(next)!));
      }
    }
    if (low.get(module) !== order.get(module)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== module);
    if (component.length > 1 || graph.get(module)!.includes(module)) found.push(component.sort());
  };
  for (const module of graph.keys()) if (!order.has(module)) visit(module);
  return found;
}

test('no module imports itself through a chain of imports', () => {
  assert.deepEqual(cycles(importGraph()), []);
});

test('the cycle finder finds a planted cycle', () => {
  const graph = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts', 'd.ts']],
    ['d.ts', []],
  ]);
  assert.deepEqual(cycles(graph), [['a.ts', 'b.ts', 'c.ts']]);
});

/** Where etcd's error texts may appear: the API (which sends them) and the client (which reads them). */
const ETCD_TEXT_ALLOWED = ['api/', 'client/', 'e2e/'];

test("etcd's error texts live only in the API: other layers name the error (details.etcdError)", () => {
  const writers = sourceFiles(SRC)
    .map((file) => relative(SRC, file))
    .filter((module) => !ETCD_TEXT_ALLOWED.some((folder) => module.startsWith(folder)))
    .filter((module) => /['`"]etcdserver: /.test(readFileSync(join(SRC, module), 'utf8')));
  assert.deepEqual(writers, []);
});

/** Typed errors, named limits and the seeded PRNG: imported everywhere, so they import nothing of ours but each other. */
const SHARED_LEAVES = ['errors.ts', 'limits.ts', 'random.ts'];

test('the raft core imports nothing outside src/raft but the shared leaves, which import only each other', () => {
  const graph = importGraph();
  const outside = [...graph]
    .filter(([module]) => module.startsWith('raft/'))
    .flatMap(([module, imports]) => imports.filter((path) => !path.startsWith('raft/') && !SHARED_LEAVES.includes(path)).map((path) => `${module} -> ${path}`));
  assert.deepEqual(outside, []);
  for (const leaf of SHARED_LEAVES) assert.deepEqual(graph.get(leaf)!.filter((path) => !SHARED_LEAVES.includes(path)), [], `${leaf} imports`);
});

/** Folders a replica may not import: it is given its world (DESIGN.md), and the server builds it. */
const REPLICA_MAY_NOT_IMPORT = ['server/', 'api/', 'cli/', 'client/', 'sim/', 'transport/'];

test('src/replica imports neither the server that builds it nor the APIs, the simulator or a concrete transport', () => {
  const outside = [...importGraph()]
    .filter(([module]) => module.startsWith('replica/'))
    .flatMap(([module, imports]) => imports.filter((path) => REPLICA_MAY_NOT_IMPORT.some((folder) => path.startsWith(folder))).map((path) => `${module} -> ${path}`));
  assert.deepEqual(outside, []);
});
