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

export type WithHeader<T> = T & { header?: ResponseHeader };

export interface CliMember {
  id: number;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

export interface CliStatus {
  version: string;
  dbSize: number;
  leader: number;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  errors: string[];
  header?: ResponseHeader;
}

export interface CliAlarm {
  memberId: number;
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
  onEvents(events: Event[], revision: number): void;
  /** The watch cannot continue: compacted start revision, canceled by the server, no endpoint answers. */
  onEnd(error: Error): void;
}

export interface CliWatchHandle {
  cancel(): void;
}

export interface CliClient {
  range(r: RangeRequest): Promise<WithHeader<RangeResponse>>;
  put(r: PutRequest): Promise<WithHeader<PutResponse>>;
  deleteRange(r: DeleteRangeRequest): Promise<WithHeader<DeleteRangeResponse>>;
  txn(r: TxnRequest): Promise<WithHeader<TxnResponse>>;
  compact(r: CompactionRequest): Promise<WithHeader<object>>;
  watch(r: CliWatchCreate, sink: CliWatchSink): Promise<CliWatchHandle>;

  leaseGrant(ttlSeconds: number): Promise<WithHeader<LeaseGrantResponse>>;
  leaseRevoke(id: number): Promise<WithHeader<object>>;
  /** One renewal; resolves to the new TTL in seconds. */
  leaseKeepAliveOnce(id: number): Promise<WithHeader<{ ID: number; TTL: number }>>;
  leaseTimeToLive(id: number, keys: boolean): Promise<WithHeader<LeaseTimeToLiveResponse>>;
  leaseLeases(): Promise<WithHeader<{ ids: number[] }>>;

  memberList(): Promise<WithHeader<{ members: CliMember[] }>>;
  memberAdd(peerURLs: string[], isLearner: boolean): Promise<WithHeader<{ member: CliMember; members: CliMember[] }>>;
  memberRemove(id: number): Promise<WithHeader<{ members: CliMember[] }>>;
  memberUpdate(id: number, peerURLs: string[]): Promise<WithHeader<{ members: CliMember[] }>>;
  memberPromote(id: number): Promise<WithHeader<{ members: CliMember[] }>>;

  /** Asks every endpoint for its status (not just one); failures are reported per endpoint. */
  statusAll(): Promise<EndpointStatus[]>;
  /** The first endpoint's backend in etcd's snapshot format, streamed; no deadline (abort with the signal). */
  snapshot(signal: AbortSignal): AsyncIterable<Uint8Array>;
  /** Transfers leadership; the client finds the current leader itself. */
  moveLeader(targetId: number): Promise<WithHeader<object>>;
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
