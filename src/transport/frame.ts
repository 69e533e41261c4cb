// Framing of the peer byte stream. Every frame is a u32 big-endian length (the bytes after the
// length field), a u8 kind, and the payload:
//
//   Hello      magic "LCHN" · u8 protocol version · varint clusterId · varint from · varint to
//              (node ids: the dialing process and the one it dials) · the dialer's data
//              directory id (DATA_DIR_ID_BYTES) (the first frame on a connection, sent by the dialer)
//   HelloAck   u8 status · accepted (1): the listener's data directory id; otherwise a refusal
//              and a utf-8 reason, which never names an id of the cluster (whoever dials may be a
//              stranger). The status says what kind of refusal, for the dialer to act on: 2
//              ("superseded"): the listener knows the dialer's member by another data directory;
//              3 ("not_member"): the dialer is not a current member of the listener's cluster;
//              4 ("wrong_member"): the listener is another member of that cluster than the one
//              the dialer wants; 0 ("refused"): anything else. A release of protocol version 3
//              that predates statuses 3 and 4 reads them as a malformed acknowledgement, drops the
//              connection and dials again, as it did with those refusals before.
//   Challenge  a random nonce of NONCE_BYTES: "if you are the member you claim, send this back"
//   Proof      the nonce of a Challenge, sent back on the connection it vouches for
//   Message    varint group id · one message of that group in the codec's encoding (codec.ts)
//   SnapBegin  varint total snapshot data bytes · varint group id · a Snap message whose
//              snapshot data is empty
//   SnapChunk  raw snapshot data bytes (the chunks after a SnapBegin add up to its total)
//   Beat       varint count · count × (varint group id · varint length · message): a store's
//              once-a-tick frame to a peer process, carrying the heartbeats and heartbeat
//              responses of all its groups for that process (coalesced: one frame, not one per
//              group), and standing in for a liveness heartbeat when it carries none
//
// Challenge and Proof bind a connection to one node id (tcp.ts says how and why); they may
// travel before the HelloAck, in both directions' connections.
//
// A frame's size (length field included) never exceeds the receiver's maxFrameBytes; a receiver
// closes the connection on an oversize or empty frame rather than buffering without bound.
import type { Message, NodeId } from '../raft/types.js';
import { LichenError, ErrorCode, assert } from '../errors.js';
import { isGroupId, type GroupId } from '../ids.js';
import { encodeMessage } from './codec.js';
import { peerHandshakeFrameBytesMax } from '../limits.js';

/**
 * 2: the dialer proves its member id (Challenge and Proof) before the HelloAck. 3: both sides
 * name their data directory (src/server/data-dirs.ts says why). 4: a connection binds a node (a
 * process hosting replicas of many groups), messages carry their group id, and Beat frames carry
 * the heartbeats of all groups.
 *
 * Members speak exactly one version, and a listener refuses a dialer of another one at the Hello,
 * so two releases never half-talk. For the refusal to be readable whatever the versions, two things
 * never change: a Hello starts with HELLO_MAGIC and the version byte, and a refusing HelloAck is
 * the frame kind, status 0 and the reason in UTF-8 (which names both versions).
 */
export const PROTOCOL_VERSION = 4;
/** A data directory id: 64 random bits drawn when the directory was created. */
export const DATA_DIR_ID_BYTES = 8;
export const FRAME_LENGTH_BYTES = 4;
/** The length field plus the kind byte. */
export const FRAME_HEADER_BYTES = 5;
const HELLO_MAGIC = Buffer.from('LCHN', 'latin1');
/** Hello and HelloAck are tiny; before the handshake the receiver accepts no larger frame. */
export const HANDSHAKE_FRAME_BYTES_MAX = peerHandshakeFrameBytesMax;
const REASON_BYTES_MAX = HANDSHAKE_FRAME_BYTES_MAX - FRAME_HEADER_BYTES - 1;

export const FrameKind = { Hello: 1, HelloAck: 2, Message: 3, SnapBegin: 4, SnapChunk: 5, Challenge: 6, Proof: 7, Beat: 8 } as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Fills in the frame header of a buffer whose first FRAME_HEADER_BYTES were left as headroom. */
export function writeFrameHeader(frame: Buffer, kind: FrameKind): Buffer {
  frame.writeUInt32BE(frame.length - FRAME_LENGTH_BYTES, 0);
  frame[FRAME_LENGTH_BYTES] = kind;
  return frame;
}

/** A header for a frame whose payload is written separately (snapshot chunks, to avoid a copy). */
export function frameHeader(kind: FrameKind, payloadBytes: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt32BE(payloadBytes + 1, 0);
  header[FRAME_LENGTH_BYTES] = kind;
  return header;
}

function protocolError(reason: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, `peer protocol error: ${reason}`);
}

// Small varint helpers for the frame payloads (the codec has its own, tuned for messages).
function varintBytes(value: number): number[] {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return bytes;
}

function readVarint(bytes: Uint8Array, offset: number, what: string): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (offset + i >= bytes.length) throw protocolError(`truncated ${what}`);
    const byte = bytes[offset + i]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      if (value > Number.MAX_SAFE_INTEGER) throw protocolError(`${what} exceeds 2^53 - 1`);
      return { value, next: offset + i + 1 };
    }
    scale *= 128;
  }
  throw protocolError(`${what} varint too long`);
}

export interface Hello {
  protocolVersion: number;
  clusterId: number;
  from: NodeId;
  to: NodeId;
  dataDirId: Uint8Array;
}

export function encodeHello(hello: Omit<Hello, 'protocolVersion'>): Buffer {
  assert(hello.dataDirId.length === DATA_DIR_ID_BYTES, `a data directory id has ${DATA_DIR_ID_BYTES} bytes`);
  const payload = [
    ...HELLO_MAGIC,
    PROTOCOL_VERSION,
    ...varintBytes(hello.clusterId),
    ...varintBytes(hello.from),
    ...varintBytes(hello.to),
    ...hello.dataDirId,
  ];
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  return writeFrameHeader(frame, FrameKind.Hello);
}

/** Parses a Hello payload (the frame after its kind byte). The version is checked by the caller. */
export function decodeHello(payload: Uint8Array): Hello {
  if (payload.length < HELLO_MAGIC.length + 1 || !HELLO_MAGIC.equals(payload.subarray(0, HELLO_MAGIC.length))) {
    throw protocolError('the first frame is not a Lichen peer hello (wrong magic); is this a Lichen peer port?');
  }
  const protocolVersion = payload[HELLO_MAGIC.length]!;
  // Another version's hello may be laid out differently: the caller refuses it by its version.
  if (protocolVersion !== PROTOCOL_VERSION) return { protocolVersion, clusterId: 0, from: 0, to: 0, dataDirId: new Uint8Array(0) };
  const clusterId = readVarint(payload, HELLO_MAGIC.length + 1, 'clusterId');
  const from = readVarint(payload, clusterId.next, 'from');
  const to = readVarint(payload, from.next, 'to');
  if (to.next + DATA_DIR_ID_BYTES !== payload.length) throw protocolError('the hello does not end with a data directory id');
  return { protocolVersion, clusterId: clusterId.value, from: from.value, to: to.value, dataDirId: Uint8Array.from(payload.subarray(to.next)) };
}

/** Why a listener refused a handshake, as far as the dialer needs to know (see the HelloAck above). */
export type HelloRefusalStatus = 'refused' | 'superseded' | 'not_member' | 'wrong_member';

/** What a HelloAck says: accepted with the listener's data directory id, or refused with a reason. */
export type HelloAck = { status: 'accepted'; dataDirId: Uint8Array } | { status: HelloRefusalStatus; reason: string };

const ACK_STATUS = { refused: 0, accepted: 1, superseded: 2, not_member: 3, wrong_member: 4 } as const;
const REFUSAL_BY_STATUS = new Map<number, HelloRefusalStatus>([
  [ACK_STATUS.refused, 'refused'],
  [ACK_STATUS.superseded, 'superseded'],
  [ACK_STATUS.not_member, 'not_member'],
  [ACK_STATUS.wrong_member, 'wrong_member'],
]);

export function encodeHelloAck(ack: HelloAck): Buffer {
  const body = ack.status === 'accepted' ? ack.dataDirId : Buffer.from(ack.reason, 'utf8').subarray(0, REASON_BYTES_MAX);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + body.length);
  frame[FRAME_HEADER_BYTES] = ACK_STATUS[ack.status];
  frame.set(body, FRAME_HEADER_BYTES + 1);
  return writeFrameHeader(frame, FrameKind.HelloAck);
}

export function decodeHelloAck(payload: Uint8Array): HelloAck {
  const body = payload.subarray(1);
  if (payload[0] === ACK_STATUS.accepted) {
    if (body.length !== DATA_DIR_ID_BYTES) throw protocolError('malformed hello acknowledgement');
    return { status: 'accepted', dataDirId: Uint8Array.from(body) };
  }
  const status = REFUSAL_BY_STATUS.get(payload[0]!);
  if (status === undefined) throw protocolError('malformed hello acknowledgement');
  return { status, reason: Buffer.from(body).toString('utf8') };
}

/** 128 random bits: an impostor cannot guess a challenge within a handshake timeout. */
export const NONCE_BYTES = 16;

export function encodeNonceFrame(kind: typeof FrameKind.Challenge | typeof FrameKind.Proof, nonce: Uint8Array): Buffer {
  assert(nonce.length === NONCE_BYTES, `a nonce has ${NONCE_BYTES} bytes`);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + NONCE_BYTES);
  frame.set(nonce, FRAME_HEADER_BYTES);
  return writeFrameHeader(frame, kind);
}

/** The nonce of a Challenge or Proof payload. */
export function decodeNonce(payload: Uint8Array): Buffer {
  if (payload.length !== NONCE_BYTES) throw protocolError(`a challenge or proof carries ${NONCE_BYTES} bytes, not ${payload.length}`);
  return Buffer.from(payload.buffer, payload.byteOffset, payload.length);
}

/** SnapBegin payload: the total data length, the group id, then the Snap message encoded without its data. */
export function encodeSnapBegin(totalBytes: number, group: GroupId, emptySnapMessage: Uint8Array): Buffer {
  const head = [...varintBytes(totalBytes), ...varintBytes(group)];
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + head.length + emptySnapMessage.length);
  frame.set(head, FRAME_HEADER_BYTES);
  frame.set(emptySnapMessage, FRAME_HEADER_BYTES + head.length);
  return writeFrameHeader(frame, FrameKind.SnapBegin);
}

export function decodeSnapBegin(payload: Uint8Array): { totalBytes: number; group: GroupId; message: Uint8Array } {
  const total = readVarint(payload, 0, 'snapshot total bytes');
  const group = readGroupId(payload, total.next);
  return { totalBytes: total.value, group: group.value, message: payload.subarray(group.next) };
}

function readGroupId(bytes: Uint8Array, offset: number): { value: GroupId; next: number } {
  const group = readVarint(bytes, offset, 'group id');
  if (!isGroupId(group.value)) throw protocolError(`group id ${group.value} is not a positive 32-bit integer`);
  return group;
}

/** A message and the group it belongs to. */
export interface GroupMessage {
  group: GroupId;
  message: Message;
}

/** A Message frame: the group id, then the message (encoded once, straight after the header). */
export function encodeMessageFrame(group: GroupId, m: Message): Buffer {
  const groupBytes = varintBytes(group);
  const frame = encodeMessage(m, FRAME_HEADER_BYTES + groupBytes.length);
  frame.set(groupBytes, FRAME_HEADER_BYTES);
  return writeFrameHeader(frame, FrameKind.Message);
}

/** The group id of a Message payload and the bytes of its message. */
export function decodeMessageFrame(payload: Uint8Array): { group: GroupId; message: Uint8Array } {
  const group = readGroupId(payload, 0);
  return { group: group.value, message: payload.subarray(group.next) };
}

/**
 * Beat frames for `messages`, as few as fit `frameBytesMax` each (one, unless thousands of groups'
 * heartbeats go to one peer with a small frame limit); one empty frame when there are none.
 */
export function encodeBeatFrames(messages: GroupMessage[], frameBytesMax: number): Buffer[] {
  const items = messages.map(({ group, message }) => {
    const body = encodeMessage(message);
    return Buffer.concat([Buffer.from([...varintBytes(group), ...varintBytes(body.length)]), body]);
  });
  const frames: Buffer[] = [];
  let start = 0;
  do {
    let bytes = FRAME_HEADER_BYTES + 8;
    let end = start;
    while (end < items.length && (end === start || bytes + items[end]!.length <= frameBytesMax)) bytes += items[end++]!.length;
    const count = varintBytes(end - start);
    frames.push(writeFrameHeader(Buffer.concat([Buffer.alloc(FRAME_HEADER_BYTES), Buffer.from(count), ...items.slice(start, end)]), FrameKind.Beat));
    start = end;
  } while (start < items.length);
  return frames;
}

/** The group ids and encoded messages of a Beat payload (each message still to be decoded). */
export function decodeBeat(payload: Uint8Array): { group: GroupId; message: Uint8Array }[] {
  const count = readVarint(payload, 0, 'beat message count');
  // Each item takes at least three bytes: a count beyond that is a lie, refused before any array is sized.
  if (count.value > (payload.length - count.next) / 3) throw protocolError(`a beat announces ${count.value} messages in ${payload.length} bytes`);
  const items: { group: GroupId; message: Uint8Array }[] = [];
  let offset = count.next;
  for (let i = 0; i < count.value; i++) {
    const group = readGroupId(payload, offset);
    const length = readVarint(payload, group.next, 'beat message length');
    if (length.next + length.value > payload.length) throw protocolError('a beat message runs past the end of its frame');
    items.push({ group: group.value, message: payload.subarray(length.next, length.next + length.value) });
    offset = length.next + length.value;
  }
  if (offset !== payload.length) throw protocolError('a beat frame has bytes after its last message');
  return items;
}

/**
 * Splits a byte stream into frames. Frames that arrive whole inside one socket read are handed out
 * as subarrays of that read (no copy); a frame split across reads is assembled into one buffer of
 * its exact size, so assembly is linear in the frame size. Each handed-out frame starts with its
 * kind byte (the length field is stripped).
 */
export class FrameReader {
  #header = Buffer.alloc(FRAME_LENGTH_BYTES);
  #headerFill = 0;
  #frame: Buffer | null = null;
  #frameFill = 0;
  #stopped = false;

  /** The largest accepted frame including its length field; may be raised after the handshake. */
  constructor(public frameBytesMax: number) {}

  /** Stops handing out frames, also from the rest of the chunk being processed. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Feeds one chunk. Calls onFrame for each complete frame in order. Returns an error description
   * if the stream is broken (the caller must close the connection), or null.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): string | null {
    let offset = 0;
    while (offset < chunk.length && !this.#stopped) {
      if (this.#frame !== null) {
        const take = Math.min(this.#frame.length - this.#frameFill, chunk.length - offset);
        chunk.copy(this.#frame, this.#frameFill, offset, offset + take);
        this.#frameFill += take;
        offset += take;
        if (this.#frameFill === this.#frame.length) {
          const frame = this.#frame;
          this.#frame = null;
          onFrame(frame);
        }
        continue;
      }
      let length: number;
      if (this.#headerFill === 0 && chunk.length - offset >= FRAME_LENGTH_BYTES) {
        length = chunk.readUInt32BE(offset);
        offset += FRAME_LENGTH_BYTES;
      } else {
        const take = Math.min(FRAME_LENGTH_BYTES - this.#headerFill, chunk.length - offset);
        chunk.copy(this.#header, this.#headerFill, offset, offset + take);
        this.#headerFill += take;
        offset += take;
        if (this.#headerFill < FRAME_LENGTH_BYTES) return null;
        this.#headerFill = 0;
        length = this.#header.readUInt32BE(0);
      }
      if (length === 0) return 'empty frame';
      if (length + FRAME_LENGTH_BYTES > this.frameBytesMax) {
        return `frame of ${length + FRAME_LENGTH_BYTES} bytes exceeds the limit of ${this.frameBytesMax}`;
      }
      if (chunk.length - offset >= length) {
        const frame = chunk.subarray(offset, offset + length);
        offset += length;
        onFrame(frame);
      } else {
        this.#frame = Buffer.allocUnsafe(length);
        this.#frameFill = 0;
      }
    }
    return null;
  }
}
