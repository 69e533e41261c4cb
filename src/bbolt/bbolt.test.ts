// The bbolt writer and reader: files written here read back pair for pair and pass bbolt's
// integrity check; the page layout follows bbolt's format (meta checksum, page ids, overflow).
// Compatibility with bbolt itself is tested through etcdctl in src/backup/etcd-compat.test.ts.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoltReader, BoltWriter } from './index.js';
import { BUCKET_LEAF_FLAG, PageFlag, fnv1a64, readMetaPage, writeMetaPage, writePageHeader } from './format.js';

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'lichen-bbolt-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const b = (text: string): Buffer => Buffer.from(text);

type Contents = [bucket: string, pairs: [Buffer, Buffer][]][];

function write(path: string, contents: Contents, pageSize?: number): void {
  const writer = BoltWriter.create(path, { pageSize });
  for (const [name, pairs] of contents) {
    writer.bucket(b(name));
    for (const [key, value] of pairs) writer.put(key, value);
  }
  writer.finish();
}

function read(path: string): Contents {
  const reader = BoltReader.open(path);
  try {
    return [...reader.bucketNames()].map((name) => [
      name.toString(),
      [...reader.bucket(name)!].map((pair) => [Buffer.from(pair.key), Buffer.from(pair.value)] as [Buffer, Buffer]),
    ]);
  } finally {
    reader.close();
  }
}

function keyOf(i: number): Buffer {
  return b(`key-${String(i).padStart(8, '0')}`);
}

describe('bbolt files', () => {
  it('read back pair for pair, in order, across many pages, levels and overflow pages', () => {
    const path = join(dir, 'db');
    const many: [Buffer, Buffer][] = [];
    for (let i = 0; i < 20_000; i++) many.push([keyOf(i), Buffer.alloc(i % 97, i % 251)]);
    // Values of several pages, and one pair per page boundary region.
    const large: [Buffer, Buffer][] = [1, 4095, 4096, 4097, 20_000, 1 << 20].map((size, i) => [keyOf(i), Buffer.alloc(size, i + 1)]);
    const contents: Contents = [
      ['alpha', [[b('only'), b('one')]]],
      ['empty', []],
      ['large', large],
      ['many', many],
    ];
    write(path, contents);
    assert.deepEqual(read(path), contents);
    const reader = BoltReader.open(path);
    try {
      assert.deepEqual(reader.check(), []);
      assert.equal(statSync(path).size, reader.sizeBytes, 'the file is exactly its pages');
      assert.equal(reader.meta.pageSize, 4096);
      assert.equal(reader.bucket(b('absent')), undefined);
    } finally {
      reader.close();
    }
  });

  it('writes a file bbolt accepts: magic, version, checksummed metas on pages 0 and 1, an empty freelist', () => {
    const path = join(dir, 'db');
    write(path, [['b', [[b('k'), b('v')]]]]);
    const file = readFileSync(path);
    assert.equal(file.length, 5 * 4096, 'two metas, the bucket leaf, the root leaf, the freelist');
    const metas = [0, 1].map((i) => readMetaPage(file.subarray(i * 4096, (i + 1) * 4096)));
    for (const [i, meta] of metas.entries()) {
      assert.ok(typeof meta !== 'string', `meta ${i}: ${String(meta)}`);
      assert.deepEqual(meta, { pageSize: 4096, flags: 0, root: 3, freelist: 4, pageCount: 5, txid: i });
      assert.equal(file.readBigUInt64LE(i * 4096), BigInt(i), 'a meta page names itself');
      assert.equal(file.readUInt16LE(i * 4096 + 8), PageFlag.META);
    }
    assert.equal(file.readUInt32LE(16), 0xed0cdaed);
    assert.equal(file.readUInt32LE(20), 2);
    assert.equal(file.readUInt16LE(4 * 4096 + 8), PageFlag.FREELIST);
    assert.equal(file.readUInt16LE(4 * 4096 + 10), 0, 'no free pages');
  });

  it('computes the meta checksum as Go hash/fnv New64a', () => {
    // Go: fnv.New64a() over "" is 0xcbf29ce484222325, over "a" is 0xaf63dc4c8601ec8c.
    assert.equal(fnv1a64(new Uint8Array()), 0xcbf29ce484222325n);
    assert.equal(fnv1a64(b('a')), 0xaf63dc4c8601ec8cn);
  });

  it('uses the other meta when one is damaged, and refuses a file with none', () => {
    const path = join(dir, 'db');
    write(path, [['b', [[b('k'), b('v')]]]]);
    const file = readFileSync(path);
    file[4096 + 60] ^= 0xff; // meta 1's checksum
    writeFileSync(path, file);
    let reader = BoltReader.open(path);
    assert.equal(reader.meta.txid, 0);
    reader.close();
    file[60] ^= 0xff; // meta 0's too
    writeFileSync(path, file);
    assert.throws(() => BoltReader.open(path), /bbolt: not a bbolt file: checksum error/);
    writeFileSync(path, Buffer.alloc(8192));
    assert.throws(() => BoltReader.open(path), /not a bbolt file: invalid database/);
    write(path, [['b', [[b('k'), b('v')]]]]);
    writeFileSync(path, readFileSync(path).subarray(0, 3 * 4096));
    reader = undefined as unknown as BoltReader;
    assert.throws(() => BoltReader.open(path), /shorter than its 5 pages/);
  });

  it('reads inline buckets, as bbolt writes small ones', () => {
    // A root leaf with one bucket whose header has root 0 and carries its leaf page inline.
    const path = join(dir, 'db');
    const pageSize = 4096;
    const inline = Buffer.alloc(16 + 16 + 2);
    writePageHeader(inline, { id: 0, flags: PageFlag.LEAF, count: 1, overflow: 0 });
    inline.writeUInt32LE(0, 16); // flags
    inline.writeUInt32LE(16, 20); // pos: the data follows the one element
    inline.writeUInt32LE(1, 24);
    inline.writeUInt32LE(1, 28);
    inline.write('kv', 32);
    const value = Buffer.concat([Buffer.alloc(16), inline]);
    const file = Buffer.alloc(4 * pageSize);
    const root = file.subarray(2 * pageSize, 3 * pageSize);
    writePageHeader(root, { id: 2, flags: PageFlag.LEAF, count: 1, overflow: 0 });
    root.writeUInt32LE(BUCKET_LEAF_FLAG, 16);
    root.writeUInt32LE(16, 20);
    root.writeUInt32LE(6, 24);
    root.writeUInt32LE(value.length, 28);
    root.write('inline', 32);
    value.copy(root, 38);
    writePageHeader(file.subarray(3 * pageSize), { id: 3, flags: PageFlag.FREELIST, count: 0, overflow: 0 });
    for (const id of [0, 1]) {
      writeMetaPage(file.subarray(id * pageSize, (id + 1) * pageSize), id, { pageSize, flags: 0, root: 2, freelist: 3, pageCount: 4, txid: id });
    }
    writeFileSync(path, file);
    assert.deepEqual(read(path), [['inline', [[b('k'), b('v')]]]]);
    const reader = BoltReader.open(path);
    assert.deepEqual(reader.check(), []);
    reader.close();
  });

  it('check() reports lost and doubly used pages in bbolt words', () => {
    const path = join(dir, 'db');
    write(path, [['b', [[b('k'), b('v')]]]]);
    const file = readFileSync(path);
    // Point the bucket at the root page (page 3) instead of its own leaf (page 2).
    const rootLeaf = file.subarray(3 * 4096, 4 * 4096);
    const valueAt = 3 * 4096 + 16 + rootLeaf.readUInt32LE(20) + rootLeaf.readUInt32LE(24);
    file.writeBigUInt64LE(3n, valueAt);
    writeFileSync(path, file);
    const reader = BoltReader.open(path);
    try {
      const problems = reader.check();
      assert.ok(problems.includes('page 2: unreachable unfreed'), problems.join('; '));
      assert.ok(problems.includes('page 3: multiple references'), problems.join('; '));
    } finally {
      reader.close();
    }
  });

  it('refuses keys out of order, empty keys and buckets out of order', () => {
    const writer = BoltWriter.create(join(dir, 'db'));
    try {
      writer.bucket(b('m'));
      writer.put(b('b'), b(''));
      assert.throws(() => writer.put(b('a'), b('')), /strictly ascending order/);
      assert.throws(() => writer.put(b(''), b('')), /a key must not be empty/);
      assert.throws(() => writer.bucket(b('a')), /ascending name order/);
    } finally {
      writer.close();
    }
  });

  it('writes other page sizes', () => {
    const path = join(dir, 'db');
    const pairs: [Buffer, Buffer][] = [];
    for (let i = 0; i < 3000; i++) pairs.push([keyOf(i), Buffer.alloc(50, 7)]);
    write(path, [['b', pairs]], 16384);
    assert.deepEqual(read(path), [['b', pairs]]);
    const reader = BoltReader.open(path);
    assert.equal(reader.meta.pageSize, 16384);
    assert.deepEqual(reader.check(), []);
    reader.close();
  });
});
