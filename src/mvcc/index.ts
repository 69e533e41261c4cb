// The MVCC layer's public surface: the etcd v3 data model over an Engine.
export * from './types.js';
export {
  type Command,
  type MvccCommand,
  type AuthCommand,
  type AuthorizedCommand,
  PermissionType,
  isAuthCommand,
  encodeCommand,
  decodeCommand,
  COMMAND_FORMAT_VERSION,
} from './command.js';
export {
  MvccStore,
  type ApplyResult,
  type ApplyResponse,
  type MvccStoreOptions,
  type LeaseInfo,
  type ScanEventsOptions,
  type ScanEventsResult,
  leaseIdFromIndex,
  isReadOnlyTxn,
  isSerializableTxn,
  txnHasPut,
  noSpaceError,
  leaseNotFoundError,
} from './store.js';
export { RecordCache, type RecordCachePart } from './record-cache.js';
export { WatchHub, partOf, type Watcher, type WatchMessage, type WatchRequest, type WatchSink, type WatchHubOptions } from './watch.js';
export { Lessor, type LessorOptions } from './lessor.js';
export { MvccStateView, writeMvccState, type MvccStateInput, type RevisionRecord, type LeaseRecord, type StoredRecord } from './state.js';
