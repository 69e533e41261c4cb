// Searches over a sorted list of sorted chunks of Latin-1 keys (one char per byte, so string order
// is byte order), the layout of the MVCC key index (src/mvcc/keyindex.ts) and of the leveldb
// engine's key directory (keydir.ts): an insert splices one chunk instead of a huge array.

/** Index of the first element >= key in a sorted array. */
export function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The index of the first chunk whose last key is >= key (or the last chunk); -1 when there are none. */
export function chunkFor(chunks: readonly { keys: readonly string[] }[], key: string): number {
  let lo = 0;
  let hi = chunks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const keys = chunks[mid]!.keys;
    if (keys[keys.length - 1]! < key) lo = mid + 1;
    else hi = mid;
  }
  return hi;
}
