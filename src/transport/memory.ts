// An in-memory twin of TcpTransport for server tests: the same surface and callbacks, but messages
// travel through a MemoryNetwork hub that tests can partition, cut one way, or make lossy.
//
// Behaviour kept from TCP, so tests exercise what production does:
// - delivery is asynchronous (a later event-loop turn), never re-entrant inside send();
// - per-peer order is preserved; queues are bounded (full ⇒ drop + onUnreachable);
// - messages are encoded when sent and decoded when delivered (by default), so the receiver never
//   shares objects with the sender and every message must be encodable;
// - a peer of another cluster, or an address that belongs to another member, is refused and the
//   refusal is logged and shown in stats on both sides;
// - a Snap reports onSnapshotSent(ok) once it is delivered or lost;
// - messages travel with their group, a Beat is one frame (framesSent counts frames as TCP does),
//   and a message whose sender is not hosted on the sending node, or whose receiver not on the
//   receiving one (memberNode), is dropped and counted.
// Differences: a link that is cut or lossy drops messages silently (like a black-holed network,
// which TCP would only notice much later), and a peer address that nobody is bound to reports
// onUnreachable at once (like a refused connection).
import type { Message, NodeId } from '../raft/types.js';
import { assert } from '../errors.js';
import { metaGroupId, type GroupId } from '../ids.js';
import { decodeMessage, encodeMessage } from './codec.js';
import type { TransportLogger, TransportOptions } from './tcp.js';
import { peerFrameBytesMax, peerSendQueueMessagesMax, peerSnapshotBytesMax } from '../limits.js';
import { FRAME_HEADER_BYTES, type GroupMessage } from './frame.js';
import type { InboundStats, PeerStats, Transport, TransportStats } from './types.js';
import { seededRandom } from '../random.js';

export interface MemoryNetworkOptions {
  /** Seed of the PRNG behind setDropRate (default 1). */
  seed?: number;
  /** Pass messages through the codec (default true); false hands the sender's objects over as they are. */
  encode?: boolean;
  /** Sees every message the network passes or drops (for tests that wait on drops). */
  observer?: (outcome: 'delivered' | 'dropped', m: Message) => void;
}

/** The hub: who is bound where, and which links are cut, lossy or filtered. */
export class MemoryNetwork {
  readonly encode: boolean;
  readonly #observer: MemoryNetworkOptions['observer'];
  #bound = new Map<string, MemoryTransport>();
  #cutLinks = new Set<string>();
  #isolated = new Set<NodeId>();
  #dropRate = 0;
  #filter: ((m: Message) => boolean) | null = null;
  /** Seeded, so lossy runs replay exactly. */
  readonly #random: () => number;
  #nextPort = 1;
  delivered = 0;
  dropped = 0;

  constructor(options: MemoryNetworkOptions = {}) {
    this.encode = options.encode ?? true;
    this.#observer = options.observer;
    this.#random = seededRandom(options.seed ?? 1);
  }

  /** Cuts every link between nodes of different groups, both ways. Nodes in no group are untouched. */
  partition(...groups: NodeId[][]): void {
    for (const [i, group] of groups.entries()) {
      for (const other of groups.slice(i + 1)) {
        for (const a of group) for (const b of other) this.cut(a, b, { bothWays: true });
      }
    }
  }

  /** Cuts the link from → to (and to → from with bothWays). */
  cut(from: NodeId, to: NodeId, options: { bothWays?: boolean } = {}): void {
    this.#cutLinks.add(`${from}>${to}`);
    if (options.bothWays) this.#cutLinks.add(`${to}>${from}`);
  }

  /** Cuts a node off from everyone, both ways. */
  isolate(id: NodeId): void {
    this.#isolated.add(id);
  }

  /** Restores every link, clears the drop rate and the filter. */
  heal(): void {
    this.#cutLinks.clear();
    this.#isolated.clear();
    this.#dropRate = 0;
    this.#filter = null;
  }

  /** Drops each message with this probability, drawn from the seeded PRNG. */
  setDropRate(probability: number): void {
    assert(probability >= 0 && probability <= 1, 'memory network: drop rate must be in [0, 1]');
    this.#dropRate = probability;
  }

  /** Drops every message for which `keep` returns false (null removes the filter). */
  setFilter(keep: ((m: Message) => boolean) | null): void {
    this.#filter = keep;
  }

  /** Whether a message from node `from` to node `to` may cross the network now; counts it as dropped when not. */
  admits(m: Message, from: NodeId, to: NodeId): boolean {
    const blocked =
      this.#isolated.has(from) ||
      this.#isolated.has(to) ||
      this.#cutLinks.has(`${from}>${to}`) ||
      (this.#dropRate > 0 && this.#random() < this.#dropRate) ||
      (this.#filter !== null && !this.#filter(m));
    if (blocked) this.dropped++;
    else this.delivered++;
    this.#observer?.(blocked ? 'dropped' : 'delivered', m);
    return !blocked;
  }

  linkOpen(from: NodeId, to: NodeId): boolean {
    return !this.#isolated.has(from) && !this.#isolated.has(to) && !this.#cutLinks.has(`${from}>${to}`);
  }

  bind(transport: MemoryTransport, host: string, port: number): number {
    const chosen = port === 0 ? this.#freePort(host) : port;
    const key = `${host}:${chosen}`;
    assert(!this.#bound.has(key), `memory network: address ${key} is in use`);
    this.#bound.set(key, transport);
    return chosen;
  }

  unbind(transport: MemoryTransport): void {
    for (const [key, bound] of this.#bound) if (bound === transport) this.#bound.delete(key);
  }

  lookup(address: string): MemoryTransport | undefined {
    return this.#bound.get(address);
  }

  #freePort(host: string): number {
    while (this.#bound.has(`${host}:${this.#nextPort}`)) this.#nextPort++;
    return this.#nextPort++;
  }


}

export interface MemoryTransportOptions extends TransportOptions {
  network: MemoryNetwork;
}

interface QueuedMessage {
  group: GroupId;
  message: Message;
  /** The encoded message when the network encodes; the receiver decodes its own copy from it. */
  bytes: Buffer | null;
}

/** One frame: a message, or a Beat with the heartbeats of many groups (maybe none). */
type Queued = { beat: false; item: QueuedMessage } | { beat: true; items: QueuedMessage[] };

interface MemoryPeer {
  address: string;
  queue: Queued[];
  dropped: number;
  sentBytes: number;
  framesSent: number;
  refused: number;
  lastError: string | null;
}

export class MemoryTransport implements Transport {
  readonly options: MemoryTransportOptions;
  readonly #network: MemoryNetwork;
  readonly #logger: TransportLogger;
  readonly #sendQueueMax: number;
  readonly #maxFrameBytes: number;
  readonly #maxSnapshotBytes: number;
  readonly #memberNode: (group: GroupId, member: NodeId) => NodeId | undefined;
  #peers = new Map<NodeId, MemoryPeer>();
  #address: { host: string; port: number } | null = null;
  #flushScheduled = false;
  #closed = false;
  #unknownPeerDrops = 0;
  readonly inbound: InboundStats = {
    connections: 0,
    rejected: 0,
    mismatchedMessagesDropped: 0,
    protocolErrors: 0,
    lastError: null,
    receivedBytes: 0,
    messagesReceived: 0,
    snapshotsReceived: 0,
    snapshotChunksReceived: 0,
    snapshotsDropped: 0,
  };

  constructor(options: MemoryTransportOptions) {
    this.options = options;
    this.#network = options.network;
    this.#logger = options.logger ?? (() => {});
    this.#sendQueueMax = options.sendQueueMax ?? peerSendQueueMessagesMax;
    this.#maxFrameBytes = options.maxFrameBytes ?? peerFrameBytesMax;
    this.#maxSnapshotBytes = options.maxSnapshotBytes ?? peerSnapshotBytesMax;
    this.#memberNode = options.memberNode ?? ((_group, member) => member);
  }

  async start(): Promise<{ host: string; port: number }> {
    assert(this.#address === null && !this.#closed, 'memory transport: start() called twice or after close()');
    const { host, port } = this.options.listen;
    this.#address = { host, port: this.#network.bind(this, host, port) };
    return this.#address;
  }

  get address(): { host: string; port: number } {
    assert(this.#address !== null, 'memory transport: address read before start()');
    return this.#address;
  }

  addPeer(id: NodeId, address: string): void {
    assert(id !== this.options.id, 'memory transport: a node is not its own peer');
    if (this.#closed) return;
    const existing = this.#peers.get(id);
    if (existing !== undefined) {
      existing.address = address;
      return;
    }
    this.#peers.set(id, { address, queue: [], dropped: 0, sentBytes: 0, framesSent: 0, refused: 0, lastError: null });
  }

  updatePeer(id: NodeId, address: string): void {
    this.addPeer(id, address);
  }

  removePeer(id: NodeId): void {
    this.#peers.delete(id);
  }

  send(messages: Message[], group: GroupId = metaGroupId): void {
    if (this.#closed) return;
    for (const m of messages) {
      const node = this.#memberNode(group, m.to) ?? m.to;
      const peer = this.#peers.get(node);
      if (peer === undefined) {
        this.#unknownPeerDrops++;
        this.#logger('unknown-peer', { peer: node, group, message: m.type });
        this.#fail(node, group, m);
        continue;
      }
      if (peer.queue.length >= this.#sendQueueMax) {
        peer.dropped++;
        this.#logger('queue-full', { peer: node, queued: peer.queue.length, message: m.type });
        this.#fail(node, group, m);
        continue;
      }
      const bytes = this.#network.encode ? encodeMessage(m) : null;
      if (bytes !== null && m.type !== 'Snap' && bytes.length + FRAME_HEADER_BYTES > this.#maxFrameBytes) {
        peer.dropped++;
        this.#logger('message-too-large', { peer: node, message: m.type, bytes: bytes.length });
        this.#fail(node, group, m);
        continue;
      }
      peer.queue.push({ beat: false, item: { group, message: m, bytes } });
    }
    this.#scheduleFlush();
  }

  sendBeat(node: NodeId, messages: GroupMessage[]): void {
    if (this.#closed) return;
    const peer = this.#peers.get(node);
    if (peer === undefined) {
      this.#unknownPeerDrops++;
      this.#logger('unknown-peer', { peer: node, message: 'Beat' });
      return;
    }
    if (peer.queue.length >= this.#sendQueueMax) {
      peer.dropped++;
      this.options.onUnreachable?.(node);
      return;
    }
    const items = messages.map(({ group, message }) => ({ group, message, bytes: this.#network.encode ? encodeMessage(message) : null }));
    peer.queue.push({ beat: true, items });
    this.#scheduleFlush();
  }

  stats(): TransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const [id, peer] of this.#peers) {
      peers[id] = {
        address: peer.address,
        connected: this.#refusal(id, peer) === null && this.#network.linkOpen(this.options.id, id),
        queued: peer.queue.length,
        dropped: peer.dropped,
        sentBytes: peer.sentBytes,
        framesSent: peer.framesSent,
        refused: peer.refused,
        lastError: peer.lastError,
      };
    }
    return { peers, inbound: { ...this.inbound }, unknownPeerDrops: this.#unknownPeerDrops };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#network.unbind(this);
    this.#peers.clear();
  }

  #fail(node: NodeId, group: GroupId, m: Message): void {
    if (m.type === 'Snap') this.options.onSnapshotSent?.(node, false, group, m.to);
    this.options.onUnreachable?.(node);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    for (const [id, peer] of this.#peers) {
      const queue = peer.queue;
      peer.queue = [];
      for (const item of queue) {
        // A receiver's callback may close this transport or remove the peer mid-flush.
        if (this.#closed) return;
        if (this.#peers.get(id) !== peer) break;
        this.#deliver(id, peer, item);
      }
    }
  }

  /** Why `peer` would refuse a connection from us now, or null when it would accept. */
  #refusal(id: NodeId, peer: MemoryPeer): string | null {
    const target = this.#network.lookup(peer.address);
    if (target === undefined) return `nobody listens at ${peer.address}`;
    const { id: localId, clusterId } = this.options;
    if (target.options.clusterId !== clusterId) {
      return `member ${localId} belongs to cluster ${clusterId}, but member ${target.options.id} belongs to cluster ${target.options.clusterId}`;
    }
    if (target.options.id !== id) {
      return `member ${localId} dialed member ${id}, but this address is member ${target.options.id} (stale peer address?)`;
    }
    return null;
  }

  #deliver(id: NodeId, peer: MemoryPeer, queued: Queued): void {
    const refusal = this.#refusal(id, peer);
    if (refusal !== null) {
      peer.dropped++;
      if (peer.lastError !== refusal) {
        const target = this.#network.lookup(peer.address);
        if (target !== undefined) {
          peer.refused++;
          target.#rejected(refusal, this.options.id);
          this.#logger('handshake-refused', { localId: this.options.id, peer: id, address: peer.address, reason: refusal });
        } else {
          this.#logger('dial-failed', { peer: id, address: peer.address, error: refusal });
        }
      }
      peer.lastError = refusal;
      if (queued.beat) this.options.onUnreachable?.(id);
      else this.#fail(id, queued.item.group, queued.item.message);
      return;
    }
    peer.lastError = null;
    const target = this.#network.lookup(peer.address)!;
    peer.framesSent++;
    if (!queued.beat) return this.#carry(id, peer, target, queued.item);
    // A beat says the process is alive only where the link is open; its heartbeats may still be lost one by one.
    if (!this.#network.linkOpen(this.options.id, id)) return;
    target.options.onBeat?.(this.options.id);
    for (const item of queued.items) this.#carry(id, peer, target, item);
  }

  /** Hands one message to `target`, unless the network loses it. */
  #carry(id: NodeId, peer: MemoryPeer, target: MemoryTransport, item: QueuedMessage): void {
    const { message, group } = item;
    if (!this.#network.admits(message, this.options.id, id)) {
      if (message.type === 'Snap') this.options.onSnapshotSent?.(id, false, group, message.to);
      return;
    }
    peer.sentBytes += item.bytes?.length ?? 0;
    target.#receive(item.bytes === null ? message : decodeMessage(item.bytes), group, this.options.id, item.bytes?.length ?? 0);
    if (message.type === 'Snap') this.options.onSnapshotSent?.(id, true, group, message.to);
  }

  #rejected(reason: string, remoteId: NodeId): void {
    this.inbound.rejected++;
    this.inbound.lastError = reason;
    this.#logger('handshake-rejected', { localId: this.options.id, remoteId, reason });
  }

  #receive(m: Message, group: GroupId, fromNode: NodeId, bytes: number): void {
    this.inbound.receivedBytes += bytes;
    if (this.#memberNode(group, m.from) !== fromNode || this.#memberNode(group, m.to) !== this.options.id) {
      this.inbound.mismatchedMessagesDropped++;
      this.#logger('message-dropped', { localId: this.options.id, remoteId: fromNode, group, message: m.type, from: m.from, to: m.to });
      return;
    }
    if (m.type === 'Snap') {
      if (m.snapshot.data.byteLength > this.#maxSnapshotBytes) {
        this.inbound.snapshotsDropped++;
        this.#logger('snapshot-too-large', { remoteId: m.from, bytes: m.snapshot.data.byteLength });
        return;
      }
      this.inbound.snapshotsReceived++;
    }
    this.inbound.messagesReceived++;
    this.options.onMessage(m, group, fromNode);
  }
}
