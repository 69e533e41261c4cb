// The keys one user may read (or write), merged from all of its roles' permissions into sorted,
// disjoint, non-touching intervals, so a check is one binary search however many roles and
// permissions the user has (etcd keeps an interval tree per user for the same reason).
//
// The merged intervals are packed into typed arrays (what a check reads in one), and a check compares the request's key
// bytes with them in place: no string is made per check, and the search touches a few cache lines
// of one contiguous array rather than a dozen strings spread over the heap. Members check a write
// when they apply it, between much other work, so those lines are seldom in cache: a search over
// 10,000 ranges held as strings took 6–11 µs per check inside a member under 64 clients (CPU
// profiles, 2026-12-07) against 0.7 µs in a loop. Each start's first 8 bytes after the prefix all
// starts share are held as two 32-bit words, so the search compares integers and reads a start's
// full bytes only where those words tie.
//
// Intervals are built from latin1 strings of the key bytes (mvcc/bytes.ts keyString), so string
// order is byte order, and packed back into those bytes.

/** A half-open key interval [start, end); `end` undefined means "every key from start on". */
export interface KeyInterval {
  start: string;
  end: string | undefined;
}

/** The interval etcd means by a key and range end: [key] alone, [key, end), or [key, ∞) for "\0". */
export function intervalOf(key: string, rangeEnd: string): KeyInterval {
  if (rangeEnd === '') return { start: key, end: `${key}\0` };
  if (rangeEnd === '\0') return { start: key, end: undefined };
  return { start: key, end: rangeEnd };
}

const isEmpty = (interval: KeyInterval): boolean => interval.end !== undefined && interval.end <= interval.start;

/** Int32 words per interval in `entries`: its start's and its end's bytes [common, common + 8), as two words each. */
const ENTRY_WORDS = 4;
/** Flipping the sign bit maps unsigned 32-bit order onto the signed order Int32Array values compare in. */
const SIGN_FLIP = 0x80000000;
/** The words of an end above every key that starts with the common prefix (or of no end): the largest. */
const WORD_MAX = 0x7fffffff;
/** Bytes after the common prefix that an entry's two words hold. */
const WORD_BYTES = 8;
/** In `tails`: the bound has more bytes after the common prefix than its words hold (or is no end, or leaves the prefix). */
const TAIL_LONG = 255;
/**
 * Intervals per fence: the search first finds a key's block among every FENCE_SPAN-th start (a
 * small array that stays in cache), then searches that block (a few lines of `entries`). A plain
 * binary search over 10,000 intervals reads about 14 lines spread over 160 KiB, 8–10 of them
 * seldom in cache in a busy member; with fences of 64 a check after reading 8 MiB of other memory
 * took 1.1 µs against 1.6 µs (measured 2026-12-07 in a loop over random keys).
 */
const FENCE_SPAN = 64;

/** Bytes [from, from + 4) of `bytes` (zero past `end`) as a big-endian word in signed order. */
function wordAt(bytes: Uint8Array, from: number, end: number): number {
  const b0 = from < end ? bytes[from]! : 0;
  const b1 = from + 1 < end ? bytes[from + 1]! : 0;
  const b2 = from + 2 < end ? bytes[from + 2]! : 0;
  const b3 = from + 3 < end ? bytes[from + 3]! : 0;
  return ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) ^ SIGN_FLIP;
}

/** Byte order of bytes[start, end) against `key`, both known equal before position `from`. */
function compareTail(bytes: Uint8Array, start: number, end: number, key: Uint8Array, from: number): number {
  const length = end - start;
  const shorter = Math.min(length, key.length);
  for (let i = from; i < shorter; i++) {
    const d = bytes[start + i]! - key[i]!;
    if (d !== 0) return d;
  }
  return length - key.length;
}

export class KeySet {
  private constructor(
    /**
     * Everything a check reads, in one array (one object, its data on adjacent lines; four typed
     * arrays were four more objects, each a cold line or two before its data): from 0, the
     * common prefix's bytes, four per word (byte i in bits 8(i mod 4)..); from fencesAt, the
     * words of every FENCE_SPAN-th interval's start (intervals 0, FENCE_SPAN, ...), two per
     * fence; from entriesAt, ENTRY_WORDS per interval: its start's bytes [common, common + 8)
     * after the prefix as two words (zero-padded, see wordAt), then its end's, or WORD_MAX twice
     * for no end or an end that does not start with the common prefix (it is then above every
     * key that does); equal words leave the order to the full bytes, unequal ones decide it,
     * padding included; from tailsAt, per interval its start's and then its end's length after
     * the common prefix when its words hold all of it (at most WORD_BYTES), else TAIL_LONG, four
     * per word like the prefix: where the words tie with a key's, that length decides the order
     * without reading the full bytes (see startTieAtOrBefore).
     */
    private readonly words: Int32Array,
    /** Interval i's start is bytes[offsets[2i], offsets[2i+1]), its end bytes[offsets[2i+1], offsets[2i+2]); an empty end is "no end" (a real end is never empty: it is above its start). */
    private readonly bytes: Uint8Array,
    private readonly offsets: Uint32Array,
    /** Intervals. */
    private readonly count: number,
    /** The length of the prefix every start shares (with no intervals, 0). */
    private readonly common: number,
    private readonly fencesAt: number,
    private readonly entriesAt: number,
    private readonly tailsAt: number,
  ) {}

  static readonly EMPTY = KeySet.of([]);

  static of(intervals: readonly KeyInterval[]): KeySet {
    const sorted = intervals.filter((i) => !isEmpty(i)).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const starts: string[] = [];
    const ends: (string | undefined)[] = [];
    for (const { start, end } of sorted) {
      const last = ends.length - 1;
      // Overlapping or touching ([a, b) then [b, c)) intervals merge, as etcd treats them as contiguous.
      if (last >= 0 && (ends[last] === undefined || start <= ends[last]!)) {
        if (ends[last] !== undefined && (end === undefined || end > ends[last]!)) ends[last] = end;
        continue;
      }
      starts.push(start);
      ends.push(end);
    }
    return KeySet.pack(starts, ends);
  }

  private static pack(starts: readonly string[], ends: readonly (string | undefined)[]): KeySet {
    const count = starts.length;
    let total = 0;
    for (let i = 0; i < count; i++) total += starts[i]!.length + (ends[i]?.length ?? 0);
    const bytes = new Uint8Array(total);
    const writer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const offsets = new Uint32Array(2 * count + 1);
    let at = 0;
    for (let i = 0; i < count; i++) {
      offsets[2 * i] = at;
      at += writer.write(starts[i]!, at, 'latin1');
      offsets[2 * i + 1] = at;
      at += writer.write(ends[i] ?? '', at, 'latin1');
    }
    offsets[2 * count] = at;
    // Sorted strings share the prefix their first and last share.
    let common = 0;
    if (count > 0) {
      const first = starts[0]!;
      const last = starts[count - 1]!;
      while (common < first.length && common < last.length && first.charCodeAt(common) === last.charCodeAt(common)) common++;
    }
    // Fences on 8-byte and entries on 16-byte boundaries: an entry never straddles two lines.
    const fencesAt = align(Math.ceil(common / 4), 2);
    const entriesAt = align(fencesAt + 2 * Math.ceil(count / FENCE_SPAN), ENTRY_WORDS);
    const tailsAt = entriesAt + ENTRY_WORDS * count;
    const words = new Int32Array(tailsAt + Math.ceil((2 * count) / 4));
    for (let i = 0; i < common; i++) words[i >> 2]! |= bytes[i]! << ((i & 3) << 3);
    const tailOf = (length: number): number => (length <= WORD_BYTES ? length : TAIL_LONG);
    const setTail = (j: number, tail: number): void => {
      words[tailsAt + (j >> 2)]! |= tail << ((j & 3) << 3);
    };
    for (let i = 0; i < count; i++) {
      const startFrom = offsets[2 * i]!;
      const endFrom = offsets[2 * i + 1]!;
      const endTo = offsets[2 * i + 2]!;
      const entry = entriesAt + ENTRY_WORDS * i;
      words[entry] = wordAt(bytes, startFrom + common, endFrom);
      words[entry + 1] = wordAt(bytes, startFrom + common + 4, endFrom);
      const endShares = endTo > endFrom && compareTail(bytes, endFrom, Math.min(endTo, endFrom + common), bytes.subarray(startFrom, startFrom + common), 0) === 0;
      words[entry + 2] = endShares ? wordAt(bytes, endFrom + common, endTo) : WORD_MAX;
      words[entry + 3] = endShares ? wordAt(bytes, endFrom + common + 4, endTo) : WORD_MAX;
      setTail(2 * i, tailOf(endFrom - startFrom - common));
      setTail(2 * i + 1, endShares ? tailOf(endTo - endFrom - common) : TAIL_LONG);
      if (i % FENCE_SPAN === 0) {
        words[fencesAt + 2 * (i / FENCE_SPAN)] = words[entry]!;
        words[fencesAt + 2 * (i / FENCE_SPAN) + 1] = words[entry + 1]!;
      }
    }
    return new KeySet(words, bytes, offsets, count, common, fencesAt, entriesAt, tailsAt);
  }

  get size(): number {
    return this.count;
  }

  hasKey(key: Uint8Array): boolean {
    const count = this.count;
    if (count === 0) return false;
    const order = this.orderToCommon(key);
    if (order < 0) return false;
    if (order > 0) return this.endAbove(count - 1, key);
    const common = this.common;
    const high = wordAt(key, common, key.length);
    const low = wordAt(key, common + 4, key.length);
    const at = this.lastStartAtOrBefore(key, high, low);
    if (at < 0) return false;
    // The interval's end words sit beside its start's, on a line the search has read.
    const words = this.words;
    const entry = this.entriesAt + ENTRY_WORDS * at;
    const endHigh = words[entry + 2]!;
    if (endHigh !== high) return endHigh > high;
    const endLow = words[entry + 3]!;
    if (endLow !== low) return endLow > low;
    const tail = this.tail(2 * at + 1);
    // Equal words, and the end is all in them: the end is above the key when it is longer.
    if (tail !== TAIL_LONG) return tail > key.length - common;
    return this.endAbove(at, key);
  }

  /**
   * Whether every key etcd means by `key` and `rangeEnd` is in the set: the key alone (an empty
   * range end), every key from it on ("\0"), or [key, rangeEnd); an empty or inverted range
   * checks `key` alone (etcd lets it through when that key is permitted).
   */
  covers(key: Uint8Array, rangeEnd: Uint8Array): boolean {
    if (rangeEnd.length === 0) return this.hasKey(key);
    const open = rangeEnd.length === 1 && rangeEnd[0] === 0;
    if (!open && compareTail(rangeEnd, 0, rangeEnd.length, key, 0) <= 0) return this.hasKey(key);
    const count = this.count;
    if (count === 0) return false;
    const order = this.orderToCommon(key);
    if (order < 0) return false;
    const common = this.common;
    const at = order > 0 ? count - 1 : this.lastStartAtOrBefore(key, wordAt(key, common, key.length), wordAt(key, common + 4, key.length));
    if (at < 0) return false;
    const endFrom = this.offsets[2 * at + 1]!;
    const endTo = this.offsets[2 * at + 2]!;
    if (endFrom === endTo) return true;
    // The interval holds key (its end is above it) and reaches rangeEnd.
    return !open && compareTail(this.bytes, endFrom, endTo, key, 0) > 0 && compareTail(this.bytes, endFrom, endTo, rangeEnd, 0) >= 0;
  }

  /** Tail j (2i: interval i's start, 2i + 1: its end). */
  private tail(j: number): number {
    return (this.words[this.tailsAt + (j >> 2)]! >>> ((j & 3) << 3)) & 0xff;
  }

  /** Whether interval `at`'s end is above `key` (or it has none), from the full bytes. */
  private endAbove(at: number, key: Uint8Array): boolean {
    const endFrom = this.offsets[2 * at + 1]!;
    const endTo = this.offsets[2 * at + 2]!;
    return endFrom === endTo || compareTail(this.bytes, endFrom, endTo, key, 0) > 0;
  }

  /** -1 when `key` is below the common prefix (so below every start), 1 when above it (so above every start), 0 when it starts with it. */
  private orderToCommon(key: Uint8Array): number {
    const words = this.words;
    for (let i = 0; i < this.common; i++) {
      if (i >= key.length) return -1;
      const d = ((words[i >> 2]! >>> ((i & 3) << 3)) & 0xff) - key[i]!;
      if (d !== 0) return d > 0 ? -1 : 1;
    }
    return 0;
  }

  /** The last interval whose start is at or before `key` (which starts with the common prefix; `high` and `low` are its next words), or -1. */
  private lastStartAtOrBefore(key: Uint8Array, high: number, low: number): number {
    const count = this.count;
    // The last fence whose words are at or below the key's.
    const words = this.words;
    const fencesAt = this.fencesAt;
    let from = 0;
    let to = Math.ceil(count / FENCE_SPAN) - 1;
    let fence = -1;
    while (from <= to) {
      const mid = (from + to) >>> 1;
      const fenceHigh = words[fencesAt + 2 * mid]!;
      if (fenceHigh < high || (fenceHigh === high && words[fencesAt + 2 * mid + 1]! <= low)) {
        fence = mid;
        from = mid + 1;
      } else {
        to = mid - 1;
      }
    }
    // Every start's words are above the key's: so is every start.
    if (fence < 0) return -1;
    const blockEnd = Math.min(count, (fence + 1) * FENCE_SPAN) - 1;
    // Words equal to the key's leave that fence's order to its full bytes, and earlier fences may
    // tie too (starts that agree in all the bytes their words hold): search everything up to here.
    if (words[fencesAt + 2 * fence] === high && words[fencesAt + 2 * fence + 1] === low) return this.searchStarts(key, high, low, 0, blockEnd, -1);
    // Fence `fence` is below the key and the next one above: the answer is in its block.
    return this.searchStarts(key, high, low, fence * FENCE_SPAN + 1, blockEnd, fence * FENCE_SPAN);
  }

  /** Binary search of intervals [from, to] for the last start at or before `key`; `found` if none is. */
  private searchStarts(key: Uint8Array, high: number, low: number, from: number, to: number, found: number): number {
    const words = this.words;
    const entriesAt = this.entriesAt;
    while (from <= to) {
      const mid = (from + to) >>> 1;
      const startHigh = words[entriesAt + ENTRY_WORDS * mid]!;
      const startLow = words[entriesAt + ENTRY_WORDS * mid + 1]!;
      const atOrBefore =
        startHigh !== high ? startHigh < high
        : startLow !== low ? startLow < low
        : this.startTieAtOrBefore(mid, key);
      if (atOrBefore) {
        found = mid;
        from = mid + 1;
      } else {
        to = mid - 1;
      }
    }
    return found;
  }

  /** Whether interval `at`'s start, whose words equal `key`'s, is at or before it. */
  private startTieAtOrBefore(at: number, key: Uint8Array): boolean {
    const tail = this.tail(2 * at);
    // The start is all in its words: the key (equal up to there) is at or after it unless shorter.
    if (tail !== TAIL_LONG) return key.length - this.common >= tail;
    return compareTail(this.bytes, this.offsets[2 * at]!, this.offsets[2 * at + 1]!, key, this.common) <= 0;
  }
}

/** `n` rounded up to a multiple of `to`. */
function align(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
