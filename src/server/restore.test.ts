// `lichen snapshot restore` in-process: the data directory it builds opens as a member of the new
// cluster holding the snapshot's data, and it refuses what etcd's restore refuses, in etcd's words.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthStore } from '../auth/index.js';
import { writeBackendFile } from '../backup/index.js';
import { MemoryEngine } from '../engine/index.js';
import { createSilentLogger } from '../log.js';
import { Harness } from '../mvcc/testkit.js';
import { defaultNodeConfig } from './config.js';
import { clusterIdOf, memberIdOf } from './ids.js';
import { restoreSnapshot, type RestoreOptions } from './restore.js';
import { openNodeState } from './state.js';

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'lichen-restore-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const CLUSTER = [
  { name: 'n1', peerAddress: '127.0.0.1:2380' },
  { name: 'n2', peerAddress: '127.0.0.1:2390' },
];

/** A snapshot as the Snapshot RPC sends it: a backend file and its SHA-256. */
async function snapshotFile(withHash = true): Promise<string> {
  const harness = Harness.open(new MemoryEngine());
  harness.put('a', '1');
  harness.put('b', '2');
  harness.ok({ type: 'leaseGrant', request: { ID: 77, TTL: 60 } });
  harness.put('a', '3', { lease: 77 });
  harness.ok({ type: 'compact', request: { revision: 3 } });
  harness.ok({ type: 'alarmActivate', memberId: 0x99, alarm: 1 });
  const auth = AuthStore.open(harness.engine);
  harness.engine.write(auth.execute({ type: 'userAdd', name: 'root', passwordHash: 'hash', noPassword: false }));
  harness.engine.write(auth.execute({ type: 'userGrantRole', user: 'root', role: 'root' }));
  harness.engine.write(auth.execute({ type: 'roleAdd', name: 'reader' }));
  harness.engine.write(auth.execute({ type: 'authEnable' }));
  const path = join(dir, 'backup.db');
  const mvcc = harness.store.stateView();
  try {
    await writeBackendFile({ mvcc, auth: auth.state(), members: [], removedMemberIds: [] }, path);
  } finally {
    mvcc.close();
  }
  if (withHash) {
    const body = readFileSync(path);
    writeFileSync(path, Buffer.concat([body, createHash('sha256').update(body).digest()]));
  }
  return path;
}

function options(snapshotPath: string, overrides: Partial<RestoreOptions> = {}): RestoreOptions {
  return { snapshotPath, name: 'n2', initialCluster: CLUSTER, clusterToken: 'tok', dataDir: join(dir, 'n2'), skipHashCheck: false, ...overrides };
}

describe('snapshot restore', () => {
  for (const engineKind of ['lmdb', 'leveldb'] as const) {
    it(`builds a data directory that opens as a member of the new cluster with the snapshot data (--engine ${engineKind})`, async () => {
      const result = await restoreSnapshot(options(await snapshotFile(), { engine: engineKind }));
      assert.equal(result.memberId, memberIdOf(CLUSTER[1]!, 'tok'));
      assert.equal(result.clusterId, clusterIdOf(CLUSTER, 'tok'));
      // a@2 stays: it is a's newest version at the compaction (3), as etcd keeps it.
      assert.deepEqual({ ...result, memberId: 0, clusterId: 0 }, {
        memberId: 0, clusterId: 0, revision: 4, compactRevision: 3, records: 3, leases: 1, renumberedLeases: [],
        droppedAlarms: [{ memberId: 0x99, alarm: 1 }], users: 1, roles: 1, authEnabled: true,
      });
      const config = defaultNodeConfig({ name: 'n2', dataDir: join(dir, 'n2'), initialCluster: CLUSTER, clusterToken: 'tok', engine: engineKind });
      const { identity, storage, disk } = await openNodeState(config, createSilentLogger());
      const { mvcc, auth, engine } = storage.machine;
      try {
        assert.equal(identity.memberId, result.memberId);
        assert.deepEqual(storage.members.list().map((m) => m.name).sort(), ['n1', 'n2'], 'the membership is the new cluster\'s');
        const harness = new Harness(mvcc, engine);
        assert.deepEqual(harness.all(), ['a=3@2/4/v2/l77', 'b=2@3/3/v1']);
        assert.equal(mvcc.lease(77)?.grantedTTL, 60);
        assert.equal(mvcc.compactRevision, 3);
        assert.deepEqual(mvcc.alarms(), [], 'the new cluster starts without the old one\'s alarms');
        assert.deepEqual(auth.state(), {
          enabled: true,
          revision: 4,
          users: [{ name: 'root', passwordHash: 'hash', noPassword: false, roles: ['root'] }],
          roles: [{ name: 'reader', permissions: [] }],
        }, 'users, roles and the auth flag are kept, as etcd keeps them');
        assert.equal(storage.snapshotIndex, 1, 'the restored state is the first raft snapshot');
      } finally {
        await disk.close();
      }
    });
  }

  it("refuses what etcd's restore refuses, with etcd's messages", async () => {
    const path = await snapshotFile();
    await assert.rejects(restoreSnapshot(options(path, { name: 'n9' })), /--initial-cluster \(n1, n2\) has no member named "n9"/);
    mkdirSync(join(dir, 'full'));
    writeFileSync(join(dir, 'full', 'x'), '');
    await assert.rejects(restoreSnapshot(options(path, { dataDir: join(dir, 'full') })), /data-dir ".*full" not empty or could not be read/);

    const damaged = readFileSync(path);
    damaged[5000] ^= 1;
    writeFileSync(path, damaged);
    await assert.rejects(restoreSnapshot(options(path)), /expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/);

    const bare = await snapshotFile(false);
    await assert.rejects(restoreSnapshot(options(bare)), /snapshot missing hash but --skip-hash-check=false/);
    const restored = await restoreSnapshot(options(bare, { skipHashCheck: true }));
    assert.equal(restored.revision, 4, 'a bare db file restores with --skip-hash-check');
  });

  it("refuses a file that fails bbolt's integrity check", async () => {
    const path = await snapshotFile(false);
    const file = readFileSync(path);
    // Point the first bucket ("alarm") at the root bucket's own page: its page is then
    // unreachable and the root page referenced twice.
    const root = Number(file.readBigUInt64LE(16 + 16));
    const element = root * 4096 + 16;
    const value = element + file.readUInt32LE(element + 4) + file.readUInt32LE(element + 8);
    file.writeBigUInt64LE(BigInt(root), value);
    writeFileSync(path, file);
    await assert.rejects(
      restoreSnapshot(options(path, { skipHashCheck: true })),
      /snapshot file integrity check failed. 2 errors found.\npage \d+: multiple references\npage 2: unreachable unfreed/,
    );
  });
});
