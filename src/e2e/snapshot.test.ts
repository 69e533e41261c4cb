// Snapshots in etcd's format, both ways, against the real etcd 3.4 (Debian's etcd-server and
// etcd-client): a Lichen snapshot taken with `etcdctl snapshot save` passes `etcdctl snapshot
// status` (bbolt's integrity check, the same hash as `lichen snapshot status`) and `etcdctl
// snapshot restore`, and etcd started on it serves the same keys, revisions, history and leases;
// an etcd snapshot restored with `lichen snapshot restore` into a 3-member Lichen cluster serves
// what etcd served. Every read is compared through etcdctl's JSON output, on both systems.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { COMMANDS, dispatch } from '../cli/index.js';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, freePort } from '../server/testing/process-cluster.js';

const ETCD_START_TIMEOUT_MS = 30_000;

function execute(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 30_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${command} ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

/**
 * etcd 3.4's client authenticates a --user within the dial timeout (etcdctl's default 2 s): a
 * ReadIndex, a bcrypt of cost 10 and a raft round, which once took longer at a load of 15 on two
 * cores and failed with nothing but "context deadline exceeded". Hence a dial timeout as long as
 * the command's.
 */
const etcdctl = (endpoint: string, ...args: string[]): Promise<string> => execute('etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=20s', '--command-timeout=20s', ...args]);

/** `lichen <argv>` in this process; resolves with stdout, rejects with stderr. */
async function lichen(...argv: string[]): Promise<string> {
  const collect = (): { stream: PassThrough; text: () => string } => {
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    return { stream, text: () => Buffer.concat(chunks).toString() };
  };
  const out = collect();
  const err = collect();
  const code = await dispatch(COMMANDS, argv, {
    stdout: out.stream,
    stderr: err.stream,
    stdin: Readable.from([]),
    env: {},
    signal: new AbortController().signal,
    forceSignal: new AbortController().signal,
    selfPath: '',
    interactive: false,
    openClient: async (options) => (await import('../cli/sdk-adapter.js')).openSdkClient(options),
  }, { inShell: false });
  if (code !== 0) throw new Error(`lichen ${argv.join(' ')} exited ${code}: ${err.text()}`);
  return out.text();
}

/** One etcd 3.4 member on free loopback ports; stop() kills it. */
class EtcdMember {
  private constructor(
    readonly client: string,
    private readonly child: ChildProcess,
    readonly log: string[],
  ) {}

  static async start(dataDir: string, name: string, peer: string): Promise<EtcdMember> {
    const client = `127.0.0.1:${await freePort()}`;
    const child = spawn('etcd', [
      '--name', name, '--data-dir', dataDir,
      '--listen-client-urls', `http://${client}`, '--advertise-client-urls', `http://${client}`,
      '--listen-peer-urls', `http://${peer}`, '--initial-advertise-peer-urls', `http://${peer}`,
      '--initial-cluster', `${name}=http://${peer}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const member = new EtcdMember(client, child, []);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`etcd did not get ready:\n${member.log.slice(-20).join('\n')}`)), ETCD_START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`etcd exited (${code}):\n${member.log.slice(-20).join('\n')}`)));
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        member.log.push(...text.split('\n'));
        if (text.includes('ready to serve client requests')) {
          clearTimeout(timer);
          resolve();
        }
      });
    }).catch(async (error: unknown) => {
      await member.stop();
      throw error;
    });
    return member;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}

interface Pair {
  key: string;
  value: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  /** Decimal text: etcd's lease ids do not fit JavaScript numbers. */
  lease?: string;
}

/** Every key through etcdctl's JSON, lease ids kept exact. */
async function everything(endpoint: string, ...flags: string[]): Promise<{ revision: number; kvs: Pair[] }> {
  const text = await etcdctl(endpoint, 'get', '', '--prefix', '-w', 'json', ...flags);
  const parsed = JSON.parse(text.replace(/"(lease|cluster_id|member_id)":(\d+)/g, '"$1":"$2"')) as { header: { revision: number }; kvs?: Pair[] };
  return { revision: parsed.header.revision, kvs: parsed.kvs ?? [] };
}

/** A user alice who may only read keys under "a" (etcd's "--prefix read a"). */
async function addReader(endpoint: string): Promise<void> {
  await etcdctl(endpoint, 'user', 'add', 'alice:alice-pw');
  await etcdctl(endpoint, 'role', 'add', 'reader');
  await etcdctl(endpoint, 'role', 'grant-permission', 'reader', '--prefix=true', 'read', 'a');
  await etcdctl(endpoint, 'user', 'grant-role', 'alice', 'reader');
}

/** `restored` has auth on, alice and her role as `original` has them, and checks her password and rights. */
async function checkReader(restored: string, original: string): Promise<void> {
  const root = '--user=root:root-pw';
  for (const args of [['role', 'get', 'reader'], ['user', 'get', 'alice']]) {
    assert.equal(await etcdctl(restored, root, ...args), await etcdctl(original, root, ...args), args.join(' '));
  }
  assert.equal(await etcdctl(restored, '--user=alice:alice-pw', 'get', 'a', '--print-value-only'), await etcdctl(original, root, 'get', 'a', '--print-value-only'));
  await assert.rejects(etcdctl(restored, '--user=alice:alice-pw', 'put', 'a', 'x'), /permission denied/);
  await assert.rejects(etcdctl(restored, '--user=alice:wrong', 'get', 'a'), /authentication failed/);
}

async function leaseOf(endpoint: string, hexId: string): Promise<{ grantedTtl: number; keys: string[] }> {
  const text = await etcdctl(endpoint, 'lease', 'timetolive', hexId, '--keys', '-w', 'json');
  const parsed = JSON.parse(text.replace(/"(id|cluster_id|member_id)":(\d+)/g, '"$1":"$2"')) as { 'granted-ttl': number; keys?: string[] };
  return { grantedTtl: parsed['granted-ttl'], keys: (parsed.keys ?? []).map((k) => Buffer.from(k, 'base64').toString()) };
}

async function leaseIds(endpoint: string): Promise<string[]> {
  const lines = (await etcdctl(endpoint, 'lease', 'list')).trim().split('\n');
  return lines.slice(1).sort();
}

async function compactedError(endpoint: string, revision: number): Promise<string> {
  return etcdctl(endpoint, 'get', 'a', `--rev=${revision}`).then(
    () => 'no error',
    (error: Error) => (/required revision has been compacted/.test(error.message) ? 'compacted' : error.message),
  );
}

test('a Lichen snapshot passes etcdctl snapshot status and restore, and etcd serves the same data', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-snapshot-out-'));
  const cluster = await ProcessCluster.start({ nodes: 1 });
  let etcd: EtcdMember | undefined;
  try {
    const m = cluster.members[0]!;
    const put = (key: string, value: string | Buffer, lease = 0) => cluster.call(m, 'KV', 'Put', { key: Buffer.from(key), value: Buffer.from(value), lease });
    await put('a', '1'); // revision 2
    await put('b', '2'); // 3
    await put('a', '3'); // 4
    await cluster.call(m, 'KV', 'DeleteRange', { key: Buffer.from('b') }); // 5
    const { ID: leaseId } = await cluster.call<{ ID: string }>(m, 'Lease', 'LeaseGrant', { TTL: 300 });
    await put('c', '4', Number(leaseId)); // 6
    await cluster.call(m, 'KV', 'Compact', { revision: 4 });
    await put('big', Buffer.alloc(100_000, 'x')); // 7: a value over many pages
    for (let i = 0; i < 300; i++) await put(`many/${String(i).padStart(3, '0')}`, `value ${i}`);
    await put('a', '5');
    const lichenState = await everything(m.client);
    // A raised alarm travels in the alarm bucket: etcd must list it after the restore.
    await cluster.call(m, 'Maintenance', 'Alarm', { action: 1, memberID: 0x77, alarm: 1 });

    const file = join(dir, 'lichen.db');
    assert.match(await etcdctl(m.client, 'snapshot', 'save', file), /Snapshot saved at/);
    const statusJson = JSON.parse(await etcdctl(m.client, 'snapshot', 'status', file, '-w', 'json'));
    assert.equal(statusJson.revision, lichenState.revision);
    assert.deepEqual(JSON.parse(await lichen('snapshot', 'status', file, '-w', 'json')), statusJson, 'lichen and etcdctl agree');
    assert.equal(await lichen('snapshot', 'status', file), await etcdctl(m.client, 'snapshot', 'status', file));
    assert.equal(await lichen('snapshot', 'status', file, '-w', 'table'), await etcdctl(m.client, 'snapshot', 'status', file, '-w', 'table'));
    const ownFile = join(dir, 'lichen-cli.db');
    assert.equal(await lichen('snapshot', 'save', ownFile, '--endpoints', m.client), `Snapshot saved at ${ownFile}\n`);
    const ownStatus = JSON.parse(await etcdctl(m.client, 'snapshot', 'status', ownFile, '-w', 'json'));
    assert.deepEqual([ownStatus.revision, ownStatus.totalKey], [statusJson.revision, statusJson.totalKey], 'lichen snapshot save wrote the same state');

    const peer = `127.0.0.1:${await freePort()}`;
    const dataDir = join(dir, 'etcd');
    await execute('etcdctl', ['snapshot', 'restore', file, '--name', 'e1', '--data-dir', dataDir, '--initial-cluster', `e1=http://${peer}`, '--initial-advertise-peer-urls', `http://${peer}`]);
    etcd = await EtcdMember.start(dataDir, 'e1', peer);

    assert.deepEqual(await everything(etcd.client), lichenState, 'every key, value, revision, version and lease');
    assert.deepEqual(await everything(etcd.client, '--rev=6'), await everything(m.client, '--rev=6'), 'history after the compaction');
    assert.equal(await compactedError(etcd.client, 3), 'compacted');
    assert.equal(await compactedError(m.client, 3), 'compacted');
    const hexLease = BigInt(leaseId).toString(16);
    assert.deepEqual(await leaseIds(etcd.client), await leaseIds(m.client));
    assert.deepEqual(await leaseOf(etcd.client, hexLease), await leaseOf(m.client, hexLease));
    assert.equal(await etcdctl(etcd.client, 'alarm', 'list'), 'memberID:119 alarm:NOSPACE \n');
    assert.equal(await etcdctl(etcd.client, 'alarm', 'list'), await etcdctl(m.client, 'alarm', 'list'));
    await etcdctl(etcd.client, 'alarm', 'disarm');
    // Both continue from the same revision.
    assert.deepEqual(JSON.parse(await etcdctl(etcd.client, 'put', 'after', 'x', '-w', 'json')).header.revision, lichenState.revision + 1);
    await etcd.stop();

    // Users, roles and the auth flag: a snapshot with auth on restores into an etcd that checks
    // Lichen's bcrypt hashes and permissions.
    await etcdctl(m.client, 'alarm', 'disarm'); // else the restored etcd refuses the put below for NOSPACE first
    await addReader(m.client);
    await etcdctl(m.client, 'user', 'add', 'root:root-pw');
    await etcdctl(m.client, 'auth', 'enable');
    const authFile = join(dir, 'lichen-auth.db');
    await etcdctl(m.client, '--user=root:root-pw', 'snapshot', 'save', authFile);
    const authPeer = `127.0.0.1:${await freePort()}`;
    const authDataDir = join(dir, 'etcd-auth');
    await execute('etcdctl', ['snapshot', 'restore', authFile, '--name', 'e2', '--data-dir', authDataDir, '--initial-cluster', `e2=http://${authPeer}`, '--initial-advertise-peer-urls', `http://${authPeer}`]);
    etcd = await EtcdMember.start(authDataDir, 'e2', authPeer);
    await checkReader(etcd.client, m.client);
  } finally {
    await etcd?.stop();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an etcd snapshot restored with lichen snapshot restore serves the same data on a 3-member cluster', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-snapshot-in-'));
  let etcd: EtcdMember | undefined;
  let cluster: ProcessCluster | undefined;
  try {
    etcd = await EtcdMember.start(join(dir, 'etcd'), 'e1', `127.0.0.1:${await freePort()}`);
    const e = etcd.client;
    await etcdctl(e, 'put', 'a', '1');
    await etcdctl(e, 'put', 'b', '2');
    await etcdctl(e, 'put', 'a', '3');
    await etcdctl(e, 'del', 'b');
    // etcd draws lease ids from 63 bits: above 2^53, so Lichen renumbers it.
    const leaseHex = /lease ([0-9a-f]{16}) granted/.exec(await etcdctl(e, 'lease', 'grant', '600'))![1]!;
    assert.ok(BigInt(`0x${leaseHex}`) >= 2n ** 53n, `etcd's lease id ${leaseHex} is above 2^53`);
    await etcdctl(e, 'put', 'leased', 'yes', `--lease=${leaseHex}`);
    await etcdctl(e, 'compact', '4');
    await etcdctl(e, 'put', 'a', '4');
    await addReader(e);
    const etcdState = await everything(e);
    const file = join(dir, 'etcd.db');
    await etcdctl(e, 'snapshot', 'save', file);

    let restoreOutput = '';
    cluster = await ProcessCluster.start({
      nodes: 3,
      beforeLaunch: async (c) => {
        for (const m of c.members) {
          restoreOutput = await lichen('snapshot', 'restore', file, '--name', m.name, '--data-dir', m.dataDir, '--initial-cluster', c.initialCluster);
        }
      },
    });
    const renumbered = (BigInt(`0x${leaseHex}`) & (2n ** 53n - 1n)).toString(16).padStart(16, '0');
    assert.match(restoreOutput, new RegExp(`revision ${etcdState.revision} \\(compacted at 4\\)`));
    assert.match(restoreOutput, new RegExp(`lease ${leaseHex} is now ${renumbered}`));

    const [m1, m2, m3] = cluster.members as [typeof cluster.members[0], typeof cluster.members[0], typeof cluster.members[0]];
    const expected = {
      revision: etcdState.revision,
      kvs: etcdState.kvs.map((kv) => (kv.lease === undefined ? kv : { ...kv, lease: String(BigInt(kv.lease) & (2n ** 53n - 1n)) })),
    };
    for (const m of [m1, m2, m3]) assert.deepEqual(await everything(m.client), expected, `${m.name} serves etcd's keys`);
    assert.deepEqual(await everything(m2.client, '--rev=4'), await everything(e, '--rev=4'), 'history from the compaction on');
    assert.equal(await compactedError(m3.client, 3), 'compacted');
    assert.deepEqual(await leaseIds(m1.client), [renumbered]);
    assert.deepEqual(await leaseOf(m1.client, renumbered), await leaseOf(e, leaseHex));
    const hashes = await Promise.all(cluster.members.map(async (m) => (await cluster!.call<{ hash: number }>(m, 'Maintenance', 'Hash', {})).hash));
    assert.equal(new Set(hashes).size, 1, `restored members hold the same backend: ${hashes.join(', ')}`);
    assert.equal(JSON.parse(await etcdctl(m1.client, 'put', 'after', 'x', '-w', 'json')).header.revision, etcdState.revision + 1);
    // etcd's users and roles came along; its bcrypt hash lets alice in once auth is on.
    assert.match(restoreOutput, / 1 user and 1 role, authentication disabled;/);
    for (const endpoint of [m1.client, e]) {
      await etcdctl(endpoint, 'user', 'add', 'root:root-pw');
      await etcdctl(endpoint, 'auth', 'enable');
    }
    await checkReader(m2.client, e);
  } finally {
    await cluster?.stop();
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
