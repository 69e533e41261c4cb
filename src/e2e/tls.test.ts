// End-to-end: a 3-member cluster of separate processes with TLS on every port and client
// certificates required, as `lichen up --tls` makes it. Clients nobody here wrote (Debian's
// etcdctl, the etcd3 npm client) connect with certificates, also with authentication on (the
// scenarios of auth-scenarios.ts, and a certificate's common name as the user); the SDK and the
// HTTP API do too; and the forged-frame attack (forged-frames.ts) from dialers without a valid
// certificate gets nothing through the peer port.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get, request as httpsRequest } from 'node:https';
import { Etcd3, EtcdPermissionDeniedError } from 'etcd3';
import { LichenClient } from '../client/index.js';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';
import { createCertificateAuthority, issueCertificate } from '../tls/certs.js';
import { clusterClientTls } from '../tls/index.js';
import { etcd3AuthScenario, Etcdctl, etcdctlAuthScenario, tokenExpiryScenario } from './auth-scenarios.js';
import { overTls, plainTcp, replayForgedFrames } from './forged-frames.js';

/** Simple tokens live this long after their last use on this cluster. */
const TOKEN_TTL_SECONDS = 1;

let cluster: ProcessCluster;
let https: string[];
let files: { ca: string; cert: string; key: string };

before(async () => {
  // bcrypt cost 4 keeps the many logins of the auth tests cheap; the cost does not change behaviour.
  cluster = await ProcessCluster.start({ nodes: 3, tls: true, flags: ['--bcrypt-cost', '4', '--auth-token-ttl', String(TOKEN_TTL_SECONDS)] });
  https = cluster.members.map((m) => `https://${m.client}`);
  const tls = cluster.tls!;
  files = { ca: tls.caFile, cert: tls.clientCertFile, key: tls.clientKeyFile };
});

after(async () => {
  await cluster?.stop();
});

/** Runs etcdctl against the cluster; resolves with stdout, rejects with stderr. */
function etcdctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'etcdctl',
      [`--endpoints=${https.join(',')}`, '--dial-timeout=3s', '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout)),
    );
  });
}

test('etcdctl --cacert --cert --key works over TLS; without a client certificate it is refused', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const tlsFlags = [`--cacert=${files.ca}`, `--cert=${files.cert}`, `--key=${files.key}`];
  assert.equal(await etcdctl([...tlsFlags, 'put', 'tls/etcdctl', 'yes']), 'OK\n');
  assert.equal(await etcdctl([...tlsFlags, 'get', 'tls/etcdctl']), 'tls/etcdctl\nyes\n');
  const members = JSON.parse(await etcdctl([...tlsFlags, 'member', 'list', '-w', 'json'])) as { members: { clientURLs: string[]; peerURLs: string[] }[] };
  // Members advertise https URLs, as etcd does when its ports serve TLS.
  assert.ok(members.members.every((m) => m.clientURLs[0]!.startsWith('https://') && m.peerURLs[0]!.startsWith('https://')));
  await assert.rejects(etcdctl([`--cacert=${files.ca}`, '--command-timeout=2s', 'get', 'tls/etcdctl']), /deadline exceeded|certificate required|transport/i);
});

test('the etcd3 npm client with TLS credentials: writes, reads and a watch', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const client = new Etcd3({
    hosts: https,
    credentials: { rootCertificate: readFileSync(files.ca), certChain: readFileSync(files.cert), privateKey: readFileSync(files.key) },
  });
  try {
    const watcher = await client.watch().key('tls/etcd3').create();
    const seen = new Promise<string>((resolve) => watcher.on('put', (kv) => resolve(kv.value.toString())));
    await client.put('tls/etcd3').value('hello');
    assert.equal(await client.get('tls/etcd3').string(), 'hello');
    assert.equal(await seen, 'hello');
    await watcher.cancel();
  } finally {
    client.close();
  }
});

test('the SDK, the HTTP API and the JSON gateway connect with the client certificate', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const client = new LichenClient({ endpoints: cluster.members.map((m) => m.client), tls: clusterClientTls(cluster.root) });
  try {
    await client.put('tls/sdk', 'ok');
    assert.equal((await client.get('tls/sdk')).kvs[0]?.value.toString(), 'ok');
  } finally {
    client.close();
  }
  const body = await new Promise<string>((resolve, reject) => {
    const { ca, cert, key } = clusterClientTls(cluster.root);
    get(`https://${cluster.members[0]!.http}/get?key=tls/sdk`, { ca, cert, key }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve(text));
    }).on('error', reject);
  });
  assert.equal(JSON.parse(body).value, 'ok');
  // etcd's JSON gateway on the client port: ALPN http/1.1 beside gRPC's h2.
  const range = await new Promise<string>((resolve, reject) => {
    const { ca, cert, key } = clusterClientTls(cluster.root);
    const request = httpsRequest(`https://${cluster.members[1]!.client}/v3/kv/range`, { method: 'POST', ca, cert, key }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve(text));
    });
    request.on('error', reject);
    request.end(JSON.stringify({ key: Buffer.from('tls/sdk').toString('base64') }));
  });
  assert.equal(Buffer.from(JSON.parse(range).kvs[0].value, 'base64').toString(), 'ok');
});

test('with TLS on, dialers of the peer port without a valid certificate get no frame through', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const otherCa = await createCertificateAuthority('other CA', 1);
  const stranger = await issueCertificate(otherCa, { commonName: 'node1', hosts: ['127.0.0.1'], usage: 'server-and-client', validDays: 1 });
  await replayForgedFrames(cluster, [plainTcp, overTls({}), overTls({ cert: stranger.cert, key: stranger.key })]);
  // TLS itself stopped them: every member counted refused handshakes.
  const { ca, cert, key } = clusterClientTls(cluster.root);
  for (const member of cluster.members) {
    const metrics = await new Promise<string>((resolve, reject) => {
      get(`https://${member.http}/metrics`, { ca, cert, key }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve(text));
      }).on('error', reject);
    });
    const refused = Number(/^lichen_peer_handshakes_refused_total\{reason="tls"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
    assert.ok(refused >= 3, `${member.name} counted ${refused} refused TLS handshakes`);
  }
});

test('TLS and auth together with etcdctl: passwords, a role with a prefix, the certificate\'s common name as the user, token expiry, auth disable', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  // The cluster's client certificate (common name root) is etcdctl's unless a run names another.
  const ctl = new Etcdctl(https, [`--cacert=${files.ca}`, `--cert=${files.cert}`, `--key=${files.key}`]);
  const nobody = await cluster.issueClientCertificate('nobody');
  const alice = await cluster.issueClientCertificate('alice');
  await etcdctlAuthScenario(ctl, {
    // Every client presents a certificate here; one that names no user may do nothing (etcd's answer).
    anonymous: { flags: [`--cert=${nobody.cert}`, `--key=${nobody.key}`], error: 'etcdserver: permission denied' },
    aliceByCertificate: [`--cert=${alice.cert}`, `--key=${alice.key}`],
  });
  await tokenExpiryScenario(cluster, ctl, TOKEN_TTL_SECONDS);
  // Tidy up for the etcd3 test below, which starts on a cluster without users.
  for (const user of ['alice', 'root']) await ctl.ok(['user', 'delete', user]);
  await ctl.ok(['role', 'delete', 'app']);
  await ctl.ok(['role', 'delete', 'root']);
});

test('TLS and auth together with the etcd3 npm client: a role with a prefix, permission denied outside it, a new login after a password change and after token expiry', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const ca = readFileSync(files.ca);
  const nobody = await cluster.issueClientCertificate('nobody-etcd3');
  const connect = (certificate: { cert: string | Buffer; key: string | Buffer }, auth?: { username: string; password: string }) =>
    new Etcd3({
      hosts: https,
      credentials: { rootCertificate: ca, certChain: readFileSync(certificate.cert), privateKey: readFileSync(certificate.key) },
      ...(auth && { auth }),
    });
  const anonymous = connect(nobody);
  try {
    await etcd3AuthScenario({ connect: (auth) => connect(files, auth), anonymous, anonymousError: EtcdPermissionDeniedError, tokenTtlSeconds: TOKEN_TTL_SECONDS });
  } finally {
    anonymous.close();
  }
});
