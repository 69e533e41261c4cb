// etcd authentication end to end with clients nobody here wrote, as scenarios that run on a plain
// cluster (etcdctl-auth.test.ts, etcd3-client.test.ts) and on a cluster with TLS and client
// certificates (tls.test.ts). The expected outputs and errors are etcdctl's and etcd3's own
// against etcd 3.4.23 (checked by hand with the same commands).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import type { ServiceError } from '@grpc/grpc-js';
import { EtcdPermissionDeniedError, Range, type Etcd3 } from 'etcd3';
import { SIMPLE_TOKEN_CLOCK_RESOLUTION_MS } from '../auth/index.js';
import type { ProcessCluster } from '../server/testing/process-cluster.js';

/** A simple token unused for its TTL and this much more has expired (see SIMPLE_TOKEN_CLOCK_RESOLUTION_MS). */
const TOKEN_EXPIRED_AFTER_TTL_MS = 2 * SIMPLE_TOKEN_CLOCK_RESOLUTION_MS + 100;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** etcdctl (v3) against every member of a cluster, with the same leading flags on every run. */
export class Etcdctl {
  constructor(
    private readonly endpoints: string[],
    private readonly flags: string[] = [],
  ) {}

  /**
   * Resolves with the exit code and output, whatever they are. The dial timeout is raised from
   * etcdctl's 2 s because etcd 3.4's client authenticates a --user within it (a ReadIndex, a
   * bcrypt of cost 10 and a raft round): past it, etcdctl says only "context deadline exceeded".
   */
  run(args: string[], input?: string): Promise<Run> {
    return new Promise((resolve) => {
      const child = execFile(
        'etcdctl',
        [`--endpoints=${this.endpoints.join(',')}`, '--dial-timeout=10s', '--command-timeout=10s', ...this.flags, ...args],
        { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      if (input !== undefined) child.stdin!.end(input);
    });
  }

  async ok(args: string[]): Promise<string> {
    const run = await this.run(args);
    assert.equal(run.code, 0, `etcdctl ${args.join(' ')}: ${run.stderr}`);
    return run.stdout;
  }

  async fails(args: string[], error: string): Promise<void> {
    const run = await this.run(args);
    assert.notEqual(run.code, 0, `etcdctl ${args.join(' ')} succeeded: ${run.stdout}`);
    assert.ok(run.stderr.includes(`Error: ${error}`), `etcdctl ${args.join(' ')} said: ${run.stderr}`);
  }
}

export const ROOT_LOGIN = ['--user', 'root:rootpw'];
export const ALICE_LOGIN = ['--user', 'alice:alicepw'];

export interface EtcdctlAuthOptions {
  /** Flags of a caller who is nobody once auth is on, and what etcd answers its put. */
  anonymous: { flags: string[]; error: string };
  /** With --client-cert-auth: flags that present a certificate whose common name is alice. */
  aliceByCertificate?: string[];
}

/**
 * user add root, auth enable, a role with a prefix, a user who may work there and nowhere else
 * (by password, and by certificate when given), auth disable. Leaves root, alice and the role
 * app behind, with auth disabled.
 */
export async function etcdctlAuthScenario(ctl: Etcdctl, options: EtcdctlAuthOptions): Promise<void> {
  const root = ROOT_LOGIN;
  const alice = ALICE_LOGIN;
  await ctl.fails(['auth', 'enable'], 'etcdserver: root user does not exist');
  assert.equal(await ctl.ok(['user', 'add', 'root:rootpw']), 'User root created\n');
  // etcdctl creates the root role and grants it when etcd says "root user does not have root role".
  assert.equal(await ctl.ok(['auth', 'enable']), 'Authentication Enabled\n');
  await ctl.fails([...options.anonymous.flags, 'put', '/app/x', '1'], options.anonymous.error);
  await ctl.fails(['--user', 'root:wrong', 'get', '/app/x'], 'etcdserver: authentication failed, invalid user ID or password');

  assert.equal(await ctl.ok([...root, 'role', 'add', 'app']), 'Role app created\n');
  assert.equal(await ctl.ok([...root, 'role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix']), 'Role app updated\n');
  assert.equal(await ctl.ok([...root, 'user', 'add', 'alice:alicepw']), 'User alice created\n');
  assert.equal(await ctl.ok([...root, 'user', 'grant-role', 'alice', 'app']), 'Role app is granted to user alice\n');
  assert.equal(await ctl.ok([...root, 'role', 'get', 'app']), 'Role app\nKV Read:\n\t[/app/, /app0) (prefix /app/)\nKV Write:\n\t[/app/, /app0) (prefix /app/)\n');
  assert.equal(await ctl.ok([...root, 'user', 'list']), 'alice\nroot\n');

  assert.equal(await ctl.ok([...alice, 'put', '/app/x', '1']), 'OK\n');
  assert.equal(await ctl.ok([...alice, 'get', '/app/', '--prefix']), '/app/x\n1\n');
  assert.equal(await ctl.ok([...alice, 'user', 'get', 'alice']), 'User: alice\nRoles: app\n');
  await ctl.fails([...alice, 'put', '/other', '1'], 'etcdserver: permission denied');
  await ctl.fails([...alice, 'get', '/other'], 'etcdserver: permission denied');
  await ctl.fails([...alice, 'del', '/', '--prefix'], 'etcdserver: permission denied');
  await ctl.fails([...alice, 'user', 'list'], 'etcdserver: permission denied');
  const txn = await ctl.run([...alice, 'txn'], 'value("/other") = "x"\n\nput /app/y 1\n\n\n');
  assert.ok(txn.code !== 0 && txn.stderr.includes('etcdserver: permission denied'), txn.stderr);

  const watch = await ctl.run([...alice, 'watch', '/other']);
  assert.notEqual(watch.code, 0);
  assert.ok(watch.stderr.includes('watch was canceled (rpc error: code = PermissionDenied desc = etcdserver: permission denied)'), watch.stderr);

  if (options.aliceByCertificate) {
    // No --user: the certificate's common name is the user (etcd's --client-cert-auth).
    const byCertificate = options.aliceByCertificate;
    assert.equal(await ctl.ok([...byCertificate, 'put', '/app/cert', 'by certificate']), 'OK\n');
    assert.equal(await ctl.ok([...byCertificate, 'get', '/app/cert', '--print-value-only']), 'by certificate\n');
    await ctl.fails([...byCertificate, 'put', '/other', '1'], 'etcdserver: permission denied');
    await ctl.fails([...byCertificate, 'get', '/other'], 'etcdserver: permission denied');
    await ctl.fails([...byCertificate, 'user', 'list'], 'etcdserver: permission denied');
    // A token names its user whatever the certificate says, as in etcd.
    assert.equal(await ctl.ok([...byCertificate, ...root, 'user', 'list']), 'alice\nroot\n');
  }

  assert.equal(await ctl.ok([...root, 'auth', 'disable']), 'Authentication Disabled\n');
  assert.equal(await ctl.ok([...options.anonymous.flags, 'put', '/other', 'anyone']), 'OK\n');
  assert.equal(await ctl.ok(['get', '/app/x', '--print-value-only']), '1\n');
}

/**
 * After etcdctlAuthScenario: a simple token works on every member and expires when unused for
 * the cluster's --auth-token-ttl. Leaves auth disabled.
 */
export async function tokenExpiryScenario(cluster: ProcessCluster, ctl: Etcdctl, ttlSeconds: number): Promise<void> {
  const call = <T = any>(i: number, service: 'KV' | 'Auth', method: string, request: object, token?: string): Promise<T> =>
    cluster.call<T>(cluster.members[i]!, service, method, request, 10_000, token);
  await ctl.ok([...ROOT_LOGIN, 'auth', 'enable']);
  try {
    const { token } = await call(0, 'Auth', 'Authenticate', { name: 'alice', password: 'alicepw' });
    // Issued through member 0; member 2 registered it when it applied the login (or waits to).
    assert.equal((await call(2, 'KV', 'Range', { key: Buffer.from('/app/x') }, token)).count, '1');
    let lastUse = Date.now();
    assert.equal((await call(1, 'KV', 'Range', { key: Buffer.from('/app/x') }, token)).count, '1');
    lastUse = Date.now();
    // etcdctl logs in anew on every run, so the short TTL never troubles it.
    assert.equal(await ctl.ok([...ALICE_LOGIN, 'get', '/app/x', '--print-value-only']), '1\n');
    // A real process has a real clock (the TTL logic is tested on an injected clock in
    // src/auth/tokens.test.ts): wait out the TTL since the token's last use on member 1.
    const expiredAt = lastUse + ttlSeconds * 1000 + TOKEN_EXPIRED_AFTER_TTL_MS;
    if (Date.now() < expiredAt) await delay(expiredAt - Date.now());
    await assert.rejects(call(1, 'KV', 'Range', { key: Buffer.from('/app/x') }, token), (error: ServiceError) => {
      assert.equal(error.details, 'etcdserver: invalid auth token');
      return true;
    });
  } finally {
    await ctl.ok([...ROOT_LOGIN, 'auth', 'disable']);
  }
}

export interface Etcd3AuthOptions {
  /** A new etcd3 client for the cluster, logged in as the user when given. */
  connect(auth?: { username: string; password: string }): Etcd3;
  /** A client that is nobody once auth is on, and what its put is refused with. */
  anonymous: Etcd3;
  anonymousError: RegExp | (new (...args: any[]) => Error);
  /** The cluster's --auth-token-ttl when short enough to wait out: alice's token then expires unused. */
  tokenTtlSeconds?: number;
}

/**
 * The etcd3 npm client: a role with a prefix, a user who works inside it and is refused outside,
 * who logs in again after a password change; auth disable. Starts on a cluster with no users.
 */
export async function etcd3AuthScenario({ connect, anonymous, anonymousError, tokenTtlSeconds }: Etcd3AuthOptions): Promise<void> {
  const setup = connect();
  try {
    await setup.user('root').create('rootpw');
    await setup.role('root').create();
    await setup.user('root').addRole('root');
    await setup.auth.authEnable({});
  } finally {
    setup.close();
  }
  const root = connect({ username: 'root', password: 'rootpw' });
  const alice = connect({ username: 'alice', password: 'alicepw' });
  try {
    await assert.rejects(anonymous.put('app/anonymous').value('1').exec(), anonymousError);
    await root.role('app').create();
    await root.role('app').grant({ permission: 'Readwrite', range: Range.prefix('app/') });
    assert.deepEqual(
      (await root.role('app').permissions()).map((p) => [p.permission, p.range.start.toString(), p.range.end.toString()]),
      [['Readwrite', 'app/', 'app0']],
    );
    await root.user('alice').create('alicepw');
    await root.user('alice').addRole('app');

    await alice.put('app/x').value('1');
    assert.equal(await alice.get('app/x').string(), '1');
    assert.deepEqual(await alice.getAll().prefix('app/').strings(), { 'app/x': '1' });
    await assert.rejects(alice.put('other').value('1').exec(), EtcdPermissionDeniedError);
    await assert.rejects(alice.get('other').string(), EtcdPermissionDeniedError);
    await assert.rejects(alice.getAll().prefix('').keys(), EtcdPermissionDeniedError);

    // A password change ends alice's token; etcd3 logs in again on "invalid auth token".
    await root.user('alice').setPassword('alicepw');
    assert.equal(await alice.get('app/x').string(), '1');
    if (tokenTtlSeconds !== undefined) {
      // Left unused past the TTL, the token expires (tokenExpiryScenario shows the member's
      // "invalid auth token"); etcd3 logs in again and repeats the call, as with etcd. A real
      // process has a real clock, so this waits.
      await delay(tokenTtlSeconds * 1000 + TOKEN_EXPIRED_AFTER_TTL_MS);
      assert.equal(await alice.get('app/x').string(), '1');
      await alice.put('app/after-expiry').value('2');
    }
  } finally {
    await root.auth.authDisable({});
    root.close();
    alice.close();
  }
  await anonymous.put('app/anonymous').value('again');
  assert.equal(await anonymous.get('app/anonymous').string(), 'again');
}
