// Conversions between decoded wire messages (proto-loader objects: snake_case names, int64 as
// decimal strings, bytes as Buffer) and the internal shapes of src/mvcc/types.ts, with the
// validation etcd does at its API edge (src/api/grpc errors are thrown as LichenError).
import { ErrorCode, LichenError } from '../../errors.js';
import { txnDepthMax, txnOpsMax } from '../../limits.js';
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
  KeyValue,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
} from '../../mvcc/types.js';
import type { Member } from '../backend.js';
import { etcdError } from './errors.js';


/** An int64/uint64 as decoded (string) or as we encode it (number). */
export type WireLong = string | number;
export type WireBytes = Uint8Array;

// ---- numbers and bytes ----

/**
 * An int64 field as a JavaScript number. Lichen keeps revisions and ids below 2^53, so a larger
 * magnitude cannot name anything that exists: reject it, naming the field.
 */
export function toSafeInt(value: WireLong | undefined | null, field: string): number {
  if (value === undefined || value === null || value === '') return 0;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isSafeInteger(n)) {
    throw new LichenError(
      ErrorCode.InvalidArgument,
      `etcdserver: ${field} is out of range: ${String(value)} (Lichen supports integers of magnitude up to 2^53-1)`,
      { field },
    );
  }
  return n;
}

/** A uint64 id field (member id, target id): must be 0 <= id < 2^53. */
export function toSafeUint(value: WireLong | undefined | null, field: string): number {
  const n = toSafeInt(value, field);
  if (n < 0) throw new LichenError(ErrorCode.InvalidArgument, `etcdserver: ${field} must not be negative`, { field });
  return n;
}

function bytesOf(value: Uint8Array | undefined | null): Uint8Array {
  return value ?? new Uint8Array(0);
}

/** Empty bytes on the wire mean "not given". */
function optionalBytes(value: Uint8Array | undefined | null): Uint8Array | undefined {
  return value && value.length > 0 ? value : undefined;
}

function requireKey(key: Uint8Array | undefined | null): Uint8Array {
  if (!key || key.length === 0) throw etcdError('emptyKey');
  return key;
}

// ---- wire message shapes (only the fields we use) ----

export interface WireHeader {
  cluster_id: WireLong;
  member_id: WireLong;
  revision: WireLong;
  raft_term: WireLong;
}

export interface WireKeyValue {
  key: WireBytes;
  create_revision: WireLong;
  mod_revision: WireLong;
  version: WireLong;
  value: WireBytes;
  lease: WireLong;
}

export interface WireRangeRequest {
  key: WireBytes;
  range_end: WireBytes;
  limit: WireLong;
  revision: WireLong;
  sort_order: number;
  sort_target: number;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: WireLong;
  max_mod_revision: WireLong;
  min_create_revision: WireLong;
  max_create_revision: WireLong;
}

export interface WirePutRequest {
  key: WireBytes;
  value: WireBytes;
  lease: WireLong;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface WireDeleteRangeRequest {
  key: WireBytes;
  range_end: WireBytes;
  prev_kv: boolean;
}

export interface WireCompare {
  result: number;
  target: number;
  key: WireBytes;
  range_end: WireBytes;
  target_union?: 'version' | 'create_revision' | 'mod_revision' | 'value' | 'lease';
  version?: WireLong;
  create_revision?: WireLong;
  mod_revision?: WireLong;
  value?: WireBytes;
  lease?: WireLong;
}

export interface WireRequestOp {
  request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  request_range?: WireRangeRequest;
  request_put?: WirePutRequest;
  request_delete_range?: WireDeleteRangeRequest;
  request_txn?: WireTxnRequest;
}

export interface WireTxnRequest {
  compare: WireCompare[];
  success: WireRequestOp[];
  failure: WireRequestOp[];
}

export interface WireMember {
  ID: WireLong;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

// ---- decoding requests ----

const SORT_ORDER_MAX = 2;
const SORT_TARGET_MAX = 4;
const COMPARE_RESULT_MAX = 3;
const COMPARE_TARGET_MAX = 4;

export function decodeRangeRequest(w: WireRangeRequest): RangeRequest {
  const sortOrder = w.sort_order ?? 0;
  const sortTarget = w.sort_target ?? 0;
  if (!isEnumValue(sortOrder, SORT_ORDER_MAX) || !isEnumValue(sortTarget, SORT_TARGET_MAX)) {
    throw etcdError('invalidSortOption');
  }
  const limit = toSafeInt(w.limit, 'limit');
  const revision = toSafeInt(w.revision, 'revision');
  return {
    key: requireKey(w.key),
    rangeEnd: optionalBytes(w.range_end),
    // etcd treats a negative limit or revision like 0 (no limit, newest revision).
    limit: Math.max(0, limit),
    revision: Math.max(0, revision),
    sortOrder: sortOrder as RangeRequest['sortOrder'],
    sortTarget: sortTarget as RangeRequest['sortTarget'],
    serializable: w.serializable ?? false,
    keysOnly: w.keys_only ?? false,
    countOnly: w.count_only ?? false,
    minModRevision: toSafeInt(w.min_mod_revision, 'min_mod_revision'),
    maxModRevision: toSafeInt(w.max_mod_revision, 'max_mod_revision'),
    minCreateRevision: toSafeInt(w.min_create_revision, 'min_create_revision'),
    maxCreateRevision: toSafeInt(w.max_create_revision, 'max_create_revision'),
  };
}

export function decodePutRequest(w: WirePutRequest): PutRequest {
  const key = requireKey(w.key);
  const lease = toSafeInt(w.lease, 'lease');
  const value = bytesOf(w.value);
  if (w.ignore_value && value.length > 0) throw etcdError('valueProvided');
  if (w.ignore_lease && lease !== 0) throw etcdError('leaseProvided');
  return {
    key,
    value,
    lease,
    prevKv: w.prev_kv ?? false,
    ignoreValue: w.ignore_value ?? false,
    ignoreLease: w.ignore_lease ?? false,
  };
}

export function decodeDeleteRangeRequest(w: WireDeleteRangeRequest): DeleteRangeRequest {
  return { key: requireKey(w.key), rangeEnd: optionalBytes(w.range_end), prevKv: w.prev_kv ?? false };
}

export function decodeCompare(w: WireCompare): Compare {
  if (!isEnumValue(w.result ?? 0, COMPARE_RESULT_MAX) || !isEnumValue(w.target ?? 0, COMPARE_TARGET_MAX)) {
    throw new LichenError(ErrorCode.InvalidArgument, 'etcdserver: invalid compare result or target');
  }
  const compare: Compare = {
    result: (w.result ?? 0) as Compare['result'],
    target: (w.target ?? 0) as Compare['target'],
    key: requireKey(w.key),
    rangeEnd: optionalBytes(w.range_end),
  };
  // The oneof member that is set carries the operand; an unset oneof compares against the zero
  // value of the target, as etcd does.
  switch (compare.target) {
    case 0:
      compare.version = toSafeInt(w.version, 'compare.version');
      break;
    case 1:
      compare.createRevision = toSafeInt(w.create_revision, 'compare.create_revision');
      break;
    case 2:
      compare.modRevision = toSafeInt(w.mod_revision, 'compare.mod_revision');
      break;
    case 3:
      compare.value = bytesOf(w.value);
      break;
    case 4:
      compare.lease = toSafeInt(w.lease, 'compare.lease');
      break;
  }
  return compare;
}

export function decodeTxnRequest(w: WireTxnRequest, depth = 0): TxnRequest {
  if (depth > txnDepthMax) {
    throw new LichenError(ErrorCode.InvalidArgument, `etcdserver: txn nesting deeper than ${txnDepthMax}`);
  }
  const compare = w.compare ?? [];
  const success = w.success ?? [];
  const failure = w.failure ?? [];
  if (compare.length > txnOpsMax || success.length > txnOpsMax || failure.length > txnOpsMax) {
    throw etcdError('tooManyOps');
  }
  return {
    compare: compare.map(decodeCompare),
    success: success.map((op) => decodeRequestOp(op, depth)),
    failure: failure.map((op) => decodeRequestOp(op, depth)),
  };
}

function decodeRequestOp(w: WireRequestOp, depth: number): RequestOp {
  switch (w.request) {
    case 'request_range':
      return { requestRange: decodeRangeRequest(w.request_range!) };
    case 'request_put':
      return { requestPut: decodePutRequest(w.request_put!) };
    case 'request_delete_range':
      return { requestDeleteRange: decodeDeleteRangeRequest(w.request_delete_range!) };
    case 'request_txn':
      return { requestTxn: decodeTxnRequest(w.request_txn!, depth + 1) };
    default:
      throw new LichenError(ErrorCode.InvalidArgument, 'etcdserver: txn request operation is empty');
  }
}

function isEnumValue(value: number, max: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= max;
}

// ---- encoding responses ----

export function encodeHeader(h: ResponseHeader): WireHeader {
  return { cluster_id: h.clusterId, member_id: h.memberId, revision: h.revision, raft_term: h.raftTerm };
}

export function encodeKeyValue(kv: KeyValue): WireKeyValue {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  };
}

export function encodeRangeResponse(r: RangeResponse, header: WireHeader): object {
  return { header, kvs: r.kvs.map(encodeKeyValue), more: r.more, count: r.count };
}

export function encodePutResponse(r: PutResponse, header: WireHeader): object {
  return r.prevKv ? { header, prev_kv: encodeKeyValue(r.prevKv) } : { header };
}

export function encodeDeleteRangeResponse(r: DeleteRangeResponse, header: WireHeader): object {
  return { header, deleted: r.deleted, prev_kvs: r.prevKvs.map(encodeKeyValue) };
}

export function encodeTxnResponse(r: TxnResponse, header: WireHeader): object {
  return { header, succeeded: r.succeeded, responses: r.responses.map((op) => encodeResponseOp(op, header)) };
}

function encodeResponseOp(op: ResponseOp, header: WireHeader): object {
  if ('responseRange' in op) return { response_range: encodeRangeResponse(op.responseRange, header) };
  if ('responsePut' in op) return { response_put: encodePutResponse(op.responsePut, header) };
  if ('responseDeleteRange' in op) {
    return { response_delete_range: encodeDeleteRangeResponse(op.responseDeleteRange, header) };
  }
  return { response_txn: encodeTxnResponse(op.responseTxn, header) };
}

export function encodeEvent(e: Event): object {
  const wire: Record<string, unknown> = { type: e.type, kv: encodeKeyValue(e.kv) };
  if (e.prevKv) wire['prev_kv'] = encodeKeyValue(e.prevKv);
  return wire;
}

export function encodeMember(m: Member): WireMember {
  return { ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner };
}
