import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Metadata, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { ErrorCode, LichenError } from '../../errors.js';
import { MessageQueue, startHarness, type Harness } from './testing/harness.js';
import { MemoryBackend } from './testing/memory-backend.js';

const b = (s: string): Buffer => Buffer.from(s);

async function rejectsWith(promise: Promise<unknown>, code: status, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, code, `code of ${error.details}`);
    if (typeof message === 'string') assert.equal(error.details, message);
    else assert.match(error.details, message);
    return true;
  });
}

describe('gRPC KV service', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ maxRequestBytes: 4096 });
  });
  after(() => h.close());

  it('puts and ranges with bytes, int64 strings and a full header', async () => {
    const put = await h.call('KV', 'Put', { key: b('a'), value: b('1') });
    assert.deepEqual(put.header, { cluster_id: '1001', member_id: '1', revision: '2', raft_term: '2' });
    await h.call('KV', 'Put', { key: b('b'), value: Buffer.from([0, 255]) });
    const range = await h.call('KV', 'Range', { key: b('a'), range_end: b('c') });
    assert.equal(range.count, '2');
    assert.equal(range.more, false);
    assert.deepEqual(range.kvs[1], {
      key: b('b'),
      value: Buffer.from([0, 255]),
      create_revision: '3',
      mod_revision: '3',
      version: '1',
      lease: '0',
    });
  });

  it('passes range options to the backend decoded', async () => {
    await h.call('KV', 'Range', {
      key: b('a'),
      range_end: Buffer.from([0]),
      limit: 1,
      revision: '2',
      sort_order: 2,
      sort_target: 3,
      serializable: true,
      keys_only: true,
      min_mod_revision: 1,
    });
    const call = h.backend.calls.findLast((c) => c.method === 'range')!;
    const request = call.args[0] as Record<string, unknown>;
    assert.equal(request['limit'], 1);
    assert.equal(request['revision'], 2);
    assert.equal(request['sortOrder'], 2);
    assert.equal(request['sortTarget'], 3);
    assert.equal(request['serializable'], true);
    assert.equal(request['keysOnly'], true);
    assert.equal(request['minModRevision'], 1);
    assert.deepEqual(Buffer.from(request['rangeEnd'] as Uint8Array), Buffer.from([0]));
  });

  it('returns prev_kv from put and delete', async () => {
    const put = await h.call('KV', 'Put', { key: b('p'), value: b('x') });
    const again = await h.call('KV', 'Put', { key: b('p'), value: b('y'), prev_kv: true });
    assert.deepEqual(again.prev_kv.value, b('x'));
    assert.equal(again.prev_kv.mod_revision, put.header.revision);
    const deleted = await h.call('KV', 'DeleteRange', { key: b('p'), prev_kv: true });
    assert.equal(deleted.deleted, '1');
    assert.deepEqual(deleted.prev_kvs[0].value, b('y'));
  });

  it('rejects an empty key with etcd\'s message on every KV write and read', async () => {
    const message = 'etcdserver: key is not provided';
    await rejectsWith(h.call('KV', 'Range', { key: b('') }), status.INVALID_ARGUMENT, message);
    await rejectsWith(h.call('KV', 'Put', { value: b('v') }), status.INVALID_ARGUMENT, message);
    await rejectsWith(h.call('KV', 'DeleteRange', {}), status.INVALID_ARGUMENT, message);
    await rejectsWith(
      h.call('KV', 'Txn', { compare: [{ key: b(''), target: 0, result: 0, version: 1 }] }),
      status.INVALID_ARGUMENT,
      message,
    );
  });

  it('rejects a request over max-request-bytes as etcd does', async () => {
    await rejectsWith(
      h.call('KV', 'Put', { key: b('big'), value: Buffer.alloc(5000) }),
      status.INVALID_ARGUMENT,
      'etcdserver: request is too large',
    );
    assert.equal(h.backend.calls.some((c) => c.method === 'put' && (c.args[0] as { key: Uint8Array }).key.length === 3), false);
  });

  it('rejects int64 values beyond 2^53 naming the field', async () => {
    await rejectsWith(h.call('KV', 'Range', { key: b('a'), revision: '9007199254740993' }), status.INVALID_ARGUMENT, /revision/);
    await rejectsWith(h.call('KV', 'Put', { key: b('a'), lease: '-9007199254740993' }), status.INVALID_ARGUMENT, /lease/);
  });

  it('rejects ignore_value with a value and ignore_lease with a lease', async () => {
    await rejectsWith(
      h.call('KV', 'Put', { key: b('a'), value: b('v'), ignore_value: true }),
      status.INVALID_ARGUMENT,
      'etcdserver: value is provided',
    );
    await rejectsWith(
      h.call('KV', 'Put', { key: b('a'), lease: 5, ignore_lease: true }),
      status.INVALID_ARGUMENT,
      'etcdserver: lease is provided',
    );
  });

  it('runs a txn with oneof compares and returns oneof responses', async () => {
    const put = await h.call('KV', 'Put', { key: b('t'), value: b('old') });
    const txn = await h.call('KV', 'Txn', {
      compare: [
        { key: b('t'), target: 3, result: 0, value: b('old') },
        { key: b('t'), target: 2, result: 0, mod_revision: put.header.revision },
      ],
      success: [{ request_put: { key: b('t'), value: b('new') } }, { request_range: { key: b('t') } }],
      failure: [{ request_delete_range: { key: b('t') } }],
    });
    assert.equal(txn.succeeded, true);
    assert.equal(txn.responses[0].response, 'response_put');
    assert.equal(txn.responses[1].response, 'response_range');
    assert.deepEqual(txn.responses[1].response_range.kvs[0].value, b('new'));
    const compare = (h.backend.calls.findLast((c) => c.method === 'txn')!.args[0] as { compare: object[] }).compare;
    assert.deepEqual(Buffer.from((compare[0] as { value: Uint8Array }).value), b('old'));
    assert.equal((compare[1] as { modRevision: number }).modRevision, Number(put.header.revision));

    const failed = await h.call('KV', 'Txn', {
      compare: [{ key: b('t'), target: 0, result: 1, version: 100 }],
      success: [],
      failure: [{ request_txn: { success: [{ request_range: { key: b('t') } }] } }],
    });
    assert.equal(failed.succeeded, false);
    assert.equal(failed.responses[0].response, 'response_txn');
    assert.equal(failed.responses[0].response_txn.responses[0].response_range.count, '1');
  });

  it('refuses a txn with more than 128 operations', async () => {
    const success = Array.from({ length: 129 }, (_, i) => ({ request_range: { key: b(`k${i}`) } }));
    await rejectsWith(h.call('KV', 'Txn', { success }), status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request');
  });

  it('compacts and then reports compacted revisions', async () => {
    const put = await h.call('KV', 'Put', { key: b('c'), value: b('1') });
    await h.call('KV', 'Compact', { revision: put.header.revision });
    await rejectsWith(
      h.call('KV', 'Range', { key: b('c'), revision: 1 }),
      status.OUT_OF_RANGE,
      'etcdserver: mvcc: required revision has been compacted',
    );
    await rejectsWith(
      h.call('KV', 'Range', { key: b('c'), revision: 1_000_000 }),
      status.OUT_OF_RANGE,
      'etcdserver: mvcc: required revision is a future revision',
    );
  });
});

describe('gRPC error table', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  // Expected values are etcd's (api/v3rpc/rpctypes/error.go), written out rather than derived.
  const cases: [LichenError | Error, status, string][] = [
    [new LichenError(ErrorCode.Compacted, 'x'), status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'],
    [new LichenError(ErrorCode.FutureRevision, 'x'), status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'],
    [new LichenError(ErrorCode.Unavailable, 'etcdserver: no leader'), status.UNAVAILABLE, 'etcdserver: no leader'],
    [new LichenError(ErrorCode.Unavailable, 'etcdserver: server stopped'), status.UNAVAILABLE, 'etcdserver: server stopped'],
    [new LichenError(ErrorCode.MembershipRefused, 'etcdserver: a membership change is already in progress'), status.FAILED_PRECONDITION, 'etcdserver: a membership change is already in progress'],
    [new LichenError(ErrorCode.Timeout, 'x'), status.UNAVAILABLE, 'etcdserver: request timed out'],
    [new LichenError(ErrorCode.TooLarge, 'x'), status.INVALID_ARGUMENT, 'etcdserver: request is too large'],
    [new LichenError(ErrorCode.DuplicateKey, 'x'), status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'],
    [new LichenError(ErrorCode.LeaseNotFound, 'x'), status.NOT_FOUND, 'etcdserver: requested lease not found'],
    [new LichenError(ErrorCode.LeaseExists, 'x'), status.FAILED_PRECONDITION, 'etcdserver: lease already exists'],
    [new LichenError(ErrorCode.MemberNotFound, 'x'), status.NOT_FOUND, 'etcdserver: member not found'],
    [new LichenError(ErrorCode.MemberExists, 'x'), status.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'],
    [new LichenError(ErrorCode.MemberExists, 'x', { etcdError: 'memberExists' }), status.FAILED_PRECONDITION, 'etcdserver: member ID already exist'],
    [new LichenError(ErrorCode.NotLeader, 'x'), status.FAILED_PRECONDITION, 'etcdserver: not leader'],
    [new LichenError(ErrorCode.Overloaded, 'x'), status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'],
    [new LichenError(ErrorCode.InvalidArgument, 'something odd'), status.INVALID_ARGUMENT, 'etcdserver: something odd'],
    [new LichenError(ErrorCode.MembershipRefused, 'x', { etcdError: 'learnerNotReady' }), status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member which is in sync with leader'],
    [new Error('boom'), status.INTERNAL, 'lichen: internal error: boom'],
  ];
  for (const [error, code, message] of cases) {
    it(`maps ${error instanceof LichenError ? error.code : 'a plain Error'} to ${status[code]} "${message}"`, async () => {
      h.backend.failNext('put', error);
      await rejectsWith(h.call('KV', 'Put', { key: b('k'), value: b('v') }), code, message);
    });
  }

  it('fails a require-leader call with "no leader" when the member has none', async () => {
    h.backend.leader = 0;
    try {
      const metadata = new Metadata();
      metadata.set('hasleader', 'true');
      await rejectsWith(
        new Promise((resolve, reject) => {
          (h.clients.KV as any).Range({ key: b('a') }, metadata, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r)));
        }),
        status.UNAVAILABLE,
        'etcdserver: no leader',
      );
    } finally {
      h.backend.leader = 1;
    }
  });
});

describe('gRPC Watch service', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  function openWatch() {
    const stream = (h.clients.Watch as any).Watch() as NodeJS.EventEmitter & { write(m: object): void; end(): void; cancel(): void };
    const queue = new MessageQueue<any>(stream);
    return { stream, next: () => queue.next(), close: () => stream.cancel() };
  }

  it('sends created first, then events in revision order', async () => {
    const w = openWatch();
    w.stream.write({ create_request: { key: b('w/'), range_end: b('w0') } });
    const created = await w.next();
    assert.equal(created.created, true);
    assert.equal(created.watch_id, '0');
    await h.call('KV', 'Put', { key: b('w/1'), value: b('a') });
    await h.call('KV', 'Put', { key: b('w/2'), value: b('b') });
    await h.call('KV', 'Put', { key: b('other'), value: b('c') });
    await h.call('KV', 'DeleteRange', { key: b('w/1') });
    const first = await w.next();
    const second = await w.next();
    const third = await w.next();
    assert.deepEqual(first.events.map((e: any) => [e.type, e.kv.key.toString()]), [[0, 'w/1']]);
    assert.deepEqual(second.events.map((e: any) => [e.type, e.kv.key.toString()]), [[0, 'w/2']]);
    assert.deepEqual(third.events.map((e: any) => [e.type, e.kv.key.toString()]), [[1, 'w/1']]);
    assert.ok(Number(first.header.revision) < Number(second.header.revision));
    assert.equal(third.header.revision, third.events[0].kv.mod_revision);
    w.close();
  });

  it('replays history from start_revision after the created response, with prev_kv and filters', async () => {
    const p1 = await h.call('KV', 'Put', { key: b('r'), value: b('1') });
    await h.call('KV', 'Put', { key: b('r'), value: b('2') });
    await h.call('KV', 'DeleteRange', { key: b('r') });
    const w = openWatch();
    w.stream.write({ create_request: { key: b('r'), start_revision: p1.header.revision, prev_kv: true, filters: [1] } });
    assert.equal((await w.next()).created, true);
    const one = await w.next();
    const two = await w.next();
    assert.deepEqual(one.events[0].kv.value, b('1'));
    assert.deepEqual(two.events[0].kv.value, b('2'));
    assert.deepEqual(two.events[0].prev_kv.value, b('1'));
    // The DELETE was filtered (NODELETE); a new put is the next thing we see.
    await h.call('KV', 'Put', { key: b('r'), value: b('3') });
    assert.deepEqual((await w.next()).events[0].kv.value, b('3'));
    w.close();
  });

  it('cancels a watcher and answers progress requests with watch_id -1', async () => {
    const w = openWatch();
    w.stream.write({ create_request: { key: b('x'), watch_id: 7 } });
    assert.equal((await w.next()).watch_id, '7');
    w.stream.write({ progress_request: {} });
    const progress = await w.next();
    assert.equal(progress.watch_id, '-1');
    assert.equal(progress.header.revision, String(h.backend.revision));
    w.stream.write({ cancel_request: { watch_id: 7 } });
    const canceled = await w.next();
    assert.equal(canceled.canceled, true);
    assert.equal(canceled.watch_id, '7');
    assert.equal(h.backend.watcherCount(), 0);
    w.close();
  });

  it('refuses a duplicate client-chosen watch id as etcd does', async () => {
    const w = openWatch();
    w.stream.write({ create_request: { key: b('x'), watch_id: 3 } });
    await w.next();
    w.stream.write({ create_request: { key: b('y'), watch_id: 3 } });
    const refused = await w.next();
    assert.equal(refused.created, true);
    assert.equal(refused.canceled, true);
    assert.equal(refused.watch_id, '-1');
    assert.equal(refused.cancel_reason, 'mvcc: duplicate watch ID provided on the WatchStream');
    w.close();
  });

  it('reports a compacted start revision as created then canceled with compact_revision', async () => {
    await h.call('KV', 'Put', { key: b('cmp'), value: b('1') });
    const p = await h.call('KV', 'Put', { key: b('cmp'), value: b('2') });
    await h.call('KV', 'Compact', { revision: p.header.revision });
    const w = openWatch();
    w.stream.write({ create_request: { key: b('cmp'), start_revision: 1 } });
    const created = await w.next();
    assert.equal(created.created, true);
    const compacted = await w.next();
    assert.equal(compacted.canceled, true);
    assert.equal(compacted.watch_id, created.watch_id);
    assert.equal(compacted.compact_revision, p.header.revision);
    w.close();
  });

  it('forwards a backend-side cancel with its reason', async () => {
    const w = openWatch();
    w.stream.write({ create_request: { key: b('z') } });
    const created = await w.next();
    h.backend.cancelAllWatchers('shard moved');
    const canceled = await w.next();
    assert.equal(canceled.watch_id, created.watch_id);
    assert.equal(canceled.canceled, true);
    assert.equal(canceled.cancel_reason, 'shard moved');
    w.close();
  });

  it('keeps sending events after the client half-closes its side, as etcd does', async () => {
    const w = openWatch();
    w.stream.write({ create_request: { key: b('half') } });
    assert.equal((await w.next()).created, true);
    w.stream.end();
    await h.call('KV', 'Put', { key: b('half'), value: b('1') });
    assert.deepEqual((await w.next()).events[0].kv.value, b('1'));
    w.close();
  });

  // Regression: a stream the transport failed (a message over the size limit) left its watchers
  // registered, because the handler was never told the call had ended.
  it('cancels the watchers of a stream that sends a message over the size limit', async () => {
    const small = await startHarness({ maxRequestBytes: 1024 });
    try {
      const stream = (small.clients.Watch as any).Watch() as NodeJS.EventEmitter & { write(m: object): void; cancel(): void };
      const queue = new MessageQueue<any>(stream);
      stream.on('error', () => undefined);
      stream.write({ create_request: { key: b('kept') } });
      await queue.next();
      assert.equal(small.backend.watcherCount(), 1);
      stream.write({ create_request: { key: Buffer.alloc(600 * 1024) } });
      await waitFor(() => small.backend.watcherCount() === 0);
      stream.cancel();
    } finally {
      await small.close();
    }
  });

  it('cancels every watcher of a stream when the client goes away', async () => {
    const w = openWatch();
    w.stream.write({ create_request: { key: b('gone1') } });
    w.stream.write({ create_request: { key: b('gone2') } });
    await w.next();
    await w.next();
    assert.equal(h.backend.watcherCount(), 2);
    w.close();
    await waitFor(() => h.backend.watcherCount() === 0);
  });
});

/** Yields to the event loop until `condition` holds; gives up after 10 s (a bound, not a delay). */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition not reached');
}

describe('gRPC Lease service', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('grants, lists, reports time to live with keys, and revokes', async () => {
    const grant = await h.call('Lease', 'LeaseGrant', { TTL: 30 });
    assert.equal(grant.TTL, '30');
    await h.call('KV', 'Put', { key: b('leased'), value: b('v'), lease: grant.ID });
    const ttl = await h.call('Lease', 'LeaseTimeToLive', { ID: grant.ID, keys: true });
    assert.equal(ttl.grantedTTL, '30');
    assert.deepEqual(ttl.keys, [b('leased')]);
    const list = await h.call('Lease', 'LeaseLeases', {});
    assert.deepEqual(list.leases, [{ ID: grant.ID }]);
    await h.call('Lease', 'LeaseRevoke', { ID: grant.ID });
    const gone = await h.call('Lease', 'LeaseTimeToLive', { ID: grant.ID });
    assert.equal(gone.TTL, '-1');
    assert.equal((await h.call('KV', 'Range', { key: b('leased') })).count, '0');
    await rejectsWith(h.call('Lease', 'LeaseRevoke', { ID: grant.ID }), status.NOT_FOUND, 'etcdserver: requested lease not found');
  });

  it('refuses a TTL above etcd\'s maximum', async () => {
    await rejectsWith(h.call('Lease', 'LeaseGrant', { TTL: '9000000001' }), status.OUT_OF_RANGE, 'etcdserver: too large lease TTL');
  });

  it('answers keep-alives in order, with TTL 0 for a missing lease', async () => {
    const grant = await h.call('Lease', 'LeaseGrant', { TTL: 12 });
    const stream = (h.clients.Lease as any).LeaseKeepAlive();
    const responses: any[] = [];
    const done = new Promise<void>((resolve) => {
      stream.on('data', (m: any) => {
        responses.push(m);
        if (responses.length === 3) resolve();
      });
    });
    stream.write({ ID: grant.ID });
    stream.write({ ID: 424242 });
    stream.write({ ID: grant.ID });
    await done;
    stream.end();
    assert.deepEqual(responses.map((r) => [r.ID, r.TTL]), [[grant.ID, '12'], ['424242', '0'], [grant.ID, '12']]);
    assert.equal(responses[0].header.cluster_id, '1001');
  });
});

describe('gRPC keep-alive stream through a follower', () => {
  /** A follower whose forwarded renewals wait until the test answers them. */
  class ForwardingBackend extends MemoryBackend {
    readonly waiting = new Map<number, () => void>();
    override async leaseKeepAlive(id: number) {
      await new Promise<void>((resolve) => this.waiting.set(id, resolve));
      return super.leaseKeepAlive(id);
    }
  }
  let h: Harness;
  let backend: ForwardingBackend;
  before(async () => {
    backend = new ForwardingBackend();
    h = await startHarness({ backend });
  });
  after(() => h.close());

  it('starts each renewal when it arrives and answers in order', async () => {
    const first = await backend.leaseGrant({ TTL: 21 });
    const second = await backend.leaseGrant({ TTL: 22 });
    const stream = (h.clients.Lease as any).LeaseKeepAlive();
    const responses = new MessageQueue<any>(stream);
    stream.write({ ID: first.ID });
    stream.write({ ID: second.ID });
    // Both renewals are under way before either is answered (one forward to the leader each).
    for (let turn = 0; backend.waiting.size < 2 && turn < 10_000; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(backend.waiting.size, 2);
    backend.waiting.get(second.ID)!();
    backend.waiting.get(first.ID)!();
    assert.deepEqual([(await responses.next()).TTL, (await responses.next()).TTL], ['21', '22']);
    stream.end();
  });
});

describe('gRPC Cluster, Maintenance, Auth and Health services', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  it('lists, adds, updates, promotes and removes members', async () => {
    const list = await h.call('Cluster', 'MemberList', {});
    assert.deepEqual(list.members[0], {
      ID: '1', name: 'node-1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: false,
    });
    const added = await h.call('Cluster', 'MemberAdd', { peerURLs: ['http://127.0.0.1:2390'], isLearner: true });
    assert.equal(added.member.isLearner, true);
    assert.equal(added.members.length, 2);
    await h.call('Cluster', 'MemberUpdate', { ID: added.member.ID, peerURLs: ['http://127.0.0.1:2391'] });
    const promoted = await h.call('Cluster', 'MemberPromote', { ID: added.member.ID });
    assert.equal(promoted.members[1].isLearner, false);
    await rejectsWith(
      h.call('Cluster', 'MemberPromote', { ID: added.member.ID }),
      status.FAILED_PRECONDITION,
      'etcdserver: can only promote a learner member',
    );
    const removed = await h.call('Cluster', 'MemberRemove', { ID: added.member.ID });
    assert.equal(removed.members.length, 1);
    await rejectsWith(h.call('Cluster', 'MemberRemove', { ID: added.member.ID }), status.NOT_FOUND, 'etcdserver: member not found');
    await rejectsWith(h.call('Cluster', 'MemberRemove', { ID: '18446744073709551615' }), status.NOT_FOUND, 'etcdserver: member not found');
  });

  it('refuses malformed and duplicate peer URLs', async () => {
    await rejectsWith(h.call('Cluster', 'MemberAdd', { peerURLs: ['not a url'] }), status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid');
    await rejectsWith(h.call('Cluster', 'MemberAdd', { peerURLs: [] }), status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid');
    await rejectsWith(
      h.call('Cluster', 'MemberAdd', { peerURLs: ['http://127.0.0.1:2380'] }),
      status.FAILED_PRECONDITION,
      'etcdserver: Peer URLs already exists',
    );
  });

  it('reports status, alarms, hashes; defragment succeeds; Hash is unimplemented', async () => {
    const s = await h.call('Maintenance', 'Status', {});
    assert.equal(s.version, '3.5.0');
    assert.equal(s.leader, '1');
    assert.equal(s.dbSize, '4096');
    assert.equal(s.header.member_id, '1');
    const alarms = await h.call('Maintenance', 'Alarm', { action: 0 });
    assert.deepEqual(alarms.alarms, []);
    const hash = await h.call('Maintenance', 'HashKV', { revision: 0 });
    assert.equal(typeof hash.hash, 'number');
    assert.equal(hash.hash_revision, String(h.backend.revision));
    await h.call('Maintenance', 'Defragment', {});
    const before = await h.call('Maintenance', 'Hash', {});
    await h.call('KV', 'Put', { key: b('hashed'), value: b('x') });
    const after = await h.call('Maintenance', 'Hash', {});
    assert.equal(typeof before.hash, 'number');
    assert.notEqual(after.hash, before.hash, 'a write changes the hash');
    assert.equal(after.header.revision, String(h.backend.revision));
    await h.call('Maintenance', 'MoveLeader', { targetID: 1 });
    assert.deepEqual(h.backend.calls.findLast((c) => c.method === 'moveLeader')!.args, [1]);
  });

  it('streams a snapshot with decreasing remaining_bytes and a SHA-256 trailer', async () => {
    await h.call('KV', 'Put', { key: b('snap'), value: b('shot') });
    const stream = (h.clients.Maintenance as any).Snapshot({}) as ClientReadableStream<any>;
    const messages: any[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (m) => messages.push(m));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    assert.ok(messages.length >= 2);
    assert.equal(messages.at(-1).remaining_bytes, '0');
    const blobs = messages.map((m) => m.blob as Buffer);
    const body = Buffer.concat(blobs.slice(0, -1));
    assert.equal(body.length % 512, 0, 'etcdctl wants whole 512-byte pages');
    assert.deepEqual(blobs.at(-1), createHash('sha256').update(body).digest());
    const remaining = messages.map((m) => Number(m.remaining_bytes));
    assert.deepEqual(remaining, [...remaining].sort((x, y) => y - x));
    assert.ok(body.toString().includes(Buffer.from('snap').toString('hex')));
  });

  it('maps a backend without auth to etcd\'s answers: disabled, no login, no valid token', async () => {
    const s = await h.call('Auth', 'AuthStatus', {});
    assert.equal(s.enabled, false);
    await rejectsWith(h.call('Auth', 'Authenticate', { name: 'root', password: 'x' }), status.FAILED_PRECONDITION, /^etcdserver: authentication is not enabled$/);
    const metadata = new Metadata();
    metadata.set('token', 'stale.1');
    const kv = h.clients.KV as unknown as Record<string, Function>;
    const failure = await new Promise<ServiceError>((resolve) => kv['Range']!.call(h.clients.KV, { key: Buffer.from('k') }, metadata, (e: ServiceError) => resolve(e)));
    assert.equal(failure.code, status.UNAUTHENTICATED);
    assert.equal(failure.details, 'etcdserver: invalid auth token');
  });

  it('reports SERVING while a leader is known', async () => {
    assert.equal((await h.call('Health', 'Check', { service: '' })).status, 1);
    h.backend.leader = 0;
    assert.equal((await h.call('Health', 'Check', { service: '' })).status, 2);
    h.backend.leader = 1;
    await rejectsWith(h.call('Health', 'Check', { service: 'nope' }), status.NOT_FOUND, /unknown service/);
  });
});

describe('MemoryBackend test double', () => {
  it('keeps revisions unchanged for read-only txns', async () => {
    const backend = new MemoryBackend();
    const before = backend.revision;
    await backend.txn({ compare: [], success: [{ requestRange: { key: b('a') } }], failure: [] });
    assert.equal(backend.revision, before);
  });
});
