// One large delete's apply, in-process: what holds a member's event loop when etcdctl check perf
// ends by deleting every key it wrote (31,000-92,000) in one DeleteRange. Each build gets an
// MvccStore over an lmdb engine's group partition (as in a member: src/engine/scoped.ts), with a
// watch hub and no watcher; each round puts --keys check-perf-like keys (the prefix, then 256
// bytes, random at the front; 1 KiB values; 16 puts per engine batch, as a Ready carries them),
// collects the garbage, then applies one DeleteRange of the prefix in one engine batch (as the
// replica applies a Ready), which at this size also commits the engine (engineUncommittedOpsMax),
// and notifies the hub. Then it compacts, so every round starts from the same index.
//
//   npm run build && node --expose-gc --import tsx scripts/bench-bigapply.ts
//     [--builds dist[,<other>/dist]] [--keys 50000] [--rounds 6] [--lease 0|1]
//
// Per round and build: the CPU time of the apply (process.cpuUsage), the time the loop was held
// (the apply and the engine batch's end, one synchronous stretch), the part of it in the engine
// batch's end (the lmdb commit), and the garbage collection time inside it (gc performance
// entries). --lease 1: the keys are put with one lease and the lease is revoked instead (etcd's
// LeaseRevoke deletes every key attached). --builds: the rounds alternate between the builds
// (ABBA), so drift in the machine's load falls on both alike. Prints one JSON object.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Engine } from '../src/engine/types.js';
import type { MvccStore } from '../src/mvcc/store.js';
import type { WatchHub } from '../src/mvcc/watch.js';
import { median, ScriptFlags } from './go-bench.js';

const PREFIX = Buffer.from('/etcdctl-check-perf/');
const PREFIX_END = Buffer.from('/etcdctl-check-perf0');
/** etcdctl check perf's key and value sizes (its keys are the prefix and 256 bytes). */
const KEY_BYTES = 256;
const VALUE_BYTES = 1024;
const PUTS_PER_BATCH = 16;
const LEASE_ID = 7;

interface Build {
  dist: string;
  engine: Engine;
  store: MvccStore;
  hub: WatchHub;
  dir: string;
  index: number;
}

async function openBuild(dist: string): Promise<Build> {
  const url = (path: string): string => pathToFileURL(join(resolve(dist), path)).href;
  const engines = (await import(url('engine/index.js'))) as typeof import('../src/engine/index.js');
  const mvcc = (await import(url('mvcc/index.js'))) as typeof import('../src/mvcc/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'lichen-bench-bigapply-'));
  const engine = new engines.ScopedEngine(engines.LmdbEngine.open({ dir }), 1);
  const store = mvcc.MvccStore.open(engine);
  return { dist, engine, store, hub: new mvcc.WatchHub(store), dir, index: 0 };
}

let seed = 12345;
const random32 = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);

function fill(build: Build, keys: number, lease: boolean): void {
  const value = new Uint8Array(VALUE_BYTES);
  const { engine, store } = build;
  if (lease) engine.batch(() => store.apply(++build.index, { type: 'leaseGrant', request: { ID: LEASE_ID, TTL: 3600 } }));
  for (let i = 0; i < keys; i += PUTS_PER_BATCH) {
    engine.batch(() => {
      for (let j = i; j < Math.min(keys, i + PUTS_PER_BATCH); j++) {
        const key = Buffer.alloc(PREFIX.length + KEY_BYTES);
        PREFIX.copy(key);
        key.writeUInt32BE(random32(), PREFIX.length);
        key.writeUInt32BE(j, PREFIX.length + 4);
        store.apply(++build.index, { type: 'put', request: { key, value, lease: lease ? LEASE_ID : 0 } });
      }
    });
  }
  engine.commit();
}

/** Garbage collections as [start, duration] in ms (the observer hears of them after the turn ends). */
const collections: [number, number][] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) collections.push([entry.startTime, entry.duration]);
}).observe({ entryTypes: ['gc'] });

interface Round {
  cpuMs: number;
  heldMs: number;
  commitMs: number;
  gcMs: number;
}

async function deleteAll(build: Build, keys: number, lease: boolean): Promise<Round> {
  const { engine, store, hub } = build;
  fill(build, keys, lease);
  (globalThis as { gc?: () => void }).gc?.();
  const cpu = process.cpuUsage();
  const started = performance.now();
  let applied = started;
  let result: ReturnType<MvccStore['apply']> | undefined;
  engine.batch(() => {
    result = store.apply(++build.index, lease ? { type: 'leaseRevoke', id: LEASE_ID } : { type: 'deleteRange', request: { key: PREFIX, rangeEnd: PREFIX_END } });
    applied = performance.now();
  });
  if (result !== undefined && 'events' in result) hub.notify(result.events, result.revision);
  const ended = performance.now();
  const used = process.cpuUsage(cpu);
  await new Promise((resolve) => setTimeout(resolve, 10));
  const gcInside = collections.filter(([at]) => at >= started && at < ended).reduce((sum, [, ms]) => sum + ms, 0);
  collections.length = 0;
  if (result === undefined || !('events' in result) || result.events.length !== keys) throw new Error(`the delete did not delete ${keys} keys`);
  engine.batch(() => store.apply(++build.index, { type: 'compact', request: { revision: store.currentRevision } }));
  engine.commit();
  const round = (ms: number): number => Number(ms.toFixed(1));
  return { cpuMs: round((used.user + used.system) / 1000), heldMs: round(ended - started), commitMs: round(ended - applied), gcMs: round(gcInside) };
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-bigapply.ts');
  const dists = (args.get('builds') ?? 'dist').split(',');
  const keys = args.number('keys', 50_000);
  const rounds = args.number('rounds', 6);
  const lease = args.number('lease', 0) === 1;
  if ((globalThis as { gc?: () => void }).gc === undefined) throw new Error('run with node --expose-gc');
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const builds: Build[] = [];
  for (const dist of dists) builds.push(await openBuild(dist));
  const results: Round[][] = builds.map(() => []);
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [...builds.keys()] : [...builds.keys()].reverse();
      for (const b of order) results[b]!.push(await deleteAll(builds[b]!, keys, lease));
    }
  } finally {
    for (const build of builds) rmSync(build.dir, { recursive: true, force: true });
  }
  const summary = (rows: Round[]) => ({
    cpuMs: median(rows.map((r) => r.cpuMs)),
    heldMs: median(rows.map((r) => r.heldMs)),
    commitMs: median(rows.map((r) => r.commitMs)),
    gcMs: median(rows.map((r) => r.gcMs)),
    cpuMicrosPerKey: Number(((median(rows.map((r) => r.cpuMs)) * 1000) / keys).toFixed(2)),
  });
  const ratio = (field: keyof Round): number => Number(median(results[1]!.map((row, r) => row[field] / results[0]![r]![field])).toFixed(3));
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))),
      node: process.version,
      command: `node --expose-gc --import tsx scripts/bench-bigapply.ts ${process.argv.slice(2).join(' ')}`,
      setup: { keys, rounds, lease, keyBytes: PREFIX.length + KEY_BYTES, valueBytes: VALUE_BYTES },
      builds: builds.map((build, b) => ({ build: resolve(build.dist), ...summary(results[b]!), rounds: results[b] })),
      // Each round's ratio of the second build to the first, median.
      secondToFirst: builds.length === 2 ? { cpuMs: ratio('cpuMs'), heldMs: ratio('heldMs'), gcMs: ratio('gcMs') } : undefined,
    }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
