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

test('a waiting member is shut out once the initial members that refused it as no member leave the rest without a quorum', () => {
  // Five initial members (this one and 2..5): a quorum is three, so three refusals shut it out.
  const dirs = new PeerDataDirs({ known: [], awaiting: [2, 3, 4, 5] });
  dirs.refusedBy(2, 'not the member you want');
  dirs.refusedBy(3, 'not the member you want');
  dirs.refusedBy(9, 'not an initial member: does not count');
  assert.equal(dirs.shutOut(), false, 'two refusals: members down or cut off may still accept it');
  dirs.refusedBy(2, 'said twice, counted once');
  assert.equal(dirs.shutOut(), false);
  dirs.refusedBy(4, 'you are not a member');
  assert.equal(dirs.shutOut(), true);
  assert.deepEqual(dirs.refusals(), [[2, 'said twice, counted once'], [3, 'not the member you want'], [4, 'you are not a member']]);
  dirs.acceptedBy(4);
  assert.equal(dirs.shutOut(), false, 'a member that accepted it since no longer counts');

  const three = new PeerDataDirs({ known: [], awaiting: [2, 3] });
  three.refusedBy(2, 'not the member you want');
  assert.equal(three.shutOut(), false);
  three.refusedBy(3, 'not the member you want');
  assert.equal(three.shutOut(), true);

  const two = new PeerDataDirs({ known: [], awaiting: [2] });
  two.refusedBy(2, 'you are not a member');
  assert.equal(two.shutOut(), true, 'of two members, one refusal leaves no quorum');

  const started = new PeerDataDirs({ known: [], awaiting: [] });
  started.refusedBy(2, 'you are not a member');
  assert.equal(started.shutOut(), false, 'a member that takes part already is never shut out this way');
});
