import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAppend, digestList } from './append.js';
import type { HistoryOp, OpStatus } from './history.js';

let nextId = 0;
function append(key: string, element: string, before: string[], status: OpStatus, invokeMs: number, completeMs: number): HistoryOp {
  return {
    id: nextId++, workload: 'append', process: nextId, worker: 0, node: 'n1', f: 'append', key,
    input: { element }, invokeMs, completeMs, status,
    output: status === 'ok' ? { before: digestList(before), after: digestList([...before, element]) } : undefined,
    error: status === 'fail' ? 'conflict' : undefined,
  };
}
function read(key: string, list: string[], invokeMs: number, completeMs: number): HistoryOp {
  return {
    id: nextId++, workload: 'append', process: nextId, worker: 0, node: 'n2', f: 'read', key,
    input: {}, invokeMs, completeMs, status: 'ok', output: { list: digestList(list) }, error: undefined,
  };
}
const kinds = (ops: HistoryOp[], final: Record<string, string[]>) =>
  checkAppend(ops, new Map(Object.entries(final))).anomalies.map((a) => a.kind).sort();

test('a history whose observations are prefixes of the final lists is valid', () => {
  const ops = [
    append('k', 'a', [], 'ok', 0, 10),
    append('k', 'b', ['a'], 'ok', 11, 20),
    read('k', ['a', 'b'], 21, 25),
    append('k', 'c', ['a', 'b'], 'unknown', 30, Infinity),
  ];
  const result = checkAppend(ops, new Map([['k', ['a', 'b', 'c']]]));
  assert.equal(result.result, 'valid');
  assert.equal(result.details.unknownAppendsApplied, 1);
});

test('an acknowledged append missing from the final list is a lost append', () => {
  const ops = [append('k', 'a', [], 'ok', 0, 10), append('k', 'b', ['a'], 'ok', 11, 20)];
  assert.deepEqual(kinds(ops, { k: ['a'] }), ['lost-append']);
});

test('an element twice in the final list is a duplicate', () => {
  const ops = [append('k', 'a', [], 'ok', 0, 10)];
  assert.deepEqual(kinds(ops, { k: ['a', 'a'] }), ['duplicate-append']);
});

test('an observed list that is not a prefix of the final list is an order violation', () => {
  const ops = [append('k', 'a', [], 'ok', 0, 10), append('k', 'b', [], 'ok', 0, 10), read('k', ['b'], 12, 13)];
  assert.ok(kinds(ops, { k: ['a', 'b'] }).includes('order-violation'));
});

test('a read that misses an append acknowledged before it began is stale', () => {
  const ops = [append('k', 'a', [], 'ok', 0, 10), read('k', [], 20, 21)];
  assert.deepEqual(kinds(ops, { k: ['a'] }), ['stale-read']);
});

test('a read concurrent with an append may miss it', () => {
  const ops = [append('k', 'a', [], 'ok', 0, 10), read('k', [], 5, 21)];
  assert.deepEqual(kinds(ops, { k: ['a'] }), []);
});

test('a failed append that shows up in the final list, and elements nobody appended, are reported', () => {
  const ops = [append('k', 'a', [], 'fail', 0, 10)];
  assert.deepEqual(kinds(ops, { k: ['a', 'zz'] }), ['failed-append-applied', 'phantom-element']);
});

test('list digests tell a prefix of the final list from a list with the same length but other contents', () => {
  assert.deepEqual(digestList(['a', 'b']), digestList(['a', 'b']));
  assert.notEqual(digestList(['a', 'b']).hash, digestList(['b', 'a']).hash);
  assert.notEqual(digestList(['ab']).hash, digestList(['a', 'b']).hash);
});
