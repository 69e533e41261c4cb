// The contract between the API layers (gRPC now, HTTP/JSON next) and the server that executes
// requests. The server implements EtcdBackend; the API layers decode and validate wire messages,
// call it with the shapes of src/mvcc/types.ts, and encode what it returns.
//
// Numbers: revisions, lease ids, member ids and the cluster id are plain numbers and therefore at
// most Number.MAX_SAFE_INTEGER (2^53 - 1). The server must generate member ids, cluster ids and
// lease ids below 2^53; the API layers reject larger values from clients with InvalidArgument.
//
// Errors: every method reports expected failures by throwing (or rejecting with) a LichenError
// from src/errors.ts; the API layers map its code to a gRPC status / HTTP status in one table.
import type {
  AlarmMember,
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
  HashKVResponse,
  KeyValueSink,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from '../mvcc/types.js';

export type { ResponseHeader } from '../mvcc/types.js';

/** The etcd API version Lichen implements (Status, /version); clients parse it as semver. */
export const ETCD_API_VERSION = '3.5.0';

/** A response of the backend: the store's answer plus the header the server fills in. */
export type WithHeader<T> = T & { header: ResponseHeader };

/** A member of the raft group as the Cluster service reports it. */
export interface Member {
  /** Unique, non-zero, below 2^53. */
  id: number;
  /** Empty while an added member has not started yet. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface MemberListResponse {
  members: Member[];
}

export interface MemberAddResponse {
  member: Member;
  members: Member[];
}

/** etcd's Maintenance.Status answer for this member. */
export interface StatusResponse {
  /** The server version, e.g. "3.5.0" style; clients parse it, so keep it semver. */
  version: string;
  dbSize: number;
  dbSizeInUse: number;
  /** The member id this member believes is leader; 0 when none is known. */
  leader: number;
  /** The raft commit index of this member. */
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  /** Alarm and health problems, human readable; empty when healthy. */
  errors: string[];
}

import { AlarmType } from '../mvcc/types.js';
export { AlarmType, type AlarmMember } from '../mvcc/types.js';
export const AlarmAction = { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 } as const;
export type AlarmAction = (typeof AlarmAction)[keyof typeof AlarmAction];

/**
 * An alarm as etcd's Status lists it in `errors` (the AlarmMember's protobuf text form, with its
 * trailing space; a zero member id is left out): "memberID:8211 alarm:NOSPACE ".
 */
export function alarmStatusText(alarm: AlarmMember): string {
  const name = Object.entries(AlarmType).find(([, value]) => value === alarm.alarm)?.[0] ?? String(alarm.alarm);
  return `${alarm.memberId === 0 ? '' : `memberID:${alarm.memberId} `}alarm:${name} `;
}

export interface AlarmRequest {
  action: AlarmAction;
  /** 0: every member. */
  memberId: number;
  /** NONE with GET: every alarm. */
  alarm: AlarmType;
}

/**
 * A consistent point-in-time copy of the state machine, streamed in chunks: etcd 3.4's backend
 * as a bbolt file (src/backup). The gRPC layer appends its SHA-256, which `etcdctl snapshot
 * restore` checks (and pads to a multiple of 512 bytes first, which a bbolt file already is).
 */
export interface SnapshotStream {
  /** The revision the snapshot was taken at. */
  header: ResponseHeader;
  /** The exact total of the chunks' lengths (etcd tells the client how many bytes remain). */
  sizeBytes: number;
  chunks: AsyncIterable<Uint8Array>;
}

/** What a watcher asks for. Key range convention as in RangeRequest. */
export interface WatchCreate {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** Inclusive; 0 or absent: events after the current revision. May be a future revision. */
  startRevision?: number;
  prevKv?: boolean;
  /** Drop PUT events. */
  noPut?: boolean;
  /** Drop DELETE events. */
  noDelete?: boolean;
  /** Ask the backend for periodic progress notifications while the watcher is idle. */
  progressNotify?: boolean;
}

/**
 * Where a watcher's output goes. The backend calls it from its own loop; calls for one watcher
 * are strictly ordered. After onCompacted or onCanceled no further calls are made.
 */
export interface WatchSink {
  /**
   * Events in revision order, never repeating or skipping a matching event. `revision` is the
   * store revision the batch brings the watcher to (at least the last event's modRevision).
   * Returns false when the sink cannot take them now (its client is behind): the backend keeps
   * them and offers them again later, from history, starting with the first of this batch.
   */
  onEvents(events: Event[], revision: number): boolean;
  /**
   * False while onEvents would turn events away, so the backend need not prepare them. Absent:
   * always ready. A sink that has it calls the handle's resume() once it can take events again
   * after it said false or onEvents refused: the backend leaves the watcher aside until then.
   */
  ready?(): boolean;
  /** The start revision (or the point a slow watcher fell behind to) was compacted away. */
  onCompacted(compactRevision: number): void;
  /**
   * The watcher has seen everything up to and including `revision`: every later event it gets
   * has a higher revision. Sent for progressNotify and in answer to requestProgress().
   */
  onProgress(revision: number): void;
  /** The backend ended the watcher (e.g. shutdown, lost leadership of a shard). */
  onCanceled(reason: string): void;
}

export interface WatchHandle {
  /** Stops the watcher; no sink call follows. Idempotent. */
  cancel(): void;
  /** Ask for one onProgress call as soon as the watcher is synced (at once if it is). */
  requestProgress(): void;
  /**
   * The sink can take events again (its client read what was waiting): a watcher it turned away
   * catches up now; a sink with ready() must call it (see ready).
   */
  resume(): void;
}

/**
 * What a client presented to prove who it is: a token (gRPC metadata "token" or "authorization",
 * the HTTP Authorization header) and the common name of its verified TLS client certificate.
 */
export interface Credentials {
  token?: string;
  commonName?: string;
}

/**
 * An authenticated client. `authRevision` is the auth revision a JWT was issued at; absent for
 * simple tokens and certificates, which are checked against the auth state at the time of the check.
 */
export interface Caller {
  readonly user: string;
  readonly authRevision?: number;
}

/** etcd's authpb.Permission; permType READ 0, WRITE 1, READWRITE 2. */
export interface KeyPermission {
  permType: number;
  key: Uint8Array;
  /** Empty: the key alone; [0]: every key from `key` on; else [key, rangeEnd). */
  rangeEnd: Uint8Array;
}

/**
 * etcd's Auth service. Every change needs the root role once auth is enabled, except that a user
 * may read itself (userGet) and the roles it has (roleGet). Callers come from identify().
 */
export interface AuthBackend {
  /**
   * The user that credentials stand for; undefined when none were given (or a certificate's name
   * is not to be used). Throws Unauthenticated ("invalid auth token") for a token that is not valid.
   * Answers without a promise when it need not wait (a token the member knows: every request's
   * case), which saves each authenticated request about 1 µs of the three promises it took.
   */
  identify(credentials: Credentials): Caller | undefined | Promise<Caller | undefined>;
  authEnable(caller?: Caller): Promise<WithHeader<object>>;
  authDisable(caller?: Caller): Promise<WithHeader<object>>;
  authStatus(): Promise<WithHeader<{ enabled: boolean; authRevision: number }>>;
  /** Checks the password and returns a new token. */
  authenticate(name: string, password: string): Promise<WithHeader<{ token: string }>>;
  userAdd(r: { name: string; password: string; noPassword: boolean }, caller?: Caller): Promise<WithHeader<object>>;
  userGet(name: string, caller?: Caller): Promise<WithHeader<{ roles: string[] }>>;
  userList(caller?: Caller): Promise<WithHeader<{ users: string[] }>>;
  userDelete(name: string, caller?: Caller): Promise<WithHeader<object>>;
  userChangePassword(name: string, password: string, caller?: Caller): Promise<WithHeader<object>>;
  userGrantRole(user: string, role: string, caller?: Caller): Promise<WithHeader<object>>;
  userRevokeRole(user: string, role: string, caller?: Caller): Promise<WithHeader<object>>;
  roleAdd(name: string, caller?: Caller): Promise<WithHeader<object>>;
  roleGet(role: string, caller?: Caller): Promise<WithHeader<{ perm: KeyPermission[] }>>;
  roleList(caller?: Caller): Promise<WithHeader<{ roles: string[] }>>;
  roleDelete(role: string, caller?: Caller): Promise<WithHeader<object>>;
  roleGrantPermission(role: string, perm: KeyPermission, caller?: Caller): Promise<WithHeader<object>>;
  roleRevokePermission(role: string, key: Uint8Array, rangeEnd: Uint8Array, caller?: Caller): Promise<WithHeader<object>>;
}

/**
 * Everything the etcd v3 services need from a node. Methods that may wait for raft return
 * promises; cheap local facts are synchronous.
 */
export interface EtcdBackend extends AuthBackend {
  /**
   * The header for a response: this cluster and member, the current raft term, and the given
   * revision (the current store revision when absent).
   */
  header(revision?: number): ResponseHeader;
  /** The member id this node believes is leader; 0 when no leader is known. */
  leaderId(): number;

  // ---- KV ----
  // `caller` (from identify) is checked against the permissions of its roles while auth is
  // enabled, as etcd checks it; an anonymous request then fails with "user name is empty".

  /**
   * Linearizable unless r.serializable (then served from local state, possibly stale). With
   * `into`, the key-values may go to `into` as they are read instead of into the answer's kvs (see
   * KeyValueSink; a backend may also ignore it): the caller takes both.
   */
  range(r: RangeRequest, caller?: Caller, into?: KeyValueSink): Promise<WithHeader<RangeResponse>>;
  put(r: PutRequest, caller?: Caller): Promise<WithHeader<PutResponse>>;
  deleteRange(r: DeleteRangeRequest, caller?: Caller): Promise<WithHeader<DeleteRangeResponse>>;
  txn(r: TxnRequest, caller?: Caller): Promise<WithHeader<TxnResponse>>;
  /** Compacted when r.revision <= the compact revision, FutureRevision when > current. Any caller may compact (as in etcd 3.4). */
  compact(r: CompactionRequest, caller?: Caller): Promise<WithHeader<object>>;

  // ---- Watch ----
  /**
   * Starts a watcher. Throws Compacted synchronously only if it prefers to; the usual way to
   * report a compacted start revision is sink.onCompacted (as etcd does, after "created").
   */
  watch(r: WatchCreate, sink: WatchSink, caller?: Caller): WatchHandle;

  // ---- Lease ----
  leaseGrant(r: LeaseGrantRequest, caller?: Caller): Promise<WithHeader<LeaseGrantResponse>>;
  /** LeaseNotFound when the lease does not exist. Needs write permission on every key of the lease. */
  leaseRevoke(id: number, caller?: Caller): Promise<WithHeader<object>>;
  /** Renews the lease and returns its TTL in seconds; LeaseNotFound when it does not exist. */
  leaseKeepAlive(id: number): Promise<WithHeader<{ TTL: number }>>;
  /** TTL -1 when the lease does not exist; keys only when `keys` is true. */
  leaseTimeToLive(id: number, keys: boolean): Promise<WithHeader<LeaseTimeToLiveResponse>>;
  leaseLeases(): Promise<WithHeader<{ ids: number[] }>>;

  // ---- Cluster ----
  memberList(linearizable: boolean): Promise<WithHeader<MemberListResponse>>;
  // Membership changes need the root role while auth is enabled.
  memberAdd(peerURLs: string[], isLearner: boolean, caller?: Caller): Promise<WithHeader<MemberAddResponse>>;
  memberRemove(id: number, caller?: Caller): Promise<WithHeader<MemberListResponse>>;
  memberUpdate(id: number, peerURLs: string[], caller?: Caller): Promise<WithHeader<MemberListResponse>>;
  memberPromote(id: number, caller?: Caller): Promise<WithHeader<MemberListResponse>>;

  // ---- Maintenance ----
  status(): Promise<WithHeader<StatusResponse>>;
  // hashKV, hash, snapshot and defragment need the root role while auth is enabled; status does not.

  /** Hash of the MVCC key space up to `revision` (0: the current revision). */
  hashKV(revision: number, caller?: Caller): Promise<WithHeader<HashKVResponse>>;
  /** Transfers leadership to targetId; only the leader can; resolves when done. */
  moveLeader(targetId: number): Promise<WithHeader<object>>;
  snapshot(caller?: Caller): Promise<SnapshotStream>;
  /**
   * etcd's Hash: a CRC-32C of the whole backend as etcd lays it out, leaving out the consistent
   * index, so members holding the same data agree.
   */
  hash(caller?: Caller): Promise<WithHeader<{ hash: number }>>;
  /** Lichen's engine needs no defragmentation: this only checks the caller and answers a header. */
  defragment(caller?: Caller): Promise<WithHeader<object>>;
  /** GET lists the raised alarms (an empty list when none); DEACTIVATE clears one. */
  alarm(r: AlarmRequest): Promise<WithHeader<{ alarms: AlarmMember[] }>>;
}
