// Lichen's state rendered as etcd 3.4's backend: every bucket etcd keeps, in bbolt's order
// (buckets by name, pairs by key), fed to a sink: a bbolt file (the Snapshot RPC, `lichen
// snapshot save`) or a hash (the Hash RPC). The state comes from one consistent view, so the
// rendering is of one applied index however long it takes; it yields to the event loop every
// MiB so that a large store does not stall the server.
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Member } from '../api/backend.js';
import type { AuthState } from '../auth/index.js';
import type { MvccStateView } from '../mvcc/index.js';
import {
  AUTH_ENABLED,
  AUTH_REVISION,
  Bucket,
  CLUSTER_VERSION,
  CLUSTER_VERSION_VALUE,
  MEMBER_REMOVED,
  META_CONSISTENT_INDEX,
  META_FINISHED_COMPACT,
  META_SCHEDULED_COMPACT,
  encodeAlarmMember,
  encodeAuthRole,
  encodeAuthUser,
  encodeKeyValue,
  encodeLease,
  encodeMember,
  memberKey,
  revisionKey,
  u64,
} from './layout.js';

/** Where a rendering goes: buckets in ascending name order, pairs in ascending key order. */
export interface BucketSink {
  bucket(name: Uint8Array): void;
  put(key: Uint8Array, value: Uint8Array): void;
}

/** Everything a member's backend holds, read at one applied index. */
export interface BackendSource {
  mvcc: MvccStateView;
  /** Users, roles and the enable flag, read at the same applied index as `mvcc`. */
  auth: AuthState;
  members: Member[];
  removedMemberIds: number[];
}

const EMPTY = new Uint8Array(0);
/** Bytes rendered between two yields to the event loop. */
const RENDER_SLICE_BYTES = 1 << 20;

export async function renderBackend(source: BackendSource, sink: BucketSink, pause: () => Promise<unknown> = nextTurn): Promise<void> {
  const { mvcc } = source;
  let sliceBytes = 0;
  /** Adds a pair; returns a promise to wait for only when a slice is done (most calls return none). */
  const put = (key: Uint8Array, value: Uint8Array): Promise<unknown> | undefined => {
    sink.put(key, value);
    sliceBytes += key.length + value.length;
    if (sliceBytes < RENDER_SLICE_BYTES) return undefined;
    sliceBytes = 0;
    return pause();
  };

  // Keys are encoded messages: their byte order is not the alarms' order.
  const byKey = <T>(list: T[], key: (item: T) => Buffer): [Buffer, T][] =>
    list.map((item): [Buffer, T] => [key(item), item]).sort(([a], [b]) => Buffer.compare(a, b));

  sink.bucket(Bucket.alarm);
  for (const [key] of byKey([...mvcc.alarms()], (a) => encodeAlarmMember(a.memberId, a.alarm))) await put(key, EMPTY);
  const { auth } = source;
  sink.bucket(Bucket.auth);
  // etcd writes the flag only once auth was enabled or disabled; absent reads as disabled.
  if (auth.enabled) await put(AUTH_ENABLED, Uint8Array.of(1));
  await put(AUTH_REVISION, u64(auth.revision));
  // Names are the keys, and the lists are sorted by name as strings: byte order for ASCII names,
  // so sort the encoded keys to be right for every name.
  sink.bucket(Bucket.authRoles);
  for (const [key, role] of byKey(auth.roles, (r) => Buffer.from(r.name))) await put(key, encodeAuthRole(role));
  sink.bucket(Bucket.authUsers);
  for (const [key, user] of byKey(auth.users, (u) => Buffer.from(u.name))) await put(key, encodeAuthUser(user));
  sink.bucket(Bucket.cluster);
  await put(CLUSTER_VERSION, CLUSTER_VERSION_VALUE);

  sink.bucket(Bucket.key);
  for (const { main, sub, record } of mvcc.records()) {
    // Not `await put(...)` for every key version: a promise per pair was a fifth of the CPU.
    const slice = put(revisionKey(main, sub, record.tombstone), encodeKeyValue(main, record));
    if (slice) await slice;
  }
  sink.bucket(Bucket.lease);
  for (const lease of mvcc.leases()) await put(u64(lease.id), encodeLease(lease.id, lease.ttl));

  // Member keys are hex strings, whose byte order is not the ids' numeric order either.
  sink.bucket(Bucket.members);
  for (const [key, member] of byKey(source.members, (m) => memberKey(m.id))) {
    await put(key, encodeMember(member));
  }
  sink.bucket(Bucket.membersRemoved);
  for (const [key] of byKey(source.removedMemberIds, memberKey)) await put(key, MEMBER_REMOVED);

  sink.bucket(Bucket.meta);
  await put(META_CONSISTENT_INDEX, u64(mvcc.appliedIndex));
  if (mvcc.compactRevision > 0) {
    // Lichen compacts within the apply that records it, so scheduled and finished are equal.
    const compacted = revisionKey(mvcc.compactRevision, 0);
    await put(META_FINISHED_COMPACT, compacted);
    await put(META_SCHEDULED_COMPACT, compacted);
  }
}
