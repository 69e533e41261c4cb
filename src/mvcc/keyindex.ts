// The in-memory key index, like etcd's treeIndex: for every key, the revisions at which it was
// written (puts and tombstones), oldest first. Values live in the engine under their revision.
//
// Why in memory and rebuilt on open (rather than a second persistent index in the engine):
// - every put then costs one engine write (the revision record) instead of three (record,
//   latest-pointer, history entry), and ranges walk a JS structure instead of decoding engine
//   keys;
// - memory stays bounded by the number of key versions, not by values: keys are Latin-1
//   strings (one char per byte, so string order is byte order) mapped to a number or a small
//   number array (see KeyRevisions); values stay in the engine;
// - the cost is startup: open scans every revision record once and sorts the keys once.
// Measured on this 2-core machine (1M keys of 13 B with 256 B values, lmdb): open 3.5 s (1.1 s of
// it the lmdb scan), a limit-100 range over the 1M-key prefix 27 ms (etcd semantics: count walks
// the whole range). A persistent index would open instantly but triple the writes per put; etcd
// makes the same choice as we do.
//
// Heap per key (scripts/bench-keyindex.ts, 1M keys of 8 B as in the load-1m benchmark,
// 2026-12-07): 70 bytes written once (its string 24, the map entry about 30, two slots of the
// sorted list 16), 174 written twice; it was 155 and 315 while every key had an array (64 bytes
// for [main, sub]) and chunks kept the slack of their splits.
//
// Keys are kept in a "sorted list of sorted chunks": inserting a new key splices one chunk of at
// most CHUNK_KEYS_MAX strings instead of a million-element array.
//
// The index also knows what a put needs of the key's newest version (its create revision,
// version and lease), so a put reads no record from the engine: see KeyRevisions.
import { lowerBound } from '../engine/sorted-chunks.js';
import { assert } from '../errors.js';

const CHUNK_KEYS_MAX = 1024;

/**
 * A key's revisions, in one of two forms:
 *
 * - a number, for a key with one revision that is a put, version 1 of the key (created at its own
 *   revision) with no lease: what every key of a bulk load is. `main` itself when sub is 0, and
 *   `-(main * SUB_SPAN + sub)` when sub is below SUB_SPAN (puts in a txn). A number in a V8 array
 *   or Map slot is a small integer held in the slot itself (below 2^31) or one heap number, where
 *   an array is a JSArray and its backing store: 64 bytes for [main, sub]. Appending a second
 *   revision turns it into an array (see KeyIndex.append).
 * - an array of revision pairs flattened: [main0, sub0, main1, sub1, ...], oldest first; a
 *   tombstone stores sub as -(sub+1). When the newest pair is a put that is not the first version
 *   of its key without a lease, three numbers follow the pairs: that version's [createRevision,
 *   version, lease] (so the array's length is odd). Without them the newest put is version 1,
 *   created at its own revision, with no lease. Compaction drops pairs from the front only, never
 *   the newest put, so it leaves these numbers true (and never touches a number: its one
 *   revision is a put).
 *
 * Read them through the functions below (latestOf, lastAtOrBelow with mainAt and subAt,
 * visibleAt, previousOf), which take either form.
 */
export type KeyRevisions = number | number[];

/**
 * Subs a number form holds besides 0: a txn's puts get subs 0, 1, 2, ... A power of two, so a
 * main below 2^21 with its sub stays a small integer; mains up to MAIN_IN_NUMBER_MAX keep their
 * sub exactly in a double.
 */
const SUB_SPAN = 1024;
/** The largest main a number form holds with a sub above 0: main * SUB_SPAN + sub stays an exact integer. */
const MAIN_IN_NUMBER_MAX = Math.floor(Number.MAX_SAFE_INTEGER / SUB_SPAN) - 1;

/** What the index keeps of a key's newest version (a StoredRecord has these fields). */
export interface KeyVersion {
  tombstone: boolean;
  createRevision: number;
  version: number;
  lease: number;
}

/** A key's newest version when it is live: its revision, create revision, version and lease. */
export interface LatestVersion extends Revision {
  createRevision: number;
  version: number;
  lease: number;
}

/** The numbers after the pairs, when present (see KeyRevisions). */
const LATEST_FIELDS = 3;

/** The number form of (main, sub), or undefined when the revision has none. */
function numberForm(main: number, sub: number): number | undefined {
  if (sub === 0) return main;
  if (sub < SUB_SPAN && main <= MAIN_IN_NUMBER_MAX) return -(main * SUB_SPAN + sub);
  return undefined;
}

function mainOfNumber(revs: number): number {
  return revs >= 0 ? revs : Math.floor(-revs / SUB_SPAN);
}

function subOfNumber(revs: number): number {
  return revs >= 0 ? 0 : -revs % SUB_SPAN;
}

/** The length of the revision pairs of an array (its length without the newest version's numbers). */
function pairsLength(revs: number[]): number {
  return revs.length % 2 === 0 ? revs.length : revs.length - LATEST_FIELDS;
}

/** Appends a revision and keeps the newest version's numbers after the pairs when they are needed. */
function appendTo(revs: number[], main: number, sub: number, version: KeyVersion): void {
  const fields = !version.tombstone && needsLatestFields(main, version);
  const encoded = version.tombstone ? -(sub + 1) : sub;
  if (revs.length % 2 === 0) {
    // Two pushes: V8 sizes a grown array by the length one push needs, so the pair alone leaves
    // room for the three numbers, where one push of five would reserve four slots more.
    revs.push(main, encoded);
    if (fields) revs.push(version.createRevision, version.version, version.lease);
    return;
  }
  // The previous newest version's numbers are overwritten in place (setting an array's length is
  // a runtime call; pop and push are not).
  const end = revs.length - LATEST_FIELDS;
  revs[end] = main;
  revs[end + 1] = encoded;
  if (fields) {
    revs[end + 2] = version.createRevision;
    revs.push(version.version, version.lease);
  } else {
    revs.pop();
  }
}

/** The array a number form becomes when a second revision comes: a literal has exactly its slots. */
function grownFrom(revs: number, main: number, sub: number, version: KeyVersion): number[] {
  const first = mainOfNumber(revs);
  const firstSub = subOfNumber(revs);
  if (version.tombstone) return [first, firstSub, main, -(sub + 1)];
  if (!needsLatestFields(main, version)) return [first, firstSub, main, sub];
  return [first, firstSub, main, sub, version.createRevision, version.version, version.lease];
}

function needsLatestFields(main: number, version: KeyVersion): boolean {
  return version.version !== 1 || version.createRevision !== main || version.lease !== 0;
}

/** A new key's revisions: the number form when it has one, else a literal, which has exactly its slots. */
function freshRevisions(main: number, sub: number, version: KeyVersion): KeyRevisions {
  if (version.tombstone) return [main, -(sub + 1)];
  if (needsLatestFields(main, version)) return [main, sub, version.createRevision, version.version, version.lease];
  return numberForm(main, sub) ?? [main, sub];
}

/** The key's newest version, or undefined when it has none or the newest is a tombstone. */
export function latestOf(revs: KeyRevisions | undefined): LatestVersion | undefined {
  if (revs === undefined) return undefined;
  if (typeof revs === 'number') {
    const main = mainOfNumber(revs);
    return { main, sub: subOfNumber(revs), createRevision: main, version: 1, lease: 0 };
  }
  const end = pairsLength(revs);
  if (end === 0) return undefined;
  const main = revs[end - 2]!;
  const sub = revs[end - 1]!;
  if (sub < 0) return undefined;
  if (end === revs.length) return { main, sub, createRevision: main, version: 1, lease: 0 };
  return { main, sub, createRevision: revs[end]!, version: revs[end + 1]!, lease: revs[end + 2]! };
}

/**
 * The lease of the key's newest version when that version is live, or -1 when the key has none
 * or the newest is a tombstone: what a delete needs of a key, without latestOf's object.
 */
export function liveLease(revs: KeyRevisions): number {
  if (typeof revs === 'number') return 0;
  const end = pairsLength(revs);
  if (end === 0 || revs[end - 1]! < 0) return -1;
  return end === revs.length ? 0 : revs[end + 2]!;
}

const TOMBSTONE: KeyVersion = { tombstone: true, createRevision: 0, version: 0, lease: 0 };

/**
 * Appends a tombstone at (main, sub) to a key's revisions as the index holds them (from get() or
 * scan()) and returns them: the same array, appended in place, or for a number form the array it
 * grows into, which the caller puts in its place (KeyIndex.update, KeyIndex.replace). A delete
 * already has the key's revisions in hand, so it skips append()'s lookup by a key string rebuilt
 * from the bytes (hashing a fresh string per key was 9% of a 50,000-key delete).
 */
export function appendTombstone(revs: KeyRevisions, main: number, sub: number): KeyRevisions {
  if (typeof revs === 'number') return grownFrom(revs, main, sub, TOMBSTONE);
  assert(pairsLength(revs) > 0, 'key index: a tombstone for a key it does not hold');
  appendTo(revs, main, sub, TOMBSTONE);
  return revs;
}

export interface Revision {
  main: number;
  sub: number;
}

export interface VisibleRevision extends Revision {
  tombstone: boolean;
}

/** A chunk of the sorted key list: keys and their revisions side by side. */
interface Chunk {
  keys: string[];
  revs: KeyRevisions[];
}

class SortedKeys {
  private chunks: Chunk[] = [];
  /**
   * Each chunk's last key, so finding a key's chunk reads one string per step of its binary
   * search where reading it through the chunk took three dependent loads (the chunk, its key
   * array, the key): in a million-key index each is a cache miss more often than not.
   */
  private lastKeys: string[] = [];

  /** Replaces the contents with already-sorted unique keys and their revisions. */
  load(keys: string[], revs: KeyRevisions[]): void {
    this.chunks = [];
    this.lastKeys = [];
    const step = CHUNK_KEYS_MAX / 2;
    for (let i = 0; i < keys.length; i += step) {
      const chunkKeys = keys.slice(i, i + step);
      this.chunks.push({ keys: chunkKeys, revs: revs.slice(i, i + step) });
      this.lastKeys.push(chunkKeys[chunkKeys.length - 1]!);
    }
  }

  /** The index of the first chunk whose last key is >= key, or the last chunk (there is one). */
  private chunkFor(key: string): number {
    return Math.min(lowerBound(this.lastKeys, key), this.chunks.length - 1);
  }

  insert(key: string, revs: KeyRevisions): void {
    if (this.chunks.length === 0) {
      this.chunks.push({ keys: [key], revs: [revs] });
      this.lastKeys.push(key);
      return;
    }
    const c = this.chunkFor(key);
    const chunk = this.chunks[c]!;
    const at = lowerBound(chunk.keys, key);
    assert(chunk.keys[at] !== key, 'key index: inserting a key twice');
    chunk.keys.splice(at, 0, key);
    chunk.revs.splice(at, 0, revs);
    if (at === chunk.keys.length - 1) this.lastKeys[c] = key;
    if (chunk.keys.length > CHUNK_KEYS_MAX) {
      // Both halves copied to arrays of exactly their length: splice(half) leaves the first half
      // in the grown backing store (room for about 1,500 keys), so chunks filled in key order (a
      // bulk load) held a third of their slots: 22 bytes per key of a million.
      const half = CHUNK_KEYS_MAX / 2;
      const { keys, revs: chunkRevs } = chunk;
      this.chunks.splice(c, 1, { keys: keys.slice(0, half), revs: chunkRevs.slice(0, half) }, { keys: keys.slice(half), revs: chunkRevs.slice(half) });
      this.lastKeys.splice(c, 1, keys[half - 1]!, keys[keys.length - 1]!);
    }
  }

  /** Replaces the revisions of a key the list holds (when its number form becomes an array). */
  replace(key: string, revs: KeyRevisions): void {
    const chunk = this.chunks[this.chunkFor(key)]!;
    const at = lowerBound(chunk.keys, key);
    assert(chunk.keys[at] === key, 'key index: replacing a missing key');
    chunk.revs[at] = revs;
  }

  remove(key: string): void {
    if (this.chunks.length === 0) return;
    const c = this.chunkFor(key);
    const chunk = this.chunks[c]!;
    const at = lowerBound(chunk.keys, key);
    if (chunk.keys[at] !== key) return;
    chunk.keys.splice(at, 1);
    chunk.revs.splice(at, 1);
    if (chunk.keys.length === 0) {
      this.chunks.splice(c, 1);
      this.lastKeys.splice(c, 1);
    } else if (at === chunk.keys.length) {
      this.lastKeys[c] = chunk.keys[at - 1]!;
    }
  }

  /**
   * Visits keys in [start, end) in order (end undefined: to the end) until visit returns false.
   * A callback rather than a generator: ranges over a million keys run several times faster.
   */
  scan(start: string, end: string | undefined, visit: (key: string, revs: KeyRevisions) => boolean | void): void {
    if (this.chunks.length === 0) return;
    for (let c = this.chunkFor(start), first = true; c < this.chunks.length; c++, first = false) {
      const { keys, revs } = this.chunks[c]!;
      for (let i = first ? lowerBound(keys, start) : 0; i < keys.length; i++) {
        const key = keys[i]!;
        if (end !== undefined && key >= end) return;
        if (visit(key, revs[i]!) === false) return;
      }
    }
  }

  /** scan() whose visit may return a key's new revisions, which then take its slot. */
  update(start: string, end: string | undefined, visit: (key: string, revs: KeyRevisions) => KeyRevisions | undefined): void {
    if (this.chunks.length === 0) return;
    for (let c = this.chunkFor(start), first = true; c < this.chunks.length; c++, first = false) {
      const { keys, revs } = this.chunks[c]!;
      for (let i = first ? lowerBound(keys, start) : 0; i < keys.length; i++) {
        const key = keys[i]!;
        if (end !== undefined && key >= end) return;
        const next = visit(key, revs[i]!);
        if (next !== undefined) revs[i] = next;
      }
    }
  }
}

export class KeyIndex {
  private readonly revisions = new Map<string, KeyRevisions>();
  private readonly sorted = new SortedKeys();

  get keyCount(): number {
    return this.revisions.size;
  }

  get(key: string): KeyRevisions | undefined {
    return this.revisions.get(key);
  }

  /** The key's newest version, or undefined when it has none or the newest is a tombstone. */
  latest(key: string): LatestVersion | undefined {
    return latestOf(this.revisions.get(key));
  }

  /** Appends a revision with what it wrote; revisions of one key are appended in increasing order. */
  append(key: string, main: number, sub: number, version: KeyVersion): void {
    const revs = this.revisions.get(key);
    if (revs === undefined) {
      const fresh = freshRevisions(main, sub, version);
      this.revisions.set(key, fresh);
      this.sorted.insert(key, fresh);
    } else if (typeof revs === 'number') {
      // Once per key: later revisions go into the array in place.
      const grown = grownFrom(revs, main, sub, version);
      this.revisions.set(key, grown);
      this.sorted.replace(key, grown);
    } else {
      appendTo(revs, main, sub, version);
    }
  }

  /** Appends without maintaining order (bulk load); call finishLoad() afterwards. */
  appendUnsorted(key: string, main: number, sub: number, version: KeyVersion): void {
    const revs = this.revisions.get(key);
    if (revs === undefined) this.revisions.set(key, freshRevisions(main, sub, version));
    else if (typeof revs === 'number') this.revisions.set(key, grownFrom(revs, main, sub, version));
    else appendTo(revs, main, sub, version);
  }

  finishLoad(): void {
    const keys = [...this.revisions.keys()].sort();
    const revs = keys.map((key) => {
      const grown = this.revisions.get(key)!;
      if (typeof grown === 'number' || grown.length <= 2 + LATEST_FIELDS) return grown;
      // Trim the spare capacity that push() reserved while loading.
      const exact = grown.slice();
      this.revisions.set(key, exact);
      return exact;
    });
    this.sorted.load(keys, revs);
  }

  /** Forgets every key (before a reload). */
  clear(): void {
    this.revisions.clear();
    this.sorted.load([], []);
  }

  /** Visits keys in [start, end) in byte order (end undefined: to the end) until visit returns false. */
  scan(start: string, end: string | undefined, visit: (key: string, revs: KeyRevisions) => boolean | void): void {
    this.sorted.scan(start, end, visit);
  }

  /**
   * Visits keys in [start, end) as scan() does; when visit returns revisions other than the ones
   * it was given (a number form grown into an array by appendTombstone), they replace the key's,
   * in the sorted list's slot at hand rather than by a second search of it per key.
   */
  update(start: string, end: string | undefined, visit: (key: string, revs: KeyRevisions) => KeyRevisions | undefined): void {
    this.sorted.update(start, end, (key, revs) => {
      const next = visit(key, revs);
      if (next === undefined || next === revs) return undefined;
      this.revisions.set(key, next);
      return next;
    });
  }

  /** Replaces the revisions of a key the index holds (see appendTombstone). */
  replace(key: string, revs: KeyRevisions): void {
    assert(this.revisions.has(key), 'key index: replacing a missing key');
    this.revisions.set(key, revs);
    this.sorted.replace(key, revs);
  }

  /**
   * Compacts every key at `revision`: drops all revisions older than the newest one at or below
   * `revision`, and that one too when it is a tombstone (as etcd does). Returns the dropped
   * revisions so the caller removes their records. A number form is one put, which compaction
   * keeps; an array left with one put of version 1 without a lease becomes its number form.
   */
  compact(revision: number, dropped: Revision[]): void {
    const emptied: string[] = [];
    for (const [key, revs] of this.revisions) {
      if (typeof revs === 'number') continue;
      const at = lastAtOrBelow(revs, revision);
      if (at < 0) continue;
      const keepFrom = revs[at + 1]! < 0 ? at + 2 : at;
      if (keepFrom === 0) continue;
      for (let i = 0; i < keepFrom; i += 2) dropped.push({ main: revs[i]!, sub: decodeSub(revs[i + 1]!) });
      revs.splice(0, keepFrom);
      if (pairsLength(revs) === 0) {
        emptied.push(key);
      } else if (revs.length === 2 && revs[1]! >= 0) {
        // One put left, version 1 without a lease (the key was deleted and put again): the
        // number form when it has one, as a reload would give.
        const number = numberForm(revs[0]!, revs[1]!);
        if (number !== undefined) {
          this.revisions.set(key, number);
          this.sorted.replace(key, number);
        }
      }
    }
    for (const key of emptied) {
      this.revisions.delete(key);
      this.sorted.remove(key);
    }
  }
}

export function decodeSub(encoded: number): number {
  return encoded < 0 ? -encoded - 1 : encoded;
}

/** Position (even, for mainAt and subAt) of the newest pair with main <= revision, or a negative number. */
export function lastAtOrBelow(revs: KeyRevisions, revision: number): number {
  if (typeof revs === 'number') return mainOfNumber(revs) <= revision ? 0 : -2;
  let lo = 0;
  let hi = pairsLength(revs) / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (revs[mid * 2]! <= revision) lo = mid + 1;
    else hi = mid;
  }
  return lo * 2 - 2;
}

/** The main revision of the pair at `at` (a position lastAtOrBelow gave). */
export function mainAt(revs: KeyRevisions, at: number): number {
  return typeof revs === 'number' ? mainOfNumber(revs) : revs[at]!;
}

/** The sub revision of the pair at `at`, as stored: -(sub+1) for a tombstone. */
export function subAt(revs: KeyRevisions, at: number): number {
  return typeof revs === 'number' ? subOfNumber(revs) : revs[at + 1]!;
}

/** The revision that holds the key's value at `revision`, or undefined when absent/deleted. */
export function visibleAt(revs: KeyRevisions | undefined, revision: number): Revision | undefined {
  if (revs === undefined) return undefined;
  const at = lastAtOrBelow(revs, revision);
  if (at < 0) return undefined;
  const sub = subAt(revs, at);
  if (sub < 0) return undefined;
  return { main: mainAt(revs, at), sub };
}

/** The newest revision strictly before (main, sub), tombstone or not. */
export function previousOf(revs: KeyRevisions, main: number, sub: number): VisibleRevision | undefined {
  if (typeof revs === 'number') {
    const m = mainOfNumber(revs);
    const s = subOfNumber(revs);
    return m < main || (m === main && s < sub) ? { main: m, sub: s, tombstone: false } : undefined;
  }
  for (let i = pairsLength(revs) - 2; i >= 0; i -= 2) {
    const m = revs[i]!;
    const s = decodeSub(revs[i + 1]!);
    if (m < main || (m === main && s < sub)) return { main: m, sub: s, tombstone: revs[i + 1]! < 0 };
  }
  return undefined;
}
