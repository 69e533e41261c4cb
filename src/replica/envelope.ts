// What a Normal raft entry carries: who proposed it (so the proposing node can answer its client
// when it applies the entry) and what to do. Binary layout, version 1:
//   u8 version | u8 kind | f64 origin member id | f64 request sequence | body
// The origin and sequence identify the waiting client request (each process of a member starts its
// sequence at a random point, see PendingProposals); both are 0 for entries no client waits for
// (lease expiry, member attribute publication).
import { assert } from '../errors.js';
import { proposalHeaderBytesMax } from '../limits.js';

export const EnvelopeKind = {
  /** body: an encoded mvcc Command. */
  Mvcc: 1,
  /** body: JSON MemberAttributes of the origin member (its client URLs). */
  MemberAttributes: 2,
} as const;
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

export interface Envelope {
  kind: EnvelopeKind;
  origin: number;
  sequence: number;
  body: Uint8Array;
}

const VERSION = 1;
const HEADER_BYTES = 18;
assert(HEADER_BYTES <= proposalHeaderBytesMax, 'the envelope header outgrew proposalHeaderBytesMax (limits.ts)');

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const out = Buffer.allocUnsafe(HEADER_BYTES + envelope.body.length);
  out.writeUInt8(VERSION, 0);
  out.writeUInt8(envelope.kind, 1);
  out.writeDoubleBE(envelope.origin, 2);
  out.writeDoubleBE(envelope.sequence, 10);
  out.set(envelope.body, HEADER_BYTES);
  return out;
}

export function decodeEnvelope(data: Uint8Array): Envelope {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  assert(buf.length >= HEADER_BYTES, `entry envelope is ${buf.length} bytes, shorter than its header`);
  assert(buf.readUInt8(0) === VERSION, `entry envelope version ${buf.readUInt8(0)} is not ${VERSION}`);
  const kind = buf.readUInt8(1) as EnvelopeKind;
  assert(kind === EnvelopeKind.Mvcc || kind === EnvelopeKind.MemberAttributes, `unknown entry kind ${kind}`);
  return {
    kind,
    origin: buf.readDoubleBE(2),
    sequence: buf.readDoubleBE(10),
    body: buf.subarray(HEADER_BYTES),
  };
}
