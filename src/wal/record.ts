// The on-disk record format shared by WAL segments and snapshot files.
//
// A record is a 13-byte header followed by a payload (all integers big-endian):
//
//   offset 0   u32  headerCrc   CRC-32C of bytes 4..12 (payloadCrc, length, type)
//   offset 4   u32  payloadCrc  CRC-32C of the payload
//   offset 8   u32  length      payload length in bytes
//   offset 12  u8   type        RecordType
//   offset 13  ...  payload
//
// The header has its own checksum so that a damaged length field is recognised as corruption
// instead of being mistaken for a record that runs past the end of the file (a torn tail): without
// it, one flipped bit in a length in the middle of a segment could make replay discard everything
// after it as "torn".
//
// Payloads encode raft types field by field. Indexes, terms and node ids are safe integers written
// as u64 (two u32 halves); byte strings carry a u32 length prefix.
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from '../raft/types.js';
import { assert } from '../errors.js';
import { crc32c } from './crc32c.js';

export const RECORD_HEADER_BYTES = 13;
/** The length field is a u32; snapshot files may use all of it. */
export const RECORD_PAYLOAD_BYTES_MAX = 0xffff_ffff;

export const RecordType = {
  /** First record of every segment: the state needed to replay the segment on its own. */
  SegmentHeader: 1,
  /** One save(): optional hard state plus contiguous entries (the unit of group commit). */
  Batch: 2,
  /** A durable snapshot exists up to this index; entries at or below it are no longer needed. */
  SnapshotMarker: 3,
  /** A snapshot file: metadata plus the state machine data. */
  Snapshot: 4,
  // The shared log of every raft group of a process (shared-wal.ts). Each record names its group.
  /** First record of every shared-log segment: magic, format and seq. */
  SharedSegmentHeader: 5,
  /** One group's save(): the group id, then a Batch. */
  GroupBatch: 6,
  /** One group's snapshot marker: the group id, then the snapshot metadata. */
  GroupSnapshotMarker: 7,
  /** One group's whole log state (hard state, snapshot marker, every entry after it), replacing what came before. */
  GroupState: 8,
  /** A group was removed from the process: what came before of it is void (the group id, nothing else). */
  GroupRemoved: 9,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

const KNOWN_TYPES = new Set<number>(Object.values(RecordType));

export const SEGMENT_MAGIC = 0x4c57414c; // "LWAL"
export const SEGMENT_FORMAT_VERSION = 1;

export interface SegmentHeader {
  /** Position of the segment in the log: 1, 2, 3, ... with no gaps among the files kept. */
  seq: number;
  /** lastIndex + 1 when the segment was created: the index its first entry should have. */
  nextIndex: number;
  hardState: HardState;
  snapshot?: SnapshotMetadata;
}

export const SHARED_SEGMENT_MAGIC = 0x4c47574c; // "LGWL"
export const SHARED_SEGMENT_FORMAT_VERSION = 1;

/** A group's whole log as the shared WAL holds it (a GroupState record; also what recovery hands a group). */
export interface GroupLogState {
  hardState: HardState;
  snapshot?: SnapshotMetadata;
  entries: Entry[];
}

export interface Batch {
  hardState?: HardState;
  entries: Entry[];
}

/** Grows a byte buffer while encoding, so callers need not compute sizes up front. */
class Writer {
  private buf: Buffer;
  length = 0;

  constructor(capacityBytes = 256) {
    this.buf = Buffer.allocUnsafe(capacityBytes);
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + bytes));
    this.buf.copy(grown, 0, 0, this.length);
    this.buf = grown;
  }

  u8(value: number): void {
    this.reserve(1);
    this.buf[this.length++] = value;
  }

  u32(value: number): void {
    this.reserve(4);
    this.buf.writeUInt32BE(value, this.length);
    this.length += 4;
  }

  u64(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, `wal: ${value} is not a non-negative safe integer`);
    this.u32(Math.floor(value / 0x1_0000_0000));
    this.u32(value >>> 0);
  }

  bytes(value: Uint8Array): void {
    this.u32(value.length);
    this.reserve(value.length);
    this.buf.set(value, this.length);
    this.length += value.length;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** Thrown by Reader when a payload is shorter than its fields claim (caught and reported by callers). */
export class PayloadError extends Error {}

class Reader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  private need(bytes: number): void {
    if (this.offset + bytes > this.buf.length) throw new PayloadError(`payload truncated at byte ${this.offset}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.offset++]!;
  }

  u32(): number {
    this.need(4);
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  u64(): number {
    const high = this.u32();
    const low = this.u32();
    const value = high * 0x1_0000_0000 + low;
    if (!Number.isSafeInteger(value)) throw new PayloadError(`u64 ${value} is not a safe integer`);
    return value;
  }

  bytes(): Uint8Array {
    const length = this.u32();
    this.need(length);
    // Copy so a decoded entry does not pin the whole segment buffer in memory.
    const value = Uint8Array.prototype.slice.call(this.buf, this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  get position(): number {
    return this.offset;
  }

  end(): void {
    if (this.offset !== this.buf.length) throw new PayloadError(`${this.buf.length - this.offset} trailing payload bytes`);
  }
}

function writeHardState(w: Writer, hs: HardState): void {
  w.u64(hs.term);
  w.u64(hs.vote);
  w.u64(hs.commit);
}

function readHardState(r: Reader): HardState {
  return { term: r.u64(), vote: r.u64(), commit: r.u64() };
}

function writeIds(w: Writer, ids: readonly number[]): void {
  w.u32(ids.length);
  for (const id of ids) w.u64(id);
}

function readIds(r: Reader): number[] {
  const count = r.u32();
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(r.u64());
  return ids;
}

function writeSnapshotMetadata(w: Writer, meta: SnapshotMetadata): void {
  w.u64(meta.index);
  w.u64(meta.term);
  writeIds(w, meta.conf.voters);
  writeIds(w, meta.conf.learners);
}

function readSnapshotMetadata(r: Reader): SnapshotMetadata {
  const index = r.u64();
  const term = r.u64();
  const conf: ConfState = { voters: readIds(r), learners: readIds(r) };
  return { index, term, conf };
}

function writeEntry(w: Writer, entry: Entry): void {
  w.u64(entry.term);
  w.u64(entry.index);
  w.u8(entry.type);
  w.bytes(entry.data);
}

function readEntry(r: Reader): Entry {
  const term = r.u64();
  const index = r.u64();
  const type = r.u8();
  if (type !== 0 && type !== 1) throw new PayloadError(`unknown entry type ${type}`);
  return { term, index, type: type as EntryType, data: r.bytes() };
}

export function encodeSegmentHeader(header: SegmentHeader): Buffer {
  const w = new Writer();
  w.u32(SEGMENT_MAGIC);
  w.u32(SEGMENT_FORMAT_VERSION);
  w.u64(header.seq);
  w.u64(header.nextIndex);
  writeHardState(w, header.hardState);
  w.u8(header.snapshot ? 1 : 0);
  if (header.snapshot) writeSnapshotMetadata(w, header.snapshot);
  return w.done();
}

export function decodeSegmentHeader(payload: Buffer): SegmentHeader {
  const r = new Reader(payload);
  const magic = r.u32();
  if (magic !== SEGMENT_MAGIC) throw new PayloadError(`bad segment magic 0x${magic.toString(16)}`);
  const version = r.u32();
  if (version !== SEGMENT_FORMAT_VERSION) throw new PayloadError(`unsupported segment format version ${version}`);
  const seq = r.u64();
  const nextIndex = r.u64();
  const hardState = readHardState(r);
  const snapshot = r.u8() === 1 ? readSnapshotMetadata(r) : undefined;
  r.end();
  return snapshot ? { seq, nextIndex, hardState, snapshot } : { seq, nextIndex, hardState };
}

export function encodeBatch(batch: Batch): Buffer {
  let dataBytes = 0;
  for (const entry of batch.entries) dataBytes += entry.data.length;
  const w = new Writer(64 + 32 * batch.entries.length + dataBytes);
  w.u8(batch.hardState ? 1 : 0);
  if (batch.hardState) writeHardState(w, batch.hardState);
  w.u32(batch.entries.length);
  for (const entry of batch.entries) writeEntry(w, entry);
  return w.done();
}

export function decodeBatch(payload: Buffer): Batch {
  const r = new Reader(payload);
  const hardState = r.u8() === 1 ? readHardState(r) : undefined;
  const count = r.u32();
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(readEntry(r));
  r.end();
  return hardState ? { hardState, entries } : { entries };
}

export function encodeSharedSegmentHeader(seq: number): Buffer {
  const w = new Writer();
  w.u32(SHARED_SEGMENT_MAGIC);
  w.u32(SHARED_SEGMENT_FORMAT_VERSION);
  w.u64(seq);
  return w.done();
}

export function decodeSharedSegmentHeader(payload: Buffer): { seq: number } {
  const r = new Reader(payload);
  const magic = r.u32();
  if (magic !== SHARED_SEGMENT_MAGIC) throw new PayloadError(`bad shared segment magic 0x${magic.toString(16)}`);
  const version = r.u32();
  if (version !== SHARED_SEGMENT_FORMAT_VERSION) throw new PayloadError(`unsupported shared segment format version ${version}`);
  const seq = r.u64();
  r.end();
  return { seq };
}

/** A group record's payload: the group id (u32), then the record's own payload. */
export function encodeGroupPayload(groupId: number, payload: Buffer): Buffer {
  assert(Number.isInteger(groupId) && groupId > 0 && groupId <= 0xffff_ffff, `wal: group id ${groupId} is not a positive 32-bit integer`);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(groupId);
  return Buffer.concat([head, payload]);
}

export function decodeGroupPayload(payload: Buffer): { groupId: number; rest: Buffer } {
  if (payload.length < 4) throw new PayloadError('group record shorter than its group id');
  const groupId = payload.readUInt32BE(0);
  if (groupId === 0) throw new PayloadError('group record for group 0');
  return { groupId, rest: payload.subarray(4) };
}

export function encodeGroupState(state: GroupLogState): Buffer {
  const w = new Writer();
  writeHardState(w, state.hardState);
  w.u8(state.snapshot ? 1 : 0);
  if (state.snapshot) writeSnapshotMetadata(w, state.snapshot);
  const batch = encodeBatch({ entries: state.entries });
  const head = w.done();
  return Buffer.concat([head, batch]);
}

export function decodeGroupState(payload: Buffer): GroupLogState {
  const r = new Reader(payload);
  const hardState = readHardState(r);
  const snapshot = r.u8() === 1 ? readSnapshotMetadata(r) : undefined;
  const { entries } = decodeBatch(payload.subarray(r.position));
  return snapshot ? { hardState, snapshot, entries } : { hardState, entries };
}

export function encodeSnapshotMarker(meta: SnapshotMetadata): Buffer {
  const w = new Writer();
  writeSnapshotMetadata(w, meta);
  return w.done();
}

export function decodeSnapshotMarker(payload: Buffer): SnapshotMetadata {
  const r = new Reader(payload);
  const meta = readSnapshotMetadata(r);
  r.end();
  return meta;
}

/** Snapshot file payload: metadata, then the data as the rest of the payload (no length prefix). */
export function encodeSnapshotHead(meta: SnapshotMetadata): Buffer {
  const w = new Writer();
  writeSnapshotMetadata(w, meta);
  return w.done();
}

export function decodeSnapshotPayload(payload: Buffer): { metadata: SnapshotMetadata; data: Uint8Array } {
  const r = new Reader(payload);
  const metadata = readSnapshotMetadata(r);
  return { metadata, data: payload.subarray(r.position) };
}

/**
 * The header to write in front of a payload of `length` bytes whose checksum is `payloadCrc`. The
 * payload itself is not needed, so a large one (a snapshot) can be checksummed in pieces, and
 * need not be in memory at all.
 */
export function frameRecord(type: RecordType, length: number, payloadCrc: number): Buffer {
  assert(length <= RECORD_PAYLOAD_BYTES_MAX, `wal: record payload of ${length} bytes exceeds ${RECORD_PAYLOAD_BYTES_MAX}`);
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32BE(payloadCrc, 4);
  header.writeUInt32BE(length, 8);
  header[12] = type;
  header.writeUInt32BE(crc32c(header.subarray(4, RECORD_HEADER_BYTES)), 0);
  return header;
}

/** Header plus payload in one buffer, ready for a single write. */
export function encodeRecord(type: RecordType, payload: Uint8Array): Buffer {
  const header = frameRecord(type, payload.length, crc32c(payload));
  return Buffer.concat([header, payload]);
}

/** What the scanner found at one offset of a buffer. */
export type ScanResult =
  | { kind: 'record'; type: RecordType; payload: Buffer; end: number }
  /** Fewer bytes remain than the header, or than the (intact) header says the payload needs. */
  | { kind: 'incomplete' }
  | { kind: 'bad-header' }
  /** The header is intact, the payload's checksum is not; `end` is where the record would end. */
  | { kind: 'bad-payload'; end: number };

/** Reads the record at `offset` of `buf`, checking both checksums. */
export function scanRecord(buf: Buffer, offset: number): ScanResult {
  if (offset + RECORD_HEADER_BYTES > buf.length) return { kind: 'incomplete' };
  const headerCrc = buf.readUInt32BE(offset);
  if (crc32c(buf.subarray(offset + 4, offset + RECORD_HEADER_BYTES)) !== headerCrc) return { kind: 'bad-header' };
  const payloadCrc = buf.readUInt32BE(offset + 4);
  const length = buf.readUInt32BE(offset + 8);
  const type = buf[offset + 12]!;
  if (!KNOWN_TYPES.has(type)) return { kind: 'bad-header' };
  const start = offset + RECORD_HEADER_BYTES;
  const end = start + length;
  if (end > buf.length) return { kind: 'incomplete' };
  const payload = buf.subarray(start, end);
  if (crc32c(payload) !== payloadCrc) return { kind: 'bad-payload', end };
  return { kind: 'record', type: type as RecordType, payload, end };
}

/** Disk sectors are written whole or not at all on the devices we care about. */
const SECTOR_BYTES = 512;

/**
 * A failure at `offset` of the last segment is a torn write (never acknowledged, since
 * acknowledgement follows the flush) when: the record runs past the end of the file; or
 * everything from `offset` on is zeros (the size reached the disk before the data); or the last
 * record's header is intact, only zeros follow it, and a whole sector of its payload is zeros
 * (part of the write never reached the disk). Anything else is damage to data that may have
 * been acknowledged.
 */
export function isTornTail(buf: Buffer, offset: number, result: Exclude<ScanResult, { kind: 'record' }>): boolean {
  if (result.kind === 'incomplete') return true;
  if (isZero(buf, offset, buf.length)) return true;
  if (result.kind === 'bad-payload' && isZero(buf, result.end, buf.length)) {
    const payloadStart = offset + RECORD_HEADER_BYTES;
    let sectorStart = payloadStart;
    while (sectorStart < result.end) {
      const sectorEnd = Math.min(result.end, (Math.floor(sectorStart / SECTOR_BYTES) + 1) * SECTOR_BYTES);
      if (sectorEnd - sectorStart === SECTOR_BYTES || sectorEnd === result.end) {
        if (isZero(buf, sectorStart, sectorEnd)) return true;
      }
      sectorStart = sectorEnd;
    }
  }
  return false;
}

export function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

export function describeDamage(result: Exclude<ScanResult, { kind: 'record' }>): string {
  switch (result.kind) {
    case 'incomplete':
      return 'record runs past the end of a segment that is not the last';
    case 'bad-header':
      return 'record header checksum mismatch';
    case 'bad-payload':
      return 'record payload checksum mismatch';
  }
}
