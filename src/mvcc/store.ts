// MvccStore: the etcd v3 data model (revisions, ranges, txns, compaction, leases) over an Engine.
//
// Determinism: apply() depends only on the store's state and the command (lease ids picked for
// ID=0 derive from the raft index), so replicas applying the same log hold byte-identical
// engines. Every apply ends in ONE engine.write; the applied index and the current revision go
// into the same engine batch as the data they cover (once per batchApplies, once per apply
// outside one), so after a crash the server replays exactly the entries the engine does not yet
// hold.
//
// Semantics follow etcd (api/etcdserverpb/rpc.proto, server/mvcc, server/etcdserver/apply):
// an empty store is at revision 1; each command that changes keys takes the next revision and
// numbers its changes with sub revisions 0, 1, ...; a command that changes nothing keeps the
// revision. See layout.ts for the engine keys and keyindex.ts for why the key index is in memory.
import { crc32 } from 'node:zlib';
import { LichenError, assert } from '../errors.js';
import { formatId } from '../ids.js';
import { historyScanRecordsMax, leaseTtlSecondsMax, recordCacheBytesMax } from '../limits.js';
import type { Engine, WriteOp } from '../engine/types.js';
import { exportChunks } from '../engine/codec.js';
import { AlarmTable } from './alarms.js';
import { keyBytes, keyString } from './bytes.js';
import type { MvccCommand } from './command.js';
import { KeyIndex, appendTombstone, lastAtOrBelow, latestOf, liveLease, mainAt, previousOf, subAt, visibleAt, type KeyRevisions, type LatestVersion, type Revision } from './keyindex.js';
import {
  META_APPLIED_INDEX,
  META_COMPACT_REVISION,
  META_CURRENT_REVISION,
  PREFIX_LEASE,
  PREFIX_REVISION,
  decodeNumber,
  decodeKeyValue,
  decodeRecord,
  decodeRecordHead,
  encodeNumber,
  parseRecord,
  encodeRecord,
  encodeTombstone,
  tombstoneKeyStart,
  leaseKey,
  parseLeaseKey,
  parseRevisionKey,
  prefixEnd,
  revisionKey,
  revisionLookupKey,
  writeRevisionKey,
  type StoredRecord,
} from './layout.js';
import { RecordCache, type RecordCachePart } from './record-cache.js';
import { MvccStateView } from './state.js';
import {
  AlarmType,
  CompareResult,
  CompareTarget,
  EventType,
  SortOrder,
  SortTarget,
  type AlarmMember,
  type AlarmResponse,
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type Event,
  type HashKVResponse,
  type KeyValue,
  type KeyValueSink,
  type LeaseGrantResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from './types.js';

// Each refusal names etcd's error (details.etcdError), whose exact words src/api sends; the
// messages here are for Lichen's HTTP API and logs.

/** Writes that add data are refused while the NOSPACE alarm is raised. */
export function noSpaceError(): LichenError {
  return new LichenError('NoSpace', 'the space quota is used up (NOSPACE alarm): compact, defragment and disarm', { etcdError: 'noSpace' });
}

export function leaseNotFoundError(lease: number): LichenError {
  return new LichenError('LeaseNotFound', `requested lease ${formatId(lease)} not found`, { etcdError: 'leaseNotFound', lease });
}

function futureRevisionError(current: number): LichenError {
  return new LichenError('FutureRevision', `required revision is a future revision (the current revision is ${current})`, { etcdError: 'futureRevision', currentRevision: current });
}


export type ApplyResponse = PutResponse | DeleteRangeResponse | TxnResponse | LeaseGrantResponse | AlarmResponse | Record<string, never>;
export type ApplyResult =
  | { revision: number; response: ApplyResponse; events: Event[] }
  | { revision: number; error: LichenError };

export interface MvccStoreOptions {
  /** Leases granted with a shorter TTL get this one (etcd: ceil(1.5 * election timeout)). Same on every replica. */
  minLeaseTtlSeconds?: number;
  /**
   * Where ranges keep the records they read (see record-cache.ts): the process's cache, shared by
   * its groups' stores. Default: a cache of this store's own, of recordCacheBytesMax.
   */
  recordCache?: RecordCachePart;
}

export interface LeaseInfo {
  ID: number;
  grantedTTL: number;
  keys: Uint8Array[];
}

export interface ScanEventsOptions {
  fromRevision: number;
  /** Inclusive; default the current revision. */
  toRevision?: number;
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  prevKv?: boolean;
  /** Stop at the first revision boundary after this many events. */
  eventsMax?: number;
  /** Stop at the first revision boundary after examining this many records. */
  recordsMax?: number;
}

export interface ScanEventsResult {
  events: Event[];
  /** The first revision not scanned yet: continue from here. */
  nextRevision: number;
}

interface LeaseState {
  ttl: number;
  keys: Set<string>;
}

/** Key bounds as index strings: a single key, or [start, end) with end undefined = no bound. */
interface KeyBounds {
  single: boolean;
  start: string;
  end: string | undefined;
}

function keyBounds(key: Uint8Array, rangeEnd: Uint8Array | undefined): KeyBounds {
  const start = keyString(key);
  if (rangeEnd === undefined || rangeEnd.length === 0) return { single: true, start, end: undefined };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { single: false, start, end: undefined };
  return { single: false, start, end: keyString(rangeEnd) };
}

function inBounds(bounds: KeyBounds, key: string): boolean {
  if (bounds.single) return key === bounds.start;
  return key >= bounds.start && (bounds.end === undefined || key < bounds.end);
}

const EMPTY = new Uint8Array(0);

/**
 * A delete hands its tombstones to the engine this many at a time, inside the command's engine
 * batch (see apply), rather than holding every op until the command ends: the ops of a
 * 50,000-key delete then die young instead of being promoted by the collector.
 */
const TOMBSTONES_PER_WRITE = 1024;

/** The state of one apply: its revision, sub revision counter, engine ops and unflushed records. */
class ApplyBatch {
  ops: WriteOp[] = [];
  readonly records = new Map<string, StoredRecord>();
  readonly events: Event[] = [];
  sub = 0;
  constructor(readonly revision: number) {}
}

const revisionId = (main: number, sub: number): string => `${main}/${sub}`;

/**
 * A sink that keeps the key-values as objects: each record's key and value copied out together,
 * as plain Uint8Array views of the copy (what the general path's record reads give).
 */
class CollectedKeyValues implements KeyValueSink {
  readonly kvs: KeyValue[] = [];

  add(record: Uint8Array, keyStart: number, keyEnd: number, valueEnd: number, createRevision: number, modRevision: number, version: number, lease: number): void {
    const copy = new Uint8Array(valueEnd - keyStart);
    copy.set(new Uint8Array(record.buffer, record.byteOffset + keyStart, copy.length));
    const keyLength = keyEnd - keyStart;
    this.kvs.push({ key: copy.subarray(0, keyLength), createRevision, modRevision, version, value: copy.subarray(keyLength), lease });
  }
}

export class MvccStore {
  private readonly index = new KeyIndex();
  /** The key of the record readRecord reads, rewritten each time (see revisionLookupKey). */
  private readonly lookupKey = revisionLookupKey();
  private readonly leaseTable = new Map<number, LeaseState>();
  private readonly alarmTable = new AlarmTable();
  private applied = 0;
  private current = 1;
  private compacted = 0;
  private applying: ApplyBatch | undefined;
  /**
   * While batchApplies runs: the applied index and current revision the engine held when it
   * began (its end writes whichever moved). Undefined outside: each apply writes its own.
   */
  private batchStart: { applied: number; current: number } | undefined;
  private readonly minLeaseTtlSeconds: number;
  private readonly recordCache: RecordCachePart;
  /**
   * How many watchers want prevKv in their events, as the watch hub counts them (see
   * countPrevKvWatchers). A put reads the key's previous version only when someone needs it, and
   * put events carry it only while this is not 0. Undefined (not 0) until a hub counts: a store
   * without one (tests, tools) puts prevKv in every put event.
   */
  private prevKvWatchers: number | undefined;

  private constructor(private readonly engine: Engine, options: MvccStoreOptions) {
    this.minLeaseTtlSeconds = options.minLeaseTtlSeconds ?? 0;
    this.recordCache = options.recordCache ?? new RecordCache(recordCacheBytesMax).part();
  }

  static open(engine: Engine, options: MvccStoreOptions = {}): MvccStore {
    const store = new MvccStore(engine, options);
    store.reload();
    return store;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get currentRevision(): number {
    return this.current;
  }

  get compactRevision(): number {
    return this.compacted;
  }

  /** The watch hub's count of watchers that want prevKv changed by `delta` (0: a hub starts counting). */
  countPrevKvWatchers(delta: number): void {
    this.prevKvWatchers = (this.prevKvWatchers ?? 0) + delta;
    assert(this.prevKvWatchers >= 0, 'mvcc: prevKv watchers below zero');
  }

  /** The number of keys the index tracks (live or with history). */
  get keyCount(): number {
    return this.index.keyCount;
  }

  /** Rebuilds the in-memory state (meta, key index, lease table) from the engine. */
  private reload(): void {
    this.index.clear();
    this.recordCache.clear();
    this.leaseTable.clear();
    this.applied = decodeNumber(this.engine.get(META_APPLIED_INDEX), 0);
    this.current = decodeNumber(this.engine.get(META_CURRENT_REVISION), 1);
    this.compacted = decodeNumber(this.engine.get(META_COMPACT_REVISION), 0);
    this.alarmTable.load(this.engine);
    for (const [key, value] of this.engine.range({ start: Uint8Array.of(PREFIX_LEASE), end: prefixEnd(PREFIX_LEASE) })) {
      this.leaseTable.set(parseLeaseKey(key), { ttl: decodeNumber(value, 0), keys: new Set() });
    }
    // Records come in revision order, so the last one seen per key is its newest.
    const leaseOfKey = new Map<string, number>();
    for (const [key, value] of this.engine.range({ start: Uint8Array.of(PREFIX_REVISION), end: prefixEnd(PREFIX_REVISION) })) {
      const { main, sub } = parseRevisionKey(key);
      const head = decodeRecordHead(value);
      this.index.appendUnsorted(head.key, main, sub, head);
      if (head.lease !== 0 && !head.tombstone) leaseOfKey.set(head.key, head.lease);
      else leaseOfKey.delete(head.key);
    }
    this.index.finishLoad();
    for (const [name, lease] of leaseOfKey) this.leaseTable.get(lease)?.keys.add(name);
  }

  // ---------------------------------------------------------------------------------------------
  // Apply

  /**
   * Applies the command of raft entry `index`. The store keeps the command's byte arrays (a put's
   * key and value become the record's and its event's): the caller must not change them afterwards.
   * The replica decodes every entry into arrays of their own; copying them again here was two
   * allocations per put on every member.
   */
  apply(index: number, command: MvccCommand): ApplyResult {
    if (index <= this.applied) return { revision: this.current, response: {}, events: [] };
    // Deletes hand their tombstones to the engine as they go (see writeTombstone), so one engine
    // batch makes the writes of the command one write, as the replica's batch does around a Ready.
    const writesAsItGoes = command.type === 'deleteRange' || command.type === 'leaseRevoke' || command.type === 'txn';
    return writesAsItGoes ? this.engine.batch(() => this.applyCommand(index, command)) : this.applyCommand(index, command);
  }

  private applyCommand(index: number, command: MvccCommand): ApplyResult {
    assert(this.applying === undefined, 'mvcc: apply re-entered');
    const batch = new ApplyBatch(this.current + 1);
    this.applying = batch;
    let result: ApplyResult;
    try {
      const response = this.execute(index, command, batch);
      result = { revision: batch.sub > 0 ? batch.revision : this.current, response, events: batch.events };
    } catch (error) {
      // Validation happens before any change, so an expected error leaves nothing to undo.
      if (!(error instanceof LichenError)) throw error;
      assert(batch.sub === 0, 'mvcc: command failed after changing keys');
      result = { revision: this.current, error };
      batch.ops.length = 0;
    } finally {
      this.applying = undefined;
    }
    const appliedBefore = this.applied;
    const currentBefore = this.current;
    if (batch.sub > 0) this.current = batch.revision;
    this.applied = index;
    if (this.batchStart === undefined) this.metaOps(batch.ops, appliedBefore, currentBefore);
    // If this write throws (disk failure), memory and engine disagree: the error propagates and
    // the process must restart (reopening rebuilds memory from the engine).
    if (batch.ops.length > 0) this.engine.write(batch.ops);
    return result;
  }

  /**
   * Runs `applies` (calls of apply and applyBeside) as one engine batch, which ends by writing the
   * applied index and the current revision once, if they moved: a put then costs one engine
   * write, not three (the record and both meta keys). The data and the meta keys that cover it
   * commit together or not at all, as with one apply. Nested calls join the outer one.
   */
  batchApplies<T>(applies: () => T): T {
    if (this.batchStart !== undefined) return applies();
    return this.engine.batch(() => {
      const start = (this.batchStart = { applied: this.applied, current: this.current });
      try {
        const result = applies();
        const ops: WriteOp[] = [];
        this.metaOps(ops, start.applied, start.current);
        if (ops.length > 0) this.engine.write(ops);
        return result;
      } finally {
        this.batchStart = undefined;
      }
    });
  }

  /** Adds the writes of the applied index and the current revision unless they are `applied` and `current`. */
  private metaOps(ops: WriteOp[], applied: number, current: number): void {
    if (this.current !== current) ops.push({ type: 'put', key: META_CURRENT_REVISION, value: encodeNumber(this.current) });
    if (this.applied !== applied) ops.push({ type: 'put', key: META_APPLIED_INDEX, value: encodeNumber(this.applied) });
  }

  private execute(index: number, command: MvccCommand, batch: ApplyBatch): ApplyResponse {
    this.refuseUnderAlarm(command);
    switch (command.type) {
      case 'put':
        this.checkPutStatic(command.request);
        this.checkPutDynamic(command.request);
        return this.put(command.request, batch);
      case 'deleteRange':
        return this.deleteRange(command.request, batch);
      case 'txn':
        return this.txn(command.request, batch);
      case 'compact':
        this.compact(command.request.revision, batch);
        return {};
      case 'leaseGrant':
        return this.leaseGrant(index, command.request.ID ?? 0, command.request.TTL, batch);
      case 'leaseRevoke':
        this.leaseRevoke(command.id, batch);
        return {};
      case 'noop':
        return {};
      case 'alarmActivate':
        return { alarms: command.alarm === AlarmType.NONE ? [] : [this.alarmTable.activate(command.memberId, command.alarm, batch.ops)] };
      case 'alarmDeactivate': {
        const cleared = this.alarmTable.deactivate(command.memberId, command.alarm, batch.ops);
        return { alarms: cleared ? [cleared] : [] };
      }
    }
  }

  /**
   * etcd's capped and corrupt appliers: while NOSPACE is raised, what would add data (puts, txns
   * with a put, lease grants) fails; while CORRUPT is raised, every write fails. Reads, deletes,
   * compaction (under NOSPACE) and the alarm commands themselves still apply, so an operator can
   * free space and disarm. Unlike etcd 3.4, puts in nested txns count too.
   */
  private refuseUnderAlarm(command: MvccCommand): void {
    if (command.type === 'noop' || command.type === 'alarmActivate' || command.type === 'alarmDeactivate') return;
    if (this.alarmTable.has(AlarmType.CORRUPT)) throw new LichenError('Corrupt', 'the CORRUPT alarm is raised: writes are refused', { etcdError: 'corrupt' });
    if (!this.alarmTable.has(AlarmType.NOSPACE)) return;
    const addsData = command.type === 'put' || command.type === 'leaseGrant' || (command.type === 'txn' && txnHasPut(command.request));
    if (addsData) throw noSpaceError();
  }

  /** The raised alarms of one type (NONE: all), sorted by type, then member id. */
  alarms(type: AlarmType = AlarmType.NONE): AlarmMember[] {
    return this.alarmTable.list(type);
  }

  /**
   * Records entry `index` as applied together with `ops` on state kept beside the MVCC data in
   * the same engine (auth, under its own key prefix), in one engine write, so a crash keeps both
   * or neither. The MVCC revision does not move.
   */
  applyBeside(index: number, ops: readonly WriteOp[]): void {
    if (index <= this.applied) return;
    assert(this.applying === undefined, 'mvcc: apply re-entered');
    this.applied = index;
    const writes = [...ops];
    if (this.batchStart === undefined) writes.push({ type: 'put', key: META_APPLIED_INDEX, value: encodeNumber(index) });
    if (writes.length > 0) this.engine.write(writes);
  }

  private readRecord(main: number, sub: number): StoredRecord {
    const pending = this.applying?.records.get(revisionId(main, sub));
    if (pending !== undefined) return pending;
    return decodeRecord(this.readStored(main, sub));
  }

  /**
   * The stored record of (main, sub), which the index says exists. The message is built only on
   * failure: a template literal in the assert's argument cost a string per record read.
   */
  private readStored(main: number, sub: number): Uint8Array {
    const bytes = this.engine.get(writeRevisionKey(this.lookupKey, main, sub));
    if (bytes === undefined) assert(false, `mvcc: record ${main}/${sub} missing`);
    return bytes;
  }

  private toKeyValue(record: StoredRecord, main: number): KeyValue {
    return {
      key: record.key,
      createRevision: record.createRevision,
      modRevision: main,
      version: record.version,
      value: record.value,
      lease: record.lease,
    };
  }

  private writeRecord(batch: ApplyBatch, record: StoredRecord): { main: number; sub: number } {
    const main = batch.revision;
    const sub = batch.sub++;
    batch.records.set(revisionId(main, sub), record);
    batch.ops.push({ type: 'put', key: revisionKey(main, sub), value: encodeRecord(record) });
    this.index.append(keyString(record.key), main, sub, record);
    return { main, sub };
  }

  private checkPutStatic(request: PutRequest): void {
    if (request.ignoreValue && request.value !== undefined && request.value.length > 0) {
      throw new LichenError('InvalidArgument', 'ignore_value is set and a value is given', { etcdError: 'valueProvided' });
    }
    if (request.ignoreLease && request.lease !== undefined && request.lease !== 0) {
      throw new LichenError('InvalidArgument', 'ignore_lease is set and a lease is given', { etcdError: 'leaseProvided' });
    }
    if (request.key.length === 0) throw new LichenError('InvalidArgument', 'the key is empty', { etcdError: 'emptyKey' });
  }

  /** Checks that depend on the state before the command (etcd: checkRequestPut). */
  private checkPutDynamic(request: PutRequest): void {
    if (request.ignoreValue || request.ignoreLease) {
      if (this.index.latest(keyString(request.key)) === undefined) throw new LichenError('InvalidArgument', 'ignore_value or ignore_lease needs an existing key', { etcdError: 'keyNotFound' });
    }
    const lease = request.lease ?? 0;
    if (lease !== 0 && !this.leaseTable.has(lease)) throw leaseNotFoundError(lease);
  }

  /**
   * The key's create revision, version and lease come from the index; the previous version itself
   * (a record read) only when something needs it: the request's prevKv or ignore_value, or a
   * watcher that wants prevKv in events.
   */
  private put(request: PutRequest, batch: ApplyBatch): PutResponse {
    const name = keyString(request.key);
    const latest = this.index.latest(name);
    const needsPrevious = request.prevKv === true || request.ignoreValue === true || this.prevKvWatchers !== 0;
    const previous = latest !== undefined && needsPrevious ? this.versionAt(latest) : undefined;
    const value = request.ignoreValue ? previous!.value : (request.value ?? EMPTY);
    const lease = request.ignoreLease ? latest!.lease : (request.lease ?? 0);
    // The request's own arrays, not copies: apply() owns the command it is given (see there).
    const record: StoredRecord = {
      key: request.key,
      value,
      createRevision: latest?.createRevision ?? batch.revision,
      version: (latest?.version ?? 0) + 1,
      lease,
      tombstone: false,
    };
    const { main } = this.writeRecord(batch, record);
    if (latest !== undefined && latest.lease !== 0) this.leaseTable.get(latest.lease)?.keys.delete(name);
    if (lease !== 0) this.leaseTable.get(lease)!.keys.add(name);
    const kv = this.toKeyValue(record, main);
    batch.events.push(previous === undefined ? { type: EventType.PUT, kv } : { type: EventType.PUT, kv, prevKv: previous });
    return request.prevKv && previous !== undefined ? { prevKv: previous } : {};
  }

  /** The key-value of a version the index names. */
  private versionAt(at: Revision): KeyValue {
    return this.keyValueAt(at.main, at.sub);
  }

  /** The key-value of version (main, sub), read straight from its record (no StoredRecord between). */
  private keyValueAt(main: number, sub: number): KeyValue {
    const pending = this.applying?.records.get(revisionId(main, sub));
    if (pending !== undefined) return this.toKeyValue(pending, main);
    return decodeKeyValue(this.readStored(main, sub), main);
  }

  /**
   * etcdctl check perf ends by deleting every key it wrote (31,000-92,000) in one request, so a
   * delete's cost per key is what holds the event loop then (see writeTombstone). The index is
   * written while it is scanned: a tombstone appends to the key's revisions in hand, or replaces
   * a number form in its slot, which leaves the scan's order alone.
   */
  private deleteRange(request: DeleteRangeRequest, batch: ApplyBatch): DeleteRangeResponse {
    const bounds = keyBounds(request.key, request.rangeEnd);
    const readPrevious = request.prevKv === true || this.prevKvWatchers !== 0;
    const prevKvs: KeyValue[] = [];
    let deleted = 0;
    const tombstone = (name: string, revs: KeyRevisions): KeyRevisions | undefined => {
      const lease = liveLease(revs);
      if (lease < 0) return undefined;
      const previous = readPrevious ? this.versionAt(latestOf(revs)!) : undefined;
      if (request.prevKv) prevKvs.push(previous!);
      deleted++;
      return this.writeTombstone(name, revs, lease, previous, batch);
    };
    if (bounds.single) {
      const revs = this.index.get(bounds.start);
      const next = revs === undefined ? undefined : tombstone(bounds.start, revs);
      if (next !== undefined && next !== revs) this.index.replace(bounds.start, next);
    } else if (bounds.end === undefined || bounds.end > bounds.start) {
      this.index.update(bounds.start, bounds.end, tombstone);
    }
    return { deleted, prevKvs };
  }

  /**
   * Deletes the key whose index string is `name` and revisions `revs` (its newest version live,
   * with `lease`) and returns its revisions after the tombstone (see appendTombstone, which says
   * where they go): a tombstone record written from the string, appended to `revs`, the
   * key taken off its lease, and a delete event whose key is a view of the record's. `previous`:
   * the deleted version when it was read (the request's prevKv, or a watcher that wants prevKv),
   * which the event then carries. Nothing here looks a key up by bytes or copies them: a delete of
   * 50,000 keys cost 24 µs per key before (load 12-15), a quarter of it garbage collection of the
   * objects made per key. Tombstones stay out of batch.records, which serves reads of versions
   * written earlier in the same command, and a tombstone is never a version to read.
   */
  private writeTombstone(name: string, revs: KeyRevisions, lease: number, previous: KeyValue | undefined, batch: ApplyBatch): KeyRevisions {
    const main = batch.revision;
    const sub = batch.sub++;
    const record = encodeTombstone(name);
    batch.ops.push({ type: 'put', key: revisionKey(main, sub), value: record });
    const after = appendTombstone(revs, main, sub);
    if (lease !== 0) this.leaseTable.get(lease)?.keys.delete(name);
    const key = new Uint8Array(record.buffer, record.byteOffset + tombstoneKeyStart(name.length), name.length);
    const kv: KeyValue = { key, createRevision: 0, modRevision: main, version: 0, value: EMPTY, lease: 0 };
    batch.events.push(previous !== undefined ? { type: EventType.DELETE, kv, prevKv: previous } : { type: EventType.DELETE, kv });
    if (batch.ops.length >= TOMBSTONES_PER_WRITE) {
      this.engine.write(batch.ops);
      batch.ops = [];
    }
    return after;
  }

  /** Visits the index entries of the keys in bounds, in key order, until visit returns false. */
  private scanKeys(bounds: KeyBounds, visit: (name: string, revs: KeyRevisions) => boolean | void): void {
    if (bounds.single) {
      const revs = this.index.get(bounds.start);
      if (revs !== undefined) visit(bounds.start, revs);
      return;
    }
    if (bounds.end !== undefined && bounds.end <= bounds.start) return;
    this.index.scan(bounds.start, bounds.end, visit);
  }

  // ---------------------------------------------------------------------------------------------
  // Txn

  private txn(request: TxnRequest, batch: ApplyBatch): TxnResponse {
    for (const branch of [request.success, request.failure]) {
      checkDuplicates(branch);
      this.checkStatic(branch);
    }
    // As etcd does, every compare along the chosen path (nested txns too) is evaluated against
    // the state before the txn, then the path's puts are checked, then the path executes.
    const path = this.choosePath(request);
    this.checkPath(request, path);
    return this.executeTxn(request, path, batch);
  }

  /**
   * Runs a txn whose every operation, in both branches and nested txns, is a range (see
   * isReadOnlyTxn) against the current state, without a raft entry: the server serves it like a
   * range, after a ReadIndex barrier when linearizable (as etcd does). Compares and ranges see
   * exactly what an applied txn would, since it would change nothing.
   */
  readTxn(request: TxnRequest): TxnResponse {
    assert(isReadOnlyTxn(request), 'mvcc: readTxn given a txn that writes');
    assert(this.applying === undefined, 'mvcc: readTxn during an apply');
    const path = this.choosePath(request);
    return this.executeTxn(request, path, new ApplyBatch(this.current + 1));
  }

  private checkStatic(ops: RequestOp[]): void {
    for (const op of ops) {
      if ('requestPut' in op) this.checkPutStatic(op.requestPut);
      else if ('requestTxn' in op) {
        this.checkStatic(op.requestTxn.success);
        this.checkStatic(op.requestTxn.failure);
      }
    }
  }

  /** The chosen branch of each txn along the path, in depth-first order. */
  private choosePath(request: TxnRequest, path: boolean[] = []): boolean[] {
    const succeeded = request.compare.every((compare) => this.evaluate(compare));
    path.push(succeeded);
    for (const op of succeeded ? request.success : request.failure) {
      if ('requestTxn' in op) this.choosePath(op.requestTxn, path);
    }
    return path;
  }

  private checkPath(request: TxnRequest, path: boolean[], at = { i: 0 }): void {
    const succeeded = path[at.i++]!;
    for (const op of succeeded ? request.success : request.failure) {
      if ('requestPut' in op) this.checkPutDynamic(op.requestPut);
      else if ('requestTxn' in op) this.checkPath(op.requestTxn, path, at);
    }
  }

  private executeTxn(request: TxnRequest, path: boolean[], batch: ApplyBatch, at = { i: 0 }): TxnResponse {
    const succeeded = path[at.i++]!;
    const responses: ResponseOp[] = [];
    for (const op of succeeded ? request.success : request.failure) {
      if ('requestRange' in op) responses.push({ responseRange: this.rangeInternal(op.requestRange, true) });
      else if ('requestPut' in op) responses.push({ responsePut: this.put(op.requestPut, batch) });
      else if ('requestDeleteRange' in op) responses.push({ responseDeleteRange: this.deleteRange(op.requestDeleteRange, batch) });
      else responses.push({ responseTxn: this.executeTxn(op.requestTxn, path, batch, at) });
    }
    return { succeeded, responses };
  }

  private evaluate(compare: Compare): boolean {
    const bounds = keyBounds(compare.key, compare.rangeEnd);
    let any = false;
    let holds = true;
    this.scanKeys(bounds, (_name, revs) => {
      const latest = latestOf(revs);
      if (latest === undefined) return true;
      any = true;
      // Only a value compare reads the record: the index has the rest.
      holds = compareKeyValue(compare, compare.target === CompareTarget.VALUE ? this.versionAt(latest) : metadataOf(latest, EMPTY));
      return holds;
    });
    if (any) return holds;
    // etcd: a missing key compares as a zero KeyValue, except that a value compare fails.
    if (compare.target === CompareTarget.VALUE) return false;
    return compareKeyValue(compare, { key: compare.key, createRevision: 0, modRevision: 0, version: 0, value: EMPTY, lease: 0 });
  }

  // ---------------------------------------------------------------------------------------------
  // Compaction and leases

  private compact(revision: number, batch: ApplyBatch): void {
    if (revision <= this.compacted) throw compactedError(this.compacted);
    if (revision > this.current) throw futureRevisionError(this.current);
    const dropped: Revision[] = [];
    this.index.compact(revision, dropped);
    for (const { main, sub } of dropped) batch.ops.push({ type: 'del', key: revisionKey(main, sub) });
    this.compacted = revision;
    batch.ops.push({ type: 'put', key: META_COMPACT_REVISION, value: encodeNumber(revision) });
  }

  private leaseGrant(index: number, requestedId: number, ttl: number, batch: ApplyBatch): LeaseGrantResponse {
    if (!Number.isSafeInteger(requestedId) || requestedId < 0) throw new LichenError('InvalidArgument', `invalid lease id ${requestedId}`);
    if (!Number.isSafeInteger(ttl)) throw new LichenError('InvalidArgument', `invalid lease TTL ${ttl}`);
    if (ttl > leaseTtlSecondsMax) throw new LichenError('InvalidArgument', `lease TTL ${ttl} is above the largest, ${leaseTtlSecondsMax} seconds`, { etcdError: 'leaseTTLTooLarge' });
    let id = requestedId;
    if (id === 0) {
      id = leaseIdFromIndex(index);
      // Probing is bounded by the table size: some id among size+1 candidates is free.
      while (this.leaseTable.has(id)) id = id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1;
    } else if (this.leaseTable.has(id)) {
      throw new LichenError('LeaseExists', `lease ${formatId(id)} already exists`, { etcdError: 'leaseExists', lease: id });
    }
    // etcd raises short TTLs to its minimum (at least one second), it does not refuse them.
    const grantedTtl = Math.max(ttl, this.minLeaseTtlSeconds, 1);
    this.leaseTable.set(id, { ttl: grantedTtl, keys: new Set() });
    batch.ops.push({ type: 'put', key: leaseKey(id), value: encodeNumber(grantedTtl) });
    return { ID: id, TTL: grantedTtl };
  }

  private leaseRevoke(id: number, batch: ApplyBatch): void {
    const lease = this.leaseTable.get(id);
    if (lease === undefined) throw leaseNotFoundError(id);
    // Sorted so every replica deletes the keys in the same order (same sub revisions).
    const readPrevious = this.prevKvWatchers !== 0;
    for (const name of [...lease.keys].sort()) {
      const revs = this.index.get(name);
      assert(revs !== undefined && liveLease(revs) === id, 'mvcc: lease key table out of date');
      // A leased key's revisions are an array (a number form has no lease), appended in place.
      this.writeTombstone(name, revs, id, readPrevious ? this.versionAt(latestOf(revs)!) : undefined, batch);
    }
    this.leaseTable.delete(id);
    batch.ops.push({ type: 'del', key: leaseKey(id) });
  }

  /** Whether the lease exists (a keep-alive's check: lease() copies and sorts its keys). */
  hasLease(id: number): boolean {
    return this.leaseTable.has(id);
  }

  lease(id: number): LeaseInfo | undefined {
    const lease = this.leaseTable.get(id);
    if (lease === undefined) return undefined;
    return { ID: id, grantedTTL: lease.ttl, keys: [...lease.keys].sort().map(keyBytes) };
  }

  leases(): { ID: number; grantedTTL: number }[] {
    return [...this.leaseTable].map(([ID, lease]) => ({ ID, grantedTTL: lease.ttl })).sort((a, b) => a.ID - b.ID);
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /**
   * With `into`, a range in key order that is neither sorted nor filtered hands its key-values to
   * `into` as it reads them and answers with no kvs (see KeyValueSink); any other range answers
   * with its kvs as usual, `into` untouched.
   */
  range(request: RangeRequest, into?: KeyValueSink): RangeResponse {
    return this.rangeInternal(request, false, into);
  }

  private checkReadRevision(revision: number): void {
    if (!Number.isSafeInteger(revision)) throw new LichenError('InvalidArgument', `invalid revision ${revision}`);
    if (revision > this.current) throw futureRevisionError(this.current);
    if (revision > 0 && revision < this.compacted) throw compactedError(this.compacted);
  }

  /** inTxn: revision 0 reads the newest state including the txn's earlier writes (as etcd). */
  private rangeInternal(request: RangeRequest, inTxn: boolean, into?: KeyValueSink): RangeResponse {
    const requested = request.revision ?? 0;
    this.checkReadRevision(requested);
    const revision = requested > 0 ? requested : inTxn ? Infinity : this.current;
    const sortOrder = request.sortOrder ?? SortOrder.NONE;
    const sortTarget = request.sortTarget ?? SortTarget.KEY;
    const limit = request.limit !== undefined && request.limit > 0 ? request.limit : 0;
    const filtered =
      (request.minModRevision ?? 0) !== 0 || (request.maxModRevision ?? 0) !== 0 ||
      (request.minCreateRevision ?? 0) !== 0 || (request.maxCreateRevision ?? 0) !== 0;
    // etcd fetches everything when it must sort or filter, else one more than the limit (to set
    // `more`); note it checks sortOrder only, so a non-key target with order NONE sorts the
    // first limit+1 keys.
    const fetchMax = sortOrder !== SortOrder.NONE || filtered || limit === 0 ? Infinity : limit + 1;

    const countOnly = request.countOnly === true;
    const keysOnly = request.keysOnly === true;
    const order = sortOrder === SortOrder.NONE && sortTarget !== SortTarget.KEY ? SortOrder.ASCEND : sortOrder;
    // Records waiting in an apply's batch are objects, not yet in the engine: the general path reads those.
    if (order === SortOrder.NONE && !filtered && !keysOnly && !countOnly && this.applying === undefined) {
      const bounds = keyBounds(request.key, request.rangeEnd);
      const bytesMax = request.bytesMax ?? Infinity;
      if (into !== undefined) return this.rangeInto(into, bounds, revision, limit, bytesMax);
      const collected = new CollectedKeyValues();
      return { ...this.rangeInto(collected, bounds, revision, limit, bytesMax), kvs: collected.kvs };
    }

    let count = 0;
    const found: { name: string; at: Revision; latest: LatestVersion | undefined }[] = [];
    this.scanKeys(keyBounds(request.key, request.rangeEnd), (name, revs) => {
      const at = visibleAt(revs, revision);
      if (at === undefined) return;
      count++;
      if (countOnly || found.length >= fetchMax) return;
      // Without values, the newest version needs no record read: the index has the rest.
      const latest = keysOnly ? latestOf(revs) : undefined;
      found.push({ name, at, latest: latest?.main === at.main && latest.sub === at.sub ? latest : undefined });
    });
    if (request.countOnly) return { kvs: [], more: false, count };

    // Values are read one by one, so a byte bound stops the reading itself, not only the answer.
    const bytesMax = !filtered && order === SortOrder.NONE ? (request.bytesMax ?? Infinity) : Infinity;
    let kvs: KeyValue[] = [];
    let bytes = 0;
    let cut = false;
    for (const { name, at, latest } of found) {
      const kv = latest !== undefined ? metadataOf(latest, keyBytes(name)) : this.versionAt(at);
      if (keysOnly) kv.value = EMPTY;
      bytes += kv.key.length + kv.value.length;
      if (bytes > bytesMax && kvs.length > 0) {
        cut = true;
        break;
      }
      kvs.push(kv);
    }
    if (filtered) kvs = kvs.filter((kv) => passesFilters(request, kv));
    if (order !== SortOrder.NONE) sortKeyValues(kvs, sortTarget, order);
    let more = cut;
    if (limit > 0 && kvs.length > limit) {
      kvs = kvs.slice(0, limit);
      more = true;
    }
    return { kvs, more, count };
  }

  /**
   * A range in key order with values, neither sorted nor filtered (what clients mostly ask): the
   * key-values go to `into` as the index scan meets their keys and their records are read (from
   * the record cache, else engine.peek and into the cache while this range's share of it lasts;
   * parsed in place), so nothing is kept per key unless the sink keeps it (the gRPC
   * API copies the bytes into the response's encoding). A range of 10,000 keys made seven objects
   * per key before (the scan's entry, its revision, the record, the key-value, its views, and the
   * API's wire object), all alive until the response was encoded. The general path's answer:
   * `count` counts every visible key, reading stops once keys and values pass bytesMax (keeping at
   * least one), and a key past `limit` sets `more`.
   */
  private rangeInto(into: KeyValueSink, bounds: KeyBounds, revision: number, limit: number, bytesMax: number): RangeResponse {
    const cache = this.recordCache;
    const admitMax = cache.rangeAdmitBytesMax;
    let admitted = 0;
    let count = 0;
    let added = 0;
    let bytes = 0;
    let more = false;
    this.scanKeys(bounds, (_name, revs) => {
      const at = lastAtOrBelow(revs, revision);
      if (at < 0) return;
      const sub = subAt(revs, at);
      if (sub < 0) return; // a tombstone: the key is deleted at `revision`
      count++;
      if (more) return;
      if (limit > 0 && added >= limit) {
        more = true;
        return;
      }
      const main = mainAt(revs, at);
      let record: Uint8Array;
      let start = 0;
      let end: number;
      if (cache.lookup(main, sub)) {
        record = cache.bytes;
        start = cache.start;
        end = cache.end;
      } else {
        const read = this.engine.peek(writeRevisionKey(this.lookupKey, main, sub));
        if (read === undefined) assert(false, `mvcc: record ${main}/${sub} missing`);
        if (admitted < admitMax) admitted += cache.add(main, sub, read);
        record = read;
        end = read.length;
      }
      const fields = parseRecord(record, start, end);
      bytes += end - fields.keyStart;
      if (bytes > bytesMax && added > 0) {
        more = true;
        return;
      }
      into.add(record, fields.keyStart, fields.keyEnd, end, fields.createRevision, main, fields.version, fields.lease);
      added++;
    });
    return { kvs: [], more, count };
  }

  /**
   * A deterministic CRC32 over every stored revision record (engine key and value bytes) with
   * main revision <= revision. Replicas that applied the same log agree, since compaction is
   * itself a replicated command; compare hashes only between equal compactRevisions.
   */
  hashKV(revision = 0): HashKVResponse {
    this.checkReadRevision(revision);
    const hashRevision = revision > 0 ? revision : this.current;
    let hash = 0;
    for (const [key, value] of this.engine.range({ start: revisionKey(0, 0), end: revisionKey(hashRevision + 1, 0) })) {
      hash = crc32(value, crc32(key, hash));
    }
    return { hash, compactRevision: this.compacted, hashRevision };
  }

  /** Every event with revision >= fromRevision on the key range, in revision order (bounded by limit, at revision boundaries). */
  eventsSince(fromRevision: number, key: Uint8Array, rangeEnd?: Uint8Array, limit?: number): Event[] {
    const events: Event[] = [];
    let next = fromRevision;
    // Bounded: each scan advances at least one revision.
    while (next <= this.current) {
      const eventsMax = limit === undefined ? undefined : limit - events.length;
      if (eventsMax !== undefined && eventsMax <= 0) break;
      const result = this.scanEvents({ fromRevision: next, key, rangeEnd, prevKv: true, eventsMax });
      events.push(...result.events);
      next = result.nextRevision;
    }
    return events;
  }

  /** One bounded step of history scanning, for watch catch-up. */
  scanEvents(options: ScanEventsOptions): ScanEventsResult {
    const from = Math.max(options.fromRevision, 1);
    if (from < this.compacted) throw compactedError(this.compacted);
    const to = Math.min(options.toRevision ?? this.current, this.current);
    const eventsMax = options.eventsMax ?? Infinity;
    const recordsMax = options.recordsMax ?? historyScanRecordsMax;
    const bounds = keyBounds(options.key, options.rangeEnd);
    const events: Event[] = [];
    let examined = 0;
    let lastMain = -1;
    for (const [key, value] of this.engine.range({ start: revisionKey(from, 0), end: revisionKey(to + 1, 0) })) {
      const { main, sub } = parseRevisionKey(key);
      if (main !== lastMain && (events.length >= eventsMax || examined >= recordsMax)) return { events, nextRevision: main };
      lastMain = main;
      examined++;
      const record = decodeRecord(value);
      const name = keyString(record.key);
      if (!inBounds(bounds, name)) continue;
      const kv = record.tombstone
        ? { key: record.key, createRevision: 0, modRevision: main, version: 0, value: EMPTY, lease: 0 }
        : this.toKeyValue(record, main);
      const event: Event = { type: record.tombstone ? EventType.DELETE : EventType.PUT, kv };
      if (options.prevKv) {
        const previous = previousOf(this.index.get(name) ?? [], main, sub);
        if (previous !== undefined && !previous.tombstone) event.prevKv = this.toKeyValue(this.readRecord(previous.main, previous.sub), previous.main);
      }
      events.push(event);
    }
    return { events, nextRevision: to + 1 };
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshots

  /** The whole state machine as engine export chunks, from a consistent engine view. */
  export(chunkBytes?: number): Iterable<Uint8Array> {
    return this.engine.export(chunkBytes);
  }

  /**
   * The whole state machine as engine export chunks, from a view taken when the first chunk is
   * pulled, which must hold every apply made so far (a snapshot sent to a peer is named by what
   * was applied): throws then if the engine's committed state is behind the applies.
   */
  *exportApplied(): Iterable<Uint8Array> {
    const view = this.engine.snapshot();
    try {
      const viewApplied = decodeNumber(view.get(META_APPLIED_INDEX), 0);
      if (viewApplied !== this.applied) throw new LichenError('Unavailable', `mvcc: the engine's committed state holds index ${viewApplied}, not yet the applied ${this.applied}`);
      yield* exportChunks(view);
    } finally {
      view.close();
    }
  }

  /** A consistent view of the whole state as of now (later applies do not change it). */
  stateView(): MvccStateView {
    return new MvccStateView(this.engine.snapshot());
  }

  /** Replaces the whole state with a snapshot from export() and rebuilds the in-memory indexes. */
  install(chunks: Iterable<Uint8Array>): void {
    this.engine.import(chunks);
    this.reload();
  }
}

/** Whether any branch of a txn, at any depth, puts a key. */
export function txnHasPut(request: TxnRequest, depth = 0): boolean {
  // Decoded txns are depth-bounded at the API edge; this bound keeps the recursion finite regardless.
  if (depth > 64) return true;
  const puts = (op: RequestOp): boolean => 'requestPut' in op || ('requestTxn' in op && txnHasPut(op.requestTxn, depth + 1));
  return request.success.some(puts) || request.failure.some(puts);
}

/** Whether a txn only reads: every op of both branches is a range, recursively through nested txns. */
export function isReadOnlyTxn(request: TxnRequest, depth = 0): boolean {
  // Decoded txns are depth-bounded at the API edge; this bound keeps the recursion finite regardless.
  if (depth > 64) return false;
  const readOnly = (op: RequestOp): boolean =>
    'requestRange' in op || ('requestTxn' in op && isReadOnlyTxn(op.requestTxn, depth + 1));
  return request.success.every(readOnly) && request.failure.every(readOnly);
}

/** Whether every range of a read-only txn is serializable (then no ReadIndex round is needed). */
export function isSerializableTxn(request: TxnRequest): boolean {
  const serializable = (op: RequestOp): boolean =>
    'requestRange' in op ? op.requestRange.serializable === true : 'requestTxn' in op ? isSerializableTxn(op.requestTxn) : false;
  return request.success.every(serializable) && request.failure.every(serializable);
}

function compactedError(compactRevision: number): LichenError {
  return new LichenError('Compacted', `required revision has been compacted (the oldest kept is ${compactRevision})`, { etcdError: 'compacted', compactRevision });
}

/** A well-mixed, positive, safe-integer lease id from a raft index (splitmix-style, 52 bits). */
export function leaseIdFromIndex(index: number): number {
  const mix = (x: number): number => {
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  const low = index % 0x1_0000_0000;
  const high = Math.floor(index / 0x1_0000_0000);
  const a = mix(low ^ 0x9e3779b9);
  const b = mix(high ^ a ^ 0x7f4a7c15);
  const id = (b & 0xfffff) * 0x1_0000_0000 + a;
  return id === 0 ? 1 : id;
}

/** A key-value without its value, from what the index knows of the key's newest version. */
function metadataOf(latest: LatestVersion, key: Uint8Array): KeyValue {
  return { key, createRevision: latest.createRevision, modRevision: latest.main, version: latest.version, value: EMPTY, lease: latest.lease };
}

function compareKeyValue(compare: Compare, kv: KeyValue): boolean {
  let diff: number;
  switch (compare.target) {
    case CompareTarget.VERSION: diff = kv.version - (compare.version ?? 0); break;
    case CompareTarget.CREATE: diff = kv.createRevision - (compare.createRevision ?? 0); break;
    case CompareTarget.MOD: diff = kv.modRevision - (compare.modRevision ?? 0); break;
    case CompareTarget.LEASE: diff = kv.lease - (compare.lease ?? 0); break;
    case CompareTarget.VALUE: diff = Buffer.compare(kv.value, compare.value ?? EMPTY); break;
    default: throw new LichenError('InvalidArgument', `unknown compare target ${String(compare.target)}`);
  }
  switch (compare.result) {
    case CompareResult.EQUAL: return diff === 0;
    case CompareResult.NOT_EQUAL: return diff !== 0;
    case CompareResult.GREATER: return diff > 0;
    case CompareResult.LESS: return diff < 0;
    default: throw new LichenError('InvalidArgument', `unknown compare result ${String(compare.result)}`);
  }
}

function passesFilters(request: RangeRequest, kv: KeyValue): boolean {
  const { minModRevision = 0, maxModRevision = 0, minCreateRevision = 0, maxCreateRevision = 0 } = request;
  if (maxModRevision !== 0 && kv.modRevision > maxModRevision) return false;
  if (minModRevision !== 0 && kv.modRevision < minModRevision) return false;
  if (maxCreateRevision !== 0 && kv.createRevision > maxCreateRevision) return false;
  if (minCreateRevision !== 0 && kv.createRevision < minCreateRevision) return false;
  return true;
}

function sortKeyValues(kvs: KeyValue[], target: SortTarget, order: SortOrder): void {
  const sign = order === SortOrder.DESCEND ? -1 : 1;
  const by = (kv: KeyValue): number | Uint8Array => {
    switch (target) {
      case SortTarget.VERSION: return kv.version;
      case SortTarget.CREATE: return kv.createRevision;
      case SortTarget.MOD: return kv.modRevision;
      case SortTarget.VALUE: return kv.value;
      default: return kv.key;
    }
  };
  kvs.sort((a, b) => {
    const x = by(a);
    const y = by(b);
    const diff = typeof x === 'number' ? x - (y as number) : Buffer.compare(x, y as Uint8Array);
    return sign * diff;
  });
}

/**
 * etcd's checkIntervals: within one txn branch no key may be put twice, nor put and deleted;
 * puts in the then/else branches of a nested txn may overlap each other (only one runs).
 */
function checkDuplicates(ops: RequestOp[]): void {
  collectWrites(ops);
}

interface Writes {
  puts: Set<string>;
  deletes: KeyBounds[];
}

function overlapsDeletes(deletes: KeyBounds[], key: string): boolean {
  return deletes.some((bounds) => inBounds(bounds, key));
}

function duplicate(): never {
  throw new LichenError('DuplicateKey', 'a txn writes one key twice', { etcdError: 'duplicateKey' });
}

function collectWrites(ops: RequestOp[]): Writes {
  const deletes: KeyBounds[] = [];
  for (const op of ops) {
    if ('requestDeleteRange' in op) deletes.push(keyBounds(op.requestDeleteRange.key, op.requestDeleteRange.rangeEnd));
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (!('requestTxn' in op)) continue;
    const then = collectWrites(op.requestTxn.success);
    const otherwise = collectWrites(op.requestTxn.failure);
    for (const key of then.puts) {
      if (puts.has(key) || overlapsDeletes(deletes, key)) duplicate();
      puts.add(key);
    }
    for (const key of otherwise.puts) {
      if ((puts.has(key) && !then.puts.has(key)) || overlapsDeletes(deletes, key)) duplicate();
      puts.add(key);
    }
    deletes.push(...then.deletes, ...otherwise.deletes);
  }
  for (const op of ops) {
    if (!('requestPut' in op)) continue;
    const key = keyString(op.requestPut.key);
    if (puts.has(key) || overlapsDeletes(deletes, key)) duplicate();
    puts.add(key);
  }
  return { puts, deletes };
}
