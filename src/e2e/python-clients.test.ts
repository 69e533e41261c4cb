// Compatibility with Python's etcd clients (Debian's python3-etcd3 over gRPC, python3-etcd3gw over
// the JSON gateway), written against real etcd, pointed at a 3-member Lichen cluster with TLS and
// client certificates: the scenarios in python/clients.py, and authentication with a role.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';
import { ALICE_LOGIN, Etcdctl, ROOT_LOGIN } from './auth-scenarios.js';

/** Debian's interpreter: the packages python3-etcd3 and python3-etcd3gw install under it. */
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./python/clients.py', import.meta.url));

let cluster: ProcessCluster;
let ctl: Etcdctl;
let files: { endpoint: string; ca: string; cert: string; key: string };

before(async () => {
  // bcrypt cost 4 keeps the logins cheap; the cost does not change behaviour.
  cluster = await ProcessCluster.start({ nodes: 3, tls: true, flags: ['--bcrypt-cost', '4'] });
  const tls = cluster.tls!;
  files = { endpoint: cluster.members[0]!.client, ca: tls.caFile, cert: tls.clientCertFile, key: tls.clientKeyFile };
  ctl = new Etcdctl(
    cluster.members.map((m) => `https://${m.client}`),
    [`--cacert=${tls.caFile}`, `--cert=${tls.clientCertFile}`, `--key=${tls.clientKeyFile}`],
  );
});

after(async () => {
  await cluster?.stop();
});

/** Runs one scenario of clients.py; fails with the script's own reason. */
function python(scenario: string, extra: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    // requests (under etcd3gw) lets these variables override the CA a session was given.
    const { REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, ...env } = process.env;
    execFile(PYTHON, [SCRIPT, scenario, JSON.stringify({ ...files, ...extra })], { env, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${scenario}: ${stderr || error.message}`));
      else {
        assert.equal(stdout.trim(), 'ok', `${scenario} printed: ${stdout}`);
        resolve();
      }
    });
  });
}

test('python-etcd3 over gRPC with TLS: status, members, puts, ranges, txns, leases, alarms, snapshot', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await python('etcd3-kv');
});

test('python-etcd3: watches live, from history and from a compacted revision', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await python('etcd3-watch');
});

test('python-etcd3gw over the JSON gateway with TLS: puts, create, replace, leases, a watch, its lock recipe', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await python('etcd3gw');
});

test('python-etcd3 with authentication: a role with a prefix, permission denied outside it, a wrong password, a caller who is nobody', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await ctl.ok(['user', 'add', ROOT_LOGIN[1]!]);
  await ctl.ok(['role', 'add', 'app']);
  await ctl.ok(['role', 'grant-permission', 'app', '--prefix=true', 'readwrite', 'app/']);
  await ctl.ok(['user', 'add', ALICE_LOGIN[1]!]);
  await ctl.ok(['user', 'grant-role', 'alice', 'app']);
  await ctl.ok(['auth', 'enable']);
  try {
    const nobody = await cluster.issueClientCertificate('nobody');
    await python('etcd3-auth', { alicePassword: ALICE_LOGIN[1]!.split(':')[1]!, nobodyCert: nobody.cert, nobodyKey: nobody.key });
  } finally {
    await ctl.ok([...ROOT_LOGIN, 'auth', 'disable']);
  }
});
