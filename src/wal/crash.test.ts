// Kills a real writer process (crash-writer.ts) with SIGKILL at random moments and checks, after
// every kill, that nothing it acknowledged was lost: every acknowledged index is in the WAL or in
// the snapshot the WAL names, the log is contiguous, and the engine is never ahead of the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LmdbEngine } from '../engine/lmdb.js';
import { decodeChunk } from '../engine/codec.js';
import { APPLIED_KEY, CRASH_SEGMENT_BYTES, entryKey, entryText } from './crash-writer.js';
import { SnapshotStore, Wal } from './index.js';
import { seededRandom } from '../random.js';

const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const KILLS = 24;
const LINE_WAIT_MS = 15_000;
const SEED = 0x5eed_1234;

/** Reads a child's stdout line by line; next() waits (bounded) for the next line. */
class LineReader {
  private buffered = '';
  private lines: string[] = [];
  private waiter: (() => void) | undefined;
  private ended = false;

  constructor(child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      this.buffered += chunk;
      let newline: number;
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        this.lines.push(this.buffered.slice(0, newline));
        this.buffered = this.buffered.slice(newline + 1);
      }
      this.waiter?.();
    });
    child.stdout!.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  async next(): Promise<string> {
    const deadline = Date.now() + LINE_WAIT_MS;
    while (this.lines.length === 0) {
      if (this.ended) throw new Error('writer exited before printing the expected line');
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no line from the writer within ${LINE_WAIT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.lines.shift()!;
  }
}

interface Verified {
  lastIndex: number;
  snapshotIndex: number;
  applied: number;
}

/** Opens what the killed writer left and checks every durability promise it made. */
async function verify(dir: string, ackedIndex: number): Promise<Verified> {
  const { wal, state } = await Wal.open({ dir: join(dir, 'wal'), segmentBytes: CRASH_SEGMENT_BYTES });
  try {
    const snapshotIndex = state.snapshot?.index ?? 0;
    if (state.snapshot) {
      const snapshot = await new SnapshotStore(join(dir, 'snap')).load(state.snapshot);
      assert.ok(snapshot, `the snapshot ${snapshotIndex} the WAL names is missing`);
      // The snapshot holds the engine as of its index.
      const keys = new Map<string, string>();
      for (const [key, value] of decodeChunk(snapshot.data)) keys.set(Buffer.from(key).toString(), Buffer.from(value).toString());
      assert.equal(keys.get(APPLIED_KEY.toString()), String(snapshotIndex));
      assert.equal(keys.get(entryKey(snapshotIndex).toString()), entryText(snapshotIndex));
    }
    // Contiguous entries right after the snapshot, each with the content that was written.
    state.entries.forEach((entry, i) => {
      assert.equal(entry.index, snapshotIndex + 1 + i, 'the log is contiguous after the snapshot');
      assert.equal(Buffer.from(entry.data).toString(), entryText(entry.index));
      if (i > 0) assert.ok(entry.term >= state.entries[i - 1]!.term, 'terms never go down');
    });
    assert.equal(wal.lastIndex, snapshotIndex + state.entries.length);
    // Every acknowledged index is in the snapshot or the log.
    assert.ok(wal.lastIndex >= ackedIndex, `acknowledged ${ackedIndex} but the WAL ends at ${wal.lastIndex}`);

    const engine = LmdbEngine.open({ dir: join(dir, 'engine') });
    try {
      const appliedBytes = engine.get(APPLIED_KEY);
      const applied = appliedBytes ? Number(Buffer.from(appliedBytes).toString()) : 0;
      assert.ok(applied <= wal.lastIndex, `engine applied ${applied} beyond the WAL's last index ${wal.lastIndex}`);
      assert.ok(applied >= snapshotIndex, `engine applied ${applied} is behind the snapshot ${snapshotIndex}`);
      // The applied index was written with its data: every entry up to it is in the engine.
      for (let index = 1; index <= applied; index++) {
        const value = engine.get(entryKey(index));
        assert.ok(value, `entry ${index} <= applied ${applied} is missing from the engine`);
        assert.equal(Buffer.from(value).toString(), entryText(index));
      }
      return { lastIndex: wal.lastIndex, snapshotIndex, applied };
    } finally {
      await engine.closeAsync();
    }
  } finally {
    await wal.close();
  }
}

test('SIGKILL at random moments never loses an acknowledged entry (real processes)', { timeout: 90_000 }, async (t) => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-crash-'));
  const children = new Set<ChildProcess>();
  t.after(() => {
    for (const child of children) child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const random = seededRandom(SEED);
  let acked = 0;
  let snapshots = 0;
  let repairedRuns = 0;
  let previous: Verified = { lastIndex: 0, snapshotIndex: 0, applied: 0 };

  for (let run = 1; run <= KILLS; run++) {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(run)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const lines = new LineReader(child);
    try {
      const ready = (await lines.next()).split(' ');
      assert.equal(ready[0], 'ready');
      assert.ok(Number(ready[1]) >= acked, `restarted writer has last index ${ready[1]} below acknowledged ${acked}`);
      assert.equal(Number(ready[2]), Number(ready[1]), 'after replay the engine has applied the whole log');
      // Kill after a random number of acknowledgements: sometimes at once, sometimes after dozens.
      const waitAcks = random() < 0.15 ? 0 : 1 + Math.floor(random() * 60);
      for (let i = 0; i < waitAcks; i++) {
        const [word, index] = (await lines.next()).split(' ');
        assert.equal(word, 'ack');
        assert.ok(Number(index) > acked, 'acknowledged indexes increase');
        acked = Number(index);
      }
    } catch (error) {
      child.kill('SIGKILL');
      throw new Error(`run ${run}: ${(error as Error).message}\nwriter stderr:\n${stderr}`);
    }
    child.kill('SIGKILL');
    await exited;
    children.delete(child);

    const verified = await verify(dir, acked);
    if (verified.snapshotIndex > previous.snapshotIndex) snapshots++;
    if (verified.lastIndex > acked) repairedRuns++; // the writer had saved past its last ack line
    assert.ok(verified.snapshotIndex >= previous.snapshotIndex, 'the snapshot marker never moves back');
    previous = verified;
  }
  // The run exercised what it is meant to: many entries, snapshots and released segments.
  assert.ok(acked > KILLS * 10, `only ${acked} entries acknowledged`);
  assert.ok(snapshots >= 3, `only ${snapshots} snapshots were taken`);
  t.diagnostic(`acknowledged ${acked} entries over ${KILLS} kills; ${snapshots} new snapshots; ${repairedRuns} runs ended with unacknowledged saves on disk`);
});
