// An etcd 3.4 backend file (a snapshot from etcd or from Lichen) read back as Lichen's MVCC
// state: the key bucket's revisions, the leases, the compaction revisions, and the users, roles
// and auth flag (etcd's restore keeps them too). The key bucket is
// streamed from the file, so memory stays bounded by the leases, not by the keys.
//
// What is not carried over, as etcd's own restore does not either: the membership (members,
// members_removed, cluster), which the restore replaces with the new cluster's, and the
// consistent index, which belongs to the old raft log. Nor are the alarms, which etcd's restore
// keeps: they name members of the old cluster (by ids Lichen may not even hold) and describe its
// state, not the new one's; they are returned so that the restore can say which were raised.
//
// Lease ids: etcd draws them from 63 bits; Lichen keeps ids below 2^53 (JavaScript numbers). A
// lease id at or above 2^53 is renumbered to its low 53 bits (the next free id on a collision),
// and every key attached to it follows; the caller reports the renumbering.
import type { BoltReader } from '../bbolt/index.js';
import { ErrorCode, LichenError } from '../errors.js';
import type { AuthState } from '../auth/index.js';
import type { LeaseRecord, MvccStateInput, RevisionRecord } from '../mvcc/index.js';
import {
  AUTH_ENABLED,
  AUTH_REVISION,
  Bucket,
  META_FINISHED_COMPACT,
  META_SCHEDULED_COMPACT,
  decodeAlarmMember,
  decodeAuthRole,
  decodeAuthUser,
  decodeKeyValue,
  decodeLease,
  parseRevisionKey,
} from './layout.js';

const SAFE_ID_MASK = (1n << 53n) - 1n;

export interface EtcdBackendContents {
  state: MvccStateInput;
  /** A compaction etcd had scheduled but not finished: the restore completes it. */
  scheduledCompactRevision: number;
  /** Lease ids at or above 2^53 and the ids they were given. */
  renumberedLeases: { from: bigint; to: number }[];
  /** The alarms raised in the file (not restored). */
  alarms: { memberId: number | bigint; alarm: number }[];
  auth: AuthState;
}

export function readEtcdBackend(reader: BoltReader): EtcdBackendContents {
  const keyBucket = reader.bucket(Bucket.key);
  if (keyBucket === undefined) throw invalid('the file has no "key" bucket: it is not an etcd v3 backend');
  const { leases, renumber, renumberedLeases } = readLeases(reader);
  const meta = smallBucket(reader, Bucket.meta);
  const revisionOf = (name: Buffer): number => {
    const value = meta(name);
    return value === undefined ? 0 : parseRevisionKey(value).main;
  };
  const compactRevision = revisionOf(META_FINISHED_COMPACT);
  return {
    state: { compactRevision, records: records(keyBucket, renumber), leases },
    scheduledCompactRevision: Math.max(compactRevision, revisionOf(META_SCHEDULED_COMPACT)),
    renumberedLeases,
    alarms: [...(reader.bucket(Bucket.alarm) ?? [])].map((pair) => decodeAlarmMember(pair.key)),
    auth: readAuth(reader),
  };
}

/** The auth buckets; a file without them (etcd before 3.0 auth) is a store where auth was never used. */
function readAuth(reader: BoltReader): AuthState {
  const flags = smallBucket(reader, Bucket.auth);
  const revision = flags(AUTH_REVISION);
  if (revision !== undefined && revision.length !== 8) throw invalid(`authRevision has ${revision.length} bytes, expected 8`);
  return {
    enabled: flags(AUTH_ENABLED)?.[0] === 1,
    revision: revision === undefined ? 1 : Number(revision.readBigUInt64BE()),
    users: [...(reader.bucket(Bucket.authUsers) ?? [])].map((pair) => decodeAuthUser(pair.value)),
    roles: [...(reader.bucket(Bucket.authRoles) ?? [])].map((pair) => decodeAuthRole(pair.value)),
  };
}

/** A bucket of a few named values (meta, auth), read whole: the value of a key, if there is one. */
function smallBucket(reader: BoltReader, name: Buffer): (key: Buffer) => Buffer | undefined {
  const values = new Map<string, Buffer>();
  for (const pair of reader.bucket(name) ?? []) values.set(pair.key.toString('latin1'), pair.value);
  return (key) => values.get(key.toString('latin1'));
}

function* records(pairs: Iterable<{ key: Buffer; value: Buffer }>, renumber: (id: number | bigint) => number): Iterable<RevisionRecord> {
  for (const { key, value } of pairs) {
    const { main, sub, tombstone } = parseRevisionKey(key);
    const kv = decodeKeyValue(value);
    yield {
      main,
      sub,
      record: tombstone
        ? { key: kv.key, value: new Uint8Array(0), createRevision: 0, version: 0, lease: 0, tombstone: true }
        : { key: kv.key, value: kv.value, createRevision: kv.createRevision, version: kv.version, lease: renumber(kv.lease), tombstone: false },
    };
  }
}

function readLeases(reader: BoltReader): {
  leases: LeaseRecord[];
  renumber: (id: number | bigint) => number;
  renumberedLeases: { from: bigint; to: number }[];
} {
  const found: { id: number | bigint; ttl: number }[] = [];
  for (const pair of reader.bucket(Bucket.lease) ?? []) found.push(decodeLease(pair.value));
  const used = new Set(found.flatMap((lease) => (typeof lease.id === 'number' ? [lease.id] : [])));
  const renumbered = new Map<bigint, number>();
  for (const { id } of found) {
    if (typeof id === 'number') continue;
    let to = lowBits(id);
    while (used.has(to)) to = to >= Number.MAX_SAFE_INTEGER ? 1 : to + 1;
    used.add(to);
    renumbered.set(id, to);
  }
  // A key may name a lease the file no longer has (etcd only warns then): it keeps the low bits.
  const renumber = (id: number | bigint): number => (typeof id === 'number' ? id : (renumbered.get(id) ?? lowBits(id)));
  return {
    leases: found.map((lease) => ({ id: renumber(lease.id), ttl: lease.ttl })).sort((a, b) => a.id - b.id),
    renumber,
    renumberedLeases: [...renumbered].map(([from, to]) => ({ from, to })),
  };
}

function lowBits(id: bigint): number {
  return Number(id & SAFE_ID_MASK) || 1;
}

function invalid(message: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, `etcd backend: ${message}`);
}
