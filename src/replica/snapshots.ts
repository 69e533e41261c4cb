// A replica's snapshots: taking one of its own state machine once enough was applied (and then
// letting go of the log behind it), and installing one its leader sent.
import type { ConfState, Snapshot } from '../raft/index.js';
import type { Logger } from '../log.js';
import type { ReceivedSnapshot } from '../wal/index.js';
import type { Environment } from './environment.js';
import { MemberTable } from './members.js';
import { decodeSnapshotData, encodeSnapshotData } from './snapshot-data.js';
import { snapshotDue, type SnapshotPolicy } from './snapshot-policy.js';
import type { ReplicaStorage } from './storage.js';

export interface SnapshotsContext {
  storage: ReplicaStorage;
  /** When to snapshot, and how many entries to keep behind a snapshot for slow followers. */
  policy: SnapshotPolicy & { snapshotCatchUpEntries: number };
  environment: Environment;
  logger: Logger;
  /** Whether the replica stopped: a snapshot still being collected is then dropped. */
  stopped(): boolean;
  /** A snapshot that could not be saved stops the replica. */
  fail(error: unknown): void;
}

export class Snapshots {
  /** The index of the latest snapshot, taken here or installed. */
  index: number;
  /** The WAL's size when the last snapshot released what it could (see snapshot-policy.ts). */
  private walBytesAfterCompaction = 0;
  /** Where in SNAPSHOT_SPREAD this member's next snapshot falls (see snapshot-policy.ts). */
  private spread: number;
  /** Snapshots received from peers that raft took and that are not installed yet (their files are kept). */
  private received: ReceivedSnapshot[] = [];
  /** The snapshot being collected and saved in the background, if any. */
  private task: Promise<void> | undefined;

  constructor(private readonly context: SnapshotsContext) {
    this.index = context.storage.snapshotIndex;
    this.spread = context.environment.random.float();
  }

  /** Resolves once no snapshot is being taken (a closing replica waits for it). */
  async settled(): Promise<void> {
    await this.task;
  }

  /** Keeps the file of a snapshot raft took from a peer until a Ready hands it out to install. */
  hold(received: ReceivedSnapshot): void {
    if (!this.received.includes(received)) this.received.push(received);
  }

  /**
   * Makes a snapshot from the leader durable and installs it in raft's log and the state machine;
   * returns the membership it carries.
   */
  async install(snapshot: Snapshot): Promise<MemberTable> {
    const { storage } = this.context;
    await storage.snapshots.save(snapshot);
    await storage.wal.saveSnapshotMarker(snapshot.metadata);
    // Received snapshots raft took earlier and replaced with this one are not needed any more.
    for (const received of this.received) if (received !== snapshot.data) received.discard();
    this.received = [];
    storage.raftLog.applySnapshot(snapshot);
    // A received snapshot stays in its file: the engine imports it a piece at a time.
    const { members, engineChunks } = decodeSnapshotData(snapshot.data);
    storage.machine.install(engineChunks);
    this.index = snapshot.metadata.index;
    return members;
  }

  /**
   * Snapshots the state machine and releases log entries once enough have been applied. The copy
   * is read from a consistent engine view taken now, but collected in the background a chunk per
   * event-loop turn, so writes keep flowing while a large store is copied.
   */
  maybeTake(applied: number, conf: ConfState): void {
    if (this.task) return;
    const { storage } = this.context;
    const progress = {
      entriesSinceSnapshot: applied - this.index,
      walBytes: storage.wal.sizeBytes,
      walBytesAfterCompaction: this.walBytesAfterCompaction,
      spread: this.spread,
    };
    if (!snapshotDue(this.context.policy, progress)) return;
    const members = MemberTable.fromJSON(storage.members.toJSON());
    const chunks = storage.machine.export()[Symbol.iterator]();
    // Pulling the first chunk now pins the engine view at `applied`, before the next apply.
    const first = chunks.next();
    this.task = this.take(applied, conf, members, first, chunks)
      .catch((error: unknown) => this.context.fail(error))
      .finally(() => (this.task = undefined));
  }

  private async take(index: number, conf: ConfState, members: MemberTable, first: IteratorResult<Uint8Array>, rest: Iterator<Uint8Array>): Promise<void> {
    const { storage, environment } = this.context;
    const parts: Uint8Array[] = [];
    for (let chunk = first; !chunk.done; chunk = rest.next()) {
      parts.push(chunk.value);
      await environment.timers.nextTurn();
    }
    // A snapshot installed from the leader meanwhile supersedes this one; a closing member stops.
    if (this.context.stopped() || index <= storage.raftLog.snapshot().metadata.index) return;
    const data = encodeSnapshotData(members, parts);
    const snapshot = storage.raftLog.createSnapshot(index, conf, data);
    await storage.snapshots.save(snapshot);
    await storage.wal.saveSnapshotMarker(snapshot.metadata);
    // The engine must hold everything up to `index` durably before the log entries go.
    await storage.machine.sync();
    const compactTo = Math.max(storage.raftLog.firstIndex() - 1, index - this.context.policy.snapshotCatchUpEntries);
    if (compactTo > storage.raftLog.firstIndex() - 1) {
      storage.raftLog.compact(compactTo);
      await storage.wal.releaseTo(compactTo);
    }
    this.index = Math.max(this.index, index);
    this.walBytesAfterCompaction = storage.wal.sizeBytes;
    this.spread = environment.random.float();
    this.context.logger.info('took a snapshot', { index, compactedTo: compactTo, bytes: data.length });
  }
}
