// The raft core reads what is persisted through Storage; it never writes it. The application
// persists each Ready (WAL + fsync) and mirrors the same changes into a MemoryStorage, which is
// what the core reads back (entries for followers, terms for the consistency check, snapshots).

import { LichenError, assert } from '../errors.js';
import { raftEntryOverheadBytesMax } from '../limits.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';

/** A read-only view of the persisted log, hard state and latest snapshot. */
export interface Storage {
  /** The persisted hard state and the membership as of the point raft restarts from. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries [lo, hi), at most `maxBytes` of payload but always at least one entry when the range is
   * not empty. Throws LichenError('Compacted') when lo is at or below the snapshot index.
   */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** The term of the entry at `index`; the snapshot index is allowed. Throws 'Compacted' below it. */
  term(index: number): number;
  /** The index of the first entry still present (snapshot index + 1). */
  firstIndex(): number;
  /** The index of the last persisted entry (the snapshot index when the log is empty). */
  lastIndex(): number;
  /** The latest snapshot. */
  snapshot(): Snapshot;
}

export function emptyHardState(): HardState {
  return { term: 0, vote: 0, commit: 0 };
}

export function emptyConfState(): ConfState {
  return { voters: [], learners: [] };
}

export function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, conf: emptyConfState() }, data: new Uint8Array(0) };
}

/**
 * The bytes an entry counts for in every byte budget of the core (messages, apply, uncommitted):
 * its data plus the most its term, index, type and length take on the wire, as etcd counts an
 * entry's encoded size. So the budget of an append bounds its encoding, however small its entries.
 */
export function entryBytes(entry: Pick<Entry, 'data'>): number {
  return entry.data.length + raftEntryOverheadBytesMax;
}

/**
 * Returns the longest prefix of `entries` whose total payload stays within `maxBytes`, but never
 * fewer than one entry, so that a single large entry still makes progress.
 */
export function limitBytes(entries: Entry[], maxBytes: number): Entry[] {
  const end = endWithin(entries, 0, entries.length, maxBytes);
  return end === entries.length ? entries : entries.slice(0, end);
}

/** Where the longest run of entries[start..end) within `maxBytes` ends (at least one entry). */
function endWithin(entries: Entry[], start: number, end: number, maxBytes: number): number {
  if (end - start <= 1 || maxBytes === Number.POSITIVE_INFINITY) return end;
  let total = entryBytes(entries[start]!);
  for (let i = start + 1; i < end; i++) {
    total += entryBytes(entries[i]!);
    if (total > maxBytes) return i;
  }
  return end;
}

function compactedError(index: number, firstIndex: number): LichenError {
  return new LichenError('Compacted', `raft log index ${index} is compacted (first index ${firstIndex})`, {
    index,
    firstIndex,
  });
}

/**
 * An in-memory Storage. The application mirrors its WAL into it: after persisting a Ready it calls
 * applySnapshot (if any), append(entries) and setHardState, then RawNode.advance().
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  /**
   * The membership to restart from. Normally the snapshot's; the application may record a newer one
   * with setConfState (the membership as of its applied index).
   */
  private confState: ConfState | undefined;
  /** ents[0] is a dummy entry holding the snapshot's index and term; real entries follow. */
  private ents: Entry[] = [{ term: 0, index: 0, type: 0, data: new Uint8Array(0) }];

  initialState(): { hardState: HardState; confState: ConfState } {
    const conf = this.confState ?? this.snap.metadata.conf;
    return {
      hardState: { ...this.hardState },
      confState: { voters: [...conf.voters], learners: [...conf.learners] },
    };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  /** Records the membership the node restarts with (must be the one as of `RaftConfig.applied`). */
  setConfState(conf: ConfState): void {
    this.confState = { voters: [...conf.voters], learners: [...conf.learners] };
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  term(index: number): number {
    const offset = this.ents[0]!.index;
    if (index < offset) throw compactedError(index, offset + 1);
    assert(index <= this.lastIndex(), `storage.term(${index}) beyond last index ${this.lastIndex()}`);
    return this.ents[index - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes = Number.POSITIVE_INFINITY): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw compactedError(lo, offset + 1);
    assert(hi <= this.lastIndex() + 1, `storage.entries hi ${hi} beyond last index ${this.lastIndex()}`);
    assert(lo <= hi, `storage.entries lo ${lo} > hi ${hi}`);
    // Bounded before copying: a follower far behind must not cost a copy of the whole log.
    return this.ents.slice(lo - offset, endWithin(this.ents, lo - offset, hi - offset, maxBytes));
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the whole log with the snapshot (entries after it are dropped, as raft requires). */
  applySnapshot(snap: Snapshot): void {
    if (snap.metadata.index <= this.snap.metadata.index) return;
    this.snap = snap;
    this.confState = undefined;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: 0, data: new Uint8Array(0) }];
  }

  /**
   * Makes a snapshot at `index` (which the application has applied) carrying `data`. Call compact()
   * afterwards to drop the entries it covers.
   */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    const offset = this.ents[0]!.index;
    if (index <= this.snap.metadata.index) return this.snap;
    assert(index <= this.lastIndex(), `snapshot index ${index} beyond last index ${this.lastIndex()}`);
    this.snap = {
      metadata: {
        index,
        term: this.ents[index - offset]!.term,
        conf: { voters: [...conf.voters], learners: [...conf.learners] },
      },
      data,
    };
    return this.snap;
  }

  /** Drops entries up to and including `index`; the application must have applied them. */
  compact(index: number): void {
    const offset = this.ents[0]!.index;
    if (index <= offset) return;
    assert(index <= this.lastIndex(), `compact ${index} beyond last index ${this.lastIndex()}`);
    const rest = this.ents.slice(index - offset);
    const head = rest[0]!;
    rest[0] = { term: head.term, index: head.index, type: 0, data: new Uint8Array(0) };
    this.ents = rest;
  }

  /**
   * Appends entries, first dropping any existing suffix that starts at the first new index (the new
   * entries come from the leader and replace a conflicting tail). Entries at or below the compaction
   * point are ignored.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    const fresh = entries[0]!.index < first ? entries.slice(first - entries[0]!.index) : entries;
    const at = fresh[0]!.index;
    assert(at <= this.lastIndex() + 1, `append leaves a gap: last ${this.lastIndex()}, appending ${at}`);
    // In place: copying the log on every append was quadratic (a fifth of a follower's CPU with
    // 100,000 entries kept between snapshots).
    const keep = at - this.ents[0]!.index;
    if (keep < this.ents.length) this.ents.length = keep;
    for (const entry of fresh) this.ents.push(entry);
  }
}
