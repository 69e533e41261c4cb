// A hand-written protobuf codec for the messages of the etcd KV service (etcdserverpb Range, Put,
// DeleteRange, Txn, Compact, with ResponseHeader and mvccpb.KeyValue). It takes the place of
// proto-loader's protobufjs (de)serializers in the KV service definition, on the server and in
// the benchmark client.
//
// Why: profiles of a gRPC KV request showed about 14% of the server's CPU in protobufjs and
// long.js: a decoded message object, then a Long and a decimal string per int64 field and a
// second, plain object from toObject; on the way out, fromObject's copy before encoding. The KV
// messages are few and fixed, so a direct codec is short: it decodes straight into the plain
// objects, bytes as views of the input (no copy), int64 as numbers, and encodes into one exactly
// sized Buffer. scripts/bench-codec.ts measures the two side by side.
//
// The decoded objects keep the shape proto-loader gives with our loader options (src/api/grpc
// proto.ts), so the handlers and src/api/grpc/wire.ts do not change: snake_case names, bytes as
// Buffer, enums as numbers, every non-oneof field present with its default (message fields null),
// and for a oneof the virtual field naming the set member, with only that member present.
// The one difference: an int64/uint64 arrives as a number when its magnitude is at most
// Number.MAX_SAFE_INTEGER and as its exact decimal string only beyond (so toSafeInt still names
// the field it rejects).
//
// Field numbers and types: proto/etcdserverpb/rpc.proto and proto/mvccpb/kv.proto. A field whose
// wire type is not the declared one is skipped like an unknown field, as proto3 parsers do.
import assert from 'node:assert';
import { makeClientConstructor, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { txnDepthMax } from '../../limits.js';
import type { KeyValue, KeyValueSink } from '../../mvcc/types.js';
import { GRPC_MESSAGE_PREFIX_BYTES } from './http2-server.js';
import { RESPONSE_PIECE_BYTES, lendPiece } from './h2/pieces.js';
import { serviceDefinition, type ServiceName } from './proto.js';
import {
  type WireBytes,
  type WireCompare,
  type WireDeleteRangeRequest,
  type WireHeader,
  type WireKeyValue,
  type WireLong,
  type WirePutRequest,
  type WireRangeRequest,
  type WireRequestOp,
  type WireTxnRequest,
} from './wire.js';

// ---- message shapes ----

/** What an int64/uint64 field accepts when encoding. Long-like is long.js's {low, high}. */
export type LongInput = number | string | bigint | LongLike;
export interface LongLike {
  low: number;
  high: number;
  unsigned?: boolean;
}

export interface WireCompactionRequest {
  revision: WireLong;
  physical: boolean;
}

export interface WireRangeResponse {
  header: WireHeader | null;
  kvs: WireKeyValue[];
  more: boolean;
  count: WireLong;
}

export interface WirePutResponse {
  header: WireHeader | null;
  prev_kv: WireKeyValue | null;
}

export interface WireDeleteRangeResponse {
  header: WireHeader | null;
  deleted: WireLong;
  prev_kvs: WireKeyValue[];
}

export interface WireResponseOp {
  response?: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  response_range?: WireRangeResponse;
  response_put?: WirePutResponse;
  response_delete_range?: WireDeleteRangeResponse;
  response_txn?: WireTxnResponse;
}

export interface WireTxnResponse {
  header: WireHeader | null;
  succeeded: boolean;
  responses: WireResponseOp[];
}

export interface WireCompactionResponse {
  header: WireHeader | null;
}

/**
 * What the encoder accepts for a decoded shape T: every field optional (absent, null and the
 * zero value are all omitted), int64 fields as any LongInput.
 */
export type Encodable<T> = { [K in keyof T]?: EncodableValue<NonNullable<T[K]>> | null };
type EncodableValue<V> = [V] extends [Uint8Array]
  ? Uint8Array
  : [V] extends [readonly (infer E)[]]
    ? readonly Encodable<E>[]
    : [V] extends [boolean]
      ? boolean
      : [V] extends [number]
        ? number
        : [V] extends [string]
          ? V
          : [V] extends [WireLong]
            ? LongInput
            : [V] extends [object]
              ? Encodable<V>
              : V;

// ---- reading ----

const MAX_SAFE_HIGH_WORD = 0x1fffff; // hi * 2^32 + lo is a safe integer iff hi <= 2^21 - 1
const TWO_32 = 4294967296;
/**
 * wire.ts rejects txns nested deeper than txnDepthMax with etcd's error; the decoder only needs
 * its recursion bounded, so it allows more and leaves the friendlier error to the handler.
 */
const TXN_NESTING_MAX = txnDepthMax * 4;
/** Shared default for absent bytes fields: it has no bytes, so sharing it cannot leak data. */
const EMPTY_BYTES: Buffer = Buffer.alloc(0);

/** Read position in one input buffer, plus the two 32-bit halves of the last varint read. */
class Reader {
  pos = 0;
  lo = 0;
  hi = 0;
  constructor(readonly buf: Buffer) {}
}

function truncated(offset: number): Error {
  return new Error(`truncated: the message ends inside a field at byte ${offset}`);
}

/** Reads a varint of up to 10 bytes into r.lo (bits 0-31) and r.hi (bits 32-63). */
function readVarint(r: Reader, end: number): void {
  const buf = r.buf;
  const start = r.pos;
  let pos = start;
  let lo = 0;
  let hi = 0;
  let byte = 0;
  // Bytes 1-4 carry bits 0-27.
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) throw truncated(pos);
    byte = buf[pos++] as number;
    lo |= (byte & 0x7f) << shift;
    if (byte < 0x80) return setVarint(r, pos, lo, 0);
  }
  // Byte 5 straddles the halves: bits 28-31 and 32-34.
  if (pos >= end) throw truncated(pos);
  byte = buf[pos++] as number;
  lo |= (byte & 0x7f) << 28;
  hi = (byte & 0x7f) >>> 4;
  if (byte < 0x80) return setVarint(r, pos, lo, hi);
  // Bytes 6-9 carry bits 35-62.
  for (let shift = 3; shift < 31; shift += 7) {
    if (pos >= end) throw truncated(pos);
    byte = buf[pos++] as number;
    hi |= (byte & 0x7f) << shift;
    if (byte < 0x80) return setVarint(r, pos, lo, hi);
  }
  // Byte 10 carries bit 63 only; anything more would not fit in 64 bits.
  if (pos >= end) throw truncated(pos);
  byte = buf[pos++] as number;
  if (byte > 1) throw new Error(`varint at byte ${start} is longer than 64 bits`);
  return setVarint(r, pos, lo, hi | (byte << 31));
}

function setVarint(r: Reader, pos: number, lo: number, hi: number): void {
  r.pos = pos;
  r.lo = lo >>> 0;
  r.hi = hi >>> 0;
}

function readTag(r: Reader, end: number): number {
  const byte = r.buf[r.pos] as number;
  if (byte < 0x80) {
    r.pos++;
    return byte;
  }
  const start = r.pos;
  readVarint(r, end);
  if (r.hi !== 0) throw new Error(`field tag at byte ${start} is out of range`);
  return r.lo;
}

/** A length prefix, checked against what is left of the enclosing message. */
function readLength(r: Reader, end: number): number {
  const start = r.pos;
  readVarint(r, end);
  if (r.hi !== 0 || r.lo > end - r.pos) {
    throw new Error(`length at byte ${start} runs past the end of the message`);
  }
  return r.lo;
}

/** A bytes field as a view of the input (no copy, as protobufjs does for Buffers). */
function readBytes(r: Reader, end: number): Buffer {
  const length = readLength(r, end);
  const start = r.pos;
  r.pos = start + length;
  return r.buf.subarray(start, r.pos);
}

/** The end offset of an embedded message whose length prefix comes next. */
function readMessageEnd(r: Reader, end: number): number {
  const length = readLength(r, end);
  return r.pos + length;
}

function readInt64(r: Reader, end: number): WireLong {
  const pos = r.pos;
  if (pos < end && (r.buf[pos] as number) < 0x80) {
    r.pos = pos + 1;
    return r.buf[pos] as number;
  }
  readVarint(r, end);
  if ((r.hi & 0x80000000) === 0) return unsignedValue(r.lo, r.hi);
  // Negative: the varint holds the 64-bit two's complement; negate it to get the magnitude.
  const lo = (~r.lo + 1) >>> 0;
  const hi = (~r.hi + (lo === 0 ? 1 : 0)) >>> 0;
  if (hi <= MAX_SAFE_HIGH_WORD) return -(hi * TWO_32 + lo);
  return `-${bigValue(lo, hi)}`;
}

function readUint64(r: Reader, end: number): WireLong {
  readVarint(r, end);
  return unsignedValue(r.lo, r.hi);
}

function unsignedValue(lo: number, hi: number): WireLong {
  if (hi <= MAX_SAFE_HIGH_WORD) return hi * TWO_32 + lo;
  return bigValue(lo, hi);
}

/** The slow path, for magnitudes beyond 2^53 - 1: exact decimal text via BigInt. */
function bigValue(lo: number, hi: number): string {
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** An enum (int32): a negative value arrives sign-extended to 10 bytes; keep the low 32 bits. */
function readEnum(r: Reader, end: number): number {
  readVarint(r, end);
  return r.lo | 0;
}

function readBool(r: Reader, end: number): boolean {
  readVarint(r, end);
  return (r.lo | r.hi) !== 0;
}

function skipField(r: Reader, end: number, tag: number): void {
  const field = tag >>> 3;
  if (field === 0) throw new Error(`invalid field number 0 at byte ${r.pos}`);
  switch (tag & 7) {
    case 0:
      readVarint(r, end);
      return;
    case 1:
      return skipFixed(r, end, 8);
    case 2: {
      // Not `r.pos += readLength(...)`: that would add to the position from before the length.
      const length = readLength(r, end);
      r.pos += length;
      return;
    }
    case 5:
      return skipFixed(r, end, 4);
    case 3:
    case 4:
      throw new Error(`field ${field} is a group (wire type ${tag & 7}), which these messages never contain`);
    default:
      throw new Error(`field ${field} has invalid wire type ${tag & 7}`);
  }
}

function skipFixed(r: Reader, end: number, size: number): void {
  if (end - r.pos < size) throw truncated(end);
  r.pos += size;
}

// Each read function decodes fields until `end`. Every read checks `end` first, so the loop
// stops exactly there and never reads into the enclosing message. The cases are full tags
// (field number << 3 | wire type).

function readHeader(r: Reader, end: number): WireHeader {
  let clusterId: WireLong = 0;
  let memberId: WireLong = 0;
  let revision: WireLong = 0;
  let raftTerm: WireLong = 0;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 8: clusterId = readUint64(r, end); break;
      case 16: memberId = readUint64(r, end); break;
      case 24: revision = readInt64(r, end); break;
      case 32: raftTerm = readUint64(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return { cluster_id: clusterId, member_id: memberId, revision, raft_term: raftTerm };
}

function readKeyValue(r: Reader, end: number): WireKeyValue {
  let key: WireBytes = EMPTY_BYTES;
  let createRevision: WireLong = 0;
  let modRevision: WireLong = 0;
  let version: WireLong = 0;
  let value: WireBytes = EMPTY_BYTES;
  let lease: WireLong = 0;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: key = readBytes(r, end); break;
      case 16: createRevision = readInt64(r, end); break;
      case 24: modRevision = readInt64(r, end); break;
      case 32: version = readInt64(r, end); break;
      case 42: value = readBytes(r, end); break;
      case 48: lease = readInt64(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return { key, create_revision: createRevision, mod_revision: modRevision, version, value, lease };
}

/** mvccpb.Event: type 1 (enum), kv 2, prev_kv 3. */
export interface WireEvent {
  type: number;
  kv: WireKeyValue | null;
  prev_kv: WireKeyValue | null;
}

function readEvent(r: Reader, end: number): WireEvent {
  let type = 0;
  let kv: WireKeyValue | null = null;
  let prevKv: WireKeyValue | null = null;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 8: type = readEnum(r, end); break;
      case 18: kv = readKeyValue(r, readMessageEnd(r, end)); break;
      case 26: prevKv = readKeyValue(r, readMessageEnd(r, end)); break;
      default: skipField(r, end, tag);
    }
  }
  return { type, kv, prev_kv: prevKv };
}

function readRangeRequest(r: Reader, end: number): WireRangeRequest {
  let key: WireBytes = EMPTY_BYTES;
  let rangeEnd: WireBytes = EMPTY_BYTES;
  let limit: WireLong = 0;
  let revision: WireLong = 0;
  let sortOrder = 0;
  let sortTarget = 0;
  let serializable = false;
  let keysOnly = false;
  let countOnly = false;
  let minModRevision: WireLong = 0;
  let maxModRevision: WireLong = 0;
  let minCreateRevision: WireLong = 0;
  let maxCreateRevision: WireLong = 0;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: key = readBytes(r, end); break;
      case 18: rangeEnd = readBytes(r, end); break;
      case 24: limit = readInt64(r, end); break;
      case 32: revision = readInt64(r, end); break;
      case 40: sortOrder = readEnum(r, end); break;
      case 48: sortTarget = readEnum(r, end); break;
      case 56: serializable = readBool(r, end); break;
      case 64: keysOnly = readBool(r, end); break;
      case 72: countOnly = readBool(r, end); break;
      case 80: minModRevision = readInt64(r, end); break;
      case 88: maxModRevision = readInt64(r, end); break;
      case 96: minCreateRevision = readInt64(r, end); break;
      case 104: maxCreateRevision = readInt64(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return {
    key,
    range_end: rangeEnd,
    limit,
    revision,
    sort_order: sortOrder,
    sort_target: sortTarget,
    serializable,
    keys_only: keysOnly,
    count_only: countOnly,
    min_mod_revision: minModRevision,
    max_mod_revision: maxModRevision,
    min_create_revision: minCreateRevision,
    max_create_revision: maxCreateRevision,
  };
}

function readRangeResponse(r: Reader, end: number): WireRangeResponse {
  let header: WireHeader | null = null;
  const kvs: WireKeyValue[] = [];
  let more = false;
  let count: WireLong = 0;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: header = readHeader(r, readMessageEnd(r, end)); break;
      case 18: kvs.push(readKeyValue(r, readMessageEnd(r, end))); break;
      case 24: more = readBool(r, end); break;
      case 32: count = readInt64(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return { header, kvs, more, count };
}

function readPutRequest(r: Reader, end: number): WirePutRequest {
  let key: WireBytes = EMPTY_BYTES;
  let value: WireBytes = EMPTY_BYTES;
  let lease: WireLong = 0;
  let prevKv = false;
  let ignoreValue = false;
  let ignoreLease = false;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: key = readBytes(r, end); break;
      case 18: value = readBytes(r, end); break;
      case 24: lease = readInt64(r, end); break;
      case 32: prevKv = readBool(r, end); break;
      case 40: ignoreValue = readBool(r, end); break;
      case 48: ignoreLease = readBool(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return { key, value, lease, prev_kv: prevKv, ignore_value: ignoreValue, ignore_lease: ignoreLease };
}

function readPutResponse(r: Reader, end: number): WirePutResponse {
  let header: WireHeader | null = null;
  let prevKv: WireKeyValue | null = null;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: header = readHeader(r, readMessageEnd(r, end)); break;
      case 18: prevKv = readKeyValue(r, readMessageEnd(r, end)); break;
      default: skipField(r, end, tag);
    }
  }
  return { header, prev_kv: prevKv };
}

function readDeleteRangeRequest(r: Reader, end: number): WireDeleteRangeRequest {
  let key: WireBytes = EMPTY_BYTES;
  let rangeEnd: WireBytes = EMPTY_BYTES;
  let prevKv = false;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: key = readBytes(r, end); break;
      case 18: rangeEnd = readBytes(r, end); break;
      case 24: prevKv = readBool(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return { key, range_end: rangeEnd, prev_kv: prevKv };
}

function readDeleteRangeResponse(r: Reader, end: number): WireDeleteRangeResponse {
  let header: WireHeader | null = null;
  let deleted: WireLong = 0;
  const prevKvs: WireKeyValue[] = [];
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: header = readHeader(r, readMessageEnd(r, end)); break;
      case 16: deleted = readInt64(r, end); break;
      case 26: prevKvs.push(readKeyValue(r, readMessageEnd(r, end))); break;
      default: skipField(r, end, tag);
    }
  }
  return { header, deleted, prev_kvs: prevKvs };
}

function readCompare(r: Reader, end: number): WireCompare {
  let result = 0;
  let target = 0;
  let key: WireBytes = EMPTY_BYTES;
  let rangeEnd: WireBytes = EMPTY_BYTES;
  // The oneof target_union: the last member on the wire wins, as in every protobuf parser.
  let memberTag = 0;
  let operand: WireLong | WireBytes = 0;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 8: result = readEnum(r, end); break;
      case 16: target = readEnum(r, end); break;
      case 26: key = readBytes(r, end); break;
      case 32:
      case 40:
      case 48:
      case 64:
        memberTag = tag;
        operand = readInt64(r, end);
        break;
      case 58:
        memberTag = tag;
        operand = readBytes(r, end);
        break;
      case 514: rangeEnd = readBytes(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  // One literal per member, so each decoded Compare has only its set member.
  const range_end = rangeEnd;
  switch (memberTag) {
    case 32: return { result, target, key, range_end, version: operand as WireLong, target_union: 'version' };
    case 40: return { result, target, key, range_end, create_revision: operand as WireLong, target_union: 'create_revision' };
    case 48: return { result, target, key, range_end, mod_revision: operand as WireLong, target_union: 'mod_revision' };
    case 58: return { result, target, key, range_end, value: operand as WireBytes, target_union: 'value' };
    case 64: return { result, target, key, range_end, lease: operand as WireLong, target_union: 'lease' };
    default: return { result, target, key, range_end };
  }
}

function readRequestOp(r: Reader, end: number, depth: number): WireRequestOp {
  let op: WireRequestOp = {};
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: op = { request_range: readRangeRequest(r, readMessageEnd(r, end)), request: 'request_range' }; break;
      case 18: op = { request_put: readPutRequest(r, readMessageEnd(r, end)), request: 'request_put' }; break;
      case 26:
        op = { request_delete_range: readDeleteRangeRequest(r, readMessageEnd(r, end)), request: 'request_delete_range' };
        break;
      case 34: op = { request_txn: readTxnRequest(r, readMessageEnd(r, end), depth + 1), request: 'request_txn' }; break;
      default: skipField(r, end, tag);
    }
  }
  return op;
}

function readTxnRequest(r: Reader, end: number, depth: number): WireTxnRequest {
  checkNesting(depth);
  const compare: WireCompare[] = [];
  const success: WireRequestOp[] = [];
  const failure: WireRequestOp[] = [];
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: compare.push(readCompare(r, readMessageEnd(r, end))); break;
      case 18: success.push(readRequestOp(r, readMessageEnd(r, end), depth)); break;
      case 26: failure.push(readRequestOp(r, readMessageEnd(r, end), depth)); break;
      default: skipField(r, end, tag);
    }
  }
  return { compare, success, failure };
}

function readResponseOp(r: Reader, end: number, depth: number): WireResponseOp {
  let op: WireResponseOp = {};
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: op = { response_range: readRangeResponse(r, readMessageEnd(r, end)), response: 'response_range' }; break;
      case 18: op = { response_put: readPutResponse(r, readMessageEnd(r, end)), response: 'response_put' }; break;
      case 26:
        op = {
          response_delete_range: readDeleteRangeResponse(r, readMessageEnd(r, end)),
          response: 'response_delete_range',
        };
        break;
      case 34: op = { response_txn: readTxnResponse(r, readMessageEnd(r, end), depth + 1), response: 'response_txn' }; break;
      default: skipField(r, end, tag);
    }
  }
  return op;
}

function readTxnResponse(r: Reader, end: number, depth: number): WireTxnResponse {
  checkNesting(depth);
  let header: WireHeader | null = null;
  let succeeded = false;
  const responses: WireResponseOp[] = [];
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: header = readHeader(r, readMessageEnd(r, end)); break;
      case 16: succeeded = readBool(r, end); break;
      case 26: responses.push(readResponseOp(r, readMessageEnd(r, end), depth)); break;
      default: skipField(r, end, tag);
    }
  }
  return { header, succeeded, responses };
}

function checkNesting(depth: number): void {
  if (depth > TXN_NESTING_MAX) throw new Error(`txn nested deeper than ${TXN_NESTING_MAX} levels`);
}

function readCompactionRequest(r: Reader, end: number): WireCompactionRequest {
  let revision: WireLong = 0;
  let physical = false;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 8: revision = readInt64(r, end); break;
      case 16: physical = readBool(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return { revision, physical };
}

function readCompactionResponse(r: Reader, end: number): WireCompactionResponse {
  let header: WireHeader | null = null;
  while (r.pos < end) {
    const tag = readTag(r, end);
    if (tag === 10) header = readHeader(r, readMessageEnd(r, end));
    else skipField(r, end, tag);
  }
  return { header };
}

/** LeaseKeepAliveRequest: ID 1. */
export interface WireLeaseKeepAliveRequest {
  ID: WireLong;
}

/** LeaseKeepAliveResponse: header 1, ID 2, TTL 3. */
export interface WireLeaseKeepAliveResponse {
  header: WireHeader | null;
  ID: WireLong;
  TTL: WireLong;
}

function readLeaseKeepAliveRequest(r: Reader, end: number): WireLeaseKeepAliveRequest {
  let id: WireLong = 0;
  while (r.pos < end) {
    const tag = readTag(r, end);
    if (tag === 8) id = readInt64(r, end);
    else skipField(r, end, tag);
  }
  return { ID: id };
}

function readLeaseKeepAliveResponse(r: Reader, end: number): WireLeaseKeepAliveResponse {
  let header: WireHeader | null = null;
  let id: WireLong = 0;
  let ttl: WireLong = 0;
  while (r.pos < end) {
    const tag = readTag(r, end);
    switch (tag) {
      case 10: header = readHeader(r, readMessageEnd(r, end)); break;
      case 16: id = readInt64(r, end); break;
      case 24: ttl = readInt64(r, end); break;
      default: skipField(r, end, tag);
    }
  }
  return { header, ID: id, TTL: ttl };
}

// ---- writing ----
// Encoding is two passes over the message: size* computes the exact length (validating values
// on the way), write* fills a Buffer of exactly that length, so nothing is copied or regrown.

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
}

/** Bytes of the varint of 0 <= n <= Number.MAX_SAFE_INTEGER. */
function varintSize(n: number): number {
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  if (n < 0x800000000) return 5;
  if (n < 0x40000000000) return 6;
  if (n < 0x2000000000000) return 7;
  return 8;
}

/** Bytes of the varint of the 64-bit value hi * 2^32 + lo (both unsigned 32-bit). */
function varintSizeOfHalves(lo: number, hi: number): number {
  if (hi === 0) return varintSize(lo);
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/** Writes the varint of 0 <= n <= Number.MAX_SAFE_INTEGER. */
function writeVarint(w: Writer, n: number): void {
  const buf = w.buf;
  let pos = w.pos;
  // Above 31 bits the shift operators would truncate, so divide; `& 0x7f` still sees the low bits.
  while (n > 0x7fffffff) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  w.pos = pos;
}

function writeVarintHalves(w: Writer, lo: number, hi: number): void {
  const buf = w.buf;
  let pos = w.pos;
  while (hi !== 0) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    buf[pos++] = (lo & 0x7f) | 0x80;
    lo >>>= 7;
  }
  buf[pos++] = lo;
  w.pos = pos;
}

// splitLong leaves the 64-bit two's complement of a value here: module state rather than a
// returned pair, so the slow path allocates nothing either.
let splitLo = 0;
let splitHi = 0;

const INT64_MIN = -(2n ** 63n);
const UINT64_LIMIT = 2n ** 64n;
const DECIMAL = /^[+-]?\d+$/;
/** Decimal strings this short hold at most 15 digits, so Number() parses them exactly. */
const SAFE_DECIMAL_LENGTH_MAX = 15;

function splitLong(value: LongInput): void {
  if (typeof value === 'number') return splitNumber(value);
  if (typeof value === 'string') return splitDecimal(value);
  if (typeof value === 'bigint') return splitBigInt(value);
  if (value !== null && typeof value === 'object' && typeof value.low === 'number' && typeof value.high === 'number') {
    splitLo = value.low >>> 0;
    splitHi = value.high >>> 0;
    return;
  }
  throw new Error(`an int64 field must be a number, decimal string, bigint or Long, not ${typeof value}`);
}

function splitNumber(n: number): void {
  if (!Number.isInteger(n)) throw new Error(`an int64 field must be an integer, not ${n}`);
  // Doubles beyond 2^53 are still exact integers; BigInt converts them without loss.
  if (!Number.isSafeInteger(n)) return splitBigInt(BigInt(n));
  const magnitude = Math.abs(n);
  let lo = magnitude % TWO_32;
  let hi = Math.floor(magnitude / TWO_32);
  if (n < 0) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  splitLo = lo;
  splitHi = hi;
}

function splitDecimal(text: string): void {
  if (!DECIMAL.test(text)) throw new Error(`an int64 field must be a decimal integer, not ${JSON.stringify(text)}`);
  if (text.length <= SAFE_DECIMAL_LENGTH_MAX) return splitNumber(Number(text));
  return splitBigInt(BigInt(text));
}

function splitBigInt(value: bigint): void {
  // int64 and uint64 share one encoding, so accept the union of their ranges.
  if (value < INT64_MIN || value >= UINT64_LIMIT) throw new Error(`${value} does not fit in 64 bits`);
  const bits = BigInt.asUintN(64, value);
  splitLo = Number(bits & 0xffffffffn);
  splitHi = Number(bits >> 32n);
}

function isZeroLong(value: LongInput): boolean {
  if (typeof value === 'number') return value === 0;
  splitLong(value);
  return (splitLo | splitHi) === 0;
}

function longSize(value: LongInput): number {
  if (typeof value === 'number' && value >= 0 && Number.isSafeInteger(value)) return varintSize(value);
  splitLong(value);
  return varintSizeOfHalves(splitLo, splitHi);
}

function writeLong(w: Writer, value: LongInput): void {
  if (typeof value === 'number' && value >= 0 && Number.isSafeInteger(value)) return writeVarint(w, value);
  splitLong(value);
  writeVarintHalves(w, splitLo, splitHi);
}

type Maybe<T> = T | null | undefined;

/** A non-oneof int64/uint64 field: nothing when zero (proto3 omits defaults). */
function int64FieldSize(tag: number, value: Maybe<LongInput>): number {
  if (value === undefined || value === null || isZeroLong(value)) return 0;
  return varintSize(tag) + longSize(value);
}

function writeInt64Field(w: Writer, tag: number, value: Maybe<LongInput>): void {
  if (value === undefined || value === null || isZeroLong(value)) return;
  writeVarint(w, tag);
  writeLong(w, value);
}

/** A oneof int64 member: written whenever it is set, zero included (its presence is the point). */
function int64MemberSize(tag: number, value: LongInput): number {
  return varintSize(tag) + longSize(value);
}

function writeInt64Member(w: Writer, tag: number, value: LongInput): void {
  writeVarint(w, tag);
  writeLong(w, value);
}

/** An enum (int32): negative values are sign-extended to 10 bytes, as int64 would be. */
function enumFieldSize(tag: number, value: Maybe<number>): number {
  if (value === undefined || value === null || value === 0) return 0;
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
    throw new Error(`an enum field must be a 32-bit integer, not ${String(value)}`);
  }
  return varintSize(tag) + (value < 0 ? 10 : varintSize(value));
}

function writeEnumField(w: Writer, tag: number, value: Maybe<number>): void {
  if (value === undefined || value === null || value === 0) return;
  writeVarint(w, tag);
  writeLong(w, value);
}

function boolFieldSize(tag: number, value: Maybe<boolean>): number {
  return value ? varintSize(tag) + 1 : 0;
}

function writeBoolField(w: Writer, tag: number, value: Maybe<boolean>): void {
  if (!value) return;
  writeVarint(w, tag);
  w.buf[w.pos++] = 1;
}

function bytesLength(value: Uint8Array): number {
  if (!(value instanceof Uint8Array)) throw new Error(`a bytes field must be a Uint8Array, not ${typeof value}`);
  return value.length;
}

/** A non-oneof bytes field: nothing when empty. */
function bytesFieldSize(tag: number, value: Maybe<Uint8Array>): number {
  if (value === undefined || value === null) return 0;
  const length = bytesLength(value);
  return length === 0 ? 0 : varintSize(tag) + varintSize(length) + length;
}

function writeBytesField(w: Writer, tag: number, value: Maybe<Uint8Array>): void {
  if (value === undefined || value === null || value.length === 0) return;
  writeBytesMember(w, tag, value);
}

function bytesMemberSize(tag: number, value: Uint8Array): number {
  const length = bytesLength(value);
  return varintSize(tag) + varintSize(length) + length;
}

function writeBytesMember(w: Writer, tag: number, value: Uint8Array): void {
  writeVarint(w, tag);
  writeVarint(w, value.length);
  copyBytes(w, value);
}

/** Keys are short; below this length a plain loop beats the call into TypedArray#set. */
const LOOP_COPY_BYTES_MAX = 16;

/** Writes bytes [start, start + length) of `from` (all of it by default). */
function copyBytes(w: Writer, from: Uint8Array, start = 0, length = from.length): void {
  const buf = w.buf;
  const pos = w.pos;
  if (length <= LOOP_COPY_BYTES_MAX) {
    for (let i = 0; i < length; i++) buf[pos + i] = from[start + i] as number;
  } else {
    // A plain Uint8Array view of the part, not from.subarray: a Buffer's subarray builds a Buffer
    // through its class constructor, which cost as much as the copy itself for 256-byte values.
    buf.set(start === 0 && length === from.length ? from : new Uint8Array(from.buffer, from.byteOffset + start, length), pos);
  }
  w.pos = pos + length;
}

// Embedded messages: the size pass records each one's body size here, in the order both passes
// visit them (a parent before its children), and the write pass replays them, so no message is
// measured twice however deep it sits. One array, reused by every encode (encoding is
// synchronous, so calls cannot interleave).
const embeddedSizes: number[] = [];
let embeddedNext = 0;

/** Size pass: an embedded message (tag, length, body), present so written even when empty. */
function embeddedSize<T>(tag: number, m: T, size: (m: T) => number): number {
  const slot = embeddedNext++;
  if (slot === embeddedSizes.length) embeddedSizes.push(0);
  const body = size(m);
  embeddedSizes[slot] = body;
  return varintSize(tag) + varintSize(body) + body;
}

/** Write pass: the counterpart of embeddedSize, met in the same order. */
function writeEmbedded<T>(w: Writer, tag: number, m: T, write: (w: Writer, m: T) => void): void {
  writeVarint(w, tag);
  writeVarint(w, embeddedSizes[embeddedNext++] as number);
  write(w, m);
}

function repeatedSize<T>(tag: number, list: Maybe<readonly T[]>, size: (m: T) => number): number {
  if (!list) return 0;
  let total = 0;
  for (let i = 0; i < list.length; i++) total += embeddedSize(tag, list[i] as T, size);
  return total;
}

function writeRepeated<T>(w: Writer, tag: number, list: Maybe<readonly T[]>, write: (w: Writer, m: T) => void): void {
  if (!list) return;
  for (let i = 0; i < list.length; i++) writeEmbedded(w, tag, list[i] as T, write);
}

type In<T> = Encodable<T>;

function sizeHeader(m: In<WireHeader>): number {
  return (
    int64FieldSize(8, m.cluster_id) + int64FieldSize(16, m.member_id) + int64FieldSize(24, m.revision) + int64FieldSize(32, m.raft_term)
  );
}

function writeHeader(w: Writer, m: In<WireHeader>): void {
  writeInt64Field(w, 8, m.cluster_id);
  writeInt64Field(w, 16, m.member_id);
  writeInt64Field(w, 24, m.revision);
  writeInt64Field(w, 32, m.raft_term);
}

/** The header is field 1 of every response. */
function headerFieldSize(m: Maybe<In<WireHeader>>): number {
  return m ? embeddedSize(10, m, sizeHeader) : 0;
}

function writeHeaderField(w: Writer, m: Maybe<In<WireHeader>>): void {
  if (m) writeEmbedded(w, 10, m, writeHeader);
}

function sizeKeyValue(m: In<WireKeyValue>): number {
  return (
    bytesFieldSize(10, m.key) +
    int64FieldSize(16, m.create_revision) +
    int64FieldSize(24, m.mod_revision) +
    int64FieldSize(32, m.version) +
    bytesFieldSize(42, m.value) +
    int64FieldSize(48, m.lease)
  );
}

function writeKeyValue(w: Writer, m: In<WireKeyValue>): void {
  writeBytesField(w, 10, m.key);
  writeInt64Field(w, 16, m.create_revision);
  writeInt64Field(w, 24, m.mod_revision);
  writeInt64Field(w, 32, m.version);
  writeBytesField(w, 42, m.value);
  writeInt64Field(w, 48, m.lease);
}

function sizeEvent(m: In<WireEvent>): number {
  return (
    enumFieldSize(8, m.type) +
    (m.kv ? embeddedSize(18, m.kv, sizeKeyValue) : 0) +
    (m.prev_kv ? embeddedSize(26, m.prev_kv, sizeKeyValue) : 0)
  );
}

function writeEvent(w: Writer, m: In<WireEvent>): void {
  writeEnumField(w, 8, m.type);
  if (m.kv) writeEmbedded(w, 18, m.kv, writeKeyValue);
  if (m.prev_kv) writeEmbedded(w, 26, m.prev_kv, writeKeyValue);
}

function sizeRangeRequest(m: In<WireRangeRequest>): number {
  return (
    bytesFieldSize(10, m.key) +
    bytesFieldSize(18, m.range_end) +
    int64FieldSize(24, m.limit) +
    int64FieldSize(32, m.revision) +
    enumFieldSize(40, m.sort_order) +
    enumFieldSize(48, m.sort_target) +
    boolFieldSize(56, m.serializable) +
    boolFieldSize(64, m.keys_only) +
    boolFieldSize(72, m.count_only) +
    int64FieldSize(80, m.min_mod_revision) +
    int64FieldSize(88, m.max_mod_revision) +
    int64FieldSize(96, m.min_create_revision) +
    int64FieldSize(104, m.max_create_revision)
  );
}

function writeRangeRequest(w: Writer, m: In<WireRangeRequest>): void {
  writeBytesField(w, 10, m.key);
  writeBytesField(w, 18, m.range_end);
  writeInt64Field(w, 24, m.limit);
  writeInt64Field(w, 32, m.revision);
  writeEnumField(w, 40, m.sort_order);
  writeEnumField(w, 48, m.sort_target);
  writeBoolField(w, 56, m.serializable);
  writeBoolField(w, 64, m.keys_only);
  writeBoolField(w, 72, m.count_only);
  writeInt64Field(w, 80, m.min_mod_revision);
  writeInt64Field(w, 88, m.max_mod_revision);
  writeInt64Field(w, 96, m.min_create_revision);
  writeInt64Field(w, 104, m.max_create_revision);
}

function sizeRangeResponse(m: In<WireRangeResponse>): number {
  return headerFieldSize(m.header) + repeatedSize(18, m.kvs, sizeKeyValue) + boolFieldSize(24, m.more) + int64FieldSize(32, m.count);
}

function writeRangeResponse(w: Writer, m: In<WireRangeResponse>): void {
  writeHeaderField(w, m.header);
  writeRepeated(w, 18, m.kvs, writeKeyValue);
  writeBoolField(w, 24, m.more);
  writeInt64Field(w, 32, m.count);
}

function sizePutRequest(m: In<WirePutRequest>): number {
  return (
    bytesFieldSize(10, m.key) +
    bytesFieldSize(18, m.value) +
    int64FieldSize(24, m.lease) +
    boolFieldSize(32, m.prev_kv) +
    boolFieldSize(40, m.ignore_value) +
    boolFieldSize(48, m.ignore_lease)
  );
}

function writePutRequest(w: Writer, m: In<WirePutRequest>): void {
  writeBytesField(w, 10, m.key);
  writeBytesField(w, 18, m.value);
  writeInt64Field(w, 24, m.lease);
  writeBoolField(w, 32, m.prev_kv);
  writeBoolField(w, 40, m.ignore_value);
  writeBoolField(w, 48, m.ignore_lease);
}

function sizePutResponse(m: In<WirePutResponse>): number {
  return headerFieldSize(m.header) + (m.prev_kv ? embeddedSize(18, m.prev_kv, sizeKeyValue) : 0);
}

function writePutResponse(w: Writer, m: In<WirePutResponse>): void {
  writeHeaderField(w, m.header);
  if (m.prev_kv) writeEmbedded(w, 18, m.prev_kv, writeKeyValue);
}

function sizeDeleteRangeRequest(m: In<WireDeleteRangeRequest>): number {
  return bytesFieldSize(10, m.key) + bytesFieldSize(18, m.range_end) + boolFieldSize(24, m.prev_kv);
}

function writeDeleteRangeRequest(w: Writer, m: In<WireDeleteRangeRequest>): void {
  writeBytesField(w, 10, m.key);
  writeBytesField(w, 18, m.range_end);
  writeBoolField(w, 24, m.prev_kv);
}

function sizeDeleteRangeResponse(m: In<WireDeleteRangeResponse>): number {
  return headerFieldSize(m.header) + int64FieldSize(16, m.deleted) + repeatedSize(26, m.prev_kvs, sizeKeyValue);
}

function writeDeleteRangeResponse(w: Writer, m: In<WireDeleteRangeResponse>): void {
  writeHeaderField(w, m.header);
  writeInt64Field(w, 16, m.deleted);
  writeRepeated(w, 26, m.prev_kvs, writeKeyValue);
}

// Oneofs: exactly one member is written, the one the virtual field names when that member is
// set, else the first member set; so the receiver sees what was meant even when an object carries
// stale siblings. Each chooser returns the member's field number, 0 for none.

function compareMember(m: In<WireCompare>): number {
  switch (m.target_union) {
    case 'version': if (m.version != null) return 4; break;
    case 'create_revision': if (m.create_revision != null) return 5; break;
    case 'mod_revision': if (m.mod_revision != null) return 6; break;
    case 'value': if (m.value != null) return 7; break;
    case 'lease': if (m.lease != null) return 8; break;
  }
  if (m.version != null) return 4;
  if (m.create_revision != null) return 5;
  if (m.mod_revision != null) return 6;
  if (m.value != null) return 7;
  if (m.lease != null) return 8;
  return 0;
}

function compareOperandSize(m: In<WireCompare>): number {
  switch (compareMember(m)) {
    case 4: return int64MemberSize(32, m.version!);
    case 5: return int64MemberSize(40, m.create_revision!);
    case 6: return int64MemberSize(48, m.mod_revision!);
    case 7: return bytesMemberSize(58, m.value!);
    case 8: return int64MemberSize(64, m.lease!);
    default: return 0;
  }
}

function writeCompareOperand(w: Writer, m: In<WireCompare>): void {
  switch (compareMember(m)) {
    case 4: return writeInt64Member(w, 32, m.version!);
    case 5: return writeInt64Member(w, 40, m.create_revision!);
    case 6: return writeInt64Member(w, 48, m.mod_revision!);
    case 7: return writeBytesMember(w, 58, m.value!);
    case 8: return writeInt64Member(w, 64, m.lease!);
  }
}

function sizeCompare(m: In<WireCompare>): number {
  return (
    enumFieldSize(8, m.result) +
    enumFieldSize(16, m.target) +
    bytesFieldSize(26, m.key) +
    compareOperandSize(m) +
    bytesFieldSize(514, m.range_end)
  );
}

function writeCompare(w: Writer, m: In<WireCompare>): void {
  writeEnumField(w, 8, m.result);
  writeEnumField(w, 16, m.target);
  writeBytesField(w, 26, m.key);
  writeCompareOperand(w, m);
  writeBytesField(w, 514, m.range_end);
}

function requestOpMember(m: In<WireRequestOp>): number {
  switch (m.request) {
    case 'request_range': if (m.request_range != null) return 1; break;
    case 'request_put': if (m.request_put != null) return 2; break;
    case 'request_delete_range': if (m.request_delete_range != null) return 3; break;
    case 'request_txn': if (m.request_txn != null) return 4; break;
  }
  if (m.request_range != null) return 1;
  if (m.request_put != null) return 2;
  if (m.request_delete_range != null) return 3;
  if (m.request_txn != null) return 4;
  return 0;
}

function sizeRequestOp(m: In<WireRequestOp>): number {
  switch (requestOpMember(m)) {
    case 1: return embeddedSize(10, m.request_range!, sizeRangeRequest);
    case 2: return embeddedSize(18, m.request_put!, sizePutRequest);
    case 3: return embeddedSize(26, m.request_delete_range!, sizeDeleteRangeRequest);
    case 4: return embeddedSize(34, m.request_txn!, sizeTxnRequest);
    default: return 0;
  }
}

function writeRequestOp(w: Writer, m: In<WireRequestOp>): void {
  switch (requestOpMember(m)) {
    case 1: return writeEmbedded(w, 10, m.request_range!, writeRangeRequest);
    case 2: return writeEmbedded(w, 18, m.request_put!, writePutRequest);
    case 3: return writeEmbedded(w, 26, m.request_delete_range!, writeDeleteRangeRequest);
    case 4: return writeEmbedded(w, 34, m.request_txn!, writeTxnRequest);
  }
}

function sizeTxnRequest(m: In<WireTxnRequest>): number {
  return repeatedSize(10, m.compare, sizeCompare) + repeatedSize(18, m.success, sizeRequestOp) + repeatedSize(26, m.failure, sizeRequestOp);
}

function writeTxnRequest(w: Writer, m: In<WireTxnRequest>): void {
  writeRepeated(w, 10, m.compare, writeCompare);
  writeRepeated(w, 18, m.success, writeRequestOp);
  writeRepeated(w, 26, m.failure, writeRequestOp);
}

function responseOpMember(m: In<WireResponseOp>): number {
  switch (m.response) {
    case 'response_range': if (m.response_range != null) return 1; break;
    case 'response_put': if (m.response_put != null) return 2; break;
    case 'response_delete_range': if (m.response_delete_range != null) return 3; break;
    case 'response_txn': if (m.response_txn != null) return 4; break;
  }
  if (m.response_range != null) return 1;
  if (m.response_put != null) return 2;
  if (m.response_delete_range != null) return 3;
  if (m.response_txn != null) return 4;
  return 0;
}

function sizeResponseOp(m: In<WireResponseOp>): number {
  switch (responseOpMember(m)) {
    case 1: return embeddedSize(10, m.response_range!, sizeRangeResponse);
    case 2: return embeddedSize(18, m.response_put!, sizePutResponse);
    case 3: return embeddedSize(26, m.response_delete_range!, sizeDeleteRangeResponse);
    case 4: return embeddedSize(34, m.response_txn!, sizeTxnResponse);
    default: return 0;
  }
}

function writeResponseOp(w: Writer, m: In<WireResponseOp>): void {
  switch (responseOpMember(m)) {
    case 1: return writeEmbedded(w, 10, m.response_range!, writeRangeResponse);
    case 2: return writeEmbedded(w, 18, m.response_put!, writePutResponse);
    case 3: return writeEmbedded(w, 26, m.response_delete_range!, writeDeleteRangeResponse);
    case 4: return writeEmbedded(w, 34, m.response_txn!, writeTxnResponse);
  }
}

function sizeTxnResponse(m: In<WireTxnResponse>): number {
  return headerFieldSize(m.header) + boolFieldSize(16, m.succeeded) + repeatedSize(26, m.responses, sizeResponseOp);
}

function writeTxnResponse(w: Writer, m: In<WireTxnResponse>): void {
  writeHeaderField(w, m.header);
  writeBoolField(w, 16, m.succeeded);
  writeRepeated(w, 26, m.responses, writeResponseOp);
}

function sizeCompactionRequest(m: In<WireCompactionRequest>): number {
  return int64FieldSize(8, m.revision) + boolFieldSize(16, m.physical);
}

function writeCompactionRequest(w: Writer, m: In<WireCompactionRequest>): void {
  writeInt64Field(w, 8, m.revision);
  writeBoolField(w, 16, m.physical);
}

function sizeLeaseKeepAliveRequest(m: In<WireLeaseKeepAliveRequest>): number {
  return int64FieldSize(8, m.ID);
}

function writeLeaseKeepAliveRequest(w: Writer, m: In<WireLeaseKeepAliveRequest>): void {
  writeInt64Field(w, 8, m.ID);
}

function sizeLeaseKeepAliveResponse(m: In<WireLeaseKeepAliveResponse>): number {
  return headerFieldSize(m.header) + int64FieldSize(16, m.ID) + int64FieldSize(24, m.TTL);
}

function writeLeaseKeepAliveResponse(w: Writer, m: In<WireLeaseKeepAliveResponse>): void {
  writeHeaderField(w, m.header);
  writeInt64Field(w, 16, m.ID);
  writeInt64Field(w, 24, m.TTL);
}

function sizeCompactionResponse(m: In<WireCompactionResponse>): number {
  return headerFieldSize(m.header);
}

function writeCompactionResponse(w: Writer, m: In<WireCompactionResponse>): void {
  writeHeaderField(w, m.header);
}

// ---- responses encoded by their handler ----

/**
 * A response message its handler already encoded, with room for the gRPC prefix in front (the
 * server fills it in and sends the pieces as they are): a range of 10,000 keys is about 2.8 MB,
 * and copying it once more behind a prefix cost as much as its encoding's own writes.
 */
export class EncodedMessage {
  constructor(
    /** In order: GRPC_MESSAGE_PREFIX_BYTES unwritten bytes, then the message (the first piece holds the prefix). */
    readonly framed: readonly Buffer[],
  ) {}

  /** The message in one buffer (a copy when it is in several pieces): for callers other than the server. */
  get body(): Buffer {
    const first = this.framed[0]!.subarray(GRPC_MESSAGE_PREFIX_BYTES);
    return this.framed.length === 1 ? first : Buffer.concat([first, ...this.framed.slice(1)]);
  }
}

// KeyValue's fields as full tags (mvccpb.KeyValue: key 1, create_revision 2, mod_revision 3,
// version 4, value 5, lease 6) and RangeResponse's (header 1, kvs 2, more 3, count 4).
const KV_KEY_TAG = (1 << 3) | 2;
const KV_CREATE_REVISION_TAG = 2 << 3;
const KV_MOD_REVISION_TAG = 3 << 3;
const KV_VERSION_TAG = 4 << 3;
const KV_VALUE_TAG = (5 << 3) | 2;
const KV_LEASE_TAG = 6 << 3;
const RANGE_KVS_TAG = (2 << 3) | 2;

/** An int64 field of a key-value: its tag (one byte) and varint, or nothing when 0. */
function kvNumberSize(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

/** A bytes field of a key-value: its tag (one byte), length and bytes, or nothing when empty. */
function kvBytesSize(length: number): number {
  return length === 0 ? 0 : 1 + varintSize(length) + length;
}

function isVarintNumber(n: number): boolean {
  return n >= 0 && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n);
}

/** The most a ResponseHeader field takes: tag and length, then four int64 fields of tag and 10-byte varint. */
const HEADER_FIELD_BYTES_MAX = 2 + 4 * 11;
/** Room left in front of a range response's key-values: the gRPC prefix, then the header. */
const RANGE_RESPONSE_ROOM = GRPC_MESSAGE_PREFIX_BYTES + HEADER_FIELD_BYTES_MAX;
/** Size of a range response's first piece: a few small key-values fit (most ranges), from Node's buffer pool. */
const RANGE_RESPONSE_FIRST_BYTES = 1024;
/**
 * Size of each further piece of a larger response. Pieces, not one buffer grown by doubling: a
 * range of 10,000 keys then takes its 2.8 MB once, not 5.6 MB; and the pieces are lent (h2/pieces.ts)
 * and come back once the connection has written them, since large buffers allocated and dropped
 * are what drives a member's full garbage collections (external memory).
 */
const RANGE_RESPONSE_PIECE_BYTES = RESPONSE_PIECE_BYTES;

/**
 * Encodes an etcdserverpb.RangeResponse as its key-values come, straight into pieces of
 * RANGE_RESPONSE_PIECE_BYTES: the store hands each record's bytes over as it reads them (it is the range's
 * KeyValueSink), so no object is made per key-value, and the value is copied once on its way
 * from the engine to the socket. A range of 10,000 keys made seven objects per key and copied each
 * value three times before, and its memory was most of what the scavenger copied. The bytes are
 * those the generic encoder writes for the response's wire form (fields in number order, zero
 * values omitted); the header is written last, into room kept in front of the key-values, with
 * the gRPC prefix before it.
 */
export class RangeResponseWriter implements KeyValueSink {
  /** The pieces before the one being written, each cut to the bytes written into it. */
  private readonly done: Buffer[] = [];
  private first: Buffer;
  private w: Writer;

  constructor() {
    this.first = Buffer.allocUnsafe(RANGE_RESPONSE_FIRST_BYTES);
    this.w = new Writer(this.first);
    this.w.pos = RANGE_RESPONSE_ROOM;
  }

  add(record: Uint8Array, keyStart: number, keyEnd: number, valueEnd: number, createRevision: number, modRevision: number, version: number, lease: number): void {
    this.write(record, keyStart, keyEnd, record, keyEnd, valueEnd, createRevision, modRevision, version, lease);
  }

  addKeyValue(kv: KeyValue): void {
    this.write(kv.key, 0, kv.key.length, kv.value, 0, kv.value.length, kv.createRevision, kv.modRevision, kv.version, kv.lease);
  }

  /** The whole response, framed for the wire; the writer is not used again. */
  finish(header: Encodable<WireHeader>, more: boolean, count: number): EncodedMessage {
    this.reserve(boolFieldSize(24, more) + int64FieldSize(32, count));
    writeBoolField(this.w, 24, more);
    writeInt64Field(this.w, 32, count);
    const last = this.w.buf.subarray(0, this.w.pos);
    embeddedNext = 0;
    const headerBytes = headerFieldSize(header);
    assert(headerBytes <= HEADER_FIELD_BYTES_MAX, 'a response header larger than its room');
    const start = RANGE_RESPONSE_ROOM - headerBytes - GRPC_MESSAGE_PREFIX_BYTES;
    const head = new Writer(this.first);
    head.pos = start + GRPC_MESSAGE_PREFIX_BYTES;
    embeddedNext = 0;
    writeHeaderField(head, header);
    assert.equal(head.pos, RANGE_RESPONSE_ROOM, 'the header encoder wrote a different number of bytes than it sized');
    const pieces = [...this.done, last];
    pieces[0] = pieces[0]!.subarray(start);
    return new EncodedMessage(pieces);
  }

  private write(
    key: Uint8Array, keyStart: number, keyEnd: number,
    value: Uint8Array, valueStart: number, valueEnd: number,
    createRevision: number, modRevision: number, version: number, lease: number,
  ): void {
    if (!isVarintNumber(createRevision) || !isVarintNumber(modRevision) || !isVarintNumber(version) || !isVarintNumber(lease)) {
      throw new Error(`cannot encode etcdserverpb.RangeResponse: a key-value's revision, version or lease is not a non-negative safe integer`);
    }
    const keyLength = keyEnd - keyStart;
    const valueLength = valueEnd - valueStart;
    const body =
      kvBytesSize(keyLength) + kvNumberSize(createRevision) + kvNumberSize(modRevision) + kvNumberSize(version) + kvBytesSize(valueLength) + kvNumberSize(lease);
    this.reserve(1 + varintSize(body) + body);
    const w = this.w;
    w.buf[w.pos++] = RANGE_KVS_TAG;
    writeVarint(w, body);
    writeKvBytes(w, KV_KEY_TAG, key, keyStart, keyLength);
    writeKvNumber(w, KV_CREATE_REVISION_TAG, createRevision);
    writeKvNumber(w, KV_MOD_REVISION_TAG, modRevision);
    writeKvNumber(w, KV_VERSION_TAG, version);
    writeKvBytes(w, KV_VALUE_TAG, value, valueStart, valueLength);
    writeKvNumber(w, KV_LEASE_TAG, lease);
  }

  /** Room for `bytes` more in the piece being written: a new piece when it is full (a key-value never spans two). */
  private reserve(bytes: number): void {
    const w = this.w;
    if (w.pos + bytes <= w.buf.length) return;
    this.done.push(w.buf.subarray(0, w.pos));
    // A key-value larger than a piece gets a buffer of its own size (not lent: it is rare).
    this.w = new Writer(bytes <= RANGE_RESPONSE_PIECE_BYTES ? lendPiece() : Buffer.allocUnsafe(bytes));
  }
}

function writeKvNumber(w: Writer, tag: number, n: number): void {
  if (n === 0) return;
  w.buf[w.pos++] = tag;
  writeVarint(w, n);
}

function writeKvBytes(w: Writer, tag: number, from: Uint8Array, start: number, length: number): void {
  if (length === 0) return;
  w.buf[w.pos++] = tag;
  writeVarint(w, length);
  copyBytes(w, from, start, length);
}

// ---- codecs ----

export interface MessageCodec<T> {
  /** The message's bytes; an EncodedMessage's are returned as they are. */
  encode(message: Encodable<T> | EncodedMessage): Buffer;
  /** The same bytes after GRPC_MESSAGE_PREFIX_BYTES of room for the gRPC prefix (unwritten), in one buffer or in pieces. */
  encodeFramed(message: Encodable<T> | EncodedMessage): Buffer | readonly Buffer[];
  /** Throws an Error naming the message when the bytes are truncated or malformed. */
  decode(bytes: Uint8Array): T;
}

function messageCodec<T>(
  name: string,
  size: (m: Encodable<T>) => number,
  write: (w: Writer, m: Encodable<T>) => void,
  read: (r: Reader, end: number) => T,
): MessageCodec<T> {
  const encodeAfter = (message: Encodable<T>, room: number): Buffer => {
    try {
      embeddedNext = 0;
      const length = size(message);
      const w = new Writer(Buffer.allocUnsafe(room + length));
      w.pos = room;
      embeddedNext = 0;
      write(w, message);
      assert.equal(w.pos, room + length, 'the encoder wrote a different number of bytes than it sized');
      return w.buf;
    } catch (error) {
      throw new Error(`cannot encode ${name}: ${messageOf(error)}`);
    }
  };
  return {
    encode(message) {
      return message instanceof EncodedMessage ? message.body : encodeAfter(message, 0);
    },
    encodeFramed(message) {
      return message instanceof EncodedMessage ? message.framed : encodeAfter(message, GRPC_MESSAGE_PREFIX_BYTES);
    },
    decode(bytes) {
      const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      try {
        return read(new Reader(buf), buf.length);
      } catch (error) {
        throw new Error(`cannot decode ${name}: ${messageOf(error)}`);
      }
    },
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One codec per message, by its proto name (without the package). */
export const KV_MESSAGES = {
  ResponseHeader: messageCodec('etcdserverpb.ResponseHeader', sizeHeader, writeHeader, readHeader),
  KeyValue: messageCodec('mvccpb.KeyValue', sizeKeyValue, writeKeyValue, readKeyValue),
  Event: messageCodec('mvccpb.Event', sizeEvent, writeEvent, readEvent),
  RangeRequest: messageCodec('etcdserverpb.RangeRequest', sizeRangeRequest, writeRangeRequest, readRangeRequest),
  RangeResponse: messageCodec('etcdserverpb.RangeResponse', sizeRangeResponse, writeRangeResponse, readRangeResponse),
  PutRequest: messageCodec('etcdserverpb.PutRequest', sizePutRequest, writePutRequest, readPutRequest),
  PutResponse: messageCodec('etcdserverpb.PutResponse', sizePutResponse, writePutResponse, readPutResponse),
  DeleteRangeRequest: messageCodec(
    'etcdserverpb.DeleteRangeRequest',
    sizeDeleteRangeRequest,
    writeDeleteRangeRequest,
    readDeleteRangeRequest,
  ),
  DeleteRangeResponse: messageCodec(
    'etcdserverpb.DeleteRangeResponse',
    sizeDeleteRangeResponse,
    writeDeleteRangeResponse,
    readDeleteRangeResponse,
  ),
  Compare: messageCodec('etcdserverpb.Compare', sizeCompare, writeCompare, readCompare),
  RequestOp: messageCodec('etcdserverpb.RequestOp', sizeRequestOp, writeRequestOp, (r, end) => readRequestOp(r, end, 0)),
  ResponseOp: messageCodec('etcdserverpb.ResponseOp', sizeResponseOp, writeResponseOp, (r, end) => readResponseOp(r, end, 0)),
  TxnRequest: messageCodec('etcdserverpb.TxnRequest', sizeTxnRequest, writeTxnRequest, (r, end) => readTxnRequest(r, end, 0)),
  TxnResponse: messageCodec('etcdserverpb.TxnResponse', sizeTxnResponse, writeTxnResponse, (r, end) => readTxnResponse(r, end, 0)),
  CompactionRequest: messageCodec('etcdserverpb.CompactionRequest', sizeCompactionRequest, writeCompactionRequest, readCompactionRequest),
  CompactionResponse: messageCodec(
    'etcdserverpb.CompactionResponse',
    sizeCompactionResponse,
    writeCompactionResponse,
    readCompactionResponse,
  ),
  LeaseKeepAliveRequest: messageCodec(
    'etcdserverpb.LeaseKeepAliveRequest',
    sizeLeaseKeepAliveRequest,
    writeLeaseKeepAliveRequest,
    readLeaseKeepAliveRequest,
  ),
  LeaseKeepAliveResponse: messageCodec(
    'etcdserverpb.LeaseKeepAliveResponse',
    sizeLeaseKeepAliveResponse,
    writeLeaseKeepAliveResponse,
    readLeaseKeepAliveResponse,
  ),
};

/** Any message's codec, as grpc-js sees it: its (de)serializers are untyped. */
interface UntypedCodec {
  encode(message: never): Buffer;
  encodeFramed(message: never): Buffer | readonly Buffer[];
  decode(bytes: Uint8Array): unknown;
}

/** The request and response codec of each KV method, as rpc.proto declares them. */
const KV_METHODS: Record<string, [UntypedCodec, UntypedCodec]> = {
  Range: [KV_MESSAGES.RangeRequest, KV_MESSAGES.RangeResponse],
  Put: [KV_MESSAGES.PutRequest, KV_MESSAGES.PutResponse],
  DeleteRange: [KV_MESSAGES.DeleteRangeRequest, KV_MESSAGES.DeleteRangeResponse],
  Txn: [KV_MESSAGES.TxnRequest, KV_MESSAGES.TxnResponse],
  Compact: [KV_MESSAGES.CompactionRequest, KV_MESSAGES.CompactionResponse],
};

/**
 * A copy of proto-loader's etcdserverpb.KV service definition whose four (de)serializers per
 * method are this codec's, so it serves on a grpc-js Server and builds clients alike. The input
 * (proto-loader's cached definition) is not modified.
 */
export function withFastKvCodec(definition: ServiceDefinition): ServiceDefinition {
  const copy: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    const codecs = KV_METHODS[name];
    assert(codecs, `withFastKvCodec: unexpected method ${name} (is this the etcdserverpb.KV definition?)`);
    copy[name] = withCodecs(method, ...codecs);
  }
  assert.equal(Object.keys(copy).length, Object.keys(KV_METHODS).length, 'withFastKvCodec: a KV method is missing');
  return copy as ServiceDefinition;
}

/** A copy of one method's definition with all four (de)serializers from these codecs. */
function withCodecs(method: object, request: UntypedCodec, response: UntypedCodec): ServiceDefinition[string] {
  const copy = {
    ...method,
    requestSerialize: request.encode,
    requestDeserialize: request.decode,
    responseSerialize: response.encode,
    responseSerializeFramed: response.encodeFramed,
    responseDeserialize: response.decode,
  };
  return copy as unknown as ServiceDefinition[string];
}

// ---- Watch responses ----
// The Watch service's responses are encoded here rather than by proto-loader's protobufjs: a
// fan-out sends the same events to many watchers, and each response was a protobufjs encode of
// its header and watch_id (objects, Longs) plus a copy of every event's bytes, twice (into the
// response, then behind the gRPC prefix). Now a list of events is encoded once
// (EncodedWatchEvents) and each watcher's response is its own few bytes (header, watch_id, ...)
// followed by those shared bytes as a second piece, sent as they are.
//
// The bytes are those protobufjs writes for the same response object with the events appended:
// protobufjs writes every field the object holds, zero values too (a watch_id of 0, a header
// revision of 0, created: false), and omits the ones it does not; fields in number order, events
// (field 11) last. The Event messages themselves are KV_MESSAGES.Event's (zero fields omitted,
// as etcd writes them).

/** WatchResponse's fields as full tags: header 1, watch_id 2, created 3, canceled 4, compact_revision 5, cancel_reason 6, fragment 7, events 11. */
const WATCH_HEADER_TAG = (1 << 3) | 2;
const WATCH_ID_TAG = 2 << 3;
const WATCH_CREATED_TAG = 3 << 3;
const WATCH_CANCELED_TAG = 4 << 3;
const WATCH_COMPACT_REVISION_TAG = 5 << 3;
const WATCH_CANCEL_REASON_TAG = (6 << 3) | 2;
const WATCH_FRAGMENT_TAG = 7 << 3;
const WATCH_EVENTS_TAG = (11 << 3) | 2;

/**
 * A list of events encoded once as WatchResponse's repeated events field (tag, length and Event
 * message for each, in order): every watcher sent the list sends these bytes.
 */
export class EncodedWatchEvents {
  /** Where each event's record starts in `bytes` (made by encode(); a part has none). */
  private readonly starts: Uint32Array | undefined;

  private constructor(
    readonly bytes: Buffer,
    starts?: Uint32Array,
  ) {
    this.starts = starts;
  }

  /** `events`: each event's encoded Event message. */
  static encode(events: readonly Uint8Array[]): EncodedWatchEvents {
    let length = 0;
    for (const event of events) length += 1 + varintSize(event.length) + event.length;
    const w = new Writer(Buffer.allocUnsafe(length));
    const starts = new Uint32Array(events.length);
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      starts[i] = w.pos;
      w.buf[w.pos++] = WATCH_EVENTS_TAG;
      writeVarint(w, event.length);
      copyBytes(w, event);
    }
    return new EncodedWatchEvents(w.buf, starts);
  }

  /**
   * The events from index `first` on, as a view of these bytes, not a copy: a watcher catching
   * up is sent the part of a shared list from its next revision on (see src/api/grpc/watch.ts).
   */
  from(first: number): EncodedWatchEvents {
    if (first === 0) return this;
    const starts = this.starts;
    if (starts === undefined) throw new RangeError('watch events: a part of a part');
    return new EncodedWatchEvents(first >= starts.length ? this.bytes.subarray(this.bytes.length) : this.bytes.subarray(starts[first]!));
  }
}

/** A WatchResponse as the Watch service writes it: plain fields (present or absent, see above) and the events already encoded. */
export interface WatchResponseOut {
  header?: Encodable<WireHeader> | null;
  watch_id?: LongInput | null;
  created?: boolean | null;
  canceled?: boolean | null;
  compact_revision?: LongInput | null;
  cancel_reason?: string | null;
  fragment?: boolean | null;
  events?: EncodedWatchEvents | null;
}

/** A field protobufjs writes because the object holds it (zero included); tags here are one byte. */
function presentLongSize(value: Maybe<LongInput>): number {
  return value === undefined || value === null ? 0 : 1 + longSize(value);
}

function writePresentLong(w: Writer, tag: number, value: Maybe<LongInput>): void {
  if (value === undefined || value === null) return;
  w.buf[w.pos++] = tag;
  writeLong(w, value);
}

function presentBoolSize(value: Maybe<boolean>): number {
  return value === undefined || value === null ? 0 : 2;
}

function writePresentBool(w: Writer, tag: number, value: Maybe<boolean>): void {
  if (value === undefined || value === null) return;
  w.buf[w.pos++] = tag;
  w.buf[w.pos++] = value ? 1 : 0;
}

function sizeWatchHeader(h: Encodable<WireHeader>): number {
  return presentLongSize(h.cluster_id) + presentLongSize(h.member_id) + presentLongSize(h.revision) + presentLongSize(h.raft_term);
}

/**
 * The last header written and its body's bytes: the Watch service hands the responses of one put
 * (one per watcher of a fan-out) the same header object, which it does not change afterwards.
 */
let lastHeader: Encodable<WireHeader> | undefined;
let lastHeaderBody: Buffer = Buffer.alloc(0);

function watchHeaderBody(header: Encodable<WireHeader>): Buffer {
  if (header !== lastHeader) {
    const w = new Writer(Buffer.allocUnsafe(sizeWatchHeader(header)));
    writePresentLong(w, 8, header.cluster_id);
    writePresentLong(w, 16, header.member_id);
    writePresentLong(w, 24, header.revision);
    writePresentLong(w, 32, header.raft_term);
    lastHeaderBody = w.buf;
    lastHeader = header;
  }
  return lastHeaderBody;
}

/** The response without its events, after `room` unwritten bytes. */
function encodeWatchHead(m: WatchResponseOut, room: number): Buffer {
  try {
    const header = m.header;
    const headerBody = header === undefined || header === null ? undefined : watchHeaderBody(header);
    const reason = m.cancel_reason;
    if (reason !== undefined && reason !== null && typeof reason !== 'string') throw new Error(`cancel_reason must be a string, not ${typeof reason}`);
    const reasonBytes = reason === undefined || reason === null ? -1 : Buffer.byteLength(reason, 'utf8');
    const length =
      (headerBody === undefined ? 0 : 1 + varintSize(headerBody.length) + headerBody.length) +
      presentLongSize(m.watch_id) +
      presentBoolSize(m.created) +
      presentBoolSize(m.canceled) +
      presentLongSize(m.compact_revision) +
      (reasonBytes < 0 ? 0 : 1 + varintSize(reasonBytes) + reasonBytes) +
      presentBoolSize(m.fragment);
    const w = new Writer(Buffer.allocUnsafe(room + length));
    w.pos = room;
    if (headerBody !== undefined) {
      w.buf[w.pos++] = WATCH_HEADER_TAG;
      writeVarint(w, headerBody.length);
      copyBytes(w, headerBody);
    }
    writePresentLong(w, WATCH_ID_TAG, m.watch_id);
    writePresentBool(w, WATCH_CREATED_TAG, m.created);
    writePresentBool(w, WATCH_CANCELED_TAG, m.canceled);
    writePresentLong(w, WATCH_COMPACT_REVISION_TAG, m.compact_revision);
    if (reasonBytes >= 0) {
      w.buf[w.pos++] = WATCH_CANCEL_REASON_TAG;
      writeVarint(w, reasonBytes);
      w.pos += w.buf.write(reason!, w.pos, 'utf8');
    }
    writePresentBool(w, WATCH_FRAGMENT_TAG, m.fragment);
    assert.equal(w.pos, room + length, 'the encoder wrote a different number of bytes than it sized');
    return w.buf;
  } catch (error) {
    throw new Error(`cannot encode etcdserverpb.WatchResponse: ${messageOf(error)}`);
  }
}

/** The Watch service's response encoder (see above). */
export const WATCH_RESPONSE = {
  /** The response in one buffer. */
  encode(m: WatchResponseOut): Buffer {
    const head = encodeWatchHead(m, 0);
    return m.events ? Buffer.concat([head, m.events.bytes]) : head;
  },
  /** After GRPC_MESSAGE_PREFIX_BYTES of room: the watcher's own bytes, then the shared events as they are. */
  encodeFramed(m: WatchResponseOut): Buffer | readonly Buffer[] {
    const head = encodeWatchHead(m, GRPC_MESSAGE_PREFIX_BYTES);
    return m.events ? [head, m.events.bytes] : head;
  },
};

// ---- Lease keep-alives ----
// A keep-alive is the Lease service's hot message: 10,000 leases kept alive are a stream of tiny
// requests and responses. Through protobufjs each one cost a Long and its decimal string per
// int64 (the request's ID: Long.toString was 105-135 ms per 5 s of the leader's CPU under
// lease-keepalive-10000, profiled 2026-12-07), and a follower forwarding keep-alives to the leader
// paid the same again on its client side. The other Lease methods are rare and keep protobufjs.

/**
 * A copy of proto-loader's etcdserverpb.Lease definition whose LeaseKeepAlive (de)serializers are
 * this codec's, for the server and for clients (a follower's forwarded keep-alives) alike.
 */
export function withFastLeaseKeepAliveCodec(definition: ServiceDefinition): ServiceDefinition {
  const method = definition['LeaseKeepAlive'];
  assert(method, 'withFastLeaseKeepAliveCodec: no LeaseKeepAlive method (is this the etcdserverpb.Lease definition?)');
  const keepAlive = withCodecs(method, KV_MESSAGES.LeaseKeepAliveRequest as UntypedCodec, KV_MESSAGES.LeaseKeepAliveResponse as UntypedCodec);
  return { ...definition, LeaseKeepAlive: keepAlive };
}

let fastLeaseClient: ServiceClientConstructor | undefined;

/** The Lease client class with this codec for LeaseKeepAlive (wire-exact, so it drives etcd the same way). */
export function fastLeaseClientConstructor(): ServiceClientConstructor {
  fastLeaseClient ??= makeClientConstructor(withFastLeaseKeepAliveCodec(serviceDefinition('etcdserverpb.Lease')), 'Lease');
  return fastLeaseClient;
}

/** A service's definition as the server serves it: proto-loader's, with this codec for KV, Watch's responses and Lease keep-alives. */
export function servedServiceDefinition(name: ServiceName): ServiceDefinition {
  const definition = serviceDefinition(name);
  if (name === 'etcdserverpb.KV') return withFastKvCodec(definition);
  if (name === 'etcdserverpb.Lease') return withFastLeaseKeepAliveCodec(definition);
  if (name !== 'etcdserverpb.Watch') return definition;
  const watch = { ...definition['Watch']!, responseSerialize: WATCH_RESPONSE.encode, responseSerializeFramed: WATCH_RESPONSE.encodeFramed };
  return { ...definition, Watch: watch as ServiceDefinition[string] };
}
