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
  const writer = engine as unknown as { writeBatch(ops: unknown[], sync: boolean): Promise<void> };
  const real = writer.writeBatch.bind(engine);
  const held: HeldBatch[] = [];
  writer.writeBatch = (ops, sync) =>
    new Promise<void>((resolve, reject) => {
      held.push({
        ops: [...ops],
        sync,
        release: async (error) => {
          if (error) return reject(error);
          await real(ops, sync).then(resolve, reject);
        },
      });
    });
  t.after(async () => {
    writer.writeBatch = real;
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

test('writes wait for a commit; those made while a LevelDB batch runs go into the next one, each key once with its last value; reads see them at once', async (t) => {
  const engine = await LevelEngine.open({ dir: tempDir(t) });
  const held = holdBatches(t, engine);
  t.after(() => engine.closeAsync());
  engine.write([put('a', '1')]);
  assert.equal(held.length, 0, 'kept until a commit');
  engine.commit();
  assert.equal(held.length, 1);
  engine.write([put('a', '2'), put('b', '1')]);
  engine.write([put('a', '3')]);
  engine.commit();
  assert.equal(held.length, 1, 'one LevelDB batch at a time');
  assert.equal(engine.uncommittedOps, 3, 'the commit waits for the batch running');
  assert.equal(str(engine.get(b('a'))!), '3');
  assert.deepEqual([...engine.range({ start: b('') })].map(([k, v]) => `${str(k)}=${str(v)}`), ['a=3', 'b=1']);
  const synced = engine.sync();
  await held[0]!.release();
  await settle();
  assert.equal(held.length, 2);
  assert.equal(engine.uncommittedOps, 0);
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

test('space() measures the files in the background: not on every call, again after 1 MiB written or 100 calls', async (t) => {
  const dir = tempDir(t);
  const engine = await LevelEngine.open({ dir });
  t.after(() => engine.closeAsync());
  const measuredAtOpen = engine.space().sizeBytes;
  // A file that appears in the directory is not seen by the next calls (they stat nothing)...
  fs.writeFileSync(join(dir, 'extra'), Buffer.alloc(3 << 20));
  for (let i = 0; i < 10; i++) assert.equal(engine.space().sizeBytes, measuredAtOpen);
  // ...but by the measurement that starts after 100 calls.
  for (let i = 0; i < 90; i++) engine.space();
  await until(() => engine.space().sizeBytes >= measuredAtOpen + (3 << 20));
  // What is handed to LevelDB counts at once, and 1 MiB of it starts a new measurement.
  await until(() => !(engine as unknown as { measuring: boolean }).measuring);
  const withExtra = engine.space().sizeBytes;
  fs.rmSync(join(dir, 'extra'));
  engine.write([put('big', 'x'.repeat(1 << 20))]);
  await engine.sync();
  assert.ok(engine.space().sizeBytes >= withExtra + (1 << 20), 'the write counts before the files are measured');
  await until(() => engine.space().sizeBytes < withExtra, 'a measurement without the removed file');
});

/** Waits (bounded, turn by turn) until `done()`: the engine's measurement runs on libuv's threads. */
async function until(done: () => boolean, what = 'the background measurement'): Promise<void> {
  for (let turn = 0; turn < 10_000 && !done(); turn++) await settle();
  assert.ok(done(), `${what} did not happen`);
}

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
