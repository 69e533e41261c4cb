// The virtual disk of one node: what survives a crash. A node writes each group's Ready batches
// (snapshot, entries, hard state) into the disk's page cache (`written`); they become durable
// (`durable`) only when it syncs, one sync for all its groups as with the shared WAL, and a crash
// throws away whatever was written since the last sync, in every group, as power loss does. The
// raft object, the in-memory state machine and pending client requests are lost in any crash. On
// restart each group's replica is recovered from its durable record. A wipe replaces the whole
// disk with an empty one under a new data directory id.
//
// Every persisted entry also carries the chain hash of the log prefix it ends, so the log matching
// check can compare whole prefixes in O(1).

import type { Entry, HardState, Snapshot, SnapshotMetadata } from '../raft/types.js';
import type { Member } from '../replica/index.js';
import { assert } from '../errors.js';
import { PeerDataDirs } from '../server/data-dirs.js';
import { chainHash } from './hash.js';
import type { GroupId } from '../ids.js';

export interface DiskEntry {
  entry: Entry;
  chain: string;
}

/** One state of a node's raft log on disk: hard state, snapshot and the entries after it. */
export class LogImage {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  snapshot: Snapshot | undefined;
  /** The chain hash of the prefix the snapshot covers (ending at its index). */
  snapshotChain = '';
  /** Entries after the compaction point, in index order without gaps. */
  entries: DiskEntry[] = [];

  copy(): LogImage {
    const image = new LogImage();
    image.hardState = this.hardState;
    image.snapshot = this.snapshot;
    image.snapshotChain = this.snapshotChain;
    image.entries = this.entries.slice();
    return image;
  }

  snapshotIndex(): number {
    return this.snapshot?.metadata.index ?? 0;
  }

  firstIndex(): number {
    return this.entries.length > 0 ? this.entries[0]!.entry.index : this.snapshotIndex() + 1;
  }

  lastIndex(): number {
    return this.entries.length > 0 ? this.entries[this.entries.length - 1]!.entry.index : this.snapshotIndex();
  }

  /** The chain hash of the prefix ending at `index`, or undefined when it is not on disk. */
  chainAt(index: number): string | undefined {
    // Every log starts from the same empty prefix.
    if (index === 0 && this.snapshot === undefined) return 'empty';
    if (index === this.snapshotIndex() && this.snapshot !== undefined) return this.snapshotChain;
    if (this.entries.length === 0) return undefined;
    const offset = this.entries[0]!.entry.index;
    return this.entries[index - offset]?.chain;
  }

  /** Entries after the snapshot, the ones a restarted MemoryStorage gets appended. */
  entriesAfterSnapshot(): Entry[] {
    const index = this.snapshotIndex();
    return this.entries.filter((e) => e.entry.index > index).map((e) => e.entry);
  }

  /**
   * Records a snapshot marker, by the WAL's rules (src/wal/log-model.ts): an older one is ignored;
   * entries after it stay when the log holds the snapshot's own (index, term), else the snapshot
   * replaces the whole log (one received from a leader whose log differs).
   */
  applySnapshot(snapshot: Snapshot, chain: string): void {
    const { index, term } = snapshot.metadata;
    if (index <= this.snapshotIndex()) return;
    const continues = this.entries.some((e) => e.entry.index === index && e.entry.term === term);
    this.snapshot = snapshot;
    this.snapshotChain = chain;
    this.entries = continues ? this.entries.filter((e) => e.entry.index > index) : [];
  }
}

/**
 * One group's part of a node's disk: its log (as written, and as of the last sync) and its snapshot
 * files. The shared WAL keeps every group's records in one file, so a sync covers all of them:
 * NodeDisk syncs its groups together.
 */
export class GroupDisk {
  /** What the node wrote: what it reads back while it runs. */
  written = new LogImage();
  /** What survives a crash: `written` as of the last sync. */
  durable = new LogImage();
  /** Writes not yet synced. */
  private unsynced = 0;
  /** Syncs that made something durable (zero: the group holds nothing a restart could use). */
  syncs = 0;
  /**
   * The group's engine (its partition of the node's engine) as of the engine's last sync: the
   * engine keeps its own file, which its own sync makes durable (src/sim/member-storage.ts).
   */
  engine: Array<[key: Uint8Array, value: Uint8Array]> = [];
  /** Snapshot files by `${index}:${term}`: each durable once saved, as a file written and synced on its own. */
  private readonly snapshotFiles = new Map<string, Snapshot>();
  /** What a member that joined a running group keeps (for group 1, in member.json: src/server/state.ts). */
  joined: { catchUpIndex: number; members: Member[] } | undefined;

  /** Whether a restart finds this group on the disk: a snapshot, or the record of its join. */
  holdsGroup(): boolean {
    return this.durable.snapshot !== undefined || this.joined !== undefined;
  }

  /** Makes everything written so far durable (part of the node's fdatasync). */
  sync(): void {
    if (this.unsynced === 0) return;
    this.durable = this.written.copy();
    this.unsynced = 0;
    this.syncs++;
  }

  /** A crash: what was written since the last sync is gone. */
  loseUnsynced(): void {
    if (this.unsynced === 0) return;
    this.written = this.durable.copy();
    this.unsynced = 0;
  }

  /** A new group's first snapshot and hard state, written and synced at creation. */
  bootstrap(snapshot: Snapshot, chain: string, hardState: HardState): void {
    this.saveSnapshotFile(snapshot);
    for (const image of [this.written, this.durable]) {
      image.applySnapshot(snapshot, chain);
      image.hardState = { ...hardState };
    }
    this.syncs++;
  }

  saveSnapshotFile(snapshot: Snapshot): void {
    this.snapshotFiles.set(`${snapshot.metadata.index}:${snapshot.metadata.term}`, snapshot);
  }

  /** The snapshot file a marker names (it was saved before the marker, as the replica does). */
  snapshotFile(meta: SnapshotMetadata): Snapshot {
    const snapshot = this.snapshotFiles.get(`${meta.index}:${meta.term}`);
    assert(snapshot !== undefined, `no snapshot file for the marker at ${meta.index}:${meta.term}`);
    return snapshot;
  }

  /** Writes the marker of a snapshot received from the leader (durable once synced). */
  writeSnapshotMarker(snapshot: Snapshot, chain: string): void {
    this.unsynced++;
    this.written.applySnapshot(snapshot, chain);
  }

  /**
   * Writes entries, replacing any suffix that starts at the first new index (the rule
   * MemoryStorage.append follows too). Returns the chain hashes of the written entries.
   */
  append(entries: Entry[]): DiskEntry[] {
    if (entries.length === 0) return [];
    this.unsynced++;
    const log = this.written;
    const first = log.firstIndex();
    const fresh = entries.filter((e) => e.index >= first);
    if (fresh.length === 0) return [];
    const at = fresh[0]!.index;
    assert(at <= log.lastIndex() + 1, `disk append leaves a gap: last ${log.lastIndex()}, appending ${at}`);
    log.entries = log.entries.slice(0, Math.max(0, at - first));
    let previous = log.chainAt(at - 1);
    assert(previous !== undefined, `disk append at ${at} has no predecessor chain`);
    const added: DiskEntry[] = [];
    for (const entry of fresh) {
      previous = chainHash(previous, entry.index, entry.term, entry.type, entry.data);
      const item = { entry, chain: previous };
      log.entries.push(item);
      added.push(item);
    }
    return added;
  }

  setHardState(hardState: HardState): void {
    this.unsynced++;
    this.written.hardState = { ...hardState };
  }

  /**
   * Records a snapshot this node made of its own state machine. It covers only applied entries,
   * which are durable, so both images hold its index; the marker is made durable at once (as if
   * synced on its own), which keeps every sync the simulator waits for inside a Ready turn.
   */
  markOwnSnapshot(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    if (index <= this.written.snapshotIndex()) return;
    const chain = this.durable.chainAt(index);
    assert(chain !== undefined && chain === this.written.chainAt(index), `own snapshot at ${index} is not on disk`);
    this.written.applySnapshot(snapshot, chain);
    this.durable.applySnapshot(snapshot, chain);
    this.syncs++;
  }
}

/**
 * A node's disk: the data directory of one process, with one log per group it hosts in one shared
 * WAL (src/wal/shared-wal.ts). One sync makes every group's writes durable, and a crash loses
 * every group's unsynced writes at once.
 */
export class NodeDisk {
  /** What member.json holds besides the log: the peers' data directories, and whom a new member waits for. */
  dataDirs = new PeerDataDirs({ known: [], awaiting: [] });
  private readonly groups = new Map<GroupId, GroupDisk>();

  /** `dataDirId`: drawn when the disk is created, as a data directory's id (src/server/data-dirs.ts). */
  constructor(readonly dataDirId: string) {}

  /** The part of the disk that holds `group` (empty until the group writes to it). */
  group(group: GroupId): GroupDisk {
    let disk = this.groups.get(group);
    if (disk === undefined) this.groups.set(group, (disk = new GroupDisk()));
    return disk;
  }

  /** The groups a restart finds on this disk, in id order. */
  groupIds(): GroupId[] {
    return [...this.groups].filter(([, disk]) => disk.holdsGroup()).map(([group]) => group).sort((a, b) => a - b);
  }

  /** A group removed from this member: its records and files are gone (durably, as the WAL's removal record). */
  removeGroup(group: GroupId): void {
    this.groups.delete(group);
  }

  /** Nothing was ever made durable (a node's first start, or a crash before its first sync). */
  isEmpty(): boolean {
    return [...this.groups.values()].every((disk) => disk.syncs === 0);
  }

  /** Makes everything written so far durable, in every group (one fdatasync of the shared WAL). */
  sync(): void {
    for (const disk of this.groups.values()) disk.sync();
  }

  /** A crash: what was written since the last sync is gone, in every group. */
  loseUnsynced(): void {
    for (const disk of this.groups.values()) disk.loseUnsynced();
  }
}
