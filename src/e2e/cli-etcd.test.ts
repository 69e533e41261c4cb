// The `lichen` client commands against a real etcd 3.4: etcd draws lease, member and cluster ids
// from 64 bits (most are above 2^53), so this is where an id squeezed through a JavaScript number
// would be refused or rounded. The commands run in this process, over the real SDK.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
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

  async function lichen(argv: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => out.push(chunk));
    stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const code = await dispatch(COMMANDS, [...argv, '--endpoints', etcd.client], {
      stdout,
      stderr,
      stdin: Readable.from(stdin === '' ? [] : [Buffer.from(stdin)]),
      env: {},
      signal: new AbortController().signal,
      forceSignal: new AbortController().signal,
      selfPath: new URL('../cli/main.ts', import.meta.url).pathname,
      interactive: false,
      openClient: openSdkClient,
    }, { inShell: false });
    return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
  }

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
    assert.equal((await lichen(['get', '', '--prefix'])).stdout, '', 'the revoked lease took its keys along');
  });

  it('prints the member and cluster ids etcd sends, whatever their size', { timeout: 60_000 }, async () => {
    const list = await lichen(['member', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^[0-9a-f]{16}, started, /);
    const status = await lichen(['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\n\S+\s+([0-9a-f]{16})\s+\1\s+true\s/);
  });
});
