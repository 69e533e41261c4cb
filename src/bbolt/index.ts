// bbolt files (go.etcd.io/bbolt's page format, the file etcd keeps its backend in): a streaming
// writer, a reader and bbolt's integrity check. Nothing here knows what etcd stores in them.
export { BoltWriter } from './writer.js';
export type { BoltWriterOptions, BoltFileSummary } from './writer.js';
export { BoltReader } from './reader.js';
export type { BoltPair } from './reader.js';
export { PAGE_BYTES_DEFAULT } from './format.js';
