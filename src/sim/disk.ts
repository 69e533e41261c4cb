// The virtual disk of one node: what survives a crash. It holds exactly what the node persisted
// from its Ready batches (snapshot, entries, hard state) plus the snapshots it made itself, and
// nothing else: the raft object, the in-memory state machine and pending client requests are lost
// in a crash. On restart the node rebuilds a MemoryStorage from this record. A wipe replaces the
// whole disk with an empty one under a new data directory id.
//
// Every persisted entry also carries the chain hash of the log prefix it ends, so the log matching
// check can compare whole prefixes in O(1).

import type { Entry, HardState, Snapshot } from '../raft/types.js';
import { assert } from '../errors.js';
import { PeerDataDirs } from '../server/data-dirs.js';
import { chainHash } from './hash.js';

export interface DiskEntry {
  entry: Entry;
  chain: string;
}

export class NodeDisk {
  /** What member.json holds besides the log: the peers' data directories, and whom a new member waits for. */
  dataDirs = new PeerDataDirs({ known: [], awaiting: [] });
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  snapshot: Snapshot | undefined;
  /** The chain hash of the prefix the snapshot covers (ending at its index). */
  snapshotChain = '';
  /** Entries after the compaction point, in index order without gaps. */
  entries: DiskEntry[] = [];
  /** Writes so far (a crash point counter and a statistic). */
  writes = 0;

  /** `dataDirId`: drawn when the disk is created, as a data directory's id (src/server/data-dirs.ts). */
  constructor(readonly dataDirId: string) {}

  /** Nothing was ever written (a node's first start, or a crash before its first write). */
  isEmpty(): boolean {
    return this.writes === 0;
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

  termAt(index: number): number | undefined {
    if (index === this.snapshotIndex() && this.snapshot !== undefined) return this.snapshot.metadata.term;
    if (this.entries.length === 0) return undefined;
    const offset = this.entries[0]!.entry.index;
    return this.entries[index - offset]?.entry.term;
  }

  /** Installs a snapshot received from the leader: the whole log is replaced, as raft requires. */
  installSnapshot(snapshot: Snapshot, chain: string): void {
    if (snapshot.metadata.index <= this.snapshotIndex()) return;
    this.writes++;
    this.snapshot = snapshot;
    this.snapshotChain = chain;
    this.entries = [];
  }

  /**
   * Appends entries, replacing any suffix that starts at the first new index (the rule
   * MemoryStorage.append follows too). Returns the chain hashes of the appended entries.
   */
  append(entries: Entry[]): DiskEntry[] {
    if (entries.length === 0) return [];
    this.writes++;
    const first = this.firstIndex();
    const fresh = entries.filter((e) => e.index >= first);
    if (fresh.length === 0) return [];
    const at = fresh[0]!.index;
    assert(at <= this.lastIndex() + 1, `disk append leaves a gap: last ${this.lastIndex()}, appending ${at}`);
    const keep = at - first;
    this.entries = this.entries.slice(0, Math.max(0, keep));
    let previous = this.chainAt(at - 1);
    assert(previous !== undefined, `disk append at ${at} has no predecessor chain`);
    const added: DiskEntry[] = [];
    for (const entry of fresh) {
      previous = chainHash(previous, entry.index, entry.term, entry.type, entry.data);
      const item = { entry, chain: previous };
      this.entries.push(item);
      added.push(item);
    }
    return added;
  }

  setHardState(hardState: HardState): void {
    this.writes++;
    this.hardState = { ...hardState };
  }

  /** Records a snapshot the node made of its own state machine and drops entries up to compactIndex. */
  saveOwnSnapshot(snapshot: Snapshot, compactIndex: number): void {
    const index = snapshot.metadata.index;
    const chain = this.chainAt(index);
    assert(chain !== undefined, `own snapshot at ${index} is not on disk`);
    this.writes++;
    this.snapshot = snapshot;
    this.snapshotChain = chain;
    // Entries after the snapshot stay; so do entries in (compactIndex, index], which MemoryStorage
    // keeps for slow followers. A restart drops the latter because the snapshot covers them.
    this.entries = this.entries.filter((e) => e.entry.index > compactIndex);
  }

  /** Entries after the snapshot, the ones a restarted MemoryStorage gets appended. */
  entriesAfterSnapshot(): Entry[] {
    const index = this.snapshotIndex();
    return this.entries.filter((e) => e.entry.index > index).map((e) => e.entry);
  }
}
