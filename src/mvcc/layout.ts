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
import { LichenError } from '../errors.js';
import { ByteWriter, asBuffer, readU64, writeU64 } from './bytes.js';
import type { KeyValue } from './types.js';

export const PREFIX_REVISION = 0x72; // 'r'
export const PREFIX_META = 0x6d; // 'm'
export const PREFIX_LEASE = 0x6c; // 'l'
export const PREFIX_ALARM = 0x41; // 'A'
const RECORD_FORMAT = 1;
const FLAG_TOMBSTONE = 1;

export const META_APPLIED_INDEX = Buffer.from('mapplied-index');
export const META_CURRENT_REVISION = Buffer.from('mcurrent-revision');
export const META_COMPACT_REVISION = Buffer.from('mcompact-revision');

const REVISION_KEY_BYTES = 13;

export function revisionKey(main: number, sub: number): Uint8Array {
  return writeRevisionKey(Buffer.allocUnsafe(REVISION_KEY_BYTES), main, sub);
}

/**
 * A buffer to write revision keys into that are only looked up: an engine's get does not keep the
 * key it is given, so one buffer serves every record read (a range reads one per key it returns).
 */
export const revisionLookupKey = (): Buffer => Buffer.allocUnsafe(REVISION_KEY_BYTES);

/** Writes the revision key of (main, sub) into `key` (from revisionLookupKey) and returns it. */
export function writeRevisionKey(key: Buffer, main: number, sub: number): Buffer {
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

/**
 * encodeRecord's bytes for a tombstone of the key whose index string is `name` (Latin-1, one char
 * per byte: see keyString), written straight from the string: a delete of many keys has only
 * their index strings, and making each key's bytes first cost an allocation per key. The key is
 * at tombstoneKeyStart(name.length) of the result.
 */
export function encodeTombstone(name: string): Buffer {
  const keyStart = tombstoneKeyStart(name.length);
  const record = Buffer.allocUnsafe(keyStart + name.length);
  record[0] = RECORD_FORMAT;
  record[1] = FLAG_TOMBSTONE;
  // createRevision, version and lease: each 0, one varint byte.
  record[2] = 0;
  record[3] = 0;
  record[4] = 0;
  let at = 5;
  for (let length = name.length; ; length = Math.floor(length / 0x80)) {
    if (length < 0x80) {
      record[at++] = length;
      break;
    }
    record[at++] = (length % 0x80) | 0x80;
  }
  record.write(name, at, 'latin1');
  return record;
}

/** Where a tombstone's key starts in its record: after five bytes and the key length's varint. */
export function tombstoneKeyStart(keyLength: number): number {
  let at = 6;
  for (let length = keyLength; length >= 0x80; length = Math.floor(length / 0x80)) at++;
  return at;
}

/**
 * The record's key and value are views of `bytes`: pass bytes the caller owns (an engine read's
 * result). Parsed in place, without a reader object: a range reads one record per key it returns.
 */
export function decodeRecord(bytes: Uint8Array): StoredRecord {
  const buf = asBuffer(bytes);
  readRecordHead(buf);
  const keyStart = cursor;
  const key = new Uint8Array(buf.buffer, buf.byteOffset + keyStart, head.keyLength);
  const value = new Uint8Array(buf.buffer, buf.byteOffset + keyStart + head.keyLength, buf.length - keyStart - head.keyLength);
  return { key, value, createRevision: head.createRevision, version: head.version, lease: head.lease, tombstone: (head.flags & FLAG_TOMBSTONE) !== 0 };
}

/**
 * The record as the KeyValue of revision `modRevision`, its key and value views of `bytes` (pass
 * bytes the caller owns), with no StoredRecord between: a range makes one per key it returns.
 */
export function decodeKeyValue(bytes: Uint8Array, modRevision: number): KeyValue {
  const buf = asBuffer(bytes);
  readRecordHead(buf);
  const keyStart = cursor;
  const key = new Uint8Array(buf.buffer, buf.byteOffset + keyStart, head.keyLength);
  const value = new Uint8Array(buf.buffer, buf.byteOffset + keyStart + head.keyLength, buf.length - keyStart - head.keyLength);
  return { key, createRevision: head.createRevision, modRevision, version: head.version, value, lease: head.lease };
}

/**
 * A record's numbers and where its key lies, as parseRecord leaves them (the value follows the key
 * to the end of the record). One object, rewritten by each parse: parsing allocates nothing.
 */
export interface ParsedRecord {
  readonly createRevision: number;
  readonly version: number;
  readonly lease: number;
  readonly keyStart: number;
  readonly keyEnd: number;
}

const parsed = { createRevision: 0, version: 0, lease: 0, keyStart: 0, keyEnd: 0 };

/** Parses the record at [start, end) of `bytes` (default: all of it) in place; the result is valid until the next parse. */
export function parseRecord(bytes: Uint8Array, start = 0, end = bytes.length): ParsedRecord {
  readRecordHead(bytes, start, end);
  parsed.createRevision = head.createRevision;
  parsed.version = head.version;
  parsed.lease = head.lease;
  parsed.keyStart = cursor;
  parsed.keyEnd = cursor + head.keyLength;
  return parsed;
}

/**
 * Only what rebuilding the key index needs (key as an index string, tombstone flag, create
 * revision, version, lease), without copying the value: open() reads every record once, so this
 * is its hot loop.
 */
export function decodeRecordHead(bytes: Uint8Array): { key: string; tombstone: boolean; createRevision: number; version: number; lease: number } {
  const buf = asBuffer(bytes);
  readRecordHead(buf);
  const key = buf.toString('latin1', cursor, cursor + head.keyLength);
  return { key, tombstone: (head.flags & FLAG_TOMBSTONE) !== 0, createRevision: head.createRevision, version: head.version, lease: head.lease };
}

/**
 * The record being decoded: its fields before the key, and where it is read next (at the key once
 * readRecordHead returns). Decoding is synchronous, so one of each serves every call.
 */
const head = { flags: 0, createRevision: 0, version: 0, lease: 0, keyLength: 0 };
let cursor = 0;
/** Where the record being decoded ends. */
let limit = 0;

/**
 * Reads the format, flags, revisions, lease and key length of the record at [start, end) of
 * `buf` into `head`; checks the key fits. The cursor is left at the key (an index into `buf`).
 */
function readRecordHead(buf: Uint8Array, start = 0, end = buf.length): void {
  if (end - start < 2) throw recordError('truncated', end - start);
  if (buf[start] !== RECORD_FORMAT) throw new Error(`mvcc record: unknown format ${buf[start]}`);
  head.flags = buf[start + 1]!;
  cursor = start + 2;
  limit = end;
  head.createRevision = recordUvar(buf);
  head.version = recordUvar(buf);
  head.lease = recordUvar(buf);
  head.keyLength = recordUvar(buf);
  if (cursor + head.keyLength > end) throw recordError('truncated');
}

function recordUvar(buf: Uint8Array): number {
  let value = 0;
  for (let i = 0, scale = 1; i < 8; i++, scale *= 0x80) {
    if (cursor >= limit) throw recordError('truncated');
    const byte = buf[cursor++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      if (!Number.isSafeInteger(value)) throw recordError('varint out of range');
      return value;
    }
  }
  throw recordError('varint too long');
}

function recordError(reason: string, at = cursor): LichenError {
  return new LichenError('InvalidArgument', `mvcc record: ${reason} at byte ${at}`);
}

/** The smallest byte string greater than every string that starts with `prefix`. */
export function prefixEnd(prefix: number): Uint8Array {
  return Uint8Array.of(prefix + 1);
}
