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
}

/**
 * Everything the etcd v3 services need from a node. Methods that may wait for raft return
 * promises; cheap local facts are synchronous.
 */
export interface EtcdBackend {
  /**
   * The header for a response: this cluster and member, the current raft term, and the given
   * revision (the current store revision when absent).
   */
  header(revision?: number): ResponseHeader;
  /** The member id this node believes is leader; 0 when no leader is known. */
  leaderId(): number;

  // ---- KV ----
  /** Linearizable unless r.serializable (then served from local state, possibly stale). */
  range(r: RangeRequest): Promise<WithHeader<RangeResponse>>;
  put(r: PutRequest): Promise<WithHeader<PutResponse>>;
  deleteRange(r: DeleteRangeRequest): Promise<WithHeader<DeleteRangeResponse>>;
  txn(r: TxnRequest): Promise<WithHeader<TxnResponse>>;
  /** Compacted when r.revision <= the compact revision, FutureRevision when > current. */
  compact(r: CompactionRequest): Promise<WithHeader<object>>;

  // ---- Watch ----
  /**
   * Starts a watcher. Throws Compacted synchronously only if it prefers to; the usual way to
   * report a compacted start revision is sink.onCompacted (as etcd does, after "created").
   */
  watch(r: WatchCreate, sink: WatchSink): WatchHandle;

  // ---- Lease ----
  leaseGrant(r: LeaseGrantRequest): Promise<WithHeader<LeaseGrantResponse>>;
  /** LeaseNotFound when the lease does not exist. */
  leaseRevoke(id: number): Promise<WithHeader<object>>;
  /** Renews the lease and returns its TTL in seconds; LeaseNotFound when it does not exist. */
  leaseKeepAlive(id: number): Promise<WithHeader<{ TTL: number }>>;
  /** TTL -1 when the lease does not exist; keys only when `keys` is true. */
  leaseTimeToLive(id: number, keys: boolean): Promise<WithHeader<LeaseTimeToLiveResponse>>;
  leaseLeases(): Promise<WithHeader<{ ids: number[] }>>;

  // ---- Cluster ----
  memberList(linearizable: boolean): Promise<WithHeader<MemberListResponse>>;
  memberAdd(peerURLs: string[], isLearner: boolean): Promise<WithHeader<MemberAddResponse>>;
  memberRemove(id: number): Promise<WithHeader<MemberListResponse>>;
  memberUpdate(id: number, peerURLs: string[]): Promise<WithHeader<MemberListResponse>>;
  memberPromote(id: number): Promise<WithHeader<MemberListResponse>>;

  // ---- Maintenance ----
  status(): Promise<WithHeader<StatusResponse>>;
  /** Hash of the MVCC key space up to `revision` (0: the current revision). */
  hashKV(revision: number): Promise<WithHeader<HashKVResponse>>;
  /** Transfers leadership to targetId; only the leader can; resolves when done. */
  moveLeader(targetId: number): Promise<WithHeader<object>>;
  snapshot(): Promise<SnapshotStream>;
  /**
   * etcd's Hash: a CRC-32C of the whole backend as etcd lays it out, leaving out the consistent
   * index, so members holding the same data agree.
   */
  hash(): Promise<WithHeader<{ hash: number }>>;
  /** GET lists the raised alarms (an empty list when none); DEACTIVATE clears one. */
  alarm(r: AlarmRequest): Promise<WithHeader<{ alarms: AlarmMember[] }>>;
}
