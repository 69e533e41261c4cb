// Compatibility with the `etcd3` npm client (written against real etcd, not by us), pointed at a
// real 3-member Lichen cluster.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';
import { etcd3AuthScenario } from './auth-scenarios.js';


let cluster: ProcessCluster;
let client: Etcd3;

before(async () => {
  cluster = await ProcessCluster.start({ nodes: 3 });
  client = new Etcd3({ hosts: cluster.members.map((m) => `http://${m.client}`) });
});

after(async () => {
  client?.close();
  await cluster?.stop();
});

test('put, get, prefix reads and deletes behave as on etcd', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await client.put('user/1').value('Alice');
  await client.put('user/2').value('Bob');
  assert.equal(await client.get('user/1').string(), 'Alice');
  assert.deepEqual(await client.getAll().prefix('user/').strings(), { 'user/1': 'Alice', 'user/2': 'Bob' });
  assert.equal(await client.getAll().prefix('user/').count(), 2);
  await client.delete().key('user/1');
  assert.equal(await client.get('user/1').string(), null);
  await client.delete().prefix('user/');
  assert.deepEqual(await client.getAll().prefix('user/').keys(), []);
});

test('a transaction takes the branch its comparison selects', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await client.put('stock').value('5');
  const taken = await client.if('stock', 'Value', '==', '5').then(client.put('stock').value('4')).else(client.get('stock')).commit();
  assert.equal(taken.succeeded, true);
  assert.equal(await client.get('stock').string(), '4');
  const notTaken = await client.if('stock', 'Value', '==', '5').then(client.put('stock').value('3')).commit();
  assert.equal(notTaken.succeeded, false);
  assert.equal(await client.get('stock').string(), '4');
});

test('a watcher sees puts and deletes in order', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const watcher = await client.watch().key('watched').create();
  try {
    const seen: string[] = [];
    const done = new Promise<void>((resolve) => {
      watcher.on('put', (kv) => {
        seen.push(`put ${kv.value.toString()}`);
      });
      watcher.on('delete', () => {
        seen.push('delete');
        resolve();
      });
    });
    await client.put('watched').value('a');
    await client.put('watched').value('b');
    await client.delete().key('watched');
    await done;
    assert.deepEqual(seen, ['put a', 'put b', 'delete']);
  } finally {
    await watcher.cancel();
  }
});

test('a lease keeps its key alive, and revoking it deletes the key', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const lease = client.lease(30, { autoKeepAlive: false });
  await lease.put('session').value('on');
  const keepAlive = await lease.keepaliveOnce();
  assert.equal(String(keepAlive.TTL), '30');
  const timeToLive = await client.leaseClient.leaseTimeToLive({ ID: await lease.grant(), keys: true });
  assert.ok(Number(timeToLive.TTL) > 0 && Number(timeToLive.TTL) <= 30, `ttl ${timeToLive.TTL}`);
  assert.deepEqual(timeToLive.keys.map((k) => k.toString()), ['session']);
  assert.equal(await client.get('session').string(), 'on');
  await lease.revoke();
  assert.equal(await client.get('session').string(), null);
});

test('cluster and maintenance calls describe the members', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const { members } = await client.cluster.memberList({});
  assert.deepEqual(members.map((m) => m.name).sort(), ['n1', 'n2', 'n3']);
  const status = await client.maintenance.status({});
  assert.notEqual(status.leader, '0');
  assert.match(status.version, /^3\.\d+\.\d+$/);
});

test('alarms: activate, get and deactivate for all members (member id 0) and for one member, as etcd answers', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const memberID = (await client.maintenance.status({})).header.member_id;
  const alarm = (action: 'Get' | 'Activate' | 'Deactivate', member: string, type: 'None' | 'Nospace' | 'Corrupt') =>
    client.maintenance.alarm({ action, memberID: member, alarm: type }).then((r) => r.alarms);
  try {
    assert.deepEqual(await alarm('Get', '0', 'None'), []);
    assert.deepEqual(await alarm('Activate', '0', 'Nospace'), [{ memberID: '0', alarm: 'Nospace' }]);
    assert.deepEqual(await alarm('Activate', memberID, 'Corrupt'), [{ memberID, alarm: 'Corrupt' }]);
    assert.deepEqual(await alarm('Get', '0', 'None'), [
      { memberID: '0', alarm: 'Nospace' },
      { memberID, alarm: 'Corrupt' },
    ]);
    assert.deepEqual(await alarm('Get', memberID, 'Corrupt'), [{ memberID, alarm: 'Corrupt' }]);
    // Each alarm is keyed by its member id: clearing member 0's CORRUPT clears nothing.
    assert.deepEqual(await alarm('Deactivate', '0', 'Corrupt'), []);
    assert.deepEqual(await alarm('Deactivate', memberID, 'Corrupt'), [{ memberID, alarm: 'Corrupt' }]);
    assert.deepEqual(await alarm('Deactivate', '0', 'Nospace'), [{ memberID: '0', alarm: 'Nospace' }]);
    assert.deepEqual(await alarm('Get', '0', 'None'), []);
  } finally {
    for (const raised of await alarm('Get', '0', 'None')) await alarm('Deactivate', raised.memberID, raised.alarm as 'Nospace' | 'Corrupt');
  }
});

test('auth: a role with a prefix, a user who works inside it and is refused outside, logins again after a password change', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const hosts = cluster.members.map((m) => `http://${m.client}`);
  await etcd3AuthScenario({ connect: (auth) => new Etcd3({ hosts, ...(auth && { auth }) }), anonymous: client, anonymousError: /etcdserver: user name is empty/ });
});
