// Storage micro-benchmarks: raw flush rate of this disk, WAL group commit (within a group, and across
// the groups of a process: one shared WAL against one WAL per group), and engine operations (each
// engine itself, and one group's partition of it, which is what the state machine runs on).
// Prints ONE JSON object on stdout. Rates are per second; nothing here gates CI.
//
//   npm run bench:storage            (about 20 s)
//   npm run bench:storage -- --quick (about 1-2 s, a smoke run)
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../src/raft/types.js';
import { SharedWal, Wal } from '../src/wal/index.js';
import { MemoryEngine, ScopedEngine, closeEngine, openEngine, type Engine, type EngineKind } from '../src/engine/index.js';
import { seededRandom } from '../src/random.js';

const quick = process.argv.includes('--quick');
/** Time spent measuring each figure. */
const PHASE_MS = quick ? 60 : 1000;
const WAL_PHASE_MS = quick ? 80 : 1500;
const WAL_BATCH_SIZES = [1, 16, 64, 256] as const;
/** Groups of one process, each saving one entry per turn. */
const GROUP_COUNTS = quick ? ([1, 8] as const) : ([1, 8, 64] as const);
const WAL_ENTRY_BYTES = 256;
const ENGINE_KEYS = quick ? 2_000 : 50_000;
const ENGINE_VALUE_BYTES = 100;
const RANGE_LIMIT = 100;
/** Operations between clock reads, so reading the clock does not dominate fast operations. */
const CLOCK_EVERY = 64;

const round = (n: number): number => Math.round(n);

/** Runs `step` repeatedly for about `ms`; returns operations per second (step returns ops done). */
function rateSync(ms: number, step: (i: number) => number): number {
  const started = performance.now();
  let ops = 0;
  let elapsed = 0;
  // Bounded by time; the iteration cap is a second guard against a clock that does not advance.
  for (let i = 0; i < 1e9; i++) {
    ops += step(i);
    if (i % CLOCK_EVERY === 0) {
      elapsed = performance.now() - started;
      if (elapsed >= ms) break;
    }
  }
  elapsed = performance.now() - started;
  return (ops * 1000) / elapsed;
}

/**
 * rateSync for writes: yields to the event loop every CLOCK_EVERY steps, as the server does between
 * Readies, and ends with engine.sync(), timed too. The leveldb engine hands writes to LevelDB in the
 * background; without the yields they would pile up in its overlay and the reads after would
 * measure that instead of LevelDB.
 */
async function rateWrites(ms: number, engine: Engine, step: (i: number) => number): Promise<number> {
  const started = performance.now();
  let ops = 0;
  for (let i = 0; i < 1e9; i++) {
    ops += step(i);
    if (i % CLOCK_EVERY === 0) {
      await new Promise((resolve) => setImmediate(resolve));
      if (performance.now() - started >= ms) break;
    }
  }
  await engine.sync();
  return (ops * 1000) / (performance.now() - started);
}

async function rateAsync(ms: number, step: (i: number) => Promise<number>): Promise<{ perSec: number; calls: number }> {
  const started = performance.now();
  let ops = 0;
  let calls = 0;
  while (performance.now() - started < ms && calls < 1e7) {
    ops += await step(calls);
    calls++;
  }
  return { perSec: (ops * 1000) / (performance.now() - started), calls };
}

function tempDir(root: string, name: string): string {
  const dir = join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The disk's own limit: one 64-byte write and one fdatasync per iteration, blocking and not. */
async function benchRawFdatasync(root: string): Promise<{ syncPerSec: number; asyncPerSec: number }> {
  const path = join(root, 'raw-fdatasync');
  const fd = fs.openSync(path, 'w');
  const record = Buffer.alloc(64, 0x5a);
  try {
    const syncPerSec = rateSync(PHASE_MS, (i) => {
      fs.writeSync(fd, record, 0, record.length, (i % 1024) * 64);
      fs.fdatasyncSync(fd);
      return 1;
    });
    const asyncPerSec = (
      await rateAsync(PHASE_MS, async (i) => {
        fs.writeSync(fd, record, 0, record.length, (i % 1024) * 64);
        await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolve())));
        return 1;
      })
    ).perSec;
    return { syncPerSec: round(syncPerSec), asyncPerSec: round(asyncPerSec) };
  } finally {
    fs.closeSync(fd);
  }
}

interface WalFigure {
  batchEntries: number;
  entriesPerSec: number;
  savesPerSec: number;
  mbPerSec: number;
  fdatasyncsPerSave: number;
}

/** The WAL a process runs (the shared one) with one group, one save at a time. */
async function benchWal(root: string): Promise<WalFigure[]> {
  const figures: WalFigure[] = [];
  const payload = Buffer.alloc(WAL_ENTRY_BYTES, 0x61);
  for (const batchEntries of WAL_BATCH_SIZES) {
    const wal = await SharedWal.open({ dir: tempDir(root, `wal-${batchEntries}`) });
    const { log } = wal.attach(1);
    let lastIndex = 0;
    const syncsBefore = wal.stats.fileSyncs;
    const { perSec: savesPerSec, calls } = await rateAsync(WAL_PHASE_MS, async () => {
      const first = lastIndex + 1;
      const entries: Entry[] = Array.from({ length: batchEntries }, (_, i) => ({ index: first + i, term: 1, type: 0, data: payload }));
      lastIndex += batchEntries;
      await log.save({ hardState: { term: 1, vote: 1, commit: first - 1 }, entries });
      return 1;
    });
    const syncs = wal.stats.fileSyncs - syncsBefore;
    await wal.close();
    figures.push({
      batchEntries,
      entriesPerSec: round(savesPerSec * batchEntries),
      savesPerSec: round(savesPerSec),
      mbPerSec: Math.round(((savesPerSec * batchEntries * WAL_ENTRY_BYTES) / 1e6) * 10) / 10,
      fdatasyncsPerSave: Math.round((syncs / Math.max(1, calls)) * 100) / 100,
    });
  }
  return figures;
}

interface GroupCommitFigure {
  groups: number;
  /** One shared WAL: each turn, every group saves one entry (issued in one pass, then awaited together). */
  shared: { turnsPerSec: number; entriesPerSec: number; fdatasyncsPerTurn: number };
  /** One WAL per group (lichen 0.1's Wal, each in its own directory), the same turns. */
  perGroup: { turnsPerSec: number; entriesPerSec: number; fdatasyncsPerTurn: number };
}

/** Group commit across groups: N groups each saving one entry per turn, one WAL for all against one each. */
async function benchGroupCommit(root: string): Promise<GroupCommitFigure[]> {
  const payload = Buffer.alloc(WAL_ENTRY_BYTES, 0x61);
  const figures: GroupCommitFigure[] = [];
  const figure = (turns: { perSec: number; calls: number }, groups: number, syncs: number) => ({
    turnsPerSec: round(turns.perSec),
    entriesPerSec: round(turns.perSec * groups),
    fdatasyncsPerTurn: Math.round((syncs / Math.max(1, turns.calls)) * 100) / 100,
  });
  for (const groups of GROUP_COUNTS) {
    const entry = (index: number): Entry[] => [{ index, term: 1, type: 0, data: payload }];
    const hardState = (index: number) => ({ term: 1, vote: 1, commit: index - 1 });
    const shared = await SharedWal.open({ dir: tempDir(root, `shared-${groups}`) });
    const logs = Array.from({ length: groups }, (_, i) => shared.attach(i + 1).log);
    let syncs = shared.stats.fileSyncs;
    const sharedTurns = await rateAsync(WAL_PHASE_MS, async (turn) => {
      await Promise.all(logs.map((log) => log.save({ hardState: hardState(turn + 1), entries: entry(turn + 1) })));
      return 1;
    });
    const sharedFigure = figure(sharedTurns, groups, shared.stats.fileSyncs - syncs);
    await shared.close();
    const separate = await Promise.all(Array.from({ length: groups }, async (_, i) => (await Wal.open({ dir: tempDir(root, `separate-${groups}-${i}`) })).wal));
    syncs = separate.reduce((sum, wal) => sum + wal.stats.fileSyncs, 0);
    const separateTurns = await rateAsync(WAL_PHASE_MS, async (turn) => {
      await Promise.all(separate.map((wal) => wal.save({ hardState: hardState(turn + 1), entries: entry(turn + 1) })));
      return 1;
    });
    const perGroup = figure(separateTurns, groups, separate.reduce((sum, wal) => sum + wal.stats.fileSyncs, 0) - syncs);
    for (const wal of separate) await wal.close();
    figures.push({ groups, shared: sharedFigure, perGroup });
  }
  return figures;
}

interface EngineFigure {
  /** One engine.write of one put, random key order, as the apply loop does per command. */
  putPerSec: number;
  /** Puts per second when 100 go in one engine.write. */
  putBatched100PerSec: number;
  getPerSec: number;
  /** Range scans of RANGE_LIMIT keys from a random start. */
  rangePerSec: number;
  rangeKeysPerSec: number;
  keys: number;
}

function keyOf(i: number): Uint8Array {
  return Buffer.from(`bench/key/${String(i).padStart(10, '0')}`);
}

async function benchEngine(engine: Engine): Promise<EngineFigure> {
  const random = seededRandom(42);
  const value = Buffer.alloc(ENGINE_VALUE_BYTES, 0x62);
  // Random insertion order over a fixed key set, so neither engine gets the append-only best case.
  const order = Array.from({ length: ENGINE_KEYS }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let written = 0;
  const putPerSec = await rateWrites(PHASE_MS, engine, (i) => {
    engine.write([{ type: 'put', key: keyOf(order[i % ENGINE_KEYS]!), value }]);
    written = Math.max(written, i + 1);
    return 1;
  });
  // Fill whatever the timed phase did not reach, so reads see the whole key set.
  for (let start = written; start < ENGINE_KEYS; start += 1000) {
    const ops = [];
    for (let i = start; i < Math.min(ENGINE_KEYS, start + 1000); i++) ops.push({ type: 'put' as const, key: keyOf(order[i]!), value });
    engine.write(ops);
  }
  await engine.sync();
  const putBatched100PerSec = await rateWrites(PHASE_MS, engine, (i) => {
    const ops = [];
    for (let k = 0; k < 100; k++) ops.push({ type: 'put' as const, key: keyOf(order[(i * 100 + k) % ENGINE_KEYS]!), value });
    engine.write(ops);
    return 100;
  });
  let found = 0;
  const getPerSec = rateSync(PHASE_MS, () => {
    if (engine.get(keyOf(Math.floor(random() * ENGINE_KEYS))) !== undefined) found++;
    return 1;
  });
  if (found === 0) throw new Error(`${engine.kind}: gets found nothing`);
  let rangeKeys = 0;
  let rangeCalls = 0;
  const rangePerSec = rateSync(PHASE_MS, () => {
    rangeCalls++;
    for (const _ of engine.range({ start: keyOf(Math.floor(random() * (ENGINE_KEYS - RANGE_LIMIT))), limit: RANGE_LIMIT })) rangeKeys++;
    return 1;
  });
  return {
    putPerSec: round(putPerSec),
    putBatched100PerSec: round(putBatched100PerSec),
    getPerSec: round(getPerSec),
    rangePerSec: round(rangePerSec),
    rangeKeysPerSec: round((rangePerSec * rangeKeys) / Math.max(1, rangeCalls)),
    keys: ENGINE_KEYS,
  };
}

/** The MVCC store over one group's partition of an engine (as a process runs it): etcd puts and single-key ranges. */
async function benchMvcc(root: string, kind: EngineKind): Promise<Record<string, number | string>> {
  try {
    const { MvccStore } = await import('../src/mvcc/index.js');
    const engine = await openEngine(kind, tempDir(root, `mvcc-${kind}`));
    try {
      const store = MvccStore.open(new ScopedEngine(engine, 1));
      const value = Buffer.alloc(ENGINE_VALUE_BYTES, 0x63);
      let index = store.appliedIndex;
      const keys = Math.min(ENGINE_KEYS, 10_000);
      const putPerSec = await rateWrites(PHASE_MS, engine, (i) => {
        store.apply(++index, { type: 'put', request: { key: keyOf(i % keys), value } });
        return 1;
      });
      const random = seededRandom(7);
      const rangeOnePerSec = rateSync(PHASE_MS, () => {
        store.range({ key: keyOf(Math.floor(random() * Math.min(keys, index))) });
        return 1;
      });
      return { putPerSec: round(putPerSec), getPerSec: round(rangeOnePerSec) };
    } finally {
      await closeEngine(engine);
    }
  } catch (error) {
    return { error: (error as Error).message };
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const root = fs.mkdtempSync(join(os.tmpdir(), 'lichen-bench-storage-'));
  try {
    const fdatasync = await benchRawFdatasync(root);
    const wal = await benchWal(root);
    const groupCommit = await benchGroupCommit(root);
    const engines: Record<string, EngineFigure> = {};
    for (const kind of ['lmdb', 'leveldb'] as const) {
      const engine = await openEngine(kind, tempDir(root, kind));
      try {
        engines[kind] = await benchEngine(engine);
        engines[`${kind}Partition`] = await benchEngine(new ScopedEngine(engine, 2));
      } finally {
        await closeEngine(engine);
      }
    }
    engines['memory'] = await benchEngine(new MemoryEngine());
    const mvcc = { lmdb: await benchMvcc(root, 'lmdb'), leveldb: await benchMvcc(root, 'leveldb') };
    const result = {
      benchmark: 'storage',
      quick,
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpus: os.cpus().length,
      tmpdir: os.tmpdir(),
      rawFdatasyncPerSec: fdatasync.syncPerSec,
      rawFdatasyncAsyncPerSec: fdatasync.asyncPerSec,
      wal: { entryBytes: WAL_ENTRY_BYTES, batches: wal, groupCommit },
      engines,
      mvcc,
      durationMs: round(performance.now() - started),
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
