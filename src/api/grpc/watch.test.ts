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
import { EncodedWatchEvents, KV_MESSAGES } from './kv-codec.js';
import { encodeEvent } from './wire.js';
import { MemoryEngine } from '../../engine/memory.js';
import { Harness } from '../../mvcc/testkit.js';
import { WatchHub, type WatchMessage, type Watcher } from '../../mvcc/watch.js';

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
  call.writableLength = 0;
  call.emit('drain');
  assert.equal(resumed, 1, 'the drain resumes the watcher it turned away');
  call.emit('drain');
  assert.equal(resumed, 1, 'a drain with nobody turned away resumes nothing');
});

test('a drain resumes the watchers turned away oldest first, as many as the stream has room for; the others on the next turns', async () => {
  const sinks: WatchSink[] = [];
  const resumed: number[] = [];
  const backend = {
    watch: (_request: unknown, sink: WatchSink) => {
      const index = sinks.push(sink) - 1;
      return { cancel: () => {}, requestProgress: () => {}, resume: () => resumed.push(index) } satisfies WatchHandle;
    },
    header: (revision?: number) => ({ clusterId: 1, memberId: 2, revision: revision ?? 5, raftTerm: 1 }),
  } as unknown as EtcdBackend;
  const call = new FakeCall();
  (watchService({ backend, maxRequestBytes: 1 << 20, sizeOf: () => 0 }) as { Watch: (call: ServerCall<object, object>) => void }).Watch(call as unknown as ServerCall<object, object>);
  for (let i = 0; i < 6; i++) call.emit('data', { request_union: 'create_request', create_request: { key: Buffer.from('k') } });
  // A response of a quarter of the stream's bound sets the estimate.
  const big: Event = { ...putEvent(6), kv: { ...putEvent(6).kv, value: Buffer.alloc(watchStreamBufferedBytesMax / 4) } };
  assert.equal(sinks[0]!.onEvents([big], 6), true);
  call.writableLength = watchStreamBufferedBytesMax;
  for (const i of [3, 1, 4, 2, 5]) assert.equal(sinks[i]!.ready!(), false);
  const turn = (): Promise<void> => new Promise((done) => setImmediate(done));

  call.writableLength = watchStreamBufferedBytesMax / 2; // room for two
  call.emit('drain');
  assert.deepEqual(resumed, [3, 1], 'the two turned away first');
  await turn(); // the step for those two wrote nothing: room for more
  assert.deepEqual(resumed, [3, 1, 4, 2]);
  call.writableLength = watchStreamBufferedBytesMax; // behind again: the last waits for a drain
  await turn();
  await turn();
  assert.deepEqual(resumed, [3, 1, 4, 2]);
  call.writableLength = 0;
  call.emit('drain');
  assert.deepEqual(resumed, [3, 1, 4, 2, 5]);
  await turn();
  assert.deepEqual(resumed, [3, 1, 4, 2, 5], 'nobody is left');
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

test('a watcher turned away before "created" resumes once it is written, or on the drain when the stream is behind', () => {
  for (const behindAfterCreated of [false, true]) {
    let resumed = 0;
    const call = new FakeCall();
    const backend = {
      watch: (_request: unknown, sink: WatchSink) => {
        // History replayed inside watch(), beyond what a watcher may hold before "created".
        let revision = 6;
        while (sink.onEvents([putEvent(revision)], revision)) revision++;
        assert.equal(sink.ready!(), false);
        if (behindAfterCreated) call.writableLength = watchStreamBufferedBytesMax;
        return { cancel: () => {}, requestProgress: () => {}, resume: () => resumed++ } satisfies WatchHandle;
      },
      header: () => ({ clusterId: 1, memberId: 2, revision: 5, raftTerm: 1 }),
    } as unknown as EtcdBackend;
    (watchService({ backend, maxRequestBytes: 1 << 20, sizeOf: () => 0 }) as { Watch: (call: ServerCall<object, object>) => void }).Watch(call as unknown as ServerCall<object, object>);
    call.emit('data', { request_union: 'create_request', create_request: { key: Buffer.from('k') } });
    assert.equal((call.written[0] as { created?: boolean }).created, true);
    assert.equal(resumed, behindAfterCreated ? 0 : 1, 'resumed at once unless the stream is behind');
    call.writableLength = 0;
    call.emit('drain');
    assert.equal(resumed, 1, 'resumed once in all');
  }
});

test("parts of one catch-up selection are sent as views of the selection's one encoding", () => {
  // Three watchers left behind at revisions 3, 4 and 5 catch up from one scan (see the hub's tests).
  const h = Harness.open(new MemoryEngine());
  const hub = new WatchHub(h.store);
  const put = (key: string): void => {
    const result = h.put(key, 'v');
    hub.notify(result.events, result.revision);
  };
  const lists: Event[][] = [];
  const hubSinks = [0, 1, 2].map(() => {
    let full = false;
    const sink = {
      watcher: undefined as Watcher | undefined,
      send(message: WatchMessage): boolean {
        if (full) return false;
        full = true;
        if (message.type === 'events') lists.push(message.events);
        return true;
      },
      ready: () => !full,
      drain(): void {
        full = false;
        sink.watcher!.resume();
      },
    };
    return sink;
  });
  const range = { key: Buffer.from('p/'), rangeEnd: Buffer.from('p0') };
  for (const [i, sink] of hubSinks.entries()) {
    sink.watcher = hub.create(range, sink);
    put(`p/${i}`);
  }
  put('p/3');
  put('p/4');
  lists.length = 0;
  for (const sink of hubSinks) sink.drain();
  hub.syncUnsynced();
  assert.equal(lists.length, 3);

  // The three lists through one stream's sinks, as a member's backend hands them over.
  const sinks: WatchSink[] = [];
  const backend = {
    watch: (_request: unknown, sink: WatchSink) => {
      sinks.push(sink);
      return { cancel: () => {}, requestProgress: () => {}, resume: () => {} } satisfies WatchHandle;
    },
    header: (revision?: number) => ({ clusterId: 1, memberId: 2, revision: revision ?? 6, raftTerm: 1 }),
  } as unknown as EtcdBackend;
  const call = new FakeCall();
  (watchService({ backend, maxRequestBytes: 1 << 20, sizeOf: () => 0 }) as { Watch: (call: ServerCall<object, object>) => void }).Watch(call as unknown as ServerCall<object, object>);
  for (let i = 0; i < 3; i++) call.emit('data', { request_union: 'create_request', create_request: { key: Buffer.from('p/') } });
  call.written.length = 0;
  for (const [i, list] of lists.entries()) assert.equal(sinks[i]!.onEvents(list, 6), true);
  const sent = call.written.map((response) => (response as { events: EncodedWatchEvents }).events.bytes);
  for (const [i, bytes] of sent.entries()) {
    assert.deepEqual(bytes, EncodedWatchEvents.encode(lists[i]!.map((event) => KV_MESSAGES.Event.encode(encodeEvent(event) as never))).bytes);
    // A view of the same bytes: the same memory, ending where the whole selection's encoding ends.
    assert.equal(bytes.buffer, sent[0]!.buffer);
    assert.equal(bytes.byteOffset + bytes.length, sent[0]!.byteOffset + sent[0]!.length);
  }
  assert.deepEqual(sent.map((bytes) => bytes.length > 0), [true, true, true]);
});
