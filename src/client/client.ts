// LichenClient: the TypeScript SDK for Lichen (and any etcd v3 server).
import type { ClientReadableStream } from '@grpc/grpc-js';
import { ErrorCode, LichenError } from '../errors.js';
import { describeAttemptFailure, fromGrpcError } from './errors.js';
import { KeepAlive, keepAliveOnce, type KeepAliveOptions } from './lease.js';
import { Transport, type ClientOptions } from './transport.js';
import { TxnBuilder, txnResult, type TxnResult } from './txn.js';
import {
  ALARM_TYPES,
  deleteResult,
  header,
  idToWire,
  member,
  num,
  wireId,
  prefixEnd,
  putResult,
  rangeResult,
  toBuffer,
  type Alarm,
  type AlarmName,
  type Bytes,
  type DeleteResult,
  type Header,
  type Member,
  type PutResult,
  type RangeResult,
} from './types.js';
import { Watcher, type WatchOptions } from './watch.js';

export interface GetOptions {
  rangeEnd?: Bytes;
  /** Every key starting with the given key. */
  prefix?: boolean;
  /** Read at this past revision (0: now). */
  revision?: number;
  limit?: number;
  /** Served by the contacted member without consensus; may be stale. */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  sort?: { target: 'key' | 'version' | 'create' | 'mod' | 'value'; order: 'ascend' | 'descend' };
}

export interface PutOptions {
  /** Attach the key to this lease (a number only below 2^53; etcd's lease ids need a bigint). */
  lease?: bigint | number;
  prevKv?: boolean;
  /** Send again even if an earlier attempt may have applied (it may then apply twice). */
  retry?: boolean;
}

export interface DeleteOptions {
  rangeEnd?: Bytes;
  prefix?: boolean;
  prevKv?: boolean;
  retry?: boolean;
}

export interface StatusResult {
  header: Header;
  version: string;
  dbSize: number;
  dbSizeInUse: number;
  leader: bigint;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  errors: string[];
}

const SORT_TARGET = { key: 0, version: 1, create: 2, mod: 3, value: 4 } as const;
const SORT_ORDER = { ascend: 1, descend: 2 } as const;

export class LichenClient {
  private readonly transport: Transport;
  private readonly keepAlives = new Set<KeepAlive>();
  private readonly watchers = new Set<Watcher>();

  constructor(options: ClientOptions) {
    this.transport = new Transport(options);
  }

  /** The endpoint calls currently go to. */
  get endpoint(): string {
    return this.transport.currentEndpoint;
  }

  // ---- KV ----

  get(key: Bytes, options: GetOptions = {}): Promise<RangeResult> {
    const request = {
      key: toBuffer(key),
      range_end: rangeEndOf(key, options),
      revision: options.revision ?? 0,
      limit: options.limit ?? 0,
      serializable: options.serializable ?? false,
      keys_only: options.keysOnly ?? false,
      count_only: options.countOnly ?? false,
      sort_target: options.sort ? SORT_TARGET[options.sort.target] : 0,
      sort_order: options.sort ? SORT_ORDER[options.sort.order] : 0,
    };
    return this.transport.call('KV', 'Range', request, { idempotent: true }).then(rangeResult);
  }

  /** The value of one key, or undefined when it does not exist. */
  async getValue(key: Bytes, options: Omit<GetOptions, 'prefix' | 'rangeEnd'> = {}): Promise<Buffer | undefined> {
    return (await this.get(key, options)).kvs[0]?.value;
  }

  getPrefix(prefix: Bytes, options: Omit<GetOptions, 'prefix' | 'rangeEnd'> = {}): Promise<RangeResult> {
    return this.get(prefix, { ...options, prefix: true });
  }

  put(key: Bytes, value: Bytes, options: PutOptions = {}): Promise<PutResult> {
    const request = { key: toBuffer(key), value: toBuffer(value), lease: idToWire(options.lease ?? 0), prev_kv: options.prevKv ?? false };
    return this.transport.call('KV', 'Put', request, { idempotent: false, retryWrites: options.retry }).then(putResult);
  }

  delete(key: Bytes, options: DeleteOptions = {}): Promise<DeleteResult> {
    const request = { key: toBuffer(key), range_end: rangeEndOf(key, options), prev_kv: options.prevKv ?? false };
    return this.transport.call('KV', 'DeleteRange', request, { idempotent: false, retryWrites: options.retry }).then(deleteResult);
  }

  deletePrefix(prefix: Bytes, options: Omit<DeleteOptions, 'prefix' | 'rangeEnd'> = {}): Promise<DeleteResult> {
    return this.delete(prefix, { ...options, prefix: true });
  }

  /** client.txn().if(compare.value('k', '==', 'v')).then(op.put('k', 'w')).else(op.get('k')).commit() */
  txn(options: { retry?: boolean } = {}): TxnBuilder {
    return new TxnBuilder((request, writes): Promise<TxnResult> =>
      this.transport.call('KV', 'Txn', request, { idempotent: !writes, retryWrites: options.retry }).then(txnResult),
    );
  }

  /** Compaction is idempotent: compacting again fails with Compacted, which says it is done. */
  async compact(revision: number, options: { physical?: boolean } = {}): Promise<Header> {
    const r = await this.transport.call<any>('KV', 'Compact', { revision, physical: options.physical ?? false }, { idempotent: true });
    return header(r.header);
  }

  // ---- Watch ----

  /**
   * Watches a key, a range or a prefix. Iterate it (`for await (const batch of watcher)`) or pass
   * onEvents. It resumes after endpoint failures from the revision after the last one delivered.
   */
  watch(key: Bytes, options: WatchOptions = {}): Watcher {
    const watcher = new Watcher(this.transport, toBuffer(key), options);
    this.watchers.add(watcher);
    return watcher;
  }

  // ---- Lease ----

  async leaseGrant(ttlSeconds: number, options: { id?: bigint | number } = {}): Promise<{ id: bigint; ttl: number; header: Header }> {
    const r = await this.transport.call<any>('Lease', 'LeaseGrant', { TTL: ttlSeconds, ID: idToWire(options.id ?? 0) }, { idempotent: false });
    return { id: wireId(r.ID), ttl: num(r.TTL), header: header(r.header) };
  }

  async leaseRevoke(id: bigint | number): Promise<Header> {
    const r = await this.transport.call<any>('Lease', 'LeaseRevoke', { ID: idToWire(id) }, { idempotent: true });
    return header(r.header);
  }

  /** Renews once; resolves with the new TTL in seconds; LeaseNotFound when the lease is gone. */
  leaseKeepAliveOnce(id: bigint | number): Promise<{ ttl: number; header: Header }> {
    return keepAliveOnce(this.transport, BigInt(idToWire(id)));
  }

  /** Keeps renewing until stop() or until the lease is lost (onLost). */
  leaseKeepAlive(id: bigint | number, ttlSeconds: number, options: KeepAliveOptions = {}): KeepAlive {
    const intervalMs = options.intervalMs ?? Math.max(500, Math.floor((ttlSeconds * 1000) / 3));
    const keepAlive = new KeepAlive(this.transport, BigInt(idToWire(id)), intervalMs, options);
    this.keepAlives.add(keepAlive);
    return keepAlive;
  }

  async leaseTimeToLive(
    id: bigint | number,
    options: { keys?: boolean } = {},
  ): Promise<{ id: bigint; ttl: number; grantedTtl: number; keys: Buffer[]; header: Header }> {
    const r = await this.transport.call<any>('Lease', 'LeaseTimeToLive', { ID: idToWire(id), keys: options.keys ?? false }, { idempotent: true });
    return { id: wireId(r.ID), ttl: num(r.TTL), grantedTtl: num(r.grantedTTL), keys: r.keys ?? [], header: header(r.header) };
  }

  async leases(): Promise<{ ids: bigint[]; header: Header }> {
    const r = await this.transport.call<any>('Lease', 'LeaseLeases', {}, { idempotent: true });
    return { ids: (r.leases ?? []).map((l: any) => wireId(l.ID)), header: header(r.header) };
  }

  // ---- Cluster ----

  async memberList(options: { linearizable?: boolean } = {}): Promise<MembersResult> {
    const r = await this.transport.call<any>('Cluster', 'MemberList', { linearizable: options.linearizable ?? false }, { idempotent: true });
    return membersResult(r);
  }

  async memberAdd(peerURLs: string[], options: { isLearner?: boolean } = {}): Promise<MembersResult & { member: Member }> {
    const r = await this.transport.call<any>('Cluster', 'MemberAdd', { peerURLs, isLearner: options.isLearner ?? false }, { idempotent: false });
    return { ...membersResult(r), member: member(r.member) };
  }

  async memberRemove(id: bigint | number): Promise<MembersResult> {
    return membersResult(await this.transport.call<any>('Cluster', 'MemberRemove', { ID: idToWire(id) }, { idempotent: false }));
  }

  async memberUpdate(id: bigint | number, peerURLs: string[]): Promise<MembersResult> {
    return membersResult(await this.transport.call<any>('Cluster', 'MemberUpdate', { ID: idToWire(id), peerURLs }, { idempotent: true }));
  }

  async memberPromote(id: bigint | number): Promise<MembersResult> {
    return membersResult(await this.transport.call<any>('Cluster', 'MemberPromote', { ID: idToWire(id) }, { idempotent: false }));
  }

  // ---- Maintenance ----

  /** Status of one member: the given endpoint, or the current one (no failover: it is about that member). */
  async status(endpoint: string = this.transport.currentEndpoint): Promise<StatusResult> {
    const r = await this.transport.callOnce<any>(endpoint, 'Maintenance', 'Status', {}, this.transport.timeoutMs);
    return {
      header: header(r.header),
      version: r.version,
      dbSize: num(r.dbSize),
      dbSizeInUse: num(r.dbSizeInUse),
      leader: wireId(r.leader),
      raftIndex: num(r.raftIndex),
      raftTerm: num(r.raftTerm),
      raftAppliedIndex: num(r.raftAppliedIndex),
      isLearner: r.isLearner,
      errors: r.errors ?? [],
    };
  }

  /** The raised alarms, of every type or of one. */
  async alarmList(type: AlarmName = 'NONE'): Promise<{ header: Header; alarms: Alarm[] }> {
    const r = await this.transport.call<any>('Maintenance', 'Alarm', { action: 'GET', alarm: type }, { idempotent: true });
    return alarmResult(r);
  }

  /**
   * Clears one alarm, or (no argument) every raised alarm, as etcd's clientv3 AlarmDisarm does:
   * the server clears one (member, type) at a time. Answers the alarms cleared.
   */
  async alarmDisarm(alarm?: Alarm): Promise<{ header: Header; alarms: Alarm[] }> {
    if (alarm === undefined) {
      const listed = await this.alarmList();
      const cleared: Alarm[] = [];
      for (const raised of listed.alarms) cleared.push(...(await this.alarmDisarm(raised)).alarms);
      return { header: listed.header, alarms: cleared };
    }
    const request = { action: 'DEACTIVATE', memberID: idToWire(alarm.memberId), alarm: alarm.alarm };
    return alarmResult(await this.transport.call<any>('Maintenance', 'Alarm', request, { idempotent: true }));
  }

  async moveLeader(targetId: bigint | number): Promise<Header> {
    const r = await this.transport.call<any>('Maintenance', 'MoveLeader', { targetID: idToWire(targetId) }, { idempotent: true });
    return header(r.header);
  }

  async hashKV(revision = 0, endpoint: string = this.transport.currentEndpoint): Promise<{ hash: number; compactRevision: number; hashRevision: number; header: Header }> {
    const r = await this.transport.callOnce<any>(endpoint, 'Maintenance', 'HashKV', { revision }, this.transport.timeoutMs);
    return { hash: r.hash, compactRevision: num(r.compact_revision), hashRevision: num(r.hash_revision), header: header(r.header) };
  }

  /**
   * The backend of the current endpoint's member as a stream of bytes: etcd's snapshot format (a
   * bbolt file, then its SHA-256). No deadline: a large store takes as long as it takes; abort
   * with the signal. Ends with an error if the stream ends before the bytes it announced.
   */
  async *snapshot(options: { signal?: AbortSignal } = {}): AsyncIterable<Buffer> {
    const started = this.transport.now();
    const endpoint = this.transport.currentEndpoint;
    const call = (this.transport.clients(endpoint).Maintenance as any).Snapshot({}) as ClientReadableStream<{ blob: Buffer; remaining_bytes: string }>;
    const abort = (): void => call.cancel();
    options.signal?.addEventListener('abort', abort);
    let remaining = -1;
    try {
      for await (const message of call) {
        remaining = num(message.remaining_bytes);
        yield message.blob;
      }
    } catch (error) {
      const failure = fromGrpcError(error);
      const unanswered = remaining < 0 && failure.details.etcdError === undefined && (failure.code === ErrorCode.Unavailable || failure.code === ErrorCode.Timeout);
      if (!unanswered) throw failure;
      throw this.transport.unreachable(started, new Map([[endpoint, describeAttemptFailure(failure, this.transport.timeoutMs)]]), failure);
    } finally {
      options.signal?.removeEventListener('abort', abort);
      call.cancel();
    }
    if (remaining !== 0) {
      const what = remaining < 0 ? 'before any data' : `with ${remaining} bytes still announced`;
      throw new LichenError(ErrorCode.Unavailable, `the snapshot stream ended ${what}`);
    }
  }

  /** Stops keep-alives and watchers and closes every connection. */
  close(): void {
    for (const keepAlive of this.keepAlives) keepAlive.stop();
    for (const watcher of this.watchers) watcher.cancel();
    this.keepAlives.clear();
    this.watchers.clear();
    this.transport.close();
  }
}

/** The members after a Cluster call, and its header. */
export interface MembersResult {
  header: Header;
  members: Member[];
}

function membersResult(r: { header: unknown; members: unknown[] }): MembersResult {
  return { header: header(r.header), members: r.members.map(member) };
}

function alarmResult(r: { header: unknown; alarms: { memberID: unknown; alarm: number }[] }): { header: Header; alarms: Alarm[] } {
  return { header: header(r.header), alarms: r.alarms.map((a) => ({ memberId: wireId(a.memberID), alarm: ALARM_TYPES[a.alarm] ?? 'NONE' })) };
}

function rangeEndOf(key: Bytes, options: { rangeEnd?: Bytes; prefix?: boolean }): Buffer | undefined {
  if (options.prefix) return prefixEnd(key);
  return options.rangeEnd === undefined ? undefined : toBuffer(options.rangeEnd);
}
