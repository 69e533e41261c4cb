// etcd 3.4's backend layout: the buckets etcd keeps in its bbolt file and how it encodes each
// pair (etcd-io/etcd release-3.4: mvcc/kvstore.go, mvcc/revision.go, mvcc/kvstore_compaction.go,
// lease/lessor.go, etcdserver/api/membership/store.go, auth/store.go, etcdserver/api/v3alarm).
//
//   key              main u64 BE, '_', sub u64 BE [, 't' for a tombstone] → mvccpb.KeyValue
//                    (a tombstone's value holds only the key)
//   meta             consistent_index → u64 BE (the raft index applied last)
//                    finishedCompactRev, scheduledCompactRev → a revision key (sub 0)
//   lease            lease id as int64 BE → leasepb.Lease {ID, TTL, RemainingTTL}
//   members          member id in lowercase hex → the member as JSON
//   members_removed  member id in lowercase hex → "removed"
//   cluster          clusterVersion → "3.4.0"
//   alarm            etcdserverpb.AlarmMember → empty
//   auth             authEnabled → [1] or [0], authRevision → u64 BE
//   authUsers        name → authpb.User;  authRoles: name → authpb.Role
import { ErrorCode, LichenError } from '../errors.js';
import type { StoredRecord } from '../mvcc/index.js';
import { bytesField, decodeMessage, encodeMessage, intField } from './proto.js';

export const Bucket = {
  alarm: Buffer.from('alarm'),
  auth: Buffer.from('auth'),
  authRoles: Buffer.from('authRoles'),
  authUsers: Buffer.from('authUsers'),
  cluster: Buffer.from('cluster'),
  key: Buffer.from('key'),
  lease: Buffer.from('lease'),
  members: Buffer.from('members'),
  membersRemoved: Buffer.from('members_removed'),
  meta: Buffer.from('meta'),
} as const;

export const META_CONSISTENT_INDEX = Buffer.from('consistent_index');
export const META_FINISHED_COMPACT = Buffer.from('finishedCompactRev');
export const META_SCHEDULED_COMPACT = Buffer.from('scheduledCompactRev');
export const AUTH_REVISION = Buffer.from('authRevision');
export const CLUSTER_VERSION = Buffer.from('clusterVersion');
/** The cluster version etcd 3.4 records; the layout written here is 3.4's. */
export const CLUSTER_VERSION_VALUE = Buffer.from('3.4.0');
export const MEMBER_REMOVED = Buffer.from('removed');

const REVISION_KEY_BYTES = 17;
const TOMBSTONE_MARK = 0x74; // 't'

export function u64(value: number | bigint): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

/** etcd's revToBytes, plus appendMarkTombstone for a deletion. */
export function revisionKey(main: number, sub: number, tombstone = false): Buffer {
  const key = Buffer.allocUnsafe(REVISION_KEY_BYTES + (tombstone ? 1 : 0));
  key.writeBigUInt64BE(BigInt(main), 0);
  key[8] = 0x5f; // '_'
  key.writeBigUInt64BE(BigInt(sub), 9);
  if (tombstone) key[REVISION_KEY_BYTES] = TOMBSTONE_MARK;
  return key;
}

export function parseRevisionKey(key: Uint8Array): { main: number; sub: number; tombstone: boolean } {
  const buf = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  const tombstone = buf.length === REVISION_KEY_BYTES + 1 && buf[REVISION_KEY_BYTES] === TOMBSTONE_MARK;
  if ((buf.length !== REVISION_KEY_BYTES && !tombstone) || buf[8] !== 0x5f) {
    throw invalid(`a key bucket key must be a revision (8 bytes, '_', 8 bytes[, 't']), got ${buf.toString('hex')}`);
  }
  return { main: safe(buf.readBigUInt64BE(0), 'main revision'), sub: safe(buf.readBigUInt64BE(9), 'sub revision'), tombstone };
}

/** A stored revision as mvccpb.KeyValue: key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6. */
export function encodeKeyValue(main: number, record: StoredRecord): Buffer {
  if (record.tombstone) return encodeMessage([[1, record.key]]);
  return encodeMessage([
    [1, record.key],
    [2, record.createRevision],
    [3, main],
    [4, record.version],
    [5, record.value],
    [6, record.lease],
  ]);
}

export interface EtcdKeyValue {
  key: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Buffer;
  /** A bigint when it does not fit a safe integer (etcd's lease ids use 63 bits). */
  lease: number | bigint;
}

export function decodeKeyValue(bytes: Uint8Array): EtcdKeyValue {
  const fields = decodeMessage(bytes, 'mvccpb.KeyValue');
  return {
    key: bytesField(fields, 1),
    createRevision: safe(intField(fields, 2), 'create_revision'),
    modRevision: safe(intField(fields, 3), 'mod_revision'),
    version: safe(intField(fields, 4), 'version'),
    value: bytesField(fields, 5),
    lease: intField(fields, 6),
  };
}

/** leasepb.Lease: ID 1, TTL 2, RemainingTTL 3 (0: not checkpointed). */
export function encodeLease(id: number, ttl: number): Buffer {
  return encodeMessage([
    [1, id],
    [2, ttl],
  ]);
}

export function decodeLease(bytes: Uint8Array): { id: number | bigint; ttl: number } {
  const fields = decodeMessage(bytes, 'leasepb.Lease');
  return { id: intField(fields, 1), ttl: safe(intField(fields, 2), 'lease TTL') };
}

/** etcdserverpb.AlarmMember (memberID 1, alarm 2): the key of a raised alarm; its value is empty. */
export function encodeAlarmMember(memberId: number, alarm: number): Buffer {
  return encodeMessage([
    [1, memberId],
    [2, alarm],
  ]);
}

export function decodeAlarmMember(bytes: Uint8Array): { memberId: number | bigint; alarm: number } {
  const fields = decodeMessage(bytes, 'etcdserverpb.AlarmMember');
  return { memberId: intField(fields, 1), alarm: safe(intField(fields, 2), 'alarm type') };
}

/** A member as etcd's membership store marshals it (Go field order; empty optional fields left out). */
export interface EtcdMember {
  id: number;
  peerURLs: string[];
  isLearner?: boolean;
  name?: string;
  clientURLs?: string[];
}

export function encodeMember(member: EtcdMember): Buffer {
  const json: EtcdMember = { id: member.id, peerURLs: member.peerURLs };
  if (member.isLearner) json.isLearner = true;
  if (member.name) json.name = member.name;
  if (member.clientURLs && member.clientURLs.length > 0) json.clientURLs = member.clientURLs;
  return Buffer.from(JSON.stringify(json));
}

/** etcd's types.ID.String(): lowercase hex without padding. */
export function memberKey(id: number): Buffer {
  return Buffer.from(id.toString(16));
}

function safe(value: number | bigint, what: string): number {
  if (typeof value === 'bigint' ? value > BigInt(Number.MAX_SAFE_INTEGER) : !Number.isSafeInteger(value)) {
    throw invalid(`${what} ${value} is above 2^53 - 1, the largest number Lichen keeps (JavaScript numbers)`);
  }
  return Number(value);
}

function invalid(message: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, `etcd backend: ${message}`);
}
