// For tests only: an EtcdBackend over a real single-node MvccStore on the memory engine, with no
// raft. Writes are applied at once with increasing indexes. It records every call and lets a
// test make the next call of a method fail or hang, so the HTTP tests can check error mapping
// and timeouts against real store semantics (revisions, compaction, prefix ranges).
import { backendHash } from '../../backup/index.js';
import { initialAuthState } from '../../auth/index.js';
import { NoAuthBackend } from '../grpc/testing/no-auth.js';
import { ErrorCode, LichenError } from '../../errors.js';
import { MemoryEngine } from '../../engine/index.js';
import type { MvccCommand } from '../../mvcc/command.js';
import { MvccStore } from '../../mvcc/store.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResponse,
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
} from '../../mvcc/types.js';
import type {
  AlarmMember,
  AlarmRequest,
  EtcdBackend,
  Member,
  MemberAddResponse,
  MemberListResponse,
  SnapshotStream,
  StatusResponse,
  WatchCreate,
  WatchHandle,
  WatchSink,
  WithHeader,
} from '../backend.js';

export const TEST_CLUSTER_ID = 0x1234;
export const TEST_MEMBER_ID = 0xabc;
export const TEST_RAFT_TERM = 3;

export class StoreBackend extends NoAuthBackend implements EtcdBackend {
  readonly store = MvccStore.open(new MemoryEngine());
  /** Every call in order: the method name and its first argument. */
  readonly calls: Array<{ method: string; request: unknown }> = [];
  members: Member[] = [
    { id: TEST_MEMBER_ID, name: 'node-a', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: false },
    { id: 0xdef, name: 'node-b', peerURLs: ['http://127.0.0.1:2381'], clientURLs: ['http://127.0.0.1:2378'], isLearner: false },
  ];
  leader = TEST_MEMBER_ID;
  alarms: AlarmMember[] = [];
  private raftIndex = 0;
  /** What the next call of a method does instead of its work: throw this, or never resolve. */
  private readonly nextFailure = new Map<string, unknown | 'hang'>();

  failNext(method: keyof EtcdBackend, error: unknown): void {
    this.nextFailure.set(method, error);
  }

  hangNext(method: keyof EtcdBackend): void {
    this.nextFailure.set(method, 'hang');
  }

  callsOf(method: keyof EtcdBackend): unknown[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.request);
  }

  header(revision?: number): ResponseHeader {
    return { clusterId: TEST_CLUSTER_ID, memberId: TEST_MEMBER_ID, revision: revision ?? this.store.currentRevision, raftTerm: TEST_RAFT_TERM };
  }

  leaderId(): number {
    return this.leader;
  }

  async range(r: RangeRequest): Promise<WithHeader<RangeResponse>> {
    await this.enter('range', r);
    return { ...this.store.range(r), header: this.header() };
  }

  async put(r: PutRequest): Promise<WithHeader<PutResponse>> {
    await this.enter('put', r);
    return this.applyCommand<PutResponse>({ type: 'put', request: r });
  }

  async deleteRange(r: DeleteRangeRequest): Promise<WithHeader<DeleteRangeResponse>> {
    await this.enter('deleteRange', r);
    return this.applyCommand<DeleteRangeResponse>({ type: 'deleteRange', request: r });
  }

  async txn(r: TxnRequest): Promise<WithHeader<TxnResponse>> {
    await this.enter('txn', r);
    return this.applyCommand<TxnResponse>({ type: 'txn', request: r });
  }

  async compact(r: CompactionRequest): Promise<WithHeader<object>> {
    await this.enter('compact', r);
    return this.applyCommand<object>({ type: 'compact', request: r });
  }

  watch(_r: WatchCreate, _sink: WatchSink): WatchHandle {
    throw unused('watch');
  }

  async leaseGrant(r: LeaseGrantRequest): Promise<WithHeader<LeaseGrantResponse>> {
    await this.enter('leaseGrant', r);
    return this.applyCommand<LeaseGrantResponse>({ type: 'leaseGrant', request: r });
  }

  async leaseRevoke(id: number): Promise<WithHeader<object>> {
    await this.enter('leaseRevoke', id);
    return this.applyCommand<object>({ type: 'leaseRevoke', id });
  }

  async leaseKeepAlive(_id: number): Promise<WithHeader<{ TTL: number }>> {
    throw unused('leaseKeepAlive');
  }

  async leaseTimeToLive(_id: number, _keys: boolean): Promise<WithHeader<LeaseTimeToLiveResponse>> {
    throw unused('leaseTimeToLive');
  }

  async leaseLeases(): Promise<WithHeader<{ ids: number[] }>> {
    throw unused('leaseLeases');
  }

  async memberList(linearizable: boolean): Promise<WithHeader<MemberListResponse>> {
    await this.enter('memberList', linearizable);
    return { members: this.members, header: this.header() };
  }

  async memberAdd(_peerURLs: string[], _isLearner: boolean): Promise<WithHeader<MemberAddResponse>> {
    throw unused('memberAdd');
  }

  async memberRemove(_id: number): Promise<WithHeader<MemberListResponse>> {
    throw unused('memberRemove');
  }

  async memberUpdate(_id: number, _peerURLs: string[]): Promise<WithHeader<MemberListResponse>> {
    throw unused('memberUpdate');
  }

  async memberPromote(_id: number): Promise<WithHeader<MemberListResponse>> {
    throw unused('memberPromote');
  }

  async status(): Promise<WithHeader<StatusResponse>> {
    await this.enter('status', undefined);
    return {
      header: this.header(),
      version: '3.5.0',
      dbSize: 4096,
      dbSizeInUse: 2048,
      leader: this.leader,
      raftIndex: this.raftIndex,
      raftTerm: TEST_RAFT_TERM,
      raftAppliedIndex: this.store.appliedIndex,
      isLearner: false,
      errors: [],
    };
  }

  async hashKV(revision: number): Promise<WithHeader<HashKVResponse>> {
    await this.enter('hashKV', revision);
    return { ...this.store.hashKV(revision), header: this.header() };
  }

  async hash(): Promise<WithHeader<{ hash: number }>> {
    await this.enter('hash', undefined);
    const mvcc = this.store.stateView();
    try {
      return { hash: await backendHash({ mvcc, auth: initialAuthState(), members: this.members, removedMemberIds: [] }), header: this.header() };
    } finally {
      mvcc.close();
    }
  }

  async moveLeader(_targetId: number): Promise<WithHeader<object>> {
    throw unused('moveLeader');
  }

  async snapshot(): Promise<SnapshotStream> {
    throw unused('snapshot');
  }

  async alarm(r: AlarmRequest): Promise<WithHeader<{ alarms: AlarmMember[] }>> {
    await this.enter('alarm', r);
    return { alarms: this.alarms, header: this.header() };
  }

  private async enter(method: string, request: unknown): Promise<void> {
    this.calls.push({ method, request });
    if (!this.nextFailure.has(method)) return;
    const failure = this.nextFailure.get(method);
    this.nextFailure.delete(method);
    if (failure === 'hang') await new Promise<never>(() => {});
    throw failure;
  }

  private applyCommand<T>(command: MvccCommand): WithHeader<T> {
    this.raftIndex++;
    const result = this.store.apply(this.raftIndex, command);
    if ('error' in result) throw result.error;
    return { ...(result.response as T), header: this.header(result.revision) };
  }
}

function unused(method: string): LichenError {
  return new LichenError(ErrorCode.Internal, `the HTTP test backend does not implement ${method}`);
}
