// etcd's corruption checks (server/etcdserver/corrupt.go), over HashKV: every member hashes its
// MVCC history the same way (MvccStore.hashKV), so members that applied the same log and
// compacted at the same revision have equal hashes.
// - --experimental-initial-corrupt-check: before it starts, a member compares its hash with its
//   peers' at its own revision and refuses to start when one with the same compact revision differs.
// - --experimental-corrupt-check-time: the leader periodically compares its hash with its peers'
//   and raises the CORRUPT alarm (through raft) for the first member found inconsistent; while it
//   is raised every member refuses writes (see MvccStore.refuseUnderAlarm).
import { ErrorCode, LichenError } from '../errors.js';
import type { Logger } from '../log.js';
import { formatId } from './ids.js';

/** A member's HashKV answer: the hash up to `hashRevision`, its current and compact revisions. */
export interface MemberHash {
  memberId: number;
  hash: number;
  /** The member's current revision when it answered (etcd's header revision). */
  revision: number;
  compactRevision: number;
}

/** What a peer answered when asked for its hash: a hash, or why not (lagging, compacted, down). */
export type PeerAnswer = MemberHash | { memberId: number; error: string };

/**
 * etcd's checkHashKV decision. `before` is the leader's hash taken before asking the peers at
 * before.revision, `after` its hash after a linearizable barrier. Returns the member to raise
 * CORRUPT for, or undefined:
 * - the leader itself, when its own hash changed while its revisions did not;
 * - a peer whose revision or compact revision is ahead of the leader's (impossible after the
 *   barrier unless its history differs);
 * - a peer that compacted where the leader had, and hashed the same revisions differently.
 */
export function findCorruptMember(before: MemberHash, after: MemberHash, peers: PeerAnswer[]): number | undefined {
  if (after.hash !== before.hash && after.revision === before.revision && after.compactRevision === before.compactRevision) {
    return before.memberId;
  }
  for (const peer of peers) {
    if ('error' in peer) continue;
    if (peer.revision > after.revision) return peer.memberId;
    if (peer.compactRevision > after.compactRevision) return peer.memberId;
    if (peer.compactRevision === before.compactRevision && peer.hash !== before.hash) return peer.memberId;
  }
  return undefined;
}

/** etcd's CheckInitialHashKV: the peers whose hash differs at the same compact revision. */
export function inconsistentPeers(local: MemberHash, peers: PeerAnswer[]): MemberHash[] {
  return peers.filter((p): p is MemberHash => !('error' in p) && p.compactRevision === local.compactRevision && p.hash !== local.hash);
}

/** What the checks need from the member and its peers. */
export interface CorruptionCheckDeps {
  memberId: number;
  /** This member's hash of its whole history (MvccStore.hashKV at the current revision). */
  localHash(): { hash: number; hashRevision: number; compactRevision: number };
  /** Client addresses of the other members (those that published one). */
  peerAddresses(): string[];
  /** A peer's HashKV at a revision; rejects when it cannot answer. */
  askPeer(address: string, revision: number): Promise<MemberHash>;
  logger: Logger;
}

function ownHash(deps: CorruptionCheckDeps): MemberHash {
  const { hash, hashRevision, compactRevision } = deps.localHash();
  return { memberId: deps.memberId, hash, revision: hashRevision, compactRevision };
}

async function askPeers(deps: CorruptionCheckDeps, revision: number): Promise<PeerAnswer[]> {
  return Promise.all(
    deps.peerAddresses().map((address) =>
      deps.askPeer(address, revision).catch((error: unknown): PeerAnswer => {
        // A lagging peer cannot hash a future revision, one that compacted past it cannot either,
        // and a stopped one does not answer: etcd logs these and checks the others.
        deps.logger.warn('corruption check: a peer did not give its hash', { peer: address, revision, error: String(error) });
        return { memberId: 0, error: String(error) };
      }),
    ),
  );
}

/** --experimental-initial-corrupt-check: throws when a peer's history differs from ours. */
export async function checkInitialHashKV(deps: CorruptionCheckDeps): Promise<void> {
  const local = ownHash(deps);
  const mismatched = inconsistentPeers(local, await askPeers(deps, local.revision));
  for (const peer of mismatched) {
    deps.logger.warn('corruption check: a peer has a different hash', { local, peer });
  }
  if (mismatched.length > 0) {
    // etcd's exact text, with the id as etcd's types.ID prints it (hex, not padded).
    throw new LichenError(ErrorCode.Corrupt, `${deps.memberId.toString(16)} found data inconsistency with peers`);
  }
  deps.logger.info('initial corruption check passed; no corruption', { revision: local.revision, peers: deps.peerAddresses().length });
}

/**
 * --experimental-corrupt-check-time: the leader's periodic check. Resolves with the member it
 * raised CORRUPT for, if any.
 */
export async function checkHashKV(
  deps: CorruptionCheckDeps & { barrier(): Promise<void>; raiseCorrupt(memberId: number): Promise<void> },
): Promise<number | undefined> {
  const before = ownHash(deps);
  const peers = await askPeers(deps, before.revision);
  await deps.barrier();
  const corrupt = findCorruptMember(before, ownHash(deps), peers);
  if (corrupt === undefined) return undefined;
  deps.logger.error('corruption check: hashes differ; raising the CORRUPT alarm', { member: formatId(corrupt), leader: before, peers });
  await deps.raiseCorrupt(corrupt);
  return corrupt;
}

/** Runs checkHashKV every `intervalMs` while `isLeader()`, one check at a time; returns a stop function. */
export function startCorruptionMonitor(
  deps: Parameters<typeof checkHashKV>[0] & { isLeader(): boolean },
  intervalMs: number,
): () => void {
  let checking = false;
  const timer = setInterval(() => {
    if (checking || !deps.isLeader()) return;
    checking = true;
    checkHashKV(deps)
      .catch((error: unknown) => deps.logger.warn('corruption check failed; will retry', { error: String(error) }))
      .finally(() => (checking = false));
  }, intervalMs);
  return () => clearInterval(timer);
}
