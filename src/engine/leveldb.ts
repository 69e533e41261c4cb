// The leveldb engine: an LSM tree (LevelDB, through classic-level, the Level project's binding)
// beside the lmdb B+tree, as etcd's successors offer both kinds. Selected with --engine leveldb.
//
// Why it is built this way. The Engine interface is synchronous (the apply loop reads its own
// writes, and open, hashKV, watch catch-up and snapshots iterate), while classic-level 3.0.0 reads
// single keys synchronously (getSync, also in an explicit snapshot) but writes and iterates only
// asynchronously. Measured on this 2-core machine (load 4-5, 100,000 keys of 64 B):
//   getSync on the main thread                               4-7 µs per key (lmdb get: 1.8 µs)
//   the same through a worker thread, blocking on Atomics    85-110 µs per key (a thread hop)
//   an awaited batch of two puts                             ~100 µs
//   iterating with nextv(1000)                               2 µs per key
// A worker that owns the database would make iteration synchronous, but at 20 times the cost of
// every point read, which is the MVCC hot path; making range asynchronous instead changes every
// caller (store open, hashKV, watch catch-up, snapshot views, auth, alarms, the replica and the
// simulator). So the engine keeps three things on the main thread:
// - a key directory (keydir.ts): every stored key with its value's size, in order, in memory,
//   rebuilt by one scan at open. range() walks it and reads each value with getSync; space()
//   counts it. The cost is memory: about 50 bytes per engine key (the MVCC key index already
//   holds every key version, which is what most engine keys are);
// - an overlay of written values that LevelDB does not hold yet: reads see a write at once;
// - a queue of writes, flushed to LevelDB in order when commit() or sync() asks (the server
//   commits on its ticks; the engine by itself once engineUncommittedOpsMax writes wait), one
//   LevelDB batch at a time (everything queued while a batch runs goes into the next one), each
//   engine write whole inside one LevelDB batch. The
//   applied index travels in the same write as the data it covers (src/mvcc/store.ts), so after
//   a crash LevelDB holds a prefix of the writes in which both agree, and the WAL replays the rest.
//   Writes are not synced (LevelDB appends them to its log; a process crash loses none of what
//   reached it); sync() writes a marker with sync: true, which makes everything before it durable.
//
// Keys. Every stored key carries a one-byte prefix: 0x00 before engine keys (so the empty key can
// be stored), 0x01 for the engine's own (the sync marker), so engine keys sort and scan together.
import { ClassicLevel } from 'classic-level';
import { existsSync, mkdirSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, LichenError } from '../errors.js';
import { engineUncommittedOpsMax } from '../limits.js';
import { decodeChunk, exportView } from './codec.js';
import { KeyDirectory, type KeyList } from './keydir.js';
import type { BatchOptions, Engine, EngineSpace, RangeOptions, ReadView, WriteOp } from './types.js';

const DATA_PREFIX = 0x00;
const SYNC_MARKER = Buffer.from([0x01, ...Buffer.from('sync')]);
/** Pairs read per step while scanning the keys at open. */
const OPEN_SCAN_STEP = 1000;
/** space() measures the files again after this many bytes were handed to LevelDB, or this many calls. */
const SPACE_REMEASURE_BYTES = 1 << 20;
const SPACE_REMEASURE_CALLS = 100;

type Level = ClassicLevel<Buffer, Buffer>;
type Snapshot = ReturnType<Level['snapshot']>;
type LevelOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** A written value LevelDB may not hold yet (undefined: deleted), and the write that made it. */
interface Pending {
  value: Buffer | undefined;
  seq: number;
}

const keyString = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');

function storedKey(key: string): Buffer {
  const stored = Buffer.allocUnsafe(key.length + 1);
  stored[0] = DATA_PREFIX;
  stored.write(key, 1, 'latin1');
  return stored;
}

/** Reads keys from a key list, and their values from pending writes, then LevelDB (optionally in a snapshot). */
class LevelReader {
  constructor(
    protected readonly db: Level,
    protected readonly snapshotOf: () => Snapshot | undefined,
  ) {}

  protected value(key: string, pending: Map<string, Pending>): Buffer | undefined {
    const written = pending.get(key);
    if (written !== undefined) return written.value;
    const snapshot = this.snapshotOf();
    return snapshot === undefined ? this.db.getSync(storedKey(key)) : this.db.getSync(storedKey(key), { snapshot });
  }

  protected *scan(keys: KeyList, pending: Map<string, Pending>, { start, end, reverse = false, limit }: RangeOptions): Iterable<[Uint8Array, Uint8Array]> {
    const max = limit ?? Infinity;
    if (max <= 0) return;
    let yielded = 0;
    for (const key of keys.keys(keyString(start), end === undefined ? undefined : keyString(end), reverse)) {
      const value = this.value(key, pending);
      // Absent only if a write deleted it after the scan started (live scans read the newest values).
      if (value === undefined) continue;
      yield [Buffer.from(key, 'latin1'), value];
      if (++yielded >= max) return;
    }
  }
}

class LevelReadView extends LevelReader implements ReadView {
  private closed = false;

  constructor(
    db: Level,
    private readonly snapshot: Snapshot,
    private readonly keys: KeyList,
    private readonly pending: Map<string, Pending>,
  ) {
    super(db, () => snapshot);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    const name = keyString(key);
    return this.keys.has(name) ? this.value(name, this.pending) : undefined;
  }

  /** LevelDB hands out a buffer of its own per read, so get's value is as good. */
  peek(key: Uint8Array): Uint8Array | undefined {
    return this.get(key);
  }

  range(options: RangeOptions): Iterable<[Uint8Array, Uint8Array]> {
    this.checkOpen();
    return this.scan(this.keys, this.pending, options);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Closing an explicit snapshot is asynchronous; a database closed first has closed it already.
    this.snapshot.close().catch(() => {});
  }

  private checkOpen(): void {
    if (this.closed) throw new LichenError(ErrorCode.Internal, 'engine snapshot used after close');
  }
}

/**
 * The ops of several queued writes as one LevelDB batch, each key written once: the batch is
 * atomic, so only each key's last op matters. Every apply rewrites the applied index and most
 * the current revision, and each LevelDB op costs (abstract-level checks and copies every op):
 * measured with 8 MVCC puts per flush (process CPU, LevelDB's threads included), CPU per put went
 * from 87-102 µs to 56-69 µs (lmdb: 55-67 µs).
 */
function lastWriteOfEachKey(writes: { ops: LevelOp[]; keys: string[] }[]): LevelOp[] {
  const last = new Map<string, LevelOp>();
  for (const { ops, keys } of writes) {
    for (let i = 0; i < ops.length; i++) {
      last.delete(keys[i]!);
      last.set(keys[i]!, ops[i]!);
    }
  }
  return [...last.values()];
}

export interface LevelEngineOptions {
  /** Directory of the LevelDB database (created if missing). */
  dir: string;
}

/** The open batch: its LevelDB ops, and what its writes replaced, to restore if it throws. */
interface OpenBatch {
  ops: LevelOp[];
  keys: string[];
  undo: Map<string, { pending: Pending | undefined; size: number }>;
}

export class LevelEngine extends LevelReader implements Engine {
  readonly kind = 'leveldb' as const;
  private readonly directory = new KeyDirectory();
  /** Written values LevelDB may not hold yet. */
  private readonly pending = new Map<string, Pending>();
  /** Sequence number of the last write queued; writes are numbered from 1. */
  private writeSeq = 0;
  private openBatch: OpenBatch | undefined;
  /** Writes queued for LevelDB, in order, each with its sequence number and keys. */
  private queue: { seq: number; ops: LevelOp[]; keys: string[] }[] = [];
  /** The ops in `queue`. */
  private queuedOps = 0;
  /** Whether commit() asked for the queue to be written (after the batch running, if any). */
  private commitAsked = false;
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private flushing = false;
  /** The first LevelDB write error: the engine refuses every write after it (the process must restart). */
  private failure: Error | undefined;
  private closed = false;
  /** The LevelDB files' bytes when last measured, and the key and value bytes handed to LevelDB since. */
  private filesBytes = 0;
  private handedBytes = 0;
  private spaceCalls = 0;
  private measuring = false;

  private constructor(
    db: Level,
    private readonly dir: string,
  ) {
    super(db, () => undefined);
  }

  static async open(options: LevelEngineOptions): Promise<LevelEngine> {
    mkdirSync(options.dir, { recursive: true });
    const db = new ClassicLevel<Buffer, Buffer>(options.dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    const engine = new LevelEngine(db, options.dir);
    try {
      await engine.loadDirectory();
      await engine.measureFiles();
    } catch (error) {
      await db.close();
      throw error;
    }
    return engine;
  }

  /** Builds the key directory from one scan of the stored keys and values. */
  private async loadDirectory(): Promise<void> {
    const keys: string[] = [];
    const sizes: number[] = [];
    const iterator = this.db.iterator({ gte: Buffer.from([DATA_PREFIX]), lt: Buffer.from([DATA_PREFIX + 1]) });
    try {
      for (;;) {
        const entries = await iterator.nextv(OPEN_SCAN_STEP);
        if (entries.length === 0) break;
        for (const [key, value] of entries) {
          keys.push(key.toString('latin1', 1));
          sizes.push(value.length);
        }
      }
    } finally {
      await iterator.close();
    }
    this.directory.load(keys, sizes);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    const name = keyString(key);
    const written = this.pending.get(name);
    if (written !== undefined) return written.value;
    // The directory knows every key: a miss costs no LevelDB read.
    return this.directory.has(name) ? this.db.getSync(storedKey(name)) : undefined;
  }

  /** LevelDB hands out a buffer of its own per read, so get's value is as good. */
  peek(key: Uint8Array): Uint8Array | undefined {
    return this.get(key);
  }

  /** Scans a snapshot of the key list, reading the newest values (a key deleted meanwhile is skipped). */
  range(options: RangeOptions): Iterable<[Uint8Array, Uint8Array]> {
    return this.scan(this.directory.snapshot(), this.pending, options);
  }

  write(ops: WriteOp[]): void {
    this.batch(() => {
      for (const op of ops) {
        if (op.type === 'put') this.put(keyString(op.key), Buffer.from(op.value));
        else this.delete(keyString(op.key));
      }
    });
  }

  private put(key: string, value: Buffer): void {
    const batch = this.openBatch!;
    this.remember(batch, key, this.directory.set(key, value.length));
    this.pending.set(key, { value, seq: this.writeSeq + 1 });
    batch.ops.push({ type: 'put', key: storedKey(key), value });
  }

  private delete(key: string): void {
    const batch = this.openBatch!;
    const size = this.directory.remove(key);
    if (size < 0) return;
    this.remember(batch, key, size);
    this.pending.set(key, { value: undefined, seq: this.writeSeq + 1 });
    batch.ops.push({ type: 'del', key: storedKey(key) });
  }

  /** Keeps what the batch's first write of `key` replaced (size -1: the key was absent). */
  private remember(batch: OpenBatch, key: string, size: number): void {
    batch.keys.push(key);
    if (!batch.undo.has(key)) batch.undo.set(key, { pending: this.pending.get(key), size });
  }

  batch<T>(fn: () => T, options?: BatchOptions): T {
    if (this.openBatch) return fn();
    if (this.failure) throw this.failure;
    const batch: OpenBatch = { ops: [], keys: [], undo: new Map() };
    this.openBatch = batch;
    let result: T;
    try {
      result = fn();
    } catch (error) {
      this.rollBack(batch);
      throw error;
    } finally {
      this.openBatch = undefined;
    }
    if (batch.ops.length > 0) {
      this.queue.push({ seq: ++this.writeSeq, ops: batch.ops, keys: batch.keys });
      this.queuedOps += batch.ops.length;
      // LevelDB's binding takes a batch only whole: a direct one is held until it has.
      if (this.queuedOps >= engineUncommittedOpsMax || options?.direct) this.commit();
    }
    return result;
  }

  get uncommittedOps(): number {
    return this.queuedOps;
  }

  /** Hands the queued writes to LevelDB as one batch (after the one running, if any). */
  commit(): void {
    if (this.queue.length === 0) return;
    this.commitAsked = true;
    this.flush();
  }

  private rollBack(batch: OpenBatch): void {
    for (const [key, { pending, size }] of batch.undo) {
      if (pending === undefined) this.pending.delete(key);
      else this.pending.set(key, pending);
      if (size < 0) this.directory.remove(key);
      else this.directory.set(key, size);
    }
  }

  /**
   * Writes the queued batches as one LevelDB batch if a commit or a sync asked for it, unless one
   * is running (its end starts the next).
   */
  private flush(): void {
    if (this.flushing || (!this.commitAsked && this.waiters.length === 0)) return;
    const writes = this.queue;
    const waiters = this.waiters;
    this.queue = [];
    this.queuedOps = 0;
    this.waiters = [];
    this.commitAsked = false;
    const ops = writes.length === 1 ? writes[0]!.ops : lastWriteOfEachKey(writes);
    const sync = waiters.length > 0;
    if (sync) ops.push({ type: 'put', key: SYNC_MARKER, value: Buffer.alloc(0) });
    for (const op of ops) this.handedBytes += op.key.length + (op.type === 'put' ? op.value.length : 0);
    this.flushing = true;
    this.writeBatch(ops, sync).then(
      () => {
        this.flushing = false;
        this.forget(writes);
        for (const waiter of waiters) waiter.resolve();
        this.flush();
      },
      (error: unknown) => {
        this.flushing = false;
        this.failure ??= new LichenError(ErrorCode.Internal, `leveldb write failed in ${this.dir}: ${String(error)}`);
        for (const waiter of [...waiters, ...this.waiters.splice(0)]) waiter.reject(this.failure);
      },
    );
  }

  /**
   * One LevelDB batch, built op by op (abstract-level's chained batch): the array form,
   * db.batch(ops), checks, clones and re-encodes every op first. Measured here with batches of
   * 1,000 puts of 300 bytes (process CPU, LevelDB's threads included, load 23-27): 22 µs per op
   * for db.batch(ops), 3.5-6 µs chained.
   */
  private writeBatch(ops: LevelOp[], sync: boolean): Promise<void> {
    const batch = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
    return batch.write({ sync });
  }

  /** Drops the pending values that LevelDB now holds (unless a later write replaced them). */
  private forget(writes: { seq: number; keys: string[] }[]): void {
    for (const { seq, keys } of writes) {
      for (const key of keys) if (this.pending.get(key)?.seq === seq) this.pending.delete(key);
    }
  }

  snapshot(): ReadView {
    return new LevelReadView(this.db, this.db.snapshot(), this.directory.snapshot(), new Map(this.pending));
  }

  /** Resolves when every write so far is in LevelDB and on disk (a synced batch after them). */
  sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const synced = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.flush();
    return synced;
  }

  /**
   * In use: the bytes of every key and value held (LevelDB has no free list to count; overwritten
   * and deleted data stays in its files until compaction merges them away). Size: the files, or
   * the data in use when LevelDB's block compression makes the files smaller than it.
   *
   * The files are measured in the background, not on each call: every group of a process calls
   * this on every tick, and a directory holds a file per 2 MiB of data. Between two measurements
   * the size grows by what was handed to LevelDB (its log grows by that much); a new measurement
   * starts after SPACE_REMEASURE_BYTES handed over, or SPACE_REMEASURE_CALLS calls (compactions
   * shrink the files without a write of ours).
   */
  space(): EngineSpace {
    this.spaceCalls++;
    if (!this.measuring && (this.handedBytes >= SPACE_REMEASURE_BYTES || this.spaceCalls >= SPACE_REMEASURE_CALLS)) void this.measureFiles();
    const inUseBytes = this.directory.bytes;
    return { sizeBytes: Math.max(this.filesBytes + this.handedBytes, inUseBytes), inUseBytes };
  }

  /** Measures the LevelDB files; what is handed to LevelDB meanwhile counts on top of the result. */
  private async measureFiles(): Promise<void> {
    this.measuring = true;
    this.spaceCalls = 0;
    const handedBefore = this.handedBytes;
    try {
      // A file compaction removes between readdir and stat counts 0.
      const sizes = await Promise.all((await readdir(this.dir)).map((name) => stat(join(this.dir, name)).then((s) => s.size, () => 0)));
      this.filesBytes = sizes.reduce((sum, size) => sum + size, 0);
      this.handedBytes -= handedBefore;
    } catch {
      // The directory is being closed or removed: keep the last measurement.
    } finally {
      this.measuring = false;
    }
  }

  export(chunkBytes?: number): Iterable<Uint8Array> {
    return exportView(() => this.snapshot(), chunkBytes);
  }

  /** Replaces the key space in one batch (one LevelDB write): a bad chunk aborts it and nothing changes. */
  import(chunks: Iterable<Uint8Array>): void {
    this.batch(
      () => {
        for (const key of this.directory.snapshot().keys('', undefined, false)) this.delete(key);
        for (const chunk of chunks) {
          for (const [key, value] of decodeChunk(chunk)) this.put(keyString(key), Buffer.from(value));
        }
      },
      { direct: true },
    );
  }

  /** Closes without waiting (the Engine interface is synchronous); closeAsync flushes first. */
  close(): void {
    void this.closeAsync();
  }

  /** Writes what is queued (synced), then closes the database. */
  async closeAsync(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.failure) await this.sync().catch(() => {});
    await this.db.close();
  }
}

/** Whether `dir` holds a LevelDB database (its CURRENT file names the live manifest). */
export const holdsLevelDb = (dir: string): boolean => existsSync(join(dir, 'CURRENT'));
