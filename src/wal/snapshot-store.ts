// Snapshot files: <dir>/<index>-<term>.snap (16 hex digits each, so names sort by index). Each file
// is one record (record.ts) of type Snapshot whose payload is the metadata followed by the data,
// so the CRC covers both. A save writes a temporary name, flushes it, renames it into place and
// flushes the directory: after a crash there is either the whole new file or none.
import fs from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { readSnapshotData, snapshotBytes, type Snapshot, type SnapshotFile, type SnapshotMetadata } from '../raft/types.js';
import { assert } from '../errors.js';
import { crc32c, crc32cUpdate } from './crc32c.js';
import { Disk, type DiskOptions } from './disk.js';
import { WalCorruptError } from './errors.js';
import {
  PayloadError,
  RECORD_HEADER_BYTES,
  RecordType,
  decodeSnapshotPayload,
  encodeSnapshotHead,
  frameRecord,
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

/** A snapshot whose data stays in its file (checked, then read in pieces when needed). */
export type OpenedSnapshot = Snapshot & { data: SnapshotFile };

const SNAPSHOT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TEMP_SUFFIX = '.tmp';
const INCOMING_SUFFIX = '.incoming';
const SPOOL_SUFFIX = '.spool';
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
  /** Receptions and spools started by this process, so that their files never share a name. */
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

  /** Removes what receptions, spools and saves cut short by a crash (or a full disk) left behind. */
  removeIncoming(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) {
      if (name.endsWith(INCOMING_SUFFIX) || name.endsWith(SPOOL_SUFFIX) || name.endsWith(`.snap${TEMP_SUFFIX}`)) fs.unlinkSync(join(this.dir, name));
    }
  }

  /**
   * Writes a snapshot's data for a peer, `chunks` pulled one at a time and written on the thread
   * pool, so memory holds one chunk whatever the data's size and the event loop keeps serving. The
   * file is unlinked once open: it lives as long as its descriptor (until release()), and a crash
   * leaves nothing behind.
   */
  async spool(chunks: Iterable<Uint8Array>): Promise<SpooledData> {
    fs.mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, `${process.pid}-${++this.receptions}${SPOOL_SUFFIX}`);
    const fd = fs.openSync(path, 'w+');
    fs.unlinkSync(path);
    let length = 0;
    try {
      for (const chunk of chunks) {
        await this.disk.writeAllAsync(fd, path, chunk, length);
        length += chunk.length;
      }
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
    return new SpooledData(fd, length);
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
      await this.writeSnapshotFile(fd, temp, head, data, dataAt);
    } catch (error) {
      // A full disk, most likely: what was written of the file goes, and with it the space it held.
      fs.closeSync(fd);
      fs.rmSync(temp, { force: true });
      throw error;
    }
    fs.closeSync(fd);
    fs.renameSync(temp, path);
    await this.disk.syncDir(this.dir);
    await this.prune();
  }

  /** The data first, a slice per turn; the record header, which holds the CRC of it all, last; then the flush. */
  private async writeSnapshotFile(fd: number, temp: string, head: Uint8Array, data: Uint8Array, dataAt: number): Promise<void> {
    let crc = crc32cUpdate(0, head);
    for (let at = 0; at < data.length; at += SLICE_BYTES) {
      const slice = data.subarray(at, Math.min(at + SLICE_BYTES, data.length));
      crc = crc32cUpdate(crc, slice);
      this.disk.writeAll(fd, temp, slice, dataAt + at);
      await nextTurn();
    }
    const header = frameRecord(RecordType.Snapshot, head.length + data.length, crc);
    this.disk.writeAll(fd, temp, header, 0);
    this.disk.writeAll(fd, temp, head, header.length);
    await this.disk.syncFile(fd, temp);
  }

  /**
   * The snapshot named by `meta` (undefined if there is no such file), or without `meta` the newest
   * one (undefined if there is none). Throws WalCorruptError if the file fails its checksum.
   */
  async load(meta?: SnapshotMetadata): Promise<LoadedSnapshot | undefined> {
    const opened = await this.open(meta);
    return opened && { metadata: opened.metadata, data: readSnapshotData(opened.data, 0, opened.data.byteLength) };
  }

  /**
   * As load(), but the data stays in the file: its checksum is checked a slice at a time, so a
   * large snapshot (one received from the leader) never sits whole in memory.
   */
  async open(meta?: SnapshotMetadata): Promise<OpenedSnapshot | undefined> {
    const files = this.list();
    const file = meta
      ? files.find((f) => f.index === meta.index && f.term === meta.term)
      : files[files.length - 1];
    if (!file) return undefined;
    const path = join(this.dir, file.name);
    const fd = fs.openSync(path, 'r');
    try {
      const fileBytes = fs.fstatSync(fd).size;
      const header = readAt(fd, 0, RECORD_HEADER_BYTES);
      if (header.length < RECORD_HEADER_BYTES) throw new WalCorruptError(path, 0, 'snapshot file is truncated');
      if (crc32c(header.subarray(4)) !== header.readUInt32BE(0)) throw new WalCorruptError(path, 0, 'snapshot checksum mismatch');
      if (header[12] !== RecordType.Snapshot) throw new WalCorruptError(path, 0, 'expected one snapshot record filling the file');
      const payloadBytes = header.readUInt32BE(8);
      if (RECORD_HEADER_BYTES + payloadBytes > fileBytes) throw new WalCorruptError(path, 0, 'snapshot file is truncated');
      if (RECORD_HEADER_BYTES + payloadBytes < fileBytes) throw new WalCorruptError(path, 0, 'expected one snapshot record filling the file');
      let crc = 0;
      for (let at = 0; at < payloadBytes; at += SLICE_BYTES) {
        crc = crc32cUpdate(crc, readAt(fd, RECORD_HEADER_BYTES + at, Math.min(SLICE_BYTES, payloadBytes - at)));
        await nextTurn();
      }
      if (crc !== header.readUInt32BE(4)) throw new WalCorruptError(path, 0, 'snapshot checksum mismatch');
      let metadata: SnapshotMetadata;
      let dataAt: number;
      try {
        // The metadata is small: a slice holds it whole.
        const slice = readAt(fd, RECORD_HEADER_BYTES, Math.min(SLICE_BYTES, payloadBytes));
        const head = decodeSnapshotPayload(slice);
        metadata = head.metadata;
        dataAt = RECORD_HEADER_BYTES + slice.length - head.data.length;
      } catch (error) {
        if (error instanceof PayloadError) throw new WalCorruptError(path, 0, error.message);
        throw error;
      }
      if (metadata.index !== file.index || metadata.term !== file.term) {
        throw new WalCorruptError(path, 0, `file holds snapshot ${metadata.index} (term ${metadata.term})`);
      }
      return { metadata, data: new SnapshotFileData(path, dataAt, fileBytes - dataAt) };
    } finally {
      fs.closeSync(fd);
    }
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
    const written = this.writes.then(() => this.disk.writeAllAsync(this.fd, this.path, chunk, position)).finally(() => (this.pendingBytes -= chunk.length));
    this.writes = written.catch(() => undefined);
    return written;
  }

  /** Once every byte was written: the record header goes in front, and the file can be read. Not flushed: save() does that. */
  async finish(): Promise<ReceivedSnapshot> {
    assert(this.received === this.dataBytes, `snapshot receiver: ${this.received} of ${this.dataBytes} bytes received`);
    await this.writes;
    const header = frameRecord(RecordType.Snapshot, this.head.length + this.dataBytes, this.crc);
    await this.disk.writeAllAsync(this.fd, this.path, Buffer.concat([header, this.head]), 0);
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

/** `length` bytes of file `fd` at `position` (fewer at its end). */
function readAt(fd: number, position: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  let read = 0;
  while (read < length) {
    const n = fs.readSync(fd, bytes, read, length - read, position + read);
    if (n === 0) break;
    read += n;
  }
  return read === length ? bytes : bytes.subarray(0, read);
}

/** A snapshot's data in a snapshot file, read in pieces. */
export class SnapshotFileData implements SnapshotFile {
  constructor(
    /** Where the file is (a received snapshot's moves into the store when saved). */
    public path: string,
    private readonly dataAt: number,
    readonly byteLength: number,
  ) {}

  read(offset: number, length: number): Uint8Array {
    const fd = fs.openSync(this.path, 'r');
    try {
      const bytes = readAt(fd, this.dataAt + offset, Math.max(0, Math.min(length, this.byteLength - offset)));
      assert(bytes.length === Math.max(0, Math.min(length, this.byteLength - offset)), `snapshot file ${this.path} is shorter than its record says`);
      return bytes;
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * Closes the file of spooled data dropped without release(): a replica that closed while its
 * transport still held a send lets go of it, and the transport may read it until it drops it too.
 */
const unreleasedSpools = new FinalizationRegistry<number>((fd) => fs.close(fd, () => {}));

/** Snapshot data spooled for a peer (see SnapshotStore.spool): an unlinked file, open until released. */
export class SpooledData implements SnapshotFile {
  private open = true;

  constructor(
    private readonly fd: number,
    readonly byteLength: number,
  ) {
    unreleasedSpools.register(this, fd, this);
  }

  get data(): SnapshotFile {
    return this;
  }

  read(offset: number, length: number): Uint8Array {
    assert(this.open, 'spooled snapshot data read after its release');
    const bytes = readAt(this.fd, offset, Math.max(0, Math.min(length, this.byteLength - offset)));
    assert(bytes.length === Math.max(0, Math.min(length, this.byteLength - offset)), 'spooled snapshot data is shorter than written');
    return bytes;
  }

  release(): void {
    if (!this.open) return;
    this.open = false;
    unreleasedSpools.unregister(this);
    fs.closeSync(this.fd);
  }
}

/** A received snapshot's data, read from its file in pieces; the file moves into the store when saved. */
export class ReceivedSnapshot extends SnapshotFileData {
  constructor(
    readonly store: SnapshotStore,
    path: string,
    readonly metadata: SnapshotMetadata,
    dataAt: number,
    byteLength: number,
  ) {
    super(path, dataAt, byteLength);
  }

  /** Removes the file, unless it became the store's (a snapshot raft did not take, or one superseded). */
  discard(): void {
    if (this.path.endsWith(INCOMING_SUFFIX)) fs.rmSync(this.path, { force: true });
  }
}
