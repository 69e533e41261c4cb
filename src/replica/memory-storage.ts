// In-memory twins of the WAL and the snapshot store, for tests: what a replica writes becomes
// durable only when it is flushed, and a crash keeps exactly what was durable. A test may hold
// flushes back (as a slow disk would) and crash the replica while they are in flight.
import { LogModel } from '../wal/log-model.js';
import type { Entry, HardState, Snapshot, SnapshotMetadata } from '../raft/index.js';
import type { LogStore, SnapshotFiles, SpooledSnapshot } from './storage.js';
import type { ReplicaConfig } from './types.js';

/** A replica's settings for in-process tests: 100 ms ticks, an election after 10, no held commit. */
export const TEST_REPLICA_CONFIG: ReplicaConfig = {
  name: '',
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  followerCommitDelayMs: 0,
  requestTimeoutMs: 5_000,
  pendingRequestsMax: 1_000,
  maxRequestBytes: 1024 * 1024,
  snapshotEntries: 100_000,
  snapshotCatchUpEntries: 5_000,
  snapshotWalBytes: 1024 * 1024 * 1024,
  quotaBackendBytes: -1,
  authToken: 'simple',
  authTokenTtlSeconds: 300,
  unsafe: { readsWithoutReadIndex: false },
};

type LogRecord = { hardState?: HardState; entries: Entry[] } | { snapshot: SnapshotMetadata };

/** What a log holds after a restart (as src/wal's WalState). */
export interface RecoveredLog {
  hardState: HardState;
  snapshot: SnapshotMetadata | undefined;
  entries: Entry[];
}

export class MemoryLog implements LogStore {
  private records: LogRecord[] = [];
  /** The first `durable` records survive a crash. */
  private durable = 0;
  /** Flushes waiting for releaseFlushes(), while the test holds them. */
  private heldFlushes: Array<() => void> | undefined;
  private releasedTo = 0;
  /** Flushes done so far. */
  flushes = 0;
  /** Set by failFlushes: every later flush fails with it (a full disk), and nothing more becomes durable. */
  private flushError: Error | undefined;

  /** Makes every later flush wait until releaseFlushes() (a slow disk). */
  holdFlushes(): void {
    this.heldFlushes ??= [];
  }

  /** Makes every later flush fail with `error` (a full disk, say); undefined: space is back. */
  failFlushes(error: Error | undefined): void {
    this.flushError = error;
  }

  /** Completes the flushes held so far and stops holding them. */
  releaseFlushes(): void {
    const held = this.heldFlushes ?? [];
    this.heldFlushes = undefined;
    for (const flush of held) flush();
  }

  save(update: { hardState?: HardState; entries: Entry[]; sync?: boolean }): Promise<void> {
    if (!update.hardState && update.entries.length === 0) return Promise.resolve();
    this.records.push({ ...(update.hardState && { hardState: update.hardState }), entries: update.entries });
    return update.sync === false ? Promise.resolve() : this.flush();
  }

  saveSnapshotMarker(meta: SnapshotMetadata): Promise<void> {
    this.records.push({ snapshot: meta });
    return this.flush();
  }

  async releaseTo(index: number): Promise<void> {
    this.releasedTo = Math.max(this.releasedTo, index);
  }

  /** The bytes of the entries kept (those after the last releaseTo). */
  get sizeBytes(): number {
    let bytes = 0;
    for (const record of this.records) {
      if ('entries' in record) for (const entry of record.entries) if (entry.index > this.releasedTo) bytes += entry.data.length;
    }
    return bytes;
  }

  async close(): Promise<void> {}

  /** Loses every record not flushed yet; flushes in flight never complete (their process is gone). */
  crash(): void {
    this.records = this.records.slice(0, this.durable);
    this.heldFlushes = undefined;
  }

  /** What a restart reads back: the durable records replayed by the WAL's own rules. */
  recover(): RecoveredLog {
    const model = new LogModel(true);
    for (const record of this.records.slice(0, this.durable)) {
      if ('snapshot' in record) {
        model.applySnapshot(record.snapshot);
      } else {
        if (record.hardState) model.setHardState(record.hardState);
        model.appendEntries(record.entries, 'memory log');
      }
    }
    return { hardState: model.hardState, snapshot: model.snapshot, entries: model.takeEntries() };
  }

  private flush(): Promise<void> {
    const upTo = this.records.length;
    const records = this.records;
    if (this.flushError) return Promise.reject(this.flushError);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        // A crash since this flush began took the records with it.
        if (this.records !== records) return;
        this.durable = Math.max(this.durable, upTo);
        this.flushes++;
        resolve();
      };
      if (this.heldFlushes) this.heldFlushes.push(done);
      else done();
    });
  }
}

/** Snapshots kept in memory; a saved one is durable at once. */
export class MemorySnapshots implements SnapshotFiles {
  latest: Snapshot | undefined;
  /** Snapshot data written for peers so far, and how many bytes the largest held. */
  spools = { count: 0, bytesMax: 0 };

  async save(snapshot: Snapshot): Promise<void> {
    if (!this.latest || snapshot.metadata.index > this.latest.metadata.index) this.latest = snapshot;
  }

  async spool(chunks: Iterable<Uint8Array>): Promise<SpooledSnapshot> {
    const spooled = spoolInMemory(chunks);
    this.spools.count++;
    this.spools.bytesMax = Math.max(this.spools.bytesMax, spooled.data.byteLength);
    return spooled;
  }
}

/** Snapshot data for a peer gathered in memory (tests and the simulator, where stores are small). */
export function spoolInMemory(chunks: Iterable<Uint8Array>): SpooledSnapshot & { data: Uint8Array } {
  return { data: Buffer.concat([...chunks]), release() {} };
}
