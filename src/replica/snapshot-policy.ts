// When a member snapshots its state machine and compacts its log.

export interface SnapshotPolicy {
  /** Snapshot after this many entries applied since the last snapshot. */
  snapshotEntries: number;
  /** Also snapshot when the WAL has grown this many bytes since the last snapshot's compaction. */
  snapshotWalBytes: number;
}

export interface SnapshotProgress {
  entriesSinceSnapshot: number;
  walBytes: number;
  /** The WAL's size right after the last snapshot released what it could (0 before any). */
  walBytesAfterCompaction: number;
  /** In [0, 1): how far into SNAPSHOT_SPREAD this member's next snapshot waits (drawn per snapshot). */
  spread?: number;
}

/**
 * Each snapshot waits a random extra 0–25% of the thresholds. Members that applied the same log
 * would otherwise all snapshot at the same entry, and a snapshot pauses a member's raft loop
 * for tens of milliseconds (collecting and writing the store) while it competes for the disk:
 * two members at once leave a three-member cluster without a quorum for that time (seen as
 * 130–220 ms stalls of every write under 64 clients).
 */
export const SNAPSHOT_SPREAD = 0.25;

/**
 * The WAL trigger counts growth, not size: the entries kept behind a snapshot for slow followers
 * can alone exceed the limit when values are large, and a size trigger then took a snapshot on
 * every Ready (seen in a 30-minute `lichen check`: a 40 MB snapshot every 1.5 s).
 */
export function snapshotDue(policy: SnapshotPolicy, progress: SnapshotProgress): boolean {
  const stretch = 1 + SNAPSHOT_SPREAD * (progress.spread ?? 0);
  if (progress.entriesSinceSnapshot <= 0) return false;
  if (progress.entriesSinceSnapshot >= policy.snapshotEntries * stretch) return true;
  return progress.walBytes - progress.walBytesAfterCompaction >= policy.snapshotWalBytes * stretch;
}
