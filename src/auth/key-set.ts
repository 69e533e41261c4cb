// The keys one user may read (or write), merged from all of its roles' permissions into sorted,
// disjoint, non-touching intervals, so a check is one binary search however many roles and
// permissions the user has (etcd keeps an interval tree per user for the same reason).
//
// Keys are latin1 strings of their bytes (mvcc/bytes.ts keyString), so string order is byte order.

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

export class KeySet {
  private constructor(
    private readonly starts: readonly string[],
    private readonly ends: readonly (string | undefined)[],
  ) {}

  static readonly EMPTY = new KeySet([], []);

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
    return new KeySet(starts, ends);
  }

  get size(): number {
    return this.starts.length;
  }

  hasKey(key: string): boolean {
    const at = this.lastStartAtOrBefore(key);
    if (at < 0) return false;
    const end = this.ends[at];
    return end === undefined || key < end;
  }

  /** Whether every key of [start, end) is in the set; an empty or inverted range checks `start` alone. */
  covers(interval: KeyInterval): boolean {
    if (isEmpty(interval)) return this.hasKey(interval.start);
    const at = this.lastStartAtOrBefore(interval.start);
    if (at < 0) return false;
    const end = this.ends[at];
    if (end === undefined) return true;
    return interval.start < end && interval.end !== undefined && interval.end <= end;
  }

  private lastStartAtOrBefore(key: string): number {
    let low = 0;
    let high = this.starts.length - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.starts[mid]! <= key) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }
}
