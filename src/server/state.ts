// Opening a node's durable state: the identity file, the engine, the WAL and the snapshots, and
// bootstrapping a brand-new cluster. Everything a node knows after a restart comes from here.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile, open as openFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Engine } from '../engine/index.js';
import { EntryType, decodeConfChange, type Entry } from '../raft/index.js';
import { DiskBudget, type LoadedSnapshot } from '../wal/index.js';
import { createDirectory } from '../directories.js';
import { ErrorCode, LichenError } from '../errors.js';
import type { Logger } from '../log.js';
import type { NodeConfig, PeerSpec } from './config.js';
import { clusterIdOf, formatId, memberIdOf } from './ids.js';
import { metaGroupId } from '../ids.js';
import { MemberTable, decodeJson, type Member, type MemberAttributes } from '../replica/members.js';
import { EnvelopeKind, decodeEnvelope } from '../replica/envelope.js';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { channelCredentials } from '../client/tls.js';
import { DATA_DIR_ID_BYTES, PeerDataDirs } from './data-dirs.js';
import { clusterIdAt, joinCluster } from './join.js';
import { decodeSnapshotData, firstSnapshot } from '../replica/snapshot-data.js';
import { ProcessStorage, bootstrapGroup, recoverJoiner, recoverStorage, type GroupStorage } from '../replica/index.js';
import { removeFormat1Leftovers, upgradeFormat1 } from './upgrade.js';


/**
 * The format of a data directory: member.json, the WAL, the snapshots and the engine files, as one
 * number kept in member.json (`version`). Lichen 0.1 writes 1; format 2 holds every raft group of
 * the process (one shared WAL, per-group snapshots, engine keys partitioned by group: see
 * src/replica/process-storage.ts); format 3 adds a member's own snapshots that hold no engine data
 * (src/replica/snapshot-data.ts), which a format-2 release cannot read (a format-2 directory holds
 * only whole snapshots: it becomes format 3 as it is). A release that changes any of these formats raises it, and on
 * start either migrates an older directory in place (writing member.json last, through
 * writeFileDurably: format 1 is upgraded by upgrade.ts) or refuses it with the way forward. A
 * directory of a newer format is always refused: this code cannot know what changed.
 */
export const DATA_DIR_FORMAT = 3;

/** Who this data directory belongs to. Written once, when the member first starts. */
export interface Identity {
  /** The data directory format (DATA_DIR_FORMAT when written by this code). */
  version: number;
  name: string;
  memberId: number;
  clusterId: number;
  /** Set when this member joined a running cluster (--join) instead of bootstrapping one. */
  joined?: { catchUpIndex: number; members: Member[] };
  /** Set when this member was removed from its cluster: it must not start again on this data. */
  removed?: boolean;
  /** The --initial-cluster this member bootstrapped with (not set for a member that joined). */
  initialCluster?: PeerSpec[];
  /** 64 random bits (hex) drawn when this data directory was created (see data-dirs.ts). */
  dataDirId: string;
  /** The data directory id each peer named when it first talked to this member: member id (hex) → id (hex). */
  peerDataDirs: Record<string, string>;
  /**
   * Whether every other member of the initial cluster has recorded this data directory, so this
   * member may take part in raft (always true for a member that joined; see data-dirs.ts).
   */
  confirmed: boolean;
}

/**
 * What this member's replica (group 1's) starts from: its view of the shared WAL, its snapshot
 * files, and its state machine (the MVCC store and, in the same partition, users, roles and
 * permissions: see src/auth) over its partition of the engine.
 */
export type NodeStorage = GroupStorage;

export interface NodeState {
  identity: Identity;
  /** The process's storage (the shared WAL and the engine); close it after the replica. */
  disk: ProcessStorage;
  /** The replica keeps it current (a snapshot from the leader replaces `members`). */
  storage: NodeStorage;
  /** The peers' data directories, and the initial members this one still waits for. */
  dataDirs: PeerDataDirs;
  /** Writes `identity` to member.json (writes are queued, each durable before the next). */
  saveIdentity(): Promise<void>;
}

const IDENTITY_FILE = 'member.json';
/** Files that live only while the process uses them (snapshots being sent); emptied at start. */
export const TMP_DIR = 'tmp';

/** `credentials`: how to reach other members' client API for --join (default: cleartext). */
export async function openNodeState(config: NodeConfig, logger: Logger, credentials = channelCredentials(undefined)): Promise<NodeState> {
  createDirectory(config.dataDir);
  await rm(join(config.dataDir, TMP_DIR), { recursive: true, force: true });
  const existing = await readIdentity(config.dataDir);
  if (existing === undefined) await refuseUnknownContents(config.dataDir);
  else await checkFormat(config, existing, logger);
  if (existing?.removed) {
    throw new LichenError(
      ErrorCode.InvalidArgument,
      `member "${existing.name}" (${formatId(existing.memberId)}) was removed from cluster ${formatId(existing.clusterId)}; ` +
        `to add this machine again, delete ${config.dataDir} and start it with --join`,
    );
  }
  if (existing && config.join) await refuseOtherCluster(existing, config, credentials);
  const identity = existing ?? (config.join ? await joinIdentity(config, logger, credentials) : await bootstrapIdentity(config));
  if (identity.name !== config.name) {
    throw new LichenError(
      ErrorCode.InvalidArgument,
      `data directory ${config.dataDir} belongs to member "${identity.name}", not "${config.name}"`,
    );
  }
  const saveIdentity = identityWriter(config.dataDir, identity);
  if (identity.dataDirId === undefined) {
    // Written by a version without data directory ids: this directory is the one its peers know.
    Object.assign(identity, { dataDirId: newDataDirId(), peerDataDirs: {}, confirmed: true });
    await saveIdentity();
  }
  const disk = await ProcessStorage.open({
    dir: config.dataDir,
    engine: config.engine,
    wal: { syncDelayMs: config.unsafe.walSyncDelayMs, noSync: config.unsafe.walNoSync },
    ...(config.unsafe.diskBudgetBytes !== undefined && { faults: new DiskBudget(config.unsafe.diskBudgetBytes) }),
  });
  try {
    return await openMetaGroup(config, logger, { identity, existing: existing !== undefined, disk, saveIdentity });
  } catch (error) {
    await disk.close().catch(() => undefined);
    throw error;
  }
}

/** Group 1's storage, bootstrapped for a new cluster member. */
async function openMetaGroup(
  config: NodeConfig,
  logger: Logger,
  { identity, existing, disk, saveIdentity }: { identity: Identity; existing: boolean; disk: ProcessStorage; saveIdentity: () => Promise<void> },
): Promise<NodeState> {
  const parts = await disk.group(metaGroupId);
  const { wal, snapshots, machine, log } = parts;
  if (log.repairedTail) logger.warn('wal: repaired a torn record at the tail', { ...log.repairedTail });
  let { snapshot } = parts;
  let { hardState } = log;
  if (!snapshot && identity.joined) {
    // A joining member starts empty: the leader sends it a snapshot. Until then it knows its peers from the join answer.
    const members = MemberTable.fromJSON({ members: identity.joined.members, removed: [] });
    if (existing) refuseOtherMembership(config, identity, membershipAfter(members, log.entries));
    const dataDirs = peerDataDirs(identity, members);
    return { identity, disk, storage: { ...recoverJoiner({ wal, snapshots, machine, log: { hardState, entries: log.entries }, members }), wal, snapshots, machine }, dataDirs, saveIdentity };
  }
  if (!snapshot) {
    // A brand-new member of a new cluster: the first snapshot holds the initial membership.
    snapshot = await bootstrapGroup(parts, initialSnapshot(config, identity, machine.engine));
    hardState = { term: snapshot.metadata.term, vote: 0, commit: snapshot.metadata.index };
    logger.info('bootstrapped a new cluster member', {
      memberId: formatId(identity.memberId),
      clusterId: formatId(identity.clusterId),
      members: config.initialCluster.map((p) => p.name),
    });
  }

  if (existing) refuseOtherMembership(config, identity, membershipAfter(decodeSnapshotData(snapshot.data).members, log.entries));
  const storage = { ...recoverStorage({ wal, snapshots, machine, snapshot, log: { hardState, entries: log.entries } }), wal, snapshots, machine };
  return { identity, disk, storage, dataDirs: peerDataDirs(identity, storage.members), saveIdentity };
}

/** The peers' data directories as member.json records them; until confirmed, the other members wait. */
function peerDataDirs(identity: Identity, members: MemberTable): PeerDataDirs {
  return new PeerDataDirs({
    known: Object.entries(identity.peerDataDirs).map(([id, dataDirId]) => [parseInt(id, 16), dataDirId]),
    awaiting: identity.confirmed ? [] : members.list().map((m) => m.id).filter((id) => id !== identity.memberId),
  });
}

function newDataDirId(): string {
  return randomBytes(DATA_DIR_ID_BYTES).toString('hex');
}

/** Saves the identity; calls are queued so that writes never overlap and land in order. */
function identityWriter(dataDir: string, identity: Identity): () => Promise<void> {
  let last: Promise<void> = Promise.resolve();
  return () => {
    const write = last.then(() => writeFileDurably(join(dataDir, IDENTITY_FILE), JSON.stringify(identity, null, 2) + '\n'));
    last = write.catch(() => undefined);
    return write;
  };
}

/**
 * --initial-cluster only shapes a new cluster; on a data directory that holds a member it must
 * describe that member's cluster, either as it was created or as it is now (after members were
 * added or removed). Anything else means the flags are meant for another cluster, and starting
 * anyway would silently run the old one (a one-member cluster electing itself, say).
 */
function refuseOtherMembership(config: NodeConfig, identity: Identity, current: Member[]): void {
  if (!config.initialClusterGiven) return;
  const given = config.initialCluster;
  const created = identity.initialCluster;
  if (describesMembership(given, current)) return;
  if (created ? describesMembership(given, created) : !identity.joined && clusterIdOf(given, config.clusterToken) === identity.clusterId) return;
  const list = (peers: readonly { name: string; peerAddress: string }[]) => peers.map((p) => `${p.name || '(unnamed)'}=${p.peerAddress}`).join(',');
  throw new LichenError(
    ErrorCode.InvalidArgument,
    `data directory ${config.dataDir} holds member "${identity.name}" of a cluster whose members are ${list(current)}` +
      (created ? ` (created with --initial-cluster ${list(created)})` : '') +
      `, but --initial-cluster is ${list(given)}. --initial-cluster only creates a new cluster from an empty data directory: ` +
      'leave it out (or give that membership) to restart this member, or give an empty --data-dir to start a new cluster',
  );
}

/** Whether the peers name exactly these members (a member that has not published its name matches by address). */
function describesMembership(peers: readonly PeerSpec[], members: readonly { name: string; peerAddress: string }[]): boolean {
  if (peers.length !== members.length) return false;
  return members.every((m) => peers.some((p) => p.peerAddress === m.peerAddress && (m.name === '' || p.name === m.name)));
}

/** The membership after the conf changes and published names among `entries`, as raft will replay them. */
function membershipAfter(table: MemberTable, entries: readonly Entry[]): Member[] {
  const members = MemberTable.fromJSON(table.toJSON());
  for (const entry of entries) {
    if (entry.type === EntryType.ConfChange) {
      const cc = decodeConfChange(entry.data);
      if (members.refusal(cc) === undefined) members.applyConfChange(cc);
    } else if (entry.data.length > 0) {
      const envelope = decodeEnvelope(entry.data);
      if (envelope.kind === EnvelopeKind.MemberAttributes) members.applyAttributes(envelope.origin, decodeJson<MemberAttributes>(envelope.body));
    }
  }
  return members.list();
}

function initialSnapshot(config: NodeConfig, identity: Identity, engine: Engine): LoadedSnapshot {
  const members = config.initialCluster.map((peer) => ({ id: memberIdOf(peer, config.clusterToken), name: peer.name, peerAddress: peer.peerAddress }));
  if (!members.some((m) => m.id === identity.memberId)) {
    throw new LichenError(
      ErrorCode.InvalidArgument,
      `--initial-cluster does not contain this member (${config.name}=${config.listenPeer})`,
    );
  }
  return firstSnapshot(members, engine.export());
}

/** Records that this member was removed, so it refuses to start on this data again. */
export async function markRemoved(state: NodeState): Promise<void> {
  state.identity.removed = true;
  await state.saveIdentity();
}

/**
 * Accepts a data directory of this format; upgrades one of format 1 (lichen 0.1; a member.json
 * without a version is one of those too) in place (upgrade.ts), and one of format 2 by recording
 * format 3 (nothing else changes); refuses a newer or unknown one.
 */
async function checkFormat(config: NodeConfig, identity: Identity, logger: Logger): Promise<void> {
  const dataDir = config.dataDir;
  const path = join(dataDir, IDENTITY_FILE);
  const format: unknown = (identity as { version?: unknown }).version;
  if (format === undefined || format === 1) await upgradeFormat1(dataDir, config.engine, logger, (dir) => syncPath(dir, 'r'));
  if (format === undefined || format === 1 || format === 2) {
    identity.version = DATA_DIR_FORMAT;
    await writeFileDurably(path, JSON.stringify(identity, null, 2) + '\n');
  }
  if (identity.version === DATA_DIR_FORMAT) {
    await removeFormat1Leftovers(dataDir);
    return;
  }
  if (typeof format === 'number' && Number.isSafeInteger(format) && format > DATA_DIR_FORMAT) {
    throw new LichenError(
      ErrorCode.InvalidArgument,
      `data directory ${dataDir} has format ${format}, written by a newer lichen; this lichen reads format ${DATA_DIR_FORMAT}. ` +
        'Start it with the lichen release that wrote it (or a newer one): a data directory is never converted back to an older format. ' +
        'To go back to this release, restore a snapshot into an empty directory (lichen snapshot restore)',
    );
  }
  throw new LichenError(
    ErrorCode.InvalidArgument,
    `data directory ${dataDir} names an unknown format ${JSON.stringify(format)} in ${path}; this lichen reads format ${DATA_DIR_FORMAT}. ` +
      'It was not written by lichen, or member.json was damaged: restore it from a backup, or remove this member and add it again with --join and an empty directory',
  );
}

/**
 * What lichen writes only after member.json: found without it, they are not lichen's (or damaged).
 * (`lichen snapshot restore` fills engine/ first, then writes member.json.)
 */
const DATA_DIR_CONTENTS = ['log', 'snapshots', 'wal', 'snap'];

async function refuseUnknownContents(dataDir: string): Promise<void> {
  for (const name of DATA_DIR_CONTENTS) {
    const found = await stat(join(dataDir, name)).then(() => true, (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw new LichenError(ErrorCode.Internal, `cannot read ${join(dataDir, name)}: ${error.message}`);
    });
    if (found) {
      throw new LichenError(
        ErrorCode.InvalidArgument,
        `data directory ${dataDir} holds ${name}/ but no ${IDENTITY_FILE}, so its format is unknown (not written by lichen, or damaged): ` +
          'give an empty --data-dir for a new member, or restore this one from a backup',
      );
    }
  }
}

async function readIdentity(dataDir: string): Promise<Identity | undefined> {
  try {
    return JSON.parse(await readFile(join(dataDir, IDENTITY_FILE), 'utf8')) as Identity;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LichenError(ErrorCode.Internal, `cannot read ${join(dataDir, IDENTITY_FILE)}: ${(error as Error).message}`);
  }
}

async function joinIdentity(config: NodeConfig, logger: Logger, credentials: ChannelCredentials): Promise<Identity> {
  const joined = await joinCluster(config, credentials);
  const identity: Identity = {
    version: DATA_DIR_FORMAT,
    name: config.name,
    memberId: joined.memberId,
    clusterId: joined.clusterId,
    joined: { catchUpIndex: joined.catchUpIndex, members: joined.members },
    dataDirId: newDataDirId(),
    peerDataDirs: {},
    // A joiner is a learner until promoted, and it is promoted only by a cluster that knows it.
    confirmed: true,
  };
  await writeFileDurably(join(config.dataDir, IDENTITY_FILE), JSON.stringify(identity, null, 2) + '\n');
  logger.info('joined the cluster as a learner', {
    via: config.join,
    memberId: formatId(identity.memberId),
    clusterId: formatId(identity.clusterId),
    catchUpIndex: joined.catchUpIndex,
  });
  return identity;
}

/** A data directory of one cluster must not be pointed at another. */
async function refuseOtherCluster(identity: Identity, config: NodeConfig, credentials: ChannelCredentials): Promise<void> {
  let clusterId: number;
  try {
    clusterId = await clusterIdAt(config, credentials);
  } catch {
    return; // The cluster to join is unreachable: the transport's handshake still guards peers.
  }
  if (clusterId !== identity.clusterId) {
    throw new LichenError(
      ErrorCode.InvalidArgument,
      `data directory ${config.dataDir} belongs to cluster ${formatId(identity.clusterId)}, but --join ${config.join} is a member of cluster ${formatId(clusterId)}`,
    );
  }
}

async function bootstrapIdentity(config: NodeConfig): Promise<Identity> {
  const self = config.initialCluster.find((p) => p.name === config.name);
  if (!self) {
    throw new LichenError(
      ErrorCode.InvalidArgument,
      `--initial-cluster (${config.initialCluster.map((p) => p.name).join(', ')}) has no member named "${config.name}"`,
    );
  }
  const identity: Identity = {
    version: DATA_DIR_FORMAT,
    name: config.name,
    memberId: memberIdOf(self, config.clusterToken),
    clusterId: clusterIdOf(config.initialCluster, config.clusterToken),
    initialCluster: config.initialCluster.map(({ name, peerAddress }) => ({ name, peerAddress })),
    dataDirId: newDataDirId(),
    peerDataDirs: {},
    confirmed: config.initialCluster.length === 1,
  };
  await writeFileDurably(join(config.dataDir, IDENTITY_FILE), JSON.stringify(identity, null, 2) + '\n');
  return identity;
}

/**
 * Write to a temporary name, fsync, rename, fsync the directory, so a crash leaves the old file or
 * the new one, and once this resolves the new one survives a crash.
 */
async function writeFileDurably(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp`;
  await writeFile(temp, text);
  await syncPath(temp, 'r+');
  await rename(temp, path);
  await syncPath(dirname(path), 'r');
}

async function syncPath(path: string, flags: string): Promise<void> {
  const handle = await openFile(path, flags);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
