// The state machine's own cost per put, in-process (no raft, no network): an MvccStore on an lmdb
// engine in a temporary directory, puts applied 16 to an engine batch (as a member applies one
// raft Ready, through MvccStore.batchApplies where the build has it), over keys already written, with the CPU time per put (process.cpuUsage, so time
// the process waited for a core does not count). Then the key index's heap per key for --index-keys
// keys written once, and written twice. Prints one JSON object.
//
//   npm run build && node --expose-gc --import tsx scripts/bench-mvcc.ts [--builds dist[,<other>/dist]]
//     [--keys 100000] [--puts 100000] [--rounds 6] [--index-keys 1000000] [--auth off[,user]]
//     [--checks 200000]
//
// --auth user: puts are applied as a member applies them with etcd authentication on, as a user
// with 1,000 roles of 10 key ranges each (10,000 disjoint ranges after merging, every benchmarked
// key in one of them), so every put's apply-time permission check searches them, between the
// store's own work as in a member (see bench-auth.ts for the same user end to end). With it, the
// permission check is also timed alone: in a loop over --checks random keys (CPU time), with its
// data in cache, and one at a time after reading 32 MiB of other memory (the median of 500 clock
// readings around a check, less that of an empty pair), as when a member does other work between
// requests.
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
import type { Command, MvccCommand } from '../src/mvcc/command.js';
import type { MvccStore } from '../src/mvcc/store.js';
import type { KeyIndex } from '../src/mvcc/keyindex.js';
import type { AuthState, AuthStore, ReplicatedState } from '../src/auth/index.js';
import { median, ScriptFlags } from './go-bench.js';

/** Puts per engine batch: about what one raft Ready carries under 64 clients (13–15 puts per fsync measured). */
const PUTS_PER_BATCH = 16;
const VALUE_BYTES = 256;

const keyOf = (n: number): string => `k${String(n).padStart(12, '0')}`;
/** The benchmarked user's roles, and key ranges per role (as scripts/bench-auth.ts). */
const AUTH_ROLES = 1000;
const AUTH_RANGES_PER_ROLE = 10;
const AUTH_USER = 'bench';
/**
 * Memory read between two checks of the cold timing: more than this machine's caches hold, so a
 * check finds its data in none of them (in a member, three members, the load generator and other
 * work share two cores between its checks). Timed that way, the checks over 10,000 ranges held
 * as strings took 5.5–11.5 µs, as in the members' profiles.
 */
const EVICT_BYTES = 32 << 20;
/** Cold checks per round: each one first reads EVICT_BYTES. */
const COLD_CHECKS = 500;
const CACHE_LINE_BYTES = 64;

type AuthMode = 'off' | 'user';

interface Build {
  openStore(engine: Engine): MvccStore;
  /** Synchronous or not, depending on the build (lsm's engines open asynchronously). */
  openEngine(dir: string): Engine | Promise<Engine>;
  newIndex(): KeyIndex;
  /** Whether KeyIndex.append takes what the version wrote (this change) or only a tombstone flag. */
  indexKeepsVersions: boolean;
  writeAuth(engine: Engine, state: AuthState): void;
  openAuth(engine: Engine): AuthStore;
  applyCommand: (state: ReplicatedState, index: number, command: Command) => unknown;
}

async function loadBuild(dist: string): Promise<Build> {
  const url = (path: string): string => pathToFileURL(join(resolve(dist), path)).href;
  const store = (await import(url('mvcc/store.js'))) as typeof import('../src/mvcc/store.js');
  const engines = (await import(url('engine/index.js'))) as typeof import('../src/engine/index.js');
  const keyindex = (await import(url('mvcc/keyindex.js'))) as typeof import('../src/mvcc/keyindex.js');
  const auth = (await import(url('auth/index.js'))) as typeof import('../src/auth/index.js');
  return {
    openStore: (engine) => store.MvccStore.open(engine),
    openEngine: (dir) => (engines.openEngine as (kind: string, dir: string) => Engine | Promise<Engine>)('lmdb', dir),
    newIndex: () => new keyindex.KeyIndex(),
    indexKeepsVersions: 'latest' in keyindex.KeyIndex.prototype,
    writeAuth: (engine, state) => auth.AuthStore.write(engine, state),
    openAuth: (engine) => auth.AuthStore.open(engine),
    applyCommand: auth.applyCommand,
  };
}

function cpuMicros(): number {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
}

/**
 * Auth enabled, with root and the benchmarked user, whose role r holds ranges j * 1000 + r of
 * 10,000 blocks of `keys` / 10,000 keys each: block b is [its first key, its last key "\xff"),
 * which stays apart from the next block's first key, so the ranges do not merge.
 */
function authState(keys: number): AuthState {
  const blocks = AUTH_ROLES * AUTH_RANGES_PER_ROLE;
  if (keys % blocks !== 0) throw new Error(`--keys must be a multiple of ${blocks} with --auth user`);
  const perBlock = keys / blocks;
  const latin1 = (key: string): Uint8Array => Buffer.from(key, 'latin1');
  const roles = Array.from({ length: AUTH_ROLES }, (_, r) => ({
    name: `r${String(r).padStart(4, '0')}`,
    permissions: Array.from({ length: AUTH_RANGES_PER_ROLE }, (_, j) => {
      const block = j * AUTH_ROLES + r;
      return { permType: 2 as const, key: latin1(keyOf(block * perBlock)), rangeEnd: latin1(`${keyOf((block + 1) * perBlock - 1)}\xff`) };
    }),
  }));
  return {
    enabled: true,
    revision: 2,
    users: [
      { name: AUTH_USER, passwordHash: '', noPassword: true, roles: roles.map((r) => r.name) },
      { name: 'root', passwordHash: '', noPassword: true, roles: ['root'] },
    ],
    roles,
  };
}

interface StoreUnderPuts {
  round(): number;
  /** The CPU µs of one permission check: [in a loop, between reads of other memory]. */
  checkMicros(checks: number): [number, number];
  close(): void;
}

/** A store with `keys` keys written once; round() puts `puts` random ones and returns the CPU µs per put. */
async function storeUnderPuts(build: Build, mode: AuthMode, keys: number, puts: number): Promise<StoreUnderPuts> {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-bench-mvcc-'));
  const engine = await build.openEngine(join(dir, 'data'));
  if (mode === 'user') build.writeAuth(engine, authState(keys));
  const store = build.openStore(engine);
  const auth = build.openAuth(engine);
  const replicated: ReplicatedState = { mvcc: store, auth };
  const authRevision = auth.revision;
  // As the watch hub of a member does when no watcher asks for prevKv (builds that have it).
  (store as { countPrevKvWatchers?: (delta: number) => void }).countPrevKvWatchers?.(0);
  const value = new Uint8Array(VALUE_BYTES).fill(118);
  let index = 0;
  // Builds with MvccStore.batchApplies apply a Ready through it, as the replica does (one write of the meta keys per batch).
  const batched = (store as { batchApplies?: (applies: () => void) => void }).batchApplies?.bind(store) ?? ((applies: () => void) => engine.batch(applies));
  const putBatch = (keyAt: (i: number) => number, from: number, count: number): void => {
    batched(() => {
      for (let i = from; i < from + count; i++) {
        const command: MvccCommand = { type: 'put', request: { key: Buffer.from(keyOf(keyAt(i)), 'latin1'), value } };
        if (mode === 'user') build.applyCommand(replicated, ++index, { type: 'authorized', user: AUTH_USER, authRevision, command });
        else store.apply(++index, command);
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
    checkMicros: (checks) => {
      const info = { user: AUTH_USER, revision: authRevision };
      const pool = Array.from({ length: 4096 }, () => Buffer.from(keyOf(randomKey()), 'latin1'));
      const evict = new Uint8Array(EVICT_BYTES);
      let sink = 0;
      const started = cpuMicros();
      for (let i = 0; i < checks; i++) auth.checkWrite(info, pool[i & 4095]!);
      const warm = (cpuMicros() - started) / checks;
      /** The median of COLD_CHECKS clock readings around a check (or nothing), each after reading EVICT_BYTES. */
      const coldMillis = (check: boolean): number => {
        const samples: number[] = [];
        for (let i = 0; i < COLD_CHECKS; i++) {
          for (let at = i & 63; at < EVICT_BYTES; at += CACHE_LINE_BYTES) sink += evict[at]!;
          const before = performance.now();
          if (check) auth.checkWrite(info, pool[i & 4095]!);
          samples.push(performance.now() - before);
        }
        return median(samples);
      };
      const cold = (coldMillis(true) - coldMillis(false)) * 1000;
      if (sink < 0) throw new Error('unreachable');
      return [Number(warm.toFixed(3)), Number(cold.toFixed(3))];
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
  const modes = args.list<AuthMode>('auth', 'off', ['off', 'user']);
  const checks = args.number('checks', 200_000);
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const builds = await Promise.all(dists.map(loadBuild));
  // One store per build and auth mode, in that order; rounds alternate over all of them (ABBA).
  const runs = builds.flatMap((build, b) => modes.map((mode) => ({ b, mode, build })));
  const stores = await Promise.all(runs.map(({ build, mode }) => storeUnderPuts(build, mode, keys, puts)));
  const cpu: number[][] = runs.map(() => []);
  const checkCpu: [number, number][][] = runs.map(() => []);
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [...stores.keys()] : [...stores.keys()].reverse();
      for (const s of order) cpu[s]!.push(stores[s]!.round());
      for (const s of order) if (runs[s]!.mode === 'user') checkCpu[s]!.push(stores[s]!.checkMicros(checks));
    }
  } finally {
    for (const store of stores) store.close();
  }
  const results = runs.map(({ b, mode, build }, s) => ({
    build: resolve(dists[b]!),
    auth: mode,
    cpuMicrosPerPut: median(cpu[s]!),
    rounds: cpu[s]!,
    ...(mode === 'user'
      ? {
          checkMicrosInALoop: median(checkCpu[s]!.map(([warm]) => warm)),
          checkMicrosBetweenOtherReads: median(checkCpu[s]!.map(([, cold]) => cold)),
          checkRounds: checkCpu[s]!,
        }
      : {}),
    ...(modes.indexOf(mode) === 0
      ? { indexHeapBytesPerKeyWrittenOnce: indexBytesPerKey(build, indexKeys, 1), indexHeapBytesPerKeyWrittenTwice: indexBytesPerKey(build, indexKeys, 2) }
      : {}),
  }));
  /** Each round's ratio of store `s` to store `t`, median. */
  const pairedRatio = (s: number, t: number): number => Number(median(cpu[s]!.map((c, r) => c / cpu[t]![r]!)).toFixed(3));
  const at = (b: number, mode: AuthMode): number => runs.findIndex((run) => run.b === b && run.mode === mode);
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))),
      node: process.version,
      command: `node --expose-gc --import tsx scripts/bench-mvcc.ts ${process.argv.slice(2).join(' ')}`,
      setup: {
        keys,
        putsPerRound: puts,
        putsPerBatch: PUTS_PER_BATCH,
        valueBytes: VALUE_BYTES,
        indexKeys,
        keyBytes: keyOf(0).length,
        ...(modes.includes('user') ? { authRoles: AUTH_ROLES, authRangesPerRole: AUTH_RANGES_PER_ROLE, checks } : {}),
      },
      builds: results,
      // Each round's ratio of the second build to the first, median (builds alternate round by round), per auth mode.
      secondToFirstCpuRatio: builds.length === 2 ? Object.fromEntries(modes.map((m) => [m, pairedRatio(at(1, m), at(0, m))])) : undefined,
      // Each round's ratio of a put as the user to one with auth off, per build.
      userToOffCpuRatio: modes.length === 2 ? builds.map((_, b) => pairedRatio(at(b, 'user'), at(b, 'off'))) : undefined,
    }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
