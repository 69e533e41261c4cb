// Compatibility with a client nobody here wrote: Debian's etcdctl (package etcd-client, v3.4),
// against a real 3-member Lichen cluster. The expected outputs are etcdctl's own formats.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { credentials } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';


let cluster: ProcessCluster;
let endpoints: string;

before(async () => {
  cluster = await ProcessCluster.start({ nodes: 3 });
  endpoints = cluster.members.map((m) => m.client).join(',');
});

after(async () => {
  await cluster?.stop();
});

/**
 * Runs etcdctl with the cluster's endpoints; resolves with stdout (and stderr after it when
 * asked: `endpoint health` reports there), rejects with stderr.
 */
function etcdctl(args: string[], input?: string, withStderr = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'etcdctl',
      [`--endpoints=${endpoints}`, '--command-timeout=10s', ...args],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr || error.message}`)) : resolve(withStderr ? stdout + stderr : stdout),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

test('put, get, get --prefix and del --prefix print what etcd prints', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  assert.equal(await etcdctl(['put', 'fruit/apple', 'red']), 'OK\n');
  assert.equal(await etcdctl(['put', 'fruit/banana', 'yellow']), 'OK\n');
  assert.equal(await etcdctl(['get', 'fruit/apple']), 'fruit/apple\nred\n');
  assert.equal(await etcdctl(['get', '--prefix', 'fruit/']), 'fruit/apple\nred\nfruit/banana\nyellow\n');
  assert.equal(await etcdctl(['get', '--prefix', '--keys-only', 'fruit/']), 'fruit/apple\n\nfruit/banana\n\n');
  const json = JSON.parse(await etcdctl(['get', 'fruit/apple', '-w', 'json']));
  assert.equal(Buffer.from(json.kvs[0].value, 'base64').toString(), 'red');
  assert.equal(json.count, 1);
  assert.equal(await etcdctl(['del', '--prefix', 'fruit/']), '2\n');
  assert.equal(await etcdctl(['get', '--prefix', 'fruit/']), '');
});

test('txn reads compares and branches from standard input', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await etcdctl(['put', 'txn/key', 'expected']);
  const taken = await etcdctl(['txn'], 'value("txn/key") = "expected"\n\nput txn/result success\n\nput txn/result failure\n\n');
  assert.equal(taken, 'SUCCESS\n\nOK\n');
  assert.equal(await etcdctl(['get', 'txn/result', '--print-value-only']), 'success\n');
  const notTaken = await etcdctl(['txn'], 'value("txn/key") = "other"\n\nput txn/result success\n\nget txn/key\n\n');
  assert.equal(notTaken, 'FAILURE\n\ntxn/key\nexpected\n');
});

test('watch prints each change as etcd does, from the past and live', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await etcdctl(['put', 'watched', 'v1']);
  const { header } = JSON.parse(await etcdctl(['get', 'watched', '-w', 'json']));
  const watcher = spawn('etcdctl', [`--endpoints=${endpoints}`, 'watch', 'watched', `--rev=${header.revision}`], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  try {
    let output = '';
    const expected = 'PUT\nwatched\nv1\nPUT\nwatched\nv2\nDELETE\nwatched\n\n';
    const seen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`watch printed only: ${JSON.stringify(output)}`)), 15_000);
      watcher.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.startsWith(expected)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    // The historical event arrives first; the live ones follow once the watch is established.
    await new Promise<void>((resolve) => watcher.stdout.once('data', () => resolve()));
    await etcdctl(['put', 'watched', 'v2']);
    await etcdctl(['del', 'watched']);
    await seen;
  } finally {
    watcher.kill('SIGKILL');
  }
});

test('lease grant, keep-alive --once, timetolive, list and revoke', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const granted = await etcdctl(['lease', 'grant', '60']);
  const match = /^lease ([0-9a-f]+) granted with TTL\(60s\)\n$/.exec(granted);
  assert.ok(match, `unexpected grant output: ${granted}`);
  const id = match[1]!;
  assert.equal(await etcdctl(['lease', 'keep-alive', '--once', id]), `lease ${id} keepalived with TTL(60)\n`);
  await etcdctl(['put', 'leased', 'value', `--lease=${id}`]);
  assert.match(await etcdctl(['lease', 'timetolive', '--keys', id]), new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\[leased\\]\\)\\n$`));
  assert.match(await etcdctl(['lease', 'list']), new RegExp(`found 1 leases\\n${id}\\n`));
  assert.equal(await etcdctl(['lease', 'revoke', id]), `lease ${id} revoked\n`);
  assert.equal(await etcdctl(['get', 'leased']), '', 'revoking a lease deletes its keys');
});

test('member list, endpoint status and endpoint health describe the cluster', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const members = (await etcdctl(['member', 'list'])).trim().split('\n');
  assert.equal(members.length, 3);
  for (const m of cluster.members) {
    assert.ok(
      members.some((line) => line.includes(`, started, ${m.name}, http://${m.peer}, http://${m.client}, false`)),
      `member list lacks ${m.name}: ${members.join(' | ')}`,
    );
  }
  const status = (await etcdctl(['endpoint', 'status'])).trim().split('\n');
  assert.equal(status.length, 3);
  assert.equal(status.filter((line) => line.split(', ')[4] === 'true').length, 1, `exactly one leader expected: ${status.join(' | ')}`);
  const health = await etcdctl(['endpoint', 'health'], undefined, true);
  for (const m of cluster.members) assert.match(health, new RegExp(`${m.client} is healthy: successfully committed proposal`));
});

// Regression: Lichen refused the watch with "lichen: internal error: Cannot access 'timers'
// before initialization" instead of reporting the compaction.
test('watch --rev=1 after a compaction says the revision was compacted, as etcd does', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await etcdctl(['put', 'compacted/key', 'v1']);
  const { header } = JSON.parse(await etcdctl(['put', 'compacted/key', 'v2', '-w', 'json']));
  assert.equal(await etcdctl(['compact', String(header.revision)]), `compacted revision ${header.revision}\n`);
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      'etcdctl',
      [`--endpoints=${endpoints}`, 'watch', '--rev=1', 'compacted/key'],
      { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 },
      (error, out, err) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout: out, stderr: err }),
    );
  });
  assert.equal(stdout, '');
  assert.equal(stderr, 'watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n');
  assert.equal(code, 5, 'etcdctl exits with its watch-canceled status');
});

test('alarm list and alarm disarm show and clear a raised NOSPACE alarm on every member, as etcd does', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  // The member id as etcdctl prints it (JSON numbers may exceed 2^53: read the digits).
  const statusText = await etcdctl([`--endpoints=${cluster.members[0]!.client}`, 'endpoint', 'status', '-w', 'json']);
  const memberId = /"member_id":(\d+)/.exec(statusText)![1]!;
  // etcdctl cannot raise alarms (etcd raises them itself); a raw Maintenance call does.
  await raiseAlarm(cluster.members[0]!.client, memberId, 1);
  const line = `memberID:${memberId} alarm:NOSPACE \n`;
  assert.equal(await etcdctl(['alarm', 'list']), line);
  await assert.rejects(etcdctl(['put', 'blocked', 'value']), /Error: etcdserver: mvcc: database space exceeded/);
  assert.equal(await etcdctl(['get', 'blocked']), '', 'reads are still served');
  for (const m of cluster.members) {
    // A linearizable read first, so this member has applied the alarm before it reports status.
    await etcdctl([`--endpoints=${m.client}`, 'get', 'blocked']);
    const status = await etcdctl([`--endpoints=${m.client}`, 'endpoint', 'status']);
    assert.ok(status.trimEnd().endsWith(`, memberID:${memberId} alarm:NOSPACE`), `${m.name}: ${status}`);
  }
  assert.equal(await etcdctl(['alarm', 'disarm']), line);
  assert.equal(await etcdctl(['alarm', 'list']), '');
  assert.equal(await etcdctl(['put', 'blocked', 'value']), 'OK\n');
});

/** Raises an alarm through the Maintenance service, as a member that detects one does through raft. */
function raiseAlarm(client: string, memberId: string, alarm: number): Promise<void> {
  const maintenance = new (etcdClientConstructors().Maintenance)(client, credentials.createInsecure()) as unknown as {
    Alarm(request: object, callback: (error: Error | null) => void): void;
    close(): void;
  };
  return new Promise<void>((resolve, reject) =>
    maintenance.Alarm({ action: 1, memberID: memberId, alarm }, (error) => (error ? reject(error) : resolve())),
  ).finally(() => maintenance.close());
}
