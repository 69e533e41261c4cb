// One raft group's partition of a process's engine: every key the group's state machine writes is
// stored behind the group's prefix (its id as 4 big-endian bytes), so the groups of a process share
// one engine (one lmdb environment, one sync) and never see each other's keys. The partition is an
// Engine itself: MVCC and auth run over it unchanged, its export holds only the group's keys
// (without the prefix, so a snapshot installs into any group of any member) and its import
// replaces only them.
//
// Keys behind prefix 0 (GROUP_ZERO) belong to no group: the process keeps its own records there
// (src/replica/process-storage.ts). With the prefix, the longest key a group may write is 4 bytes
// shorter than the engine's (lmdbKeyBytesMax); engine keys are revisions and ids, far below it.
import { assert } from '../errors.js';
import { decodeChunk, exportView } from './codec.js';
import { LookupKeys } from './lookup-keys.js';
import type { BatchOptions, Engine, EngineSpace, RangeOptions, ReadView, WriteOp } from './types.js';

export const GROUP_PREFIX_BYTES = 4;
/** Old keys deleted per engine write when an import replaces a partition. */
const IMPORT_DELETES_PER_WRITE = 10_000;
/** The prefix of the process's own keys, which no group has. */
export const GROUP_ZERO = 0;

export function groupPrefix(groupId: number): Buffer {
  assert(Number.isInteger(groupId) && groupId >= 0 && groupId <= 0xffff_ffff, `engine: group id ${groupId} is not a 32-bit integer`);
  const prefix = Buffer.allocUnsafe(GROUP_PREFIX_BYTES);
  prefix.writeUInt32BE(groupId);
  return prefix;
}

class ScopedView implements ReadView {
  private readonly lookupKeys = new LookupKeys();

  constructor(
    protected readonly inner: ReadView,
    protected readonly prefix: Buffer,
    /** The first key after the partition; undefined for the last group (to the end of the key space). */
    protected readonly end: Buffer | undefined,
  ) {}

  /** The partition's form of `key`, written into `stored` (4 + key.length bytes; a new buffer unless given). */
  protected key(key: Uint8Array, stored: Buffer = Buffer.allocUnsafe(GROUP_PREFIX_BYTES + key.length)): Buffer {
    this.prefix.copy(stored, 0);
    stored.set(key, GROUP_PREFIX_BYTES);
    return stored;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.inner.get(this.key(key, this.lookupKeys.of(GROUP_PREFIX_BYTES + key.length)));
  }

  peek(key: Uint8Array): Uint8Array | undefined {
    return this.inner.peek(this.key(key, this.lookupKeys.of(GROUP_PREFIX_BYTES + key.length)));
  }

  *range({ start, end, reverse, limit }: RangeOptions): Iterable<[Uint8Array, Uint8Array]> {
    const options: RangeOptions = { start: this.key(start) };
    const upper = end === undefined ? this.end : this.key(end);
    if (upper !== undefined) options.end = upper;
    if (reverse !== undefined) options.reverse = reverse;
    if (limit !== undefined) options.limit = limit;
    for (const [key, value] of this.inner.range(options)) yield [key.subarray(GROUP_PREFIX_BYTES), value];
  }

  close(): void {
    this.inner.close();
  }
}

export class ScopedEngine extends ScopedView implements Engine {
  constructor(
    private readonly engine: Engine,
    readonly groupId: number,
  ) {
    const prefix = groupPrefix(groupId);
    super(engine, prefix, groupId === 0xffff_ffff ? undefined : groupPrefix(groupId + 1));
  }

  get kind(): Engine['kind'] {
    return this.engine.kind;
  }

  write(ops: WriteOp[]): void {
    this.engine.write(ops.map((op) => (op.type === 'put' ? { type: 'put', key: this.key(op.key), value: op.value } : { type: 'del', key: this.key(op.key) })));
  }

  batch<T>(fn: () => T, options?: BatchOptions): T {
    return this.engine.batch(fn, options);
  }

  snapshot(): ReadView {
    return new ScopedView(this.engine.snapshot(), this.prefix, this.end);
  }

  /** The whole engine's: its commits hold every group's writes. */
  get uncommittedOps(): number {
    return this.engine.uncommittedOps;
  }

  commit(): void {
    this.engine.commit();
  }

  sync(): Promise<void> {
    return this.engine.sync();
  }

  /** The whole engine's: its file is shared, and the space quota is the process's disk. */
  space(): EngineSpace {
    return this.engine.space();
  }

  export(chunkBytes?: number): Iterable<Uint8Array> {
    return exportView(() => this.snapshot(), chunkBytes);
  }

  /** Replaces the partition's keys in one engine write: a bad chunk aborts it and nothing changes. */
  import(chunks: Iterable<Uint8Array>): void {
    // Direct: a partition may be large, and lmdb then holds none of it in memory.
    this.engine.batch(
      () => {
        // A slice of the old keys at a time (the batch sees its own deletes), so memory stays bounded.
        for (;;) {
          const old = [...this.range({ start: new Uint8Array(0), limit: IMPORT_DELETES_PER_WRITE })];
          if (old.length === 0) break;
          this.write(old.map(([key]): WriteOp => ({ type: 'del', key: Uint8Array.from(key) })));
        }
        for (const chunk of chunks) this.write([...decodeChunk(chunk)].map(([key, value]): WriteOp => ({ type: 'put', key, value })));
      },
      { direct: true },
    );
  }

  /** The engine is the process's: it stays open for the other groups (ProcessStorage closes it). */
  override close(): void {}
}
