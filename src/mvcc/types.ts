// The etcd v3 data model's requests and responses, shaped like the public protos
// (etcdserverpb/rpc.proto, mvccpb/kv.proto) with camelCase names, bytes as Uint8Array and
// int64 as number. Revisions and lease ids are therefore limited to Number.MAX_SAFE_INTEGER
// (2^53 - 1); the API layer rejects larger values with InvalidArgument.
// The API layers map wire messages to these; the MVCC store executes them; the server adds the
// ResponseHeader (cluster id, member id, raft term) around what the store returns.

export interface KeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Uint8Array;
  lease: number;
}

/**
 * Takes a range's key-values one by one as the store reads them (MvccStore.range's `into`), so a
 * large range can be encoded as it is read instead of held as objects: the key is bytes
 * [keyStart, keyEnd) of `record` and the value [keyEnd, valueEnd). `record` is the engine's read
 * buffer or the store's record cache, reused once the call returns: copy what you keep.
 */
export interface KeyValueSink {
  add(record: Uint8Array, keyStart: number, keyEnd: number, valueEnd: number, createRevision: number, modRevision: number, version: number, lease: number): void;
}

export const SortOrder = { NONE: 0, ASCEND: 1, DESCEND: 2 } as const;
export type SortOrder = (typeof SortOrder)[keyof typeof SortOrder];
export const SortTarget = { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 } as const;
export type SortTarget = (typeof SortTarget)[keyof typeof SortTarget];

/**
 * Key-range convention (as in etcd): rangeEnd empty means the single key `key`; rangeEnd = [0]
 * means every key >= key; key = [0] and rangeEnd = [0] means all keys; otherwise [key, rangeEnd).
 */
export interface RangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  limit?: number;
  /** 0 or absent: the current revision. */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
  /**
   * Lichen's own, not etcd's (the HTTP API sets it): stop once the keys and values read pass this
   * many bytes, keeping at least one key, and say `more`. Applies to unsorted, unfiltered ranges,
   * whose keys are read in order and can be cut anywhere.
   */
  bytesMax?: number;
}

export interface RangeResponse {
  kvs: KeyValue[];
  /** True when limit (or bytesMax) cut the result short. */
  more: boolean;
  /** The number of keys in the range (before limit). */
  count: number;
}

export interface PutRequest {
  key: Uint8Array;
  value?: Uint8Array;
  lease?: number;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface PutResponse {
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  deleted: number;
  prevKvs: KeyValue[];
}

export const CompareResult = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
export type CompareResult = (typeof CompareResult)[keyof typeof CompareResult];
export const CompareTarget = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;
export type CompareTarget = (typeof CompareTarget)[keyof typeof CompareTarget];

/** Exactly one of version/createRevision/modRevision/value/lease is set, matching `target`. */
export interface Compare {
  result: CompareResult;
  target: CompareTarget;
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: Uint8Array;
  lease?: number;
}

export type RequestOp =
  | { requestRange: RangeRequest }
  | { requestPut: PutRequest }
  | { requestDeleteRange: DeleteRangeRequest }
  | { requestTxn: TxnRequest };

export type ResponseOp =
  | { responseRange: RangeResponse }
  | { responsePut: PutResponse }
  | { responseDeleteRange: DeleteRangeResponse }
  | { responseTxn: TxnResponse };

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResponse {
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  physical?: boolean;
}

export const EventType = { PUT: 0, DELETE: 1 } as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

export interface Event {
  type: EventType;
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface LeaseGrantRequest {
  /** Seconds. */
  TTL: number;
  /** 0: the store picks an id. */
  ID?: number;
}

export interface LeaseGrantResponse {
  ID: number;
  TTL: number;
}

export interface LeaseTimeToLiveResponse {
  ID: number;
  /** Remaining seconds; -1 when the lease does not exist (expired or revoked). */
  TTL: number;
  grantedTTL: number;
  keys: Uint8Array[];
}

export interface HashKVResponse {
  hash: number;
  compactRevision: number;
  hashRevision: number;
}

/** What every response header carries besides the revision: filled in by the server. */
export interface ResponseHeader {
  clusterId: number;
  memberId: number;
  revision: number;
  raftTerm: number;
}

/** etcd's AlarmType; NONE in a GET means "every type". */
export const AlarmType = { NONE: 0, NOSPACE: 1, CORRUPT: 2 } as const;
export type AlarmType = (typeof AlarmType)[keyof typeof AlarmType];

/** A raised alarm: etcd keys alarms by (member id, type); member id 0 is a key like any other. */
export interface AlarmMember {
  memberId: number;
  alarm: AlarmType;
}

export interface AlarmResponse {
  alarms: AlarmMember[];
}
