import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyIndex, latestOf, type KeyVersion } from './keyindex.js';

const put = (createRevision: number, version: number, lease = 0): KeyVersion => ({ tombstone: false, createRevision, version, lease });
const TOMBSTONE: KeyVersion = { tombstone: true, createRevision: 0, version: 0, lease: 0 };

describe('KeyIndex', () => {
  it('keeps a key written once in two numbers, and the newest version of a key written more in three more', () => {
    const index = new KeyIndex();
    index.append('once', 2, 0, put(2, 1));
    assert.deepEqual(index.get('once'), [2, 0]);
    assert.deepEqual(index.latest('once'), { main: 2, sub: 0, createRevision: 2, version: 1, lease: 0 });
    index.append('k', 3, 0, put(3, 1));
    index.append('k', 4, 1, put(3, 2, 9));
    assert.deepEqual(index.get('k'), [3, 0, 4, 1, 3, 2, 9]);
    assert.deepEqual(index.latest('k'), { main: 4, sub: 1, createRevision: 3, version: 2, lease: 9 });
    index.append('k', 5, 0, put(3, 3));
    assert.deepEqual(index.get('k'), [3, 0, 4, 1, 5, 0, 3, 3, 0]);
    index.append('k', 6, 0, TOMBSTONE);
    assert.deepEqual(index.get('k'), [3, 0, 4, 1, 5, 0, 6, -1]);
    assert.equal(index.latest('k'), undefined);
    index.append('k', 7, 0, put(7, 1));
    assert.deepEqual(index.latest('k'), { main: 7, sub: 0, createRevision: 7, version: 1, lease: 0 });
    assert.equal(index.latest('missing'), undefined);
  });

  it('a first version with a lease keeps its numbers too', () => {
    const index = new KeyIndex();
    index.append('k', 2, 0, put(2, 1, 5));
    assert.deepEqual(index.latest('k'), { main: 2, sub: 0, createRevision: 2, version: 1, lease: 5 });
  });

  it('compaction drops old pairs and keeps what the newest version says', () => {
    const index = new KeyIndex();
    for (let v = 1; v <= 4; v++) index.append('k', v + 1, 0, put(2, v, 8));
    const dropped: { main: number; sub: number }[] = [];
    index.compact(4, dropped);
    assert.deepEqual(dropped, [{ main: 2, sub: 0 }, { main: 3, sub: 0 }]);
    assert.deepEqual(index.get('k'), [4, 0, 5, 0, 2, 4, 8]);
    assert.deepEqual(latestOf(index.get('k')), { main: 5, sub: 0, createRevision: 2, version: 4, lease: 8 });
  });

  it('a bulk load gives the same arrays as appending one by one', () => {
    const appended = new KeyIndex();
    const loaded = new KeyIndex();
    const writes: [string, number, number, KeyVersion][] = [
      ['a', 2, 0, put(2, 1)], ['b', 3, 0, put(3, 1, 4)], ['a', 4, 0, put(2, 2)], ['b', 5, 0, TOMBSTONE], ['c', 5, 1, put(5, 1)], ['a', 6, 0, put(2, 3)],
    ];
    for (const [key, main, sub, version] of writes) {
      appended.append(key, main, sub, version);
      loaded.appendUnsorted(key, main, sub, version);
    }
    loaded.finishLoad();
    for (const key of ['a', 'b', 'c']) assert.deepEqual(loaded.get(key), appended.get(key));
    const scanned: string[] = [];
    loaded.scan('a', undefined, (key) => void scanned.push(key));
    assert.deepEqual(scanned, ['a', 'b', 'c']);
  });
});
