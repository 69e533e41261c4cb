// The progress notices a member's watcher sends (src/server/watch.ts), against a hub over a store
// in memory, with the clock mocked: no timer runs for a watcher unless a notice waits.
import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { WatchSink } from '../api/backend.js';
import { MemoryEngine } from '../engine/memory.js';
import { Harness, b } from '../mvcc/testkit.js';
import { WatchHub } from '../mvcc/watch.js';
import { watchStore } from './watch.js';

const RETRY_MS = 100;
const PROGRESS_MS = 10_000;

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'setImmediate'] }));
afterEach(() => mock.timers.reset());

function member() {
  const h = Harness.open(new MemoryEngine());
  const hub = new WatchHub(h.store);
  const put = (key: string): void => {
    const result = h.put(key, 'v');
    hub.notify(result.events, result.revision);
  };
  return { hub, put, node: { hub, stopped: false } as never };
}

/** A sink that records what it gets; while `full`, it refuses events (as a stream whose client is behind). */
function recordingSink() {
  const got: string[] = [];
  const sink = {
    full: false,
    got,
    onEvents: (events: { kv: { modRevision: number } }[]) => {
      if (sink.full) return false;
      for (const event of events) got.push(`event@${event.kv.modRevision}`);
      return true;
    },
    onCompacted: () => got.push('compacted'),
    onProgress: (revision: number) => got.push(`progress@${revision}`),
    onCanceled: () => got.push('canceled'),
  };
  return sink;
}

test('a watcher arms no timer unless it asked for progress notices', () => {
  const { node } = member();
  const timeouts = mock.method(globalThis, 'setTimeout');
  const intervals = mock.method(globalThis, 'setInterval');
  const handle = watchStore(node, { key: b('k') }, recordingSink() as unknown as WatchSink, PROGRESS_MS, RETRY_MS);
  assert.equal(timeouts.mock.callCount() + intervals.mock.callCount(), 0);
  handle.cancel();
  watchStore(node, { key: b('k'), progressNotify: true }, recordingSink() as unknown as WatchSink, PROGRESS_MS, RETRY_MS);
  assert.equal(intervals.mock.callCount(), 1, 'one interval for progress_notify');
});

test('a progress request is answered at once when the watcher is synced, else once it has caught up', () => {
  const { hub, put, node } = member();
  const sink = recordingSink();
  const handle = watchStore(node, { key: b('k') }, sink as unknown as WatchSink, PROGRESS_MS, RETRY_MS);
  put('k'); // 2
  handle.requestProgress();
  assert.deepEqual(sink.got, ['event@2', 'progress@2']);

  sink.full = true;
  put('k'); // 3: refused, the watcher falls behind
  sink.full = false;
  handle.requestProgress();
  mock.timers.tick(RETRY_MS);
  assert.deepEqual(sink.got.slice(2), [], 'no notice while behind');
  hub.syncUnsynced(); // catches up
  mock.timers.tick(RETRY_MS);
  assert.deepEqual(sink.got.slice(2), ['event@3', 'progress@3']);
  mock.timers.tick(RETRY_MS * 5);
  assert.deepEqual(sink.got.slice(2), ['event@3', 'progress@3'], 'one notice per request');
  handle.cancel();
});

test('progress_notify sends a notice every interval while synced', () => {
  const { put, node } = member();
  const sink = recordingSink();
  const handle = watchStore(node, { key: b('k'), progressNotify: true }, sink as unknown as WatchSink, PROGRESS_MS, RETRY_MS);
  put('other'); // 2
  mock.timers.tick(PROGRESS_MS);
  mock.timers.tick(PROGRESS_MS);
  assert.deepEqual(sink.got, ['progress@2', 'progress@2']);
  handle.cancel();
  mock.timers.tick(PROGRESS_MS);
  assert.equal(sink.got.length, 2, 'none after cancel');
});
