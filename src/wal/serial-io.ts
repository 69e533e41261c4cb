// The discipline both WALs follow for their file operations: one at a time, in call order; and
// after a failed write or flush, none at all (the page cache and the disk may disagree then, as
// PostgreSQL's "fsyncgate" showed, so retrying could report data durable that is not).
import { DiskFullError, ErrorCode, LichenError } from '../errors.js';
import { walPendingOperationsMax } from '../limits.js';

export class SerialIo {
  private queue: Promise<unknown> = Promise.resolve();
  private pending = 0;
  private failure: Error | undefined;
  private closed = false;

  /**
   * Runs `operation` after the ones before it. When nothing is queued it starts at once, inside the
   * caller's turn: its write reaches the page cache and its fdatasync is on its way before the
   * caller goes on (the server applies already-committed entries while a Ready's flush runs).
   */
  run(operation: () => Promise<void>): Promise<void> {
    if (this.closed) return Promise.reject(new LichenError(ErrorCode.Internal, 'wal is closed'));
    if (this.pending >= walPendingOperationsMax) {
      return Promise.reject(new LichenError(ErrorCode.Overloaded, `wal: more than ${walPendingOperationsMax} operations queued`));
    }
    const start = async (): Promise<void> => {
      try {
        // A full disk stays recognisable as one, so whoever hears of it first stops for that reason.
        if (this.failure instanceof DiskFullError) throw this.failure;
        if (this.failure) throw new LichenError(ErrorCode.Internal, `wal unusable after an I/O error: ${this.failure.message}`);
        await operation();
      } finally {
        this.pending--;
      }
    };
    const run = this.pending++ === 0 ? start() : this.queue.then(start);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every operation queued so far has finished (failed or not). */
  async settled(): Promise<void> {
    await this.queue;
  }

  /** Waits for what is queued, then refuses new operations. */
  async close(): Promise<void> {
    await this.settled();
    this.closed = true;
  }

  /** Runs a write or flush; if it fails (other than by our own refusal), every later operation fails. */
  async guard<T>(io: () => Promise<T> | T): Promise<T> {
    try {
      return await io();
    } catch (error) {
      this.noteFailure(error);
      throw error;
    }
  }

  /** guard for a synchronous write. */
  guardSync<T>(io: () => T): T {
    try {
      return io();
    } catch (error) {
      this.noteFailure(error);
      throw error;
    }
  }

  private noteFailure(error: unknown): void {
    if (!(error instanceof LichenError)) this.failure = error as Error;
  }
}
