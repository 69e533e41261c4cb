// The upgrade of a data directory written by lichen 0.1 (format 1) to format 2 (recorded as the
// current format, 3, which adds nothing a 0.1 directory has to convert), in place, when its
// member starts. Format 1 held one raft group: its WAL in wal/ (src/wal/wal.ts), its snapshot files
// in snap/, and its engine keys unpartitioned. Format 2 holds every group of the process: the
// shared WAL in log/, each group's snapshots in snapshots/<group>/, the engine's keys behind their
// group's prefix (src/replica/process-storage.ts). The one group of a 0.1 directory becomes group 1.
//
// The steps, and why a crash anywhere leaves a directory that starts:
//   1. Whatever an earlier attempt left in log/, snapshots/ or their .tmp twins goes (member.json
//      still says format 1, so none of it is in use).
//   2. Group 1's hard state, snapshot marker and entries are read from wal/ and written as the
//      first records of a new shared WAL in log.tmp/; the snapshot files are hard-linked into
//      snapshots.tmp/00000001/ (same bytes, no copy); both are flushed and renamed into place.
//   3. The engine's keys move behind group 1's prefix in one engine transaction that also writes
//      the engine's format key, so it happens once or not at all (a second attempt sees the key).
//   4. member.json is rewritten with the current format (through a flushed temporary file and a
//      rename): from here on the directory is that format.
//   5. wal/ and snap/ are removed (a crash before that leaves them to the next start, which removes
//      them: see removeFormat1Leftovers).
// Until step 4, wal/ and snap/ are untouched (data-format.test.ts checks it). Lichen 0.1 started on
// such a directory finds no applied index in its engine, so by recoverStorage's rule it installs
// its snapshot again (clearing the moved keys) and replays its WAL. Checked by hand once, not by a
// test (the old release is not in the tree): lichen 0.1 (d762ad1) on the 0.1 fixture after steps
// 1-3 served its keys; this code then upgraded that directory again and served them too.
import fs from 'node:fs';
import { rm, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { closeEngine, groupPrefix, openEngine, type Engine, type EngineKind, type WriteOp } from '../engine/index.js';
import { SharedWal, Wal } from '../wal/index.js';
import { ENGINE_DIR, ENGINE_FORMAT_KEY, ENGINE_FORMAT_PARTITIONED, SNAP_DIR, WAL_DIR, snapshotDirName } from '../replica/index.js';
import { ErrorCode, LichenError, assert } from '../errors.js';
import type { Logger } from '../log.js';
import { metaGroupId } from '../ids.js';

/** Lichen 0.1's single-group WAL and snapshot directories. */
const FORMAT1_WAL_DIR = 'wal';
const FORMAT1_SNAP_DIR = 'snap';
const SNAPSHOT_FILE = /^[0-9a-f]{16}-[0-9a-f]{16}\.snap$/;
/** The group a lichen 0.1 directory's one group becomes: the cluster's group. */
const UPGRADED_GROUP = metaGroupId;

/**
 * Steps 1-3 above; the caller writes member.json (step 4), then calls removeFormat1Leftovers
 * (step 5). `syncDir` flushes a directory (the caller's, so tests count the same flushes).
 */
export async function upgradeFormat1(dataDir: string, engineKind: EngineKind, logger: Logger, syncDir: (dir: string) => Promise<void>): Promise<void> {
  const at = (name: string): string => join(dataDir, name);
  for (const name of [WAL_DIR, SNAP_DIR, `${WAL_DIR}.tmp`, `${SNAP_DIR}.tmp`]) await rm(at(name), { recursive: true, force: true });

  const { wal: old, state } = await Wal.open({ dir: at(FORMAT1_WAL_DIR) });
  await old.close();
  if (!state.snapshot && state.entries.length > 0 && state.entries[0]!.index !== 1) {
    throw new LichenError(
      ErrorCode.Internal,
      `cannot upgrade ${dataDir}: its WAL starts at index ${state.entries[0]!.index} without a snapshot; remove this member and add it again with --join and an empty directory`,
    );
  }
  const shared = await SharedWal.open({ dir: at(`${WAL_DIR}.tmp`) });
  try {
    const { log } = shared.attach(UPGRADED_GROUP);
    if (state.snapshot) await log.saveSnapshotMarker(state.snapshot);
    await log.save({ hardState: state.hardState, entries: state.entries });
  } finally {
    await shared.close();
  }

  const snapshots = at(`${SNAP_DIR}.tmp`);
  const groupSnapshots = join(snapshots, snapshotDirName(UPGRADED_GROUP));
  fs.mkdirSync(groupSnapshots, { recursive: true });
  const names = fs.existsSync(at(FORMAT1_SNAP_DIR)) ? fs.readdirSync(at(FORMAT1_SNAP_DIR)).filter((name) => SNAPSHOT_FILE.test(name)) : [];
  for (const name of names) fs.linkSync(join(at(FORMAT1_SNAP_DIR), name), join(groupSnapshots, name));
  await syncDir(groupSnapshots);
  await syncDir(snapshots);
  await rename(at(`${WAL_DIR}.tmp`), at(WAL_DIR));
  await rename(snapshots, at(SNAP_DIR));
  await syncDir(dataDir);

  const engine = await openEngine(engineKind, at(ENGINE_DIR));
  try {
    const moved = partitionEngine(engine, UPGRADED_GROUP);
    await engine.sync();
    logger.info('upgraded a lichen 0.1 data directory', { dataDir, entries: state.entries.length, snapshots: names.length, engineKeys: moved });
  } finally {
    await closeEngine(engine);
  }
}

/** Step 5: lichen 0.1's WAL and snapshots, once member.json says the current format. */
export async function removeFormat1Leftovers(dataDir: string): Promise<void> {
  for (const name of [FORMAT1_WAL_DIR, FORMAT1_SNAP_DIR]) await rm(join(dataDir, name), { recursive: true, force: true });
}

/** Keys moved per engine write while partitioning (bounds the memory the move holds). */
const MOVE_KEYS_PER_WRITE = 10_000;

/**
 * Moves every key behind `groupId`'s prefix and writes the format key, in one transaction; does
 * nothing when the format key is there (an earlier attempt got this far). Returns the keys moved.
 * Lichen 0.1's keys all start with a byte above 0 (src/mvcc/layout.ts, src/auth), and every
 * prefixed key starts with 0 (group ids are below 2^24 in practice, and the scan starts at byte
 * 1): moved keys sort before the ones left, so each pass takes the next keys still to move.
 */
function partitionEngine(engine: Engine, groupId: number): number {
  if (engine.get(ENGINE_FORMAT_KEY) !== undefined) return 0;
  const prefix = groupPrefix(groupId);
  assert(prefix[0] === 0, `group ${groupId} cannot take lichen 0.1 keys (its prefix does not start with 0)`);
  return engine.batch(() => {
    let moved = 0;
    for (;;) {
      const ops: WriteOp[] = [];
      for (const [key, value] of engine.range({ start: Uint8Array.of(1), limit: MOVE_KEYS_PER_WRITE })) {
        ops.push({ type: 'del', key: Uint8Array.from(key) }, { type: 'put', key: Buffer.concat([prefix, key]), value: Uint8Array.from(value) });
      }
      if (ops.length === 0) break;
      engine.write(ops);
      moved += ops.length / 2;
    }
    const [below] = engine.range({ start: new Uint8Array(0), end: prefix, limit: 1 });
    const [above] = engine.range({ start: groupPrefix(groupId + 1), end: Uint8Array.of(1), limit: 1 });
    assert(below === undefined && above === undefined, 'a lichen 0.1 engine holds a key starting with byte 0');
    engine.write([{ type: 'put', key: ENGINE_FORMAT_KEY, value: Buffer.from(ENGINE_FORMAT_PARTITIONED) }]);
    return moved;
  }, { direct: true });
}
