// What only the lmdb engine has: files that outlive the process, a key size limit, and a write
// transaction that an exception aborts. The shared behaviour is in engine.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLichenError } from '../errors.js';
import { lmdbKeyBytesMax } from '../limits.js';
import { LmdbEngine, MemoryEngine, ScopedEngine, type WriteOp } from './index.js';

const b = (s: string): Uint8Array => Buffer.from(s);
const str = (u: Uint8Array): string => Buffer.from(u).toString();

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-lmdb-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('data written and synced is there after closing and reopening the environment', async (t) => {
  const dir = tempDir(t);
  const engine = LmdbEngine.open({ dir });
  engine.write([
    { type: 'put', key: b('applied'), value: b('42') },
    { type: 'put', key: b('k'), value: b('v') },
  ]);
  await engine.sync();
  await engine.closeAsync();
  const again = LmdbEngine.open({ dir });
  t.after(() => again.closeAsync());
  assert.equal(str(again.get(b('applied'))!), '42');
  assert.equal(str(again.get(b('k'))!), 'v');
});

test('an exception in the middle of a write aborts the whole transaction', async (t) => {
  const engine = LmdbEngine.open({ dir: tempDir(t) });
  t.after(() => engine.closeAsync());
  engine.write([{ type: 'put', key: b('a'), value: b('before') }]);
  const notBytes = { type: 'put', key: b('b'), value: 42 } as unknown as WriteOp;
  assert.throws(() => engine.write([{ type: 'put', key: b('a'), value: b('after') }, notBytes]));
  assert.equal(str(engine.get(b('a'))!), 'before');
  assert.equal(engine.get(b('b')), undefined);
  // The engine still works after an aborted transaction.
  engine.write([{ type: 'put', key: b('c'), value: b('1') }]);
  assert.equal(str(engine.get(b('c'))!), '1');
});

test('keys up to the limit are stored; longer keys are refused as TooLarge', async (t) => {
  const engine = LmdbEngine.open({ dir: tempDir(t) });
  t.after(() => engine.closeAsync());
  const longest = new Uint8Array(lmdbKeyBytesMax).fill(0xab);
  engine.write([{ type: 'put', key: longest, value: b('ok') }]);
  assert.equal(str(engine.get(longest)!), 'ok');
  const tooLong = new Uint8Array(lmdbKeyBytesMax + 1);
  assert.throws(
    () => engine.write([{ type: 'put', key: tooLong, value: b('x') }]),
    (error: unknown) => isLichenError(error, 'TooLarge'),
  );
  assert.equal(engine.get(tooLong), undefined);
});

test('a snapshot used after close is refused', async (t) => {
  const engine = LmdbEngine.open({ dir: tempDir(t) });
  t.after(() => engine.closeAsync());
  const view = engine.snapshot();
  view.close();
  assert.throws(() => view.get(b('a')), /after close/);
});

test('an export abandoned half way releases its read transaction', async (t) => {
  const engine = LmdbEngine.open({ dir: tempDir(t) });
  t.after(() => engine.closeAsync());
  engine.write(Array.from({ length: 50 }, (_, i) => ({ type: 'put' as const, key: b(`k${i}`), value: b('v'.repeat(100)) })));
  for (let round = 0; round < 200; round++) {
    for (const chunk of engine.export(256)) {
      assert.ok(chunk.length > 0);
      break;
    }
  }
  engine.write([{ type: 'put', key: b('after'), value: b('1') }]);
  assert.equal(str(engine.get(b('after'))!), '1');
});

test('syncs asked for while a flush runs share the next flush, which covers the writes before them', async (t) => {
  const engine = LmdbEngine.open({ dir: tempDir(t) });
  t.after(() => engine.closeAsync());
  const db = (engine as unknown as { db: { sync(callback: (error?: unknown) => void): void } }).db;
  const pending: ((error?: unknown) => void)[] = [];
  db.sync = (callback) => void pending.push(callback);
  const first = engine.sync();
  engine.write([{ type: 'put', key: b('a'), value: b('1') }]);
  const during = [engine.sync(), engine.sync(), engine.sync()];
  assert.equal(pending.length, 1, 'one flush at a time');
  pending.shift()!();
  await first;
  await Promise.resolve();
  assert.equal(pending.length, 1, 'the three callers that came during the first flush share one more');
  pending.shift()!(new Error('disk gone'));
  for (const waiting of during) await assert.rejects(waiting, /disk gone/);
  // A failed flush does not wedge the next caller.
  const later = engine.sync();
  assert.equal(pending.length, 1);
  pending.shift()!();
  await later;
});

test("a partition's import goes straight into one LMDB transaction: none of it waits in memory", async (t) => {
  const engine = LmdbEngine.open({ dir: tempDir(t) });
  t.after(() => engine.closeAsync());
  const partition = new ScopedEngine(engine, 7);
  partition.write([{ type: 'put', key: b('old'), value: b('1') }]);
  const source = new MemoryEngine();
  source.write(Array.from({ length: 2_000 }, (_, i) => ({ type: 'put' as const, key: b(`k${i}`), value: b('v'.repeat(100)) })));
  const waiting: number[] = [];
  function* chunks(): Iterable<Uint8Array> {
    for (const chunk of source.export(4096)) {
      waiting.push((engine as unknown as { writes: Map<string, unknown> }).writes.size);
      yield chunk;
    }
  }
  partition.import(chunks());
  assert.ok(waiting.length > 10);
  assert.deepEqual(new Set(waiting), new Set([0]), 'the write waiting before it was committed first, and the import holds nothing');
  assert.equal(partition.get(b('old')), undefined);
  assert.equal([...partition.range({ start: b('') })].length, 2_000);
});
