// The storage engine interface. The MVCC layer is the only user; it sees ordered byte keys.
// All calls are synchronous: the apply loop runs one command at a time and must read its own
// writes. Durability comes from the WAL (the applied raft index is written in the same batch as
// the data it covers, so after a crash the server replays what the engine does not yet hold).
// So an engine may also keep finished batches in memory and commit them to its storage later,
// many at once, as etcd's backend commits every 100 ms or 10,000 writes (see commit()).

export type WriteOp =
  | { type: 'put'; key: Uint8Array; value: Uint8Array }
  | { type: 'del'; key: Uint8Array };

export interface RangeOptions {
  /** Inclusive lower bound. */
  start: Uint8Array;
  /** Exclusive upper bound; undefined means "to the end of the key space". */
  end?: Uint8Array;
  /** Iterate from the highest key down. */
  reverse?: boolean;
  /** Stop after this many pairs; undefined means no limit. */
  limit?: number;
}

/** A consistent read view: later writes are invisible to it. Close it when done. */
export interface ReadView {
  /** Does not keep `key` after it returns: callers may reuse its buffer (see lookup-keys.ts). */
  get(key: Uint8Array): Uint8Array | undefined;
  /**
   * get's value, but possibly in a buffer the engine reuses (lmdb: its read buffer), so valid only
   * until the next read of this engine: for callers that copy or parse the bytes at once. A range of
   * 10,000 keys encoded as it reads saves a copy and an object per key. Keeps no key, as get.
   */
  peek(key: Uint8Array): Uint8Array | undefined;
  range(options: RangeOptions): Iterable<[key: Uint8Array, value: Uint8Array]>;
  close(): void;
}

export interface Engine extends ReadView {
  readonly kind: 'lmdb' | 'leveldb' | 'memory';
  /** Applies all ops atomically, in order. */
  write(ops: WriteOp[]): void;
  /**
   * Runs `fn` so that every write it makes is committed together, as one write: reads inside
   * see them, and if `fn` throws none of them is kept. Nested calls join the outer one. (The
   * server applies all committed entries of a Ready in one batch: an LMDB commit per entry was
   * about a third of the cost of applying it.) A finished batch is either committed to storage
   * at once (uncommittedOps stays 0) or kept, visible to reads, until the next commit().
   */
  batch<T>(fn: () => T, options?: BatchOptions): T;
  /** The ops of finished batches not yet committed to storage (a process crash loses them). */
  readonly uncommittedOps: number;
  /**
   * Commits every finished batch to storage now, all in one transaction, in their order (leveldb
   * hands them to LevelDB as one batch, after the one it is writing if any).
   */
  commit(): void;
  /** A consistent read view as of now. */
  snapshot(): ReadView;
  /** Resolves when every write so far is committed and on stable storage (call before releasing WAL entries). */
  sync(): Promise<void>;
  /** How much space the engine takes and how much of it holds data (see EngineSpace). */
  space(): EngineSpace;
  /** The whole key space as a stream of chunks, from a consistent view (see exportChunks). */
  export(chunkBytes?: number): Iterable<Uint8Array>;
  /** Replaces the whole key space with an export, atomically. */
  import(chunks: Iterable<Uint8Array>): void;
}

export interface BatchOptions {
  /**
   * Commit the batch as it ends, with the writes waiting before it, and hold none of its writes
   * in memory where the engine can (lmdb writes them straight into its transaction): for large
   * batches, such as replacing a group's partition with a snapshot.
   */
  direct?: boolean;
}

export type EngineKind = Engine['kind'];

/**
 * An engine's size, as etcd's Status reports its backend's: sizeBytes is what the data file
 * occupies (etcd's db_size), inUseBytes the part of it that holds live pages (db_size_in_use);
 * the rest is free space the engine reuses for new writes. The space quota counts inUseBytes.
 */
export interface EngineSpace {
  sizeBytes: number;
  inUseBytes: number;
}
