// The space quota on a real member (raft, WAL, lmdb, gRPC), with etcd's recovery procedure:
// a member with a quota of a few MiB raises NOSPACE, refuses what adds data with etcd's error,
// still serves reads and deletes, keeps the alarm across a restart, and takes writes again after
// compaction, defragmentation and `alarm disarm`.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { LichenClient } from '../client/index.js';
import { startTestMember, type TestMember } from './testing/in-process.js';

const QUOTA_BYTES = 4 * 1024 * 1024;
const NO_SPACE = 'etcdserver: mvcc: database space exceeded';
const b = (s: string): Buffer => Buffer.from(s);
const value = Buffer.alloc(100_000, 'v');

let member: TestMember | undefined;
after(() => member?.close());

async function refusedWithNoSpace(call: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(call, (error: ServiceError) => {
    assert.equal(error.code, status.RESOURCE_EXHAUSTED, what);
    assert.equal(error.details, NO_SPACE, what);
    return true;
  });
}

test('a member over --quota-backend-bytes raises NOSPACE, serves reads and deletes, and recovers after compact, defrag and disarm', async () => {
  member = await startTestMember({ quotaBackendBytes: QUOTA_BYTES, tickMs: 20 });
  const memberId = String(member.node.memberId);
  const put = (key: string) => member!.call('KV', 'Put', { key: b(key), value });

  // Five keys overwritten again and again: history, not live data, fills the quota.
  let writes = 0;
  for (;;) {
    try {
      await put(`key/${writes % 5}`);
      writes++;
    } catch (error) {
      assert.equal((error as ServiceError).details, NO_SPACE);
      assert.equal((error as ServiceError).code, status.RESOURCE_EXHAUSTED);
      break;
    }
    assert.ok(writes < 100, 'the quota stopped nothing');
  }
  assert.ok(writes * value.length >= QUOTA_BYTES * 0.8, `refused after only ${writes} writes`);

  const nospace = [{ memberID: memberId, alarm: 1 /* NOSPACE */ }];
  const alarms = async () => (await member!.call('Maintenance', 'Alarm', { action: 'GET' })).alarms;
  assert.deepEqual(await alarms(), nospace);
  const raised = await member.call('Maintenance', 'Status', {});
  assert.deepEqual(raised.errors, [`memberID:${memberId} alarm:NOSPACE `]);

  // What adds data is refused; reads, read-only txns and deletes are served.
  await refusedWithNoSpace(put('another'), 'put');
  await refusedWithNoSpace(member.call('KV', 'Txn', { success: [{ request_put: { key: b('t'), value: b('1') } }] }), 'txn with a put');
  await refusedWithNoSpace(member.call('Lease', 'LeaseGrant', { TTL: 60 }), 'lease grant');
  assert.equal((await member.call('KV', 'Range', { key: b('key/1') })).kvs[0].value.length, value.length);
  assert.equal((await member.call('KV', 'Txn', { success: [{ request_range: { key: b('key/1') } }] })).succeeded, true);
  assert.equal((await member.call('KV', 'DeleteRange', { key: b('key/4') })).deleted, '1');

  // The alarm is replicated state: a restart keeps it.
  const dataDir = member.dataDir;
  await member.close({ keepData: true });
  member = await startTestMember({ dataDir, quotaBackendBytes: QUOTA_BYTES, tickMs: 20 });
  assert.deepEqual(await alarms(), nospace);
  await refusedWithNoSpace(put('after-restart'), 'put after a restart');

  // etcd's runbook: compact away the history, defragment, disarm.
  const current = await member.call('KV', 'Range', { key: b('key/1') });
  await member.call('KV', 'Compact', { revision: current.header.revision, physical: true });
  await member.call('Maintenance', 'Defragment', {});
  const compacted = await member.call('Maintenance', 'Status', {});
  assert.ok(Number(compacted.dbSizeInUse) < QUOTA_BYTES / 2, `in use after compaction: ${compacted.dbSizeInUse}`);
  await refusedWithNoSpace(put('before-disarm'), 'put while the alarm is still raised');
  // Disarm as `lichen alarm disarm` does, through the SDK (etcd's clientv3 AlarmDisarm: list, then
  // clear each (member, type)).
  const client = new LichenClient({ endpoints: [member.node.addresses.client] });
  try {
    const disarmed = await client.alarmDisarm();
    assert.deepEqual(disarmed.alarms, [{ memberId: BigInt(member.node.memberId), alarm: 'NOSPACE' }]);
    assert.deepEqual((await client.alarmList()).alarms, []);
  } finally {
    client.close();
  }
  assert.deepEqual(await alarms(), []);
  assert.deepEqual((await member.call('Maintenance', 'Status', {})).errors, []);
  await put('key/0');
  assert.equal((await member.call('KV', 'Range', { key: b('key/0') })).kvs[0].value.length, value.length);
});

test('a member started with --auto-compaction-retention compacts its history by itself', async () => {
  const compacting = await startTestMember({ autoCompactionMode: 'periodic', autoCompactionRetention: '500ms', tickMs: 10 });
  try {
    const first = await compacting.call('KV', 'Put', { key: b('auto'), value: b('1') });
    await compacting.call('KV', 'Put', { key: b('auto'), value: b('2') });
    // The schedule itself is tested on an injected clock (compactor.test.ts); this checks the wiring:
    // after one retention the leader compacts at the revision it recorded when it started.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const reply = await compacting.call('KV', 'Range', { key: b('auto'), revision: first.header.revision }).catch((error: ServiceError) => error);
      if ('code' in reply && reply.code === status.OUT_OF_RANGE) break;
      assert.ok(Date.now() < deadline, 'no automatic compaction within 10 s');
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    await compacting.close();
  }
});
