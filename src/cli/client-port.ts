// The narrow view of a cluster client that the CLI commands need. Commands code against this
// interface, not against the SDK directly, so their formatting and flag handling can be tested
// with an in-memory fake, and an SDK change touches one adapter (sdk-adapter.ts) only.
import type { ClientTls } from '../client/tls.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
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

/** Fields that hold one of etcd's 64-bit ids (lease, member, cluster): most of etcd's are above 2^53. */
type IdField = 'lease' | 'clusterId' | 'memberId' | 'ID';

/**
 * One of the store's request or response types as the CLI carries it: its id fields as bigint, so
 * that ids typed by a user, or sent by etcd, arrive and print exactly (as etcdctl's int64s do).
 */
export type Exact<T> = T extends Uint8Array
  ? T
  : T extends readonly (infer U)[]
    ? Exact<U>[]
    : T extends object
      ? { [K in keyof T]: K extends IdField ? bigint | Extract<T[K], undefined> : Exact<T[K]> }
      : T;

export type WithHeader<T> = T & { header?: Exact<ResponseHeader> };

export interface CliMember {
  id: bigint;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface CliStatus {
  version: string;
  dbSize: number;
  /** Absent when the server does not say (etcd before 3.4). */
  dbSizeInUse?: number;
  leader: bigint;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  errors: string[];
  header?: Exact<ResponseHeader>;
}

export interface CliAlarm {
  memberId: bigint;
  /** NOSPACE or CORRUPT. */
  alarm: string;
}

/** The status of one endpoint, or why it could not be had. */
export interface EndpointStatus {
  endpoint: string;
  status?: CliStatus;
  error?: string;
}

export interface CliWatchCreate {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  startRevision?: number;
  prevKv?: boolean;
}

export interface CliWatchSink {
  onEvents(events: Exact<Event>[], revision: number, header: Exact<ResponseHeader>): void;
  /** The watch cannot continue: compacted start revision, canceled by the server, no endpoint answers. */
  onEnd(error: Error): void;
}

export interface CliWatchHandle {
  cancel(): void;
}

export interface CliClient {
  range(r: RangeRequest): Promise<WithHeader<Exact<RangeResponse>>>;
  put(r: Exact<PutRequest>): Promise<WithHeader<Exact<PutResponse>>>;
  deleteRange(r: DeleteRangeRequest): Promise<WithHeader<Exact<DeleteRangeResponse>>>;
  txn(r: Exact<TxnRequest>): Promise<WithHeader<Exact<TxnResponse>>>;
  compact(r: CompactionRequest): Promise<WithHeader<object>>;
  watch(r: CliWatchCreate, sink: CliWatchSink): Promise<CliWatchHandle>;

  leaseGrant(ttlSeconds: number): Promise<WithHeader<Exact<LeaseGrantResponse>>>;
  leaseRevoke(id: bigint): Promise<WithHeader<object>>;
  /** One renewal; resolves to the new TTL in seconds. */
  leaseKeepAliveOnce(id: bigint): Promise<WithHeader<{ ID: bigint; TTL: number }>>;
  leaseTimeToLive(id: bigint, keys: boolean): Promise<WithHeader<Exact<LeaseTimeToLiveResponse>>>;
  leaseLeases(): Promise<WithHeader<{ ids: bigint[] }>>;

  memberList(): Promise<WithHeader<{ members: CliMember[] }>>;
  memberAdd(peerURLs: string[], isLearner: boolean): Promise<WithHeader<{ member: CliMember; members: CliMember[] }>>;
  memberRemove(id: bigint): Promise<WithHeader<{ members: CliMember[] }>>;
  memberUpdate(id: bigint, peerURLs: string[]): Promise<WithHeader<{ members: CliMember[] }>>;
  memberPromote(id: bigint): Promise<WithHeader<{ members: CliMember[] }>>;

  /** Asks every endpoint for its status (not just one); failures are reported per endpoint. */
  statusAll(): Promise<EndpointStatus[]>;
  /** The first endpoint's backend in etcd's snapshot format, streamed; no deadline (abort with the signal). */
  snapshot(signal: AbortSignal): AsyncIterable<Uint8Array>;
  /** Transfers leadership; the client finds the current leader itself. */
  moveLeader(targetId: bigint): Promise<WithHeader<object>>;
  /** The raised alarms (etcd's Alarm GET). */
  alarmList(): Promise<WithHeader<{ alarms: CliAlarm[] }>>;
  /** Clears every raised alarm, one (member, type) at a time; answers those cleared. */
  alarmDisarm(): Promise<WithHeader<{ alarms: CliAlarm[] }>>;

  close(): Promise<void>;
}

export interface ClientOptions {
  endpoints: string[];
  /** Per-request deadline. */
  timeoutMs: number;
  /** Log in as this user (etcd authentication). */
  auth?: { user: string; password: string };
  /** TLS towards the members; cleartext when absent. */
  tls?: ClientTls;
}

export type ClientFactory = (options: ClientOptions) => Promise<CliClient>;
