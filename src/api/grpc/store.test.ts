// The gRPC layer over a real single-node MvccStore (the HTTP layer's StoreBackend test double),
// so the mapping is checked against the store's own semantics and error texts, not only ours.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { StoreBackend } from '../http/test-backend.js';
import type { EtcdBackend } from '../backend.js';
import { startHarness, type Harness } from './testing/harness.js';

const b = (s: string): Buffer => Buffer.from(s);

function rejectsWith(promise: Promise<unknown>, code: status, message: string): Promise<void> {
  return assert.rejects(promise, (error: ServiceError) => {
    assert.equal(error.code, code);
    assert.equal(error.details, message);
    return true;
  });
}

describe('gRPC API over a real MvccStore', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ backend: new StoreBackend() as unknown as EtcdBackend });
  });
  after(() => h.close());

  it('puts, reads by prefix with sort and limit, and reads an older revision', async () => {
    const first = await h.call('KV', 'Put', { key: b('dir/a'), value: b('1') });
    await h.call('KV', 'Put', { key: b('dir/b'), value: b('2') });
    await h.call('KV', 'Put', { key: b('dir/a'), value: b('3') });
    const range = await h.call('KV', 'Range', { key: b('dir/'), range_end: b('dir0'), sort_order: 2, limit: 1 });
    assert.equal(range.count, '2');
    assert.equal(range.more, true);
    assert.deepEqual(range.kvs.map((kv: any) => kv.key.toString()), ['dir/b']);
    const old = await h.call('KV', 'Range', { key: b('dir/a'), revision: first.header.revision });
    assert.deepEqual(old.kvs[0].value, b('1'));
    assert.equal(old.kvs[0].version, '1');
  });

  it('runs a compare-and-swap txn', async () => {
    const put = await h.call('KV', 'Put', { key: b('cas'), value: b('v1') });
    const swap = (expected: string) =>
      h.call('KV', 'Txn', {
        compare: [{ key: b('cas'), target: 2, result: 0, mod_revision: put.header.revision }],
        success: [{ request_put: { key: b('cas'), value: b(expected), prev_kv: true } }],
        failure: [{ request_range: { key: b('cas') } }],
      });
    const won = await swap('v2');
    assert.equal(won.succeeded, true);
    assert.deepEqual(won.responses[0].response_put.prev_kv.value, b('v1'));
    const lost = await swap('v3');
    assert.equal(lost.succeeded, false);
    assert.deepEqual(lost.responses[0].response_range.kvs[0].value, b('v2'));
  });

  it('maps the store\'s own errors to etcd\'s codes and messages', async () => {
    await rejectsWith(
      h.call('KV', 'Put', { key: b('missing'), ignore_value: true }),
      status.INVALID_ARGUMENT,
      'etcdserver: key not found',
    );
    await rejectsWith(
      h.call('KV', 'Txn', { success: [{ request_put: { key: b('d') } }, { request_put: { key: b('d') } }] }),
      status.INVALID_ARGUMENT,
      'etcdserver: duplicate key given in txn request',
    );
    const now = await h.call('KV', 'Put', { key: b('c'), value: b('x') });
    await h.call('KV', 'Compact', { revision: now.header.revision });
    await rejectsWith(
      h.call('KV', 'Range', { key: b('c'), revision: 1 }),
      status.OUT_OF_RANGE,
      'etcdserver: mvcc: required revision has been compacted',
    );
    await rejectsWith(
      h.call('KV', 'Compact', { revision: now.header.revision }),
      status.OUT_OF_RANGE,
      'etcdserver: mvcc: required revision has been compacted',
    );
    await rejectsWith(
      h.call('KV', 'Put', { key: b('l'), value: b('x'), lease: 999 }),
      status.NOT_FOUND,
      'etcdserver: requested lease not found',
    );
  });
});
