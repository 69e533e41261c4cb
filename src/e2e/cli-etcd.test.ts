// The `lichen` client commands against a real etcd 3.4: etcd draws lease, member and cluster ids
// from 64 bits (most are above 2^53), so this is where an id squeezed through a JavaScript number
// would be refused or rounded; and `-w json` is compared with what etcdctl 3.4 prints for the same
// command against the same etcd. The lichen commands run in this process, over the real SDK.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { PassThrough, Readable } from 'node:stream';
import { LichenClient } from '../client/index.js';
import { COMMANDS, dispatch } from '../cli/index.js';
import { openSdkClient } from '../cli/sdk-adapter.js';
import { startEtcd, type EtcdProcess } from '../server/testing/etcd-process.js';

/** A lease id above 2^53, as etcd's usually are (etcd lets a client choose the id at grant). */
const LEASE_ID = 0x694d7a9b1c2d3e4fn;
const LEASE_HEX = '694d7a9b1c2d3e4f';

describe('the lichen CLI against etcd 3.4', () => {
  let etcd: EtcdProcess;
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd?.stop();
  });

  async function lichen(
    argv: string[],
    stdin = '',
    signal = new AbortController().signal,
    onStdout: (chunk: string) => void = () => {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => {
      out.push(chunk);
      onStdout(chunk.toString('utf8'));
    });
    stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const code = await dispatch(COMMANDS, [...argv, '--endpoints', etcd.client], {
      stdout,
      stderr,
      stdin: Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]),
      env: {},
      signal,
      forceSignal: new AbortController().signal,
      selfPath: new URL('../cli/main.ts', import.meta.url).pathname,
      interactive: false,
      openClient: openSdkClient,
    }, { inShell: false });
    return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
  }

  function etcdctl(argv: string[], stdin?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile('etcdctl', [`--endpoints=${etcd.client}`, ...argv], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 }, (error, stdout, stderr) =>
        error ? reject(new Error(`etcdctl ${argv.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
      );
      if (stdin !== undefined) child.stdin!.end(stdin);
    });
  }

  /** lichen's output of the same command, which must succeed. */
  async function lichenOut(argv: string[], stdin = ''): Promise<string> {
    const { code, stdout, stderr } = await lichen(argv, stdin);
    assert.equal(code, 0, `lichen ${argv.join(' ')}: ${stderr}`);
    return stdout;
  }

  /** Two writes land at different revisions (and leases get other ids and TTLs): compare the rest. */
  const sameButNumbers = (text: string): string => text.replace(/"(revision|create_revision|mod_revision|ID|id|ttl)":\d+/g, '"$1":0');

  it('-w json prints what etcdctl 3.4 prints, command by command', { timeout: 120_000 }, async () => {
    const read = async (argv: string[]) => assert.equal(await lichenOut([...argv, '-w', 'json']), await etcdctl([...argv, '-w', 'json']), argv.join(' '));
    const write = async (argv: string[], again: () => Promise<unknown>, stdin?: string) => {
      const expected = await etcdctl([...argv, '-w', 'json'], stdin);
      await again();
      assert.equal(sameButNumbers(await lichenOut([...argv, '-w', 'json'], stdin)), sameButNumbers(expected), argv.join(' '));
    };
    const nothing = async () => undefined;
    await write(['put', 'json/a', '1'], async () => etcdctl(['del', 'json/a']));
    // Each write is done again on the same state (the same key history), so versions agree too.
    await write(['put', 'json/a', '2', '--prev-kv'], async () => etcdctl(['del', 'json/a']).then(() => etcdctl(['put', 'json/a', '1'])));
    await read(['get', 'json/a']);
    await read(['get', 'json/', '--prefix', '--keys-only']);
    await read(['get', 'json/none']);
    await write(['del', 'json/a', '--prev-kv'], async () => etcdctl(['put', 'json/a', '1']).then(() => etcdctl(['put', 'json/a', '2'])));
    const txn = 'value("json/b") = "x"\n\nput json/c 1\n\nget json/c\ndel json/c\n\n';
    await write(['txn'], nothing, txn);
    await etcdctl(['put', 'json/c', '0']);
    await write(['txn'], async () => etcdctl(['put', 'json/c', '0']), txn);

    const leaseId = (await etcdctl(['lease', 'grant', '600'])).split(' ')[1]!;
    await write(['lease', 'grant', '600'], nothing);
    await etcdctl(['put', 'json/leased', 'v', `--lease=${leaseId}`]);
    await write(['lease', 'timetolive', leaseId], nothing);
    await write(['lease', 'timetolive', leaseId, '--keys'], nothing);
    await read(['lease', 'keep-alive', leaseId, '--once']);
    await read(['lease', 'list']);
    const revoked = await etcdctl(['lease', 'revoke', leaseId, '-w', 'json']);
    const another = (await etcdctl(['lease', 'grant', '600'])).split(' ')[1]!;
    assert.equal(sameButNumbers(await lichenOut(['lease', 'revoke', another, '-w', 'json'])), sameButNumbers(revoked), 'lease revoke');

    await read(['member', 'list']);
    await read(['alarm', 'list']);
    assert.equal(await lichenOut(['status', '-w', 'json']), await etcdctl(['endpoint', 'status', '-w', 'json']), 'status, as etcdctl endpoint status');
    const self = (await etcdctl(['member', 'list'])).split(',')[0]!;
    await read(['move-leader', self]);

    // Member changes: each adds its own learner (one at a time: etcd allows one), on its own port.
    // etcd lists members in id order, and ids differ: compare the lists as sets.
    const samePorts = (text: string): unknown => {
      const parsed = JSON.parse(sameButNumbers(text).replace(/127\.0\.0\.1:\d+/g, 'ADDRESS')) as { members: unknown[] };
      return { ...parsed, members: parsed.members.map((m) => JSON.stringify(m)).sort() };
    };
    const learnerId = (json: string): string => BigInt(/"member":\{"ID":(\d+)/.exec(json)![1]!).toString(16);
    const etcdAdded = await etcdctl(['member', 'add', 'x', '--peer-urls=http://127.0.0.1:1', '--learner', '-w', 'json']);
    const etcdUpdated = await etcdctl(['member', 'update', learnerId(etcdAdded), '--peer-urls=http://127.0.0.1:2', '-w', 'json']);
    const etcdRemoved = await etcdctl(['member', 'remove', learnerId(etcdAdded), '-w', 'json']);
    const added = await lichenOut(['member', 'add', 'y', '--peer-urls', 'http://127.0.0.1:3', '--learner', '-w', 'json']);
    assert.deepEqual(samePorts(added), samePorts(etcdAdded), 'member add');
    assert.deepEqual(samePorts(await lichenOut(['member', 'update', learnerId(added), '--peer-urls', 'http://127.0.0.1:4', '-w', 'json'])), samePorts(etcdUpdated), 'member update');
    assert.deepEqual(samePorts(await lichenOut(['member', 'remove', learnerId(added), '-w', 'json'])), samePorts(etcdRemoved), 'member remove');
  });

  it('watch -w json prints each response as etcdctl does', { timeout: 60_000 }, async () => {
    // Both watch from the same past revision, so both get the same three events from etcd.
    const first = await etcdctl(['put', 'watched', '1', '-w', 'json']);
    const revision = /"revision":(\d+)/.exec(first)![1]!;
    await etcdctl(['put', 'watched', '2']);
    await etcdctl(['del', 'watched']);
    const argv = ['watch', 'watched', '--prev-kv', '--rev', revision, '-w', 'json'];
    const etcdWatch = execFile('etcdctl', [`--endpoints=${etcd.client}`, ...argv], { env: { ...process.env, ETCDCTL_API: '3' } });
    let etcdOut = '';
    etcdWatch.stdout!.on('data', (chunk: string) => (etcdOut += chunk));
    const stop = new AbortController();
    let lichenOut = '';
    const lichenWatch = lichen(argv, '', stop.signal, (chunk) => (lichenOut += chunk));
    try {
      const sawDelete = (output: string) => output.includes('"type":1');
      while (!sawDelete(etcdOut) || !sawDelete(lichenOut)) await new Promise((resolve) => setTimeout(resolve, 50));
      stop.abort();
      const result = await lichenWatch;
      assert.equal(result.code, 0, result.stderr);
      assert.equal(lichenOut, etcdOut);
    } finally {
      stop.abort();
      etcdWatch.kill();
    }
  });

  it('takes, carries and prints lease ids above 2^53 exactly', { timeout: 60_000 }, async () => {
    const sdk = new LichenClient({ endpoints: [etcd.client], timeoutMs: 5000 });
    try {
      assert.equal((await sdk.leaseGrant(600, { id: LEASE_ID })).id, LEASE_ID);
    } finally {
      sdk.close();
    }
    const put = await lichen(['put', 'leased', 'v', '--lease', LEASE_HEX]);
    assert.deepEqual([put.code, put.stdout, put.stderr], [0, 'OK\n', '']);
    const got = await lichen(['get', 'leased', '-w', 'json']);
    assert.equal(got.code, 0, got.stderr);
    assert.match(got.stdout, new RegExp(`"lease":${LEASE_ID}[,}]`), 'the lease id printed exactly, as a bare number');
    assert.match((await lichen(['lease', 'timetolive', LEASE_HEX, '--keys'])).stdout, new RegExp(`^lease ${LEASE_HEX} granted with TTL\\(600s\\), remaining\\(\\d+s\\), attached keys\\(\\[leased\\]\\)\\n$`));
    assert.equal((await lichen(['lease', 'keep-alive', LEASE_HEX, '--once'])).stdout, `lease ${LEASE_HEX} keepalived with TTL(600)\n`);
    const txn = await lichen(['txn'], `lease("leased") = "${LEASE_HEX}"\n\nput also v --lease ${LEASE_HEX}\n\n`);
    assert.deepEqual([txn.code, txn.stdout, txn.stderr], [0, 'SUCCESS\n\nOK\n', '']);
    assert.match((await lichen(['lease', 'list'])).stdout, new RegExp(`^found \\d+ leases\\n(.*\\n)*${LEASE_HEX}\\n`));
    assert.equal((await lichen(['lease', 'revoke', LEASE_HEX])).stdout, `lease ${LEASE_HEX} revoked\n`);
    assert.equal((await lichen(['get', 'leased'])).stdout + (await lichen(['get', 'also'])).stdout, '', 'the revoked lease took its keys along');
  });

  it('prints the member and cluster ids etcd sends, whatever their size', { timeout: 60_000 }, async () => {
    const list = await lichen(['member', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^[0-9a-f]{16}, started, /m);
    const status = await lichen(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\n\S+\s+([0-9a-f]{16})\s+\1\s+true\s/);
  });
});
