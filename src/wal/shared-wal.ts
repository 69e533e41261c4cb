// One write-ahead log for every raft group of a process. Each group gets a GroupLog, a view that
// writes its hard state, entries and snapshot markers as records tagged with its group id
// (record.ts: GroupBatch, GroupSnapshotMarker, GroupState), so a process flushes once for all its
// groups instead of once per group (see DESIGN.md, "Rule of the write path").
//
// Layout: <dir>/<seq>.wal (16 hex digits, so names sort in log order). Each segment starts with a
// SharedSegmentHeader record (magic, format, seq); then come group records in the order they were
// written. Segments are preallocated with zeros and a torn tail of the last one is cut off on open,
// as in wal.ts (same record format, same rules: see isTornTail in record.ts).
//
// Group commit. save() applies the update to the group's model (so checks see it at once) and
// queues its record. With one group attached the record is written and its fdatasync started
// inside the caller's turn, as wal.ts does (the server applies committed entries while its flush
// runs). With several groups, every record queued in the same synchronous turn (a store handling
// many groups' Readies in one pass) goes out at the end of the turn in one write and one
// fdatasync. Records queued while a flush is in flight go out together right after it.
//
// Truncation. A segment is deleted once no group needs anything in it: a group needs the segment
// of its latest hard state, of its latest snapshot marker, and every segment holding one of its
// entries above the index it released (releaseTo). An idle group would pin its old segments for
// ever (its entries sit there, and with no new writes it never snapshots), so when the log rolls
// over to a new segment, every group that alone keeps the oldest segment alive and holds little
// (walRewriteGroupBytesMax) has its whole live state (hard state, marker, the entries after it) rewritten
// into the new segment as one GroupState record, read back from the segments it needs. This is
// TiKV raft-engine's choice (it rewrites cold regions' entries when purging) rather than forcing
// idle groups to snapshot: a snapshot of a group is its whole state machine, while an idle group's
// live tail is usually a few small entries, and the rewrite needs nothing from the replica. A group
// with more live bytes than that snapshots soon by its own policy (walBytes counts its bytes), and
// then lets go of the segment itself.
//
// Removal. removeGroup writes a GroupRemoved record: on replay it voids everything the group wrote
// before it (a group created again later with the same id starts after it). The group's records
// then pin nothing, except that the removal record pins its own segment until the process says
// the group's other files are gone (forgetRemoved): a crash between the two finds the removal on
// open (removedGroupIds) and finishes it. Segments are deleted oldest first, so a removal record
// outlives every segment holding records it voids.
import fs from 'node:fs';
import { join } from 'node:path';
import type { Entry, HardState, SnapshotMetadata } from '../raft/types.js';
import { ErrorCode, LichenError, assert } from '../errors.js';
import { Disk, type DiskFaults, type DiskStats, type SyncEvent } from './disk.js';
import { WalCorruptError } from './errors.js';
import { LogModel, checkEntries } from './log-model.js';
import { SerialIo } from './serial-io.js';
import { walRewriteGroupBytesMax } from '../limits.js';
import {
  PayloadError,
  RecordType,
  decodeBatch,
  decodeGroupPayload,
  decodeGroupState,
  decodeSharedSegmentHeader,
  decodeSnapshotMarker,
  describeDamage,
  encodeBatch,
  encodeGroupPayload,
  encodeGroupState,
  encodeRecord,
  encodeSharedSegmentHeader,
  encodeSnapshotMarker,
  isTornTail,
  isZero,
  scanRecord,
  type GroupLogState,
} from './record.js';
import { SEGMENT_BYTES_DEFAULT, preallocate, writeRecords } from './wal.js';


export interface SharedWalOptions {
  dir: string;
  /** Roll over to a new segment when the current one would grow past this. Default 64 MiB. */
  segmentBytes?: number;
  /** See the file comment, "Truncation". Default walRewriteGroupBytesMax. */
  rewriteBytesMax?: number;
  /** Test-only slow disk: delay added before each fsync (used by fault tests). */
  syncDelayMs?: number;
  /** Test-only: skip fdatasync (unsafe). */
  noSync?: boolean;
  /** Called after every fsync (tests count them). */
  onSync?: (event: SyncEvent) => void;
  /** Test and fault-run only: a disk that runs out of space. */
  faults?: DiskFaults;
}

/** What recovery hands a group: its hard state, latest snapshot marker and the entries after it. */
export interface RecoveredGroup extends GroupLogState {
  /** Set when open cut off a torn record at the tail of the last segment (reported to every group). */
  repairedTail?: { file: string; offset: number; bytesDropped: number };
}

export interface GroupUpdate {
  hardState?: HardState;
  entries: Entry[];
  /** As WalUpdate.sync in wal.ts: false only for a commit-only hard state. Default true. */
  sync?: boolean;
}

interface Segment {
  seq: number;
  path: string;
  /** Bytes up to the end of the last record. */
  sizeBytes: number;
  /** Bytes in the file: the records, then preallocated zeros. */
  allocatedBytes: number;
}

/** What the log knows of one group, and where its records are. */
class GroupTrack {
  model = new LogModel(true);
  /** Whether a record with entries, a marker or a state of this group was seen (replay only). */
  started = false;
  /** Entries at or below it were released by the group (or are covered by its snapshot). */
  released = 0;
  /** Segment of the latest record carrying the hard state (0: none). */
  hardStateSeq = 0;
  /** Segment of the latest snapshot marker (0: none). */
  markerSeq = 0;
  /** Per segment: bytes of this group's records with entries, and the highest entry index among them. */
  readonly segments = new Map<number, { bytes: number; maxIndex: number }>();
  view: GroupLog | undefined;
  /** Set once attached: the model keeps terms only from then on, so attaching again reads the group back. */
  attachedBefore = false;
  /** Segment of the GroupRemoved record of a removed group whose files may still exist (0: not removed). */
  removedSeq = 0;

  /** The track of a group removed by a record in segment `seq`. */
  static removed(seq: number): GroupTrack {
    const track = new GroupTrack();
    track.removedSeq = seq;
    return track;
  }

  /** The oldest segment this group needs (Infinity: none). */
  neededSeq(): number {
    if (this.removedSeq > 0) return this.removedSeq;
    let needed = Infinity;
    if (this.hardStateSeq > 0) needed = this.hardStateSeq;
    if (this.markerSeq > 0) needed = Math.min(needed, this.markerSeq);
    for (const [seq, held] of this.segments) if (held.maxIndex > this.released) needed = Math.min(needed, seq);
    return needed;
  }

  liveBytes(): number {
    let bytes = 0;
    for (const held of this.segments.values()) if (held.maxIndex > this.released) bytes += held.bytes;
    return bytes;
  }

  release(index: number): void {
    this.released = Math.max(this.released, index);
    for (const [seq, held] of this.segments) if (held.maxIndex <= this.released) this.segments.delete(seq);
  }

  /** Notes where a record of this group went. */
  written(seq: number, bytes: number, hardState: boolean, maxIndex: number): void {
    if (hardState) this.hardStateSeq = seq;
    if (maxIndex > 0) {
      const held = this.segments.get(seq) ?? { bytes: 0, maxIndex: 0 };
      held.bytes += bytes;
      held.maxIndex = Math.max(held.maxIndex, maxIndex);
      this.segments.set(seq, held);
    }
  }

  /** Replays one record of this group (open, and reading a group back for a rewrite). */
  replay(seq: number, type: RecordType, payload: Buffer, bytes: number, where: string): void {
    switch (type) {
      case RecordType.GroupBatch: {
        const batch = decodeBatch(payload);
        const first = batch.entries[0];
        if (first && !this.started && first.index > this.model.lastIndex + 1) {
          // Its earlier entries were in released segments: a snapshot marker must cover them (checked at the end).
          this.model.startAt(first.index, this.model.hardState, undefined);
        }
        if (first) this.started = true;
        this.model.appendEntries(batch.entries, where);
        if (batch.hardState) this.model.setHardState(batch.hardState);
        this.written(seq, bytes, batch.hardState !== undefined, batch.entries[batch.entries.length - 1]?.index ?? 0);
        return;
      }
      case RecordType.GroupSnapshotMarker:
        this.started = true;
        if (this.model.applySnapshot(decodeSnapshotMarker(payload))) this.markerSeq = seq;
        return;
      case RecordType.GroupState: {
        this.reset(decodeGroupState(payload), where);
        this.started = true;
        this.segments.clear();
        this.written(seq, bytes, true, this.model.lastIndex);
        this.markerSeq = this.model.snapshot ? seq : 0;
        return;
      }
      default:
        throw new PayloadError(`unexpected record type ${type} for a group`);
    }
  }

  private reset(state: GroupLogState, where: string): void {
    this.model = new LogModel(true);
    this.model.startAt((state.snapshot?.index ?? 0) + 1, state.hardState, state.snapshot);
    this.model.appendEntries(state.entries, where);
  }
}

interface Queued {
  record: Buffer;
  sync: boolean;
  /** Called with the segment the record went into, once written. */
  written: (seq: number) => void;
  resolve: () => void;
  reject: (error: Error) => void;
}

const SEGMENT_NAME = /^([0-9a-f]{16})\.wal$/;
const TEMP_SUFFIX = '.tmp';
const hex16 = (n: number): string => n.toString(16).padStart(16, '0');
export const sharedSegmentFileName = (seq: number): string => `${hex16(seq)}.wal`;

export class SharedWal {
  private readonly disk: Disk;
  private readonly segmentBytes: number;
  private readonly rewriteBytesMax: number;
  private tailFd: number;
  private readonly tracks = new Map<number, GroupTrack>();
  private attached = 0;
  /** Records queued and not written yet, in call order. */
  private queued: Queued[] = [];
  private flushScheduled = false;
  /** The records of the flush queued behind the one in flight (records queued meanwhile join it). */
  private waiting: Queued[] | undefined;
  private readonly io = new SerialIo();
  private closed = false;
  /** Set by a roll-over: the next operation looks for groups to rewrite. */
  private rolledOver = false;

  private constructor(
    private readonly dir: string,
    options: SharedWalOptions,
    private readonly segments: Segment[],
    disk: Disk,
    private readonly repairedTail: RecoveredGroup['repairedTail'],
  ) {
    this.disk = disk;
    this.segmentBytes = options.segmentBytes ?? SEGMENT_BYTES_DEFAULT;
    this.rewriteBytesMax = options.rewriteBytesMax ?? walRewriteGroupBytesMax;
    assert(this.segmentBytes >= 1024, `wal: segmentBytes ${this.segmentBytes} is below 1024`);
    this.tailFd = fs.openSync(this.tail.path, 'r+');
  }

  /** Opens (creating if missing) the shared WAL in options.dir and replays every group's records. */
  static async open(options: SharedWalOptions): Promise<SharedWal> {
    const dir = options.dir;
    fs.mkdirSync(dir, { recursive: true });
    const disk = new Disk(options);
    const names = fs.readdirSync(dir);
    for (const name of names) {
      if (name.endsWith(`.wal${TEMP_SUFFIX}`)) fs.unlinkSync(join(dir, name));
    }
    const segments = listSegments(dir, names);
    const tracks = new Map<number, GroupTrack>();
    let repairedTail: RecoveredGroup['repairedTail'];
    if (segments.length === 0) segments.push(await createSegment(disk, dir, 1));
    else {
      for (let i = 0; i < segments.length; i++) {
        repairedTail ??= await replaySegment(disk, segments[i]!, i === segments.length - 1, tracks);
      }
    }
    for (const [groupId, track] of tracks) {
      if (track.removedSeq > 0) continue;
      const missing = track.model.missingBefore();
      if (missing !== undefined) {
        throw new WalCorruptError(
          segments[0]!.path,
          0,
          `group ${groupId}: entries from index ${missing} are in no segment and no snapshot covers them (snapshot ${track.model.snapshot?.index ?? 0})`,
        );
      }
      track.release(track.model.snapshot?.index ?? 0);
    }
    const wal = new SharedWal(dir, options, segments, disk, repairedTail);
    for (const [groupId, track] of tracks) wal.tracks.set(groupId, track);
    return wal;
  }

  /** The groups that have records in the log (and were not removed since). */
  groupIds(): number[] {
    return this.groupsWhere((track) => track.removedSeq === 0);
  }

  /** The groups removed whose other files the process has not yet said are gone (see forgetRemoved). */
  removedGroupIds(): number[] {
    return this.groupsWhere((track) => track.removedSeq > 0);
  }

  private groupsWhere(test: (track: GroupTrack) => boolean): number[] {
    const ids: number[] = [];
    for (const [groupId, track] of this.tracks) if (test(track)) ids.push(groupId);
    return ids.sort((a, b) => a - b);
  }

  /**
   * Removes group `groupId` (detached) from the log, durably: once this resolves, opening the log
   * again finds nothing of it, and its records no longer keep segments alive. The removal itself
   * is listed by removedGroupIds until forgetRemoved (see the file comment, "Removal").
   */
  removeGroup(groupId: number): Promise<void> {
    this.checkOpen();
    const track = this.tracks.get(groupId);
    assert(track?.view === undefined, `wal: group ${groupId} is attached; close its log before removing it`);
    const record = encodeRecord(RecordType.GroupRemoved, encodeGroupPayload(groupId, Buffer.alloc(0)));
    return this.submit(record, true, (seq) => this.tracks.set(groupId, GroupTrack.removed(seq)));
  }

  /** The removed group's other files are gone: its removal record stops pinning its segment. */
  forgetRemoved(groupId: number): Promise<void> {
    const track = this.tracks.get(groupId);
    if (track === undefined || track.removedSeq === 0) return Promise.resolve();
    this.tracks.delete(groupId);
    return this.enqueue(() => this.purge());
  }

  /**
   * The view of group `groupId` (one at a time), with what the log holds for it: a group never
   * written has an empty hard state, no snapshot and no entries.
   */
  attach(groupId: number): { log: GroupLog; recovered: RecoveredGroup } {
    this.checkOpen();
    let track = this.tracks.get(groupId);
    assert(track === undefined || track.removedSeq === 0, `wal: group ${groupId} was removed; forgetRemoved must come first`);
    if (!track) this.tracks.set(groupId, (track = new GroupTrack()));
    assert(track.view === undefined, `wal: group ${groupId} is already attached`);
    if (track.attachedBefore) {
      // Closed and opened again in this process: what it wrote is on disk (detach flushed it).
      assert(this.queued.length === 0 && this.waiting === undefined, `wal: group ${groupId} attached again before its records were written`);
      track.model = this.readGroups(new Set([groupId])).get(groupId)?.model ?? new LogModel(true);
    }
    track.attachedBefore = true;
    const entries = track.model.takeEntries();
    const recovered: RecoveredGroup = { hardState: track.model.hardState, entries };
    if (track.model.snapshot) recovered.snapshot = track.model.snapshot;
    if (this.repairedTail) recovered.repairedTail = this.repairedTail;
    // From now on the model keeps terms only (the replica's raft log holds the entries).
    const model = new LogModel(false);
    model.startAt(track.model.firstIndex, track.model.hardState, track.model.snapshot);
    if (entries.length > 0) model.appendEntries(entries, 'attach');
    track.model = model;
    track.view = new GroupLog(this, groupId);
    this.attached++;
    return { log: track.view, recovered };
  }

  /** Bytes in all segment files. */
  get sizeBytes(): number {
    let total = 0;
    for (const segment of this.segments) total += segment.sizeBytes;
    return total;
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  get stats(): Readonly<DiskStats> {
    return this.disk.stats;
  }

  /** Waits for queued operations, then closes the tail segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flushNow();
    this.closed = true;
    await this.io.close();
    fs.closeSync(this.tailFd);
  }

  // ---- What GroupLog calls --------------------------------------------------------------------

  /** @internal */
  saveGroup(groupId: number, update: GroupUpdate): Promise<void> {
    const { hardState, entries } = update;
    if (!hardState && entries.length === 0) return Promise.resolve();
    const sync = update.sync ?? true;
    assert(sync || entries.length === 0, 'wal save: entries must be flushed (sync: false is for a commit-only hard state)');
    const track = this.trackOf(groupId);
    checkEntries(track.model, entries);
    track.model.appendEntries(entries, 'wal save');
    if (hardState) track.model.setHardState(hardState);
    const payload = encodeBatch(hardState ? { hardState, entries } : { entries });
    const record = encodeRecord(RecordType.GroupBatch, encodeGroupPayload(groupId, payload));
    const maxIndex = entries[entries.length - 1]?.index ?? 0;
    return this.submit(record, sync, (seq) => track.written(seq, record.length, hardState !== undefined, maxIndex));
  }

  /** @internal */
  markGroup(groupId: number, meta: SnapshotMetadata): Promise<void> {
    const track = this.trackOf(groupId);
    if (!track.model.applySnapshot(meta)) return Promise.resolve(); // Not newer: replay would ignore it too.
    const record = encodeRecord(RecordType.GroupSnapshotMarker, encodeGroupPayload(groupId, encodeSnapshotMarker(meta)));
    return this.submit(record, true, (seq) => (track.markerSeq = seq));
  }

  /** @internal */
  releaseGroup(groupId: number, index: number): Promise<void> {
    const track = this.trackOf(groupId);
    const covered = track.model.snapshot?.index ?? 0;
    assert(index <= covered, `wal: group ${groupId} releaseTo(${index}) beyond the snapshot marker at ${covered}`);
    track.release(index);
    return this.enqueue(() => this.purge());
  }

  /** @internal */
  groupBytes(groupId: number): number {
    return this.tracks.get(groupId)?.liveBytes() ?? 0;
  }

  /** @internal */
  detach(groupId: number): Promise<void> {
    const track = this.tracks.get(groupId);
    if (track?.view) {
      track.view = undefined;
      this.attached--;
    }
    this.flushNow();
    return this.io.settled();
  }

  // ---- Writing --------------------------------------------------------------------------------

  private trackOf(groupId: number): GroupTrack {
    this.checkOpen();
    const track = this.tracks.get(groupId);
    assert(track?.view !== undefined, `wal: group ${groupId} is not attached`);
    return track;
  }

  private checkOpen(): void {
    if (this.closed) throw new LichenError(ErrorCode.Internal, 'wal is closed');
  }

  private submit(record: Buffer, sync: boolean, written: (seq: number) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ record, sync, written, resolve, reject });
      if (this.attached <= 1) this.flushNow();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => this.flushNow());
      }
    });
  }

  /** Starts (or queues behind the one in flight) a flush of everything queued so far. */
  private flushNow(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0) return;
    if (this.waiting) {
      this.waiting.push(...this.queued);
      this.queued = [];
      return;
    }
    const batch = (this.waiting = this.queued);
    this.queued = [];
    const flush = (): Promise<void> => {
      if (this.waiting === batch) this.waiting = undefined;
      return this.flush(batch);
    };
    this.enqueue(flush).catch((error: Error) => {
      for (const queued of batch) queued.reject(error);
    });
  }

  /** One write per segment touched (one in all but a roll-over), then one fdatasync. */
  private async flush(batch: Queued[]): Promise<void> {
    let run: Queued[] = [];
    let runBytes = 0;
    for (const queued of batch) {
      const tail = this.tail;
      if (tail.sizeBytes + runBytes > HEADER_RECORD_BYTES && tail.sizeBytes + runBytes + queued.record.length > this.segmentBytes) {
        if (run.length > 0) this.writeRun(run, runBytes);
        run = [];
        runBytes = 0;
        await this.rollOver();
      }
      run.push(queued);
      runBytes += queued.record.length;
    }
    if (run.length > 0) this.writeRun(run, runBytes);
    for (const queued of batch) if (!queued.sync) queued.resolve();
    if (batch.some((queued) => queued.sync)) await this.guard(() => this.disk.syncFile(this.tailFd, this.tail.path));
    for (const queued of batch) if (queued.sync) queued.resolve();
    if (this.rolledOver) {
      this.rolledOver = false;
      await this.rewriteIdleGroups();
      await this.purge();
    }
  }

  private writeRun(run: Queued[], runBytes: number): void {
    const segment = this.tail;
    const bytes = run.length === 1 ? run[0]!.record : Buffer.concat(run.map((queued) => queued.record), runBytes);
    const end = segment.sizeBytes + bytes.length;
    this.guardSync(() => {
      if (end > segment.allocatedBytes) segment.allocatedBytes = preallocate(this.disk, this.tailFd, segment.path, end, this.segmentBytes);
      writeRecords(this.disk, this.tailFd, segment.path, bytes, segment.sizeBytes);
    });
    segment.sizeBytes = end;
    for (const queued of run) queued.written(segment.seq);
  }

  private async rollOver(): Promise<void> {
    // What the old segment holds must be durable before records go to the next one.
    await this.guard(() => this.disk.syncFile(this.tailFd, this.tail.path));
    const segment = await this.guard(() => createSegment(this.disk, this.dir, this.tail.seq + 1));
    fs.ftruncateSync(this.tailFd, this.tail.sizeBytes);
    this.tail.allocatedBytes = this.tail.sizeBytes;
    fs.closeSync(this.tailFd);
    this.segments.push(segment);
    this.tailFd = fs.openSync(segment.path, 'r+');
    this.rolledOver = true;
  }

  /** See the file comment, "Truncation". */
  private async rewriteIdleGroups(): Promise<void> {
    const oldest = this.segments[0]!.seq;
    if (this.segments.length < 2) return;
    const chosen: number[] = [];
    for (const [groupId, track] of this.tracks) {
      if (track.removedSeq === 0 && track.neededSeq() === oldest && track.liveBytes() <= this.rewriteBytesMax) chosen.push(groupId);
    }
    if (chosen.length === 0) return;
    const states = this.readGroups(new Set(chosen));
    for (const groupId of chosen) assert(states.has(groupId), `wal: group ${groupId} has no record to read back`);
    // Straight into the new segment, as many as fit in it (the rest at the next roll-over: with
    // thousands of idle groups, one roll-over may not take them all).
    const run: Queued[] = [];
    let bytes = 0;
    for (const groupId of chosen) {
      const model = states.get(groupId)!.model;
      const lastIndex = model.lastIndex;
      const state: GroupLogState = { hardState: model.hardState, entries: model.takeEntries() };
      if (model.snapshot) state.snapshot = model.snapshot;
      const record = encodeRecord(RecordType.GroupState, encodeGroupPayload(groupId, encodeGroupState(state)));
      if (this.tail.sizeBytes + bytes + record.length > this.segmentBytes) break;
      bytes += record.length;
      const written = (seq: number): void => {
        const track = this.tracks.get(groupId)!;
        track.segments.clear();
        track.written(seq, record.length, true, lastIndex);
        track.markerSeq = state.snapshot ? seq : 0;
      };
      run.push({ record, sync: true, written, resolve: () => undefined, reject: () => undefined });
    }
    if (run.length === 0) return;
    this.writeRun(run, bytes);
    await this.guard(() => this.disk.syncFile(this.tailFd, this.tail.path));
  }

  /** Replays the records of `groupIds` from the segments on disk, as open does. */
  private readGroups(groupIds: Set<number>): Map<number, GroupTrack> {
    const tracks = new Map<number, GroupTrack>();
    for (const segment of this.segments) {
      const buf = fs.readFileSync(segment.path).subarray(0, segment.sizeBytes);
      forEachRecord(buf, segment, (offset, type, payload, bytes) => {
        if (offset > 0) replayRecord(tracks, segment, offset, type, payload, bytes, groupIds);
      });
    }
    return tracks;
  }

  /** Deletes the oldest segments no group needs (never the tail). */
  private async purge(): Promise<void> {
    let needed = this.tail.seq;
    for (const track of this.tracks.values()) needed = Math.min(needed, track.neededSeq());
    let released = 0;
    while (released < this.segments.length - 1 && this.segments[released]!.seq < needed) released++;
    if (released === 0) return;
    for (const segment of this.segments.splice(0, released)) {
      fs.unlinkSync(segment.path);
      for (const track of this.tracks.values()) track.segments.delete(segment.seq);
    }
    await this.guard(() => this.disk.syncDir(this.dir));
  }

  private get tail(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private enqueue(operation: () => Promise<void>): Promise<void> {
    return this.io.run(operation);
  }

  private guard<T>(io: () => Promise<T>): Promise<T> {
    return this.io.guard(io);
  }

  private guardSync(io: () => void): void {
    this.io.guardSync(io);
  }
}

/** One group's log in the shared WAL: the LogStore a replica is given (src/replica/storage.ts). */
export class GroupLog {
  constructor(
    private readonly wal: SharedWal,
    readonly groupId: number,
  ) {}

  save(update: GroupUpdate): Promise<void> {
    return this.wal.saveGroup(this.groupId, update);
  }

  saveSnapshotMarker(meta: SnapshotMetadata): Promise<void> {
    return this.wal.markGroup(this.groupId, meta);
  }

  /** Lets go of entries at or below `index`; segments go once no group needs them. */
  releaseTo(index: number): Promise<void> {
    return this.wal.releaseGroup(this.groupId, index);
  }

  /** Bytes of this group's records holding entries it has not released. */
  get sizeBytes(): number {
    return this.wal.groupBytes(this.groupId);
  }

  /** Detaches the group once its records are written; the shared log stays open for the others. */
  close(): Promise<void> {
    return this.wal.detach(this.groupId);
  }
}

/** Every SharedSegmentHeader record has the same size (13-byte record header, 16-byte payload). */
const HEADER_RECORD_BYTES = encodeRecord(RecordType.SharedSegmentHeader, encodeSharedSegmentHeader(1)).length;

function listSegments(dir: string, names: string[]): Segment[] {
  const segments: Segment[] = [];
  for (const name of names) {
    const match = SEGMENT_NAME.exec(name);
    if (!match) {
      if (name.endsWith('.wal')) throw new WalCorruptError(join(dir, name), 0, 'not a segment of a shared WAL (a WAL written by lichen 0.1 is upgraded when its member starts)');
      continue;
    }
    const path = join(dir, name);
    const fileBytes = fs.statSync(path).size;
    segments.push({ seq: parseInt(match[1]!, 16), path, sizeBytes: fileBytes, allocatedBytes: fileBytes });
  }
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    if (segments[i]!.seq !== segments[i - 1]!.seq + 1) throw new WalCorruptError(segments[i]!.path, 0, `segment ${segments[i - 1]!.seq + 1} is missing`);
  }
  return segments;
}

/** A new segment under a temporary name, flushed, renamed, directory flushed: a crash leaves none or a whole header. */
async function createSegment(disk: Disk, dir: string, seq: number): Promise<Segment> {
  const header = encodeRecord(RecordType.SharedSegmentHeader, encodeSharedSegmentHeader(seq));
  const path = join(dir, sharedSegmentFileName(seq));
  const temp = path + TEMP_SUFFIX;
  const fd = fs.openSync(temp, 'w');
  try {
    disk.writeAll(fd, temp, header, 0);
    await disk.syncFile(fd, temp);
  } catch (error) {
    // A full disk: the half-made segment goes now rather than hold space until the next open.
    fs.rmSync(temp, { force: true });
    throw error;
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, path);
  await disk.syncDir(dir);
  return { seq, path, sizeBytes: header.length, allocatedBytes: header.length };
}

/**
 * Calls `visit` for each record of a segment's bytes until the end, zeros (preallocated space) or
 * a damaged record; returns the offset where it stopped and what stopped it.
 */
function forEachRecord(
  buf: Buffer,
  segment: Segment,
  visit: (offset: number, type: RecordType, payload: Buffer, bytes: number) => void,
): { offset: number; damage?: Exclude<ReturnType<typeof scanRecord>, { kind: 'record' }> } {
  let offset = 0;
  while (offset < buf.length) {
    if (offset > 0 && isZero(buf, offset, buf.length)) return { offset };
    const result = scanRecord(buf, offset);
    if (result.kind !== 'record') return { offset, damage: result };
    try {
      if (offset === 0) {
        if (result.type !== RecordType.SharedSegmentHeader) throw new PayloadError('segment does not start with a header');
        const { seq } = decodeSharedSegmentHeader(result.payload);
        if (seq !== segment.seq) throw new PayloadError(`header says segment ${seq}, the file name disagrees`);
      }
      visit(offset, result.type, result.payload, result.end - offset);
    } catch (error) {
      if (error instanceof PayloadError) throw new WalCorruptError(segment.path, offset, error.message);
      throw error;
    }
    offset = result.end;
  }
  return { offset };
}

/** Replays one group record into its group's track (only for `only`'s groups when given). */
function replayRecord(tracks: Map<number, GroupTrack>, segment: Segment, offset: number, type: RecordType, payload: Buffer, bytes: number, only?: Set<number>): void {
  const { groupId, rest } = decodeGroupPayload(payload);
  if (only && !only.has(groupId)) return;
  if (type === RecordType.GroupRemoved) {
    if (rest.length > 0) throw new PayloadError('GroupRemoved record with a payload');
    tracks.set(groupId, GroupTrack.removed(segment.seq));
    return;
  }
  let track = tracks.get(groupId);
  // A group created again after its removal starts from nothing.
  if (!track || track.removedSeq > 0) tracks.set(groupId, (track = new GroupTrack()));
  track.replay(segment.seq, type, rest, bytes, `${segment.path} at byte offset ${offset}`);
}

/** Replays one segment into the groups' tracks; repairs (and returns) a torn tail of the last segment. */
async function replaySegment(disk: Disk, segment: Segment, isLast: boolean, tracks: Map<number, GroupTrack>): Promise<RecoveredGroup['repairedTail']> {
  const buf = fs.readFileSync(segment.path);
  const stop = forEachRecord(buf, segment, (offset, type, payload, bytes) => {
    if (offset > 0) replayRecord(tracks, segment, offset, type, payload, bytes);
  });
  segment.sizeBytes = segment.allocatedBytes = stop.offset;
  if (!stop.damage && buf.length > 0) {
    segment.allocatedBytes = buf.length;
    return undefined;
  }
  if (!isLast || (stop.damage && !isTornTail(buf, stop.offset, stop.damage))) {
    throw new WalCorruptError(segment.path, stop.offset, stop.damage ? describeDamage(stop.damage) : 'empty segment');
  }
  // A torn tail: cut it off (and write the header again if even that was torn).
  const fd = fs.openSync(segment.path, 'r+');
  try {
    fs.ftruncateSync(fd, stop.offset);
    if (stop.offset === 0) {
      const header = encodeRecord(RecordType.SharedSegmentHeader, encodeSharedSegmentHeader(segment.seq));
      disk.writeAll(fd, segment.path, header, 0);
      segment.sizeBytes = segment.allocatedBytes = header.length;
    }
    await disk.syncFile(fd, segment.path);
  } finally {
    fs.closeSync(fd);
  }
  const bytesDropped = buf.length - stop.offset;
  return bytesDropped > 0 ? { file: segment.path, offset: stop.offset, bytesDropped } : undefined;
}
