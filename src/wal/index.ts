// The write-ahead log and the snapshot files of one raft group.
export { Wal, SEGMENT_BYTES_DEFAULT, PREALLOCATE_BYTES, segmentFileName } from './wal.js';
export type { WalOptions, WalState, WalUpdate } from './wal.js';
export { ReceivedSnapshot, SnapshotReceiver, SnapshotStore, SNAPSHOTS_KEPT, type LoadedSnapshot } from './snapshot-store.js';
export { WalCorruptError } from './errors.js';
export { crc32c, crc32cUpdate } from './crc32c.js';
export type { SyncEvent, DiskStats } from './disk.js';
