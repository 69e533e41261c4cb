// The few file operations the WAL and the snapshot store need, with the knobs tests use to make
// the disk slow (syncDelayMs), unsafe-but-fast (noSync) or full (faults), and a hook that counts
// flushes. A write or flush that fails for want of space throws DiskFullError with the path.
//
// Sync or async fdatasync? Measured on this machine (2 cores, 16 KiB writes, 2 s each):
//   writeSync + fdatasyncSync        ~4000 saves/s, the event loop is frozen the whole time
//   writeSync + async fdatasync      ~2700 saves/s, 1 ms timers keep firing (~990/s)
//   async write + async fdatasync    ~2100 saves/s
// We take writeSync (a copy into the page cache costs microseconds) plus async fdatasync: the
// blocking variant is faster for one writer in a tight loop, but it stalls heartbeats, peer
// traffic and client requests for the whole flush, and the leader is meant to send its appends
// while its own flush is in flight (Raft thesis §10.2.1). Group commit wins back the difference.
import fs from 'node:fs';
import { promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { DiskFullError, isDiskFull } from '../errors.js';

const fdatasyncAsync = promisify(fs.fdatasync);
const fsyncAsync = promisify(fs.fsync);
const writeAsync = promisify(fs.write);

export interface SyncEvent {
  kind: 'file' | 'dir';
  path: string;
}

export interface DiskOptions {
  /** Test-only slow disk: wait this long before every flush. */
  syncDelayMs?: number;
  /** Test-only: skip flushes entirely (a crash of the machine can lose acknowledged writes). */
  noSync?: boolean;
  /** Called after every flush (tests count them to check group commit). */
  onSync?: (event: SyncEvent) => void;
  /** Test and fault-run only: a disk that runs out of space (DiskBudget, or a test's own). */
  faults?: DiskFaults;
}

/**
 * What an injected full disk decides. A real disk runs out of space only when a write needs new
 * blocks: overwriting bytes a file already has (the WAL's preallocated zeros) needs none, so
 * `writable` is told how far the write extends the file.
 */
export interface DiskFaults {
  /**
   * How many of the `bytes` bytes written at `position` into `path` (a file of `fileBytes` bytes)
   * reach the disk; fewer than `bytes` and the write stops there and fails with ENOSPC.
   */
  writable(path: string, position: number, bytes: number, fileBytes: number): number;
  /** Throws (an Error with code 'ENOSPC', say) to fail a flush of `path`. */
  beforeSync(path: string): void;
}

/**
 * A disk with `bytes` bytes free, shared by every file of a process (LICHEN_UNSAFE_DISK_BUDGET_BYTES):
 * every byte written uses it up, overwrites of preallocated space too, as on a copy-on-write file
 * system (the strictest case: a record can be cut part way, not only a preallocation). Once it is
 * gone, the write that needs more stops short and fails, and so does every flush after it (a
 * delayed-allocation file system reports ENOSPC at fdatasync as well).
 */
export class DiskBudget implements DiskFaults {
  private exhausted = false;

  constructor(private remainingBytes: number) {}

  writable(_path: string, _position: number, bytes: number): number {
    const granted = Math.min(bytes, this.remainingBytes);
    this.remainingBytes -= granted;
    if (granted < bytes) this.exhausted = true;
    return granted;
  }

  beforeSync(path: string): void {
    if (this.exhausted) throw new DiskFullError(path);
  }
}

export interface DiskStats {
  fileSyncs: number;
  dirSyncs: number;
  bytesWritten: number;
}

export class Disk {
  readonly stats: DiskStats = { fileSyncs: 0, dirSyncs: 0, bytesWritten: 0 };

  constructor(private readonly options: DiskOptions = {}) {}

  /** Writes all of `bytes` at `position` of file `path` (open as `fd`), looping over short writes. */
  writeAll(fd: number, path: string, bytes: Uint8Array, position: number): void {
    const length = this.writableBytes(fd, path, bytes.length, position);
    let written = 0;
    try {
      // Each iteration writes at least one byte or throws, so the loop ends after `length` turns.
      while (written < length) written += fs.writeSync(fd, bytes, written, length - written, position + written);
    } catch (error) {
      throw diskError(error, path);
    }
    this.stats.bytesWritten += written;
    if (length < bytes.length) throw new DiskFullError(path);
  }

  /**
   * writeAll on the thread pool, for long streams of data (a snapshot received from a peer) that
   * should not hold the event loop while the kernel takes them.
   */
  async writeAllAsync(fd: number, path: string, bytes: Uint8Array, position: number): Promise<void> {
    const length = this.writableBytes(fd, path, bytes.length, position);
    let written = 0;
    try {
      while (written < length) written += (await writeAsync(fd, bytes, written, length - written, position + written)).bytesWritten;
    } catch (error) {
      throw diskError(error, path);
    }
    this.stats.bytesWritten += written;
    if (length < bytes.length) throw new DiskFullError(path);
  }

  /** fdatasync: the file's data and the metadata needed to read it back (its size) are durable. */
  async syncFile(fd: number, path: string): Promise<void> {
    if (this.options.syncDelayMs) await delay(this.options.syncDelayMs);
    try {
      this.options.faults?.beforeSync(path);
      if (!this.options.noSync) await fdatasyncAsync(fd);
    } catch (error) {
      throw diskError(error, path);
    }
    this.stats.fileSyncs++;
    this.options.onSync?.({ kind: 'file', path });
  }

  /** fsync of a directory, so that files created, renamed or removed in it stay that way. */
  async syncDir(dir: string): Promise<void> {
    if (this.options.syncDelayMs) await delay(this.options.syncDelayMs);
    if (!this.options.noSync) {
      const fd = fs.openSync(dir, 'r');
      try {
        await fsyncAsync(fd);
      } catch (error) {
        throw diskError(error, dir);
      } finally {
        fs.closeSync(fd);
      }
    }
    this.stats.dirSyncs++;
    this.options.onSync?.({ kind: 'dir', path: dir });
  }

  /** How many of `bytes` bytes at `position` an injected full disk lets through (all without one). */
  private writableBytes(fd: number, path: string, bytes: number, position: number): number {
    const faults = this.options.faults;
    if (!faults) return bytes;
    return Math.max(0, Math.min(bytes, faults.writable(path, position, bytes, fs.fstatSync(fd).size)));
  }
}

/** A failed write or flush of `path`: ENOSPC becomes DiskFullError, which names the file. */
function diskError(error: unknown, path: string): unknown {
  return isDiskFull(error) && !(error instanceof DiskFullError) ? new DiskFullError(path, { cause: error }) : error;
}
