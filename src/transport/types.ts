// The surface shared by the TCP transport and its in-memory twin, so the server can take either.
import type { Message, NodeId } from '../raft/types.js';
import type { GroupId } from '../ids.js';
import type { GroupMessage } from './frame.js';

export interface Transport {
  /** Starts accepting peers; resolves with the bound address. */
  start(): Promise<{ host: string; port: number }>;
  readonly address: { host: string; port: number };
  addPeer(id: NodeId, address: string): void;
  updatePeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  /**
   * Never blocks and never throws for network trouble; routes each message of `group` (default:
   * the meta group) to the node that hosts its `to` (see TransportOptions.memberNode).
   */
  send(messages: Message[], group?: GroupId): void;
  /**
   * Sends node `node` one Beat frame with these heartbeats and heartbeat responses of any groups
   * (also when there are none: it then only says this process is alive). Same guarantees as send.
   */
  sendBeat(node: NodeId, messages: GroupMessage[]): void;
  stats(): TransportStats;
  /** Stops listening, closes connections and timers; no callbacks fire afterwards. */
  close(): Promise<void>;
}

export interface PeerStats {
  address: string;
  /** True once the handshake succeeded and until the connection closes. */
  connected: boolean;
  queued: number;
  dropped: number;
  sentBytes: number;
  /** Message and Beat frames sent (snapshot frames not counted). */
  framesSent: number;
  /** Handshakes this peer refused (other cluster, other member id, other protocol version). */
  refused: number;
  lastError: string | null;
}

export interface InboundStats {
  connections: number;
  /** Handshakes this node refused (unproven member ids included). */
  rejected: number;
  /** Messages on a bound connection whose `from` is not hosted on the bound node (or `to` not here), dropped. */
  mismatchedMessagesDropped: number;
  protocolErrors: number;
  lastError: string | null;
  receivedBytes: number;
  messagesReceived: number;
  snapshotsReceived: number;
  snapshotChunksReceived: number;
  snapshotsDropped: number;
}

export interface TransportStats {
  peers: Record<NodeId, PeerStats>;
  inbound: InboundStats;
  /** Messages addressed to an id that was never added with addPeer. */
  unknownPeerDrops: number;
}
