// The dashboard's routes with auth enabled, against one real in-process member: users, roles and
// permissions managed over HTTP, and nothing shown that the caller may not read.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestMember, type TestMember } from '../../../server/testing/in-process.js';

let member: TestMember;
let base: string;
let root: string;
let alice: string;

async function call(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<{ status: number; json: any }> {
  const headers: Record<string, string> = {};
  if (options.token) headers['authorization'] = options.token;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

async function expectOk(method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<any> {
  const answer = await call(method, path, options);
  assert.equal(answer.status, 200, `${method} ${path}: ${JSON.stringify(answer.json)}`);
  return answer.json;
}

async function login(name: string, password: string): Promise<string> {
  return (await expectOk('POST', '/v1/auth/authenticate', { body: { name, password } })).token;
}

/** The first event of GET /v1/events (the history), then the stream is closed. */
async function firstEvent(token?: string): Promise<any> {
  const response = await fetch(`${base}/v1/events`, { headers: token ? { authorization: token } : {} });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  // The stream opens with its retry field; the history event comes next.
  while (!text.includes('data: ')  || !text.endsWith('\n\n')) text += (await reader.read()).value ?? '';
  await reader.cancel();
  const data = text.split('\n').find((line) => line.startsWith('data: '))!;
  return JSON.parse(data.slice('data: '.length));
}

before(async () => {
  member = await startTestMember({ bcryptCost: 4, listenHttp: '127.0.0.1:0' });
  base = `http://${member.node.addresses.http}`;
  // Set up as an operator would from the page, before auth is on (no credentials needed yet).
  await expectOk('POST', '/v1/auth/users', { body: { name: 'root', password: 'rootpw' } });
  await expectOk('POST', '/v1/auth/roles', { body: { name: 'root' } });
  await expectOk('POST', '/v1/auth/users/root', { body: { grantRole: 'root' } });
  await expectOk('POST', '/v1/auth/users', { body: { name: 'alice', password: 'alicepw' } });
  await expectOk('POST', '/v1/auth/roles', { body: { name: 'app' } });
  const role = await expectOk('POST', '/v1/auth/roles/app', { body: { grant: { permType: 'READWRITE', key: 'app/', prefix: true } } });
  assert.deepEqual(role.permissions, [{ permType: 'READWRITE', key: 'app/', rangeEnd: 'app0' }]);
  await expectOk('POST', '/v1/auth/users/alice', { body: { grantRole: 'app' } });
  await expectOk('PUT', '/v1/kv/secret%2Fa', { body: { value: 'x' } });
  await expectOk('POST', '/v1/auth/enable');
  root = await login('root', 'rootpw');
  alice = await login('alice', 'alicepw');
});

after(async () => {
  await member?.close();
});

test('the status tells the page whether to log in, and who is logged in with which roles', async () => {
  assert.deepEqual(await expectOk('GET', '/v1/auth/status'), { enabled: true, authRevision: (await expectOk('GET', '/v1/auth/status')).authRevision, user: null, roles: [] });
  const status = await expectOk('GET', '/v1/auth/status', { token: alice });
  assert.equal(status.user, 'alice');
  assert.deepEqual(status.roles, ['app']);
  assert.equal((await call('GET', '/v1/auth/status', { token: 'nonsense' })).status, 401);
});

test('keys: anonymous requests get 401, reads outside the permissions 403, inside them the keys', async () => {
  await expectOk('PUT', '/v1/kv/app%2Fone', { token: alice, body: { value: '1' } });
  const anonymous = await call('GET', '/v1/keys/app%2F');
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.json.error.message, 'user name is empty');
  assert.deepEqual((await expectOk('GET', '/v1/keys/app%2F', { token: alice })).kvs.map((kv: { key: string }) => kv.key), ['app/one']);
  assert.equal((await expectOk('GET', '/v1/children/app%2F', { token: alice })).children[0].name, 'one');
  assert.equal((await expectOk('GET', '/v1/history/app%2Fone', { token: alice })).versions.length, 1);
  for (const path of ['/v1/children/', '/v1/keys/', '/v1/history/secret%2Fa', '/v1/watch/secret%2F?prefix']) {
    const refused = await call('GET', path, { token: alice });
    assert.equal(refused.status, 403, path);
    assert.equal(refused.json.error.message, 'permission denied');
  }
  assert.equal((await expectOk('GET', '/v1/children/', { token: root })).children.length, 2, 'root sees app/ and secret/');
});

test('a lease lists only the keys the caller may read', async () => {
  const lease = await expectOk('POST', '/v1/leases', { token: root, body: { ttl: 300 } });
  await expectOk('PUT', `/v1/kv/app%2Fleased?lease=${lease.id}`, { token: root, body: { value: 'v' } });
  await expectOk('PUT', `/v1/kv/secret%2Fleased?lease=${lease.id}`, { token: root, body: { value: 'v' } });
  const seen = await expectOk('GET', `/v1/leases/${lease.id}`, { token: alice });
  assert.deepEqual(seen.keys, [{ key: 'app/leased' }]);
  assert.equal(seen.hiddenKeys, 1);
  assert.equal((await expectOk('GET', `/v1/leases/${lease.id}`, { token: root })).keys.length, 2);
  assert.equal((await call('DELETE', `/v1/leases/${lease.id}`, { token: alice })).status, 403, 'revoking needs write permission on every key');
});

test('the traffic heat (key prefixes of the whole key space) is for the root role only', async () => {
  const asAlice = await expectOk('GET', '/v1/traffic?since=0', { token: alice });
  assert.deepEqual([asAlice.heat, asAlice.heatHidden], [[], true]);
  assert.equal(asAlice.member.role, 'leader', 'the member facts are shown to anyone, as /v1/status is');
  // What the heat holds (it needs a closed second of traffic) is tested with a clock in monitor.test.ts.
  assert.equal((await expectOk('GET', '/v1/traffic?since=0', { token: root })).heatHidden, undefined);
  const badToken = await expectOk('GET', '/v1/traffic?since=0', { token: 'expired' });
  assert.equal(badToken.heatHidden, true, 'credentials that name nobody get the facts without the heat');
  const anonymousEvent = await firstEvent();
  assert.deepEqual([anonymousEvent.heat, anonymousEvent.heatHidden], [[], true]);
  assert.equal(anonymousEvent.members.length, 1);
  assert.equal((await firstEvent(root)).heatHidden, undefined);
});

test('users and roles: listed and changed by root only; a user reads itself; bad input is refused', async () => {
  assert.equal((await call('GET', '/v1/auth/users', { token: alice })).status, 403);
  assert.deepEqual((await expectOk('GET', '/v1/auth/users/alice', { token: alice })).roles, ['app']);
  assert.equal((await call('POST', '/v1/auth/roles/app', { token: alice, body: { grant: { permType: 'READ', key: 'secret/', prefix: true } } })).status, 403);
  const users = await expectOk('GET', '/v1/auth/users', { token: root });
  assert.deepEqual(users.users, [
    { name: 'alice', roles: ['app'] },
    { name: 'root', roles: ['root'] },
  ]);
  const granted = await expectOk('POST', '/v1/auth/roles/app', { token: root, body: { grant: { permType: 'READ', key: 'shared' } } });
  assert.deepEqual(granted.permissions.at(-1), { permType: 'READ', key: 'shared', rangeEnd: '' });
  const revoked = await expectOk('POST', '/v1/auth/roles/app', { token: root, body: { revoke: { key: 'shared' } } });
  assert.equal(revoked.permissions.length, 1);
  const roles = await expectOk('GET', '/v1/auth/roles', { token: root });
  assert.deepEqual(roles.roles.map((r: { name: string }) => r.name), ['app', 'root']);
  const badType = await call('POST', '/v1/auth/roles/app', { token: root, body: { grant: { permType: 'RW', key: 'x' } } });
  assert.equal(badType.status, 400);
  assert.match(badType.json.error.message, /"permType" must be one of READ, WRITE, READWRITE/);
  assert.equal((await call('POST', '/v1/auth/users/alice', { token: root, body: { grantRole: 'app', revokeRole: 'app' } })).status, 400);
  const missing = await call('GET', '/v1/auth/users/nobody', { token: root });
  assert.deepEqual([missing.status, missing.json.error.message], [404, 'user name not found']);
  assert.equal((await call('GET', '/v1/snapshot', { token: alice })).status, 403);
  assert.equal((await call('POST', '/v1/members', { token: alice, body: { peerURLs: ['http://127.0.0.1:1'] } })).status, 403);
});
