// The state machine's own cost per put, in-process (no raft, no network): an MvccStore on an lmdb
// engine in a temporary directory, puts applied 16 to an engine batch (as a member applies one
// raft Ready), over keys already written, with the CPU time per put (process.cpuUsage, so time
// the process waited for a core does not count). Then the key index's heap per key for --index-keys
// keys written once, and written twice. Prints one JSON object.
//
//   npm run build && node --expose-gc --import tsx scripts/bench-mvcc.ts [--builds dist[,<other>/dist]]
//     [--keys 100000] [--puts 100000] [--rounds 6] [--index-keys 1000000]
//
// --builds: the dist/ folders of the builds to measure, e.g. another checkout's to compare two
// builds: each gets its own store, and the rounds alternate between them (ABBA), so drift in the
// machine's load falls on both alike. The store runs as in a member with no watcher asking for
// prevKv (the watch hub tells the store so).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Engine } from '../src/engine/types.js';
import type { MvccCommand } from '../src/mvcc/command.js';
import type { MvccStore } from '../src/mvcc/store.js';
import type { KeyIndex } from '../src/mvcc/keyindex.js';
import { median, ScriptFlags } from './go-bench.js';

/** Puts per engine batch: about what one raft Ready carries under 64 clients (13–15 puts per fsync measured). */
const PUTS_PER_BATCH = 16;
const VALUE_BYTES = 256;

const keyOf = (n: number): string => `k${String(n).padStart(12, '0')}`;

interface Build {
  openStore(engine: Engine): MvccStore;
  /** Synchronous or not, depending on the build (lsm's engines open asynchronously). */
  openEngine(dir: string): Engine | Promise<Engine>;
  newIndex(): KeyIndex;
  /** Whether KeyIndex.append takes what the version wrote (this change) or only a tombstone flag. */
  indexKeepsVersions: boolean;
}

async function loadBuild(dist: string): Promise<Build> {
  const url = (path: string): string => pathToFileURL(join(resolve(dist), path)).href;
  const store = (await import(url('mvcc/store.js'))) as typeof import('../src/mvcc/store.js');
  const engines = (await import(url('engine/index.js'))) as typeof import('../src/engine/index.js');
  const keyindex = (await import(url('mvcc/keyindex.js'))) as typeof import('../src/mvcc/keyindex.js');
  return {
    openStore: (engine) => store.MvccStore.open(engine),
    openEngine: (dir) => (engines.openEngine as (kind: string, dir: string) => Engine | Promise<Engine>)('lmdb', dir),
    newIndex: () => new keyindex.KeyIndex(),
    indexKeepsVersions: 'latest' in keyindex.KeyIndex.prototype,
  };
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/** A store with `keys` keys written once; round() puts `puts` random ones and returns the CPU µs per put. */
async function storeUnderPuts(build: Build, keys: number, puts: number): Promise<{ round(): number; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-bench-mvcc-'));
  const engine = await build.openEngine(join(dir, 'data'));
  const store = build.openStore(engine);
  // As the watch hub of a member does when no watcher asks for prevKv (builds that have it).
  (store as { countPrevKvWatchers?: (delta: number) => void }).countPrevKvWatchers?.(0);
  const value = new Uint8Array(VALUE_BYTES).fill(118);
  let index = 0;
  const putBatch = (keyAt: (i: number) => number, from: number, count: number): void => {
    engine.batch(() => {
      for (let i = from; i < from + count; i++) {
        const command: MvccCommand = { type: 'put', request: { key: Buffer.from(keyOf(keyAt(i)), 'latin1'), value } };
        store.apply(++index, command);
      }
    });
  };
  for (let from = 0; from < keys; from += PUTS_PER_BATCH) putBatch((i) => i, from, Math.min(PUTS_PER_BATCH, keys - from));
  let seed = 1;
  const randomKey = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % keys;
  return {
    round: () => {
      const started = cpuMicros();
      for (let from = 0; from < puts; from += PUTS_PER_BATCH) putBatch(randomKey, from, PUTS_PER_BATCH);
      return Number(((cpuMicros() - started) / puts).toFixed(2));
    },
    close: () => {
      (engine as { close?: () => void }).close?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Heap bytes per key of a key index holding `keys` keys written `writes` times each. */
function indexBytesPerKey(build: Build, keys: number, writes: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
  const before = process.memoryUsage().heapUsed;
  const index = build.newIndex();
  const append = index.append.bind(index) as (key: string, main: number, sub: number, version: unknown) => void;
  let revision = 1;
  for (let w = 1; w <= writes; w++) {
    for (let k = 0; k < keys; k++) {
      revision++;
      append(keyOf(k), revision, 0, build.indexKeepsVersions ? { tombstone: false, createRevision: revision - (w - 1) * keys, version: w, lease: 0 } : false);
    }
  }
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  if (index.keyCount !== keys) throw new Error('index lost keys');
  return Math.round(bytes / keys);
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-mvcc.ts');
  const dists = (args.get('builds') ?? 'dist').split(',');
  const keys = args.number('keys', 100_000);
  const puts = args.number('puts', 100_000);
  const rounds = args.number('rounds', 6);
  const indexKeys = args.number('index-keys', 1_000_000);
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const builds = await Promise.all(dists.map(loadBuild));
  const stores = await Promise.all(builds.map((build) => storeUnderPuts(build, keys, puts)));
  const cpu: number[][] = builds.map(() => []);
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? stores.keys() : [...stores.keys()].reverse();
      for (const b of order) cpu[b]!.push(stores[b]!.round());
    }
  } finally {
    for (const store of stores) store.close();
  }
  const results = builds.map((build, b) => ({
    build: resolve(dists[b]!),
    cpuMicrosPerPut: median(cpu[b]!),
    rounds: cpu[b]!,
    indexHeapBytesPerKeyWrittenOnce: indexBytesPerKey(build, indexKeys, 1),
    indexHeapBytesPerKeyWrittenTwice: indexBytesPerKey(build, indexKeys, 2),
  }));
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))),
      node: process.version,
      command: `node --expose-gc --import tsx scripts/bench-mvcc.ts ${process.argv.slice(2).join(' ')}`,
      setup: { keys, putsPerRound: puts, putsPerBatch: PUTS_PER_BATCH, valueBytes: VALUE_BYTES, indexKeys, keyBytes: keyOf(0).length },
      builds: results,
      // Each round's ratio of the second build to the first, median (builds alternate round by round).
      secondToFirstCpuRatio: builds.length === 2 ? Number(median(cpu[1]!.map((c, r) => c / cpu[0]![r]!)).toFixed(3)) : undefined,
    }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
