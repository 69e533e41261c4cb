// The settings and neighbours a replica is given (see ReplicaOptions in replica.ts).
import type { Message, NodeId } from '../raft/index.js';

/** What another member says about the membership, and how far it has applied the log. */
export interface MembershipView {
  appliedIndex: number;
  memberIds: number[];
}

/** The settings a replica uses (a subset of the server's NodeConfig, which satisfies it). */
export interface ReplicaConfig {
  /** This member's name, as it publishes it. */
  name: string;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Holds a new commit index back from followers this long, to send it with the next append (0: at once). */
  followerCommitDelayMs: number;
  requestTimeoutMs: number;
  pendingRequestsMax: number;
  maxRequestBytes: number;
  snapshotEntries: number;
  snapshotCatchUpEntries: number;
  snapshotWalBytes: number;
  /** Negative: no quota. */
  quotaBackendBytes: number;
  authToken: string;
  authTokenTtlSeconds: number;
  unsafe: { readsWithoutReadIndex: boolean };
}

/** The links to the group's other members (a peer transport in a process). */
export interface PeerLinks {
  /** Never blocks and never throws for network trouble. */
  send(messages: Message[]): void;
  updatePeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
}
