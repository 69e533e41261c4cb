// Keys and values for benchmark requests. A key is the decimal index in the key space,
// zero-padded to the key size, so keys are readable in etcdctl and sort in index order.
// The value is one random buffer shared by every request (gRPC copies it when encoding).
import { randomBytes } from 'node:crypto';

export function keyForIndex(index: number, keySizeBytes: number): Buffer {
  return Buffer.from(String(index).padStart(keySizeBytes, '0'), 'latin1');
}

/**
 * The range request for `count` consecutive keys from index `start`. Keys are fixed-width decimal,
 * so a range that reaches the last key ends at ":::" (':' sorts right after '9').
 */
export function rangeOfKeys(start: number, count: number, keySpaceSize: number, keySizeBytes: number): { key: Buffer; range_end: Buffer } {
  const end = start + count;
  return { key: keyForIndex(start, keySizeBytes), range_end: end < keySpaceSize ? keyForIndex(end, keySizeBytes) : Buffer.alloc(keySizeBytes, ':') };
}

export interface KeyPicker {
  next(): Buffer;
}

/** Keys in order 0, 1, 2, … wrapping at the key space size. One picker is shared by all clients. */
export function sequentialKeyPicker(keySpaceSize: number, keySizeBytes: number): KeyPicker {
  let counter = 0;
  return {
    next() {
      const key = keyForIndex(counter, keySizeBytes);
      counter = (counter + 1) % keySpaceSize;
      return key;
    },
  };
}

/** Keys drawn uniformly at random; `random` is injectable so tests are deterministic. */
export function randomKeyPicker(keySpaceSize: number, keySizeBytes: number, random: () => number = Math.random): KeyPicker {
  return { next: () => keyForIndex(Math.floor(random() * keySpaceSize), keySizeBytes) };
}

/** Printable random bytes, so values are readable if someone looks at them with etcdctl. */
export function makeValue(valueSizeBytes: number): Buffer {
  const raw = randomBytes(valueSizeBytes);
  for (let i = 0; i < raw.length; i++) raw[i] = 0x61 + ((raw[i] as number) % 26);
  return raw;
}
