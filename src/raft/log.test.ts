import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from '../errors.js';
import { RaftLog } from './log.js';
import { Inflights, Progress, ProgressTracker } from './progress.js';
import { MemoryStorage, entryBytes, limitBytes } from './storage.js';
import { raftEntryOverheadBytesMax } from '../limits.js';
import { text } from './testkit.js';
import type { Entry } from './types.js';

function ent(index: number, term: number, data = 'x'): Entry {
  return { index, term, type: 0, data: text(data) };
}

function storageOf(...terms: number[]): MemoryStorage {
  const s = new MemoryStorage();
  s.append(terms.map((t, i) => ent(i + 1, t)));
  return s;
}

test('MemoryStorage: append truncates a conflicting suffix and rejects gaps', () => {
  const s = storageOf(1, 1, 2, 2);
  s.append([ent(3, 3)]);
  assert.equal(s.lastIndex(), 3);
  assert.equal(s.term(3), 3);
  assert.throws(() => s.append([ent(6, 3)]), /gap/);
});

test('MemoryStorage: entries honours maxBytes (entryBytes: data plus wire overhead) but returns at least one entry', () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb'), ent(3, 1, 'cccc')]);
  const each = entryBytes(ent(1, 1, 'aaaa'));
  assert.equal(each, 4 + raftEntryOverheadBytesMax);
  assert.equal(s.entries(1, 4, 2 * each).length, 2);
  assert.equal(s.entries(1, 4, 3 * each - 1).length, 2);
  assert.equal(s.entries(1, 4, 1).length, 1);
  assert.equal(s.entries(1, 4).length, 3);
  assert.equal(limitBytes([], 0).length, 0);
});

test('MemoryStorage: snapshot and compaction; compacted indexes throw Compacted', () => {
  const s = storageOf(1, 1, 2, 2, 3);
  const snap = s.createSnapshot(3, { voters: [1], learners: [] }, text('state'));
  assert.deepEqual([snap.metadata.index, snap.metadata.term], [3, 2]);
  s.compact(3);
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.term(3), 2, 'the snapshot index keeps its term');
  assert.throws(() => s.term(2), (e) => isLichenError(e, 'Compacted'));
  assert.throws(() => s.entries(3, 5), (e) => isLichenError(e, 'Compacted'));
  assert.deepEqual(s.entries(4, 6).map((e) => e.index), [4, 5]);
  // Appending entries that start below the first index skips the compacted part.
  s.append([ent(3, 2), ent(4, 2), ent(5, 4)]);
  assert.equal(s.term(5), 4);
  // A newer snapshot from the leader replaces the whole log.
  s.applySnapshot({ metadata: { index: 10, term: 5, conf: { voters: [1, 2], learners: [] } }, data: text('') });
  assert.equal(s.firstIndex(), 11);
  assert.equal(s.lastIndex(), 10);
  assert.deepEqual(s.initialState().confState.voters, [1, 2]);
});

test('RaftLog: unstable entries overlay storage until they are persisted', () => {
  const s = storageOf(1, 1);
  const log = new RaftLog(s);
  log.append([ent(3, 2), ent(4, 2)]);
  assert.equal(log.lastIndex(), 4);
  assert.equal(log.persistedIndex(), 2);
  assert.deepEqual(log.slice(1, 5).map((e) => e.index), [1, 2, 3, 4]);
  s.append(log.unstableEntries());
  log.stableTo(4, 2);
  assert.equal(log.persistedIndex(), 4);
  assert.deepEqual(log.unstableEntries(), []);
  // A conflicting append replaces a persisted suffix: only the prefix stays persisted.
  log.append([ent(4, 3)]);
  assert.equal(log.persistedIndex(), 3);
  assert.equal(log.term(4), 3);
  // A stale stableTo (the term no longer matches) is ignored.
  log.stableTo(4, 2);
  assert.equal(log.persistedIndex(), 3);
});

test('RaftLog: findConflictByTerm returns the largest index whose term is at most the given term', () => {
  const log = new RaftLog(storageOf(1, 1, 2, 2, 2, 4, 4));
  assert.deepEqual(log.findConflictByTerm(7, 3), { index: 5, term: 2 });
  assert.deepEqual(log.findConflictByTerm(7, 4), { index: 7, term: 4 });
  assert.deepEqual(log.findConflictByTerm(7, 1), { index: 2, term: 1 });
  assert.deepEqual(log.findConflictByTerm(100, 9), { index: 7, term: 4 });
  assert.deepEqual(log.findConflictByTerm(3, 0), { index: 0, term: 0 });
});

test('RaftLog: a committed entry is never overwritten', () => {
  const log = new RaftLog(storageOf(1, 1, 1));
  log.commitTo(3);
  assert.throws(() => log.maybeAppend(1, 1, 3, [ent(2, 2)]), /conflicts with committed/);
});

test('RaftLog: maybeCommit commits only an entry of the given term', () => {
  const log = new RaftLog(storageOf(1, 1, 2));
  assert.equal(log.maybeCommit(2, 2), false);
  assert.equal(log.maybeCommit(3, 2), true);
  assert.equal(log.committed, 3);
});

test('Inflights: bounded window, freed by acknowledgement', () => {
  const inf = new Inflights(3);
  inf.add(5);
  inf.add(7);
  inf.add(9);
  assert.equal(inf.full(), true);
  assert.throws(() => inf.add(11), /overflow/);
  inf.freeLE(7);
  assert.equal(inf.count, 1);
  inf.freeFirstOne();
  assert.equal(inf.count, 0);
});

test('Progress: probe backs off to the hint; replicate ignores stale rejections', () => {
  const pr = new Progress(11, 4, false);
  pr.probeSent = true;
  assert.equal(pr.maybeDecrTo(5, 3), false, 'not the answer to the last probe (prev 10)');
  assert.equal(pr.maybeDecrTo(10, 6), true);
  assert.equal(pr.next, 7);
  assert.equal(pr.isPaused(), false);
  pr.maybeUpdate(6);
  pr.becomeReplicate();
  assert.equal(pr.next, 7);
  pr.optimisticUpdate(20);
  assert.equal(pr.maybeDecrTo(5, 0), false, 'below match: stale');
  assert.equal(pr.maybeDecrTo(15, 0), true);
  assert.equal(pr.next, 7);
});

test('ProgressTracker: the commit candidate is the quorum-th highest match among voters, learners excluded', () => {
  const t = new ProgressTracker(8);
  t.setConf({ voters: [1, 2, 3, 4, 5], learners: [6] }, 1, false);
  const matches: Record<number, number> = { 1: 9, 2: 7, 3: 5, 4: 3, 5: 1, 6: 100 };
  for (const [id, m] of Object.entries(matches)) t.progress.get(Number(id))!.match = m;
  assert.equal(t.quorumMatchIndex(), 5);
  t.setConf({ voters: [1, 2], learners: [6] }, 1, false);
  assert.equal(t.quorumMatchIndex(), 7);
});
