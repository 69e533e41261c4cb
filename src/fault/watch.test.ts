import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HistoryOp } from './history.js';
import { checkWatch, type FinalWatchState, type SeenEvent, type WatchRecorder } from './watch.js';

let nextId = 0;
function put(key: string, value: string, revision: number | undefined): HistoryOp {
  return {
    id: nextId++, workload: 'watch', process: nextId, worker: 0, node: 'n1', f: 'watch-put', key, input: { value },
    invokeMs: 0, completeMs: revision === undefined ? undefined : 1, status: revision === undefined ? 'unknown' : 'ok',
    output: revision === undefined ? undefined : { revision }, error: undefined,
  };
}
function watcher(name: string, events: [number, string, string][]): WatchRecorder {
  const seen: SeenEvent[] = events.map(([revision, key, value]) => ({ revision, key, value, type: 'put', atMs: 0 }));
  // Only the fields the checker reads.
  return { name, node: 'n1', events: seen, error: undefined, creations: 2, lastRevision: seen.at(-1)?.revision ?? 0 } as unknown as WatchRecorder;
}
const final = (entries: [string, string, number][]): FinalWatchState => ({
  latest: new Map(entries.map(([key, value, modRevision]) => [key, { value, modRevision }])),
});
const kinds = (ops: HistoryOp[], watchers: WatchRecorder[], state: FinalWatchState) =>
  checkWatch(ops, watchers, state).anomalies.map((a) => a.kind).sort();

const ops = [put('w/a', 'x', 5), put('w/b', 'y', 7), put('w/a', 'z', undefined)];

test('watchers that saw every change once, in order, are valid (also a write of unknown outcome)', () => {
  const w = watcher('w1', [[5, 'w/a', 'x'], [7, 'w/b', 'y'], [9, 'w/a', 'z']]);
  const result = checkWatch(ops, [w], final([['w/a', 'z', 9], ['w/b', 'y', 7]]));
  assert.equal(result.result, 'valid', JSON.stringify(result.anomalies));
});

test('a skipped revision is a gap (and the watcher never saw that key at all)', () => {
  const w1 = watcher('w1', [[5, 'w/a', 'x'], [7, 'w/b', 'y'], [9, 'w/a', 'z']]);
  const w2 = watcher('w2', [[5, 'w/a', 'x'], [9, 'w/a', 'z']]);
  assert.deepEqual(kinds(ops, [w1, w2], final([['w/a', 'z', 9], ['w/b', 'y', 7]])), ['watch-gap', 'watch-incomplete']);
});

test('a repeated revision is a duplicate and a watcher that stopped early is incomplete', () => {
  const w = watcher('w1', [[5, 'w/a', 'x'], [5, 'w/a', 'x'], [7, 'w/b', 'y']]);
  assert.deepEqual(kinds(ops, [w], final([['w/a', 'z', 9], ['w/b', 'y', 7]])), ['watch-duplicate', 'watch-incomplete']);
});

test('two watchers that disagree about a revision diverge', () => {
  const w1 = watcher('w1', [[5, 'w/a', 'x'], [7, 'w/b', 'y']]);
  const w2 = watcher('w2', [[5, 'w/a', 'x'], [7, 'w/a', 'x']]);
  assert.ok(kinds(ops.slice(0, 2), [w1, w2], final([['w/a', 'x', 5], ['w/b', 'y', 7]])).includes('watch-divergence'));
});
