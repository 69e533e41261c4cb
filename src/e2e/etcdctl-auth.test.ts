// etcd authentication end to end with Debian's etcdctl (v3.4) against a real 3-member Lichen
// cluster without TLS (tls.test.ts runs the same scenarios with TLS and client certificates).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, type MemberProcess } from '../server/testing/process-cluster.js';
import { Etcdctl, ROOT_LOGIN, etcdctlAuthScenario, tokenExpiryScenario } from './auth-scenarios.js';

/** Simple tokens live this long after their last use on this cluster. */
const TOKEN_TTL_SECONDS = 1;

let cluster: ProcessCluster;
let ctl: Etcdctl;

before(async () => {
  // bcrypt cost 4 keeps the many logins of this test cheap; the cost does not change behaviour.
  cluster = await ProcessCluster.start({ nodes: 3, flags: ['--bcrypt-cost', '4', '--auth-token-ttl', String(TOKEN_TTL_SECONDS)] });
  ctl = new Etcdctl(cluster.members.map((m) => m.client));
});

after(async () => {
  await cluster?.stop();
});

test('etcdctl: user add root, auth enable, a role with a prefix, a user who may work there and nowhere else, auth disable', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await etcdctlAuthScenario(ctl, { anonymous: { flags: [], error: 'etcdserver: user name is empty' } });
});

test('a simple token works on every member, and expires when unused for --auth-token-ttl', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await tokenExpiryScenario(cluster, ctl, TOKEN_TTL_SECONDS);
});

/**
 * Enables auth, stops a follower, disables auth through the leader, then sends `request` without
 * credentials to the stopped member (it still holds "enabled") and resumes it. The request's
 * entry follows the disable in the log, where etcd checks it: it must not be refused with "user
 * name is empty".
 */
async function sendBehindDisable(request: (lagging: MemberProcess) => Promise<unknown>): Promise<void> {
  await ctl.ok([...ROOT_LOGIN, 'auth', 'enable']);
  const leader = await cluster.waitForLeader();
  const lagging = cluster.members.find((m) => m !== leader)!;
  // A call first, so the channel to it is open and the request is queued in its socket while it is stopped.
  await cluster.call(lagging, 'Maintenance', 'Status', {});
  cluster.pause(lagging);
  try {
    const { token } = await cluster.call(leader, 'Auth', 'Authenticate', { name: 'root', password: 'rootpw' });
    await cluster.call(leader, 'Auth', 'AuthDisable', {}, 10_000, token);
    const sent = request(lagging);
    cluster.resume(lagging);
    await sent;
  } finally {
    cluster.resume(lagging);
  }
}

test('a put without credentials sent right after "auth disable" to a member that has not applied it yet succeeds, as in etcd', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await sendBehindDisable((lagging) => cluster.call(lagging, 'KV', 'Put', { key: Buffer.from('/after-disable'), value: Buffer.from('anyone') }));
  assert.equal((await cluster.call(cluster.members[0]!, 'KV', 'Range', { key: Buffer.from('/after-disable') })).count, '1');
});

test('"auth enable" without credentials sent right after "auth disable" to a member that has not applied it yet succeeds, as in etcd', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  // etcd checks the root role when it applies the enable, after the disable: no user is needed then.
  await sendBehindDisable((lagging) => cluster.call(lagging, 'Auth', 'AuthEnable', {}));
  assert.equal((await cluster.call(cluster.members[0]!, 'Auth', 'AuthStatus', {})).enabled, true);
  await ctl.ok([...ROOT_LOGIN, 'auth', 'disable']);
});
