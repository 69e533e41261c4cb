// What the WAL knows about the raft log, built by replaying records in order: the latest hard
// state, the latest snapshot marker, and the index and term of every entry after it. The same
// rules run on replay and on the live write path, so a WAL that was written and then replayed
// ends in the state its writer had.
import type { Entry, HardState, SnapshotMetadata } from '../raft/types.js';
import { assert } from '../errors.js';

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: 0, commit: 0 });

export class LogModel {
  hardState: HardState = EMPTY_HARD_STATE;
  snapshot: SnapshotMetadata | undefined;
  /**
   * The index just before the first entry held. Usually the snapshot index (or 0). After old
   * segments were released it can be higher on replay: the entries in between are in deleted
   * segments, and a later snapshot marker must cover them (checked by `missingBefore`).
   */
  private baseIndex = 0;
  /** The term of the entry at baseIndex, or undefined when that entry lives in a deleted segment. */
  private baseTerm: number | undefined = 0;
  /** Terms of entries baseIndex+1 .. lastIndex. */
  private terms: number[] = [];
  /** The entries themselves, kept only while replaying (the live WAL needs just the terms). */
  private entries: Entry[] | undefined;

  constructor(keepEntries: boolean) {
    this.entries = keepEntries ? [] : undefined;
  }

  get lastIndex(): number {
    return this.baseIndex + this.terms.length;
  }

  get firstIndex(): number {
    return this.baseIndex + 1;
  }

  /** The term of the entry at `index`, undefined when not known (released or not written). */
  termAt(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.lastIndex) return undefined;
    return this.terms[index - this.baseIndex - 1];
  }

  /** Starts replay from the header of the oldest segment kept. */
  startAt(nextIndex: number, hardState: HardState, snapshot: SnapshotMetadata | undefined): void {
    this.hardState = hardState;
    this.snapshot = snapshot;
    this.baseIndex = nextIndex - 1;
    if (this.baseIndex === 0) this.baseTerm = 0;
    else this.baseTerm = snapshot && snapshot.index === this.baseIndex ? snapshot.term : undefined;
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  /**
   * Appends entries; an entry at or below lastIndex replaces that entry and everything after it
   * (raft's truncation on conflict). `where` names the record for assertion messages.
   */
  appendEntries(entries: readonly Entry[], where: string): void {
    for (const entry of entries) {
      assert(
        entry.index <= this.lastIndex + 1,
        `${where}: entry ${entry.index} leaves a gap after last index ${this.lastIndex}`,
      );
      if (entry.index <= this.baseIndex) {
        // Only legal while the entries before the first kept segment are unknown: the
        // truncation reaches into released segments, so the unknown stretch shrinks.
        assert(
          this.baseTerm === undefined,
          `${where}: entry ${entry.index} overwrites index ${this.baseIndex} or below, which the snapshot covers`,
        );
        this.baseIndex = entry.index - 1;
        this.terms = [];
        if (this.entries) this.entries = [];
      } else if (entry.index <= this.lastIndex) {
        const keep = entry.index - this.baseIndex - 1;
        this.terms.length = keep;
        if (this.entries) this.entries.length = keep;
      }
      const previousTerm = this.termAt(entry.index - 1);
      assert(
        previousTerm === undefined || entry.term >= previousTerm,
        `${where}: entry ${entry.index} has term ${entry.term}, below the term ${previousTerm} of the entry before it`,
      );
      this.terms.push(entry.term);
      if (this.entries) this.entries.push(entry);
    }
  }

  /**
   * Records a durable snapshot. Entries after it survive only if the log holds the snapshot's
   * last entry with the same term (then the log continues the snapshot, by the log matching
   * property); otherwise the snapshot replaced the log, as raft does when it installs one.
   * Returns false (and changes nothing) for a marker not newer than the current one.
   */
  applySnapshot(meta: SnapshotMetadata): boolean {
    if (this.snapshot && meta.index <= this.snapshot.index) return false;
    this.snapshot = meta;
    if (meta.index < this.baseIndex) return true; // Inside the released stretch: entries follow it.
    const term = this.termAt(meta.index);
    const continues = meta.index <= this.lastIndex && (term === undefined || term === meta.term);
    const drop = continues ? meta.index - this.baseIndex : this.terms.length;
    this.terms.splice(0, drop);
    if (this.entries) this.entries.splice(0, drop);
    if (!continues) this.terms = [];
    if (!continues && this.entries) this.entries = [];
    this.baseIndex = meta.index;
    this.baseTerm = meta.term;
    return true;
  }

  /**
   * After replay: the first index that should be present but lives only in deleted segments, or
   * undefined when the snapshot and the entries meet.
   */
  missingBefore(): number | undefined {
    const covered = this.snapshot?.index ?? 0;
    return this.baseIndex > covered ? covered + 1 : undefined;
  }

  /** Hands over the replayed entries and stops keeping them. */
  takeEntries(): Entry[] {
    const entries = this.entries ?? [];
    this.entries = undefined;
    return entries;
  }
}

/** The checks a save makes before writing: a record that replay would refuse must never reach the disk. */
export function checkEntries(model: LogModel, entries: readonly Entry[]): void {
  const first = entries[0];
  if (!first) return;
  const covered = model.snapshot?.index ?? 0;
  assert(first.index > covered, `wal save: entry ${first.index} is covered by the snapshot at ${covered}`);
  assert(first.index <= model.lastIndex + 1, `wal save: entry ${first.index} leaves a gap after last index ${model.lastIndex}`);
  let previousTerm = model.termAt(first.index - 1);
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (i > 0) assert(entry.index === entries[i - 1]!.index + 1, `wal save: entries are not contiguous (${entries[i - 1]!.index} then ${entry.index})`);
    assert(
      previousTerm === undefined || entry.term >= previousTerm,
      `wal save: entry ${entry.index} has term ${entry.term}, below the term ${previousTerm} of the entry before it`,
    );
    previousTerm = entry.term;
  }
}
