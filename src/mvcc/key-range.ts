// The key-range convention of etcd's API (see types.ts) as functions.

/**
 * The rangeEnd that selects every key starting with `prefix` (etcd's GetPrefixRangeEnd): the
 * prefix with its last byte below 0xFF incremented and what follows dropped; [0] ("to the end")
 * when there is no such byte.
 */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      // A copy, never a view: Buffer.prototype.slice shares memory and would bump the key too.
      const end = Uint8Array.from(prefix.subarray(0, i + 1));
      end[i]!++;
      return end;
    }
  }
  return new Uint8Array([0]);
}
