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
// - a Snap reports onSnapshotSent(ok) once it is delivered or lost.
// Differences: a link that is cut or lossy drops messages silently (like a black-holed network,
// which TCP would only notice much later), and a peer address that nobody is bound to reports
// onUnreachable at once (like a refused connection).
import type { Message, NodeId } from '../raft/types.js';
import { assert } from '../errors.js';
import { decodeMessage, encodeMessage } from './codec.js';
import type { TransportLogger, TransportOptions } from './tcp.js';
import { peerFrameBytesMax, peerSendQueueMessagesMax, peerSnapshotBytesMax } from '../limits.js';
import { FRAME_HEADER_BYTES } from './frame.js';
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

  /** Whether a message may cross the network now; counts it as dropped when not. */
  admits(m: Message): boolean {
    const blocked =
      this.#isolated.has(m.from) ||
      this.#isolated.has(m.to) ||
      this.#cutLinks.has(`${m.from}>${m.to}`) ||
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

interface Queued {
  message: Message;
  /** The encoded message when the network encodes; the receiver decodes its own copy from it. */
  bytes: Buffer | null;
}

interface MemoryPeer {
  address: string;
  queue: Queued[];
  dropped: number;
  sentBytes: number;
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
    this.#peers.set(id, { address, queue: [], dropped: 0, sentBytes: 0, refused: 0, lastError: null });
  }

  updatePeer(id: NodeId, address: string): void {
    this.addPeer(id, address);
  }

  removePeer(id: NodeId): void {
    this.#peers.delete(id);
  }

  send(messages: Message[]): void {
    if (this.#closed) return;
    for (const m of messages) {
      const peer = this.#peers.get(m.to);
      if (peer === undefined) {
        this.#unknownPeerDrops++;
        this.#logger('unknown-peer', { peer: m.to, message: m.type });
        this.#fail(m);
        continue;
      }
      if (peer.queue.length >= this.#sendQueueMax) {
        peer.dropped++;
        this.#logger('queue-full', { peer: m.to, queued: peer.queue.length, message: m.type });
        this.#fail(m);
        continue;
      }
      const bytes = this.#network.encode ? encodeMessage(m) : null;
      if (bytes !== null && m.type !== 'Snap' && bytes.length + FRAME_HEADER_BYTES > this.#maxFrameBytes) {
        peer.dropped++;
        this.#logger('message-too-large', { peer: m.to, message: m.type, bytes: bytes.length });
        this.#fail(m);
        continue;
      }
      peer.queue.push({ message: m, bytes });
    }
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

  #fail(m: Message): void {
    if (m.type === 'Snap') this.options.onSnapshotSent?.(m.to, false);
    this.options.onUnreachable?.(m.to);
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

  #deliver(id: NodeId, peer: MemoryPeer, item: Queued): void {
    const { message } = item;
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
      this.#fail(message);
      return;
    }
    peer.lastError = null;
    if (!this.#network.admits(message)) {
      if (message.type === 'Snap') this.options.onSnapshotSent?.(id, false);
      return;
    }
    const target = this.#network.lookup(peer.address)!;
    peer.sentBytes += item.bytes?.length ?? 0;
    target.#receive(item.bytes === null ? message : decodeMessage(item.bytes), item.bytes?.length ?? 0);
    if (message.type === 'Snap') this.options.onSnapshotSent?.(id, true);
  }

  #rejected(reason: string, remoteId: NodeId): void {
    this.inbound.rejected++;
    this.inbound.lastError = reason;
    this.#logger('handshake-rejected', { localId: this.options.id, remoteId, reason });
  }

  #receive(m: Message, bytes: number): void {
    this.inbound.receivedBytes += bytes;
    if (m.type === 'Snap') {
      if (m.snapshot.data.byteLength > this.#maxSnapshotBytes) {
        this.inbound.snapshotsDropped++;
        this.#logger('snapshot-too-large', { remoteId: m.from, bytes: m.snapshot.data.byteLength });
        return;
      }
      this.inbound.snapshotsReceived++;
    }
    this.inbound.messagesReceived++;
    this.options.onMessage(m);
  }
}
