import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keyString } from './bytes.js';
import { decodeRecord, encodeRecord, encodeTombstone, tombstoneKeyStart } from './layout.js';

test('keyString is the latin-1 string of the bytes, one char per byte, for short and long keys alike', () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (let length = 0; length <= 80; length++) {
    for (const start of [0, 100, 256 - length]) {
      const bytes = all.subarray(Math.max(0, start), Math.max(0, start) + length);
      const text = keyString(bytes);
      assert.equal(text, Buffer.from(bytes).toString('latin1'), `length ${length} from ${start}`);
      assert.equal(text.length, bytes.length);
    }
  }
  // A Buffer and a view into a larger buffer convert the same way.
  const backing = Buffer.from('xxk0001yy', 'latin1');
  assert.equal(keyString(new Uint8Array(backing.buffer, backing.byteOffset + 2, 5)), 'k0001');
  assert.equal(keyString(Buffer.from('k0001', 'latin1')), 'k0001');
});

test('keyString keeps byte order as string order', () => {
  const keys = [[0x00], [0x00, 0x00], [0x01], [0x7f], [0x80], [0xff], [0xff, 0x00]].map((k) => Uint8Array.from(k));
  const sorted = [...keys].sort((a, b) => Buffer.compare(a, b));
  assert.deepEqual(
    keys.map(keyString).sort(),
    sorted.map(keyString),
  );
});

test('a tombstone written from its key string is the record encodeRecord makes, at every key-length varint width', () => {
  for (const length of [0, 1, 127, 128, 300, 16_383, 16_384]) {
    const key = Uint8Array.from({ length }, (_, i) => (i * 37 + length) & 0xff);
    const record = encodeTombstone(keyString(key));
    assert.deepEqual(record, Buffer.from(encodeRecord({ key, value: new Uint8Array(0), createRevision: 0, version: 0, lease: 0, tombstone: true })), `key of ${length} bytes`);
    assert.deepEqual(record.subarray(tombstoneKeyStart(length)), Buffer.from(key));
    assert.equal(decodeRecord(record).tombstone, true);
  }
});
