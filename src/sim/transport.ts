// The transport of a simulated store (src/store): what the store hands it goes onto the simulated
// network (cluster.ts checks and routes it); what arrives comes back through the store's
// transport events, which the cluster keeps. Connections, their handshake and its data-directory
// checks are the cluster's (connect()), per process as in src/transport/tcp.ts, so peers need no
// bookkeeping here.
import type { GroupId } from '../ids.js';
import type { Message, NodeId } from '../raft/types.js';
import type { GroupMessage, Transport, TransportStats } from '../transport/index.js';

export interface SimTransportLinks {
  send(messages: Message[], group: GroupId): void;
  sendBeat(to: NodeId, messages: GroupMessage[]): void;
}

export class SimTransport implements Transport {
  readonly address: { host: string; port: number };

  constructor(
    id: NodeId,
    private readonly links: SimTransportLinks,
  ) {
    this.address = { host: `node-${id}`, port: 2380 };
  }

  start(): Promise<{ host: string; port: number }> {
    return Promise.resolve(this.address);
  }

  addPeer(): void {}
  updatePeer(): void {}
  removePeer(): void {}

  send(messages: Message[], group: GroupId): void {
    this.links.send(messages, group);
  }

  sendBeat(node: NodeId, messages: GroupMessage[]): void {
    this.links.sendBeat(node, messages);
  }

  stats(): TransportStats {
    const inbound = { connections: 0, rejected: 0, mismatchedMessagesDropped: 0, protocolErrors: 0, lastError: null, receivedBytes: 0, messagesReceived: 0, snapshotsReceived: 0, snapshotChunksReceived: 0, snapshotsDropped: 0 };
    return { peers: {}, inbound, unknownPeerDrops: 0 };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
