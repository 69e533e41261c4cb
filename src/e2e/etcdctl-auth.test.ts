// etcd authentication end to end with a client nobody here wrote: Debian's etcdctl (v3.4), against
// a real 3-member Lichen cluster. The expected outputs and errors are etcdctl's own against etcd
// 3.4.23 (checked by hand with the same commands).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import type { ServiceError } from '@grpc/grpc-js';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';

/** Simple tokens live this long after their last use on this cluster. */
const TOKEN_TTL_SECONDS = 1;

let cluster: ProcessCluster;

before(async () => {
  // bcrypt cost 4 keeps the many logins of this test cheap; the cost does not change behaviour.
  cluster = await ProcessCluster.start({ nodes: 3, flags: ['--bcrypt-cost', '4', '--auth-token-ttl', String(TOKEN_TTL_SECONDS)] });
});

after(async () => {
  await cluster?.stop();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs etcdctl against every member; resolves with its exit code and output, whatever they are. */
function etcdctl(args: string[], input?: string): Promise<Run> {
  const endpoints = cluster.members.map((m) => m.client).join(',');
  return new Promise((resolve) => {
    const child = execFile(
      'etcdctl',
      [`--endpoints=${endpoints}`, '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function ok(args: string[]): Promise<string> {
  const run = await etcdctl(args);
  assert.equal(run.code, 0, `etcdctl ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

async function fails(args: string[], error: string): Promise<void> {
  const run = await etcdctl(args);
  assert.notEqual(run.code, 0, `etcdctl ${args.join(' ')} succeeded: ${run.stdout}`);
  assert.ok(run.stderr.includes(`Error: ${error}`), `etcdctl ${args.join(' ')} said: ${run.stderr}`);
}

/** A raw gRPC unary call to the i-th member, with a token when given. */
function call<T = any>(i: number, service: 'KV' | 'Auth', method: string, request: object, token?: string): Promise<T> {
  return cluster.call<T>(cluster.members[i]!, service, method, request, 10_000, token);
}

const root = ['--user', 'root:rootpw'];
const alice = ['--user', 'alice:alicepw'];

test('etcdctl: user add root, auth enable, a role with a prefix, a user who may work there and nowhere else, auth disable', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await fails(['auth', 'enable'], 'etcdserver: root user does not exist');
  assert.equal(await ok(['user', 'add', 'root:rootpw']), 'User root created\n');
  // etcdctl creates the root role and grants it when etcd says "root user does not have root role".
  assert.equal(await ok(['auth', 'enable']), 'Authentication Enabled\n');
  await fails(['put', '/app/x', '1'], 'etcdserver: user name is empty');
  await fails(['--user', 'root:wrong', 'get', '/app/x'], 'etcdserver: authentication failed, invalid user ID or password');

  assert.equal(await ok([...root, 'role', 'add', 'app']), 'Role app created\n');
  assert.equal(await ok([...root, 'role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix']), 'Role app updated\n');
  assert.equal(await ok([...root, 'user', 'add', 'alice:alicepw']), 'User alice created\n');
  assert.equal(await ok([...root, 'user', 'grant-role', 'alice', 'app']), 'Role app is granted to user alice\n');
  assert.equal(await ok([...root, 'role', 'get', 'app']), 'Role app\nKV Read:\n\t[/app/, /app0) (prefix /app/)\nKV Write:\n\t[/app/, /app0) (prefix /app/)\n');
  assert.equal(await ok([...root, 'user', 'list']), 'alice\nroot\n');

  assert.equal(await ok([...alice, 'put', '/app/x', '1']), 'OK\n');
  assert.equal(await ok([...alice, 'get', '/app/', '--prefix']), '/app/x\n1\n');
  assert.equal(await ok([...alice, 'user', 'get', 'alice']), 'User: alice\nRoles: app\n');
  await fails([...alice, 'put', '/other', '1'], 'etcdserver: permission denied');
  await fails([...alice, 'get', '/other'], 'etcdserver: permission denied');
  await fails([...alice, 'del', '/', '--prefix'], 'etcdserver: permission denied');
  await fails([...alice, 'user', 'list'], 'etcdserver: permission denied');
  const txn = await etcdctl([...alice, 'txn'], 'value("/other") = "x"\n\nput /app/y 1\n\n\n');
  assert.ok(txn.code !== 0 && txn.stderr.includes('etcdserver: permission denied'), txn.stderr);

  const watch = await etcdctl([...alice, 'watch', '/other']);
  assert.notEqual(watch.code, 0);
  assert.ok(watch.stderr.includes('watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)'), watch.stderr);

  assert.equal(await ok([...root, 'auth', 'disable']), 'Authentication Disabled\n');
  assert.equal(await ok(['put', '/other', 'anyone']), 'OK\n');
  assert.equal(await ok(['get', '/app/x', '--print-value-only']), '1\n');
});

test('a simple token works on every member, and expires when unused for --auth-token-ttl', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await ok(['auth', 'enable']);
  try {
    const { token } = await call(0, 'Auth', 'Authenticate', { name: 'alice', password: 'alicepw' });
    // Issued through member 0; member 2 registered it when it applied the login (or waits to).
    assert.equal((await call(2, 'KV', 'Range', { key: Buffer.from('/app/x') }, token)).count, '1');
    let lastUse = Date.now();
    assert.equal((await call(1, 'KV', 'Range', { key: Buffer.from('/app/x') }, token)).count, '1');
    lastUse = Date.now();
    // etcdctl logs in anew on every run, so the short TTL never troubles it.
    assert.equal(await ok([...alice, 'get', '/app/x', '--print-value-only']), '1\n');
    // A real process has a real clock (the TTL logic is tested on an injected clock in
    // src/auth/tokens.test.ts): wait out the TTL since the token's last use on member 1.
    const expiredAt = lastUse + TOKEN_TTL_SECONDS * 1000 + 100;
    if (Date.now() < expiredAt) await delay(expiredAt - Date.now());
    await assert.rejects(call(1, 'KV', 'Range', { key: Buffer.from('/app/x') }, token), (error: ServiceError) => {
      assert.equal(error.details, 'etcdserver: invalid auth token');
      return true;
    });
  } finally {
    await ok([...root, 'auth', 'disable']);
  }
});
