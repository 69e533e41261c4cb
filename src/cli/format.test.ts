import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventType, type KeyValue } from '../mvcc/types.js';
import type { Exact } from './client-port.js';
import {
  formatBoxTable,
  formatBytes,
  formatDelete,
  formatEvent,
  formatJson,
  formatLeaseList,
  formatLeaseTimeToLive,
  formatMembers,
  formatPut,
  formatRange,
  formatStatusTable,
  formatTxn,
  linesToBuffer,
  type Line,
} from './format.js';
import { prefixRangeEnd as prefixEnd } from '../mvcc/key-range.js';
import { keyRange, parseHexId, toBytes } from './keys.js';

function kv(key: string, value: string, modRevision = 2): Exact<KeyValue> {
  return { key: toBytes(key), value: toBytes(value), createRevision: 2, modRevision, version: 1, lease: 0n };
}

function text(lines: Line[]): string {
  return linesToBuffer(lines).toString('utf8');
}

test('get prints each key then its value, like etcdctl simple output', () => {
  const response = { kvs: [kv('a', '1'), kv('b', 'two words')], more: false, count: 2 };
  assert.equal(text(formatRange(response, {})), 'a\n1\nb\ntwo words\n');
  assert.equal(text(formatRange(response, { keysOnly: true })), 'a\nb\n');
  assert.equal(text(formatRange({ kvs: [], more: false, count: 7 }, { countOnly: true })), '7\n');
  assert.equal(text(formatRange({ kvs: [], more: false, count: 0 }, {})), '');
});

test('values are written as raw bytes so binary data survives', () => {
  const binary = { ...kv('k', ''), value: new Uint8Array([0, 255, 10]) };
  const out = linesToBuffer(formatRange({ kvs: [binary], more: false, count: 1 }, {}));
  assert.deepEqual([...out], [107, 10, 0, 255, 10, 10]);
});

test('put prints OK, then the previous pair when asked', () => {
  assert.equal(text(formatPut({})), 'OK\n');
  assert.equal(text(formatPut({ prevKv: kv('a', 'old') })), 'OK\na\nold\n');
});

test('del prints the count, then the deleted pairs when asked', () => {
  assert.equal(text(formatDelete({ deleted: 2, prevKvs: [] })), '2\n');
  assert.equal(text(formatDelete({ deleted: 1, prevKvs: [kv('a', '1')] })), '1\na\n1\n');
});

test('watch events print the type, the previous pair if any, then the pair', () => {
  assert.equal(text(formatEvent({ type: EventType.PUT, kv: kv('a', '2'), prevKv: kv('a', '1') })), 'PUT\na\n1\na\n2\n');
  assert.equal(text(formatEvent({ type: EventType.DELETE, kv: kv('a', '') })), 'DELETE\na\n\n');
});

test('txn prints SUCCESS or FAILURE, then each op result after a blank line', () => {
  const response = {
    succeeded: true,
    responses: [
      { responsePut: {} },
      { responseRange: { kvs: [kv('k', 'v')], more: false, count: 1 } },
      { responseDeleteRange: { deleted: 1, prevKvs: [] } },
    ],
  };
  assert.equal(text(formatTxn(response)), 'SUCCESS\n\nOK\n\nk\nv\n\n1\n');
  assert.equal(text(formatTxn({ succeeded: false, responses: [] })), 'FAILURE\n');
});

test('leases print with hex ids as etcdctl does', () => {
  assert.equal(text(formatLeaseList([0x1d77aa9e3826n, 1n])), 'found 2 leases\n00001d77aa9e3826\n0000000000000001\n');
  assert.equal(
    text(formatLeaseTimeToLive({ ID: 255n, TTL: 8, grantedTTL: 10, keys: [toBytes('a'), toBytes('b')] }, true)),
    'lease 00000000000000ff granted with TTL(10s), remaining(8s), attached keys([a, b])\n',
  );
  assert.equal(text(formatLeaseTimeToLive({ ID: 255n, TTL: -1, grantedTTL: 0, keys: [] }, false)), 'lease 00000000000000ff already expired\n');
});

test('member list prints id, status, name, peer URLs, client URLs and learner flag', () => {
  const members = [
    { id: 0xabcn, name: 'node1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: false },
    { id: 0xdefn, name: '', peerURLs: ['http://127.0.0.1:2390'], clientURLs: [], isLearner: true },
  ];
  assert.equal(
    text(formatMembers(members)),
    '0000000000000abc, started, node1, http://127.0.0.1:2380, http://127.0.0.1:2379, false\n' +
      '0000000000000def, unstarted, , http://127.0.0.1:2390, , true\n',
  );
});

test('status prints an aligned table with one row per endpoint, errors included', () => {
  const header = { clusterId: 1n, memberId: 0xan, revision: 42, raftTerm: 3 };
  const status = { version: '3.5.0', dbSize: 20_480, leader: 0xan, raftIndex: 9, raftTerm: 3, raftAppliedIndex: 9, isLearner: false, errors: [] };
  const lines = formatStatusTable([
    { endpoint: '127.0.0.1:2379', status: { ...status, header } },
    { endpoint: '127.0.0.1:2389', error: 'connection refused' },
  ]);
  assert.deepEqual(lines, [
    'ENDPOINT        ID                LEADER            IS LEADER  TERM  RAFT INDEX  APPLIED  REVISION  DB SIZE  ERRORS',
    '127.0.0.1:2379  000000000000000a  000000000000000a  true       3     9           9        42        20 kB',
    '127.0.0.1:2389  -                 -                 -          -     -           -        -         -        connection refused',
  ]);
});

test('sizes print in decimal units, rounded as go-humanize (etcdctl) rounds them', () => {
  assert.equal(formatBytes(5), '5 B');
  assert.equal(formatBytes(999), '999 B');
  assert.equal(formatBytes(1500), '1.5 kB');
  assert.equal(formatBytes(25_000_000), '25 MB');
  assert.equal(formatBytes(20480), '20 kB', 'etcdctl snapshot status of a 20480-byte file');
  assert.equal(formatBytes(20_500), '20 kB', "Go's %.0f rounds 20.5 to the even 20");
  assert.equal(formatBytes(21_500), '22 kB');
  assert.equal(formatBytes(9_960), '10 kB', '9.96 rounds to 10.0, which is printed without a decimal');
  assert.equal(formatBytes(9_940), '9.9 kB');
});

test('boxed tables look like etcdctl -w table', () => {
  // etcdctl snapshot status -w table, 3.4.23.
  assert.deepEqual(formatBoxTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [['2e8d6acb', '7', '13', '20 kB']]), [
    '+----------+----------+------------+------------+',
    '|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |',
    '+----------+----------+------------+------------+',
    '| 2e8d6acb |        7 |         13 |      20 kB |',
    '+----------+----------+------------+------------+',
  ]);
});

test('json output encodes bytes as base64 and keeps every field', () => {
  const [line] = formatJson({ kvs: [kv('a', 'hi')], count: 1, big: 10n, gone: undefined, list: [1n, 'x'] });
  assert.deepEqual(JSON.parse(line as string), {
    kvs: [{ key: 'YQ==', value: 'aGk=', createRevision: 2, modRevision: 2, version: 1, lease: 0 }],
    count: 1,
    big: 10,
    list: [1, 'x'],
  });
});

test('json output writes 64-bit ids as exact bare numbers, as etcdctl does', () => {
  // etcd's lease and member ids are mostly above 2^53, where a JSON number read as a double rounds.
  assert.deepEqual(formatJson({ ID: 0x694d7a9b1c2d3e4fn, member_id: 0xf4697c3a9c3d6e5dn }), ['{"ID":7587855753800400463,"member_id":17611744408980254301}']);
});

test('key ranges follow the etcd conventions for prefixes and from-key', () => {
  assert.deepEqual(prefixEnd(toBytes('abc')), toBytes('abd'));
  assert.deepEqual(prefixEnd(new Uint8Array([0x61, 0xff])), toBytes('b'));
  assert.deepEqual(prefixEnd(new Uint8Array([0xff, 0xff])), new Uint8Array([0]));
  assert.deepEqual(keyRange('', { prefix: true }), { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
  assert.deepEqual(keyRange('k', { fromKey: true }), { key: toBytes('k'), rangeEnd: new Uint8Array([0]) });
  assert.deepEqual(keyRange('k', {}), { key: toBytes('k') });
  assert.throws(() => keyRange('k', { prefix: true, fromKey: true }), /cannot be used together/);
});

test('ids parse as hex with an optional 0x, exactly up to 64 bits, and refuse anything else', () => {
  assert.equal(parseHexId('ff', 'lease id'), 255n);
  assert.equal(parseHexId('0x1F', 'lease id'), 31n);
  // etcd's lease ids are int64 and its member ids uint64, mostly above 2^53.
  assert.equal(parseHexId('694d7a9b1c2d3e4f', 'lease id'), 0x694d7a9b1c2d3e4fn);
  assert.equal(parseHexId('ffffffffffffffff', 'member id'), 2n ** 64n - 1n);
  assert.throws(() => parseHexId('xyz', 'lease id'), /invalid lease id: "xyz" \(expected a hexadecimal id/);
  assert.throws(() => parseHexId('1ffffffffffffffff', 'member id'), /invalid member id: "1ffffffffffffffff" \(expected a hexadecimal id of at most 16 digits/);
});
