// A simulated member's storage: the replica's LogStore and SnapshotFiles over its group's part of
// the node's virtual disk (disk.ts), whose writes survive a crash only once synced. Every write is also where the
// safety monitor looks: log matching on each entry written, agreement of committed prefixes on
// each commit index written. One incarnation of a process owns one instance; once the process has
// ended, any write it still attempts (a snapshot being taken in the background) is refused.
import type { Entry, HardState, Snapshot, SnapshotMetadata } from '../raft/types.js';
import { MemoryEngine, type WriteOp } from '../engine/index.js';
import { spoolInMemory, type LogStore, type SnapshotFiles, type SpooledSnapshot } from '../replica/index.js';
import type { GroupDisk } from './disk.js';
import type { SafetyMonitor } from './invariants.js';

export interface MemberDisk {
  id: number;
  /** The group's part of the node's disk (whose sync covers every group's writes). */
  disk: GroupDisk;
  /** The group's safety monitor. */
  monitor: SafetyMonitor;
  /** Throws when the process has ended. */
  assertRunning(): void;
  /** Syncs the disk; resolves once done (never, when the process ends first). */
  sync(): Promise<void>;
  /** The metadata of the snapshot from the leader that the Ready in hand installs, if any. */
  installing(): SnapshotMetadata | undefined;
  /** Told when the member made a snapshot of its own state machine durable. */
  tookSnapshot(index: number): void;
}

export class SimLogStore implements LogStore {
  /** The commit index already reported to the safety monitor. */
  private commitObserved: number;

  constructor(private readonly member: MemberDisk) {
    this.commitObserved = member.disk.durable.hardState.commit;
  }

  save(update: { hardState?: HardState; entries: Entry[]; sync?: boolean }): Promise<void> {
    const { id, disk, monitor } = this.member;
    this.member.assertRunning();
    if (update.entries.length > 0) monitor.observeAppend(id, disk.append(update.entries));
    const hardState = update.hardState;
    if (hardState !== undefined) {
      disk.setHardState(hardState);
      if (hardState.commit > this.commitObserved) {
        monitor.observeCommit(id, hardState.term, this.commitObserved, hardState.commit, disk.written);
        this.commitObserved = hardState.commit;
      }
    }
    return update.sync === false ? Promise.resolve() : this.member.sync();
  }

  saveSnapshotMarker(meta: SnapshotMetadata): Promise<void> {
    const { disk, monitor } = this.member;
    this.member.assertRunning();
    const snapshot = disk.snapshotFile(meta);
    const installing = this.member.installing();
    if (installing === undefined || installing.index !== meta.index || installing.term !== meta.term) {
      disk.markOwnSnapshot(snapshot);
      this.member.tookSnapshot(meta.index);
      return Promise.resolve();
    }
    disk.writeSnapshotMarker(snapshot, monitor.chainForSnapshot(meta.index, meta.term));
    return this.member.sync();
  }

  /** The marker already dropped the entries it covers (the WAL's segments go the same way). */
  async releaseTo(): Promise<void> {}

  get sizeBytes(): number {
    let bytes = 0;
    for (const { entry } of this.member.disk.written.entries) bytes += entry.data.length;
    return bytes;
  }

  async close(): Promise<void> {}
}

export class SimSnapshotFiles implements SnapshotFiles {
  constructor(private readonly member: MemberDisk) {}

  async save(snapshot: Snapshot): Promise<void> {
    this.member.assertRunning();
    this.member.disk.saveSnapshotFile(snapshot);
  }

  async spool(chunks: Iterable<Uint8Array>): Promise<SpooledSnapshot> {
    this.member.assertRunning();
    return spoolInMemory(chunks);
  }
}

/**
 * The group's engine: the real memory engine, reopened on what the disk kept of it. Its writes
 * survive a crash only once the engine synced (an engine file whose pages were never flushed, as
 * after power loss), which the disk's syncs of the WAL do not do for it.
 */
export class SimEngine extends MemoryEngine {
  constructor(private readonly member: MemberDisk) {
    super();
    const kept = member.disk.engine;
    if (kept.length > 0) this.write(kept.map(([key, value]): WriteOp => ({ type: 'put', key, value })));
  }

  /** Never resolves once the process ended (its clock stopped), as the disk's sync. */
  override async sync(): Promise<void> {
    const image = [...this.range({ start: new Uint8Array(0) })];
    await this.member.sync();
    this.member.disk.engine = image;
  }
}
