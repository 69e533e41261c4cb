// The MVCC key index alone (src/mvcc/keyindex.ts), in-process, shaped like the load-1m scenario:
// --keys distinct keys "k0000000".. (as the etcd Go client's load writes them; strings made from
// bytes as the store makes them), each put once at increasing revisions with sub 0. Per build:
//
// - heap bytes per key after garbage collection: written once by append (as a member applies the
//   load), once by appendUnsorted + finishLoad (as a member opens), and written twice;
// - CPU time per operation (process.cpuUsage, so time spent waiting for a core does not count):
//   append of a new key (the load), a put of an existing key (latest + append, as MvccStore.put),
//   --ops of them at random keys (mostly each key's second version, which turns its number form
//   into an array), then the same keys again, latest of a random key (a get),
//   and a scan of every key reading its visible revision at the current revision (a range over
//   the whole prefix, as MvccStore.rangeInto without the record reads).
//
//   npm run build && node --expose-gc --import tsx scripts/bench-keyindex.ts [--builds dist[,<other>/dist]]
//     [--keys 1000000] [--ops 200000] [--rounds 4]
//
// --builds: the dist/ folders to compare, e.g. main's checkout's and this one's; rounds alternate
// their order (ABBA) so drift in the machine's load falls on both alike. Heap figures do not
// depend on the load; times do (report medians, and compare builds within one run). Prints one
// JSON object.
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as KeyIndexModule from '../src/mvcc/keyindex.js';
import { median, ScriptFlags } from './go-bench.js';

type Module = typeof KeyIndexModule;
type Index = KeyIndexModule.KeyIndex;

interface Figures {
  heapBytesPerKeyAppended: number;
  heapBytesPerKeyLoaded: number;
  heapBytesPerKeyWrittenTwice: number;
  appendNewKeyNs: number;
  putExistingKeyNs: number;
  putExistingKeyAgainNs: number;
  latestNs: number;
  scanNsPerKey: number;
  loadNsPerKey: number;
}

const KEY_DIGITS = 7;

/** The key as MvccStore holds it: a string made from the request's bytes (keyString in src/mvcc/bytes.ts). */
function keyOf(n: number): string {
  const bytes = Buffer.from(`k${String(n).padStart(KEY_DIGITS, '0')}`, 'latin1');
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

const once = (main: number): KeyIndexModule.KeyVersion => ({ tombstone: false, createRevision: main, version: 1, lease: 0 });

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with node --expose-gc');
  collect();
  collect();
}

function heapUsed(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

/** CPU nanoseconds of `work`, divided by `count`. */
function cpuNsPer(count: number, work: () => void): number {
  const start = process.cpuUsage();
  work();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / count;
}

/** A fixed sequence of pseudo-random key numbers below `keys` (the same for every build). */
function randomKeys(keys: number, count: number): string[] {
  const out: string[] = [];
  let x = 0x2545f491;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(keyOf((x >>> 0) % keys));
  }
  return out;
}

function measure(mod: Module, keys: number, ops: number): Figures {
  const names: string[] = [];
  for (let k = 0; k < keys; k++) names.push(keyOf(k));
  const queries = randomKeys(keys, ops);
  // The key strings are counted in the index's heap: each figure below builds its index from
  // fresh copies made after its first reading, so the strings the index holds are its own, as in
  // a member.
  const copies = (): string[] => names.map((name) => keyOf(Number(name.slice(1))));

  let before = heapUsed();
  let fresh = copies();
  let index: Index | undefined = new mod.KeyIndex();
  const built = index;
  const appendNewKeyNs = cpuNsPer(keys, () => {
    for (let k = 0; k < keys; k++) built.append(fresh[k]!, k + 2, 0, once(k + 2));
  });
  fresh = [];
  const heapBytesPerKeyAppended = (heapUsed() - before) / keys;

  let found = 0;
  const latestNs = cpuNsPer(ops, () => {
    for (const key of queries) if (built.latest(key) !== undefined) found++;
  });
  let visible = 0;
  const current = keys + 1;
  const scanNsPerKey = cpuNsPer(keys, () => {
    built.scan('k', 'l', (_key, revs) => {
      const at = mod.lastAtOrBelow(revs, current);
      if (at < 0) return;
      // The builds before the number form indexed the array as MvccStore.rangeInto did.
      const sub = mod.subAt !== undefined ? mod.subAt(revs, at) : (revs as number[])[at + 1]!;
      if (sub < 0) return;
      visible += mod.mainAt !== undefined ? mod.mainAt(revs, at) : (revs as number[])[at]!;
    });
  });
  let revision = keys + 2;
  const putAll = (): void => {
    for (const key of queries) {
      const latest = built.latest(key)!;
      built.append(key, revision, 0, { tombstone: false, createRevision: latest.createRevision, version: latest.version + 1, lease: 0 });
      revision++;
    }
  };
  const putExistingKeyNs = cpuNsPer(ops, putAll);
  const putExistingKeyAgainNs = cpuNsPer(ops, putAll);
  if (found !== ops || visible === 0) throw new Error('the index lost keys');
  index = undefined;

  before = heapUsed();
  fresh = copies();
  const loaded = new mod.KeyIndex();
  const loadNsPerKey = cpuNsPer(keys, () => {
    // An open reads the records in revision order: keys in the order they were written.
    for (let k = 0; k < keys; k++) loaded.appendUnsorted(fresh[k]!, k + 2, 0, once(k + 2));
    loaded.finishLoad();
  });
  fresh = [];
  const heapBytesPerKeyLoaded = (heapUsed() - before) / keys;
  if (loaded.keyCount !== keys) throw new Error('the load lost keys');

  before = heapUsed();
  fresh = copies();
  let twice: Index | undefined = new mod.KeyIndex();
  for (let w = 0; w < 2; w++) {
    for (let k = 0; k < keys; k++) twice.append(fresh[k]!, w * keys + k + 2, 0, { tombstone: false, createRevision: k + 2, version: w + 1, lease: 0 });
  }
  fresh = [];
  const heapBytesPerKeyWrittenTwice = (heapUsed() - before) / keys;
  if (twice.keyCount !== keys || loaded.keyCount !== keys) throw new Error('the index lost keys');
  twice = undefined;
  return { heapBytesPerKeyAppended, heapBytesPerKeyLoaded, heapBytesPerKeyWrittenTwice, appendNewKeyNs, putExistingKeyNs, putExistingKeyAgainNs, latestNs, scanNsPerKey, loadNsPerKey };
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-keyindex.ts');
  const dists = (args.get('builds') ?? 'dist').split(',');
  const keys = args.number('keys', 1_000_000);
  const ops = args.number('ops', 200_000);
  const rounds = args.number('rounds', 4);
  const modules: Module[] = [];
  for (const dist of dists) modules.push((await import(pathToFileURL(resolve(dist, 'mvcc/keyindex.js')).href)) as Module);
  const results: Figures[][] = dists.map(() => []);
  const loads: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const order = dists.map((_, i) => i);
    if (round % 4 === 1 || round % 4 === 2) order.reverse();
    for (const i of order) {
      results[i]!.push(measure(modules[i]!, keys, ops));
      loads.push(loadavg()[0]!);
    }
  }
  const summary = dists.map((dist, i) => {
    const figures = results[i]!;
    const entry: Record<string, unknown> = { build: dist };
    for (const name of Object.keys(figures[0]!) as (keyof Figures)[]) {
      const values = figures.map((f) => f[name]);
      entry[name] = name.startsWith('heap') ? Math.round(median(values)) : Math.round(median(values) * 10) / 10;
      if (!name.startsWith('heap')) entry[`${name}All`] = values.map((v) => Math.round(v));
    }
    return entry;
  });
  console.log(JSON.stringify({ keys, ops, rounds, loadAverage: { min: Math.min(...loads), max: Math.max(...loads) }, builds: summary }, null, 1));
}

await main();
