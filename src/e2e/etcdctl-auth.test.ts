// etcd authentication end to end with Debian's etcdctl (v3.4) against a real 3-member Lichen
// cluster without TLS (tls.test.ts runs the same scenarios with TLS and client certificates).
import { after, before, test } from 'node:test';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';
import { Etcdctl, etcdctlAuthScenario, tokenExpiryScenario } from './auth-scenarios.js';

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
