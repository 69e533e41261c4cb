// The in-memory WAL that replica tests (and later the simulator) crash: a crash keeps exactly what
// was flushed, and a restart replays it by the WAL's own rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '../raft/index.js';
import { MemoryLog } from './memory-storage.js';

const entry = (index: number, term: number): Entry => ({ index, term, type: 0, data: Buffer.from(`e${index}`) });
const indexes = (log: MemoryLog): string => log.recover().entries.map((e) => `${e.index}@${e.term}`).join(',');

test('a crash keeps what was flushed and loses a commit-only write that was not', async () => {
  const log = new MemoryLog();
  await log.save({ hardState: { term: 1, vote: 1, commit: 0 }, entries: [entry(1, 1), entry(2, 1)] });
  await log.save({ hardState: { term: 1, vote: 1, commit: 2 }, entries: [], sync: false });
  assert.equal(log.recover().hardState.commit, 0, 'the unflushed commit index is not durable yet');
  log.crash();
  assert.deepEqual(log.recover().hardState, { term: 1, vote: 1, commit: 0 });
  assert.equal(indexes(log), '1@1,2@1');
});

test('a flush held back is lost in a crash and never completes; held ones complete on release', async () => {
  const log = new MemoryLog();
  await log.save({ entries: [entry(1, 1)] });
  log.holdFlushes();
  let flushed = false;
  void log.save({ entries: [entry(2, 1)] }).then(() => (flushed = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(flushed, false);
  log.crash();
  log.releaseFlushes();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(flushed, false, 'a flush cut off by the crash never reports success');
  assert.equal(indexes(log), '1@1');

  log.holdFlushes();
  const write = log.save({ entries: [entry(2, 2)] });
  log.releaseFlushes();
  await write;
  assert.equal(indexes(log), '1@1,2@2');
});

test('replay applies truncation on conflict and snapshot markers as the WAL does', async () => {
  const log = new MemoryLog();
  await log.save({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
  await log.save({ entries: [entry(2, 2)] });
  assert.equal(indexes(log), '1@1,2@2', 'an entry at or below the last index replaces that suffix');
  await log.saveSnapshotMarker({ index: 2, term: 2, conf: { voters: [1], learners: [] } });
  await log.save({ entries: [entry(3, 2)] });
  const recovered = log.recover();
  assert.equal(recovered.snapshot?.index, 2);
  assert.equal(indexes(log), '3@2', 'entries the snapshot covers are not replayed');
});
