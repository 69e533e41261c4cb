import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOperations, kvModel } from './index.js';
import type { KvInput, KvOperation, KvOutput } from './index.js';
import { seededRandom } from '../random.js';

let nextClient = 1;
function op(input: KvInput, call: number, ret: number, output?: KvOutput): KvOperation {
  return { clientId: nextClient++, input, call, output, return: ret };
}
const put = (key: string, value: string, call: number, ret: number) => op({ kind: 'put', key, value }, call, ret, {});
const del = (key: string, call: number, ret: number) => op({ kind: 'delete', key }, call, ret, {});
const get = (key: string, value: string | undefined, call: number, ret: number) =>
  op({ kind: 'get', key }, call, ret, { value });
const cas = (key: string, expected: string | undefined, value: string, ok: boolean, call: number, ret: number) =>
  op({ kind: 'cas', key, expected, value }, call, ret, { ok });
const unknown = (input: KvInput, call: number) => op(input, call, Infinity);

function verdict(history: KvOperation[]) {
  return checkOperations(kvModel, history).result;
}

test('a sequential history of puts, gets, deletes and cas is linearizable', () => {
  assert.equal(
    verdict([
      get('x', undefined, 0, 1),
      put('x', '1', 2, 3),
      get('x', '1', 4, 5),
      cas('x', '1', '2', true, 6, 7),
      cas('x', '1', '3', false, 8, 9),
      get('x', '2', 10, 11),
      del('x', 12, 13),
      get('x', undefined, 14, 15),
      cas('x', undefined, '4', true, 16, 17),
      get('x', '4', 18, 19),
    ]),
    'ok',
  );
});

test('an empty history is linearizable', () => {
  assert.equal(verdict([]), 'ok');
});

test('a stale read after a newer write completed is not linearizable', () => {
  assert.equal(verdict([put('x', '1', 0, 10), put('x', '2', 20, 30), get('x', '1', 40, 50)]), 'illegal');
});

test('a read concurrent with a write may return the old or the new value', () => {
  assert.equal(verdict([put('x', '1', 0, 10), put('x', '2', 20, 60), get('x', '1', 30, 40)]), 'ok');
  assert.equal(verdict([put('x', '1', 0, 10), put('x', '2', 20, 60), get('x', '2', 30, 40)]), 'ok');
});

test('two reads during one write cannot see the new value and then the old one', () => {
  assert.equal(
    verdict([put('x', '1', 0, 10), put('x', '2', 20, 100), get('x', '2', 30, 40), get('x', '1', 50, 60)]),
    'illegal',
  );
});

test('a lost write (read of absent after an acknowledged put) is not linearizable', () => {
  assert.equal(verdict([put('x', '1', 0, 10), get('x', undefined, 20, 30)]), 'illegal');
});

test('a read of a value nobody wrote is not linearizable', () => {
  assert.equal(verdict([put('x', '1', 0, 10), get('x', 'ghost', 20, 30)]), 'illegal');
});

test('a delete that completed hides the earlier value', () => {
  assert.equal(verdict([put('x', '1', 0, 10), del('x', 20, 30), get('x', '1', 40, 50)]), 'illegal');
  assert.equal(verdict([put('x', '1', 0, 10), del('x', 20, 30), get('x', undefined, 40, 50)]), 'ok');
});

test('two concurrent cas from absent cannot both succeed', () => {
  assert.equal(
    verdict([cas('x', undefined, 'a', true, 0, 10), cas('x', undefined, 'b', true, 5, 15)]),
    'illegal',
  );
  assert.equal(
    verdict([cas('x', undefined, 'a', true, 0, 10), cas('x', undefined, 'b', false, 5, 15), get('x', 'a', 20, 30)]),
    'ok',
  );
});

test('a cas that succeeds against the wrong value, or fails against the right one, is not linearizable', () => {
  assert.equal(verdict([put('x', '1', 0, 10), cas('x', '2', '3', true, 20, 30)]), 'illegal');
  assert.equal(verdict([put('x', '1', 0, 10), cas('x', '1', '3', false, 20, 30)]), 'illegal');
  assert.equal(verdict([put('x', '1', 0, 10), cas('x', '1', '3', true, 20, 30), get('x', '1', 40, 50)]), 'illegal');
});

test('an unknown-outcome write may explain a later read (it took effect)', () => {
  assert.equal(verdict([unknown({ kind: 'put', key: 'x', value: '1' }, 0), get('x', '1', 10, 20)]), 'ok');
  // Without the unknown write the same read has no explanation.
  assert.equal(verdict([get('x', '1', 10, 20)]), 'illegal');
});

test('an unknown-outcome write may never take effect', () => {
  assert.equal(
    verdict([put('x', '0', 0, 5), unknown({ kind: 'put', key: 'x', value: '1' }, 6), get('x', '0', 10, 20), get('x', '0', 30, 40)]),
    'ok',
  );
});

test('an unknown-outcome write cannot take effect before it was called', () => {
  assert.equal(verdict([get('x', '1', 0, 5), unknown({ kind: 'put', key: 'x', value: '1' }, 10)]), 'illegal');
});

test('an unknown-outcome write takes effect at most once', () => {
  assert.equal(
    verdict([
      put('x', '0', 0, 5),
      unknown({ kind: 'put', key: 'x', value: '1' }, 6),
      get('x', '1', 10, 20),
      get('x', '0', 30, 40),
    ]),
    'illegal',
  );
});

test('an unknown-outcome cas is applied only when its expectation holds', () => {
  assert.equal(
    verdict([unknown({ kind: 'cas', key: 'x', expected: undefined, value: 'a' }, 0), get('x', 'a', 10, 20)]),
    'ok',
  );
  assert.equal(
    verdict([
      put('x', 'z', 0, 5),
      unknown({ kind: 'cas', key: 'x', expected: undefined, value: 'a' }, 6),
      get('x', 'a', 10, 20),
    ]),
    'illegal',
  );
});

test('an unknown-outcome read constrains nothing', () => {
  assert.equal(verdict([put('x', '1', 0, 5), unknown({ kind: 'get', key: 'x' }, 6), put('x', '2', 7, 8)]), 'ok');
});

test('operations that only touch at one instant are treated as concurrent', () => {
  assert.equal(verdict([put('x', '1', 0, 10), get('x', undefined, 10, 20)]), 'ok');
  assert.equal(verdict([put('x', '1', 0, 10), get('x', undefined, 11, 20)]), 'illegal');
});

test('an illegal verdict names the smallest failing partition and the longest prefix', () => {
  const history = [
    // Key "big": three operations, illegal (stale read).
    put('big', '1', 0, 10),
    put('big', '2', 20, 30),
    get('big', '1', 40, 50),
    // Key "small": two operations, illegal (lost write).
    put('small', 'a', 0, 10),
    get('small', undefined, 20, 30),
    // Key "fine": legal.
    put('fine', 'q', 0, 10),
  ];
  const result = checkOperations(kvModel, history);
  assert.equal(result.result, 'illegal');
  assert.equal(result.failure?.partitionKey, 'small');
  assert.equal(result.failure?.ops.length, 2);
  assert.deepEqual(result.failure?.longestLinearizedPrefix, [0]);
  assert.match(result.failure!.text, /get\(small\) -> <absent>/);
});

test('the search stops with unknown when its step budget is spent', () => {
  const history: KvOperation[] = [];
  for (let i = 0; i < 20; i++) history.push(put('x', String(i), 0, 100));
  history.push(get('x', 'never', 0, 100));
  const result = checkOperations(kvModel, history, { searchStepsMax: 50 });
  assert.equal(result.result, 'unknown');
  assert.equal(result.stoppedBy, 'searchStepsMax');
});

test('a return before the call is rejected as a malformed history', () => {
  assert.throws(() => checkOperations(kvModel, [put('x', '1', 10, 5)]), RangeError);
});


/**
 * Builds a history with heavy overlap that is linearizable by construction: operations run against
 * a real map at chosen linearization points, and each gets an interval around its point. Some
 * writes are recorded as unknown-outcome.
 */
function generateLinearizable(seed: number, opCount: number, keyCount: number): KvOperation[] {
  const random = seededRandom(seed);
  const map = new Map<string, string>();
  const history: KvOperation[] = [];
  for (let i = 0; i < opCount; i++) {
    const point = i * 10;
    const call = point - Math.floor(random() * 40);
    const ret = point + Math.floor(random() * 40);
    const key = `k${Math.floor(random() * keyCount)}`;
    const roll = random();
    const value = `v${i}`;
    let input: KvInput;
    let output: KvOutput;
    if (roll < 0.35) {
      input = { kind: 'get', key };
      output = { value: map.get(key) };
    } else if (roll < 0.65) {
      input = { kind: 'put', key, value };
      map.set(key, value);
      output = {};
    } else if (roll < 0.75) {
      input = { kind: 'delete', key };
      map.delete(key);
      output = {};
    } else {
      const expected = random() < 0.5 ? map.get(key) : 'nope';
      input = { kind: 'cas', key, expected, value };
      const ok = map.get(key) === expected;
      if (ok) map.set(key, value);
      output = { ok };
    }
    const isUnknown = input.kind !== 'get' && random() < 0.05;
    history.push({ clientId: i % 8, input, call, output: isUnknown ? undefined : output, return: isUnknown ? Infinity : ret });
  }
  return history;
}

test('a long concurrent history that is linearizable by construction checks ok', () => {
  for (let seed = 1; seed <= 5; seed++) {
    const result = checkOperations(kvModel, generateLinearizable(seed, 2000, 4));
    assert.equal(result.result, 'ok', `seed ${seed}: ${result.failure?.text ?? result.stoppedBy}`);
  }
});

test('corrupting one read of a long history makes it illegal', () => {
  const history = generateLinearizable(7, 1000, 3);
  // Change a read that has a later completed read of the same key to a value never written.
  const index = history.findIndex((o) => o.input.kind === 'get' && o.return !== Infinity);
  history[index] = { ...history[index]!, output: { value: 'corrupt' } };
  const result = checkOperations(kvModel, history);
  assert.equal(result.result, 'illegal');
  assert.ok(result.failure!.ops.includes(history[index]!));
});

test('a long history of one key is checked with memory that does not grow with its length squared', () => {
  // 100,000 operations on one key, pairs overlapping: with a bitset memo key each entry was
  // 12.5 KB (over a gigabyte in all); a 30-minute `lichen check` ran out of memory this way.
  const history: KvOperation[] = [];
  for (let i = 0; i < 50_000; i++) {
    history.push(put('k', String(i), 4 * i, 4 * i + 3), get('k', String(i), 4 * i + 1, 4 * i + 3));
  }
  const result = checkOperations(kvModel, history);
  assert.equal(result.result, 'ok');
});

test('the memo is bounded: past memoEntriesMax the verdict is unknown, and says why', () => {
  const history: KvOperation[] = [];
  for (let i = 0; i < 100; i++) history.push(put('k', String(i), 2 * i, 2 * i + 1));
  const result = checkOperations(kvModel, history, { memoEntriesMax: 10 });
  assert.equal(result.result, 'unknown');
  assert.equal(result.stoppedBy, 'memoEntriesMax');
});
