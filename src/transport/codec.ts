// The binary encoding of raft messages on the wire between peers.
//
// Layout (all integers are unsigned LEB128 varints unless marked u8; byte strings are a varint
// length followed by the bytes):
//
//   u8 version (CODEC_VERSION) · u8 type code · from · to · term · the variant's fields in the
//   order writeMessage lists them (scalars before entries). Booleans are a u8 that must be 0 or 1. Entries are a count followed
//   by (term · index · u8 type · data) each. A snapshot is index · term · voters (count, ids) ·
//   learners (count, ids) · data.
//
// Varints keep heartbeats and responses at a dozen bytes or so, while 1 KiB entries pay two or
// three bytes of overhead. Every number on the wire must be a safe integer (≤ 2^53 - 1), which
// raft's terms, indexes and ids are, so a varint never needs more than 8 bytes.
//
// Decoding never trusts the input: every length is checked against the bytes that remain, counts
// are bounded by the remaining bytes before any array is sized, and the message must end exactly
// where the buffer ends. Anything else throws a LichenError (InvalidArgument) naming the problem
// and the offset, so a bad peer costs one closed connection, never the process.
//
// Zero copy: the byte fields of a decoded message (entry data, snapshot data, contexts) are
// subarrays of the input buffer, not copies. The decoded message therefore keeps the whole input
// buffer alive, and the caller must not overwrite the input while the message is in use. The TCP
// transport decodes from buffers it never reuses (each socket read is a fresh allocation), so its
// messages are safe to keep; pass { copy: true } when decoding from a buffer you will reuse, or to
// avoid pinning a large receive buffer with a small entry.
import type { ConfState, Entry, Message, MessageType, Snapshot } from '../raft/types.js';
import { EntryType, snapshotBytes } from '../raft/types.js';
import { LichenError, ErrorCode, assert } from '../errors.js';

export const CODEC_VERSION = 1;

/** Wire codes of the message types. Never renumber: peers of different builds must agree. */
export const MESSAGE_TYPE_CODES: Readonly<Record<MessageType, number>> = {
  Vote: 1,
  PreVote: 2,
  VoteResp: 3,
  PreVoteResp: 4,
  App: 5,
  AppResp: 6,
  Heartbeat: 7,
  HeartbeatResp: 8,
  Snap: 9,
  Prop: 10,
  ReadIndex: 11,
  ReadIndexResp: 12,
  TimeoutNow: 13,
  TransferLeader: 14,
};

const MESSAGE_TYPES_BY_CODE: readonly (MessageType | undefined)[] = (() => {
  const byCode: (MessageType | undefined)[] = [];
  for (const [type, code] of Object.entries(MESSAGE_TYPE_CODES)) byCode[code] = type as MessageType;
  return byCode;
})();

const EMPTY_BYTES = new Uint8Array(0);

/** A varint is at most 8 bytes because 8 × 7 bits covers every safe integer (53 bits). */
const VARINT_BYTES_MAX = 8;

// ---------------------------------------------------------------------------------------------
// Encoding: one layout function drives both a size counter and a writer, so the two can never
// disagree about the format.

interface Sink {
  u8(value: number): void;
  uvarint(value: number): void;
  bytes(value: Uint8Array): void;
}

function uvarintBytes(value: number): number {
  assert(Number.isSafeInteger(value) && value >= 0, `codec: ${value} is not a non-negative safe integer`);
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

class SizeCounter implements Sink {
  size = 0;
  u8(): void {
    this.size += 1;
  }
  uvarint(value: number): void {
    this.size += uvarintBytes(value);
  }
  bytes(value: Uint8Array): void {
    this.size += uvarintBytes(value.length) + value.length;
  }
}

class Writer implements Sink {
  constructor(
    readonly buffer: Buffer,
    public offset: number,
  ) {}
  u8(value: number): void {
    this.buffer[this.offset++] = value;
  }
  uvarint(value: number): void {
    // Arithmetic instead of bit operators, because bit operators truncate to 32 bits.
    while (value >= 0x80) {
      this.buffer[this.offset++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buffer[this.offset++] = value;
  }
  bytes(value: Uint8Array): void {
    this.uvarint(value.length);
    this.buffer.set(value, this.offset);
    this.offset += value.length;
  }
}

function writeBool(sink: Sink, value: boolean): void {
  sink.u8(value ? 1 : 0);
}

function writeEntries(sink: Sink, entries: Entry[]): void {
  sink.uvarint(entries.length);
  for (const entry of entries) {
    sink.uvarint(entry.term);
    sink.uvarint(entry.index);
    sink.u8(entry.type);
    sink.bytes(entry.data);
  }
}

function writeIds(sink: Sink, ids: number[]): void {
  sink.uvarint(ids.length);
  for (const id of ids) sink.uvarint(id);
}

function writeSnapshot(sink: Sink, snapshot: Snapshot): void {
  sink.uvarint(snapshot.metadata.index);
  sink.uvarint(snapshot.metadata.term);
  writeIds(sink, snapshot.metadata.conf.voters);
  writeIds(sink, snapshot.metadata.conf.learners);
  // A snapshot in a file never travels as one message: the TCP transport streams it in chunks.
  sink.bytes(snapshotBytes(snapshot.data));
}

function writeMessage(sink: Sink, m: Message): void {
  sink.u8(CODEC_VERSION);
  sink.u8(MESSAGE_TYPE_CODES[m.type]);
  sink.uvarint(m.from);
  sink.uvarint(m.to);
  sink.uvarint(m.term);
  switch (m.type) {
    case 'Vote':
    case 'PreVote':
      sink.uvarint(m.lastLogIndex);
      sink.uvarint(m.lastLogTerm);
      writeBool(sink, m.transfer);
      return;
    case 'VoteResp':
    case 'PreVoteResp':
      writeBool(sink, m.reject);
      return;
    case 'App':
      sink.uvarint(m.prevLogIndex);
      sink.uvarint(m.prevLogTerm);
      sink.uvarint(m.commit);
      writeEntries(sink, m.entries);
      return;
    case 'AppResp':
      writeBool(sink, m.reject);
      sink.uvarint(m.index);
      sink.uvarint(m.rejectHint);
      sink.uvarint(m.hintTerm);
      return;
    case 'Heartbeat':
      sink.uvarint(m.commit);
      sink.bytes(m.context);
      writeBool(sink, m.quiesce === true);
      return;
    case 'HeartbeatResp':
    case 'ReadIndex':
      sink.bytes(m.context);
      return;
    case 'Snap':
      writeSnapshot(sink, m.snapshot);
      return;
    case 'Prop':
      writeEntries(sink, m.entries);
      return;
    case 'ReadIndexResp':
      sink.uvarint(m.index);
      sink.bytes(m.context);
      return;
    case 'TimeoutNow':
      return;
    case 'TransferLeader':
      sink.uvarint(m.transferee);
      return;
    default: {
      const unknown: never = m;
      assert(false, `codec: unknown message type ${(unknown as Message).type}`);
    }
  }
}

/** The number of bytes encodeMessage produces for `m` (useful to bound batches before encoding). */
export function encodedMessageBytes(m: Message): number {
  const counter = new SizeCounter();
  writeMessage(counter, m);
  return counter.size;
}

/**
 * Encodes `m`. With `headroomBytes` > 0 the message starts at that offset of the returned buffer,
 * leaving room for a frame header so the transport needs no second copy; the headroom bytes are
 * left uninitialised for the caller to fill.
 */
export function encodeMessage(m: Message, headroomBytes = 0): Buffer {
  const counter = new SizeCounter();
  writeMessage(counter, m);
  const buffer = Buffer.allocUnsafe(headroomBytes + counter.size);
  const writer = new Writer(buffer, headroomBytes);
  writeMessage(writer, m);
  assert(writer.offset === buffer.length, 'codec: size counter and writer disagree');
  return buffer;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

function malformed(reason: string, offset: number): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, `malformed peer message: ${reason} at byte ${offset}`, {
    offset,
  });
}

class Reader {
  offset = 0;
  constructor(
    readonly buffer: Uint8Array,
    readonly copy: boolean,
  ) {}

  remaining(): number {
    return this.buffer.length - this.offset;
  }

  u8(what: string): number {
    if (this.offset >= this.buffer.length) throw malformed(`truncated ${what}`, this.offset);
    return this.buffer[this.offset++]!;
  }

  uvarint(what: string): number {
    const start = this.offset;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.offset >= this.buffer.length) throw malformed(`truncated ${what}`, start);
      const byte = this.buffer[this.offset++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (value > Number.MAX_SAFE_INTEGER) throw malformed(`${what} exceeds 2^53 - 1`, start);
        return value;
      }
      scale *= 128;
    }
    throw malformed(`${what} varint longer than ${VARINT_BYTES_MAX} bytes`, start);
  }

  bool(what: string): boolean {
    const start = this.offset;
    const value = this.u8(what);
    if (value > 1) throw malformed(`${what} is ${value}, not a boolean`, start);
    return value === 1;
  }

  bytes(what: string): Uint8Array {
    const start = this.offset;
    const length = this.uvarint(`${what} length`);
    if (length > this.remaining()) {
      throw malformed(`${what} length ${length} exceeds the ${this.remaining()} bytes left`, start);
    }
    if (length === 0) return EMPTY_BYTES;
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return this.copy ? new Uint8Array(view) : view;
  }

  /** A count of items that each take at least `itemBytesMin` bytes, so a lie cannot size a huge array. */
  count(what: string, itemBytesMin: number): number {
    const start = this.offset;
    const count = this.uvarint(`${what} count`);
    if (count * itemBytesMin > this.remaining()) {
      throw malformed(`${what} count ${count} cannot fit in the ${this.remaining()} bytes left`, start);
    }
    return count;
  }
}

/** term (1+) · index (1+) · type (1) · data length (1+). */
const ENTRY_BYTES_MIN = 4;

function readEntries(reader: Reader): Entry[] {
  const count = reader.count('entries', ENTRY_BYTES_MIN);
  const entries: Entry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const term = reader.uvarint('entry term');
    const index = reader.uvarint('entry index');
    const typeOffset = reader.offset;
    const type = reader.u8('entry type');
    if (type !== EntryType.Normal && type !== EntryType.ConfChange) {
      throw malformed(`unknown entry type ${type}`, typeOffset);
    }
    entries[i] = { term, index, type, data: reader.bytes('entry data') };
  }
  return entries;
}

function readIds(reader: Reader, what: string): number[] {
  const count = reader.count(what, 1);
  const ids: number[] = new Array(count);
  for (let i = 0; i < count; i++) ids[i] = reader.uvarint(what);
  return ids;
}

function readSnapshot(reader: Reader): Snapshot {
  const index = reader.uvarint('snapshot index');
  const term = reader.uvarint('snapshot term');
  const conf: ConfState = { voters: readIds(reader, 'voters'), learners: readIds(reader, 'learners') };
  return { metadata: { index, term, conf }, data: reader.bytes('snapshot data') };
}

export interface DecodeOptions {
  /** Copy byte fields out of the input instead of aliasing it (see the file comment). */
  copy?: boolean;
}

/** Decodes one message that fills `bytes` exactly; throws LichenError(InvalidArgument) on bad input. */
export function decodeMessage(bytes: Uint8Array, options: DecodeOptions = {}): Message {
  const reader = new Reader(bytes, options.copy ?? false);
  const version = reader.u8('version');
  if (version !== CODEC_VERSION) throw malformed(`unsupported codec version ${version} (want ${CODEC_VERSION})`, 0);
  const code = reader.u8('type');
  const type = MESSAGE_TYPES_BY_CODE[code];
  if (type === undefined) throw malformed(`unknown message type code ${code}`, 1);
  const from = reader.uvarint('from');
  const to = reader.uvarint('to');
  const term = reader.uvarint('term');
  const message = readVariant(reader, type, from, to, term);
  if (reader.remaining() !== 0) throw malformed(`${reader.remaining()} unexpected trailing bytes`, reader.offset);
  return message;
}

// Object literals with the fields spelled out (rather than spreading a base object) give every
// message of a type one hidden class, which the profiler showed matters on the receive path.
function readVariant(reader: Reader, type: MessageType, from: number, to: number, term: number): Message {
  switch (type) {
    case 'Vote':
    case 'PreVote':
      return {
        type,
        from,
        to,
        term,
        lastLogIndex: reader.uvarint('lastLogIndex'),
        lastLogTerm: reader.uvarint('lastLogTerm'),
        transfer: reader.bool('transfer'),
      };
    case 'VoteResp':
    case 'PreVoteResp':
      return { type, from, to, term, reject: reader.bool('reject') };
    case 'App': {
      const prevLogIndex = reader.uvarint('prevLogIndex');
      const prevLogTerm = reader.uvarint('prevLogTerm');
      const commit = reader.uvarint('commit');
      return { type, from, to, term, prevLogIndex, prevLogTerm, entries: readEntries(reader), commit };
    }
    case 'AppResp':
      return {
        type,
        from,
        to,
        term,
        reject: reader.bool('reject'),
        index: reader.uvarint('index'),
        rejectHint: reader.uvarint('rejectHint'),
        hintTerm: reader.uvarint('hintTerm'),
      };
    case 'Heartbeat': {
      const heartbeat: Message = { type, from, to, term, commit: reader.uvarint('commit'), context: reader.bytes('context') };
      if (reader.bool('quiesce')) heartbeat.quiesce = true;
      return heartbeat;
    }
    case 'HeartbeatResp':
    case 'ReadIndex':
      return { type, from, to, term, context: reader.bytes('context') };
    case 'Snap':
      return { type, from, to, term, snapshot: readSnapshot(reader) };
    case 'Prop':
      return { type, from, to, term, entries: readEntries(reader) };
    case 'ReadIndexResp':
      return { type, from, to, term, index: reader.uvarint('index'), context: reader.bytes('context') };
    case 'TimeoutNow':
      return { type, from, to, term };
    case 'TransferLeader':
      return { type, from, to, term, transferee: reader.uvarint('transferee') };
    default: {
      const unknown: never = type;
      throw malformed(`unknown message type ${String(unknown)}`, 1);
    }
  }
}
