// The Watch service's stream against a fake call and backend: what it asks of the backend when its
// client falls behind and catches up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { EtcdBackend, WatchHandle, WatchSink } from '../backend.js';
import { EventType, type Event } from '../../mvcc/types.js';
import { watchStreamBufferedBytesMax } from '../../limits.js';
import { CallMetadata, type ServerCall } from './http2-server.js';
import { watchService } from './watch.js';

class FakeCall extends EventEmitter {
  writableLength = 0;
  readonly written: object[] = [];
  readonly metadata = new CallMetadata({});
  write(message: object): boolean {
    this.written.push(message);
    return true;
  }
}

function putEvent(revision: number): Event {
  return { type: EventType.PUT, kv: { key: Buffer.from('k'), value: Buffer.from('v'), createRevision: revision, modRevision: revision, version: 1, lease: 0 } };
}

test("a watcher turned away while the client was behind is resumed when the stream drains, once, not on every drain", () => {
  let sink: WatchSink | undefined;
  let resumed = 0;
  const handle: WatchHandle = { cancel: () => {}, requestProgress: () => {}, resume: () => resumed++ };
  const backend = {
    watch: (_request: unknown, watchSink: WatchSink) => {
      sink = watchSink;
      return handle;
    },
    header: (revision?: number) => ({ clusterId: 1, memberId: 2, revision: revision ?? 5, raftTerm: 1 }),
    leaderId: () => 2,
  } as unknown as EtcdBackend;
  const call = new FakeCall();
  const service = watchService({ backend, maxRequestBytes: 1 << 20, sizeOf: () => 0 }) as { Watch: (call: ServerCall<object, object>) => void };
  service.Watch(call as unknown as ServerCall<object, object>);
  call.emit('data', { request_union: 'create_request', create_request: { key: Buffer.from('k') } });
  assert.ok(sink, 'the stream created a watcher');

  assert.equal(sink.onEvents([putEvent(6)], 6), true, 'taken while the client keeps up');
  call.writableLength = watchStreamBufferedBytesMax;
  assert.equal(sink.onEvents([putEvent(7)], 7), false, 'turned away while the client is behind');
  call.emit('drain');
  assert.equal(resumed, 1, 'the drain resumes the watcher it turned away');
  call.emit('drain');
  assert.equal(resumed, 1, 'a drain with nobody turned away resumes nothing');
});

test('a watcher the backend found not ready is resumed when the stream drains, like one turned away', () => {
  let sink: WatchSink | undefined;
  let resumed = 0;
  const backend = {
    watch: (_request: unknown, watchSink: WatchSink) => {
      sink = watchSink;
      return { cancel: () => {}, requestProgress: () => {}, resume: () => resumed++ } satisfies WatchHandle;
    },
    header: () => ({ clusterId: 1, memberId: 2, revision: 5, raftTerm: 1 }),
  } as unknown as EtcdBackend;
  const call = new FakeCall();
  (watchService({ backend, maxRequestBytes: 1 << 20, sizeOf: () => 0 }) as { Watch: (call: ServerCall<object, object>) => void }).Watch(call as unknown as ServerCall<object, object>);
  call.emit('data', { request_union: 'create_request', create_request: { key: Buffer.from('k') } });
  assert.equal(sink!.ready!(), true);
  call.writableLength = watchStreamBufferedBytesMax;
  assert.equal(sink!.ready!(), false, 'not ready while the client is behind');
  call.writableLength = 0;
  call.emit('drain');
  assert.equal(resumed, 1);
});
