// The client commands and the dispatcher, run in-process against a small in-memory fake of
// the cluster client: flags become the right requests, results print in etcdctl's format, and
// mistakes give exit code 2 with a message.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { Event, KeyValue, RangeRequest } from '../mvcc/types.js';
import { EventType } from '../mvcc/types.js';
import type { CliClient, CliWatchSink, ClientOptions, Exact } from './client-port.js';
import type { CommandContext } from './command.js';
import { COMMANDS, dispatch } from './index.js';

const decoder = new TextDecoder();
const text = (bytes: Uint8Array | undefined) => decoder.decode(bytes ?? new Uint8Array());
const bytes = (s: string) => new TextEncoder().encode(s);

/** A single-member in-memory "cluster": enough of etcd's behaviour for the CLI's needs. */
class FakeCluster implements CliClient {
  readonly store = new Map<string, Exact<KeyValue>>();
  readonly calls: { method: string; request: unknown }[] = [];
  readonly opened: ClientOptions[] = [];
  revision = 1;
  closed = 0;
  watchers: CliWatchSink[] = [];
  leases = new Map<bigint, number>();
  /** The id the next lease grant returns (etcd's are mostly above 2^53). */
  nextLeaseId = 0x2an;
  private header() {
    return { clusterId: 0xc1n, memberId: 0xa1n, revision: this.revision, raftTerm: 2 };
  }
  private record(method: string, request: unknown) {
    this.calls.push({ method, request });
  }
  private select(r: { key: Uint8Array; rangeEnd?: Uint8Array }): Exact<KeyValue>[] {
    const key = text(r.key);
    const end = r.rangeEnd === undefined ? undefined : r.rangeEnd.length === 1 && r.rangeEnd[0] === 0 ? '\uffff' : text(r.rangeEnd);
    return [...this.store.values()]
      .filter((kv) => (end === undefined ? text(kv.key) === key : text(kv.key) >= key && text(kv.key) < end))
      .sort((a, b) => (text(a.key) < text(b.key) ? -1 : 1));
  }
  async range(r: RangeRequest) {
    this.record('range', r);
    const all = this.select(r);
    const limited = r.limit ? all.slice(0, r.limit) : all;
    return { header: this.header(), kvs: r.countOnly ? [] : limited, more: limited.length < all.length, count: all.length };
  }
  async put(r: { key: Uint8Array; value?: Uint8Array; lease?: bigint; prevKv?: boolean }) {
    this.record('put', r);
    const previous = this.store.get(text(r.key));
    this.revision++;
    const kv: Exact<KeyValue> = {
      key: r.key,
      value: r.value ?? previous?.value ?? new Uint8Array(),
      createRevision: previous?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (previous?.version ?? 0) + 1,
      lease: r.lease ?? 0n,
    };
    this.store.set(text(r.key), kv);
    const event: Exact<Event> = { type: EventType.PUT, kv, ...(previous ? { prevKv: previous } : {}) };
    for (const w of this.watchers) w.onEvents([event], this.revision, this.header());
    return { header: this.header(), ...(r.prevKv && previous ? { prevKv: previous } : {}) };
  }
  async deleteRange(r: { key: Uint8Array; rangeEnd?: Uint8Array; prevKv?: boolean }) {
    this.record('deleteRange', r);
    const doomed = this.select(r);
    for (const kv of doomed) this.store.delete(text(kv.key));
    if (doomed.length > 0) this.revision++;
    return { header: this.header(), deleted: doomed.length, prevKvs: r.prevKv ? doomed : [] };
  }
  async txn(r: Parameters<CliClient['txn']>[0]) {
    this.record('txn', r);
    return { header: this.header(), succeeded: r.compare.length === 0, responses: [] };
  }
  async compact(r: { revision: number }) {
    this.record('compact', r);
    return { header: this.header() };
  }
  async watch(r: Parameters<CliClient['watch']>[0], sink: CliWatchSink) {
    this.record('watch', r);
    this.watchers.push(sink);
    return { cancel: () => (this.watchers = this.watchers.filter((w) => w !== sink)) };
  }
  async leaseGrant(ttl: number) {
    this.record('leaseGrant', ttl);
    this.leases.set(this.nextLeaseId, ttl);
    return { header: this.header(), ID: this.nextLeaseId, TTL: ttl };
  }
  async leaseRevoke(id: bigint) {
    this.record('leaseRevoke', id);
    this.leases.delete(id);
    return { header: this.header() };
  }
  async leaseKeepAliveOnce(id: bigint) {
    this.record('leaseKeepAliveOnce', id);
    return { header: this.header(), ID: id, TTL: this.leases.get(id) ?? 0 };
  }
  async leaseTimeToLive(id: bigint, keys: boolean) {
    this.record('leaseTimeToLive', { id, keys });
    const ttl = this.leases.get(id);
    return { header: this.header(), ID: id, TTL: ttl ?? -1, grantedTTL: ttl ?? 0, keys: keys ? [bytes('k1')] : [] };
  }
  async leaseLeases() {
    return { header: this.header(), ids: [...this.leases.keys()] };
  }
  private members = [{ id: 0xa1n, name: 'node1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: false }];
  async memberList() {
    return { header: this.header(), members: this.members };
  }
  async memberAdd(peerURLs: string[], isLearner: boolean) {
    this.record('memberAdd', { peerURLs, isLearner });
    const member = { id: 0xb2n, name: '', peerURLs, clientURLs: [], isLearner };
    this.members = [...this.members, member];
    return { header: this.header(), member, members: this.members };
  }
  async memberRemove(id: bigint) {
    this.record('memberRemove', id);
    return { header: this.header(), members: this.members };
  }
  async memberUpdate(id: bigint, peerURLs: string[]) {
    this.record('memberUpdate', { id, peerURLs });
    return { header: this.header(), members: this.members };
  }
  async memberPromote(id: bigint) {
    this.record('memberPromote', id);
    return { header: this.header(), members: this.members };
  }
  async statusAll() {
    return [
      {
        endpoint: '127.0.0.1:2379',
        status: { version: '3.5.0', dbSize: 4096, leader: 0xa1n, raftIndex: 7, raftTerm: 2, raftAppliedIndex: 7, isLearner: false, errors: [], header: this.header() },
      },
    ];
  }
  async moveLeader(id: bigint) {
    this.record('moveLeader', id);
    return { header: this.header() };
  }
  /** What snapshot() streams: by default 1 KiB and its SHA-256, in three pieces. */
  snapshotBytes: Buffer = withSha256(Buffer.alloc(1024, 7));
  async *snapshot(_signal: AbortSignal) {
    this.record('snapshot', undefined);
    for (let i = 0; i < this.snapshotBytes.length; i += 500) yield this.snapshotBytes.subarray(i, i + 500);
  }
  alarms = [{ memberId: 0xa1n, alarm: 'NOSPACE' }];
  async alarmList() {
    this.record('alarmList', undefined);
    return { header: this.header(), alarms: [...this.alarms] };
  }
  async alarmDisarm() {
    this.record('alarmDisarm', undefined);
    const cleared = this.alarms;
    this.alarms = [];
    return { header: this.header(), alarms: cleared };
  }
  async close() {
    this.closed++;
  }
}

function withSha256(body: Buffer): Buffer {
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

function sink(): { stream: Writable; read: () => string } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { stream, read: () => Buffer.concat(chunks).toString('utf8') };
}

async function run(cluster: FakeCluster, argv: string[], options: { stdin?: string; env?: Record<string, string>; signal?: AbortSignal } = {}) {
  const out = sink();
  const err = sink();
  const context: CommandContext = {
    stdout: out.stream,
    stderr: err.stream,
    stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
    env: options.env ?? {},
    signal: options.signal ?? new AbortController().signal,
    forceSignal: new AbortController().signal,
    selfPath: new URL('./main.ts', import.meta.url).pathname,
    interactive: false,
    openClient: async (opts) => {
      cluster.opened.push(opts);
      return cluster;
    },
  };
  const code = await dispatch(COMMANDS, argv, context, { inShell: false });
  return { code, stdout: out.read(), stderr: err.read() };
}

test('put then get prints OK, then the key and value lines', async () => {
  const cluster = new FakeCluster();
  assert.deepEqual(await run(cluster, ['put', 'user:1', 'Alice']), { code: 0, stdout: 'OK\n', stderr: '' });
  assert.deepEqual(await run(cluster, ['get', 'user:1']), { code: 0, stdout: 'user:1\nAlice\n', stderr: '' });
  assert.equal(cluster.closed, 2, 'each command closes its client');
});

test('put --prev-kv prints the old pair and put without a value reads stdin', async () => {
  const cluster = new FakeCluster();
  await run(cluster, ['put', 'k', '--', '-starts-with-dash']);
  assert.equal(text(cluster.store.get('k')?.value), '-starts-with-dash');
  assert.equal((await run(cluster, ['put', 'k', 'new', '--prev-kv'])).stdout, 'OK\nk\n-starts-with-dash\n');
  await run(cluster, ['put', 'k'], { stdin: 'from\nstdin' });
  assert.equal(text(cluster.store.get('k')?.value), 'from\nstdin');
});

test('get flags become the range request etcd expects', async () => {
  const cluster = new FakeCluster();
  for (const k of ['a/1', 'a/2', 'a/3', 'b']) await run(cluster, ['put', k, `v-${k}`]);
  assert.equal((await run(cluster, ['get', 'a/', '--prefix', '--keys-only'])).stdout, 'a/1\na/2\na/3\n');
  assert.equal((await run(cluster, ['get', 'a/', '--prefix', '--count-only'])).stdout, '3\n');
  assert.equal((await run(cluster, ['get', 'a/2', '--from-key', '--limit', '2'])).stdout, 'a/2\nv-a/2\na/3\nv-a/3\n');
  await run(cluster, ['get', 'x', '--rev', '3', '--serializable']);
  const last = cluster.calls.at(-1)?.request as RangeRequest;
  assert.equal(last.revision, 3);
  assert.equal(last.serializable, true);
  assert.equal(last.rangeEnd, undefined);
});

test('-w json prints the response object with base64 bytes', async () => {
  const cluster = new FakeCluster();
  await run(cluster, ['put', 'k', 'v']);
  const { stdout } = await run(cluster, ['get', 'k', '-w', 'json']);
  const parsed = JSON.parse(stdout) as { header: { revision: number }; kvs: { key: string; value: string }[]; count: number };
  assert.equal(parsed.count, 1);
  assert.equal(parsed.kvs[0]?.key, Buffer.from('k').toString('base64'));
  assert.equal(parsed.kvs[0]?.value, Buffer.from('v').toString('base64'));
  assert.equal(parsed.header.revision, 2);
});

test("-w json prints etcd's field names and leaves out zero values, as etcdctl 3.4 does", async () => {
  const cluster = new FakeCluster();
  await run(cluster, ['put', 'k', 'v', '--lease', '2a']);
  assert.equal(
    (await run(cluster, ['get', 'k', '-w', 'json'])).stdout,
    '{"header":{"cluster_id":193,"member_id":161,"revision":2,"raft_term":2},"kvs":[{"key":"aw==","create_revision":2,"mod_revision":2,"version":1,"value":"dg==","lease":42}],"count":1}\n',
  );
  assert.equal(
    (await run(cluster, ['put', 'k', 'w', '--prev-kv', '-w', 'json'])).stdout,
    '{"header":{"cluster_id":193,"member_id":161,"revision":3,"raft_term":2},"prev_kv":{"key":"aw==","create_revision":2,"mod_revision":2,"version":1,"value":"dg==","lease":42}}\n',
  );
  assert.equal((await run(cluster, ['get', 'none', '-w', 'json'])).stdout, '{"header":{"cluster_id":193,"member_id":161,"revision":3,"raft_term":2}}\n');
  assert.equal(
    (await run(cluster, ['del', 'k', '-w', 'json'])).stdout,
    '{"header":{"cluster_id":193,"member_id":161,"revision":4,"raft_term":2},"deleted":1}\n',
  );
  assert.equal(
    (await run(cluster, ['member', 'list', '-w', 'json'])).stdout,
    '{"header":{"cluster_id":193,"member_id":161,"revision":4,"raft_term":2},"members":[{"ID":161,"name":"node1","peerURLs":["http://127.0.0.1:2380"],"clientURLs":["http://127.0.0.1:2379"]}]}\n',
  );
  assert.equal(
    (await run(cluster, ['status', '-w', 'json'])).stdout,
    '[{"Endpoint":"127.0.0.1:2379","Status":{"header":{"cluster_id":193,"member_id":161,"revision":4,"raft_term":2},"version":"3.5.0","dbSize":4096,"leader":161,"raftIndex":7,"raftTerm":2,"raftAppliedIndex":7}}]\n',
  );
});

test('del prints the number deleted', async () => {
  const cluster = new FakeCluster();
  for (const k of ['p/1', 'p/2', 'q']) await run(cluster, ['put', k, '1']);
  assert.equal((await run(cluster, ['del', 'p/', '--prefix'])).stdout, '2\n');
  assert.equal((await run(cluster, ['del', 'q', '--prev-kv'])).stdout, '1\nq\n1\n');
  assert.equal((await run(cluster, ['del', 'nothing'])).stdout, '0\n');
});

test('endpoints come from --endpoints, else LICHEN_ENDPOINTS, else 127.0.0.1:2379', async () => {
  const cluster = new FakeCluster();
  await run(cluster, ['get', 'k']);
  await run(cluster, ['get', 'k'], { env: { LICHEN_ENDPOINTS: 'h1:1,h2:2' } });
  await run(cluster, ['get', 'k', '--endpoints', 'http://h3:3', '--timeout', '1.5s'], { env: { LICHEN_ENDPOINTS: 'h1:1' } });
  await run(cluster, ['get', 'k'], { env: { LICHEN_TIMEOUT: '250ms' } });
  assert.deepEqual(cluster.opened, [
    { endpoints: ['127.0.0.1:2379'], timeoutMs: 5000 },
    { endpoints: ['h1:1', 'h2:2'], timeoutMs: 5000 },
    { endpoints: ['h3:3'], timeoutMs: 1500 },
    { endpoints: ['127.0.0.1:2379'], timeoutMs: 250 },
  ]);
  const bad = await run(cluster, ['get', 'k', '--endpoints', 'nohost']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid endpoint in --endpoints: "nohost"/);
  assert.match((await run(cluster, ['get', 'k', '--timeout', 'soon'])).stderr, /invalid value for --timeout: "soon"/);
});

test('--user name:password, --user name --password, or LICHEN_USER and LICHEN_PASSWORD log the client in', async () => {
  const cluster = new FakeCluster();
  await run(cluster, ['get', 'k', '--user', 'alice:s3:cret']);
  await run(cluster, ['get', 'k', '--user', 'bob', '--password', 'pw']);
  await run(cluster, ['get', 'k'], { env: { LICHEN_USER: 'carol', LICHEN_PASSWORD: 'x' } });
  assert.deepEqual(
    cluster.opened.map((o) => o.auth),
    [{ user: 'alice', password: 's3:cret' }, { user: 'bob', password: 'pw' }, { user: 'carol', password: 'x' }],
  );
  const mistakes: [string[], RegExp][] = [
    [['--user', 'alice'], /--user alice needs a password: --user alice:<password>, or --password/],
    [['--user', 'alice:pw', '--password', 'pw'], /not both/],
    [['--password', 'pw'], /--password needs --user/],
    [['--user', ':pw'], /--user needs a user name/],
  ];
  for (const [flags, message] of mistakes) {
    const failed = await run(cluster, ['get', 'k', ...flags]);
    assert.equal(failed.code, 2, flags.join(' '));
    assert.match(failed.stderr, message);
  }
});

test('TLS comes from --cacert, --cert and --key (or LICHEN_*), --insecure-skip-tls-verify, or an https:// endpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-cli-tls-'));
  try {
    for (const name of ['ca', 'cert', 'key']) writeFileSync(join(dir, `${name}.pem`), name.toUpperCase());
    const cluster = new FakeCluster();
    const files = { cacert: join(dir, 'ca.pem'), cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    await run(cluster, ['get', 'k', '--cacert', files.cacert, '--cert', files.cert, '--key', files.key]);
    await run(cluster, ['get', 'k'], { env: { LICHEN_CACERT: files.cacert } });
    await run(cluster, ['get', 'k', '--endpoints', 'https://h:1']);
    await run(cluster, ['get', 'k', '--insecure-skip-tls-verify']);
    const text = (b: Buffer | undefined) => b?.toString();
    assert.deepEqual(
      cluster.opened.map((o) => o.tls && { ca: text(o.tls.ca), cert: text(o.tls.cert), key: text(o.tls.key), skip: o.tls.insecureSkipVerify }),
      [
        { ca: 'CA', cert: 'CERT', key: 'KEY', skip: false },
        { ca: 'CA', cert: undefined, key: undefined, skip: false },
        { ca: undefined, cert: undefined, key: undefined, skip: false },
        { ca: undefined, cert: undefined, key: undefined, skip: true },
      ],
    );
    const unpaired = await run(cluster, ['get', 'k', '--cert', files.cert]);
    assert.equal(unpaired.code, 2);
    assert.match(unpaired.stderr, /--cert and --key must be given together/);
    assert.match((await run(cluster, ['get', 'k', '--cacert', join(dir, 'none.pem')])).stderr, /cannot read --cacert file .*none\.pem/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('txn reads its sections from stdin and prints the outcome', async () => {
  const cluster = new FakeCluster();
  const { code, stdout } = await run(cluster, ['txn'], { stdin: '\nput a 1\n\nput a 2\n' });
  assert.equal(code, 0);
  assert.equal(stdout, 'SUCCESS\n');
  const request = cluster.calls.at(-1)?.request as { success: unknown[]; failure: unknown[] };
  assert.equal(request.success.length, 1);
  assert.equal(request.failure.length, 1);
  const broken = await run(cluster, ['txn'], { stdin: 'nonsense\n' });
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /txn input line 1: not a compare/);
});

test('lease commands take and print hex ids', async () => {
  const cluster = new FakeCluster();
  assert.equal((await run(cluster, ['lease', 'grant', '10'])).stdout, 'lease 000000000000002a granted with TTL(10s)\n');
  // The padded form it prints is taken back as it is (regression: more than 14 digits were refused).
  assert.equal((await run(cluster, ['lease', 'keep-alive', '000000000000002a', '--once'])).stdout, 'lease 000000000000002a keepalived with TTL(10)\n');
  assert.equal(
    (await run(cluster, ['lease', 'timetolive', '0x2a', '--keys'])).stdout,
    'lease 000000000000002a granted with TTL(10s), remaining(10s), attached keys([k1])\n',
  );
  assert.equal((await run(cluster, ['lease', 'list'])).stdout, 'found 1 leases\n000000000000002a\n');
  assert.equal((await run(cluster, ['lease', 'revoke', '2a'])).stdout, 'lease 000000000000002a revoked\n');
  const expired = await run(cluster, ['lease', 'keep-alive', '2a', '--once']);
  assert.equal(expired.code, 1);
  assert.equal(expired.stderr, 'lease 000000000000002a expired or revoked.\n');
  assert.equal((await run(cluster, ['put', 'k', 'v', '--lease', '2a'])).code, 0);
  assert.equal((cluster.calls.at(-1)?.request as { lease: bigint }).lease, 0x2an);
});

test("lease ids above 2^53 (most of etcd's) are taken, carried and printed exactly", async () => {
  const cluster = new FakeCluster();
  cluster.nextLeaseId = 0x694d7a9b1c2d3e4fn;
  assert.equal((await run(cluster, ['lease', 'grant', '60'])).stdout, 'lease 694d7a9b1c2d3e4f granted with TTL(60s)\n');
  assert.equal((await run(cluster, ['lease', 'grant', '60', '-w', 'json'])).stdout, '{"cluster_id":193,"member_id":161,"revision":1,"raft_term":2,"ID":7587855753800400463,"TTL":60,"Error":""}\n');
  const put = await run(cluster, ['put', 'k', 'v', '--lease', '694d7a9b1c2d3e4f']);
  assert.equal(put.code, 0, put.stderr);
  assert.equal((cluster.calls.at(-1)?.request as { lease: bigint }).lease, 0x694d7a9b1c2d3e4fn);
  assert.equal((await run(cluster, ['lease', 'keep-alive', '694d7a9b1c2d3e4f', '--once'])).stdout, 'lease 694d7a9b1c2d3e4f keepalived with TTL(60)\n');
  assert.equal((await run(cluster, ['lease', 'timetolive', '694d7a9b1c2d3e4f'])).stdout, 'lease 694d7a9b1c2d3e4f granted with TTL(60s), remaining(60s)\n');
  assert.equal((await run(cluster, ['lease', 'list'])).stdout, 'found 1 leases\n694d7a9b1c2d3e4f\n');
  assert.equal((await run(cluster, ['lease', 'revoke', '694d7a9b1c2d3e4f'])).stdout, 'lease 694d7a9b1c2d3e4f revoked\n');
  assert.deepEqual(cluster.calls.at(-1), { method: 'leaseRevoke', request: 0x694d7a9b1c2d3e4fn });
  const tooLong = await run(cluster, ['lease', 'revoke', '1694d7a9b1c2d3e4f']);
  assert.equal(tooLong.code, 2);
  assert.match(tooLong.stderr, /invalid lease id: "1694d7a9b1c2d3e4f" \(expected a hexadecimal id of at most 16 digits/);
});

test('member commands print like etcdctl and member add prints how to start the new member', async () => {
  const cluster = new FakeCluster();
  assert.equal(
    (await run(cluster, ['member', 'list'])).stdout,
    '00000000000000a1, started, node1, http://127.0.0.1:2380, http://127.0.0.1:2379, false\n',
  );
  const added = await run(cluster, ['member', 'add', 'node4', '--peer-urls', '127.0.0.1:2410', '--learner']);
  assert.equal(
    added.stdout,
    'Member 00000000000000b2 added to cluster 00000000000000c1\n\nLICHEN_NAME="node4"\nLICHEN_INITIAL_CLUSTER="node1=127.0.0.1:2380,node4=127.0.0.1:2410"\nLICHEN_LISTEN_PEER="127.0.0.1:2410"\n',
  );
  assert.deepEqual(cluster.calls.at(-1)?.request, { peerURLs: ['http://127.0.0.1:2410'], isLearner: true });
  assert.equal((await run(cluster, ['member', 'promote', 'b2'])).stdout, 'Member 00000000000000b2 promoted in cluster 00000000000000c1\n');
  assert.equal((await run(cluster, ['member', 'remove', 'b2'])).stdout, 'Member 00000000000000b2 removed from cluster 00000000000000c1\n');
  assert.equal((await run(cluster, ['member', 'update', 'a1', '--peer-urls', 'h:1'])).stdout, 'Member 00000000000000a1 updated in cluster 00000000000000c1\n');
  const missing = await run(cluster, ['member', 'update', 'a1']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /member update needs --peer-urls/);
});

test('status, compact and move-leader print one line each (status a table)', async () => {
  const cluster = new FakeCluster();
  const status = await run(cluster, ['status']);
  assert.match(status.stdout, /^ENDPOINT +ID +LEADER +IS LEADER/);
  assert.match(status.stdout, /127\.0\.0\.1:2379 +00000000000000a1 +00000000000000a1 +true +2 +7 +7 +1 +4\.1 kB/);
  assert.equal((await run(cluster, ['compact', '5'])).stdout, 'compacted revision 5\n');
  assert.equal((await run(cluster, ['move-leader', 'b2'])).stdout, 'Leadership transferred from 00000000000000a1 to 00000000000000b2\n');
});

test('alarm list and alarm disarm print one alarm a line, as etcdctl (member ids in hex)', async () => {
  const cluster = new FakeCluster();
  assert.equal((await run(cluster, ['alarm', 'list'])).stdout, 'memberID:00000000000000a1 alarm:NOSPACE\n');
  assert.equal((await run(cluster, ['alarm', 'disarm'])).stdout, 'memberID:00000000000000a1 alarm:NOSPACE\n');
  assert.equal((await run(cluster, ['alarm', 'list'])).stdout, '');
  // As etcdctl prints it: Go's omitempty leaves out the empty list.
  assert.equal((await run(cluster, ['alarm', 'list', '-w', 'json'])).stdout, '{"header":{"cluster_id":193,"member_id":161,"revision":1,"raft_term":2}}\n');
});

test('watch prints events until aborted, then exits 0', async () => {
  const cluster = new FakeCluster();
  const abort = new AbortController();
  const watching = run(cluster, ['watch', 'w', '--prefix'], { signal: abort.signal });
  // The watch registers asynchronously; wait for it by polling the fake's own state, not time.
  while (cluster.watchers.length === 0) await new Promise((resolve) => setImmediate(resolve));
  await cluster.put({ key: bytes('w1'), value: bytes('x') });
  abort.abort();
  const { code, stdout } = await watching;
  assert.equal(code, 0);
  assert.equal(stdout, 'PUT\nw1\nx\n');
  assert.equal(cluster.watchers.length, 0, 'the watch was canceled');
});

test('a failing call prints the error and exits 1', async () => {
  const cluster = new FakeCluster();
  cluster.range = async () => {
    throw Object.assign(new Error('etcdserver: mvcc: required revision has been compacted'), { code: 'Compacted' });
  };
  const { code, stdout, stderr } = await run(cluster, ['get', 'k', '--rev', '1']);
  assert.equal(code, 1);
  assert.equal(stdout, '');
  assert.equal(stderr, 'Error: etcdserver: mvcc: required revision has been compacted (Compacted)\n');
});

test('unknown commands and flags exit 2 with a clear message', async () => {
  const cluster = new FakeCluster();
  const unknown = await run(cluster, ['fetch', 'k']);
  assert.equal(unknown.code, 2);
  assert.equal(unknown.stderr, "Error: unknown command: fetch\nRun 'lichen help' for usage.\n");
  const flag = await run(cluster, ['get', 'k', '--prefx']);
  assert.equal(flag.code, 2);
  assert.equal(flag.stderr, "Error: unknown flag: --prefx\nRun 'lichen help get' for usage.\n");
  const group = await run(cluster, ['lease']);
  assert.equal(group.code, 2);
  assert.match(group.stderr, /lease needs a subcommand: grant, revoke, keep-alive, timetolive, list/);
  const args = await run(cluster, ['get']);
  assert.equal(args.code, 2);
  assert.match(args.stderr, /get takes 1 argument \(<key>\), got 0/);
  assert.equal(cluster.opened.length, 0, 'no connection is made for a usage error');
});

test('help lists commands, help <cmd> shows flags, --version prints the package version', async () => {
  const cluster = new FakeCluster();
  const help = await run(cluster, ['help']);
  assert.equal(help.code, 0);
  for (const name of ['serve', 'up', 'shell', 'put', 'lease grant', 'member add', 'move-leader']) assert.match(help.stdout, new RegExp(`  ${name} `));
  const getHelp = await run(cluster, ['help', 'get']);
  assert.match(getHelp.stdout, /Usage: lichen get <key>/);
  assert.match(getHelp.stdout, /--prefix/);
  assert.match(getHelp.stdout, /-w, --write-out <simple\|json>/);
  assert.equal((await run(cluster, ['put', '--help'])).code, 0);
  assert.match((await run(cluster, ['help', 'lease'])).stdout, /lease grant/);
  assert.match((await run(cluster, ['serve', '--help'])).stdout, /LICHEN_UNSAFE_WAL_NO_SYNC/);
  const version = await run(cluster, ['--version']);
  assert.match(version.stdout, /^lichen \d+\.\d+\.\d+\n$/);
  assert.equal((await run(cluster, ['help', 'nothing'])).code, 2);
});

test('serve rejects a bad flag value before starting anything, naming the flag', async () => {
  const cluster = new FakeCluster();
  const { code, stderr } = await run(cluster, ['serve', '--tick-ms', 'x']);
  assert.equal(code, 2);
  assert.match(stderr, /invalid value for --tick-ms: "x"/);
  const env = await run(cluster, ['serve'], { env: { LICHEN_ENGINE: 'rocks' } });
  assert.equal(env.code, 2);
  assert.match(env.stderr, /invalid value for LICHEN_ENGINE: "rocks"/);
});

test('the shell runs a script of commands over one client and keeps history', async () => {
  const cluster = new FakeCluster();
  const dir = mkdtempSync(join(tmpdir(), 'lichen-shell-'));
  try {
    const historyFile = join(dir, 'history');
    const input = new PassThrough();
    input.end('put user:1 "Alice Smith"\nget user:1\n\nbogus\nhelp put\nquit\nget never\n');
    const out = sink();
    const err = sink();
    const code = await dispatch(COMMANDS, ['shell'], {
      stdout: out.stream,
      stderr: err.stream,
      stdin: input,
      env: { LICHEN_HISTORY_FILE: historyFile },
      signal: new AbortController().signal,
      forceSignal: new AbortController().signal,
      selfPath: '',
      interactive: false,
      openClient: async (opts) => {
        cluster.opened.push(opts);
        return cluster;
      },
    }, { inShell: false });
    assert.equal(code, 0, 'the last command (help) succeeded');
    assert.match(out.read(), /^OK\nuser:1\nAlice Smith\nUsage: lichen put/);
    assert.equal(err.read(), "Error: unknown command: bogus\nRun 'help' for usage.\n");
    assert.equal(cluster.opened.length, 1, 'one client for the session');
    assert.equal(cluster.closed, 1, 'closed once, when the shell ends');
    assert.equal(readFileSync(historyFile, 'utf8'), 'put user:1 "Alice Smith"\nget user:1\nbogus\nhelp put\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the shell does not offer process commands', async () => {
  const cluster = new FakeCluster();
  const input = new PassThrough();
  input.end('up\n');
  const err = sink();
  const code = await dispatch(COMMANDS, ['shell'], {
    stdout: sink().stream,
    stderr: err.stream,
    stdin: input,
    env: { LICHEN_HISTORY_FILE: '' },
    signal: new AbortController().signal,
    forceSignal: new AbortController().signal,
    selfPath: '',
    interactive: false,
    openClient: async () => cluster,
  }, { inShell: false });
  assert.equal(code, 2);
  assert.match(err.read(), /unknown command: up/);
});

test('snapshot save writes the stream to the file once its SHA-256 checks, from exactly one endpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-cli-snapshot-'));
  try {
    const cluster = new FakeCluster();
    const path = join(dir, 'backup.db');
    const two = await run(cluster, ['snapshot', 'save', path, '--endpoints', '127.0.0.1:1,127.0.0.1:2']);
    assert.equal(two.code, 2);
    assert.match(two.stderr, /snapshot must be requested to one selected node, not multiple \[127.0.0.1:1 127.0.0.1:2\]/);
    assert.deepEqual(await run(cluster, ['snapshot', 'save', path]), { code: 0, stdout: `Snapshot saved at ${path}\n`, stderr: '' });
    assert.deepEqual(readFileSync(path), cluster.snapshotBytes);
    cluster.snapshotBytes = Buffer.from(cluster.snapshotBytes);
    cluster.snapshotBytes[10] ^= 1; // damaged in transit: the trailer no longer matches
    const damaged = await run(cluster, ['snapshot', 'save', join(dir, 'damaged.db')]);
    assert.equal(damaged.code, 1);
    assert.match(damaged.stderr, /the snapshot received is damaged: expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}/);
    assert.deepEqual(readdirSync(dir), ['backup.db'], 'neither the damaged file nor a .part is left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('snapshot restore checks its flags as etcdctl does', async () => {
  const cluster = new FakeCluster();
  const mismatch = await run(cluster, [
    'snapshot', 'restore', 'x.db', '--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2390',
  ]);
  assert.equal(mismatch.code, 2);
  assert.match(mismatch.stderr, /--initial-cluster has n1=127.0.0.1:2380 but missing from --initial-advertise-peer-urls=http:\/\/127.0.0.1:2390/);
  const absent = await run(cluster, ['snapshot', 'restore', 'x.db', '--name', 'n9', '--initial-cluster', 'n1=127.0.0.1:2380']);
  assert.equal(absent.code, 2);
  assert.match(absent.stderr, /--initial-cluster has no member named "n9"/);
});
