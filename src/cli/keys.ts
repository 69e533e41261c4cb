// Key ranges as the etcd API expresses them (see RangeRequest in src/mvcc/types.ts), built from
// what the user typed: one key, every key with a prefix, or every key from a key on.
import { prefixRangeEnd } from '../mvcc/key-range.js';
import { UsageError } from './args.js';

const encoder = new TextEncoder();

export function toBytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export interface KeyRange {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
}


export function keyRange(keyText: string, options: { prefix?: boolean; fromKey?: boolean }): KeyRange {
  if (options.prefix && options.fromKey) throw new UsageError('--prefix and --from-key cannot be used together');
  const key = toBytes(keyText);
  if (options.fromKey) {
    // An empty key with --from-key means every key, which etcd writes as key [0].
    return { key: key.length === 0 ? new Uint8Array([0]) : key, rangeEnd: new Uint8Array([0]) };
  }
  if (options.prefix) {
    if (key.length === 0) return { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };
    return { key, rangeEnd: prefixRangeEnd(key) };
  }
  return { key };
}

/**
 * Lease and member ids are hex, as etcd prints them; a 0x prefix is accepted. Any 64-bit id: etcd
 * draws them from 64 bits (most of its lease ids are above 2^53), so the id is a bigint.
 */
export function parseHexId(text: string, what: string): bigint {
  const digits = text.trim().replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{1,16}$/.test(digits)) {
    throw new UsageError(`invalid ${what}: "${text}" (expected a hexadecimal id of at most 16 digits, as printed by lichen)`);
  }
  return BigInt(`0x${digits}`);
}
