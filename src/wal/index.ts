// The write-ahead logs (the one shared by every raft group of a process; the single-group log of
// lichen 0.1 directories) and the snapshot files.
export { Wal, SEGMENT_BYTES_DEFAULT, PREALLOCATE_BYTES, segmentFileName } from './wal.js';
export type { WalOptions, WalState, WalUpdate } from './wal.js';
export { ReceivedSnapshot, SnapshotReceiver, SnapshotStore, SNAPSHOTS_KEPT, type LoadedSnapshot } from './snapshot-store.js';
export { WalCorruptError } from './errors.js';
export { crc32c, crc32cUpdate } from './crc32c.js';
export { DiskBudget } from './disk.js';
export type { SyncEvent, DiskStats, DiskFaults } from './disk.js';
export { SharedWal, GroupLog, sharedSegmentFileName } from './shared-wal.js';
export type { SharedWalOptions, RecoveredGroup, GroupUpdate } from './shared-wal.js';
