// What only the leveldb engine has: files that outlive the process (its key directory rebuilt on
// open), writes flushed in the background in order, and a refusal of the other engine's files.
// The shared behaviour is in engine.test.ts; crashes in the middle of writes in src/wal/crash.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelEngine, LmdbEngine, closeEngine, openEngine, type WriteOp } from './index.js';

const b = (s: string): Uint8Array => Buffer.from(s);
const str = (u: Uint8Array): string => Buffer.from(u).toString();
const put = (key: string, value: string): WriteOp => ({ type: 'put', key: b(key), value: b(value) });

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-leveldb-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface HeldBatch {
  ops: unknown[];
  sync: boolean;
  /** Runs the real batch (or fails it with `error`); resolves when it has. */
  release(error?: Error): Promise<void>;
}

/**
 * The engine's LevelDB batch call, replaced: each call waits until the test releases it. When the
 * test ends, the real call is back and whatever is still held runs.
 */
function holdBatches(t: { after: (fn: () => Promise<void>) => void }, engine: LevelEngine): HeldBatch[] {
  const db = (engine as unknown as { db: { batch(ops: unknown[], options: { sync: boolean }): Promise<void> } }).db;
  const real = db.batch.bind(db);
  const held: HeldBatch[] = [];
  db.batch = (ops, options) =>
    new Promise<void>((resolve, reject) => {
      held.push({
        ops: [...ops],
        sync: options.sync,
        release: async (error) => {
          if (error) return reject(error);
          await real(ops, options).then(resolve, reject);
        },
      });
    });
  t.after(async () => {
    db.batch = real;
    for (const call of held) await call.release().catch(() => {});
  });
  return held;
}

/** Lets the engine's handlers of a finished batch run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

test('data written and synced is there after closing and reopening, with its key directory and space', async (t) => {
  const dir = tempDir(t);
  const engine = await LevelEngine.open({ dir });
  engine.write([put('applied', '42'), put('k/1', 'one'), put('k/2', 'two'), put('gone', 'x')]);
  engine.write([{ type: 'del', key: b('gone') }]);
  await engine.sync();
  const space = engine.space();
  await engine.closeAsync();
  const again = await LevelEngine.open({ dir });
  t.after(() => again.closeAsync());
  assert.equal(str(again.get(b('applied'))!), '42');
  assert.equal(again.get(b('gone')), undefined);
  assert.deepEqual([...again.range({ start: b('k/'), end: b('k0') })].map(([k, v]) => `${str(k)}=${str(v)}`), ['k/1=one', 'k/2=two']);
  assert.equal(again.space().inUseBytes, space.inUseBytes);
});

test('closing flushes the writes still queued', async (t) => {
  const dir = tempDir(t);
  const engine = await LevelEngine.open({ dir });
  for (let i = 0; i < 100; i++) engine.write([put(`k${i}`, `v${i}`)]);
  await engine.closeAsync();
  const again = await LevelEngine.open({ dir });
  t.after(() => again.closeAsync());
  assert.equal([...again.range({ start: b('') })].length, 100);
});

test('writes made while a LevelDB batch runs go into the next one, each key once with its last value; reads see them at once', async (t) => {
  const engine = await LevelEngine.open({ dir: tempDir(t) });
  const held = holdBatches(t, engine);
  t.after(() => engine.closeAsync());
  engine.write([put('a', '1')]);
  engine.write([put('a', '2'), put('b', '1')]);
  engine.write([put('a', '3')]);
  assert.equal(held.length, 1, 'one LevelDB batch at a time');
  assert.equal(str(engine.get(b('a'))!), '3');
  assert.deepEqual([...engine.range({ start: b('') })].map(([k, v]) => `${str(k)}=${str(v)}`), ['a=3', 'b=1']);
  const synced = engine.sync();
  await held[0]!.release();
  await settle();
  assert.equal(held.length, 2);
  const text = (bytes: unknown) => Buffer.from(bytes as Uint8Array).toString('latin1');
  const written = (held[1]!.ops as { type: string; key: Uint8Array; value?: Uint8Array }[]).map((op) => `${op.type} ${text(op.key)}=${op.value ? text(op.value) : ''}`);
  assert.deepEqual(written, ['put \x00b=1', 'put \x00a=3', 'put \x01sync='], "the queued writes, each key's last op once, then the sync marker");
  assert.equal(held[1]!.sync, true);
  await held[1]!.release();
  await synced;
  assert.equal(str(engine.get(b('a'))!), '3');
});

test('a failed LevelDB write fails sync and every later write: the process must restart and replay its WAL', async (t) => {
  const engine = await LevelEngine.open({ dir: tempDir(t) });
  const held = holdBatches(t, engine);
  t.after(() => engine.closeAsync());
  engine.write([put('a', '1')]);
  const synced = engine.sync();
  await held[0]!.release(new Error('disk gone'));
  await assert.rejects(synced, /leveldb write failed .*disk gone/);
  assert.throws(() => engine.write([put('b', '1')]), /disk gone/);
  await assert.rejects(engine.sync(), /disk gone/);
});

test('a data directory of the other on-disk engine is refused, not misread', async (t) => {
  const lmdbDir = join(tempDir(t), 'engine');
  const lmdb = LmdbEngine.open({ dir: lmdbDir });
  lmdb.write([put('k', 'v')]);
  await lmdb.closeAsync();
  await assert.rejects(openEngine('leveldb', lmdbDir), /engine directory .* holds a lmdb engine's data, but this process runs --engine leveldb: start it with --engine lmdb/);

  const levelDir = join(tempDir(t), 'engine');
  await closeEngine(await openEngine('leveldb', levelDir));
  await assert.rejects(openEngine('lmdb', levelDir), /holds a leveldb engine's data, but this process runs --engine lmdb: start it with --engine leveldb/);
  // Each still opens with its own engine.
  const reopened = await openEngine('lmdb', lmdbDir);
  t.after(() => closeEngine(reopened));
  assert.equal(str(reopened.get(b('k'))!), 'v');
});
