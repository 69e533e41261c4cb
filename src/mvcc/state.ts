// The whole MVCC state as plain data, for formats other than the engine's own: read from a
// consistent engine view (etcd-format snapshots and hashes) and written into an empty engine
// (restoring such a snapshot). Only this folder knows the engine layout (layout.ts).
import type { Engine, ReadView, WriteOp } from '../engine/types.js';
import { ErrorCode, LichenError, assert } from '../errors.js';
import {
  META_APPLIED_INDEX,
  META_COMPACT_REVISION,
  META_CURRENT_REVISION,
  PREFIX_ALARM,
  PREFIX_LEASE,
  PREFIX_REVISION,
  decodeNumber,
  decodeRecord,
  encodeNumber,
  encodeRecord,
  leaseKey,
  parseAlarmKey,
  parseLeaseKey,
  parseRevisionKey,
  prefixEnd,
  revisionKey,
  type StoredRecord,
} from './layout.js';
import type { AlarmMember, AlarmType } from './types.js';

export type { StoredRecord } from './layout.js';

/** One stored key version at its revision. */
export interface RevisionRecord {
  main: number;
  sub: number;
  record: StoredRecord;
}

export interface LeaseRecord {
  id: number;
  /** The granted TTL in seconds. */
  ttl: number;
}

/** A consistent, read-only view of the MVCC state at one applied index. Close it when done. */
export class MvccStateView {
  readonly appliedIndex: number;
  readonly currentRevision: number;
  readonly compactRevision: number;

  constructor(private readonly view: ReadView) {
    this.appliedIndex = decodeNumber(view.get(META_APPLIED_INDEX), 0);
    this.currentRevision = decodeNumber(view.get(META_CURRENT_REVISION), 1);
    this.compactRevision = decodeNumber(view.get(META_COMPACT_REVISION), 0);
  }

  /** Every stored revision (puts and tombstones) in revision order. */
  *records(): Iterable<RevisionRecord> {
    for (const [key, value] of this.view.range({ start: Uint8Array.of(PREFIX_REVISION), end: prefixEnd(PREFIX_REVISION) })) {
      yield { ...parseRevisionKey(key), record: decodeRecord(value) };
    }
  }

  /** The raised alarms, by type, then member id. */
  *alarms(): Iterable<AlarmMember> {
    for (const [key] of this.view.range({ start: Uint8Array.of(PREFIX_ALARM), end: prefixEnd(PREFIX_ALARM) })) {
      const { alarm, memberId } = parseAlarmKey(key);
      yield { memberId, alarm: alarm as AlarmType };
    }
  }

  /** Every lease, by ascending id. */
  *leases(): Iterable<LeaseRecord> {
    for (const [key, value] of this.view.range({ start: Uint8Array.of(PREFIX_LEASE), end: prefixEnd(PREFIX_LEASE) })) {
      yield { id: parseLeaseKey(key), ttl: decodeNumber(value, 0) };
    }
  }

  close(): void {
    this.view.close();
  }
}

export interface MvccStateInput {
  /** Default: the last record's revision, or the compaction's if above (etcd's rule on restore). */
  currentRevision?: number;
  compactRevision: number;
  /** In revision order. */
  records: Iterable<RevisionRecord>;
  leases: Iterable<LeaseRecord>;
}

/** The engine keeps sub revisions in 32 bits (layout.ts). */
const SUB_REVISION_MAX = 0xffff_ffff;
/** Engine writes are grouped in transactions of this many operations. */
const WRITE_BATCH_OPS = 10_000;

/**
 * Writes a whole MVCC state into an empty engine, streaming (a batch of writes at a time), with
 * applied index 0: MvccStore.open then rebuilds its indexes from it. Throws on records out of
 * order or above currentRevision.
 */
export function writeMvccState(engine: Engine, input: MvccStateInput): void {
  for (const _ of engine.range({ start: new Uint8Array(0), limit: 1 })) assert(false, 'writeMvccState: the engine is not empty');
  let ops: WriteOp[] = [];
  const flush = (): void => {
    if (ops.length > 0) engine.write(ops);
    ops = [];
  };
  const add = (op: WriteOp): void => {
    ops.push(op);
    if (ops.length >= WRITE_BATCH_OPS) flush();
  };
  let previous = { main: 0, sub: -1 };
  for (const { main, sub, record } of input.records) {
    if (main < previous.main || (main === previous.main && sub <= previous.sub)) {
      throw invalid(`revision ${main}/${sub} comes after ${previous.main}/${previous.sub}`);
    }
    if (input.currentRevision !== undefined && main > input.currentRevision) {
      throw invalid(`revision ${main} is above the current revision ${input.currentRevision}`);
    }
    if (sub > SUB_REVISION_MAX) throw invalid(`sub revision ${sub} of revision ${main} is above ${SUB_REVISION_MAX}`);
    previous = { main, sub };
    add({ type: 'put', key: revisionKey(main, sub), value: encodeRecord(record) });
  }
  for (const lease of input.leases) add({ type: 'put', key: leaseKey(lease.id), value: encodeNumber(lease.ttl) });
  const currentRevision = input.currentRevision ?? Math.max(previous.main, input.compactRevision, 1);
  add({ type: 'put', key: META_CURRENT_REVISION, value: encodeNumber(currentRevision) });
  if (input.compactRevision > 0) add({ type: 'put', key: META_COMPACT_REVISION, value: encodeNumber(input.compactRevision) });
  flush();
}

function invalid(message: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, `mvcc state: ${message}`);
}
