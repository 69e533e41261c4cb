// Storage micro-benchmarks: raw flush rate of this disk, WAL group commit, and engine operations.
// Prints ONE JSON object on stdout. Rates are per second; nothing here gates CI.
//
//   npm run bench:storage            (about 20 s)
//   npm run bench:storage -- --quick (about 1-2 s, a smoke run)
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../src/raft/types.js';
import { Wal } from '../src/wal/index.js';
import { LmdbEngine, MemoryEngine, type Engine } from '../src/engine/index.js';
import { seededRandom } from '../src/random.js';

const quick = process.argv.includes('--quick');
/** Time spent measuring each figure. */
const PHASE_MS = quick ? 60 : 1000;
const WAL_PHASE_MS = quick ? 80 : 1500;
const WAL_BATCH_SIZES = [1, 16, 64, 256] as const;
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

async function benchWal(root: string): Promise<WalFigure[]> {
  const figures: WalFigure[] = [];
  const payload = Buffer.alloc(WAL_ENTRY_BYTES, 0x61);
  for (const batchEntries of WAL_BATCH_SIZES) {
    const { wal } = await Wal.open({ dir: tempDir(root, `wal-${batchEntries}`) });
    const syncsBefore = wal.stats.fileSyncs;
    const { perSec: savesPerSec, calls } = await rateAsync(WAL_PHASE_MS, async () => {
      const first = wal.lastIndex + 1;
      const entries: Entry[] = Array.from({ length: batchEntries }, (_, i) => ({ index: first + i, term: 1, type: 0, data: payload }));
      await wal.save({ hardState: { term: 1, vote: 1, commit: first - 1 }, entries });
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

function benchEngine(engine: Engine): EngineFigure {
  const random = seededRandom(42);
  const value = Buffer.alloc(ENGINE_VALUE_BYTES, 0x62);
  // Random insertion order over a fixed key set, so neither engine gets the append-only best case.
  const order = Array.from({ length: ENGINE_KEYS }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  let written = 0;
  const putPerSec = rateSync(PHASE_MS, (i) => {
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
  const putBatched100PerSec = rateSync(PHASE_MS, (i) => {
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

/** The MVCC store over lmdb, if the mvcc layer is importable: etcd puts and single-key ranges. */
async function benchMvcc(root: string): Promise<Record<string, number | string>> {
  try {
    const { MvccStore } = await import('../src/mvcc/index.js');
    const engine = LmdbEngine.open({ dir: tempDir(root, 'mvcc') });
    try {
      const store = MvccStore.open(engine);
      const value = Buffer.alloc(ENGINE_VALUE_BYTES, 0x63);
      let index = store.appliedIndex;
      const keys = Math.min(ENGINE_KEYS, 10_000);
      const putPerSec = rateSync(PHASE_MS, (i) => {
        store.apply(++index, { type: 'put', request: { key: keyOf(i % keys), value } });
        return 1;
      });
      const random = seededRandom(7);
      const rangeOnePerSec = rateSync(PHASE_MS, () => {
        store.range({ key: keyOf(Math.floor(random() * Math.min(keys, index))) });
        return 1;
      });
      return { engine: 'lmdb', putPerSec: round(putPerSec), getPerSec: round(rangeOnePerSec) };
    } finally {
      await engine.closeAsync();
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
    const lmdb = LmdbEngine.open({ dir: tempDir(root, 'lmdb') });
    let lmdbFigures: EngineFigure;
    try {
      lmdbFigures = benchEngine(lmdb);
    } finally {
      await lmdb.closeAsync();
    }
    const memoryFigures = benchEngine(new MemoryEngine());
    const mvcc = await benchMvcc(root);
    const result = {
      benchmark: 'storage',
      quick,
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
      cpus: os.cpus().length,
      tmpdir: os.tmpdir(),
      rawFdatasyncPerSec: fdatasync.syncPerSec,
      rawFdatasyncAsyncPerSec: fdatasync.asyncPerSec,
      wal: { entryBytes: WAL_ENTRY_BYTES, batches: wal },
      engines: { lmdb: lmdbFigures, memory: memoryFigures },
      mvcc,
      durationMs: round(performance.now() - started),
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
