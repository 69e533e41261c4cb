// The child process of the crash test (crash.test.ts): a miniature node write path that the test
// kills with SIGKILL at random moments.
//
//   node --import tsx src/wal/crash-writer.ts <dir> <term>
//
// On start it opens the WAL, the snapshot store and an lmdb engine in <dir>, applies the WAL
// entries the engine lacks (the engine's applied index is written in the same batch as the data),
// and prints "ready <lastIndex> <appliedIndex>". Then it loops: save a batch of entries (durable
// when save resolves), print "ack <lastIndex>", apply each entry to the engine together with the
// applied index, and every so often take a snapshot, mark it in the WAL and release old segments,
// as the server does. Output goes through fs.writeSync so a line the parent reads was written
// after the save it reports had resolved.
import fs from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Entry } from '../raft/types.js';
import { LmdbEngine } from '../engine/lmdb.js';
import { SnapshotStore, Wal } from './index.js';

export const APPLIED_KEY = Buffer.from('applied');
export const CRASH_SEGMENT_BYTES = 8 * 1024;
const SNAPSHOT_EVERY_ENTRIES = 50;
const BATCH_ENTRIES_MAX = 7;

export const entryKey = (index: number): Buffer => Buffer.from(`entry/${String(index).padStart(10, '0')}`);
export const entryText = (index: number): string => `entry-${index}-` + 'p'.repeat(index % 200);

function say(line: string): void {
  fs.writeSync(1, line + '\n');
}

function readApplied(engine: LmdbEngine): number {
  const value = engine.get(APPLIED_KEY);
  return value ? Number(Buffer.from(value).toString()) : 0;
}

async function main(): Promise<void> {
  const [dir, termArg] = process.argv.slice(2);
  if (!dir || !termArg) throw new Error('usage: crash-writer.ts <dir> <term>');
  const term = Number(termArg);
  const { wal, state } = await Wal.open({ dir: join(dir, 'wal'), segmentBytes: CRASH_SEGMENT_BYTES });
  const engine = LmdbEngine.open({ dir: join(dir, 'engine') });
  const snapshots = new SnapshotStore(join(dir, 'snap'));
  const terms = new Map<number, number>();
  let snapshotIndex = state.snapshot?.index ?? 0;

  const apply = (entry: Entry): void => {
    engine.write([
      { type: 'put', key: entryKey(entry.index), value: entry.data },
      { type: 'put', key: APPLIED_KEY, value: Buffer.from(String(entry.index)) },
    ]);
  };

  let applied = readApplied(engine);
  for (const entry of state.entries) {
    terms.set(entry.index, entry.term);
    if (entry.index > applied) {
      apply(entry);
      applied = entry.index;
    }
  }
  say(`ready ${wal.lastIndex} ${applied}`);

  // Runs until killed; the bound only keeps an orphaned writer from running forever.
  for (let round = 0; round < 1_000_000; round++) {
    const first = wal.lastIndex + 1;
    const count = 1 + (first % BATCH_ENTRIES_MAX);
    const entries: Entry[] = Array.from({ length: count }, (_, i) => ({
      index: first + i,
      term,
      type: 0,
      data: Buffer.from(entryText(first + i)),
    }));
    await wal.save({ hardState: { term, vote: 1, commit: applied }, entries });
    say(`ack ${wal.lastIndex}`);
    for (const entry of entries) {
      terms.set(entry.index, entry.term);
      apply(entry);
      applied = entry.index;
    }
    if (applied - snapshotIndex >= SNAPSHOT_EVERY_ENTRIES) {
      // The order the server follows: engine durable, snapshot file durable, marker, release.
      await engine.sync();
      const data = Buffer.concat([...engine.export()]);
      const metadata = { index: applied, term: terms.get(applied)!, conf: { voters: [1], learners: [] } };
      await snapshots.save({ metadata, data });
      await wal.saveSnapshotMarker(metadata);
      await wal.releaseTo(metadata.index);
      for (const index of terms.keys()) if (index <= metadata.index) terms.delete(index);
      snapshotIndex = metadata.index;
    }
  }
}

// Run only as a script: the test imports the helpers above.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`crash-writer failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
