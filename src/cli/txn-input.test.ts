import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompareResult, CompareTarget } from '../mvcc/types.js';
import { toBytes } from './keys.js';
import { parseCompare, parseOp, parseTxnInput } from './txn-input.js';

const b = toBytes;

test('parses the three sections of etcdctl txn input', () => {
  const input = [
    'mod("key1") > "0"',
    'value("k") = "v w"',
    '',
    'put key1 "overwrote-key1"',
    '',
    'put key1 "created-key1"',
    'get key2',
    '',
  ].join('\n');
  assert.deepEqual(parseTxnInput(input), {
    compare: [
      { target: CompareTarget.MOD, result: CompareResult.GREATER, key: b('key1'), modRevision: 0 },
      { target: CompareTarget.VALUE, result: CompareResult.EQUAL, key: b('k'), value: b('v w') },
    ],
    success: [{ requestPut: { key: b('key1'), value: b('overwrote-key1'), lease: 0n, prevKv: false } }],
    failure: [
      { requestPut: { key: b('key1'), value: b('created-key1'), lease: 0n, prevKv: false } },
      { requestRange: { key: b('key2'), limit: 0, revision: 0, keysOnly: false, countOnly: false } },
    ],
  });
});

test('a leading blank line means no compares; missing sections are empty', () => {
  assert.deepEqual(parseTxnInput('\nput a 1\n'), {
    compare: [],
    success: [{ requestPut: { key: b('a'), value: b('1'), lease: 0n, prevKv: false } }],
    failure: [],
  });
  assert.deepEqual(parseTxnInput(''), { compare: [], success: [], failure: [] });
});

test('every compare target and operator is understood, with quoted or bare numbers', () => {
  assert.deepEqual(parseCompare('ver("a") != 3'), { target: CompareTarget.VERSION, result: CompareResult.NOT_EQUAL, key: b('a'), version: 3 });
  assert.deepEqual(parseCompare('version("a") = "0"'), { target: CompareTarget.VERSION, result: CompareResult.EQUAL, key: b('a'), version: 0 });
  assert.deepEqual(parseCompare('c("a") < "12"'), { target: CompareTarget.CREATE, result: CompareResult.LESS, key: b('a'), createRevision: 12 });
  assert.deepEqual(parseCompare('create("a") > 1'), { target: CompareTarget.CREATE, result: CompareResult.GREATER, key: b('a'), createRevision: 1 });
  assert.deepEqual(parseCompare('m("a") = 5'), { target: CompareTarget.MOD, result: CompareResult.EQUAL, key: b('a'), modRevision: 5 });
  assert.deepEqual(parseCompare('val("a") == "x"'), { target: CompareTarget.VALUE, result: CompareResult.EQUAL, key: b('a'), value: b('x') });
  assert.deepEqual(parseCompare('lease("a") = "1f"'), {
    target: CompareTarget.LEASE,
    result: CompareResult.EQUAL,
    key: b('a'),
    lease: 0x1fn,
  });
  // etcd's lease ids are mostly above 2^53: kept exact.
  assert.equal(parseCompare('lease("a") = "694d7a9b1c2d3e4f"').lease, 0x694d7a9b1c2d3e4fn);
});

test('keys and values may contain quotes, spaces and escapes', () => {
  assert.deepEqual(parseCompare('value("a \\"b\\"") = "say \\"hi\\""'), {
    target: CompareTarget.VALUE,
    result: CompareResult.EQUAL,
    key: b('a "b"'),
    value: b('say "hi"'),
  });
  assert.deepEqual(parseCompare(`value('x y') = bare`), {
    target: CompareTarget.VALUE,
    result: CompareResult.EQUAL,
    key: b('x y'),
    value: b('bare'),
  });
});

test('ops take their flags: get --prefix, put --lease, del --prev-kv', () => {
  assert.deepEqual(parseOp('get foo --prefix --limit 2'), {
    requestRange: { key: b('foo'), rangeEnd: b('fop'), limit: 2, revision: 0, keysOnly: false, countOnly: false },
  });
  assert.deepEqual(parseOp('put k v --lease 1a'), { requestPut: { key: b('k'), value: b('v'), lease: 0x1an, prevKv: false } });
  assert.deepEqual(parseOp('put k v --lease 694d7a9b1c2d3e4f'), { requestPut: { key: b('k'), value: b('v'), lease: 0x694d7a9b1c2d3e4fn, prevKv: false } });
  assert.deepEqual(parseOp('del k --from-key --prev-kv'), {
    requestDeleteRange: { key: b('k'), rangeEnd: new Uint8Array([0]), prevKv: true },
  });
  assert.deepEqual(parseOp('delete k'), { requestDeleteRange: { key: b('k'), prevKv: false } });
});

test('mistakes are reported with the line number and what was expected', () => {
  assert.throws(() => parseTxnInput('mod(key) > 1'), /txn input line 1: not a compare: mod\(key\) > 1/);
  assert.throws(() => parseTxnInput('size("k") > 1'), /line 1: unknown compare target "size"/);
  assert.throws(() => parseTxnInput('mod("k") > x'), /line 1: expected a non-negative integer to compare with, got "x"/);
  assert.throws(() => parseTxnInput('\nput k'), /line 2: expected put <key> <value>, got 1 argument/);
  assert.throws(() => parseTxnInput('\n\nfetch k'), /line 3: unknown txn op "fetch"/);
  assert.throws(() => parseTxnInput('\n\n\nput k v'), /line 4: more than three sections/);
  assert.throws(() => parseTxnInput('\nget k --bogus'), /line 2: unknown flag: --bogus/);
});
