// The segmented write-ahead log for one raft group: hard state and entries, written before the
// messages of the same Ready are sent (see DESIGN.md, "Rule of the write path").
//
// Layout: <dir>/<seq>-<nextIndex>.wal, both numbers as 16 hex digits, so names sort in log order.
// Each segment starts with a SegmentHeader record (its seq, the index its first entry should have,
// and the hard state and snapshot marker current when it was created), which lets replay start at
// any segment once older ones are released. Then come records (see record.ts): one Batch per
// save(), and SnapshotMarker records.
//
// One save() is one Batch record: one write, one fdatasync (group commit). Being one record also
// makes a Ready all-or-nothing on disk: a crash leaves either the whole batch or a torn tail.
//
// Opening replays every segment. A damaged record at the very end of the last segment is an
// unacknowledged write cut short by a crash (a torn tail): it is cut off and reported. Damage
// anywhere else would lose acknowledged data, so open throws WalCorruptError instead.
//
// Segments are preallocated: zeros are written ahead of the records (PREALLOCATE_BYTES at a
// time), so that most saves overwrite blocks the file already has. Their fdatasync then changes
// no file size and no extent, so it flushes only data: no inode write (this machine's ext4 has no
// journal; a journaling ext4 would otherwise commit its journal). Measured here: 0.10 instead of
// 0.15 ms per fdatasync, and 6% more single-client puts. Replay reads zeros after the last record
// as unused space.
import fs from 'node:fs';
import { join } from 'node:path';
import type { Entry, HardState, SnapshotMetadata } from '../raft/types.js';
import { assert } from '../errors.js';
import { Disk, type DiskFaults, type DiskStats, type SyncEvent } from './disk.js';
import { WalCorruptError } from './errors.js';
import { LogModel, checkEntries } from './log-model.js';
import { SerialIo } from './serial-io.js';
import {
  PayloadError,
  RECORD_HEADER_BYTES,
  RecordType,
  decodeBatch,
  decodeSegmentHeader,
  decodeSnapshotMarker,
  describeDamage,
  encodeBatch,
  encodeRecord,
  encodeSegmentHeader,
  encodeSnapshotMarker,
  isTornTail,
  isZero,
  scanRecord,
} from './record.js';

export const SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Zeros written ahead of the records whenever a save would reach the end of the file. */
export const PREALLOCATE_BYTES = 1024 * 1024;
const ZEROS = Buffer.alloc(64 * 1024);

export interface WalOptions {
  dir: string;
  /** Roll over to a new segment when the current one would grow past this. Default 64 MiB. */
  segmentBytes?: number;
  /** Test-only slow disk: delay added before each fsync (used by fault tests). */
  syncDelayMs?: number;
  /** Test-only: skip fdatasync (unsafe). */
  noSync?: boolean;
  /** Called after every fsync (tests count them). */
  onSync?: (event: SyncEvent) => void;
  /** Test and fault-run only: a disk that runs out of space. */
  faults?: DiskFaults;
}

export interface WalState {
  hardState: HardState;
  /** The latest snapshot marker. */
  snapshot?: SnapshotMetadata;
  /** Entries after the snapshot, in order, conflicts already resolved. */
  entries: Entry[];
  /** Set when open cut off a torn record at the tail of the last segment. */
  repairedTail?: { file: string; offset: number; bytesDropped: number };
}

export interface WalUpdate {
  hardState?: HardState;
  entries: Entry[];
  /**
   * Whether the save must be flushed (fdatasync) before it resolves; default true. Raft's Ready
   * says when a flush is needed (`mustSync`): a save that only moves the commit index may skip
   * it. The record is still written, so replay sees it whenever it reached the disk. Losing it in
   * a machine crash is harmless: the commit index is only a lower bound that the leader teaches
   * again, and the state machine records its own applied index, so nothing acknowledged depends
   * on this record. Entries, term and vote are always flushed (pass false only without them).
   */
  sync?: boolean;
}

interface Segment {
  seq: number;
  /** lastIndex + 1 when the segment was created (also in its name and header). */
  nextIndex: number;
  path: string;
  /** Bytes up to the end of the last record. */
  sizeBytes: number;
  /** Bytes in the file: the records, then preallocated zeros. */
  allocatedBytes: number;
  /** Bytes of the header record at the start (0 until replay has read it). */
  headerBytes: number;
  /** The highest entry index written into this segment (0 if none). */
  maxEntryIndex: number;
}

const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const TEMP_SUFFIX = '.tmp';

const hex16 = (n: number): string => n.toString(16).padStart(16, '0');
export const segmentFileName = (seq: number, nextIndex: number): string => `${hex16(seq)}-${hex16(nextIndex)}.wal`;

export class Wal {
  private readonly disk: Disk;
  private readonly segmentBytes: number;
  private tailFd: number;
  private readonly io = new SerialIo();
  private closed = false;

  private constructor(
    private readonly dir: string,
    options: WalOptions,
    private readonly model: LogModel,
    private readonly segments: Segment[],
    disk: Disk,
  ) {
    this.disk = disk;
    this.segmentBytes = options.segmentBytes ?? SEGMENT_BYTES_DEFAULT;
    assert(this.segmentBytes >= 1024, `wal: segmentBytes ${this.segmentBytes} is below 1024`);
    this.tailFd = fs.openSync(this.tail.path, 'r+');
  }

  /** Opens (creating if missing) the WAL in options.dir and replays it. */
  static async open(options: WalOptions): Promise<{ wal: Wal; state: WalState }> {
    const dir = options.dir;
    fs.mkdirSync(dir, { recursive: true });
    const disk = new Disk(options);
    const names = fs.readdirSync(dir);
    for (const name of names) {
      // A segment that was being created when we crashed; its content is in no acknowledged write.
      if (name.endsWith(`.wal${TEMP_SUFFIX}`)) fs.unlinkSync(join(dir, name));
    }
    const segments = listSegments(dir, names);
    const model = new LogModel(true);
    let repairedTail: WalState['repairedTail'];
    if (segments.length === 0) {
      segments.push(await createSegment(disk, dir, 1, model));
    } else {
      for (let i = 0; i < segments.length; i++) {
        const repaired = await replaySegment(disk, segments[i]!, i === 0, i === segments.length - 1, model);
        repairedTail ??= repaired;
      }
      const missing = model.missingBefore();
      if (missing !== undefined) {
        throw new WalCorruptError(
          segments[0]!.path,
          0,
          `entries from index ${missing} are in no segment and no snapshot covers them (snapshot ${model.snapshot?.index ?? 0})`,
        );
      }
    }
    const entries = model.takeEntries();
    const wal = new Wal(dir, options, model, segments, disk);
    const state: WalState = { hardState: model.hardState, entries };
    if (model.snapshot) state.snapshot = model.snapshot;
    if (repairedTail) state.repairedTail = repairedTail;
    return { wal, state };
  }

  get lastIndex(): number {
    return this.model.lastIndex;
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

  /** Counters of writes and flushes, for tests and metrics. */
  get stats(): Readonly<DiskStats> {
    return this.disk.stats;
  }

  private get tail(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /**
   * Persists one Ready's hard state and entries with a single write and a single fdatasync.
   * Entries at or below lastIndex replace that suffix of the log (truncation on conflict); the
   * batch records it implicitly by its first index, and replay applies the same rule.
   */
  save(update: WalUpdate): Promise<void> {
    return this.enqueue(async () => {
      const { hardState, entries } = update;
      if (!hardState && entries.length === 0) return;
      const sync = update.sync ?? true;
      assert(sync || entries.length === 0, 'wal save: entries must be flushed (sync: false is for a commit-only hard state)');
      checkEntries(this.model, entries);
      const record = encodeRecord(RecordType.Batch, encodeBatch(hardState ? { hardState, entries } : { entries }));
      await this.append(record, sync);
      if (hardState) this.model.setHardState(hardState);
      this.model.appendEntries(entries, 'wal save');
      if (entries.length > 0) {
        const tail = this.tail;
        tail.maxEntryIndex = Math.max(tail.maxEntryIndex, entries[entries.length - 1]!.index);
      }
    });
  }

  /** Records that a snapshot up to meta.index is durable (call after the snapshot file is). */
  saveSnapshotMarker(meta: SnapshotMetadata): Promise<void> {
    return this.enqueue(async () => {
      const current = this.model.snapshot;
      if (current && meta.index <= current.index) return; // Not newer: replay would ignore it too.
      await this.append(encodeRecord(RecordType.SnapshotMarker, encodeSnapshotMarker(meta)), true);
      this.model.applySnapshot(meta);
    });
  }

  /**
   * Deletes whole segments, oldest first, whose entries all sit at or below `index` (which must
   * be covered by the snapshot marker). The live tail segment is never deleted.
   */
  releaseTo(index: number): Promise<void> {
    return this.enqueue(async () => {
      const covered = this.model.snapshot?.index ?? 0;
      assert(index <= covered, `wal: releaseTo(${index}) beyond the snapshot marker at ${covered}`);
      let released = 0;
      while (this.segments.length - released > 1) {
        const segment = this.segments[released]!;
        const next = this.segments[released + 1]!;
        // The next segment starts after lastIndex as it was then; entries up to there may live
        // in this segment or earlier ones, so all of them must be covered as well.
        if (Math.max(segment.maxEntryIndex, next.nextIndex - 1) > index) break;
        released++;
      }
      if (released === 0) return;
      for (const segment of this.segments.splice(0, released)) fs.unlinkSync(segment.path);
      await this.disk.syncDir(this.dir);
    });
  }

  /** Waits for queued operations, then closes the tail segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.io.close();
    fs.closeSync(this.tailFd);
  }

  /** Runs operations one at a time, in call order; a failed write or flush makes the WAL unusable. */
  private enqueue(operation: () => Promise<void>): Promise<void> {
    return this.io.run(operation);
  }

  private append(record: Buffer, sync: boolean): Promise<void> {
    return this.io.guard(async () => {
      const tail = this.tail;
      if (tail.sizeBytes > tail.headerBytes && tail.sizeBytes + record.length > this.segmentBytes) {
        await this.rollOver();
      }
      const segment = this.tail;
      const end = segment.sizeBytes + record.length;
      if (end > segment.allocatedBytes) segment.allocatedBytes = preallocate(this.disk, this.tailFd, segment.path, end, this.segmentBytes);
      writeRecords(this.disk, this.tailFd, segment.path, record, segment.sizeBytes);
      segment.sizeBytes = end;
      if (sync) await this.disk.syncFile(this.tailFd, segment.path);
    });
  }

  private async rollOver(): Promise<void> {
    const segment = await createSegment(this.disk, this.dir, this.tail.seq + 1, this.model);
    // The old segment's unused zeros go (not flushed: if the cut is lost, replay skips them).
    fs.ftruncateSync(this.tailFd, this.tail.sizeBytes);
    this.tail.allocatedBytes = this.tail.sizeBytes;
    fs.closeSync(this.tailFd);
    this.segments.push(segment);
    this.tailFd = fs.openSync(segment.path, 'r+');
  }
}

/**
 * Extends a tail segment with zeros up to PREALLOCATE_BYTES past `end` (where the record about to
 * be written ends), within the segment size unless the record alone exceeds it; returns the bytes
 * the file then has. The save's own fdatasync makes them durable.
 */
export function preallocate(disk: Disk, fd: number, path: string, end: number, segmentBytes: number): number {
  const target = Math.max(end, Math.min(end + PREALLOCATE_BYTES, segmentBytes));
  for (let at = end; at < target; at += ZEROS.length) disk.writeAll(fd, path, ZEROS.subarray(0, Math.min(ZEROS.length, target - at)), at);
  return target;
}

/**
 * Writes records at `position` (the end of the last whole record) of a tail segment. The space is
 * preallocated, so a full disk fails the preallocation, not this; but a copy-on-write file system
 * needs new blocks even to overwrite, and may stop part way. Then the file is cut back to
 * `position` (truncating needs no space): a record cut short in the middle of a sector, followed
 * by zeros, would not pass for a torn tail on open (record.ts, isTornTail), and the WAL must open
 * once space returns. The write itself still fails, and the WAL with it (serial-io.ts).
 */
export function writeRecords(disk: Disk, fd: number, path: string, bytes: Uint8Array, position: number): void {
  try {
    disk.writeAll(fd, path, bytes, position);
  } catch (error) {
    try {
      fs.ftruncateSync(fd, position);
    } catch {
      // The write's own error is the one to report; open() judges whatever is left.
    }
    throw error;
  }
}

function listSegments(dir: string, names: string[]): Segment[] {
  const segments: Segment[] = [];
  for (const name of names) {
    const match = SEGMENT_NAME.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    const fileBytes = fs.statSync(path).size;
    segments.push({
      seq: parseInt(match[1]!, 16),
      nextIndex: parseInt(match[2]!, 16),
      path,
      sizeBytes: fileBytes,
      allocatedBytes: fileBytes,
      headerBytes: 0,
      maxEntryIndex: 0,
    });
  }
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    if (segments[i]!.seq !== segments[i - 1]!.seq + 1) {
      throw new WalCorruptError(segments[i]!.path, 0, `segment ${segments[i - 1]!.seq + 1} is missing`);
    }
  }
  return segments;
}

/**
 * Writes a new segment under a temporary name, flushes it, renames it into place and flushes the
 * directory: a crash leaves either no segment or a complete header.
 */
async function createSegment(disk: Disk, dir: string, seq: number, model: LogModel): Promise<Segment> {
  const nextIndex = model.lastIndex + 1;
  const header = encodeRecord(
    RecordType.SegmentHeader,
    encodeSegmentHeader(
      model.snapshot
        ? { seq, nextIndex, hardState: model.hardState, snapshot: model.snapshot }
        : { seq, nextIndex, hardState: model.hardState },
    ),
  );
  const path = join(dir, segmentFileName(seq, nextIndex));
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
  return { seq, nextIndex, path, sizeBytes: header.length, allocatedBytes: header.length, headerBytes: header.length, maxEntryIndex: 0 };
}

/** Replays one segment into the model; repairs (and returns) a torn tail of the last segment. */
async function replaySegment(
  disk: Disk,
  segment: Segment,
  isFirst: boolean,
  isLast: boolean,
  model: LogModel,
): Promise<WalState['repairedTail']> {
  const buf = fs.readFileSync(segment.path);
  let offset = 0;
  while (offset < buf.length) {
    if (offset > 0 && isZero(buf, offset, buf.length)) {
      // Preallocated space after the last record (or a write whose data never reached the disk).
      segment.sizeBytes = offset;
      return undefined;
    }
    const result = scanRecord(buf, offset);
    if (result.kind !== 'record') {
      if (isLast && isTornTail(buf, offset, result)) {
        return await repairTail(disk, segment, offset, buf.length - offset, isFirst, model);
      }
      throw new WalCorruptError(segment.path, offset, describeDamage(result));
    }
    try {
      applyRecord(segment, offset, result.type, result.payload, isFirst, model);
    } catch (error) {
      if (error instanceof PayloadError) throw new WalCorruptError(segment.path, offset, error.message);
      throw error;
    }
    offset = result.end;
  }
  if (buf.length === 0) {
    // Only possible if the file system lost the content of a renamed segment; treat as torn.
    if (isLast) return await repairTail(disk, segment, 0, 0, isFirst, model);
    throw new WalCorruptError(segment.path, 0, 'empty segment');
  }
  return undefined;
}

function applyRecord(
  segment: Segment,
  offset: number,
  type: RecordType,
  payload: Buffer,
  isFirst: boolean,
  model: LogModel,
): void {
  const where = `${segment.path} at byte offset ${offset}`;
  if (offset === 0) {
    if (type !== RecordType.SegmentHeader) throw new WalCorruptError(segment.path, 0, 'segment does not start with a header');
    const header = decodeSegmentHeader(payload);
    if (header.seq !== segment.seq || header.nextIndex !== segment.nextIndex) {
      throw new WalCorruptError(
        segment.path,
        0,
        `header says segment ${header.seq} starting at index ${header.nextIndex}, the file name disagrees`,
      );
    }
    segment.headerBytes = payload.length + RECORD_HEADER_BYTES;
    if (isFirst) model.startAt(header.nextIndex, header.hardState, header.snapshot);
    else {
      assert(
        header.nextIndex === model.lastIndex + 1,
        `${where}: segment starts at index ${header.nextIndex} but the log before it ends at ${model.lastIndex}`,
      );
    }
    return;
  }
  switch (type) {
    case RecordType.Batch: {
      const batch = decodeBatch(payload);
      model.appendEntries(batch.entries, where);
      if (batch.hardState) model.setHardState(batch.hardState);
      const last = batch.entries[batch.entries.length - 1];
      if (last) segment.maxEntryIndex = Math.max(segment.maxEntryIndex, last.index);
      return;
    }
    case RecordType.SnapshotMarker:
      model.applySnapshot(decodeSnapshotMarker(payload));
      return;
    default:
      throw new WalCorruptError(segment.path, offset, `unexpected record type ${type} inside a segment`);
  }
}

async function repairTail(
  disk: Disk,
  segment: Segment,
  offset: number,
  bytesDropped: number,
  isFirst: boolean,
  model: LogModel,
): Promise<WalState['repairedTail']> {
  const fd = fs.openSync(segment.path, 'r+');
  let sizeBytes = offset;
  try {
    fs.ftruncateSync(fd, offset);
    if (offset === 0) {
      // Even the header was torn: write it again from what the name and the log before it say.
      if (isFirst) model.startAt(segment.nextIndex, model.hardState, model.snapshot);
      assert(segment.nextIndex === model.lastIndex + 1, `${segment.path}: torn segment does not follow the log`);
      const header = encodeRecord(
        RecordType.SegmentHeader,
        encodeSegmentHeader(
          model.snapshot
            ? { seq: segment.seq, nextIndex: segment.nextIndex, hardState: model.hardState, snapshot: model.snapshot }
            : { seq: segment.seq, nextIndex: segment.nextIndex, hardState: model.hardState },
        ),
      );
      disk.writeAll(fd, segment.path, header, 0);
      sizeBytes = segment.headerBytes = header.length;
    }
    await disk.syncFile(fd, segment.path);
  } finally {
    fs.closeSync(fd);
  }
  segment.sizeBytes = segment.allocatedBytes = sizeBytes;
  return bytesDropped > 0 ? { file: segment.path, offset, bytesDropped } : undefined;
}
