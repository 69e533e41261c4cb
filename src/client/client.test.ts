import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, LichenError } from '../errors.js';
import { startGrpcServer, type GrpcServerHandle } from '../api/grpc/server.js';
import { MemoryBackend } from '../api/grpc/testing/memory-backend.js';
import { Metadata, status } from '@grpc/grpc-js';
import { LichenClient, compare, op, prefixEnd, type WatchBatch } from './index.js';
import { describeAttemptFailure, fromGrpcError, surelyNotExecuted } from './errors.js';
import { deadEndpoint } from './testing.js';

/** No real waiting in tests: backoff pauses resolve at once. */
const noSleep = () => Promise.resolve();


async function rejectsCode(promise: Promise<unknown>, code: ErrorCode): Promise<LichenError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    assert.ok(error instanceof LichenError, String(error));
    assert.equal(error.code, code, error.message);
    return true;
  });
  return caught as LichenError;
}

async function nextBatch(iterator: AsyncIterator<WatchBatch>): Promise<WatchBatch> {
  const result = await iterator.next();
  assert.equal(result.done, false);
  return result.value;
}

describe('LichenClient against one server', () => {
  let backend: MemoryBackend;
  let server: GrpcServerHandle;
  let client: LichenClient;
  before(async () => {
    backend = new MemoryBackend();
    server = await startGrpcServer({ backend, port: 0 });
    client = new LichenClient({ endpoints: [`127.0.0.1:${server.port}`], sleep: noSleep });
  });
  after(async () => {
    client.close();
    await server.close(0);
  });

  it('computes prefix ends as etcd does', () => {
    assert.deepEqual(prefixEnd('a/'), Buffer.from('a0'));
    assert.deepEqual(prefixEnd(Buffer.from([0x61, 0xff])), Buffer.from([0x62]));
    assert.deepEqual(prefixEnd(Buffer.from([0xff])), Buffer.from([0]));
  });

  it('puts, gets, lists a prefix and deletes it', async () => {
    const put = await client.put('app/a', '1');
    assert.equal(put.header.clusterId, 1001n);
    await client.put('app/b', '2');
    await client.put('apple', 'not in the prefix');
    assert.equal((await client.getValue('app/a'))?.toString(), '1');
    assert.equal(await client.getValue('app/missing'), undefined);
    const listed = await client.getPrefix('app/', { sort: { target: 'key', order: 'descend' } });
    assert.deepEqual(listed.kvs.map((kv) => kv.key.toString()), ['app/b', 'app/a']);
    assert.equal(listed.kvs[0]!.version, 1);
    const again = await client.put('app/a', '3', { prevKv: true });
    assert.equal(again.prevKv?.value.toString(), '1');
    const deleted = await client.deletePrefix('app/');
    assert.equal(deleted.deleted, 2);
    assert.equal((await client.getPrefix('app/')).count, 0);
  });

  it('runs a compare-and-swap txn built with compare/then/else', async () => {
    await client.put('lock', 'free');
    const take = () =>
      client.txn().if(compare.value('lock', '==', 'free')).then(op.put('lock', 'taken')).else(op.get('lock')).commit();
    const won = await take();
    assert.equal(won.succeeded, true);
    assert.equal(won.results[0]!.type, 'put');
    const lost = await take();
    assert.equal(lost.succeeded, false);
    const read = lost.results[0]!;
    assert.equal(read.type === 'range' && read.range.kvs[0]!.value.toString(), 'taken');
    const created = await client.txn().if(compare.missing('fresh')).then(op.put('fresh', 'x')).commit();
    assert.equal(created.succeeded, true);
  });

  it('grants, renews, inspects, lists and revokes leases', async () => {
    const lease = await client.leaseGrant(20);
    await client.put('session', 'me', { lease: lease.id });
    assert.equal((await client.leaseKeepAliveOnce(lease.id)).ttl, 20);
    const ttl = await client.leaseTimeToLive(lease.id, { keys: true });
    assert.equal(ttl.grantedTtl, 20);
    assert.deepEqual(ttl.keys.map(String), ['session']);
    assert.ok((await client.leases()).ids.includes(lease.id));
    await client.leaseRevoke(lease.id);
    assert.equal(await client.getValue('session'), undefined);
    assert.equal((await client.leaseTimeToLive(lease.id)).ttl, -1);
    await rejectsCode(client.leaseKeepAliveOnce(lease.id), ErrorCode.LeaseNotFound);
    await rejectsCode(client.leaseRevoke(lease.id), ErrorCode.LeaseNotFound);
  });

  it('keeps a lease alive continuously and reports a lost lease', async () => {
    const lease = await client.leaseGrant(30);
    const renewed = new Promise<number>((resolve) => {
      const keepAlive = client.leaseKeepAlive(lease.id, 30, {
        onRenewed: (ttl) => {
          keepAlive.stop();
          resolve(ttl);
        },
      });
    });
    assert.equal(await renewed, 30);
    await client.leaseRevoke(lease.id);
    const lost = new Promise<void>((resolve) => client.leaseKeepAlive(lease.id, 30, { onLost: resolve }));
    await lost;
  });

  it('manages members and reads status, hashes, and compacts', async () => {
    const added = await client.memberAdd(['http://127.0.0.1:3380'], { isLearner: true });
    assert.equal(added.member.isLearner, true);
    assert.equal((await client.memberPromote(added.member.id)).members.find((m) => m.id === added.member.id)?.isLearner, false);
    await client.memberUpdate(added.member.id, ['http://127.0.0.1:3381']);
    assert.equal((await client.memberList()).members.length, 2);
    await client.moveLeader(added.member.id);
    const status = await client.status();
    assert.equal(status.leader, added.member.id);
    backend.leader = 1;
    assert.equal((await client.memberRemove(added.member.id)).members.length, 1);
    await rejectsCode(client.memberRemove(added.member.id), ErrorCode.MemberNotFound);
    const hash = await client.hashKV();
    assert.equal(hash.hashRevision, backend.revision);
    const put = await client.put('to-compact', 'x');
    await client.compact(put.header.revision);
    await rejectsCode(client.get('to-compact', { revision: 1 }), ErrorCode.Compacted);
  });

  it('watches a prefix as an async iterator, in order, with prev_kv', async () => {
    const watcher = client.watch('w/', { prefix: true, prevKv: true });
    await watcher.ready();
    const iterator = watcher[Symbol.asyncIterator]();
    await client.put('w/1', 'a');
    await client.put('w/1', 'b');
    await client.delete('w/1');
    const first = await nextBatch(iterator);
    const second = await nextBatch(iterator);
    const third = await nextBatch(iterator);
    assert.deepEqual([first, second, third].map((b) => b.events[0]!.type), ['put', 'put', 'delete']);
    assert.equal(second.events[0]!.prevKv?.value.toString(), 'a');
    assert.ok(first.revision < second.revision && second.revision < third.revision);
    assert.equal(watcher.revision, third.revision);
    watcher.cancel();
    assert.equal((await iterator.next()).done, true);
  });

  it('ends a watch whose start revision was compacted with a Compacted error', async () => {
    const put = await client.put('wc', '1');
    await client.put('wc', '2');
    await client.compact(put.header.revision + 1);
    const watcher = client.watch('wc', { startRevision: 1 });
    const error = await rejectsCode(watcher[Symbol.asyncIterator]().next(), ErrorCode.Compacted);
    assert.equal(error.details.compactRevision, put.header.revision + 1);
  });
});

describe('LichenClient failover and retries', () => {
  let backend: MemoryBackend;
  const servers: GrpcServerHandle[] = [];
  const clients: LichenClient[] = [];

  before(() => {
    backend = new MemoryBackend();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    for (const server of servers.splice(0)) await server.close(0);
  });

  /** Two servers over one backend: two "members" that share state, like a healthy cluster. */
  async function twoServers(shared: MemoryBackend = backend): Promise<[string, string, GrpcServerHandle, GrpcServerHandle]> {
    const a = await startGrpcServer({ backend: shared, port: 0 });
    const b = await startGrpcServer({ backend: shared, port: 0 });
    servers.push(a, b);
    return [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`, a, b];
  }

  function newClient(endpoints: string[], extra: Partial<ConstructorParameters<typeof LichenClient>[0]> = {}): LichenClient {
    const client = new LichenClient({ endpoints, sleep: noSleep, timeoutMs: 2000, ...extra });
    clients.push(client);
    return client;
  }

  it('skips an endpoint that refuses connections, for reads and for writes', async () => {
    const [live] = await twoServers();
    const client = newClient([await deadEndpoint(), live]);
    await client.put('failover', 'ok');
    assert.equal((await client.getValue('failover'))?.toString(), 'ok');
    assert.equal(client.endpoint, live);
  });

  it('moves to the next endpoint after "not leader" and applies the write once', async () => {
    const [a, b] = await twoServers();
    const client = newClient([a, b]);
    const before = backend.revision;
    backend.failNext('put', new LichenError(ErrorCode.NotLeader, 'not leader', { leaderId: 2 }));
    await client.put('leader-follow', 'v');
    assert.equal(backend.revision, before + 1);
    assert.equal(client.endpoint, b);
  });

  it('does not retry a write whose outcome is unknown unless asked to', async () => {
    const [a, b] = await twoServers();
    const client = newClient([a, b]);
    backend.failNext('put', new LichenError(ErrorCode.Timeout, 'timed out'));
    const error = await rejectsCode(client.put('unknown', 'v'), ErrorCode.Timeout);
    assert.equal(error.details.outcomeUnknown, true);
    assert.equal(error.message, 'etcdserver: request timed out');

    backend.failNext('put', new LichenError(ErrorCode.Timeout, 'timed out'));
    await client.put('unknown', 'v', { retry: true });
    assert.equal((await client.getValue('unknown'))?.toString(), 'v');
  });

  it('retries reads on "no leader" across endpoints', async () => {
    const [a, b] = await twoServers();
    const client = newClient([a, b]);
    await client.put('read-retry', 'v');
    backend.failNext('range', new LichenError(ErrorCode.Unavailable, 'no leader'));
    backend.failNext('range', new LichenError(ErrorCode.Unavailable, 'no leader'));
    assert.equal((await client.getValue('read-retry'))?.toString(), 'v');
  });

  it('when no endpoint can be reached, says in one sentence which were tried and why each failed', async () => {
    const [a, b] = [await deadEndpoint(), await deadEndpoint()];
    let nowMs = 0;
    const client = newClient([a, b], { retryBudgetMs: 1000, now: () => nowMs, sleep: async (ms) => void (nowMs += Math.max(ms, 100)) });
    for (const call of [() => client.get('x'), () => client.put('x', 'y')]) {
      const error = await rejectsCode(call(), ErrorCode.Unavailable);
      assert.match(error.message, new RegExp(`^cannot reach the cluster within 1s: ${a} refused the connection; ${b} refused the connection$`));
      assert.equal(error.details.clusterUnavailable, true);
      nowMs = 0;
    }
  });

  it('a watch, a keep-alive and a snapshot no endpoint answers end with the same sentence', async () => {
    const [a, b] = [await deadEndpoint(), await deadEndpoint()];
    let nowMs = 0;
    const client = newClient([a, b], { retryBudgetMs: 1000, now: () => nowMs, sleep: async (ms) => void (nowMs += Math.max(ms, 100)) });
    const failures = `${a} refused the connection; ${b} refused the connection`;
    const watcher = client.watch('w');
    const watchError = await rejectsCode(watcher.ready(), ErrorCode.Unavailable);
    assert.match(watchError.message, new RegExp(`^cannot reach the cluster within 1s: ${failures}$`));
    assert.equal(watchError.details.clusterUnavailable, true);

    const keepAliveError = await rejectsCode(client.leaseKeepAliveOnce(1), ErrorCode.Unavailable);
    assert.match(keepAliveError.message, new RegExp(`^cannot reach the cluster within 0ms: ${failures}$`));
    assert.equal(keepAliveError.details.clusterUnavailable, true);

    // A snapshot comes from one member: the first endpoint. (grpc-js shares the subchannel that
    // already failed, without its last error.)
    const snapshotClient = newClient([a, b], { now: () => nowMs });
    const snapshotError = await rejectsCode((async () => { for await (const _ of snapshotClient.snapshot()) assert.fail('no data'); })(), ErrorCode.Unavailable);
    assert.match(snapshotError.message, new RegExp(`^cannot reach the cluster within 0ms: ${a} (refused the connection|could not be reached); ${b} was not tried$`));
    assert.equal(snapshotError.details.clusterUnavailable, true);
  });

  it('a watch that loses every endpoint gives up after WATCH_RECONNECTS_MAX reconnects, with the sentence', async () => {
    const [live, server] = await (async () => {
      const s = await startGrpcServer({ backend: new MemoryBackend(), port: 0 });
      return [`127.0.0.1:${s.port}`, s] as const;
    })();
    const client = newClient([live]);
    let onError!: (error: LichenError) => void;
    const ending = new Promise<LichenError>((resolve) => (onError = resolve));
    const watcher = client.watch('w', { onEvents: () => undefined, onError });
    await watcher.ready();
    await server.close(0);
    const ended = await ending;
    assert.match(ended.message, new RegExp(`^cannot reach the cluster within [\\d.]+m?s: ${live} (refused the connection|dropped the connection)$`));
    assert.equal(ended.details.clusterUnavailable, true);
  });

  it('knows a write whose deadline passed before any connection was never sent', () => {
    const deadline = (details: string) => fromGrpcError(Object.assign(new Error(details), { code: status.DEADLINE_EXCEEDED, details, metadata: new Metadata() }));
    const unsent = deadline('Deadline exceeded after 0.144s,name resolution: 0.001s,Waiting for LB pick');
    const sent = deadline('Deadline exceeded after 5.004s,name resolution: 0.001s,LB pick: 0.002s,remote_addr=127.0.0.1:2379');
    assert.equal(surelyNotExecuted(unsent), true);
    assert.equal(surelyNotExecuted(sent), false);
    assert.equal(describeAttemptFailure(unsent, 144), 'could not be connected to within 144ms');
    assert.equal(describeAttemptFailure(sent, 5000), 'gave no answer within 5s');
  });

  it('gives up when the retry budget is spent', async () => {
    const isolated = new MemoryBackend();
    const [a, b] = await twoServers(isolated);
    let nowMs = 0;
    const client = newClient([a, b], {
      retryBudgetMs: 1000,
      now: () => nowMs,
      // Each backoff pause moves the injected clock instead of waiting.
      sleep: async (ms) => void (nowMs += Math.max(ms, 100)),
    });
    for (let i = 0; i < 100; i++) isolated.failNext('range', new LichenError(ErrorCode.Unavailable, 'no leader'));
    await rejectsCode(client.get('x'), ErrorCode.Unavailable);
    const attempts = isolated.calls.filter((c) => c.method === 'range').length;
    // Budget 1000 ms, at least 100 ms per round of two endpoints: about 20 attempts.
    assert.ok(attempts >= 10 && attempts <= 24, `attempts ${attempts}`);
  });

  it('resumes a watch on another endpoint from the last revision, without gaps or repeats', async () => {
    const fresh = new MemoryBackend();
    const a = await startGrpcServer({ backend: fresh, port: 0 });
    const b = await startGrpcServer({ backend: fresh, port: 0 });
    servers.push(b);
    const client = newClient([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]);
    const watcher = client.watch('r/', { prefix: true });
    await watcher.ready();
    const iterator = watcher[Symbol.asyncIterator]();
    await client.put('r/1', '1');
    assert.equal((await nextBatch(iterator)).events[0]!.kv.value.toString(), '1');
    // The first member goes away; writes continue on the second one meanwhile.
    await a.close(0);
    const writer = newClient([`127.0.0.1:${b.port}`]);
    await writer.put('r/2', '2');
    await writer.put('r/3', '3');
    const seen = [(await nextBatch(iterator)).events[0]!.kv.value.toString(), (await nextBatch(iterator)).events[0]!.kv.value.toString()];
    assert.deepEqual(seen, ['2', '3']);
    assert.equal(watcher.creations, 2);
    await writer.put('r/4', '4');
    assert.equal((await nextBatch(iterator)).events[0]!.kv.value.toString(), '4');
    watcher.cancel();
  });
});
