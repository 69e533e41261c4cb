// The on-engine layout of the MVCC store. Reserved one-byte prefixes:
//   'r' + main revision (u64 BE) + sub revision (u32 BE)  → a revision record (see encodeRecord)
//   'm' + name                                            → meta: applied index, revisions
//   'l' + lease id (u64 BE)                               → a lease (its granted TTL)
//   'A' + alarm type (u8) + member id (u64 BE)            → a raised alarm (value: one byte, 1)
// Alarms sort by type, then member, which is the order Alarm GET lists them in.
// Auth state (src/auth/store.ts) lives beside the MVCC data in the same engine, so snapshots carry it:
//   'a' + kind + name                                     → 'm' meta (enabled, revision), 'u' users, 'r' roles
// Revision records sort by (main, sub), so history for watch catch-up and HashKV is one ordered
// engine scan, and compaction deletes records by their exact keys.
import { ByteReader, ByteWriter, asBuffer, readU64, writeU64 } from './bytes.js';

export const PREFIX_REVISION = 0x72; // 'r'
export const PREFIX_META = 0x6d; // 'm'
export const PREFIX_LEASE = 0x6c; // 'l'
export const PREFIX_ALARM = 0x41; // 'A'
const RECORD_FORMAT = 1;
const FLAG_TOMBSTONE = 1;

export const META_APPLIED_INDEX = Buffer.from('mapplied-index');
export const META_CURRENT_REVISION = Buffer.from('mcurrent-revision');
export const META_COMPACT_REVISION = Buffer.from('mcompact-revision');

export function revisionKey(main: number, sub: number): Uint8Array {
  const key = Buffer.allocUnsafe(13);
  key[0] = PREFIX_REVISION;
  writeU64(key, 1, main);
  key.writeUInt32BE(sub, 9);
  return key;
}

export function parseRevisionKey(key: Uint8Array): { main: number; sub: number } {
  const buf = asBuffer(key);
  return { main: readU64(buf, 1), sub: buf.readUInt32BE(9) };
}

export function leaseKey(id: number): Uint8Array {
  const key = Buffer.allocUnsafe(9);
  key[0] = PREFIX_LEASE;
  writeU64(key, 1, id);
  return key;
}

export function parseLeaseKey(key: Uint8Array): number {
  return readU64(asBuffer(key), 1);
}

export function alarmKey(alarm: number, memberId: number): Uint8Array {
  const key = Buffer.allocUnsafe(10);
  key[0] = PREFIX_ALARM;
  key[1] = alarm;
  writeU64(key, 2, memberId);
  return key;
}

export function parseAlarmKey(key: Uint8Array): { alarm: number; memberId: number } {
  const buf = asBuffer(key);
  return { alarm: buf[1]!, memberId: readU64(buf, 2) };
}

export function encodeNumber(value: number): Uint8Array {
  const out = Buffer.allocUnsafe(8);
  writeU64(out, 0, value);
  return out;
}

export function decodeNumber(bytes: Uint8Array | undefined, fallback: number): number {
  return bytes === undefined ? fallback : readU64(asBuffer(bytes), 0);
}

/** One stored key version; modRevision is the record's revision (its engine key). */
export interface StoredRecord {
  key: Uint8Array;
  value: Uint8Array;
  createRevision: number;
  version: number;
  lease: number;
  tombstone: boolean;
}

export function encodeRecord(record: StoredRecord): Uint8Array {
  const w = new ByteWriter(24 + record.key.length + record.value.length)
    .u8(RECORD_FORMAT)
    .u8(record.tombstone ? FLAG_TOMBSTONE : 0)
    .uvar(record.createRevision)
    .uvar(record.version)
    .uvar(record.lease)
    .bytes(record.key)
    .raw(record.value);
  return w.finish();
}

/** The record's key and value are views of `bytes`: pass bytes the caller owns (an engine read's result). */
export function decodeRecord(bytes: Uint8Array): StoredRecord {
  const r = new ByteReader(bytes, 'mvcc record');
  const format = r.u8();
  if (format !== RECORD_FORMAT) throw new Error(`mvcc record: unknown format ${format}`);
  const flags = r.u8();
  const createRevision = r.uvar();
  const version = r.uvar();
  const lease = r.uvar();
  const key = r.view(r.uvar());
  const value = r.view();
  return { key, value, createRevision, version, lease, tombstone: (flags & FLAG_TOMBSTONE) !== 0 };
}

/**
 * Only what rebuilding the key index needs (key as an index string, tombstone flag, create
 * revision, version, lease), without copying the value: open() reads every record once, so this
 * is its hot loop.
 */
export function decodeRecordHead(bytes: Uint8Array): { key: string; tombstone: boolean; createRevision: number; version: number; lease: number } {
  const buf = asBuffer(bytes);
  if (buf[0] !== RECORD_FORMAT) throw new Error(`mvcc record: unknown format ${buf[0]}`);
  const tombstone = (buf[1]! & FLAG_TOMBSTONE) !== 0;
  const at = { offset: 2 };
  const createRevision = readUvar(buf, at);
  const version = readUvar(buf, at);
  const lease = readUvar(buf, at);
  const keyLength = readUvar(buf, at);
  return { key: buf.toString('latin1', at.offset, at.offset + keyLength), tombstone, createRevision, version, lease };
}

function readUvar(buf: Buffer, at: { offset: number }): number {
  let value = 0;
  for (let scale = 1; ; scale *= 0x80) {
    const byte = buf[at.offset++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
  }
}

/** The smallest byte string greater than every string that starts with `prefix`. */
export function prefixEnd(prefix: number): Uint8Array {
  return Uint8Array.of(prefix + 1);
}
