import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordCache, type RecordCachePart } from './record-cache.js';

const SLAB_BYTES = 256 * 1024;

const record = (n: number, bytes = 100): Uint8Array => new Uint8Array(bytes).fill(n % 256);

/** The cached record of (main, sub) as a copy, or undefined. */
function cached(part: RecordCachePart, main: number, sub = 0): Uint8Array | undefined {
  return part.lookup(main, sub) ? Uint8Array.from(part.bytes.subarray(part.start, part.end)) : undefined;
}

describe('RecordCache', () => {
  it('gives back the bytes a record was added with, by revision, copied (the caller may reuse its buffer)', () => {
    const part = new RecordCache(SLAB_BYTES * 4).part();
    const buffer = record(1);
    assert.ok(part.add(5, 0, buffer) > 0);
    buffer.fill(9);
    assert.ok(part.add(5, 1, record(2, 30)) > 0);
    assert.deepEqual(cached(part, 5, 0), record(1));
    assert.deepEqual(cached(part, 5, 1), record(2, 30));
    assert.equal(cached(part, 6, 0), undefined);
    assert.equal(cached(part, 5, 2), undefined);
  });

  it('keeps the parts of one cache apart: the same revision in two stores is two records', () => {
    const cache = new RecordCache(SLAB_BYTES * 4);
    const one = cache.part();
    const two = cache.part();
    one.add(7, 0, record(1));
    two.add(7, 0, record(2));
    assert.deepEqual(cached(one, 7), record(1));
    assert.deepEqual(cached(two, 7), record(2));
  });

  it('stays within its budget: the oldest records go first, and nothing dropped is found', () => {
    const cache = new RecordCache(SLAB_BYTES * 3);
    const part = cache.part();
    const count = 5_000; // about 820 KB of records: more than three slabs
    for (let main = 1; main <= count; main++) {
      part.add(main, 0, record(main, 100));
      assert.ok(cache.chargedBytes <= cache.bytesMax);
    }
    assert.equal(cached(part, 1), undefined, 'the first records were dropped');
    assert.deepEqual(cached(part, count), record(count));
    let found = 0;
    for (let main = 1; main <= count; main++) {
      const bytes = cached(part, main);
      if (bytes === undefined) continue;
      assert.deepEqual(bytes, record(main), `record ${main}`);
      found++;
    }
    assert.equal(found, part.size, 'every entry left points at its own record');
    assert.ok(found > 2_000 && found < count, `${found} records kept`);
  });

  it('charges each entry for its map slot: many tiny records do not grow the map past the budget', () => {
    const cache = new RecordCache(SLAB_BYTES * 2);
    const part = cache.part();
    for (let main = 1; main <= 50_000; main++) part.add(main, 0, record(main, 1));
    // Each costs 1 + 4 + 64 bytes of a 256 KiB slab's share; two slabs at most.
    assert.ok(part.size <= Math.ceil((2 * SLAB_BYTES) / 69) + 2, `${part.size} entries`);
  });

  it('does not keep records too large for it, nor sub revisions past its key range, nor anything in a zero budget', () => {
    const part = new RecordCache(SLAB_BYTES * 4).part();
    assert.equal(part.add(1, 0, new Uint8Array(SLAB_BYTES / 8 + 1)), 0);
    assert.equal(part.add(2, 1024, record(2)), 0);
    assert.equal(cached(part, 1), undefined);
    assert.equal(cached(part, 2, 1024), undefined);
    const none = new RecordCache(0).part();
    assert.equal(none.add(1, 0, record(1)), 0);
    assert.equal(cached(none, 1), undefined);
  });

  it('clear() forgets a part, and a record added again after it outlives the slab of the old one', () => {
    const cache = new RecordCache(SLAB_BYTES * 2);
    const part = cache.part();
    const other = cache.part();
    part.add(1, 0, record(1));
    part.clear();
    assert.equal(cached(part, 1), undefined);
    // Fill past the first slab so it is dropped later, with record 1 re-added in a newer slab.
    for (let main = 2; main < 3_000; main++) other.add(main, 0, record(main, 100));
    part.add(1, 0, record(42));
    for (let main = 3_000; main < 3_400; main++) other.add(main, 0, record(main, 100));
    assert.deepEqual(cached(part, 1), record(42));
  });
});
