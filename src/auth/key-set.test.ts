import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeySet, intervalOf, type KeyInterval } from './key-set.js';

const set = (...intervals: [string, string][]): KeySet => KeySet.of(intervals.map(([key, end]) => intervalOf(key, end)));
/** Keys are written as latin1 strings of their bytes, as the auth store builds intervals from them. */
const b = (key: string): Uint8Array => Buffer.from(key, 'latin1');
const has = (keys: KeySet, key: string): boolean => keys.hasKey(b(key));
/** etcd's key and range end ('' for the key alone, '\0' for every key from it on). */
const covers = (keys: KeySet, key: string, rangeEnd: string): boolean => keys.covers(b(key), b(rangeEnd));

describe('KeySet', () => {
  it('reads etcd\'s key/range-end convention: a key alone, [key, end), and [key, ∞) for "\\0"', () => {
    assert.deepEqual(intervalOf('a', ''), { start: 'a', end: 'a\0' });
    assert.deepEqual(intervalOf('a', 'b'), { start: 'a', end: 'b' });
    assert.deepEqual(intervalOf('a', '\0'), { start: 'a', end: undefined });
  });

  it('holds a single-key permission for that key only', () => {
    const keys = set(['/a', '']);
    assert.equal(has(keys, '/a'), true);
    assert.equal(has(keys, '/a\0'), false);
    assert.equal(has(keys, '/ab'), false);
    assert.equal(covers(keys, '/a', ''), true);
    assert.equal(covers(keys, '/a', '/b'), false);
  });

  it('covers a range only when every key of it is permitted', () => {
    const keys = set(['/a/', '/a0']);
    assert.equal(covers(keys, '/a/x', '/a/y'), true);
    assert.equal(covers(keys, '/a/', '/a0'), true);
    assert.equal(covers(keys, '/a/', '/b'), false);
    assert.equal(covers(keys, '/', '/a0'), false);
    assert.equal(covers(keys, '/a/', '\0'), false);
  });

  it('merges touching and overlapping permissions of different roles into one range', () => {
    const keys = set(['a', 'c'], ['c', 'e'], ['d', 'f'], ['f', '']);
    assert.equal(keys.size, 1);
    assert.equal(covers(keys, 'a', 'f\0'), true);
    assert.equal(covers(keys, 'a', 'f\0\0'), false);
  });

  it('keeps a gap between permissions a gap', () => {
    const keys = set(['a', 'b'], ['c', 'd']);
    assert.equal(keys.size, 2);
    assert.equal(covers(keys, 'a', 'd'), false);
    assert.equal(has(keys, 'b'), false);
    assert.equal(has(keys, 'c'), true);
  });

  it('treats "\\0" as no upper bound, for permissions and for requests', () => {
    const keys = set(['/z', '\0']);
    assert.equal(covers(keys, '/zz', '\0'), true);
    assert.equal(covers(keys, '/zz', '\xff'), true);
    assert.equal(covers(keys, '/y', '\0'), false);
    assert.equal(set(['a', '\0'], ['b', 'c']).size, 1);
  });

  it('checks an empty or inverted request range as its start key (etcd lets it through when that key is permitted)', () => {
    const keys = set(['/a/', '/a0']);
    assert.equal(covers(keys, '/a/z', '/a/b'), true);
    assert.equal(covers(keys, '/b', '/a'), false);
  });

  it('ignores empty and inverted permissions', () => {
    assert.equal(set(['b', 'a'], ['c', 'c']).size, 0);
    assert.equal(has(KeySet.EMPTY, ''), false);
  });

  it('merges adjacent, overlapping and nested permissions, open-ended ones swallowing all after them', () => {
    const keys = set(['k1', 'k3'], ['k2', 'k4'], ['k4', 'k5'], ['k21', 'k22'], ['m', '\0'], ['n', 'o'], ['z', '']);
    assert.equal(keys.size, 2);
    assert.equal(covers(keys, 'k1', 'k5'), true);
    assert.equal(covers(keys, 'k1', 'k5\0'), false);
    assert.equal(has(keys, 'k5'), false);
    assert.equal(covers(keys, 'm', '\0'), true);
    assert.equal(covers(keys, 'l', '\0'), false);
    assert.equal(has(keys, '\xff\xff\xff'), true);
  });

  it('holds the empty key only when a permission starts at it', () => {
    assert.equal(has(set(['', 'a']), ''), true);
    assert.equal(has(set(['', '\0']), ''), true);
    assert.equal(covers(set(['', '\0']), '', '\0'), true);
    assert.equal(has(set(['\0', 'a']), ''), false);
    assert.equal(has(set(['a', 'b']), ''), false);
  });

  it('orders keys by their bytes, not as UTF-16 or UTF-8 text', () => {
    // "é" in UTF-8 is c3 a9, above every ASCII byte; in UTF-16 "é" (e9) sorts above "\u00c3" (c3).
    const utf8 = Buffer.from('/é', 'utf8').toString('latin1');
    const keys = set(['/\x7f', '/\xc3'], [utf8, `${utf8}\xff`]);
    assert.equal(keys.hasKey(Buffer.from('/é', 'utf8')), true);
    assert.equal(keys.hasKey(Buffer.from('/é/x', 'utf8')), true);
    assert.equal(keys.hasKey(Buffer.from('/e', 'utf8')), false);
    assert.equal(keys.hasKey(Uint8Array.of(0x2f, 0x80)), true);
    assert.equal(keys.hasKey(Uint8Array.of(0x2f, 0xc3)), false);
    assert.equal(keys.hasKey(Uint8Array.of(0x2f, 0xc4)), false);
    assert.equal(keys.covers(Uint8Array.of(0x2f, 0x80), Uint8Array.of(0x2f, 0xc3)), true);
    assert.equal(keys.covers(Uint8Array.of(0x2f, 0x80), Uint8Array.of(0x2f, 0xc3, 0)), false);
    // Bytes whose top bit is set sort above those without (the packed words compare them unsigned).
    const high = set(['\x80', '\x81'], ['\xff\xff\xff\xff\xff', '\0']);
    assert.equal(has(high, '\x80\xff'), true);
    assert.equal(has(high, '\x7f\xff'), false);
    assert.equal(has(high, '\xff\xff\xff\xff\xfe'), false);
    assert.equal(has(high, '\xff\xff\xff\xff\xff'), true);
  });

  it('tells apart keys that agree in their first bytes and differ after them, or only in length', () => {
    // Starts that share 17 bytes, then 8 more equal ones (with zeros): the packed words tie and the full bytes decide.
    const p = '/registry/pods/ns';
    const zeros = '\0'.repeat(8);
    const keys = set([`${p}/a`, ''], [`${p}/a${zeros}x`, `${p}/a${zeros}y`], [`${p}0`, `${p}1`]);
    assert.equal(keys.size, 3);
    assert.equal(has(keys, `${p}/a`), true);
    assert.equal(has(keys, `${p}/a\0`), false);
    assert.equal(has(keys, `${p}/a${zeros}x`), true);
    assert.equal(has(keys, `${p}/a${zeros}xz`), true);
    assert.equal(has(keys, `${p}/a${zeros}w`), false);
    assert.equal(has(keys, `${p}/a${zeros}y`), false);
    assert.equal(has(keys, `${p}/`), false);
    assert.equal(has(keys, '/registry/pods/n'), false);
    assert.equal(has(keys, '/registry'), false);
    assert.equal(has(keys, `${p}0abc`), true);
    assert.equal(has(keys, '/s'), false);
    const lengths = set(['ab', 'ab\0'], ['ab\0\0', 'ab\0\0\0']);
    assert.equal(lengths.size, 2);
    assert.equal(has(lengths, 'ab'), true);
    assert.equal(has(lengths, 'ab\0'), false);
    assert.equal(has(lengths, 'ab\0\0'), true);
    assert.equal(has(lengths, 'a'), false);
  });

  it('compares ends that leave the shared prefix, or whose next bytes are all 0xff, by their full bytes', () => {
    const ff = '\xff'.repeat(8);
    // Starts share "p"; the second end, "q", does not: it is above every key that starts with "p".
    const keys = set(['pa', `pa${ff}`], ['pb', 'q']);
    assert.equal(keys.size, 2);
    assert.equal(has(keys, 'pa'), true);
    assert.equal(has(keys, `pa${'\xff'.repeat(7)}`), true);
    assert.equal(has(keys, `pa${ff}`), false);
    assert.equal(has(keys, `pa${ff}\0`), false);
    assert.equal(has(keys, 'pz'), true);
    assert.equal(has(keys, `p${ff}`), true);
    assert.equal(has(keys, `p${ff}${ff}`), true);
    assert.equal(has(keys, 'q'), false);
    assert.equal(has(keys, 'o'), false);
    assert.equal(covers(keys, 'pb', 'q'), true);
    assert.equal(covers(keys, 'pb', 'q\0'), false);
    assert.equal(covers(keys, 'pb', '\0'), false);
  });

  it('finds the range holding a key among thousands, sizes from a few to thousands', () => {
    let seed = 11;
    const random = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const digits = (): string => String(random(100_000)).padStart(5, '0');
    for (const size of [7, 8, 9, 63, 64, 65, 513, 3000]) {
      // Disjoint ranges [k, k "\xff") on 5-digit keys, some with a long tail so that words tie.
      const starts = [...new Set(Array.from({ length: size }, () => `/key/${digits()}${random(4) === 0 ? '/a long tail' : ''}`))];
      const perms = starts.map((start) => intervalOf(start, `${start}\xff`));
      const keys = KeySet.of(perms);
      const holds = (k: string): boolean => perms.some((p) => k >= p.start && k < p.end!);
      for (const start of starts) assert.equal(has(keys, start), true, start);
      for (let i = 0; i < 500; i++) {
        const k = random(3) === 0 ? starts[random(starts.length)]! + ['\0', '\xff', '/x', ''][random(4)] : `/key/${digits()}`;
        assert.equal(has(keys, k), holds(k), `${JSON.stringify(k)} among ${size}`);
      }
      assert.equal(has(keys, '/key/'), false);
      assert.equal(has(keys, '/kez'), false);
      assert.equal(covers(keys, starts[0]!, `${starts[0]!}\xff`), true);
      assert.equal(covers(keys, starts[0]!, `${starts[0]!}\xff\0`), false);
    }
  });

  it('answers like a direct walk over the unmerged permissions, for random permissions and requests', () => {
    let seed = 7;
    let random = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    // Short keys over a few bytes, binary and high ones included, some after a long shared prefix
    // (so that the packed words tie and the full bytes decide).
    const letters = ['a', 'b', '\0', '\x7f', '\x80', '\xff'];
    const tail = (): string => Array.from({ length: random(4) }, () => letters[random(letters.length)]!).join('');
    const key = (): string => (random(3) === 0 ? 'prefix/0123456789/' : '') + 'abcd'[random(4)]! + tail();
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
    const check = (perms: KeyInterval[], keys: KeySet): void => {
      const [requestKey, requestEnd] = [key(), end()];
      const request = intervalOf(requestKey, requestEnd);
      assert.equal(has(keys, requestKey), perms.some((p) => inside(p, requestKey)), `${JSON.stringify(requestKey)} over ${perms.length} permissions`);
      const empty = request.end !== undefined && request.end <= request.start;
      const expected = empty ? perms.some((p) => inside(p, request.start)) : walkCovers(perms, request);
      assert.equal(covers(keys, requestKey, requestEnd), expected, `${JSON.stringify(request)} over ${perms.length} permissions`);
    };
    for (let round = 0; round < 5000; round++) {
      const perms = Array.from({ length: random(6) }, () => intervalOf(key(), end()));
      check(perms, KeySet.of(perms));
    }
    // Hundreds of single-key and short permissions: many merged intervals, so the search goes
    // through several fences, and the long shared prefix makes starts (and fences) tie in their
    // packed words.
    // MINSTD from here: its products stay exact in doubles, so its sequence does not cycle early.
    seed = 7;
    random = (n: number): number => (seed = (seed * 48271) % 2147483647) % n;
    let fenced = 0;
    for (let round = 0; round < 40; round++) {
      const perms = Array.from({ length: 300 + random(700) }, () => {
        const k = key();
        return intervalOf(k, random(8) === 0 ? `${k}${letters[random(letters.length)]}` : '');
      });
      const keys = KeySet.of(perms);
      if (keys.size > 64) fenced++;
      for (let i = 0; i < 200; i++) check(perms, keys);
    }
    assert.ok(fenced >= 20, `${fenced} of 40 sets had more intervals than one fence spans`);
  });
});
