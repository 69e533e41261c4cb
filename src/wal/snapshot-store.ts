// Snapshot files: <dir>/<index>-<term>.snap (16 hex digits each, so names sort by index). Each file
// is one record (record.ts) of type Snapshot whose payload is the metadata followed by the data,
// so the CRC covers both. A save writes a temporary name, flushes it, renames it into place and
// flushes the directory: after a crash there is either the whole new file or none.
import fs from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Snapshot, SnapshotMetadata } from '../raft/types.js';
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

const SNAPSHOT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TEMP_SUFFIX = '.tmp';
const hex16 = (n: number): string => n.toString(16).padStart(16, '0');
const fileName = (meta: Pick<SnapshotMetadata, 'index' | 'term'>): string => `${hex16(meta.index)}-${hex16(meta.term)}.snap`;

interface SnapshotFile {
  index: number;
  term: number;
  name: string;
}

export class SnapshotStore {
  private readonly disk: Disk;
  /** Saves run one at a time, so pruning never deletes the temporary file of a save in progress. */
  private saving: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dir: string,
    options: DiskOptions = {},
  ) {
    this.disk = new Disk(options);
  }

  /** Writes the snapshot durably, then deletes all but the newest SNAPSHOTS_KEPT files. */
  save(snapshot: Snapshot): Promise<void> {
    const run = this.saving.then(() => this.saveNow(snapshot));
    this.saving = run.catch(() => undefined);
    return run;
  }

  private async saveNow(snapshot: Snapshot): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true });
    const path = join(this.dir, fileName(snapshot.metadata));
    const temp = path + TEMP_SUFFIX;
    const head = encodeSnapshotHead(snapshot.metadata);
    const data = snapshot.data;
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
      const header = frameRecord(RecordType.Snapshot, [head, data], crc);
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
  async load(meta?: SnapshotMetadata): Promise<Snapshot | undefined> {
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
    let decoded: Snapshot;
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

  private list(): SnapshotFile[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const files: SnapshotFile[] = [];
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
