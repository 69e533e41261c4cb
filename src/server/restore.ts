// `lichen snapshot restore`: a new cluster member's data directory built from a snapshot in
// etcd 3.4's format, taken from Lichen or from etcd. As etcd's own restore does, it checks the
// snapshot's SHA-256 trailer, keeps the keys, their history since the last compaction and the
// leases, and starts a new cluster whose membership comes from the flags, not from the file.
// Every member of the new cluster is restored from the same file with its own --name.
//
// The engine is filled straight from the file (a batch of writes at a time); then the data
// directory is bootstrapped exactly as `lichen serve` bootstraps a new cluster (state.ts), with
// the restored engine as the state of the first raft snapshot.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BoltReader } from '../bbolt/index.js';
import { checkSnapshotHash, readEtcdBackend } from '../backup/index.js';
import { ScopedEngine, closeEngine, openEngine, type Engine } from '../engine/index.js';
import { ErrorCode, LichenError } from '../errors.js';
import { createSilentLogger } from '../log.js';
import { AuthStore } from '../auth/index.js';
import { MvccStore, writeMvccState } from '../mvcc/index.js';
import { defaultNodeConfig, type PeerSpec } from './config.js';
import { openNodeState } from './state.js';
import { metaGroupId } from '../ids.js';

export interface RestoreOptions {
  snapshotPath: string;
  /** This member's name; it must be in initialCluster. */
  name: string;
  initialCluster: PeerSpec[];
  /** As `lichen serve --cluster-token`: empty derives it from the initial cluster. */
  clusterToken: string;
  dataDir: string;
  /** Restore a file without a hash trailer, or with a wrong one (a copy of a live db file). */
  skipHashCheck: boolean;
  /** The engine the member will run (lichen serve --engine); default lmdb. */
  engine?: 'lmdb' | 'leveldb';
}

export interface RestoreResult {
  memberId: number;
  clusterId: number;
  revision: number;
  compactRevision: number;
  /** Key versions restored (puts and deletions since the last compaction). */
  records: number;
  leases: number;
  renumberedLeases: { from: bigint; to: number }[];
  /** Alarms raised in the snapshot, which the new cluster starts without. */
  droppedAlarms: { memberId: number | bigint; alarm: number }[];
  /** Users and roles restored, and whether authentication is on in the restored cluster. */
  users: number;
  roles: number;
  authEnabled: boolean;
}

export async function restoreSnapshot(options: RestoreOptions): Promise<RestoreResult> {
  const self = options.initialCluster.find((peer) => peer.name === options.name);
  if (!self) {
    throw invalid(`--initial-cluster (${options.initialCluster.map((p) => p.name).join(', ')}) has no member named "${options.name}"`);
  }
  await refuseNonEmpty(options.dataDir);
  await checkHashTrailer(options.snapshotPath, options.skipHashCheck);

  const reader = BoltReader.open(options.snapshotPath);
  let restored: Omit<RestoreResult, 'memberId' | 'clusterId'>;
  try {
    const problems = reader.check();
    if (problems.length > 0) throw invalid(`snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join('\n')}`);
    restored = await fillEngine(reader, await openEngine(options.engine ?? 'lmdb', join(options.dataDir, 'engine')));
  } finally {
    reader.close();
  }

  const config = defaultNodeConfig({
    name: options.name,
    dataDir: options.dataDir,
    initialCluster: options.initialCluster,
    clusterToken: options.clusterToken,
    listenPeer: self.peerAddress,
    engine: options.engine ?? 'lmdb',
  });
  const state = await openNodeState(config, createSilentLogger());
  await state.disk.close();
  return { memberId: state.identity.memberId, clusterId: state.identity.clusterId, ...restored };
}

async function fillEngine(reader: BoltReader, processEngine: Engine): Promise<Omit<RestoreResult, 'memberId' | 'clusterId'>> {
  try {
    const contents = readEtcdBackend(reader);
    let records = 0;
    const counted = (function* () {
      for (const record of contents.state.records) {
        records++;
        yield record;
      }
    })();
    const leases = [...contents.state.leases];
    // The restored state is the cluster's group's (the engine's partitions: src/engine/scoped.ts).
    const engine = new ScopedEngine(processEngine, metaGroupId);
    writeMvccState(engine, { ...contents.state, records: counted, leases });
    AuthStore.write(engine, contents.auth);
    const store = MvccStore.open(engine);
    // Raft entry 1 is the new cluster's bootstrap: the restored state is the state after it. A
    // compaction etcd had scheduled but not finished is finished here, as etcd does on start.
    const compact = contents.scheduledCompactRevision > store.compactRevision;
    store.apply(1, compact ? { type: 'compact', request: { revision: contents.scheduledCompactRevision } } : { type: 'noop' });
    return {
      revision: store.currentRevision,
      compactRevision: store.compactRevision,
      records,
      leases: leases.length,
      renumberedLeases: contents.renumberedLeases,
      droppedAlarms: contents.alarms,
      users: contents.auth.users.length,
      roles: contents.auth.roles.length,
      authEnabled: contents.auth.enabled,
    };
  } finally {
    await closeEngine(processEngine);
  }
}

/** etcd's rule: the data directory must not exist or must be empty. */
async function refuseNonEmpty(dataDir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw invalid(`data-dir "${dataDir}" not empty or could not be read`);
  }
  if (entries.length > 0) throw invalid(`data-dir "${dataDir}" not empty or could not be read`);
}

/** etcd's checks and messages, word for word. */
async function checkHashTrailer(path: string, skip: boolean): Promise<void> {
  if (skip) return;
  const hash = await checkSnapshotHash(path);
  if (hash.kind === 'none') throw invalid('snapshot missing hash but --skip-hash-check=false');
  if (hash.kind === 'mismatch') throw invalid(`expected sha256 ${hash.expected}, got ${hash.actual}`);
}

function invalid(message: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, message);
}
