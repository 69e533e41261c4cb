// Lichen's state through etcd's backend format and back: random command streams round-trip
// exactly (every revision's view, the history, leases, compaction); the Hash leaves out only the
// consistent index; etcd lease ids above 2^53 are renumbered with their keys. What real etcd 3.4
// makes of these files is tested in src/e2e/snapshot.test.ts.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoltReader, BoltWriter } from '../bbolt/index.js';
import { MemoryEngine } from '../engine/index.js';
import { MvccStore, writeMvccState } from '../mvcc/index.js';
import { Harness, b, randomCommands } from '../mvcc/testkit.js';
import type { Member } from '../api/backend.js';
import { AuthStore, initialAuthState, type AuthState } from '../auth/index.js';
import type { AuthCommand } from '../mvcc/command.js';
import { backendHash, readEtcdBackend, snapshotStatus, writeBackendFile, type BackendSource } from './index.js';
import { Bucket, encodeKeyValue, encodeLease, revisionKey, u64 } from './layout.js';

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'lichen-backup-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const MEMBERS: Member[] = [
  { id: 0x1b, name: 'n2', peerURLs: ['http://127.0.0.1:2390'], clientURLs: ['http://127.0.0.1:2389'], isLearner: false },
  { id: 0xa, name: 'n1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: [], isLearner: true },
];

function source(store: MvccStore, auth = initialAuthState()): BackendSource {
  return { mvcc: store.stateView(), auth, members: MEMBERS, removedMemberIds: [0x30, 0x4] };
}

async function fileOf(store: MvccStore, auth?: AuthState): Promise<string> {
  const path = join(dir, `snapshot-${Math.random()}.db`);
  const view = source(store, auth);
  try {
    await writeBackendFile(view, path, async () => {});
  } finally {
    view.mvcc.close();
  }
  return path;
}

/** A new store filled from a backend file, as the restore fills one. */
function restore(path: string): MvccStore {
  const reader = BoltReader.open(path);
  try {
    const contents = readEtcdBackend(reader);
    const engine = new MemoryEngine();
    writeMvccState(engine, contents.state);
    return MvccStore.open(engine);
  } finally {
    reader.close();
  }
}

async function hashOf(store: MvccStore): Promise<number> {
  const view = source(store);
  try {
    return await backendHash(view, async () => {});
  } finally {
    view.mvcc.close();
  }
}

function storeWith(seed: number, count: number, firstIndex = 1): Harness {
  const harness = Harness.open(new MemoryEngine());
  harness.index = firstIndex - 1;
  for (const command of randomCommands(seed, count)) harness.apply(command);
  return harness;
}

describe("etcd's backend format", () => {
  it('round-trips random histories: every revision since the compaction, leases, hashes', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const original = storeWith(seed, 400);
      const copy = new Harness(restore(await fileOf(original.store)), new MemoryEngine());
      assert.equal(copy.store.currentRevision, original.store.currentRevision, `seed ${seed}: revision`);
      assert.equal(copy.store.compactRevision, original.store.compactRevision, `seed ${seed}: compaction`);
      for (let revision = Math.max(1, original.store.compactRevision); revision <= original.store.currentRevision; revision++) {
        assert.deepEqual(copy.all(revision), original.all(revision), `seed ${seed}: the view at revision ${revision}`);
      }
      assert.deepEqual(copy.store.leases(), original.store.leases(), `seed ${seed}: leases`);
      for (const { ID } of original.store.leases()) assert.deepEqual(copy.store.lease(ID), original.store.lease(ID));
      assert.deepEqual(copy.store.hashKV(), original.store.hashKV(), `seed ${seed}: the stored records are identical`);
    }
  });

  it('lays buckets out as etcd 3.4 does and reports what etcdctl snapshot status reports', async () => {
    const harness = Harness.open(new MemoryEngine());
    harness.put('a', '1');
    harness.ok({ type: 'leaseGrant', request: { ID: 0x1234, TTL: 100 } });
    harness.put('b', '2', { lease: 0x1234 });
    harness.del('a');
    harness.ok({ type: 'compact', request: { revision: 3 } });
    harness.ok({ type: 'alarmActivate', memberId: 0x1b, alarm: 1 });
    harness.ok({ type: 'alarmActivate', memberId: 5, alarm: 2 });
    const path = await fileOf(harness.store);
    const reader = BoltReader.open(path);
    const contents = new Map<string, [string, string][]>();
    try {
      for (const name of reader.bucketNames()) {
        contents.set(name.toString(), [...reader.bucket(name)!].map((p) => [p.key.toString('hex'), p.value.toString('hex')]));
      }
    } finally {
      reader.close();
    }
    const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
    const text = (value: string): string => Buffer.from(value).toString('hex');
    assert.deepEqual([...contents.keys()], ['alarm', 'auth', 'authRoles', 'authUsers', 'cluster', 'key', 'lease', 'members', 'members_removed', 'meta']);
    assert.deepEqual(contents.get('auth'), [[text('authRevision'), '0000000000000001']]);
    assert.deepEqual(contents.get('cluster'), [[text('clusterVersion'), text('3.4.0')]]);
    // Revision keys: main, '_', sub; a deletion ends in 't' and keeps only the key.
    assert.deepEqual(contents.get('key'), [
      ['0000000000000002' + '5f' + '0000000000000000', '0a0161' + '1002' + '1802' + '2001' + '2a0131'],
      ['0000000000000003' + '5f' + '0000000000000000', '0a0162' + '1003' + '1803' + '2001' + '2a0132' + '30b424'],
      ['0000000000000004' + '5f' + '0000000000000000' + '74', '0a0161'],
    ]);
    assert.deepEqual(contents.get('lease'), [['0000000000001234', '08b424' + '1064']]);
    // Member ids in hex sort as text: "1b" before "a"; etcd's JSON field order, empty fields left out.
    assert.deepEqual(contents.get('members'), [
      [text('1b'), text('{"id":27,"peerURLs":["http://127.0.0.1:2390"],"name":"n2","clientURLs":["http://127.0.0.1:2389"]}')],
      [text('a'), text('{"id":10,"peerURLs":["http://127.0.0.1:2380"],"isLearner":true,"name":"n1"}')],
    ]);
    assert.deepEqual(contents.get('members_removed'), [[text('30'), text('removed')], [text('4'), text('removed')]]);
    assert.deepEqual(contents.get('meta'), [
      [text('consistent_index'), hex(u64(harness.store.appliedIndex))],
      [text('finishedCompactRev'), hex(revisionKey(3, 0))],
      [text('scheduledCompactRev'), hex(revisionKey(3, 0))],
    ]);
    // AlarmMember {memberID, alarm} as the key, sorted as bytes: member 5 (CORRUPT) before 0x1b (NOSPACE).
    assert.deepEqual(contents.get('alarm'), [['08051002', ''], ['081b1001', '']]);
    assert.equal(contents.get('authRoles')!.length + contents.get('authUsers')!.length, 0);
    const status = snapshotStatus(path);
    assert.equal(status.revision, 4);
    assert.equal(status.totalKey, 15, 'alarm 2, auth 1, cluster 1, key 3, lease 1, members 2, members_removed 2, meta 3');
    assert.equal(status.totalSize, 14 * 4096, 'two metas, ten buckets, the root, the freelist');
  });

  it("carries users, roles and the auth flag as etcd's authpb records, and reads them back", async () => {
    const harness = Harness.open(new MemoryEngine());
    const auth = AuthStore.open(harness.engine);
    const commands: AuthCommand[] = [
      { type: 'userAdd', name: 'root', passwordHash: 'r', noPassword: false },
      { type: 'userGrantRole', user: 'root', role: 'root' },
      { type: 'roleAdd', name: 'reader' },
      { type: 'roleGrantPermission', name: 'reader', permType: 0, key: b('k'), rangeEnd: b('l') },
      { type: 'roleGrantPermission', name: 'reader', permType: 2, key: b('a'), rangeEnd: b('') },
      { type: 'userAdd', name: 'bot', passwordHash: '', noPassword: true },
      { type: 'userGrantRole', user: 'bot', role: 'reader' },
      { type: 'authEnable' },
    ];
    for (const command of commands) harness.engine.write(auth.execute(command));
    const path = await fileOf(harness.store, auth.state());
    const reader = BoltReader.open(path);
    try {
      const pairs = (name: Buffer): [string, string][] => [...reader.bucket(name)!].map((p) => [p.key.toString(), p.value.toString('hex')]);
      const hex = (text: string): string => Buffer.from(text).toString('hex');
      assert.deepEqual(pairs(Bucket.auth), [
        ['authEnabled', '01'],
        ['authRevision', '0000000000000008'],
      ]);
      // Role {name 1, keyPermission 2: {permType 1 (READ 0 left out), key 2, range_end 3}}, permissions by key.
      assert.deepEqual(pairs(Bucket.authRoles), [['reader', '0a06' + hex('reader') + '1205' + '0802' + '1201' + hex('a') + '1206' + '1201' + hex('k') + '1a01' + hex('l')]]);
      // User {name 1, password 2, roles 3, options 4: {no_password 1}}.
      assert.deepEqual(pairs(Bucket.authUsers), [
        ['bot', '0a03' + hex('bot') + '1a06' + hex('reader') + '2202' + '0801'],
        ['root', '0a04' + hex('root') + '1201' + hex('r') + '1a04' + hex('root')],
      ]);
      const plain = (state: AuthState) => ({
        ...state,
        roles: state.roles.map((role) => ({ ...role, permissions: role.permissions.map((p) => ({ ...p, key: Buffer.from(p.key), rangeEnd: Buffer.from(p.rangeEnd) })) })),
      });
      assert.deepEqual(plain(readEtcdBackend(reader).auth), plain(auth.state()));
    } finally {
      reader.close();
    }
  });

  it('Hash is the same for equal data applied at other raft indexes, and changes with a write', async () => {
    const a = storeWith(7, 200, 1);
    const b = storeWith(7, 200, 5000);
    assert.notEqual(a.store.appliedIndex, b.store.appliedIndex);
    assert.equal(await hashOf(a.store), await hashOf(b.store), 'the consistent index is left out');
    const statusA = snapshotStatus(await fileOf(a.store));
    const statusB = snapshotStatus(await fileOf(b.store));
    assert.notEqual(statusA.hash, statusB.hash, 'snapshot status hashes the consistent index too, as etcdctl does');
    const before = await hashOf(a.store);
    a.put('one-more', 'write');
    assert.notEqual(await hashOf(a.store), before);
  });

  it('renumbers etcd lease ids above 2^53 with the keys attached to them', () => {
    const path = join(dir, 'etcd.db');
    const big = 0x6c59a24a36f6a109n;
    const low = Number(big & (2n ** 53n - 1n));
    const writer = BoltWriter.create(path);
    writer.bucket(Bucket.key);
    const kv = (main: number, key: string, lease: bigint | number): Buffer => {
      const encoded = encodeKeyValue(main, { key: b(key), value: b('v'), createRevision: main, version: 1, lease: 0, tombstone: false });
      // Field 6 (lease) as a varint of the full 64-bit id, as etcd writes it.
      const varint: number[] = [];
      for (let rest = BigInt(lease); ; rest >>= 7n) {
        if (rest < 0x80n) {
          varint.push(Number(rest));
          break;
        }
        varint.push(Number(rest & 0x7fn) | 0x80);
      }
      return Buffer.concat([encoded, Buffer.from([0x30, ...varint])]);
    };
    writer.put(revisionKey(2, 0), kv(2, 'held-by-big', big));
    writer.put(revisionKey(3, 0), kv(3, 'held-by-small', low));
    writer.bucket(Bucket.lease);
    // A lease whose id is exactly the big one's low bits: the big one must move past it.
    writer.put(u64(low), encodeLease(low, 30));
    const bigLease = Buffer.concat([Buffer.from([0x08]), Buffer.from([0x89, 0xc2, 0xda, 0xb7, 0xa3, 0xc9, 0xe8, 0xac, 0x6c]), Buffer.from([0x10, 0x64])]);
    writer.put(Buffer.from(big.toString(16).padStart(16, '0'), 'hex'), bigLease);
    writer.finish();

    const reader = BoltReader.open(path);
    try {
      const contents = readEtcdBackend(reader);
      assert.deepEqual(contents.renumberedLeases, [{ from: big, to: low + 1 }]);
      assert.deepEqual([...contents.state.leases], [
        { id: low, ttl: 30 },
        { id: low + 1, ttl: 100 },
      ]);
      assert.deepEqual([...contents.state.records].map((r) => [Buffer.from(r.record.key).toString(), r.record.lease]), [
        ['held-by-big', low + 1],
        ['held-by-small', low],
      ]);
    } finally {
      reader.close();
    }
  });

  it('refuses a file that is not an etcd backend', () => {
    const path = join(dir, 'other.db');
    const writer = BoltWriter.create(path);
    writer.bucket(b('something'));
    writer.put(b('k'), b('v'));
    writer.finish();
    const reader = BoltReader.open(path);
    try {
      assert.throws(() => readEtcdBackend(reader), /the file has no "key" bucket: it is not an etcd v3 backend/);
    } finally {
      reader.close();
    }
  });
});
