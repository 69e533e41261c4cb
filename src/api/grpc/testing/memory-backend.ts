// A test double: an EtcdBackend that keeps a small MVCC key space in memory, single node, no raft.
// It exists so the gRPC layer and the client SDK can be tested end to end before (and
// independently of) the real server. It is deliberately simple (linear scans), not fast.
//
// Test hooks: `failNext(method, error)` makes the next call of a method throw; `calls` records
// every call's method name and arguments; `leader` can be set to 0 to simulate "no leader".
import { NoAuthBackend } from './no-auth.js';
import { ErrorCode, LichenError } from '../../../errors.js';
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
} from '../../../mvcc/types.js';
import type {
  AlarmMember,
  AlarmRequest,
  EtcdBackend,
  Member,
  SnapshotStream,
  WatchCreate,
  WatchHandle,
  WatchSink,
  WithHeader,
} from '../../backend.js';

interface Version {
  revision: number;
  /** undefined: a tombstone. */
  kv: KeyValue | undefined;
}

interface Lease {
  id: number;
  grantedTTL: number;
  keys: Set<string>;
}

interface MemoryWatcher {
  request: WatchCreate;
  sink: WatchSink;
  canceled: boolean;
}

const hex = (key: Uint8Array): string => Buffer.from(key).toString('hex');
const unhex = (key: string): Uint8Array => new Uint8Array(Buffer.from(key, 'hex'));

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** etcd's key range convention. */
export function inRange(key: Uint8Array, start: Uint8Array, end: Uint8Array | undefined): boolean {
  if (end === undefined || end.length === 0) return compareBytes(key, start) === 0;
  const fromStartToEnd = end.length === 1 && end[0] === 0;
  if (compareBytes(key, start) < 0) return false;
  return fromStartToEnd || compareBytes(key, end) < 0;
}

export class MemoryBackend extends NoAuthBackend implements EtcdBackend {
  clusterId = 1001;
  memberId = 1;
  raftTerm = 2;
  leader = 1;
  revision = 1;
  compactRevision = 0;
  readonly calls: { method: string; args: unknown[] }[] = [];
  readonly members: Member[] = [
    { id: 1, name: 'node-1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: false },
  ];
  private readonly versions = new Map<string, Version[]>();
  private readonly history: Event[] = [];
  private readonly leases = new Map<number, Lease>();
  private readonly watchers = new Set<MemoryWatcher>();
  private readonly failures = new Map<string, unknown[]>();
  private nextLeaseId = 0x1000;
  private nextMemberId = 100;
  alarms: AlarmMember[] = [];

  /** Makes the next call of `method` throw `error` (queued: several calls fail in turn). */
  failNext(method: keyof EtcdBackend, error: unknown): void {
    const queue = this.failures.get(method) ?? [];
    queue.push(error);
    this.failures.set(method, queue);
  }

  private enter(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const queue = this.failures.get(method);
    if (queue && queue.length > 0) throw queue.shift();
  }

  header(revision?: number): ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.memberId, revision: revision ?? this.revision, raftTerm: this.raftTerm };
  }

  leaderId(): number {
    return this.leader;
  }

  // ---- KV ----

  async range(r: RangeRequest): Promise<WithHeader<RangeResponse>> {
    this.enter('range', r);
    return { header: this.header(), ...this.rangeNow(r) };
  }

  async put(r: PutRequest): Promise<WithHeader<PutResponse>> {
    this.enter('put', r);
    const response = this.write((rev) => this.applyPut(r, rev));
    return { header: this.header(), ...response };
  }

  async deleteRange(r: DeleteRangeRequest): Promise<WithHeader<DeleteRangeResponse>> {
    this.enter('deleteRange', r);
    const response = this.write((rev) => this.applyDelete(r, rev));
    return { header: this.header(), ...response };
  }

  async txn(r: TxnRequest): Promise<WithHeader<TxnResponse>> {
    this.enter('txn', r);
    const response = this.write((rev) => this.applyTxn(r, rev));
    return { header: this.header(), ...response };
  }

  async compact(r: { revision: number }): Promise<WithHeader<object>> {
    this.enter('compact', r);
    if (r.revision <= this.compactRevision) {
      throw new LichenError(ErrorCode.Compacted, 'compacted', { compactRevision: this.compactRevision });
    }
    if (r.revision > this.revision) throw new LichenError(ErrorCode.FutureRevision, 'future revision');
    this.compactRevision = r.revision;
    // Events below the compact revision can no longer be replayed to watchers.
    const keep = this.history.findIndex((e) => e.kv.modRevision >= r.revision);
    this.history.splice(0, keep === -1 ? this.history.length : keep);
    return { header: this.header() };
  }

  // ---- Watch ----

  watch(request: WatchCreate, sink: WatchSink): WatchHandle {
    this.enter('watch', request);
    const watcher: MemoryWatcher = { request, sink, canceled: false };
    const start = request.startRevision ?? 0;
    if (start > 0 && start < this.compactRevision) {
      sink.onCompacted(this.compactRevision);
      return { cancel: () => {}, requestProgress: () => {}, resume: () => {} };
    }
    if (start > 0) {
      // Replay history synchronously, grouped by revision (the API layer must hold these until "created").
      const past = this.history.filter((e) => e.kv.modRevision >= start);
      this.deliver(watcher, past);
    }
    this.watchers.add(watcher);
    return {
      cancel: () => {
        watcher.canceled = true;
        this.watchers.delete(watcher);
      },
      requestProgress: () => {
        if (!watcher.canceled) sink.onProgress(this.revision);
      },
      // Delivers every event at once and keeps none back: there is nothing to catch up.
      resume: () => {},
    };
  }

  /** Ends every watcher from the backend side (e.g. to test onCanceled). */
  cancelAllWatchers(reason: string): void {
    for (const watcher of this.watchers) {
      watcher.canceled = true;
      watcher.sink.onCanceled(reason);
    }
    this.watchers.clear();
  }

  watcherCount(): number {
    return this.watchers.size;
  }

  private deliver(watcher: MemoryWatcher, events: Event[]): void {
    const { request } = watcher;
    const matching = events
      .filter((e) => inRange(e.kv.key, request.key, request.rangeEnd))
      .filter((e) => !(request.noPut && e.type === 0) && !(request.noDelete && e.type === 1))
      .map((e) => (request.prevKv ? e : { type: e.type, kv: e.kv }));
    // One batch per revision, as etcd's watch responses are.
    let index = 0;
    while (index < matching.length) {
      const revision = matching[index]!.kv.modRevision;
      const batch: Event[] = [];
      while (index < matching.length && matching[index]!.kv.modRevision === revision) batch.push(matching[index++]!);
      watcher.sink.onEvents(batch, revision);
    }
  }

  // ---- Lease ----

  async leaseGrant(r: { TTL: number; ID?: number }): Promise<WithHeader<{ ID: number; TTL: number }>> {
    this.enter('leaseGrant', r);
    const id = r.ID && r.ID !== 0 ? r.ID : this.nextLeaseId++;
    if (this.leases.has(id)) throw new LichenError(ErrorCode.LeaseExists, 'lease exists');
    this.leases.set(id, { id, grantedTTL: r.TTL, keys: new Set() });
    return { header: this.header(), ID: id, TTL: r.TTL };
  }

  async leaseRevoke(id: number): Promise<WithHeader<object>> {
    this.enter('leaseRevoke', id);
    const lease = this.requireLease(id);
    this.leases.delete(id);
    if (lease.keys.size > 0) {
      this.write((rev) => {
        for (const key of lease.keys) this.applyDelete({ key: unhex(key) }, rev);
        return {};
      });
    }
    return { header: this.header() };
  }

  async leaseKeepAlive(id: number): Promise<WithHeader<{ TTL: number }>> {
    this.enter('leaseKeepAlive', id);
    return { header: this.header(), TTL: this.requireLease(id).grantedTTL };
  }

  async leaseTimeToLive(id: number, keys: boolean): Promise<WithHeader<{ ID: number; TTL: number; grantedTTL: number; keys: Uint8Array[] }>> {
    this.enter('leaseTimeToLive', id, keys);
    const lease = this.leases.get(id);
    if (!lease) return { header: this.header(), ID: id, TTL: -1, grantedTTL: 0, keys: [] };
    return {
      header: this.header(),
      ID: id,
      TTL: lease.grantedTTL,
      grantedTTL: lease.grantedTTL,
      keys: keys ? [...lease.keys].map(unhex) : [],
    };
  }

  async leaseLeases(): Promise<WithHeader<{ ids: number[] }>> {
    this.enter('leaseLeases');
    return { header: this.header(), ids: [...this.leases.keys()] };
  }

  private requireLease(id: number): Lease {
    const lease = this.leases.get(id);
    if (!lease) throw new LichenError(ErrorCode.LeaseNotFound, 'lease not found');
    return lease;
  }

  // ---- Cluster ----

  async memberList(linearizable: boolean): Promise<WithHeader<{ members: Member[] }>> {
    this.enter('memberList', linearizable);
    return { header: this.header(), members: structuredClone(this.members) };
  }

  async memberAdd(peerURLs: string[], isLearner: boolean): Promise<WithHeader<{ member: Member; members: Member[] }>> {
    this.enter('memberAdd', peerURLs, isLearner);
    if (this.members.some((m) => m.peerURLs.some((u) => peerURLs.includes(u)))) {
      throw new LichenError(ErrorCode.MemberExists, 'peer URL exists', { etcdError: 'peerURLExists' });
    }
    const member: Member = { id: this.nextMemberId++, name: '', peerURLs, clientURLs: [], isLearner };
    this.members.push(member);
    return { header: this.header(), member: structuredClone(member), members: structuredClone(this.members) };
  }

  async memberRemove(id: number): Promise<WithHeader<{ members: Member[] }>> {
    this.enter('memberRemove', id);
    this.members.splice(this.members.indexOf(this.requireMember(id)), 1);
    return { header: this.header(), members: structuredClone(this.members) };
  }

  async memberUpdate(id: number, peerURLs: string[]): Promise<WithHeader<{ members: Member[] }>> {
    this.enter('memberUpdate', id, peerURLs);
    this.requireMember(id).peerURLs = peerURLs;
    return { header: this.header(), members: structuredClone(this.members) };
  }

  async memberPromote(id: number): Promise<WithHeader<{ members: Member[] }>> {
    this.enter('memberPromote', id);
    const member = this.requireMember(id);
    if (!member.isLearner) throw new LichenError(ErrorCode.MembershipRefused, 'not a learner', { etcdError: 'memberNotLearner' });
    member.isLearner = false;
    return { header: this.header(), members: structuredClone(this.members) };
  }

  private requireMember(id: number): Member {
    const member = this.members.find((m) => m.id === id);
    if (!member) throw new LichenError(ErrorCode.MemberNotFound, 'member not found');
    return member;
  }

  // ---- Maintenance ----

  async status(): Promise<WithHeader<{
    version: string; dbSize: number; dbSizeInUse: number; leader: number; raftIndex: number;
    raftTerm: number; raftAppliedIndex: number; isLearner: boolean; errors: string[];
  }>> {
    this.enter('status');
    return {
      header: this.header(),
      version: '3.5.0',
      dbSize: 4096,
      dbSizeInUse: 2048,
      leader: this.leader,
      raftIndex: this.revision + 10,
      raftTerm: this.raftTerm,
      raftAppliedIndex: this.revision + 10,
      isLearner: false,
      errors: [],
    };
  }

  async hashKV(revision: number): Promise<WithHeader<{ hash: number; compactRevision: number; hashRevision: number }>> {
    this.enter('hashKV', revision);
    const at = revision === 0 ? this.revision : revision;
    return { header: this.header(), hash: this.liveKeysHash(at), compactRevision: this.compactRevision, hashRevision: at };
  }

  async hash(): Promise<WithHeader<{ hash: number }>> {
    this.enter('hash');
    return { header: this.header(), hash: this.liveKeysHash(this.revision) };
  }

  /** FNV-1a over every live key and value at a revision, so that a write changes it. */
  private liveKeysHash(revision: number): number {
    let hash = 2166136261;
    for (const kv of this.rangeAt({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) }, revision)) {
      for (const byte of [...kv.key, ...kv.value]) hash = Math.imul(hash ^ byte, 16777619) >>> 0;
    }
    return hash;
  }

  async moveLeader(targetId: number): Promise<WithHeader<object>> {
    this.enter('moveLeader', targetId);
    this.requireMember(targetId);
    this.leader = targetId;
    return { header: this.header() };
  }

  async snapshot(): Promise<SnapshotStream> {
    this.enter('snapshot');
    const kvs = this.rangeAt({ key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) }, this.revision);
    const bytes = Buffer.from(JSON.stringify(kvs.map((kv) => [hex(kv.key), hex(kv.value)])));
    const pieces = [bytes.subarray(0, Math.floor(bytes.length / 2)), bytes.subarray(Math.floor(bytes.length / 2))];
    return {
      header: this.header(),
      sizeBytes: bytes.length,
      chunks: (async function* () {
        yield* pieces;
      })(),
    };
  }

  /** etcd's semantics (see NodeBackend.alarm): GET filters by type; the others act on one (member, type). */
  async alarm(r: AlarmRequest): Promise<WithHeader<{ alarms: AlarmMember[] }>> {
    this.enter('alarm', r);
    const named = (a: AlarmMember): boolean => a.memberId === r.memberId && a.alarm === r.alarm;
    let alarms: AlarmMember[];
    if (r.action === 0) {
      alarms = this.alarms.filter((a) => r.alarm === 0 || a.alarm === r.alarm);
    } else if (r.action === 1) {
      if (r.alarm !== 0 && !this.alarms.some(named)) this.alarms.push({ memberId: r.memberId, alarm: r.alarm });
      alarms = this.alarms.filter(named);
    } else {
      alarms = this.alarms.filter(named);
      this.alarms = this.alarms.filter((a) => !named(a));
    }
    return { header: this.header(), alarms: alarms.map((a) => ({ ...a })) };
  }

  // ---- the tiny MVCC ----

  /** Runs a write at revision+1; bumps the revision and notifies watchers only if it wrote. */
  private write<T>(apply: (revision: number) => T): T {
    const before = this.history.length;
    const result = apply(this.revision + 1);
    const events = this.history.slice(before);
    if (events.length > 0) {
      this.revision++;
      for (const watcher of [...this.watchers]) if (!watcher.canceled) this.deliver(watcher, events);
    }
    return result;
  }

  private latest(key: string, revision: number): KeyValue | undefined {
    const versions = this.versions.get(key) ?? [];
    for (let i = versions.length - 1; i >= 0; i--) {
      if (versions[i]!.revision <= revision) return versions[i]!.kv;
    }
    return undefined;
  }

  private rangeAt(r: RangeRequest, revision: number): KeyValue[] {
    const found: KeyValue[] = [];
    for (const key of this.versions.keys()) {
      const kv = this.latest(key, revision);
      if (kv && inRange(kv.key, r.key, r.rangeEnd)) found.push(kv);
    }
    return found.sort((a, b) => compareBytes(a.key, b.key));
  }

  private rangeNow(r: RangeRequest): RangeResponse {
    // "Latest" (not this.revision) so reads inside a txn see the txn's own earlier writes.
    const revision = r.revision && r.revision > 0 ? r.revision : Number.MAX_SAFE_INTEGER;
    if (revision > this.revision && revision !== Number.MAX_SAFE_INTEGER) throw new LichenError(ErrorCode.FutureRevision, 'future revision');
    if (revision < this.compactRevision) {
      throw new LichenError(ErrorCode.Compacted, 'compacted', { compactRevision: this.compactRevision });
    }
    let kvs = this.rangeAt(r, revision);
    if (r.sortOrder === 2) kvs.reverse();
    const count = kvs.length;
    const limit = r.limit ?? 0;
    const more = limit > 0 && kvs.length > limit;
    if (more) kvs = kvs.slice(0, limit);
    if (r.countOnly) return { kvs: [], more, count };
    if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
    return { kvs, more, count };
  }

  private applyPut(r: PutRequest, revision: number): PutResponse {
    const key = hex(r.key);
    const previous = this.latest(key, Number.MAX_SAFE_INTEGER);
    if ((r.ignoreValue || r.ignoreLease) && !previous) {
      throw new LichenError(ErrorCode.InvalidArgument, 'etcdserver: key not found', { etcdError: 'keyNotFound' });
    }
    const lease = r.ignoreLease ? previous!.lease : (r.lease ?? 0);
    if (lease !== 0 && !this.leases.has(lease)) throw new LichenError(ErrorCode.LeaseNotFound, 'lease not found');
    const kv: KeyValue = {
      key: r.key,
      value: r.ignoreValue ? previous!.value : (r.value ?? new Uint8Array(0)),
      createRevision: previous ? previous.createRevision : revision,
      modRevision: revision,
      version: previous ? previous.version + 1 : 1,
      lease,
    };
    if (previous && previous.lease !== 0) this.leases.get(previous.lease)?.keys.delete(key);
    if (lease !== 0) this.leases.get(lease)!.keys.add(key);
    this.record(key, revision, kv);
    this.history.push(previous ? { type: 0, kv, prevKv: previous } : { type: 0, kv });
    return r.prevKv && previous ? { prevKv: previous } : {};
  }

  private applyDelete(r: DeleteRangeRequest, revision: number): DeleteRangeResponse {
    const doomed = this.rangeAt({ key: r.key, rangeEnd: r.rangeEnd }, Number.MAX_SAFE_INTEGER);
    for (const previous of doomed) {
      const key = hex(previous.key);
      this.record(key, revision, undefined);
      if (previous.lease !== 0) this.leases.get(previous.lease)?.keys.delete(key);
      const tombstone: KeyValue = { key: previous.key, value: new Uint8Array(0), createRevision: 0, modRevision: revision, version: 0, lease: 0 };
      this.history.push({ type: 1, kv: tombstone, prevKv: previous });
    }
    return { deleted: doomed.length, prevKvs: r.prevKv ? doomed : [] };
  }

  private applyTxn(r: TxnRequest, revision: number): TxnResponse {
    const succeeded = r.compare.every((c) => this.compareHolds(c));
    const ops = succeeded ? r.success : r.failure;
    const responses = ops.map((op) => this.applyOp(op, revision));
    return { succeeded, responses };
  }

  private applyOp(op: RequestOp, revision: number): ResponseOp {
    if ('requestRange' in op) return { responseRange: this.rangeNow(op.requestRange) };
    if ('requestPut' in op) return { responsePut: this.applyPut(op.requestPut, revision) };
    if ('requestDeleteRange' in op) return { responseDeleteRange: this.applyDelete(op.requestDeleteRange, revision) };
    return { responseTxn: this.applyTxn(op.requestTxn, revision) };
  }

  private compareHolds(c: Compare): boolean {
    const kvs = c.rangeEnd ? this.rangeAt({ key: c.key, rangeEnd: c.rangeEnd }, Number.MAX_SAFE_INTEGER) : [this.latest(hex(c.key), Number.MAX_SAFE_INTEGER)];
    return kvs.every((kv) => {
      const [actual, expected]: [number | Uint8Array, number | Uint8Array] =
        c.target === 0 ? [kv?.version ?? 0, c.version ?? 0]
        : c.target === 1 ? [kv?.createRevision ?? 0, c.createRevision ?? 0]
        : c.target === 2 ? [kv?.modRevision ?? 0, c.modRevision ?? 0]
        : c.target === 3 ? [kv?.value ?? new Uint8Array(0), c.value ?? new Uint8Array(0)]
        : [kv?.lease ?? 0, c.lease ?? 0];
      if (c.target === 3 && !kv) return false;
      const order = typeof actual === 'number' ? Math.sign(actual - (expected as number)) : compareBytes(actual, expected as Uint8Array);
      return [order === 0, order > 0, order < 0, order !== 0][c.result]!;
    });
  }

  private record(key: string, revision: number, kv: KeyValue | undefined): void {
    const versions = this.versions.get(key) ?? [];
    versions.push({ revision, kv });
    this.versions.set(key, versions);
  }
}
