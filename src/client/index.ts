// The Lichen client SDK (works with any etcd v3 server too).
export { LichenClient } from './client.js';
export type { GetOptions, PutOptions, DeleteOptions, StatusResult, MembersResult } from './client.js';
export type { ClientOptions } from './transport.js';
export { channelCredentials, type ClientTls } from './tls.js';
export { compare, op, TxnBuilder } from './txn.js';
export type { CompareOperator, TxnResult, OpResult } from './txn.js';
export { Watcher } from './watch.js';
export type { WatchOptions, WatchBatch } from './watch.js';
export { KeepAlive } from './lease.js';
export type { KeepAliveOptions } from './lease.js';
export { describeAttemptFailure, fromGrpcError } from './errors.js';
export { prefixEnd } from './types.js';
export type { KeyValue, Header, RangeResult, PutResult, DeleteResult, WatchEvent, Member, Bytes, Alarm, AlarmName } from './types.js';
