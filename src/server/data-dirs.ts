// Data directory ids: a member whose data directory was lost must never take part as if nothing
// happened.
//
// Raft's safety rests on promises each member keeps on disk: its term, its vote, the entries it
// acknowledged. A member restarted on an empty directory (wiped, a new disk, a restored old copy)
// has forgotten them, yet it comes back with the same member id (an id is derived from the name,
// peer address and cluster token, so that members of a new cluster agree on ids without talking).
// It could vote twice in one term, or vote for a candidate that lacks entries it had helped to
// commit, and it would serve reads from its empty store. Raft cannot tell by itself: the first
// sign, a commit index beyond its log, comes after it may already have voted.
//
// So every data directory gets an id when it is created (64 random bits, in member.json), every
// peer handshake names it (both ends), and every member remembers, durably and before it reads a
// single message, the data directory id each peer named when they first talked: first seen wins.
// A peer that later names another one is refused and told it is "superseded"; it stops with the
// remedy (remove it, then add it again with --join and an empty directory: a new member id).
//
// That catches a lost directory only if the member had talked to its peers, and that is the point:
// a promise is always made to a peer, over a connection whose handshake that peer remembered. For a
// new cluster one more rule closes the gap: a member created by --initial-cluster takes part in raft
// (votes, acknowledges, serves) only after every other member of the initial cluster has recorded
// its data directory (they accepted its handshake). So once any member runs raft, every initial
// member knows every other initial member's directory, and a lost one is refused by all of them.
// Members that join later are learners first, whose acknowledgements count for nothing, and they
// meet every member before they are promoted; a join that finds its member id already a voter, or
// already started (it published its addresses), is refused too (see join.ts).
//
// The price: a new cluster starts only once every initial member has started once (etcd starts
// with a majority). The simulator runs this class with members that restart on empty disks.
//
// One lost directory escapes the comparison: that of the last initial member of a cluster whose
// other members were all replaced (removed and added again as new members, as the remedy does).
// Started again with its original --initial-cluster, it dials ids that no longer exist, at
// addresses where new members now answer "I am another member" (or "you are not a member"), so no
// peer ever reads its data directory id, and it would wait for them forever. Waiting is right while
// a peer is down or cut off (it cannot refuse), but a refusal because of membership is an answer:
// once so many initial members refused this one that the others, this one included, can no longer
// form a quorum of the initial cluster, the cluster its --initial-cluster describes can never start
// with it, whatever the peers that have not answered say later. It stops then, with the remedy.
// Fewer refusals keep it waiting: one member may be a stale or misconfigured process, and the
// others may still accept it (or know its old directory and tell it it is superseded). Stopping is
// safe in any case: a member that waits has promised nothing and served nothing.

import { majorityOf } from '../raft/index.js';

/** Bytes of a data directory id. */
export const DATA_DIR_ID_BYTES = 8;

export type Admission = { admit: true; fresh: boolean } | { admit: false; known: string };

/** What one member remembers about its peers' data directories, and whether they all know its own. */
export class PeerDataDirs {
  private readonly known: Map<number, string>;
  private readonly awaiting: Set<number>;
  /** The other initial members this one waited for at start-up (empty once it may take part). */
  private readonly initialPeers: ReadonlySet<number>;
  /** Initial members that refused this one's handshake because of membership (since they last accepted it), and their words. */
  private readonly refusing = new Map<number, string>();

  constructor(options: {
    /** Peer member id → the data directory id (hex) it first named. */
    known: Iterable<[number, string]>;
    /** Initial members that must still accept this member's handshake before it takes part in raft. */
    awaiting: Iterable<number>;
  }) {
    this.known = new Map(options.known);
    this.awaiting = new Set(options.awaiting);
    this.initialPeers = new Set(options.awaiting);
  }

  /**
   * Whether a peer that names `dataDirId` (hex) may talk to this member: admitted when it names the
   * directory first seen for it (`fresh` when this is the first time: remember it durably, with
   * record(), before reading anything from it); refused with the known id otherwise.
   */
  check(peer: number, dataDirId: string): Admission {
    const known = this.known.get(peer);
    if (known === undefined) return { admit: true, fresh: true };
    return known === dataDirId ? { admit: true, fresh: false } : { admit: false, known };
  }

  record(peer: number, dataDirId: string): void {
    if (!this.known.has(peer)) this.known.set(peer, dataDirId);
  }

  /** A removed member's id is never used again: forget its directory (the simulator reuses ids). */
  forget(peer: number): void {
    this.known.delete(peer);
    this.awaiting.delete(peer);
    this.refusing.delete(peer);
  }

  /** `peer` accepted our handshake, so it has recorded our data directory. */
  acceptedBy(peer: number): void {
    this.awaiting.delete(peer);
    this.refusing.delete(peer);
  }

  /**
   * The member at `peer`'s address refused our handshake because of membership (this member is
   * not a current member of its cluster, or it is another member than `peer`).
   */
  refusedBy(peer: number, reason: string): void {
    if (this.initialPeers.has(peer)) this.refusing.set(peer, reason);
  }

  /**
   * Whether this member, still waiting to take part, was refused by so many initial members that
   * the rest of the initial cluster, itself included, cannot form a quorum: it can never start.
   */
  shutOut(): boolean {
    if (this.awaiting.size === 0) return false;
    const members = this.initialPeers.size + 1;
    return members - this.refusing.size < majorityOf(members);
  }

  /** The initial members that refused this one because of membership, with the reason each gave. */
  refusals(): [number, string][] {
    return [...this.refusing].sort(([a], [b]) => a - b);
  }

  /** Initial members that have not yet recorded this member's data directory (empty: it may take part). */
  waitingFor(): number[] {
    return [...this.awaiting].sort((a, b) => a - b);
  }

  entries(): [number, string][] {
    return [...this.known].sort(([a], [b]) => a - b);
  }
}

export function dataDirIdHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

export function dataDirIdBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
