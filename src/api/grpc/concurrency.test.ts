// The lock recipe's own failures, on a fake backend: a waiter whose watch on the key ahead ends
// without that key's delete (the watch was compacted away) fails as etcd's concurrency package
// does, with its message exactly and no "etcdserver: " prefix (etcd's Lock service answers it as
// code Unknown with that text).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EtcdBackend, WatchSink } from '../backend.js';
import { lock } from './concurrency.js';
import { toServiceError } from './errors.js';

const header = { clusterId: 1, memberId: 1, revision: 10, raftTerm: 2 };
const kv = (key: string, createRevision: number) => ({ key: Buffer.from(key), value: Buffer.alloc(0), createRevision, modRevision: createRevision, version: 1, lease: 0 });

test('a lock waiter whose watch is compacted away fails with "lost watcher waiting for delete", and leaves the queue', async () => {
  const deleted: string[] = [];
  const backend = {
    // Joining the queue: our key is new (revision 10) and someone holds the lock (revision 5).
    txn: async () => ({ header, succeeded: true, responses: [{ responsePut: { header } }, { responseRange: { header, kvs: [kv('job/1', 5)], more: false, count: 1 } }] }),
    range: async () => ({ header, kvs: [kv('job/1', 5)], more: false, count: 1 }),
    watch: (_request: unknown, sink: WatchSink) => {
      queueMicrotask(() => sink.onCompacted(8));
      return { cancel: () => undefined, requestProgress: () => undefined };
    },
    deleteRange: async (request: { key: Uint8Array }) => {
      deleted.push(Buffer.from(request.key).toString());
      return { header, deleted: 1, prevKvs: [] };
    },
  } as unknown as EtcdBackend;
  const error = await lock({ backend, caller: undefined, signal: new AbortController().signal }, Buffer.from('job'), 0x2a).then(
    () => assert.fail('the lock was granted'),
    (e: unknown) => e,
  );
  assert.deepEqual(toServiceError(error).details, 'lost watcher waiting for delete');
  assert.deepEqual(deleted, ['job/2a'], 'the waiter removed its key from the queue');
});
