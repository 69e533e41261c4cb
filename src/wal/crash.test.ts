// Kills a real writer process (crash-writer.ts: several raft groups over one shared WAL and one
// engine) with SIGKILL at random moments and checks, after every kill, that nothing it
// acknowledged was lost, for every group: every acknowledged index is in the group's log or in the
// snapshot the WAL names for it, the log is contiguous, and the group's engine partition is never
// ahead of its log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScopedEngine, closeEngine, openEngine } from '../engine/index.js';
import { CRASH_GROUPS, CRASH_SEGMENT_BYTES, entryKey, entryText, readApplied, snapshotDir, snapshotReference } from './crash-writer.js';
import { SharedWal, SnapshotStore } from './index.js';
import { seededRandom } from '../random.js';

const WRITER = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Kills per engine: the lmdb run is the long one; the leveldb run checks the same promises over fewer kills. */
const KILLS = { lmdb: 24, leveldb: 12 };
type CrashEngine = keyof typeof KILLS;
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

/** Opens what the killed writer left and checks every durability promise it made, group by group. */
async function verify(dir: string, kind: CrashEngine, acked: number[]): Promise<Verified[]> {
  const wal = await SharedWal.open({ dir: join(dir, 'wal'), segmentBytes: CRASH_SEGMENT_BYTES });
  const engine = await openEngine(kind, join(dir, 'engine'));
  try {
    const verified: Verified[] = [];
    for (const [i, group] of CRASH_GROUPS.entries()) {
      const { recovered } = wal.attach(group);
      const snapshotIndex = recovered.snapshot?.index ?? 0;
      if (recovered.snapshot) {
        const snapshot = await new SnapshotStore(snapshotDir(dir, group)).load(recovered.snapshot);
        assert.ok(snapshot, `group ${group}: the snapshot ${snapshotIndex} the WAL names is missing`);
        // The snapshot names the engine's state, which must hold its index (checked below).
        assert.equal(Buffer.from(snapshot.data).toString(), snapshotReference(snapshotIndex).toString());
      }
      // Contiguous entries right after the snapshot, each with the content that was written.
      recovered.entries.forEach((entry, at) => {
        assert.equal(entry.index, snapshotIndex + 1 + at, `group ${group}: the log is contiguous after the snapshot`);
        assert.equal(Buffer.from(entry.data).toString(), entryText(group, entry.index));
        if (at > 0) assert.ok(entry.term >= recovered.entries[at - 1]!.term, 'terms never go down');
      });
      const lastIndex = snapshotIndex + recovered.entries.length;
      // Every acknowledged index is in the snapshot or the log.
      assert.ok(lastIndex >= acked[i]!, `group ${group}: acknowledged ${acked[i]} but its log ends at ${lastIndex}`);
      const partition = new ScopedEngine(engine, group);
      const applied = readApplied(partition);
      assert.ok(applied <= lastIndex, `group ${group}: applied ${applied} beyond its last index ${lastIndex}`);
      assert.ok(applied >= snapshotIndex, `group ${group}: applied ${applied} is behind its snapshot ${snapshotIndex}`);
      // The applied index was written with its data: every entry up to it is in the partition.
      for (let index = 1; index <= applied; index++) {
        const value = partition.get(entryKey(index));
        assert.ok(value, `group ${group}: entry ${index} <= applied ${applied} is missing from the engine`);
        assert.equal(Buffer.from(value).toString(), entryText(group, index));
      }
      verified.push({ lastIndex, snapshotIndex, applied });
    }
    return verified;
  } finally {
    await wal.close();
    await closeEngine(engine);
  }
}

for (const kind of ['lmdb', 'leveldb'] as const) {
  test(`SIGKILL at random moments never loses an acknowledged entry (real processes, ${kind} engine)`, { timeout: 180_000 }, async (t) => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'lichen-crash-'));
    const children = new Set<ChildProcess>();
    t.after(() => {
      for (const child of children) child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const random = seededRandom(SEED);
    let acked = CRASH_GROUPS.map(() => 0);
    let snapshots = 0;
    let repairedRuns = 0;
    let previous: Verified[] = CRASH_GROUPS.map(() => ({ lastIndex: 0, snapshotIndex: 0, applied: 0 }));
    const lowestSegments: string[] = [];

    for (let run = 1; run <= KILLS[kind]; run++) {
      const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(run), kind], {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const lines = new LineReader(child);
      try {
        const [word, ...groups] = (await lines.next()).split(' ');
        assert.equal(word, 'ready');
        groups.forEach((group, i) => {
          const [lastIndex, applied] = group.split(':').map(Number);
          assert.ok(lastIndex! >= acked[i]!, `restarted writer has last index ${lastIndex} below acknowledged ${acked[i]} in group ${CRASH_GROUPS[i]}`);
          assert.equal(applied, lastIndex, 'after replay the engine has applied the whole log');
        });
        // Kill after a random number of acknowledgements: sometimes at once, sometimes after dozens.
        const waitAcks = random() < 0.15 ? 0 : 1 + Math.floor(random() * 60);
        for (let i = 0; i < waitAcks; i++) {
          const [word, ...indexes] = (await lines.next()).split(' ');
          assert.equal(word, 'ack');
          const next = indexes.map(Number);
          assert.ok(next.every((index, g) => index >= acked[g]!) && next.some((index, g) => index > acked[g]!), 'acknowledged indexes increase');
          acked = next;
        }
      } catch (error) {
        child.kill('SIGKILL');
        throw new Error(`run ${run}: ${(error as Error).message}\nwriter stderr:\n${stderr}`);
      }
      child.kill('SIGKILL');
      await exited;
      children.delete(child);

      const verified = await verify(dir, kind, acked);
      verified.forEach((group, i) => {
        if (group.snapshotIndex > previous[i]!.snapshotIndex) snapshots++;
        if (group.lastIndex > acked[i]!) repairedRuns++; // the writer had saved past its last ack line
        assert.ok(group.snapshotIndex >= previous[i]!.snapshotIndex, 'the snapshot marker never moves back');
      });
      previous = verified;
      lowestSegments.push(fs.readdirSync(join(dir, 'wal')).sort()[0]!);
    }
    // The run exercised what it is meant to: many entries, snapshots and released segments, also
    // while the lagging group's entries sat in the oldest one.
    const total = acked.reduce((sum, index) => sum + index, 0);
    assert.ok(total > KILLS[kind] * 10, `only ${total} entries acknowledged`);
    assert.ok(snapshots >= 3, `only ${snapshots} snapshots were taken`);
    assert.notEqual(lowestSegments.at(-1), '0000000000000001.wal', 'the lagging group does not pin the first segment');
    t.diagnostic(`acknowledged ${acked.join('/')} entries over ${KILLS[kind]} kills; ${snapshots} new snapshots; ${repairedRuns} group logs ended with unacknowledged saves on disk; oldest segment at the end ${lowestSegments.at(-1)}`);
  });
}
