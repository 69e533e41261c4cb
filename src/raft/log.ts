// The raft log as the core sees it: the persisted part (Storage) followed by the unstable part (a
// snapshot and/or entries this node accepted but the application has not yet persisted). The
// unstable part leaves through Ready and becomes stable in advance().

import { LichenError, assert, isLichenError } from '../errors.js';
import { entryBytes, limitBytes, type Storage } from './storage.js';
import type { Entry, Snapshot } from './types.js';

/** etcd's words for it (raft's commitTo panics with them). */
export function logLost(commit: number, lastIndex: number): LichenError {
  return new LichenError(
    'DataLoss',
    `tocommit(${commit}) is out of range [lastIndex(${lastIndex})]. Was the raft log corrupted, truncated, or lost?`,
    { commit, lastIndex },
  );
}

/** Entries and a snapshot not yet persisted. Entries start at `offset`. */
class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  constructor(public offset: number) {}

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot) return this.snapshot.metadata.index;
    return undefined;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    if (this.entries.length === 0) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** The entries up to `index` (with `term`) were persisted: drop them from the unstable part. */
  stableTo(index: number, term: number): void {
    const t = this.maybeTerm(index);
    if (t === undefined || t !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snap: Snapshot): void {
    this.offset = snap.metadata.index + 1;
    this.entries = [];
    this.snapshot = snap;
  }

  truncateAndAppend(entries: Entry[]): void {
    const after = entries[0]!.index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(entries);
    } else if (after <= this.offset) {
      // The new entries replace everything unstable (and a persisted suffix, which the application
      // truncates when it appends them).
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(entries);
    }
  }
}

export class RaftLog {
  private readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index the application has applied (acknowledged through advance()). */
  applied: number;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    if (this.unstable.snapshot) return this.unstable.snapshot.metadata.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * The highest index that is persisted and still part of this log. The leader counts its own log
   * toward commit only up to here (thesis §10.2.1). While a received snapshot is not yet persisted
   * nothing is counted (0), which is conservative.
   */
  persistedIndex(): number {
    if (this.unstable.snapshot) return 0;
    return this.unstable.offset - 1;
  }

  /** The term of the entry at `index`: 0 beyond the last index; throws 'Compacted' below the first. */
  term(index: number): number {
    const dummy = this.firstIndex() - 1;
    if (index > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(index);
    if (t !== undefined) return t;
    if (index < dummy) {
      throw new LichenError('Compacted', `raft log index ${index} is compacted`, { index, firstIndex: dummy + 1 });
    }
    return this.storage.term(index);
  }

  /** Like term() but 0 for compacted indexes; for the checks where "unknown" means "no match". */
  termOrZero(index: number): number {
    try {
      return this.term(index);
    } catch (error) {
      if (isLichenError(error, 'Compacted')) return 0;
      throw error;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(index: number, term: number): boolean {
    return this.termOrZero(index) === term;
  }

  /**
   * §5.4.1: "Raft determines which of two logs is more up-to-date by comparing the index and term of
   * the last entries in the logs." A candidate's log is at least as up-to-date as ours when its last
   * term is higher, or equal with a last index at least as large.
   */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The AppendEntries receiver rule (§5.3): if our log has prevIndex with prevTerm, append the new
   * entries after deleting any conflicting suffix, and advance commit to min(leaderCommit, last new
   * index). Returns the last index known to match the leader, or undefined on mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `entry ${conflict} conflicts with committed entry (commit ${this.committed})`);
      this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /**
   * The index of the first entry that is new or conflicts with ours (same index, different term),
   * or 0 when every entry is already present.
   */
  private findConflict(entries: Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * For fast backtracking: the largest index <= `index` whose term is <= `term`, with that term.
   * Every entry above it has a larger term, so none of them can match a log whose entry at `index`
   * has term `term`.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    const floor = this.firstIndex() - 1;
    // Bounded by the log length: one step per entry.
    for (; i >= floor; i--) {
      const t = this.termOrZero(i);
      if (t <= term) return { index: i, term: t };
    }
    return { index: i, term: 0 };
  }

  append(entries: Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `append after ${after} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * Throws DataLoss when `index` lies beyond the log: a leader tells a follower a commit index only
   * up to what the follower acknowledged, so this follower lost entries it had promised to keep (a
   * truncated WAL, a wiped data directory). It must stop, not keep voting with the shorter log.
   */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) throw logLost(index, this.lastIndex());
    this.committed = index;
  }

  /** Advances commit to `index` when the entry there is from `term` (the caller's current term). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.termOrZero(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(
      index <= this.committed && index >= this.applied,
      `applied ${index} outside [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }

  /** Entries [lo, hi) with at most maxBytes payload (always at least one). */
  slice(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    if (lo >= hi) return [];
    assert(hi <= this.lastIndex() + 1, `slice hi ${hi} beyond last index ${this.lastIndex()}`);
    const out: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      const storedHi = Math.min(hi, offset);
      const stored = this.storage.entries(lo, storedHi, maxBytes);
      if (stored.length < storedHi - lo) return stored;
      out.push(...stored);
    }
    if (hi > offset) {
      const from = Math.max(lo, offset);
      out.push(...this.unstable.entries.slice(from - offset, hi - offset));
    }
    return limitBytes(out, maxBytes);
  }

  /** Entries from `index` to the end, bounded by maxBytes. Throws 'Compacted' below the first index. */
  entriesFrom(index: number, maxBytes: number): Entry[] {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  unstableSnapshot(): Snapshot | undefined {
    return this.unstable.snapshot;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /**
   * The committed entries to hand to the application: after `applied`, up to the commit index but
   * never beyond what is persisted locally, so the state machine never runs ahead of the WAL, and
   * never beyond `upTo` (see Raft.applyLimit).
   */
  nextCommittedEntries(maxBytes: number, upTo = Infinity): Entry[] {
    const hi = Math.min(this.committed, this.persistedIndex(), upTo);
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (lo > hi) return [];
    return this.slice(lo, hi + 1, maxBytes);
  }

  hasNextCommittedEntries(upTo = Infinity): boolean {
    const hi = Math.min(this.committed, this.persistedIndex(), upTo);
    return Math.max(this.applied + 1, this.firstIndex()) <= hi;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  /** Replaces the log with a snapshot (the follower side of InstallSnapshot, §7). */
  restore(snap: Snapshot): void {
    this.committed = snap.metadata.index;
    this.unstable.restore(snap);
  }

  /** Total payload bytes of the entries in (from, to]; used for the uncommitted-bytes budget. */
  static payloadBytes(entries: Entry[]): number {
    let total = 0;
    for (const e of entries) total += entryBytes(e);
    return total;
  }
}
