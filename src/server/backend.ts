// The etcd v3 semantics on top of one cluster member: what each API call means in terms of
// proposals (writes), ReadIndex barriers (linearizable reads), local state (serializable reads)
// and the leader's lease clocks. Both API layers (gRPC, HTTP) call this.
import { randomUUID } from 'node:crypto';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { backendHash, writeBackendFile, type BackendSource } from '../backup/index.js';
import {
  AlarmAction,
  AlarmType,
  alarmStatusText,
  type AlarmMember,
  type AlarmRequest,
  type Caller,
  type EtcdBackend,
  type Member as ApiMember,
  type MemberAddResponse,
  type MemberListResponse,
  type SnapshotStream,
  type StatusResponse,
  type WatchCreate,
  type WatchHandle,
  type WatchSink,
  type WithHeader,
} from '../api/backend.js';
import { ETCD_API_VERSION } from '../api/backend.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResponse,
  HashKVResponse,
  KeyValueSink,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
} from '../mvcc/types.js';
import { ConfChangeType, majorityOf } from '../raft/index.js';
import { leaseNotFoundError, noSpaceError, isReadOnlyTxn, isSerializableTxn, type MvccCommand } from '../mvcc/index.js';
import { authorizeTxn } from '../auth/index.js';
import { NodeAuthBackend } from './auth-backend.js';
import { ErrorCode, LichenError } from '../errors.js';
import type { NodeConfig } from './config.js';
import { formatId, hashToId } from './ids.js';
import type { Member } from '../replica/members.js';
import type { LeaderForwarder } from './forward.js';
import type { Replica } from '../replica/index.js';
import { TMP_DIR } from './state.js';
import { watchStore } from './watch.js';

/** How often a progress_notify watcher hears "nothing new up to revision R" (etcd: 10 minutes). */
const WATCH_PROGRESS_INTERVAL_MS = 10 * 60 * 1000;
/** Snapshot files are read and sent in pieces of this size. */
const SNAPSHOT_READ_BYTES = 64 * 1024;
/** A learner may be promoted once its log is within this fraction of the leader's (etcd: 90%). */
const LEARNER_READY_FRACTION = 0.9;

export class NodeBackend extends NodeAuthBackend implements EtcdBackend {
  /** Members of one cluster serve TLS alike, so this member's settings tell the schemes of all. */
  private readonly apiMember: (member: Member) => ApiMember;

  constructor(
    node: Replica,
    config: NodeConfig,
    private readonly forwarder: LeaderForwarder,
  ) {
    super(node, config);
    const schemes = {
      client: config.certFile !== '' || config.autoTls ? 'https' : 'http',
      peer: config.peerCertFile !== '' || config.peerAutoTls ? 'https' : 'http',
    };
    this.apiMember = (member) => toApiMember(member, schemes);
  }

  leaderId(): number {
    return this.node.leaderId;
  }

  // ---- KV ----

  async range(r: RangeRequest, caller?: Caller, into?: KeyValueSink): Promise<WithHeader<RangeResponse>> {
    // A serializable read is served from local state, which only a serving member may do (one
    // waiting for its new cluster, or stopped by lost data, would answer from an empty store).
    if (r.serializable) this.node.assertServing();
    else await this.node.linearizableBarrier();
    this.node.auth.checkRead(this.authInfo(caller), r.key, r.rangeEnd);
    const response = this.node.store.range(r, into);
    return { header: this.header(), ...response };
  }

  async put(r: PutRequest, caller?: Caller): Promise<WithHeader<PutResponse>> {
    const applied = await this.proposeWithinQuota({ type: 'put', request: r }, caller);
    return { header: this.header(applied.revision), ...(applied.response as PutResponse) };
  }

  async deleteRange(r: DeleteRangeRequest, caller?: Caller): Promise<WithHeader<DeleteRangeResponse>> {
    const applied = await this.proposeAs({ type: 'deleteRange', request: r }, caller);
    return { header: this.header(applied.revision), ...(applied.response as DeleteRangeResponse) };
  }

  async txn(r: TxnRequest, caller?: Caller): Promise<WithHeader<TxnResponse>> {
    if (isReadOnlyTxn(r)) {
      // Only ranges: served like a range (etcd does the same), with no raft entry, fsync or apply.
      if (isSerializableTxn(r)) this.node.assertServing();
      else await this.node.linearizableBarrier();
      if (this.node.auth.enabled) authorizeTxn({ auth: this.node.auth, mvcc: this.node.store }, this.authInfo(caller), r);
      const response = this.node.store.readTxn(r);
      return { header: this.header(), ...response };
    }
    const applied = await this.proposeWithinQuota({ type: 'txn', request: r }, caller);
    return { header: this.header(applied.revision), ...(applied.response as TxnResponse) };
  }

  /**
   * etcd's quotaKVServer / quotaLeaseServer: a write that would take the data in use past the
   * quota is refused before it is proposed, and this member's NOSPACE alarm is raised (etcd waits
   * for that proposal and ignores its outcome, and so do we).
   */
  private async proposeWithinQuota(command: MvccCommand, caller: Caller | undefined): ReturnType<Replica['propose']> {
    if (!this.node.quotaAdmits(command)) {
      await this.node.propose({ type: 'alarmActivate', memberId: this.node.memberId, alarm: AlarmType.NOSPACE }).catch(() => undefined);
      throw noSpaceError();
    }
    return this.proposeAs(command, caller);
  }

  async compact(r: CompactionRequest, caller?: Caller): Promise<WithHeader<object>> {
    const applied = await this.proposeAs({ type: 'compact', request: r }, caller);
    return { header: this.header(applied.revision) };
  }

  // ---- Watch ----

  watch(r: WatchCreate, sink: WatchSink, caller?: Caller): WatchHandle {
    // Checked once, when the watcher starts (as etcd does); later permission changes do not end it.
    this.node.auth.checkRead(this.authInfo(caller), r.key, r.rangeEnd);
    return watchStore(this.node, r, sink, WATCH_PROGRESS_INTERVAL_MS, this.config.tickMs);
  }

  // ---- Lease ----

  async leaseGrant(r: LeaseGrantRequest, caller?: Caller): Promise<WithHeader<LeaseGrantResponse>> {
    if (!Number.isInteger(r.TTL) || r.TTL <= 0) {
      throw new LichenError(ErrorCode.InvalidArgument, `lease TTL must be a positive number of seconds, got ${r.TTL}`);
    }
    const applied = await this.proposeWithinQuota({ type: 'leaseGrant', request: r }, caller);
    return { header: this.header(applied.revision), ...(applied.response as LeaseGrantResponse) };
  }

  async leaseRevoke(id: number, caller?: Caller): Promise<WithHeader<object>> {
    const applied = await this.proposeAs({ type: 'leaseRevoke', id }, caller);
    return { header: this.header(applied.revision) };
  }

  async leaseKeepAlive(id: number): Promise<WithHeader<{ TTL: number }>> {
    await this.node.waitForLeader();
    if (this.node.isLeader()) {
      if (!this.node.store.hasLease(id)) throw leaseNotFoundError(id);
      return { header: this.header(), TTL: this.node.lessor.renew(id, Date.now()) };
    }
    return { header: this.header(), TTL: await this.forwarder.leaseKeepAlive(this.leaderClientAddress(), id) };
  }

  async leaseTimeToLive(id: number, keys: boolean): Promise<WithHeader<LeaseTimeToLiveResponse>> {
    await this.node.waitForLeader();
    if (!this.node.isLeader()) {
      return { header: this.header(), ...(await this.forwarder.leaseTimeToLive(this.leaderClientAddress(), id, keys)) };
    }
    await this.node.linearizableBarrier();
    const lease = this.node.store.lease(id);
    if (!lease) return { header: this.header(), ID: id, TTL: -1, grantedTTL: 0, keys: [] };
    const remainingSeconds = Math.max(0, Math.ceil(this.node.lessor.remaining(id, Date.now())));
    return { header: this.header(), ID: id, TTL: remainingSeconds, grantedTTL: lease.grantedTTL, keys: keys ? lease.keys : [] };
  }

  async leaseLeases(): Promise<WithHeader<{ ids: number[] }>> {
    await this.node.linearizableBarrier();
    return { header: this.header(), ids: this.node.store.leases().map((l) => l.ID) };
  }

  private leaderClientAddress(): string {
    const leader = this.node.leader();
    if (!leader || leader.clientAddress === '') {
      throw new LichenError(ErrorCode.Unavailable, 'leader has not published its client address yet');
    }
    return leader.clientAddress;
  }

  // ---- Cluster ----

  async memberList(linearizable: boolean): Promise<WithHeader<MemberListResponse>> {
    if (linearizable) await this.node.linearizableBarrier();
    return { header: this.header(), members: this.node.members.map(this.apiMember) };
  }

  async memberAdd(peerURLs: string[], isLearner: boolean, caller?: Caller): Promise<WithHeader<MemberAddResponse>> {
    this.checkAdmin(caller);
    const peerAddress = addressOfUrls(peerURLs);
    if (this.node.members.some((m) => m.peerAddress === peerAddress)) {
      throw new LichenError(ErrorCode.MemberExists, `peer URL ${peerAddress} exists`, { etcdError: 'peerURLExists' });
    }
    // The proposer picks the id; every replica learns it from the committed entry.
    const id = hashToId(`added\0${peerAddress}\0${Date.now()}\0${Math.random()}`);
    await this.node.proposeConfChange(isLearner ? ConfChangeType.AddLearner : ConfChangeType.AddNode, id, { name: '', peerAddress });
    const members = this.node.members.map(this.apiMember);
    return { header: this.header(), member: members.find((m) => m.id === id)!, members };
  }

  async memberRemove(id: number, caller?: Caller): Promise<WithHeader<MemberListResponse>> {
    this.checkAdmin(caller);
    const member = this.requireMember(id);
    if (!member.isLearner) this.refuseIfQuorumWouldBeLost(id);
    await this.handOffLeadershipFrom(id);
    await this.node.proposeConfChange(ConfChangeType.RemoveNode, id);
    return { header: this.header(), members: this.node.members.map(this.apiMember) };
  }

  async memberUpdate(id: number, peerURLs: string[], caller?: Caller): Promise<WithHeader<MemberListResponse>> {
    this.checkAdmin(caller);
    const member = this.requireMember(id);
    const peerAddress = addressOfUrls(peerURLs);
    await this.node.proposeConfChange(ConfChangeType.UpdateNode, id, { name: member.name, peerAddress });
    return { header: this.header(), members: this.node.members.map(this.apiMember) };
  }

  async memberPromote(id: number, caller?: Caller): Promise<WithHeader<MemberListResponse>> {
    this.checkAdmin(caller);
    const member = this.requireMember(id);
    if (!member.isLearner) {
      throw new LichenError(ErrorCode.MembershipRefused, `member ${formatId(id)} is not a learner`, { etcdError: 'memberNotLearner', nodeId: id });
    }
    this.refuseIfLearnerBehind(id);
    await this.node.proposeConfChange(ConfChangeType.AddNode, id);
    return { header: this.header(), members: this.node.members.map(this.apiMember) };
  }

  /**
   * Removing the leader itself would leave the cluster without one until an election timeout
   * passes, so, as etcd does, leadership moves to another voter first (this member when it votes).
   */
  private async handOffLeadershipFrom(id: number): Promise<void> {
    await this.node.waitForLeader();
    if (this.node.leaderId !== id) return;
    const voters = this.node.raftStatus().conf.voters.filter((v) => v !== id);
    const target = voters.includes(this.node.memberId) ? this.node.memberId : voters[0];
    if (target !== undefined) await this.node.transferLeadership(target);
  }

  private requireMember(id: number): Member {
    const member = this.node.members.find((m) => m.id === id);
    if (!member) throw new LichenError(ErrorCode.MemberNotFound, `member ${formatId(id)} not found`, { etcdError: 'memberNotFound', nodeId: id });
    return member;
  }

  /**
   * On the leader, refuse to remove a voter when the voters that stay and are known to be
   * active would not form a quorum of the new configuration (etcd's same rule). Followers lack
   * the progress view; the leader's own check is what matters and raft serializes changes.
   */
  private refuseIfQuorumWouldBeLost(id: number): void {
    const status = this.node.raftStatus();
    if (status.role !== 'leader' || !status.progress) return;
    const remaining = status.conf.voters.filter((v) => v !== id);
    const active = remaining.filter((v) => v === status.id || status.progress!.get(v)?.recentActive);
    if (active.length < majorityOf(remaining.length)) {
      throw new LichenError(
        ErrorCode.MembershipRefused,
        `not enough started members: ${active.length} of ${remaining.length} remaining voters are active`,
        { etcdError: 'memberNotEnoughStarted', nodeId: id },
      );
    }
  }

  private refuseIfLearnerBehind(id: number): void {
    const status = this.node.raftStatus();
    if (status.role !== 'leader' || !status.progress) return;
    const match = status.progress.get(id)?.match ?? 0;
    if (match < status.commit * LEARNER_READY_FRACTION) {
      // gRPC clients get etcd's words (they match on them); the numbers are for the HTTP API and logs.
      throw new LichenError(
        ErrorCode.MembershipRefused,
        `the learner is not in sync with the leader (learner at ${match}, leader committed ${status.commit})`,
        { etcdError: 'learnerNotReady', learnerMatch: match, leaderCommit: status.commit },
      );
    }
  }

  // ---- Maintenance ----

  async status(): Promise<WithHeader<StatusResponse>> {
    const raft = this.node.raftStatus();
    const space = this.node.measureSpace();
    const alarms = this.node.store.alarms().map(alarmStatusText);
    return {
      header: this.header(),
      version: ETCD_API_VERSION,
      dbSize: space.sizeBytes,
      dbSizeInUse: space.inUseBytes,
      leader: raft.lead,
      raftIndex: raft.commit,
      raftTerm: raft.term,
      raftAppliedIndex: this.node.appliedIndex,
      isLearner: this.node.isLearner,
      errors: this.node.removedReason ? [this.node.removedReason, ...alarms] : alarms,
    };
  }

  async hashKV(revision: number, caller?: Caller): Promise<WithHeader<HashKVResponse>> {
    this.checkAdmin(caller);
    const response = this.node.store.hashKV(revision === 0 ? this.node.store.currentRevision : revision);
    return { header: this.header(), ...response };
  }

  async moveLeader(targetId: number): Promise<WithHeader<object>> {
    await this.node.transferLeadership(targetId);
    return { header: this.header() };
  }

  /**
   * The backend as etcd 3.4 lays it out, as a bbolt file: built from a consistent view into a
   * temporary file (memory stays bounded however large the store), then streamed from it. The
   * file is unlinked as soon as it is open, so nothing is left behind when the stream ends or is
   * abandoned; a crash meanwhile leaves it in tmp/, which the next start empties.
   */
  async snapshot(caller?: Caller): Promise<SnapshotStream> {
    this.checkAdmin(caller);
    const dir = join(this.config.dataDir, TMP_DIR);
    await mkdir(dir, { recursive: true });
    const path = join(dir, `snapshot-${randomUUID()}.db`);
    await this.node.linearizableBarrier();
    const header = this.header();
    const source = this.backendSource();
    let file: FileHandle;
    let sizeBytes: number;
    try {
      ({ sizeBytes } = await writeBackendFile(source, path));
      file = await open(path, 'r');
    } finally {
      source.mvcc.close();
      await rm(path, { force: true });
    }
    return { header, sizeBytes, chunks: readChunks(file) };
  }

  async hash(caller?: Caller): Promise<WithHeader<{ hash: number }>> {
    this.checkAdmin(caller);
    const header = this.header();
    const source = this.backendSource();
    try {
      return { header, hash: await backendHash(source) };
    } finally {
      source.mvcc.close();
    }
  }

  /** This member's state at this moment: the engine view and the member table agree. */
  private backendSource(): BackendSource {
    return {
      mvcc: this.node.store.stateView(),
      auth: this.node.auth.state(),
      members: this.node.members.map(this.apiMember),
      removedMemberIds: this.node.removedMemberIds,
    };
  }

  async defragment(caller?: Caller): Promise<WithHeader<object>> {
    this.checkAdmin(caller);
    return { header: this.header() };
  }

  /**
   * As etcd: GET lists the raised alarms of one type (NONE: all), whatever the member id; ACTIVATE
   * and DEACTIVATE act on the one (member id, type) alarm named, member id 0 included, and answer
   * it (nothing when there was nothing to clear). Reads are linearizable, as etcd's go through raft.
   */
  async alarm(r: AlarmRequest): Promise<WithHeader<{ alarms: AlarmMember[] }>> {
    if (r.action === AlarmAction.GET) {
      await this.node.linearizableBarrier();
      return { header: this.header(), alarms: this.node.store.alarms(r.alarm) };
    }
    const type = r.action === AlarmAction.ACTIVATE ? 'alarmActivate' : 'alarmDeactivate';
    const applied = await this.node.propose({ type, memberId: r.memberId, alarm: r.alarm });
    return { header: this.header(applied.revision), alarms: (applied.response as { alarms: AlarmMember[] }).alarms };
  }
}

/** A file's bytes in pieces of SNAPSHOT_READ_BYTES; closes it when read or abandoned. */
async function* readChunks(file: FileHandle): AsyncIterable<Uint8Array> {
  try {
    for (;;) {
      const buffer = Buffer.allocUnsafe(SNAPSHOT_READ_BYTES);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await file.close();
  }
}

/** A member as the Cluster API shows it; the URL schemes say whether its ports serve TLS. */
function toApiMember(member: Member, schemes: { client: string; peer: string }): ApiMember {
  return {
    id: member.id,
    name: member.name,
    peerURLs: [`${schemes.peer}://${member.peerAddress}`],
    clientURLs: member.clientAddress ? [`${schemes.client}://${member.clientAddress}`] : [],
    isLearner: member.isLearner,
  };
}

/** "http://host:port" (or bare host:port) → host:port; exactly one URL is supported. */
export function addressOfUrls(peerURLs: string[]): string {
  if (peerURLs.length !== 1) {
    throw new LichenError(ErrorCode.InvalidArgument, `exactly one peer URL is supported, got ${peerURLs.length}`);
  }
  const text = peerURLs[0]!;
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new LichenError(ErrorCode.InvalidArgument, `"${text}" is not a valid peer URL`);
  }
  if (!url.port) throw new LichenError(ErrorCode.InvalidArgument, `peer URL "${text}" has no port`);
  return `${url.hostname}:${url.port}`;
}
