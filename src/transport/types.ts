// The surface shared by the TCP transport and its in-memory twin, so the server can take either.
import type { Message, NodeId } from '../raft/types.js';
import type { TransportStats } from './tcp.js';

export interface Transport {
  /** Starts accepting peers; resolves with the bound address. */
  start(): Promise<{ host: string; port: number }>;
  readonly address: { host: string; port: number };
  addPeer(id: NodeId, address: string): void;
  updatePeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  /** Never blocks and never throws for network trouble; routes each message by its `to`. */
  send(messages: Message[]): void;
  stats(): TransportStats;
  /** Stops listening, closes connections and timers; no callbacks fire afterwards. */
  close(): Promise<void>;
}
