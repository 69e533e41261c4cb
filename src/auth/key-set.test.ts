import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeySet, intervalOf, type KeyInterval } from './key-set.js';

const set = (...intervals: [string, string][]): KeySet => KeySet.of(intervals.map(([key, end]) => intervalOf(key, end)));

describe('KeySet', () => {
  it('reads etcd\'s key/range-end convention: a key alone, [key, end), and [key, ∞) for "\\0"', () => {
    assert.deepEqual(intervalOf('a', ''), { start: 'a', end: 'a\0' });
    assert.deepEqual(intervalOf('a', 'b'), { start: 'a', end: 'b' });
    assert.deepEqual(intervalOf('a', '\0'), { start: 'a', end: undefined });
  });

  it('holds a single-key permission for that key only', () => {
    const keys = set(['/a', '']);
    assert.equal(keys.hasKey('/a'), true);
    assert.equal(keys.hasKey('/a\0'), false);
    assert.equal(keys.hasKey('/ab'), false);
    assert.equal(keys.covers(intervalOf('/a', '')), true);
    assert.equal(keys.covers(intervalOf('/a', '/b')), false);
  });

  it('covers a range only when every key of it is permitted', () => {
    const keys = set(['/a/', '/a0']);
    assert.equal(keys.covers(intervalOf('/a/x', '/a/y')), true);
    assert.equal(keys.covers(intervalOf('/a/', '/a0')), true);
    assert.equal(keys.covers(intervalOf('/a/', '/b')), false);
    assert.equal(keys.covers(intervalOf('/', '/a0')), false);
    assert.equal(keys.covers(intervalOf('/a/', '\0')), false);
  });

  it('merges touching and overlapping permissions of different roles into one range', () => {
    const keys = set(['a', 'c'], ['c', 'e'], ['d', 'f'], ['f', '']);
    assert.equal(keys.size, 1);
    assert.equal(keys.covers(intervalOf('a', 'f\0')), true);
    assert.equal(keys.covers(intervalOf('a', 'f\0\0')), false);
  });

  it('keeps a gap between permissions a gap', () => {
    const keys = set(['a', 'b'], ['c', 'd']);
    assert.equal(keys.size, 2);
    assert.equal(keys.covers(intervalOf('a', 'd')), false);
    assert.equal(keys.hasKey('b'), false);
    assert.equal(keys.hasKey('c'), true);
  });

  it('treats "\\0" as no upper bound, for permissions and for requests', () => {
    const keys = set(['/z', '\0']);
    assert.equal(keys.covers(intervalOf('/zz', '\0')), true);
    assert.equal(keys.covers(intervalOf('/zz', '\xff')), true);
    assert.equal(keys.covers(intervalOf('/y', '\0')), false);
    assert.equal(set(['a', '\0'], ['b', 'c']).size, 1);
  });

  it('checks an empty or inverted request range as its start key (etcd lets it through when that key is permitted)', () => {
    const keys = set(['/a/', '/a0']);
    assert.equal(keys.covers(intervalOf('/a/z', '/a/b')), true);
    assert.equal(keys.covers(intervalOf('/b', '/a')), false);
  });

  it('ignores empty and inverted permissions', () => {
    assert.equal(set(['b', 'a'], ['c', 'c']).size, 0);
    assert.equal(KeySet.EMPTY.hasKey(''), false);
  });

  it('answers like a direct walk over the unmerged permissions, for random permissions and requests', () => {
    let seed = 7;
    const random = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const key = (): string => 'abcd'[random(4)]! + (random(2) ? ['a', 'b', '\0'][random(3)]! : '');
    const end = (): string => [key(), '', '\0'][random(3)]!;
    const inside = (i: KeyInterval, k: string): boolean => k >= i.start && (i.end === undefined || k < i.end);
    /** From the start, hop to the furthest end of any permission holding the current key. */
    const walkCovers = (perms: KeyInterval[], request: KeyInterval): boolean => {
      let at = request.start;
      for (;;) {
        const holding = perms.filter((p) => inside(p, at));
        if (holding.length === 0) return false;
        if (holding.some((p) => p.end === undefined)) return true;
        at = holding.map((p) => p.end!).sort().at(-1)!;
        if (request.end !== undefined && at >= request.end) return true;
      }
    };
    for (let round = 0; round < 2000; round++) {
      const perms = Array.from({ length: random(5) }, () => intervalOf(key(), end()));
      const keys = KeySet.of(perms);
      const request = intervalOf(key(), end());
      assert.equal(keys.hasKey(request.start), perms.some((p) => inside(p, request.start)));
      const empty = request.end !== undefined && request.end <= request.start;
      const expected = empty ? perms.some((p) => inside(p, request.start)) : walkCovers(perms, request);
      assert.equal(keys.covers(request), expected, `${JSON.stringify(request)} over ${JSON.stringify(perms)}`);
    }
  });
});
