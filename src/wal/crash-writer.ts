// The child process of the crash test (crash.test.ts): a miniature write path of a process hosting
// several raft groups, which the test kills with SIGKILL at random moments.
//
//   node --import tsx src/wal/crash-writer.ts <dir> <term> <engine: lmdb|leveldb>
//
// On start it opens the shared WAL, one engine with a partition per group, and each group's
// snapshot store in <dir>; applies to each partition the WAL entries it lacks (a partition's
// applied index is written in the same batch as the data); and prints "ready" followed by
// "<lastIndex>:<applied>" per group. Then it loops: each group saves a batch of entries, all in
// the same turn (one write, one fdatasync), and once they are durable it prints "ack" followed by
// each group's last index; applies them (each group's in one engine batch); commits the engine
// every few rounds; and every so often takes a group's snapshot, marks it in the WAL and releases
// the group's entries, as the server does. The last group saves one round in
// LAGGING_EVERY_ROUNDS, so its entries sit in old segments that other groups have released (the
// shared WAL rewrites them). Output goes through fs.writeSync so a line the parent reads was
// written after the saves it reports had resolved.
import fs from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Entry } from '../raft/types.js';
import { ScopedEngine, openEngine, type Engine } from '../engine/index.js';
import { SharedWal, SnapshotStore, type GroupLog } from './index.js';

export const APPLIED_KEY = Buffer.from('applied');
export const CRASH_SEGMENT_BYTES = 8 * 1024;
export const CRASH_GROUPS = [1, 2, 3];
const LAGGING_EVERY_ROUNDS = 10;
const SNAPSHOT_EVERY_ENTRIES = 50;
const BATCH_ENTRIES_MAX = 7;
const COMMIT_EVERY_ROUNDS = 3;

export const entryKey = (index: number): Buffer => Buffer.from(`entry/${String(index).padStart(10, '0')}`);
export const entryText = (group: number, index: number): string => `entry-${group}-${index}-` + 'p'.repeat(index % 200);
export const snapshotDir = (dir: string, group: number): string => join(dir, 'snap', String(group));
/** What a snapshot file of the writer holds: the index the engine held durably when it was taken. */
export const snapshotReference = (index: number): Buffer => Buffer.from(`engine holds ${index}`);

function say(line: string): void {
  fs.writeSync(1, line + '\n');
}

export function readApplied(engine: Engine): number {
  const value = engine.get(APPLIED_KEY);
  return value ? Number(Buffer.from(value).toString()) : 0;
}

interface Group {
  id: number;
  log: GroupLog;
  engine: ScopedEngine;
  snapshots: SnapshotStore;
  terms: Map<number, number>;
  lastIndex: number;
  applied: number;
  snapshotIndex: number;
}

function apply(group: Group, entry: Entry): void {
  group.engine.write([
    { type: 'put', key: entryKey(entry.index), value: entry.data },
    { type: 'put', key: APPLIED_KEY, value: Buffer.from(String(entry.index)) },
  ]);
  group.applied = entry.index;
}

async function main(): Promise<void> {
  const [dir, termArg, kind] = process.argv.slice(2);
  if (!dir || !termArg || (kind !== 'lmdb' && kind !== 'leveldb')) throw new Error('usage: crash-writer.ts <dir> <term> <lmdb|leveldb>');
  const term = Number(termArg);
  const wal = await SharedWal.open({ dir: join(dir, 'wal'), segmentBytes: CRASH_SEGMENT_BYTES });
  const engine = await openEngine(kind, join(dir, 'engine'));
  const groups: Group[] = CRASH_GROUPS.map((id) => {
    const { log, recovered } = wal.attach(id);
    const scoped = new ScopedEngine(engine, id);
    const group: Group = {
      id,
      log,
      engine: scoped,
      snapshots: new SnapshotStore(snapshotDir(dir, id)),
      terms: new Map(),
      lastIndex: recovered.entries[recovered.entries.length - 1]?.index ?? recovered.snapshot?.index ?? 0,
      applied: readApplied(scoped),
      snapshotIndex: recovered.snapshot?.index ?? 0,
    };
    for (const entry of recovered.entries) {
      group.terms.set(entry.index, entry.term);
      if (entry.index > group.applied) apply(group, entry);
    }
    return group;
  });
  say(`ready ${groups.map((g) => `${g.lastIndex}:${g.applied}`).join(' ')}`);

  // Runs until killed; the bound only keeps an orphaned writer from running forever.
  for (let round = 0; round < 1_000_000; round++) {
    const active = groups.filter((_group, i) => i < groups.length - 1 || round % LAGGING_EVERY_ROUNDS === 0);
    const batches = active.map((group) => {
      const first = group.lastIndex + 1;
      const count = 1 + ((first + group.id) % BATCH_ENTRIES_MAX);
      const entries: Entry[] = Array.from({ length: count }, (_, i) => ({
        index: first + i,
        term,
        type: 0,
        data: Buffer.from(entryText(group.id, first + i)),
      }));
      group.lastIndex = first + count - 1;
      return { group, entries, saved: group.log.save({ hardState: { term, vote: 1, commit: group.applied }, entries }) };
    });
    await Promise.all(batches.map((b) => b.saved));
    say(`ack ${groups.map((g) => g.lastIndex).join(' ')}`);
    for (const { group, entries } of batches) {
      group.engine.batch(() => {
        for (const entry of entries) {
          group.terms.set(entry.index, entry.term);
          apply(group, entry);
        }
      });
      if (group.applied - group.snapshotIndex >= SNAPSHOT_EVERY_ENTRIES) await snapshot(group);
    }
    // The server commits the engine on its ticks, across many saves: a kill finds writes applied
    // but not committed, committed but not synced, and synced with the log not yet released.
    if (round % COMMIT_EVERY_ROUNDS === 0) engine.commit();
  }
}

/**
 * The order the server follows: engine durable, snapshot file durable, marker, release. As the
 * server's own snapshots (src/replica/snapshots.ts), the file holds no copy of the engine: it names
 * the index the engine durably holds.
 */
async function snapshot(group: Group): Promise<void> {
  await group.engine.sync();
  const data = snapshotReference(group.applied);
  const metadata = { index: group.applied, term: group.terms.get(group.applied)!, conf: { voters: [1], learners: [] } };
  await group.snapshots.save({ metadata, data });
  await group.log.saveSnapshotMarker(metadata);
  await group.log.releaseTo(metadata.index);
  for (const index of group.terms.keys()) if (index <= metadata.index) group.terms.delete(index);
  group.snapshotIndex = metadata.index;
}

// Run only as a script: the test imports the helpers above.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`crash-writer failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
