// Revision records that ranges read, kept in memory so that the next range over the same keys
// reads them from here instead of from the engine.
//
// Why: a range of 10,000 keys read each record with its own engine lookup (lmdb-js getBinaryFast:
// a call into the native module, a B-tree descent from the root, and three copies of the key on
// the way down), and those lookups and their wrappers were 40-45% of a member's busy CPU serving
// such ranges (profiles of range-10000, 2026-12-07). etcd reads bbolt's pages in place through
// mmap; a JS engine pays a native call per record, so the records read most stay on this side.
//
// Why a record never goes stale here: a revision's record is written once, by the apply that
// took that revision, and never rewritten (revisions only grow; compaction deletes old records,
// and the key index then never asks for them again). So an entry is keyed by its revision alone,
// and no write has to find and drop it. A store's part is cleared when the store reloads from its
// engine (a snapshot installed), the one time records appear that this store did not write.
//
// Memory is bounded: one budget (recordCacheBytesMax) for the whole process, shared by the parts
// of its stores (one per group). The records are copied into slabs of SLAB_BYTES, the oldest slab
// is dropped when the budget is full (first in, first out: no bookkeeping on a hit), and each
// entry is also charged ENTRY_OVERHEAD_BYTES for its map entry. A range admits at most a quarter
// of the budget, so one range larger than the cache does not push out everything else and then
// itself (a scan of 1M keys through a cache of a few thousand records would hit nothing).
import { assert } from '../errors.js';

/** The records of this cache are copied into slabs of this size; a slab is dropped whole. */
const SLAB_BYTES = 256 * 1024;
/** Records larger than this are not cached (they are few, and one would leave a slab mostly empty). */
const RECORD_BYTES_MAX = SLAB_BYTES / 8;
/** What a cached record costs besides its bytes: its map entry (key and value numbers, hash bucket). */
const ENTRY_OVERHEAD_BYTES = 64;
/** The length prefix in front of each record in its slab. */
const LENGTH_BYTES = 4;
/** Sub revisions per main revision in an entry's key (main * SUBS + sub); higher subs are not cached. */
const SUBS = 1024;
/** The highest main revision an entry's key can hold as a safe integer. */
const MAIN_MAX = Math.floor(Number.MAX_SAFE_INTEGER / SUBS);

class Slab {
  /** Where the next record goes. */
  used = 0;
  /** Bytes charged against the budget: records, their length prefixes and their entries. */
  charged = 0;
  /** The entries written into this slab, as (part, key) pairs, so dropping it drops them. */
  readonly parts: RecordCachePart[] = [];
  readonly keys: number[] = [];
  constructor(
    readonly seq: number,
    readonly bytes: Buffer,
  ) {}
}

export class RecordCache {
  /** The live slabs, oldest first; the last one is being filled. */
  private readonly slabs: Slab[] = [];
  private charged = 0;
  private nextSeq = 0;
  /** The memory of the last slab dropped, for the next one (so a full cache allocates no more). */
  private spare: Buffer | undefined;

  constructor(readonly bytesMax: number) {
    assert(bytesMax >= 0, 'record cache: a negative budget');
  }

  /** A store's own part: its entries, under this cache's budget. */
  part(): RecordCachePart {
    return new RecordCachePart(this);
  }

  /** What one range may add: the rest of the budget stays for what other ranges read. */
  get rangeAdmitBytesMax(): number {
    return this.bytesMax / 4;
  }

  /** Bytes charged now (whole slabs): at most bytesMax. */
  get chargedBytes(): number {
    return this.charged;
  }

  /** The slab holding position `at` (from add), or undefined once it was dropped. */
  slabAt(at: number): Slab | undefined {
    const first = this.slabs[0];
    if (first === undefined) return undefined;
    return this.slabs[Math.floor(at / SLAB_BYTES) - first.seq];
  }

  /** Copies `record` in for `part`'s `key`; returns its position, or -1 when it is not kept. */
  add(part: RecordCachePart, key: number, record: Uint8Array): number {
    const cost = LENGTH_BYTES + record.length + ENTRY_OVERHEAD_BYTES;
    if (record.length > RECORD_BYTES_MAX || cost > this.bytesMax) return -1;
    let slab = this.slabs[this.slabs.length - 1];
    if (slab === undefined || slab.used + LENGTH_BYTES + record.length > SLAB_BYTES) {
      // A new slab is charged whole as it is made (its memory is allocated whole).
      while (this.slabs.length > 0 && this.charged + SLAB_BYTES > this.bytesMax) this.drop();
      if (this.charged + SLAB_BYTES > this.bytesMax) return -1;
      slab = new Slab(this.nextSeq++, this.spare ?? Buffer.allocUnsafeSlow(SLAB_BYTES));
      this.spare = undefined;
      this.slabs.push(slab);
      this.charged += SLAB_BYTES;
    }
    const at = slab.used;
    slab.bytes.writeUInt32LE(record.length, at);
    slab.bytes.set(record, at + LENGTH_BYTES);
    slab.used = at + LENGTH_BYTES + record.length;
    // The entry's overhead is counted within the slab's share: a slab of many small records
    // closes early instead of letting its entries grow past the budget.
    slab.charged += cost;
    if (slab.charged > SLAB_BYTES) slab.used = SLAB_BYTES;
    slab.parts.push(part);
    slab.keys.push(key);
    return slab.seq * SLAB_BYTES + at;
  }

  /** Drops the oldest slab and its entries. */
  private drop(): void {
    const slab = this.slabs.shift()!;
    this.charged -= SLAB_BYTES;
    this.spare = slab.bytes;
    for (let i = 0; i < slab.keys.length; i++) slab.parts[i]!.forget(slab.keys[i]!, slab.seq);
  }
}

/**
 * One store's entries in a RecordCache. lookup() leaves the record at [start, end) of `bytes`
 * (a slab the cache reuses once the record is dropped: valid until the next add to the cache).
 */
export class RecordCachePart {
  /** Entry key (main * SUBS + sub) to the record's position in the cache. */
  private readonly entries = new Map<number, number>();
  bytes: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;

  constructor(private readonly cache: RecordCache) {}

  get size(): number {
    return this.entries.size;
  }

  /** What one range may add (see RecordCache). */
  get rangeAdmitBytesMax(): number {
    return this.cache.rangeAdmitBytesMax;
  }

  /** Whether the record of (main, sub) is here; if so it is at [start, end) of `bytes`. */
  lookup(main: number, sub: number): boolean {
    if (sub >= SUBS || main > MAIN_MAX) return false;
    const at = this.entries.get(main * SUBS + sub);
    if (at === undefined) return false;
    const slab = this.cache.slabAt(at)!;
    const offset = at - slab.seq * SLAB_BYTES;
    this.bytes = slab.bytes;
    this.start = offset + LENGTH_BYTES;
    this.end = this.start + slab.bytes.readUInt32LE(offset);
    return true;
  }

  /** Keeps a copy of the record of (main, sub); returns the bytes it was charged (0: not kept). */
  add(main: number, sub: number, record: Uint8Array): number {
    if (sub >= SUBS || main > MAIN_MAX) return 0;
    const key = main * SUBS + sub;
    if (this.entries.has(key)) return 0;
    const at = this.cache.add(this, key, record);
    if (at < 0) return 0;
    this.entries.set(key, at);
    return LENGTH_BYTES + record.length + ENTRY_OVERHEAD_BYTES;
  }

  /** Forgets every entry (the store reloaded: its records may be others now). */
  clear(): void {
    this.entries.clear();
  }

  /** Drops `key` when its entry lies in slab `seq` (a newer entry of the same key stays). */
  forget(key: number, seq: number): void {
    const at = this.entries.get(key);
    if (at !== undefined && Math.floor(at / SLAB_BYTES) === seq) this.entries.delete(key);
  }
}
