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
//                    (etcd 3.4's auth/authpb/auth.proto, encoded below)
import { ErrorCode, LichenError } from '../errors.js';
import type { Permission, Role, User } from '../auth/index.js';
import type { PermissionType, StoredRecord } from '../mvcc/index.js';
import { bytesField, decodeMessage, encodeMessage, intField, type FieldValue } from './proto.js';

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
export const AUTH_ENABLED = Buffer.from('authEnabled');
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

/**
 * authpb.User: name 1, password 2 (the bcrypt hash), roles 3 (repeated), options 4
 * (authpb.UserAddOptions: no_password 1).
 */
export function encodeAuthUser(user: User): Buffer {
  return encodeMessage([
    [1, Buffer.from(user.name)],
    [2, Buffer.from(user.passwordHash)],
    ...user.roles.map((role): [number, Buffer] => [3, Buffer.from(role)]),
    [4, encodeMessage([[1, user.noPassword ? 1 : 0]])],
  ]);
}

export function decodeAuthUser(bytes: Uint8Array): User {
  const fields = decodeMessage(bytes, 'authpb.User');
  const options = decodeMessage(bytesField(fields, 4), 'authpb.UserAddOptions');
  const roles = (fields.get(3) ?? []).map((role) => text(role, 'user role')).sort();
  return { name: text(bytesField(fields, 1), 'user name'), passwordHash: bytesField(fields, 2).toString(), noPassword: intField(options, 1) === 1, roles };
}

/** authpb.Role: name 1, keyPermission 2 (repeated authpb.Permission: permType 1, key 2, range_end 3). */
export function encodeAuthRole(role: Role): Buffer {
  return encodeMessage([
    [1, Buffer.from(role.name)],
    ...role.permissions.map((p): [number, Buffer] => [
      2,
      encodeMessage([
        [1, p.permType],
        [2, p.key],
        [3, p.rangeEnd],
      ]),
    ]),
  ]);
}

export function decodeAuthRole(bytes: Uint8Array): Role {
  const fields = decodeMessage(bytes, 'authpb.Role');
  const permissions = (fields.get(2) ?? []).map((value): Permission => {
    const p = decodeMessage(asBytes(value, 'keyPermission'), 'authpb.Permission');
    const permType = intField(p, 1);
    if (permType !== 0 && permType !== 1 && permType !== 2) throw invalid(`permission type ${permType} is not READ, WRITE or READWRITE`);
    return { permType: permType as PermissionType, key: bytesField(p, 2), rangeEnd: bytesField(p, 3) };
  });
  permissions.sort((a, b) => Buffer.compare(a.key, b.key));
  return { name: text(bytesField(fields, 1), 'role name'), permissions };
}

function asBytes(value: FieldValue, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalid(`${what} is a number, expected bytes`);
  return value;
}

function text(value: FieldValue, what: string): string {
  return Buffer.from(asBytes(value, what)).toString();
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
