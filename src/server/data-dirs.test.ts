import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerDataDirs } from './data-dirs.js';

test('a peer is admitted by the data directory first seen for it; another one is refused until its id is forgotten', () => {
  const dirs = new PeerDataDirs({ known: [[2, 'aaaa']], awaiting: [] });
  assert.deepEqual(dirs.check(2, 'aaaa'), { admit: true, fresh: false });
  assert.deepEqual(dirs.check(2, 'bbbb'), { admit: false, known: 'aaaa' });
  assert.deepEqual(dirs.check(3, 'cccc'), { admit: true, fresh: true });
  dirs.record(3, 'cccc');
  dirs.record(3, 'dddd');
  assert.deepEqual(dirs.check(3, 'dddd'), { admit: false, known: 'cccc' }, 'first seen wins');
  dirs.forget(2);
  assert.deepEqual(dirs.check(2, 'bbbb'), { admit: true, fresh: true });
  assert.deepEqual(dirs.entries(), [[3, 'cccc']]);
});

test('a member of a new cluster waits until every other initial member has accepted it', () => {
  const dirs = new PeerDataDirs({ known: [], awaiting: [3, 2] });
  assert.deepEqual(dirs.waitingFor(), [2, 3]);
  dirs.acceptedBy(3);
  assert.deepEqual(dirs.waitingFor(), [2]);
  dirs.acceptedBy(2);
  assert.deepEqual(dirs.waitingFor(), []);
});
