// The lmdb engine: the default storage for a node's state machine, one LMDB environment per node.
//
// Durability. The WAL makes every committed entry durable and the applied index is written in
// the same batch as the data it covers, so the engine need not flush on every write: after a
// crash the server replays from the WAL what the engine lacks. We open LMDB with MDB_NOSYNC
// (noSync, and overlappingSync off so commits never wait for a flush). Measured on this machine,
// one synchronous write transaction of two puts:
//   default (overlappingSync, flushed per commit)       ~3000 txn/s
//   default with the NO_SYNC_FLUSH transaction flag     ~3500 txn/s (overlappingSync still waits)
//   noSync                                              ~75-120k txn/s
// A process crash loses nothing (the data is in the page cache); a machine crash may lose the
// last transactions, which the WAL replays. LMDB keeps its integrity under MDB_NOSYNC only on file
// systems that keep write order, so sync() (mdb_env_sync with force) must run before the server
// releases WAL segments or relies on the engine alone; after it, everything written is durable.
//
// Commits. A batch's writes wait in memory (uncommitted.ts: reads lay them over LMDB's) until
// commit(), which writes all of them, each key's last, in one LMDB write transaction: the server
// commits on its ticks, as etcd's backend does every 100 ms, and the engine by itself once
// engineUncommittedOpsMax writes wait. A process crash loses what waits; the WAL replays it.
//
// Keys. LMDB rejects zero-length keys, and the engine contract allows them, so every stored key
// carries a one-byte prefix. That keeps byte order and costs one copy per key written or sought.
// With 8 KiB pages LMDB allows keys up to 4026 bytes, so engine keys may be up to 4025 bytes.
//
// Reads. Reads outside a transaction see every committed write (lmdb-js renews its shared read
// transaction after each write transaction). A snapshot is an LMDB read transaction; lmdb-js 3.5.6
// honours an explicit read transaction in range queries but not always in get() (measured: a get
// through a held transaction returned a later write), so snapshot views read single keys through
// a one-key range in their transaction.
import { open, type RootDatabase } from 'lmdb';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode, LichenError, assert } from '../errors.js';
import { decodeChunk, exportView } from './codec.js';
import type { BatchOptions, Engine, EngineSpace, RangeOptions, ReadView, WriteOp } from './types.js';
import { LookupKeys } from './lookup-keys.js';
import { overlay, storedId, type UncommittedWrite, type UncommittedWrites } from './uncommitted.js';
import { engineUncommittedOpsMax, lmdbKeyBytesMax } from '../limits.js';

const NO_WRITES: UncommittedWrites = new Map();

const PAGE_BYTES = 8192;
const KEY_PREFIX = 0x00;

type Transaction = ReturnType<RootDatabase['useReadTransaction']>;

/** The part of lmdb-js getStats() we read (mdb_stat of the main and free-list trees, mdb_env_info). */
interface TreeStats {
  treeBranchPageCount: number;
  treeLeafPageCount: number;
  overflowPages: number;
}
interface LmdbStats extends TreeStats {
  pageSize: number;
  lastPageNumber: number;
  free: TreeStats;
}
const META_PAGES = 2;
const treePages = (tree: TreeStats): number => tree.treeBranchPageCount + tree.treeLeafPageCount + tree.overflowPages;

/** The stored form of `key`, written into `stored` (key.length + 1 bytes; a new buffer unless given). */
function toStored(key: Uint8Array, stored: Buffer = Buffer.allocUnsafe(key.length + 1)): Buffer {
  stored[0] = KEY_PREFIX;
  stored.set(key, 1);
  return stored;
}

const fromStored = (stored: Buffer): Uint8Array => stored.subarray(1);

/**
 * A value from lmdb-js's getBinaryFast (its reusable buffer, valid until the next read; `length`
 * is the value's, the buffer is larger), copied into memory of its own. getBinary makes that copy
 * with a new ArrayBuffer per value; Node's Buffer pool slices are cheaper: in-process, a range of
 * 10,000 keys spent a third of its CPU creating those ArrayBuffers.
 */
function copyOut(fast: Buffer): Buffer {
  const size = fast.length;
  const copy = Buffer.allocUnsafe(size);
  copy.set(new Uint8Array(fast.buffer, fast.byteOffset, size));
  return copy;
}

/** The stored key just after every stored key: the upper bound of "to the end of the key space". */
const STORED_END = Buffer.from([KEY_PREFIX + 1]);

function checkKey(key: Uint8Array): void {
  if (key.length > lmdbKeyBytesMax) {
    throw new LichenError(ErrorCode.TooLarge, `engine key of ${key.length} bytes exceeds ${lmdbKeyBytesMax}`);
  }
}

/**
 * Stored pairs of [low, high) in key order (or reverse), from a database and optionally a held
 * read transaction. lmdb-js takes a reverse range as (start = high bound inclusive, end = low
 * bound exclusive), the opposite of our [start, end), so reverse scans start at `high` and skip it.
 */
function* storedPairs(db: RootDatabase<Buffer, Buffer>, low: Buffer, high: Buffer, reverse: boolean, transaction: Transaction | undefined): Iterable<[Buffer, Buffer]> {
  const options = reverse ? { start: high, end: low, reverse: true, transaction } : { start: low, end: high, transaction };
  for (const { key, value } of db.getRange(options as GetRangeOptions)) {
    const stored = key as Buffer;
    if (reverse && stored.equals(high)) continue; // exclusive upper bound
    yield [stored, value as Buffer];
  }
  // lmdb-js ends a reverse scan before its exclusive `end`, so `low` itself comes last.
  if (reverse) {
    const value = getStored(db, low, transaction);
    if (value !== undefined) yield [low, value];
  }
}

/** Pairs of [start, end): the database's (or a held transaction's), with the uncommitted writes laid over them. */
function* scan(
  db: RootDatabase<Buffer, Buffer>,
  { start, end, reverse = false, limit }: RangeOptions,
  transaction: Transaction | undefined,
  writes: UncommittedWrites,
): Iterable<[Uint8Array, Uint8Array]> {
  const max = limit ?? Infinity;
  if (max <= 0) return;
  const low = toStored(start);
  const high = end === undefined ? STORED_END : toStored(end);
  if (Buffer.compare(low, high) >= 0) return;
  let yielded = 0;
  for (const [stored, value] of overlay(storedPairs(db, low, high, reverse, transaction), writes, low, high, reverse)) {
    yield [fromStored(stored), value];
    if (++yielded >= max) return;
  }
}

type GetRangeOptions = Parameters<RootDatabase['getRange']>[0];

/** One stored key's value, read in the held transaction when there is one (see "Reads" above). */
function getStored(db: RootDatabase<Buffer, Buffer>, stored: Buffer, transaction: Transaction | undefined): Buffer | undefined {
  if (!transaction) return db.get(stored);
  for (const { key, value } of db.getRange({ start: stored, limit: 1, transaction } as GetRangeOptions)) {
    if ((key as Buffer).equals(stored)) return value as Buffer;
  }
  return undefined;
}

/** The value of `stored` among uncommitted writes: a write, a delete (null), or none (undefined). */
function uncommittedValue(writes: UncommittedWrites, stored: Buffer): Buffer | null | undefined {
  if (writes.size === 0) return undefined;
  const write = writes.get(storedId(stored));
  return write === undefined ? undefined : (write.value ?? null);
}

class LmdbReadView implements ReadView {
  private closed = false;

  constructor(
    private readonly db: RootDatabase<Buffer, Buffer>,
    private readonly transaction: Transaction,
    /** The engine's uncommitted writes when the view was taken (a copy). */
    private readonly writes: UncommittedWrites,
  ) {}

  get(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    if (key.length > lmdbKeyBytesMax) return undefined;
    const stored = toStored(key);
    const uncommitted = uncommittedValue(this.writes, stored);
    if (uncommitted !== undefined) return uncommitted ?? undefined;
    return getStored(this.db, stored, this.transaction);
  }

  /** A snapshot reads through a cursor, whose values are buffers of their own already. */
  peek(key: Uint8Array): Uint8Array | undefined {
    return this.get(key);
  }

  range(options: RangeOptions): Iterable<[Uint8Array, Uint8Array]> {
    this.checkOpen();
    return scan(this.db, options, this.transaction, this.writes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transaction.done();
  }

  private checkOpen(): void {
    if (this.closed) throw new LichenError(ErrorCode.Internal, 'engine snapshot used after close');
  }
}

export interface LmdbEngineOptions {
  /** Directory of the LMDB environment (created if missing). */
  dir: string;
}

export class LmdbEngine implements Engine {
  readonly kind = 'lmdb' as const;
  private closed = false;
  /** Writes of finished batches that LMDB does not hold yet (see commit). */
  private writes: UncommittedWrites = new Map();
  private writesOps = 0;
  /**
   * While a batch runs: each of its writes as two items, the key's id and what the write
   * replaced among `writes` (undefined: nothing), in the order written, so a rollback restores
   * them last to first. A flat list, not a map by key: a batch rarely writes a key twice, and a
   * map's lookup and insert per write were a tenth of the engine's part of a 50,000-key delete.
   */
  private undo: (string | UncommittedWrite | undefined)[] | undefined;
  private batchOps = 0;
  /** While a direct batch runs (see BatchOptions): writes go straight into its LMDB transaction. */
  private direct = false;
  /** The first failed commit: the engine refuses every write after it (the process must restart). */
  private failure: Error | undefined;
  /** The flush in progress, and the one that callers arriving during it share (see sync). */
  private flushing: Promise<void> | undefined;
  private nextFlush: Promise<void> | undefined;
  private readonly lookupKeys = new LookupKeys();

  private constructor(
    private readonly db: RootDatabase<Buffer, Buffer>,
    private readonly dir: string,
  ) {}

  static open(options: LmdbEngineOptions): LmdbEngine {
    mkdirSync(options.dir, { recursive: true });
    const db = open<Buffer, Buffer>({
      path: options.dir,
      keyEncoding: 'binary',
      encoding: 'binary',
      pageSize: PAGE_BYTES,
      noSync: true,
      overlappingSync: false,
    });
    return new LmdbEngine(db, options.dir);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.read(key, true);
  }

  /** The value in lmdb-js's reusable read buffer (getBinaryFast), not copied. */
  peek(key: Uint8Array): Uint8Array | undefined {
    return this.read(key, false);
  }

  private read(key: Uint8Array, copy: boolean): Uint8Array | undefined {
    if (key.length > lmdbKeyBytesMax) return undefined;
    const stored = toStored(key, this.lookupKeys.of(key.length + 1));
    const uncommitted = uncommittedValue(this.writes, stored);
    if (uncommitted !== undefined) return uncommitted ?? undefined;
    const fast = this.db.getBinaryFast(stored);
    if (fast === undefined) return undefined;
    // Its `length` property is the value's; the buffer itself is larger.
    return copy ? copyOut(fast) : new Uint8Array(fast.buffer, fast.byteOffset, fast.length);
  }

  range(options: RangeOptions): Iterable<[Uint8Array, Uint8Array]> {
    return scan(this.db, options, undefined, this.writes);
  }

  write(ops: WriteOp[]): void {
    for (const op of ops) checkKey(op.key);
    if (this.direct) {
      // Straight into the direct batch's LMDB transaction (LMDB copies the bytes).
      for (const op of ops) {
        if (op.type === 'put') this.db.put(toStored(op.key), Buffer.from(op.value.buffer, op.value.byteOffset, op.value.byteLength));
        else this.db.remove(toStored(op.key));
      }
      return;
    }
    this.batch(() => {
      for (const op of ops) this.stage(toStored(op.key), op.type === 'put' ? Buffer.from(op.value) : undefined);
    });
  }

  private stage(stored: Buffer, value: Buffer | undefined): void {
    const id = storedId(stored);
    this.undo!.push(id, this.writes.get(id));
    this.writes.set(id, { stored, value });
    this.batchOps++;
  }

  batch<T>(fn: () => T, options?: BatchOptions): T {
    if (this.undo || this.direct) return fn();
    if (this.failure) throw this.failure;
    if (options?.direct) return this.directBatch(fn);
    const undo: NonNullable<LmdbEngine['undo']> = (this.undo = []);
    this.batchOps = 0;
    let result: T;
    try {
      result = fn();
    } catch (error) {
      for (let i = undo.length - 2; i >= 0; i -= 2) {
        const id = undo[i] as string;
        const before = undo[i + 1] as UncommittedWrite | undefined;
        if (before === undefined) this.writes.delete(id);
        else this.writes.set(id, before);
      }
      throw error;
    } finally {
      this.undo = undefined;
    }
    this.writesOps += this.batchOps;
    if (this.writesOps >= engineUncommittedOpsMax) this.commit();
    return result;
  }

  /** The waiting writes committed first, then `fn` in one LMDB write transaction of its own (a throw aborts it). */
  private directBatch<T>(fn: () => T): T {
    this.commit();
    this.direct = true;
    try {
      return this.db.transactionSync(fn);
    } finally {
      this.direct = false;
    }
  }

  get uncommittedOps(): number {
    return this.writesOps;
  }

  /** One synchronous LMDB write transaction with every uncommitted write (each key's last). */
  commit(): void {
    assert(this.undo === undefined && !this.direct, 'lmdb: commit inside a batch');
    if (this.failure) throw this.failure;
    if (this.writes.size === 0) return;
    const writes = this.writes;
    try {
      this.db.transactionSync(() => {
        for (const { stored, value } of writes.values()) {
          if (value === undefined) this.db.remove(stored);
          else this.db.put(stored, value);
        }
      });
    } catch (error) {
      this.failure = new LichenError(ErrorCode.Internal, `lmdb commit failed in ${this.dir}: ${String(error)}`);
      throw this.failure;
    }
    this.writes = new Map();
    this.writesOps = 0;
  }

  snapshot(): ReadView {
    return new LmdbReadView(this.db, this.db.useReadTransaction(), this.writes.size === 0 ? NO_WRITES : new Map(this.writes));
  }

  /**
   * LMDB grows its file up to the highest page ever used and keeps freed pages in a free list for
   * reuse, as bbolt does. In use: the two meta pages plus every page of the main tree (branch,
   * leaf, overflow) and of the free list's own tree; the free pages are the rest. mdb_stat and
   * mdb_env_info behind getStats() take about 19 µs (measured here with 100,000 keys), so callers
   * sample it (the server does once per tick), never per request.
   */
  space(): EngineSpace {
    // LMDB counts what it holds: the writes waiting count once committed (never inside a batch).
    if (this.undo === undefined && !this.direct && this.failure === undefined) this.commit();
    const stats = this.db.getStats() as LmdbStats;
    const pagesInUse = META_PAGES + treePages(stats) + treePages(stats.free);
    return { sizeBytes: (stats.lastPageNumber + 1) * stats.pageSize, inUseBytes: pagesInUse * stats.pageSize };
  }

  /**
   * Flushes every committed write to disk (mdb_env_sync with force, even under MDB_NOSYNC).
   * Callers that arrive while a flush runs share the next one, which covers every write committed
   * before they called: every group of a process syncs this one engine (a store closing 3,000
   * replicas took 1.2 s with one flush each, 0.2 s with shared flushes: bench:groups --disk).
   */
  sync(): Promise<void> {
    try {
      this.commit();
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.flushing === undefined) return this.flush();
    const after = () => {
      this.nextFlush = undefined;
      return this.flush();
    };
    return (this.nextFlush ??= this.flushing.then(after, after));
  }

  private flush(): Promise<void> {
    // sync(callback) exists on lmdb-js databases (open.js) but is missing from its type declarations.
    const db = this.db as unknown as { sync(callback: (error?: unknown) => void): void };
    const flushing = new Promise<void>((resolve, reject) => {
      db.sync((error?: unknown) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()));
    });
    this.flushing = flushing;
    const done = () => {
      if (this.flushing === flushing) this.flushing = undefined;
    };
    flushing.then(done, done);
    return flushing;
  }

  export(chunkBytes?: number): Iterable<Uint8Array> {
    return exportView(() => this.snapshot(), chunkBytes);
  }

  /** Replaces the key space in one write transaction: a bad chunk aborts it and nothing changes. */
  import(chunks: Iterable<Uint8Array>): void {
    // The import replaces what LMDB holds, so what waits goes in first (a failed import keeps it).
    this.commit();
    this.db.transactionSync(() => {
      // Nested in our transaction, clearSync runs inside it rather than committing on its own.
      this.db.clearSync();
      for (const chunk of chunks) {
        for (const [key, value] of decodeChunk(chunk)) {
          checkKey(key);
          this.db.put(toStored(key), Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        }
      }
    });
  }

  /** Closes the environment without waiting (the Engine interface is synchronous). */
  close(): void {
    void this.closeAsync();
  }

  /**
   * Closes the environment. Waits one macrotask first: lmdb-js resets its shared read transaction
   * on a zero-delay timer, and closing before that runs was measured to hang in mdb_env_close.
   */
  async closeAsync(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure) this.commit();
    await delay(0);
    await this.db.close();
  }
}

/** Whether `dir` holds an LMDB environment. */
export const holdsLmdb = (dir: string): boolean => existsSync(join(dir, 'data.mdb'));
