// The durable storage of one process, opened once from its data directory and shared by every raft
// group the process hosts: one WAL (src/wal/shared-wal.ts: each group's LogStore is a view of it,
// and the groups' saves of one turn share a write and an fdatasync), one engine (each group's
// state machine runs over its own partition of it: src/engine/scoped.ts), and one directory of
// snapshot files per group.
//
//   <dir>/log/<seq>.wal            the shared WAL
//   <dir>/snapshots/<group>/       a group's snapshot files (group id as 8 hex digits)
//   <dir>/engine/                  the engine; keys behind a 4-byte group id (src/engine/scoped.ts)
//
// (Lichen 0.1 kept one group's WAL in wal/ and its snapshots in snap/: src/server/upgrade.ts.)
//
// A process hands each group a ReplicaStorage (group(), or replicaStorage() once the group has a
// snapshot); src/store builds its replicas from them through a factory, src/server from group 1's.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GROUP_ZERO, closeEngine, groupPrefix, ScopedEngine, openEngine, type Engine, type EngineKind } from '../engine/index.js';
import { SharedWal, SnapshotStore, type DiskFaults, type GroupLog, type LoadedSnapshot, type RecoveredGroup, type SharedWalOptions } from '../wal/index.js';
import { ErrorCode, LichenError } from '../errors.js';
import { recordCacheBytesMax } from '../limits.js';
import { RecordCache } from '../mvcc/index.js';
import type { Snapshot } from '../raft/index.js';
import type { GroupId } from '../ids.js';
import { KvStateMachine } from './state-machine.js';
import { recoverStorage } from './recovery.js';
import type { ReplicaStorage } from './storage.js';

export const WAL_DIR = 'log';
export const SNAP_DIR = 'snapshots';
export const ENGINE_DIR = 'engine';

/** Where the engine records the layout of its keys (behind group 0, which no group has). */
export const ENGINE_FORMAT_KEY = Buffer.concat([groupPrefix(GROUP_ZERO), Buffer.from('engine-format')]);
/** Keys partitioned by group (lichen 0.1 engines have no format key and no partitions). */
export const ENGINE_FORMAT_PARTITIONED = '2';

export interface ProcessStorageOptions {
  /** The data directory. */
  dir: string;
  engine: EngineKind;
  /** Test and fault knobs of the shared WAL (syncDelayMs, noSync, segmentBytes). */
  wal?: Omit<SharedWalOptions, 'dir'>;
  /** Test and fault-run only: a full disk, for the WAL and the snapshot files alike. */
  faults?: DiskFaults;
}

/** One group's storage: its view of the WAL, its snapshot files and its state machine, as recovered. */
export interface GroupParts {
  wal: GroupLog;
  snapshots: SnapshotStore;
  machine: KvStateMachine;
  /** What the WAL holds for the group. */
  log: RecoveredGroup;
  /** The snapshot the WAL names (undefined for a group that has none yet); its data stays in its file. */
  snapshot: Snapshot | undefined;
}

/** A group's ReplicaStorage with the concrete parts a process uses (a received snapshot's store, the engine). */
export interface GroupStorage extends ReplicaStorage {
  wal: GroupLog;
  snapshots: SnapshotStore;
  machine: KvStateMachine;
}

export class ProcessStorage {
  private closed = false;
  /** The records the groups' ranges read, under one budget for the process (src/mvcc/record-cache.ts). */
  private readonly recordCache = new RecordCache(recordCacheBytesMax);

  private constructor(
    readonly dir: string,
    readonly wal: SharedWal,
    readonly engine: Engine,
    private readonly faults: DiskFaults | undefined,
  ) {}

  static async open(options: ProcessStorageOptions): Promise<ProcessStorage> {
    const engine = await openEngine(options.engine, join(options.dir, ENGINE_DIR));
    try {
      checkEngineFormat(engine, join(options.dir, ENGINE_DIR));
      const wal = await SharedWal.open({ ...options.wal, faults: options.faults ?? options.wal?.faults, dir: join(options.dir, WAL_DIR) });
      const storage = new ProcessStorage(options.dir, wal, engine, options.faults ?? options.wal?.faults);
      // A removal the process did not finish before it stopped (see removeGroup).
      for (const groupId of wal.removedGroupIds()) await storage.deleteGroupFiles(groupId);
      return storage;
    } catch (error) {
      await closeEngine(engine);
      throw error;
    }
  }

  /** The groups the WAL has records of. */
  groupIds(): GroupId[] {
    return this.wal.groupIds();
  }

  /** Opens group `groupId`'s parts (once per group while it runs): recovered, but not yet replayed. */
  async group(groupId: GroupId): Promise<GroupParts> {
    const { log: wal, recovered: log } = this.wal.attach(groupId);
    const snapshots = new SnapshotStore(join(this.dir, SNAP_DIR, snapshotDirName(groupId)), { faults: this.faults });
    snapshots.removeIncoming();
    const machine = new KvStateMachine(new ScopedEngine(this.engine, groupId), { recordCache: this.recordCache.part() });
    const snapshot = log.snapshot ? await snapshots.open(log.snapshot) : undefined;
    if (log.snapshot && !snapshot) {
      throw new LichenError(
        ErrorCode.Internal,
        `the WAL names snapshot ${log.snapshot.index} (term ${log.snapshot.term}) of group ${groupId} but no such snapshot file is in ${snapshots.dir}`,
      );
    }
    return { wal, snapshots, machine, log, snapshot };
  }

  /**
   * Group `groupId`'s ReplicaStorage, recovered from its snapshot and log. A group without a
   * snapshot starts from `initial(machine)` (its first snapshot: the membership and the state it
   * starts with), which is made durable first.
   */
  async replicaStorage(groupId: GroupId, initial?: (machine: KvStateMachine) => LoadedSnapshot): Promise<GroupStorage> {
    const parts = await this.group(groupId);
    let { snapshot } = parts;
    let { hardState } = parts.log;
    if (!snapshot) {
      if (!initial) throw new LichenError(ErrorCode.Internal, `group ${groupId} has no snapshot in ${this.dir} and no initial one was given`);
      snapshot = await bootstrapGroup(parts, initial(parts.machine));
      hardState = { term: snapshot.metadata.term, vote: 0, commit: snapshot.metadata.index };
    }
    const { wal, snapshots, machine } = parts;
    return { ...recoverStorage({ wal, snapshots, machine, snapshot, log: { hardState, entries: parts.log.entries } }), wal, snapshots, machine };
  }

  /**
   * Removes group `groupId` (its replica closed) from the process: first, durably, from the WAL
   * (from then on the group does not exist here, whatever else a crash leaves), then its engine
   * partition and its snapshot files; a crash before those are gone has open() finish the job.
   */
  async removeGroup(groupId: GroupId): Promise<void> {
    await this.wal.removeGroup(groupId);
    await this.deleteGroupFiles(groupId);
  }

  private async deleteGroupFiles(groupId: GroupId): Promise<void> {
    // Importing nothing replaces the partition's keys with none, a bounded batch of deletes at a time.
    new ScopedEngine(this.engine, groupId).import([]);
    await this.engine.sync();
    await rm(join(this.dir, SNAP_DIR, snapshotDirName(groupId)), { recursive: true, force: true });
    await this.wal.forgetRemoved(groupId);
  }

  /** Closes the WAL and the engine (after every group's replica has closed). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.wal.close();
    } finally {
      await this.engine.sync();
      await closeEngine(this.engine);
    }
  }
}

/** Makes a group's first snapshot durable and names it in the WAL, with the hard state after it. */
export async function bootstrapGroup(parts: Pick<GroupParts, 'wal' | 'snapshots'>, snapshot: LoadedSnapshot): Promise<LoadedSnapshot> {
  await parts.snapshots.save(snapshot);
  await parts.wal.saveSnapshotMarker(snapshot.metadata);
  await parts.wal.save({ hardState: { term: snapshot.metadata.term, vote: 0, commit: snapshot.metadata.index }, entries: [] });
  return snapshot;
}

export const snapshotDirName = (groupId: GroupId): string => groupId.toString(16).padStart(8, '0');

/** An empty engine gets the partitioned format; one without it holds lichen 0.1 keys, which this code must not misread. */
function checkEngineFormat(engine: Engine, dir: string): void {
  const format = engine.get(ENGINE_FORMAT_KEY);
  if (format && Buffer.from(format).toString() === ENGINE_FORMAT_PARTITIONED) return;
  if (format) throw new LichenError(ErrorCode.InvalidArgument, `engine ${dir} has format ${Buffer.from(format).toString()}; this lichen reads format ${ENGINE_FORMAT_PARTITIONED}`);
  const [any] = engine.range({ start: new Uint8Array(0), limit: 1 });
  if (any && any[0][0] !== 0) {
    throw new LichenError(ErrorCode.InvalidArgument, `engine ${dir} holds keys of lichen 0.1 (not partitioned by group); its data directory must be upgraded first`);
  }
  engine.write([{ type: 'put', key: ENGINE_FORMAT_KEY, value: Buffer.from(ENGINE_FORMAT_PARTITIONED) }]);
}
