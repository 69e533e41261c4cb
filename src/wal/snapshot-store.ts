// Snapshot files: <dir>/<index>-<term>.snap (16 hex digits each, so names sort by index). Each file
// is one record (record.ts) of type Snapshot whose payload is the metadata followed by the data,
// so the CRC covers both. A save writes a temporary name, flushes it, renames it into place and
// flushes the directory: after a crash there is either the whole new file or none.
import fs from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { snapshotBytes, type Snapshot, type SnapshotFile, type SnapshotMetadata } from '../raft/types.js';
import { assert } from '../errors.js';
import { crc32cUpdate } from './crc32c.js';
import { Disk, type DiskOptions } from './disk.js';
import { WalCorruptError } from './errors.js';
import {
  PayloadError,
  RECORD_HEADER_BYTES,
  RecordType,
  decodeSnapshotPayload,
  encodeSnapshotHead,
  frameRecord,
  scanRecord,
} from './record.js';

/**
 * How many snapshot files to keep. At least two: the WAL marker is written after the new file is
 * durable, so until then the marker still names the previous snapshot.
 */
export const SNAPSHOTS_KEPT = 3;

/**
 * Bytes of snapshot data checksummed and written per event-loop turn. In one piece, a 32 MiB
 * snapshot held the member's event loop for ~115 ms (CRC ~30 ms, writeSync ~85 ms, measured here),
 * stalling every request; in slices the longest pause is a few milliseconds.
 */
const SLICE_BYTES = 1024 * 1024;

/** A snapshot read back whole into memory. */
export type LoadedSnapshot = Snapshot & { data: Uint8Array };

const SNAPSHOT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TEMP_SUFFIX = '.tmp';
const INCOMING_SUFFIX = '.incoming';
const hex16 = (n: number): string => n.toString(16).padStart(16, '0');
const fileName = (meta: Pick<SnapshotMetadata, 'index' | 'term'>): string => `${hex16(meta.index)}-${hex16(meta.term)}.snap`;

interface StoredFile {
  index: number;
  term: number;
  name: string;
}

export class SnapshotStore {
  private readonly disk: Disk;
  /** Saves run one at a time, so pruning never deletes the temporary file of a save in progress. */
  private saving: Promise<unknown> = Promise.resolve();
  /** Receptions started by this process, so that their files never share a name. */
  private receptions = 0;

  constructor(
    readonly dir: string,
    options: DiskOptions = {},
  ) {
    this.disk = new Disk(options);
  }

  /**
   * Writes the snapshot durably, then deletes all but the newest SNAPSHOTS_KEPT files. A snapshot
   * received into this store (receive()) is not written again: its file is flushed and renamed.
   */
  save(snapshot: Snapshot): Promise<void> {
    const run = this.saving.then(() => (snapshot.data instanceof ReceivedSnapshot ? this.adopt(snapshot.data, snapshot.metadata) : this.saveNow(snapshot)));
    this.saving = run.catch(() => undefined);
    return run;
  }

  /**
   * Starts receiving a snapshot's data from member `from`: the data is written as it arrives into
   * a file of this store's format, which becomes the store's snapshot if save() is later given it.
   * Files of receptions that never get there are removed by ReceivedSnapshot.discard, or when the
   * store is opened again.
   */
  receive(metadata: SnapshotMetadata, dataBytes: number, from: number): SnapshotReceiver {
    fs.mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, `${fileName(metadata)}.from-${from.toString(16)}-${++this.receptions}${INCOMING_SUFFIX}`);
    return new SnapshotReceiver(this, this.disk, path, metadata, dataBytes);
  }

  /** Removes what receptions cut short by a crash left behind. */
  removeIncoming(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) if (name.endsWith(INCOMING_SUFFIX)) fs.unlinkSync(join(this.dir, name));
  }

  private async adopt(received: ReceivedSnapshot, metadata: SnapshotMetadata): Promise<void> {
    assert(received.store === this, 'a received snapshot can only become a file of the store it was received into');
    assert(received.metadata.index === metadata.index && received.metadata.term === metadata.term, 'a received snapshot is saved under its own metadata');
    const fd = fs.openSync(received.path, 'r+');
    try {
      await this.disk.syncFile(fd, received.path);
    } finally {
      fs.closeSync(fd);
    }
    const path = join(this.dir, fileName(metadata));
    fs.renameSync(received.path, path);
    received.path = path;
    await this.disk.syncDir(this.dir);
    await this.prune();
  }

  private async saveNow(snapshot: Snapshot): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, fileName(snapshot.metadata));
    const temp = path + TEMP_SUFFIX;
    const head = encodeSnapshotHead(snapshot.metadata);
    const data = snapshotBytes(snapshot.data);
    const dataAt = RECORD_HEADER_BYTES + head.length;
    const fd = fs.openSync(temp, 'w');
    try {
      // The data first, a slice per turn; the record header, which holds the CRC of it all, last.
      let crc = crc32cUpdate(0, head);
      for (let at = 0; at < data.length; at += SLICE_BYTES) {
        const slice = data.subarray(at, Math.min(at + SLICE_BYTES, data.length));
        crc = crc32cUpdate(crc, slice);
        this.disk.writeAll(fd, slice, dataAt + at);
        await nextTurn();
      }
      const header = frameRecord(RecordType.Snapshot, head.length + data.length, crc);
      this.disk.writeAll(fd, header, 0);
      this.disk.writeAll(fd, head, header.length);
      await this.disk.syncFile(fd, temp);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, path);
    await this.disk.syncDir(this.dir);
    await this.prune();
  }

  /**
   * The snapshot named by `meta` (undefined if there is no such file), or without `meta` the newest
   * one (undefined if there is none). Throws WalCorruptError if the file fails its checksum.
   */
  async load(meta?: SnapshotMetadata): Promise<LoadedSnapshot | undefined> {
    const files = this.list();
    const file = meta
      ? files.find((f) => f.index === meta.index && f.term === meta.term)
      : files[files.length - 1];
    if (!file) return undefined;
    const path = join(this.dir, file.name);
    const buf = await fs.promises.readFile(path);
    const result = scanRecord(buf, 0);
    if (result.kind !== 'record' || result.type !== RecordType.Snapshot || result.end !== buf.length) {
      const reason =
        result.kind === 'record'
          ? `expected one snapshot record filling the file`
          : result.kind === 'incomplete'
            ? 'snapshot file is truncated'
            : 'snapshot checksum mismatch';
      throw new WalCorruptError(path, 0, reason);
    }
    let decoded: LoadedSnapshot;
    try {
      decoded = decodeSnapshotPayload(result.payload);
    } catch (error) {
      if (error instanceof PayloadError) throw new WalCorruptError(path, 0, error.message);
      throw error;
    }
    if (decoded.metadata.index !== file.index || decoded.metadata.term !== file.term) {
      throw new WalCorruptError(path, 0, `file holds snapshot ${decoded.metadata.index} (term ${decoded.metadata.term})`);
    }
    return decoded;
  }

  /** Metadata of the snapshot files present, oldest first. */
  async listMetadata(): Promise<Array<{ index: number; term: number }>> {
    return this.list().map(({ index, term }) => ({ index, term }));
  }

  private list(): StoredFile[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const files: StoredFile[] = [];
    for (const name of names) {
      const match = SNAPSHOT_NAME.exec(name);
      if (match) files.push({ index: parseInt(match[1]!, 16), term: parseInt(match[2]!, 16), name });
    }
    return files.sort((a, b) => a.index - b.index || a.term - b.term);
  }

  private async prune(): Promise<void> {
    let removed = false;
    for (const name of fs.readdirSync(this.dir)) {
      // Leftovers of saves cut short by a crash.
      if (name.endsWith(`.snap${TEMP_SUFFIX}`)) {
        fs.unlinkSync(join(this.dir, name));
        removed = true;
      }
    }
    const files = this.list();
    for (const file of files.slice(0, Math.max(0, files.length - SNAPSHOTS_KEPT))) {
      fs.unlinkSync(join(this.dir, file.name));
      removed = true;
    }
    if (removed) await this.disk.syncDir(this.dir);
  }
}

/**
 * Snapshot data arriving from a peer, written to its file as it comes (on the thread pool, so the
 * event loop keeps serving) and checksummed in order. The caller bounds what it hands over and
 * has not seen written yet (pendingBytes); nothing else is held in memory.
 */
export class SnapshotReceiver {
  /** Bytes handed to write() that are not in the file yet. */
  pendingBytes = 0;
  private readonly head: Buffer;
  private readonly fd: number;
  private crc: number;
  private received = 0;
  private writes: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly store: SnapshotStore,
    private readonly disk: Disk,
    private readonly path: string,
    private readonly metadata: SnapshotMetadata,
    private readonly dataBytes: number,
  ) {
    this.head = encodeSnapshotHead(metadata);
    this.crc = crc32cUpdate(0, this.head);
    this.fd = fs.openSync(path, 'w');
  }

  /** Queues `chunk` to be written after the ones before it; resolves once it is in the file. */
  write(chunk: Uint8Array): Promise<void> {
    assert(!this.closed && this.received + chunk.length <= this.dataBytes, 'snapshot receiver: more data than announced, or after the end');
    this.crc = crc32cUpdate(this.crc, chunk);
    const position = RECORD_HEADER_BYTES + this.head.length + this.received;
    this.received += chunk.length;
    this.pendingBytes += chunk.length;
    const written = this.writes.then(() => this.disk.writeAllAsync(this.fd, chunk, position)).finally(() => (this.pendingBytes -= chunk.length));
    this.writes = written.catch(() => undefined);
    return written;
  }

  /** Once every byte was written: the record header goes in front, and the file can be read. Not flushed: save() does that. */
  async finish(): Promise<ReceivedSnapshot> {
    assert(this.received === this.dataBytes, `snapshot receiver: ${this.received} of ${this.dataBytes} bytes received`);
    await this.writes;
    const header = frameRecord(RecordType.Snapshot, this.head.length + this.dataBytes, this.crc);
    await this.disk.writeAllAsync(this.fd, Buffer.concat([header, this.head]), 0);
    this.close();
    return new ReceivedSnapshot(this.store, this.path, this.metadata, RECORD_HEADER_BYTES + this.head.length, this.dataBytes);
  }

  /** Stops the reception and removes its file. */
  abort(): void {
    if (this.closed) return;
    this.close();
    void this.writes.then(() => fs.rmSync(this.path, { force: true }));
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    const fd = this.fd;
    void this.writes.then(() => fs.closeSync(fd));
  }
}

/** A received snapshot's data, read from its file in pieces; the file moves into the store when saved. */
export class ReceivedSnapshot implements SnapshotFile {
  constructor(
    readonly store: SnapshotStore,
    /** Where the file is: its reception name, then its name in the store once saved. */
    public path: string,
    readonly metadata: SnapshotMetadata,
    private readonly dataAt: number,
    readonly byteLength: number,
  ) {}

  read(offset: number, length: number): Uint8Array {
    const bytes = Buffer.allocUnsafe(Math.max(0, Math.min(length, this.byteLength - offset)));
    const fd = fs.openSync(this.path, 'r');
    try {
      let read = 0;
      while (read < bytes.length) {
        const n = fs.readSync(fd, bytes, read, bytes.length - read, this.dataAt + offset + read);
        assert(n > 0, `snapshot file ${this.path} is shorter than its record says`);
        read += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    return bytes;
  }

  /** Removes the file, unless it became the store's (a snapshot raft did not take, or one superseded). */
  discard(): void {
    if (this.path.endsWith(INCOMING_SUFFIX)) fs.rmSync(this.path, { force: true });
  }
}
