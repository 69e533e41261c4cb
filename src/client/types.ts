// What the client returns: etcd's responses with camelCase names, Buffers for keys and values,
// numbers for revisions and counts (int64 on the wire, but far below 2^53), and bigints for
// lease, member and cluster ids: etcd draws them from 64 bits (most are above 2^53, which a
// number cannot hold exactly), and the SDK talks to etcd as well as to Lichen.
import { ErrorCode, LichenError } from '../errors.js';
import { prefixRangeEnd } from '../mvcc/key-range.js';

export type Bytes = string | Uint8Array;

export interface KeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  /** The lease the key is attached to; 0n for none. */
  lease: bigint;
}

export interface Header {
  clusterId: bigint;
  memberId: bigint;
  revision: number;
  raftTerm: number;
}

export interface RangeResult {
  header: Header;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutResult {
  header: Header;
  prevKv?: KeyValue;
}

export interface DeleteResult {
  header: Header;
  deleted: number;
  prevKvs: KeyValue[];
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** etcd's alarm types (AlarmType in rpc.proto). */
export const ALARM_TYPES = ['NONE', 'NOSPACE', 'CORRUPT'] as const;
export type AlarmName = (typeof ALARM_TYPES)[number];

/** A raised alarm: etcd keys alarms by member id and type. */
export interface Alarm {
  memberId: bigint;
  alarm: AlarmName;
}

export interface Member {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export function toBuffer(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** The end of the range of every key starting with prefix (etcd's "prefix + 1"; [0] when there is none). */
export function prefixEnd(prefix: Bytes): Buffer {
  const end = prefixRangeEnd(toBuffer(prefix));
  return Buffer.from(end.buffer, end.byteOffset, end.byteLength);
}

/** An int64/uint64 from the wire (a revision, a count, a TTL) as a number; none comes near 2^53. */
export function num(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(value ?? 0);
  if (!Number.isSafeInteger(n)) throw new LichenError(ErrorCode.Internal, `server sent an integer beyond 2^53: ${String(value)}`);
  return n;
}

/** An id (lease, member, cluster) as the wire has it (a decimal string: see longs in proto.ts), exactly. */
export function wireId(value: unknown): bigint {
  const text = String(value ?? 0);
  if (!/^-?\d+$/.test(text)) throw new LichenError(ErrorCode.Internal, `server sent an id that is not an integer: ${text}`);
  return BigInt(text);
}

/** An id as a request carries it: decimal, so a 64-bit one survives the trip (protobuf.js reads it exactly). */
export function idToWire(id: bigint | number): string {
  if (typeof id === 'number' && !Number.isSafeInteger(id)) {
    throw new LichenError(ErrorCode.InvalidArgument, `id ${id} is not an integer that a number holds exactly; pass ids above 2^53 as bigint`);
  }
  return BigInt(id).toString();
}

export function header(w: any): Header {
  return { clusterId: wireId(w?.cluster_id), memberId: wireId(w?.member_id), revision: num(w?.revision), raftTerm: num(w?.raft_term) };
}

export function keyValue(w: any): KeyValue {
  return {
    key: w.key,
    value: w.value,
    createRevision: num(w.create_revision),
    modRevision: num(w.mod_revision),
    version: num(w.version),
    lease: wireId(w.lease),
  };
}

export function rangeResult(w: any): RangeResult {
  return { header: header(w.header), kvs: (w.kvs ?? []).map(keyValue), more: w.more, count: num(w.count) };
}

export function putResult(w: any): PutResult {
  return w.prev_kv ? { header: header(w.header), prevKv: keyValue(w.prev_kv) } : { header: header(w.header) };
}

export function deleteResult(w: any): DeleteResult {
  return { header: header(w.header), deleted: num(w.deleted), prevKvs: (w.prev_kvs ?? []).map(keyValue) };
}

export function member(w: any): Member {
  return { id: wireId(w.ID), name: w.name, peerURLs: w.peerURLs, clientURLs: w.clientURLs, isLearner: w.isLearner };
}

export function watchEvent(w: any): WatchEvent {
  const event: WatchEvent = { type: w.type === 1 || w.type === 'DELETE' ? 'delete' : 'put', kv: keyValue(w.kv) };
  if (w.prev_kv) event.prevKv = keyValue(w.prev_kv);
  return event;
}
