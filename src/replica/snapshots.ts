// A replica's snapshots: taking one of its own state machine once enough was applied (and then
// letting go of the log behind it), installing one its leader sent, and writing the data of one
// raft sends to a peer.
//
// A member's own snapshot copies nothing (see snapshot-data.ts): once the engine has made what was
// applied durable (an engine sync), a reference snapshot (the index, the configuration and the
// member table) names it, and the WAL lets go of the entries behind it. Raft's in-memory log only
// ever holds such references. Only when raft sends a snapshot to a peer is the engine's data
// streamed, from a view taken then, into a spool the transport reads.
import type { ConfState, Message, Snapshot } from '../raft/index.js';
import type { Logger } from '../log.js';
import type { ReceivedSnapshot } from '../wal/index.js';
import type { Environment } from './environment.js';
import { MemberTable } from './members.js';
import { decodeSnapshotData, encodeSnapshotReference, streamSnapshotData } from './snapshot-data.js';
import type { ProposalResultsJson } from './proposal-results.js';
import { snapshotDue, type SnapshotPolicy } from './snapshot-policy.js';
import type { ReplicaStorage, SpooledSnapshot } from './storage.js';
import { assert } from '../errors.js';

export interface SnapshotsContext {
  storage: ReplicaStorage;
  /** When to snapshot, and how many entries to keep behind a snapshot for slow followers. */
  policy: SnapshotPolicy & { snapshotCatchUpEntries: number };
  environment: Environment;
  logger: Logger;
  /** What the replica has applied: its index and the configuration as of it. */
  applied(): { index: number; conf: ConfState };
  /** The recent proposals' results as of `index` (what the replica has applied), for a snapshot sent to a peer. */
  results(index: number): ProposalResultsJson;
  /** Whether the replica stopped: a snapshot still being taken is then dropped. */
  stopped(): boolean;
  /** A snapshot that could not be saved stops the replica. */
  fail(error: unknown): void;
}

type SnapMessage = Extract<Message, { type: 'Snap' }>;

export class Snapshots {
  /** The index of the latest snapshot, taken here or installed. */
  index: number;
  /** The WAL's size when the last snapshot released what it could (see snapshot-policy.ts). */
  private walBytesAfterCompaction = 0;
  /** Where in SNAPSHOT_SPREAD this member's next snapshot falls (see snapshot-policy.ts). */
  private spread: number;
  /** Snapshots received from peers that raft took and that are not installed yet (their files are kept). */
  private received: ReceivedSnapshot[] = [];
  /** The snapshot being taken in the background, if any. */
  private task: Promise<void> | undefined;
  /** Data spooled for each peer, oldest first, until the transport reports the send (in order). */
  private readonly spooled = new Map<number, SpooledSnapshot[]>();

  constructor(private readonly context: SnapshotsContext) {
    this.index = context.storage.snapshotIndex;
    this.spread = context.environment.random.float();
  }

  /**
   * Resolves once no snapshot is being taken (a closing replica waits for it). Data spooled for
   * sends not reported yet is dropped, not released: the transport may still read it (see
   * SpooledData).
   */
  async settled(): Promise<void> {
    await this.task;
    this.spooled.clear();
  }

  /** Keeps the file of a snapshot raft took from a peer until a Ready hands it out to install. */
  hold(received: ReceivedSnapshot): void {
    if (!this.received.includes(received)) this.received.push(received);
  }

  /**
   * Makes a snapshot from the leader durable and installs it in raft's log (as a reference) and the
   * state machine; returns the membership and the proposals' results it carries.
   */
  async install(snapshot: Snapshot): Promise<{ members: MemberTable; results: ProposalResultsJson | undefined }> {
    const { storage } = this.context;
    await storage.snapshots.save(snapshot);
    await storage.wal.saveSnapshotMarker(snapshot.metadata);
    // Received snapshots raft took earlier and replaced with this one are not needed any more.
    for (const received of this.received) if (received !== snapshot.data) received.discard();
    this.received = [];
    // A received snapshot stays in its file: the engine imports it a piece at a time. Until the
    // engine has synced it, a restart installs it again from that file (recovery.ts).
    const { members, engineChunks, results } = decodeSnapshotData(snapshot.data);
    assert(engineChunks !== undefined, 'a snapshot from the leader carries the engine data');
    storage.raftLog.applySnapshot({ metadata: snapshot.metadata, data: encodeSnapshotReference(members) });
    storage.machine.install(engineChunks);
    // The engine's applied index is its last command's; the snapshot may name a later entry.
    storage.machine.markApplied(snapshot.metadata.index);
    this.index = snapshot.metadata.index;
    return { members, results };
  }

  /** Takes a snapshot and releases log entries once enough have been applied (in the background). */
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
    // The member table as of `applied` (later entries change the live one), and the engine's
    // record that it holds `applied`, which the engine sync in take() makes durable.
    const data = encodeSnapshotReference(storage.members);
    storage.machine.markApplied(applied);
    this.task = this.take(applied, conf, data)
      .catch((error: unknown) => this.context.fail(error))
      .finally(() => (this.task = undefined));
  }

  private async take(index: number, conf: ConfState, data: Uint8Array): Promise<void> {
    const { storage, environment } = this.context;
    // The snapshot names the engine's state: the engine must hold everything up to `index` durably
    // before the snapshot, its marker, or the release of log entries can depend on it.
    await storage.machine.sync();
    // A snapshot installed from the leader meanwhile supersedes this one; a closing member stops.
    if (this.context.stopped() || index <= storage.raftLog.snapshot().metadata.index) return;
    const snapshot = storage.raftLog.createSnapshot(index, conf, data);
    await storage.snapshots.save(snapshot);
    await storage.wal.saveSnapshotMarker(snapshot.metadata);
    const compactTo = Math.max(storage.raftLog.firstIndex() - 1, index - this.context.policy.snapshotCatchUpEntries);
    if (compactTo > storage.raftLog.firstIndex() - 1) {
      storage.raftLog.compact(compactTo);
      await storage.wal.releaseTo(compactTo);
    }
    this.index = Math.max(this.index, index);
    this.walBytesAfterCompaction = storage.wal.sizeBytes;
    this.spread = environment.random.float();
    this.context.logger.info('took a snapshot', { index, compactedTo: compactTo });
  }

  /**
   * Sends the Snap message raft made (its data a reference to this member's engine) with the data
   * whole, as etcd does: the engine's state from a view taken now, named by what this member has
   * applied (its index, term and configuration, and the member table as of it), which is at or
   * after the snapshot raft chose. The follower then holds exactly that state at that index, and
   * raft continues from there (the leader holds every entry after it, being past its snapshot).
   * Must be called between Readies' applies (the Ready loop's send step), with the engine's state
   * holding every apply. The data is spooled first (a large engine takes a while), then handed to
   * `send`; nothing is sent once the replica stopped.
   */
  async send(message: SnapMessage, send: (whole: SnapMessage) => void): Promise<void> {
    const { storage } = this.context;
    const { index, conf } = this.context.applied();
    assert(index >= message.snapshot.metadata.index, 'a member applied at least its own snapshot');
    const metadata = { index, term: storage.raftLog.term(index), conf: { voters: [...conf.voters], learners: [...conf.learners] } };
    // The spool pulls the first chunk before it first waits: the engine's view is taken now.
    const spool = await storage.snapshots.spool(streamSnapshotData(storage.members, storage.machine.exportApplied(), this.context.results(index)));
    if (this.context.stopped()) return spool.release();
    // The transport reports each send, in the order of sends: the oldest of a peer's is the one reported.
    const spools = this.spooled.get(message.to) ?? [];
    spools.push(spool);
    this.spooled.set(message.to, spools);
    send({ ...message, snapshot: { metadata, data: spool.data } });
  }

  /** The transport finished with the oldest snapshot sent to `peer` (it reports sends in order). */
  sent(peer: number): void {
    const spools = this.spooled.get(peer);
    spools?.shift()?.release();
    if (spools?.length === 0) this.spooled.delete(peer);
  }
}
