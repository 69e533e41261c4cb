// Writes an engine holds in memory until it commits them to its storage (the lmdb engine: see
// LmdbEngine.commit), and the scan that lays them over the storage's own pairs. Keys are the
// engine's stored keys; the map is keyed by their Latin-1 text, whose order is the bytes' order.

/** A write not committed yet: the value, or undefined for a delete. */
export interface UncommittedWrite {
  stored: Buffer;
  value: Buffer | undefined;
}

export type UncommittedWrites = Map<string, UncommittedWrite>;

export const storedId = (stored: Buffer): string => stored.toString('latin1');

/**
 * The pairs of `committed` (stored keys in [low, high), ascending, or descending when `reverse`)
 * with the uncommitted writes in the same range laid over them: a write replaces its key's pair,
 * a delete hides it, a new key comes in its place in the order.
 */
export function* overlay(
  committed: Iterable<[Buffer, Buffer]>,
  writes: UncommittedWrites,
  low: Buffer,
  high: Buffer,
  reverse: boolean,
): Iterable<[Buffer, Buffer]> {
  const lowId = storedId(low);
  const highId = storedId(high);
  const inRange: [string, UncommittedWrite][] = [];
  for (const entry of writes) if (entry[0] >= lowId && entry[0] < highId) inRange.push(entry);
  if (inRange.length === 0) {
    yield* committed;
    return;
  }
  inRange.sort(([a], [b]) => (a < b ? -1 : 1));
  if (reverse) inRange.reverse();
  const before = reverse ? (a: string, b: string) => a > b : (a: string, b: string) => a < b;
  let next = 0;
  for (const pair of committed) {
    const id = storedId(pair[0]);
    while (next < inRange.length && before(inRange[next]![0], id)) {
      const { stored, value } = inRange[next++]![1];
      if (value !== undefined) yield [stored, value];
    }
    if (next < inRange.length && inRange[next]![0] === id) {
      const { stored, value } = inRange[next++]![1];
      if (value !== undefined) yield [stored, value];
      continue;
    }
    yield pair;
  }
  for (; next < inRange.length; next++) {
    const { stored, value } = inRange[next]![1];
    if (value !== undefined) yield [stored, value];
  }
}
