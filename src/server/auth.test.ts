// etcd authentication and authorization on a real member, over gRPC and the HTTP API, seen as a
// client sees them: exact gRPC codes and messages (etcd 3.4's, checked against etcd 3.4.23).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { MessageQueue } from '../api/grpc/testing/harness.js';
import { LichenClient } from '../client/index.js';
import { isLichenError } from '../errors.js';
import { startTestMember, type TestMember } from './testing/in-process.js';

const b = (text: string): Buffer => Buffer.from(text);
const prefix = (p: string): { key: Buffer; range_end: Buffer } => {
  const end = Buffer.from(p);
  end[end.length - 1]!++;
  return { key: b(p), range_end: end };
};

async function failsWith(promise: Promise<unknown>, code: status, message: string): Promise<void> {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.details, message);
    assert.equal(error.code, code, `code of "${error.details}"`);
    return true;
  });
}

/** Root with the root role, auth enabled, alice with role "app": readwrite on /app/, read on /shared. */
async function enableAuth(member: TestMember): Promise<{ root: string; alice: string }> {
  await member.call('Auth', 'UserAdd', { name: 'root', password: 'rootpw' });
  await failsWith(member.call('Auth', 'AuthEnable', {}), status.FAILED_PRECONDITION, 'etcdserver: root user does not have root role');
  await member.call('Auth', 'RoleAdd', { name: 'root' });
  await member.call('Auth', 'UserGrantRole', { user: 'root', role: 'root' });
  await member.call('Auth', 'UserAdd', { name: 'alice', password: 'alicepw' });
  await member.call('Auth', 'RoleAdd', { name: 'app' });
  await member.call('Auth', 'RoleGrantPermission', { name: 'app', perm: { permType: 2, ...prefix('/app/') } });
  await member.call('Auth', 'RoleGrantPermission', { name: 'app', perm: { permType: 0, key: b('/shared') } });
  await member.call('Auth', 'UserGrantRole', { user: 'alice', role: 'app' });
  await member.call('Auth', 'AuthEnable', {});
  const root = (await member.call('Auth', 'Authenticate', { name: 'root', password: 'rootpw' })).token as string;
  const alice = (await member.call('Auth', 'Authenticate', { name: 'alice', password: 'alicepw' })).token as string;
  return { root, alice };
}

describe('auth on a member', () => {
  let member: TestMember;
  let root: string;
  let alice: string;

  before(async () => {
    member = await startTestMember({ bcryptCost: 4, listenHttp: '127.0.0.1:0' });
    await failsWith(member.call('Auth', 'AuthEnable', {}), status.FAILED_PRECONDITION, 'etcdserver: root user does not exist');
    ({ root, alice } = await enableAuth(member));
  });
  after(() => member.close());

  it('logs in with the right password only, and reports auth as enabled', async () => {
    assert.match(root, /^[a-zA-Z]{16}\.\d+$/);
    const wrong = 'etcdserver: authentication failed, invalid user ID or password';
    await failsWith(member.call('Auth', 'Authenticate', { name: 'root', password: 'nope' }), status.INVALID_ARGUMENT, wrong);
    await failsWith(member.call('Auth', 'Authenticate', { name: 'nobody', password: 'x' }), status.INVALID_ARGUMENT, wrong);
    const statusNow = await member.call('Auth', 'AuthStatus', {});
    assert.equal(statusNow.enabled, true);
    assert.ok(Number(statusNow.authRevision) > 1);
  });

  it('refuses anonymous requests and invalid tokens with etcd\'s errors', async () => {
    await failsWith(member.call('KV', 'Put', { key: b('/app/x'), value: b('v') }), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    await failsWith(member.call('KV', 'Range', { key: b('/app/x') }), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    await failsWith(member.call('KV', 'Range', { key: b('/app/x') }, 'forged.1'), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
    await failsWith(member.call('Auth', 'Authenticate', { name: 'root', password: 'rootpw' }, 'forged.1'), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
  });

  it('lets a user read and write inside its permissions and nowhere else', async () => {
    await member.call('KV', 'Put', { key: b('/app/x'), value: b('1') }, alice);
    assert.equal((await member.call('KV', 'Range', { key: b('/app/x') }, alice)).kvs[0].value.toString(), '1');
    assert.equal((await member.call('KV', 'Range', prefix('/app/'), alice)).count, '1');
    const denied = 'etcdserver: permission denied';
    await failsWith(member.call('KV', 'Put', { key: b('/other'), value: b('1') }, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('KV', 'Put', { key: b('/shared'), value: b('1') }, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('KV', 'Range', { key: b('/app/'), range_end: b('/b') }, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('KV', 'DeleteRange', { key: b('/other') }, alice), status.PERMISSION_DENIED, denied);
    await member.call('KV', 'Range', { key: b('/shared') }, alice);
    // Root may do anything.
    await member.call('KV', 'Put', { key: b('/other'), value: b('r') }, root);
  });

  it('checks txns in full: compares, both branches, nested txns, read-only or not', async () => {
    const denied = 'etcdserver: permission denied';
    const readOnly = { compare: [{ key: b('/other'), target: 'VERSION', result: 'EQUAL', version: 1 }], success: [{ request_range: { key: b('/app/x') } }] };
    await failsWith(member.call('KV', 'Txn', readOnly, alice), status.PERMISSION_DENIED, denied);
    const otherBranch = { success: [{ request_put: { key: b('/app/y'), value: b('v') } }], failure: [{ request_delete_range: { key: b('/other') } }] };
    await failsWith(member.call('KV', 'Txn', otherBranch, alice), status.PERMISSION_DENIED, denied);
    const nested = { success: [{ request_txn: { success: [{ request_put: { key: b('/other'), value: b('evil') } }] } }] };
    await failsWith(member.call('KV', 'Txn', nested, alice), status.PERMISSION_DENIED, denied);
    assert.equal((await member.call('KV', 'Range', { key: b('/other') }, root)).kvs[0].value.toString(), 'r');
    const allowed = { compare: [{ key: b('/shared'), target: 'VERSION', result: 'EQUAL', version: 0 }], success: [{ request_put: { key: b('/app/y'), value: b('v') } }] };
    assert.equal((await member.call('KV', 'Txn', allowed, alice)).succeeded, true);
  });

  it('lets a user read itself and its roles, and nothing else of the auth state', async () => {
    assert.deepEqual((await member.call('Auth', 'UserGet', { name: 'alice' }, alice)).roles, ['app']);
    assert.equal((await member.call('Auth', 'RoleGet', { role: 'app' }, alice)).perm.length, 2);
    const denied = 'etcdserver: permission denied';
    await failsWith(member.call('Auth', 'UserGet', { name: 'root' }, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('Auth', 'RoleGet', { role: 'root' }, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('Auth', 'UserList', {}, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('Auth', 'UserChangePassword', { name: 'alice', password: 'x' }, alice), status.PERMISSION_DENIED, denied);
    assert.deepEqual((await member.call('Auth', 'UserList', {}, root)).users, ['alice', 'root']);
    assert.deepEqual((await member.call('Auth', 'RoleList', {}, root)).roles, ['app', 'root']);
  });

  it('keeps membership changes, hashes and snapshots for the root role; status and the member list for anyone', async () => {
    const denied = 'etcdserver: permission denied';
    await failsWith(member.call('Cluster', 'MemberAdd', { peerURLs: ['http://127.0.0.1:1'] }, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('Maintenance', 'HashKV', {}, alice), status.PERMISSION_DENIED, denied);
    await failsWith(member.call('Maintenance', 'Defragment', {}), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    await member.call('Maintenance', 'HashKV', {}, root);
    await member.call('Maintenance', 'Status', {});
    await member.call('Cluster', 'MemberList', {});
  });

  it('lets a user revoke a lease only if it may write every key attached to it', async () => {
    const { ID } = await member.call('Lease', 'LeaseGrant', { TTL: 60 }, alice);
    await member.call('KV', 'Put', { key: b('/app/leased'), value: b('v'), lease: ID }, alice);
    await member.call('KV', 'Put', { key: b('/other/leased'), value: b('v'), lease: ID }, root);
    await failsWith(member.call('Lease', 'LeaseRevoke', { ID }, alice), status.PERMISSION_DENIED, 'etcdserver: permission denied');
    await member.call('Lease', 'LeaseRevoke', { ID }, root);
  });

  it('refuses a watch outside the user\'s permissions the way etcd does, and serves one inside', async () => {
    const metadata = new Metadata();
    metadata.set('token', alice);
    const stream = (member.client('Watch') as unknown as { Watch(m: Metadata): ClientDuplexStream<object, any> }).Watch(metadata);
    const messages = new MessageQueue<any>(stream);
    stream.write({ create_request: { key: b('/other') } });
    const refused = await messages.next();
    assert.equal(refused.created, true);
    assert.equal(refused.canceled, true);
    assert.equal(refused.watch_id, '-1');
    assert.equal(refused.cancel_reason, 'rpc error: code = PermissionDenied desc = etcdserver: permission denied');
    stream.write({ create_request: { ...prefix('/app/') } });
    const created = await messages.next();
    assert.equal(created.created, true);
    assert.equal(created.canceled, false);
    await member.call('KV', 'Put', { key: b('/app/watched'), value: b('w') }, alice);
    assert.equal((await messages.next()).events[0].kv.key.toString(), '/app/watched');
    stream.end();
  });

  it('takes the token from "authorization" metadata too (etcd\'s gateway sends it so)', async () => {
    const metadata = new Metadata();
    metadata.set('authorization', alice);
    const kv = member.client('KV') as unknown as Record<string, Function>;
    const response = await new Promise<any>((resolve, reject) =>
      kv['Range']!.call(kv, { key: b('/app/x') }, metadata, (e: ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r))),
    );
    assert.equal(response.count, '1');
  });

  it('serves the HTTP API with a token from /v1/auth/authenticate in the Authorization header', async () => {
    const base = `http://${member.node.addresses.http}`;
    const login = await fetch(`${base}/v1/auth/authenticate`, { method: 'POST', body: JSON.stringify({ name: 'alice', password: 'alicepw' }) });
    const { token } = (await login.json()) as { token: string };
    const put = await fetch(`${base}/v1/kv/%2Fapp%2Fhttp`, { method: 'PUT', body: 'h', headers: { Authorization: token } });
    assert.equal(put.status, 200);
    const get = await fetch(`${base}/v1/kv/%2Fapp%2Fhttp`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(((await get.json()) as { value: string }).value, 'h');
    const denied = await fetch(`${base}/v1/kv/%2Fother`, { headers: { Authorization: token } });
    assert.equal(denied.status, 403);
    const anonymous = await fetch(`${base}/v1/kv/%2Fapp%2Fhttp`);
    assert.equal(anonymous.status, 401);
    assert.equal(((await anonymous.json()) as { error: { message: string } }).error.message, 'user name is empty');
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200, 'an anonymous health check is not a failed one');
  });

  it('invalidates a user\'s tokens when its password changes, and all of them when auth is disabled', async () => {
    const bob = await enableUser(member, root, 'bob');
    await member.call('Auth', 'UserChangePassword', { name: 'bob', password: 'new' }, root);
    await failsWith(member.call('KV', 'Range', { key: b('/app/x') }, bob), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
    await member.call('Auth', 'AuthDisable', {}, root);
    await member.call('KV', 'Put', { key: b('/anyone'), value: b('v') });
    await failsWith(member.call('KV', 'Range', { key: b('/anyone') }, root), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
    await failsWith(member.call('Auth', 'Authenticate', { name: 'root', password: 'rootpw' }), status.FAILED_PRECONDITION, 'etcdserver: authentication is not enabled');
  });
});

async function enableUser(member: TestMember, root: string, name: string): Promise<string> {
  await member.call('Auth', 'UserAdd', { name, password: 'pw' }, root);
  await member.call('Auth', 'UserGrantRole', { user: name, role: 'app' }, root);
  return (await member.call('Auth', 'Authenticate', { name, password: 'pw' })).token as string;
}

describe('auth state across a restart', () => {
  it('keeps users, roles and the enabled flag (replicated state), and no simple token (member memory)', async () => {
    let member = await startTestMember({ bcryptCost: 4 });
    const { alice } = await enableAuth(member);
    await member.call('KV', 'Put', { key: b('/app/kept'), value: b('v') }, alice);
    const dataDir = member.dataDir;
    await member.close({ keepData: true });
    member = await startTestMember({ bcryptCost: 4, dataDir });
    try {
      await failsWith(member.call('KV', 'Range', { key: b('/app/kept') }, alice), status.UNAUTHENTICATED, 'etcdserver: invalid auth token');
      const again = (await member.call('Auth', 'Authenticate', { name: 'alice', password: 'alicepw' })).token as string;
      assert.equal((await member.call('KV', 'Range', { key: b('/app/kept') }, again)).count, '1');
      await failsWith(member.call('KV', 'Range', { key: b('/app/kept') }), status.INVALID_ARGUMENT, 'etcdserver: user name is empty');
    } finally {
      await member.close();
    }
  });
});

describe('JWT tokens on a member', () => {
  it('carry the auth revision: after any auth change the old token fails with "revision of auth store is old"', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyDir = mkdtempSync(join(tmpdir(), 'lichen-jwt-'));
    const keyPath = join(keyDir, 'jwt.key');
    writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const member = await startTestMember({ bcryptCost: 4, authToken: `jwt,priv-key=${keyPath},sign-method=RS256,ttl=5m` });
    try {
      const { root, alice } = await enableAuth(member);
      assert.equal(alice.split('.').length, 3, 'a JWT');
      await member.call('KV', 'Put', { key: b('/app/j'), value: b('v') }, alice);
      await member.call('Auth', 'RoleAdd', { name: 'unrelated' }, root);
      await failsWith(member.call('KV', 'Put', { key: b('/app/j'), value: b('v') }, alice), status.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old');
      await failsWith(member.call('KV', 'Range', { key: b('/app/j') }, alice), status.INVALID_ARGUMENT, 'etcdserver: revision of auth store is old');
      const fresh = (await member.call('Auth', 'Authenticate', { name: 'alice', password: 'alicepw' })).token as string;
      assert.equal((await member.call('KV', 'Range', { key: b('/app/j') }, fresh)).count, '1');
    } finally {
      await member.close();
      rmSync(keyDir, { recursive: true, force: true });
    }
  });
});

describe('the Lichen client with a user', () => {
  it('logs in, sends its token with calls and watch streams, and logs in again when a member refuses the token', async () => {
    const member = await startTestMember({ bcryptCost: 4 });
    const endpoints = [member.node.addresses.client];
    const anonymous = new LichenClient({ endpoints });
    const alice = new LichenClient({ endpoints, auth: { user: 'alice', password: 'alicepw' } });
    try {
      // Before auth is enabled the login answers "not enabled" and the client sends no token.
      await alice.put('/app/before', 'v');
      const { root } = await enableAuth(member);
      await alice.put('/app/x', '1');
      assert.equal((await alice.get('/app/x')).kvs[0]!.value.toString(), '1');
      await assert.rejects(alice.put('/other', '1'), (e) => isLichenError(e, 'PermissionDenied'));
      await assert.rejects(anonymous.get('/app/x'), (e) => isLichenError(e, 'Unauthenticated') && e.message === 'etcdserver: user name is empty');

      const seen: string[] = [];
      const watcher = alice.watch('/app/', { prefix: true, onEvents: (batch) => seen.push(...batch.events.map((e) => e.kv.key.toString())) });
      await watcher.ready();
      // A password change ends alice's token: the next call is refused, the client logs in again.
      await member.call('Auth', 'UserChangePassword', { name: 'alice', password: 'alicepw' }, root);
      await alice.put('/app/y', '2');
      assert.equal((await alice.get('/app/y')).kvs[0]!.value.toString(), '2');
      const refused = alice.watch('/other');
      await assert.rejects(refused.ready(), (e) => isLichenError(e, 'PermissionDenied') && e.message === 'etcdserver: permission denied');
      watcher.cancel();
      assert.ok(seen.includes('/app/y'), `the watch saw ${seen.join(', ')}`);
    } finally {
      anonymous.close();
      alice.close();
      await member.close();
    }
  });
});
