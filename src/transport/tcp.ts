// Raft messages between nodes over raw TCP with length-prefixed binary frames (see frame.ts for
// the frame format and codec.ts for the message encoding).
//
// Shape: each node (a process: a store hosting replicas of one group or many, src/store) listens;
// for traffic A → B, A keeps one persistent outbound connection to B (so every connection carries
// data in one direction, plus B's handshake frames), whatever groups the traffic belongs to. Each
// message travels with its group id. The dialer sends Hello(protocol version, clusterId, from, to)
// with node ids; the listener refuses a peer of another cluster, a dial meant for another node id,
// and an id that is not a current peer (added with addPeer). Refusals are logged and counted on both sides, never silent; the refusal
// text sent back names no id, since whoever dials may be a stranger.
//
// Binding a connection to a member id. A Hello only claims an id, and a cluster's ids are public
// (every gRPC response header carries the cluster id, the Cluster API lists the members), so the
// listener believes the claim only once the dialer proves it, by return routability (the idea of
// QUIC's address validation and of SCTP's cookies): the listener B sends a random nonce in a
// Challenge over B's OWN outbound link to the claimed member A's registered peer address; A sends
// it back in a Proof on its current connection to B; the connection on which the nonce arrives is
// bound to A, and only then does B send HelloAck and read messages from it. An impostor that dials
// from anywhere else never sees the nonce: its connection stays unbound, carries nothing but
// handshake frames, and is cut at the handshake timeout, while A keeps its own connection (a new
// connection replaces an older one of the same member only once it is bound). On a bound
// connection, a message whose `from` is not a member of its group hosted on the bound node, or
// whose `to` is not a member of its group hosted here, is dropped and counted (memberNode says
// which node hosts a group's member; in a one-group cluster member id and node id are the same).
// Removing a peer closes its connections.
//
// What the binding protects against, and what not. It stops anyone who cannot receive traffic
// sent to a member's peer address (another host, a client of the cluster, a process that read the
// ids off the API) from speaking as that member: no forged append, proposal or TimeoutNow reaches
// raft. It does not stop someone who can read or redirect traffic to that address (on the network
// path, or by changing the member's peer address through the Cluster API, which auth guards), and
// it hides nothing. Peer TLS covers those (see TransportOptions.tls): the nonce then travels
// encrypted to a listener whose certificate the dialer verified, and with client certificates
// required, only holders of a certificate from the cluster's CA can say Hello at all. Why both:
// TLS proves that the other end holds one of the cluster's certificates, not which member it is
// (peer certificates name hosts, not member ids, as in etcd), and it needs configuration; the
// dial-back needs none, costs one round trip per new connection, and binds the id in both modes.
//
// Data directories. The Hello names the dialer's data directory id and the HelloAck the listener's;
// once the dialer proved its member id, each end asks admitPeer whether the other may talk to it
// (src/server/data-dirs.ts: a member that comes back with another data directory lost what it had
// promised). A dialer refused that way is told it is "superseded" (onSuperseded) and stops.
// A dialer refused because of membership (it is not a current member of the listener's cluster,
// or the listener is another member than the one it dialed) is told so too (onMembershipRefused):
// a new member whose --initial-cluster lists only members that were replaced since can learn
// nothing else from its peers (src/server/data-dirs.ts decides when it gives up).
//
// Sending never blocks and never throws for network trouble: send() encodes each message into its
// destination's bounded queue and schedules one flush per event-loop turn, which writes every
// queued frame in a single socket write and stops at socket backpressure until 'drain'. A full
// queue drops the message and reports the peer unreachable, which makes raft slow down and retry.
//
// Snapshots are streamed: a SnapBegin frame (the Snap message without data, plus the data length)
// followed by chunks of at most peerSnapshotChunkBytesMax that each fit in maxFrameBytes, written
// straight from the snapshot's buffer (or read from its file). Only a connection bound to a member
// gets this far. The receiver hands the chunks, up to maxSnapshotBytes in all, to a sink (the
// server's: a file in its snapshot store), stops reading the connection while more than
// snapshotPendingBytesMax of them wait to be stored, and delivers one Snap message whose data is
// what the sink made of them; frames behind the snapshot wait for that delivery.
//
// Received messages alias the socket's read buffers (see codec.ts); Node allocates a fresh buffer
// per read, so raft may keep entries it receives without copying them.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { readSnapshotData, type Message, type NodeId, type SnapshotData } from '../raft/types.js';
import { assert, isDiskFull, isLichenError } from '../errors.js';
import { metaGroupId, type GroupId } from '../ids.js';
import {
  peerFrameBytesMax,
  peerInboundConnectionsMax,
  peerQueuedChallengesMax,
  peerSendQueueMessagesMax,
  peerUnboundChallengesMax,
  peerSnapshotBytesMax,
  peerSnapshotChunkBytesMax,
  peerSnapshotPendingBytesMax,
} from '../limits.js';
import type { InboundStats, PeerStats, Transport, TransportStats } from './types.js';
import { decodeMessage, encodeMessage } from './codec.js';
import {
  FRAME_HEADER_BYTES,
  FrameKind,
  FrameReader,
  HANDSHAKE_FRAME_BYTES_MAX,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  decodeHello,
  DATA_DIR_ID_BYTES,
  decodeBeat,
  decodeHelloAck,
  decodeMessageFrame,
  decodeNonce,
  decodeSnapBegin,
  encodeBeatFrames,
  encodeHello,
  encodeMessageFrame,
  encodeHelloAck,
  encodeNonceFrame,
  encodeSnapBegin,
  frameHeader,
  type GroupMessage,
  type HelloAck,
} from './frame.js';
import { parseHostPort, type HostPort } from '../address.js';

export type TransportLogger = (event: string, fields: Record<string, unknown>) => void;

export interface PeerTls {
  server: tls.TlsOptions;
  client: tls.ConnectionOptions;
  accept?: (socket: tls.TLSSocket) => string | undefined;
}

/**
 * Why a listener refused a handshake or dropped a message of a bound connection (metric labels):
 * `unproven` is a dialer that did not prove its member id in time (an impostor, or a member whose
 * own peer address does not reach it).
 */
export type PeerRefusal =
  | { kind: 'handshake'; reason: 'tls' | 'version' | 'cluster' | 'wrong_member' | 'not_member' | 'self' | 'unproven' | 'superseded' }
  | { kind: 'message'; reason: 'from_mismatch' | 'to_mismatch' };

export interface TransportOptions {
  id: NodeId;
  clusterId: number;
  /** port 0 picks a free port; read the chosen one from start()'s result or `address`. */
  listen: { host: string; port: number };
  /** A server already listening on `listen`, bound by the caller early; start() takes it over (its 'connection' listeners are replaced). */
  server?: net.Server;
  /**
   * Called synchronously for each received message, in the order the sender sent them, with its
   * group and the node it came from.
   */
  onMessage: (m: Message, group: GroupId, fromNode: NodeId) => void;
  /** A Beat frame arrived from `fromNode` (before its messages): that process is alive. */
  onBeat?: (fromNode: NodeId) => void;
  /**
   * Which node hosts member `member` of `group` (undefined: none this process knows of). Inbound
   * messages must name a sender hosted on the connection's node and a receiver hosted here;
   * send() routes by it. Default: member ids are node ids (one group).
   */
  memberNode?: (group: GroupId, member: NodeId) => NodeId | undefined;
  /** A send failed or the peer is down: the server calls raft.reportUnreachable. */
  onUnreachable?: (peer: NodeId) => void;
  /** A Snap message of `group` to `to` on node `peer` was fully written (ok) or failed: the server calls raft.reportSnapshot. */
  onSnapshotSent?: (peer: NodeId, ok: boolean, group: GroupId, to: NodeId) => void;
  /** Messages queued per peer (default peerSendQueueMessagesMax); when full the message is dropped and onUnreachable called. */
  sendQueueMax?: number;
  /** The largest frame sent or accepted, length field included (default peerFrameBytesMax). Snapshots are chunked under it. */
  maxFrameBytes?: number;
  /** The largest snapshot a receiver reassembles (default peerSnapshotBytesMax); larger ones are dropped and logged. */
  maxSnapshotBytes?: number;
  /** Reconnect delay: starts at min, doubles per failed attempt up to max, with jitter (default 50..2000). */
  reconnectBackoffMs?: { min: number; max: number };
  /** A dial or inbound connection that has not completed its handshake by then is closed (default 5000). */
  handshakeTimeoutMs?: number;
  /** Inbound connections accepted at once (default peerInboundConnectionsMax); more are closed immediately. */
  maxInboundConnections?: number;
  /** Randomness for backoff jitter, in [0, 1) (default Math.random). */
  random?: () => number;
  /** Unpredictable bytes for handshake challenges (default crypto.randomBytes). */
  randomNonce?: () => Uint8Array;
  /**
   * Peer TLS: the listener serves with `server`, dials use `client`, and `accept` may refuse an
   * accepted connection (a certificate's common name) with a reason. Without it, plain TCP.
   */
  tls?: PeerTls;
  /**
   * Where a snapshot's data goes as it arrives (the server streams it into a file of its snapshot
   * store). Default: a buffer in memory, for tests.
   */
  receiveSnapshot?: (m: SnapMessage, dataBytes: number, group: GroupId) => SnapshotSink;
  /** Snapshot bytes a sink may have pending before the connection stops being read (default peerSnapshotPendingBytesMax). */
  snapshotPendingBytesMax?: number;
  /** Counts refusals (the server's metrics); they are logged and in stats() as well. */
  onRefusal?: (refusal: PeerRefusal) => void;
  /** This member's data directory id (DATA_DIR_ID_BYTES), sent in every handshake (default zeros). */
  dataDirId?: Uint8Array;
  /**
   * Decides whether a peer whose handshake names this data directory id may talk to us: resolves
   * undefined to admit it (once whatever must be remembered of it is durable) or with the reason
   * why not (this member knows that peer by another data directory). Asked on both ends of every
   * connection, after the dialer proved its member id: 'inbound' on the listener, 'outbound' on the
   * dialer once the listener accepted it. Default: admit everyone.
   */
  admitPeer?: (peer: NodeId, dataDirId: Uint8Array, direction: 'inbound' | 'outbound') => Promise<string | undefined>;
  /** A peer refused our dial because it knows this member by another data directory (see admitPeer). */
  onSuperseded?: (peer: NodeId, reason: string) => void;
  /**
   * The member at a peer's address refused our dial because of membership: `not_member`, this
   * member is not a current member of its cluster; `wrong_member`, it is another member of this
   * cluster than `peer`. `reason` is the listener's text, which names no id.
   */
  onMembershipRefused?: (peer: NodeId, refusal: 'not_member' | 'wrong_member', reason: string) => void;
  logger?: TransportLogger;
}

const RECONNECT_BACKOFF_MS_DEFAULT = { min: 50, max: 2000 };
const HANDSHAKE_TIMEOUT_MS_DEFAULT = 5000;
/** The smallest sensible frame limit: a chunk must carry real data after the header. */
const MAX_FRAME_BYTES_MIN = 1024;
/** One socket write carries at most this many bytes of small frames, so one write stays cheap. */
const WRITE_BATCH_BYTES_MAX = 1024 * 1024;
const KEEPALIVE_INITIAL_DELAY_MS = 5000;
const EMPTY_BYTES = new Uint8Array(0);

interface ResolvedOptions
  extends Required<Omit<TransportOptions, 'onUnreachable' | 'onSnapshotSent' | 'onRefusal' | 'logger' | 'tls' | 'server' | 'onSuperseded' | 'onMembershipRefused' | 'onBeat' | 'memberNode'>> {
  onBeat: (fromNode: NodeId) => void;
  memberNode: (group: GroupId, member: NodeId) => NodeId | undefined;
  tls: PeerTls | undefined;
  onSuperseded: (peer: NodeId, reason: string) => void;
  onMembershipRefused: (peer: NodeId, refusal: 'not_member' | 'wrong_member', reason: string) => void;
  onUnreachable: (peer: NodeId) => void;
  onSnapshotSent: (peer: NodeId, ok: boolean, group: GroupId, to: NodeId) => void;
  onRefusal: (refusal: PeerRefusal) => void;
  logger: TransportLogger;
}

type SnapMessage = Extract<Message, { type: 'Snap' }>;

/** Receives one snapshot's data in order; the transport stops reading while pendingBytes is high. */
export interface SnapshotSink {
  /** Bytes handed to write() that are not stored yet. */
  readonly pendingBytes: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Called once all the data was written: the snapshot's data, to deliver. */
  finish(): Promise<SnapshotData>;
  /** The reception is cut short: drop what was stored. */
  abort(): void;
}

/** The default sink: the data in one buffer. */
function memorySink(dataBytes: number): SnapshotSink {
  const data = Buffer.allocUnsafe(dataBytes);
  let at = 0;
  return {
    pendingBytes: 0,
    write: async (chunk) => {
      data.set(chunk, at);
      at += chunk.length;
    },
    finish: async () => data,
    abort: () => undefined,
  };
}

/** A queued snapshot: its SnapBegin frame, then chunks cut from `data` as they are written. */
interface SnapItem {
  kind: 'snap';
  group: GroupId;
  /** The member of `group` it is for. */
  to: NodeId;
  begin: Buffer;
  data: SnapshotData;
  /** How much of `data` is handed to the socket; -1 until SnapBegin is written. */
  written: number;
  reported: boolean;
}

type QueueItem = { kind: 'frame'; frame: Buffer } | SnapItem;

/** Where to dial a peer, or null when its address is not host:port with a port to dial (not 0). */
function dialTarget(address: string): HostPort | null {
  try {
    const target = parseHostPort(address);
    return target.port > 0 ? target : null;
  } catch {
    return null;
  }
}

/** Decoders throw LichenError for bad input; anything else is a bug in this process and must crash. */
function rethrowIfBug(error: unknown): void {
  if (!isLichenError(error)) throw error;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether the first bytes of a connection are a TLS handshake record (TLS 1.0 to 1.3) rather than
 * a Lichen frame: a member with peer TLS dialed one without. Worth its own error message.
 */
function looksLikeTls(chunk: Buffer): boolean {
  return chunk.length >= 3 && chunk[0] === 0x16 && chunk[1] === 0x03 && chunk[2]! <= 0x04;
}

/** The outbound side towards one peer: its queue, its connection, its reconnect timer. */
class PeerLink {
  address: string;
  #socket: net.Socket | null = null;
  /** The socket is connected and its Hello written: handshake frames may follow at once. */
  #socketReady = false;
  #state: 'idle' | 'dialing' | 'open' | 'backoff' | 'closed' = 'idle';
  /** Challenge frames waiting for the next connection (see sendChallenge). */
  #challenges: Buffer[] = [];
  /** Whether this dial attempt's backoff was already cut short by a challenge (see #hurry). */
  #hurried = false;
  #queue: QueueItem[] = [];
  #head = 0;
  #blocked = false;
  #flushScheduled = false;
  #failedAttempts = 0;
  #reconnectTimer: NodeJS.Timeout | null = null;
  /** Snapshots fully handed to the socket whose write callback has not fired yet. */
  #snapsInFlight = new Set<SnapItem>();
  dropped = 0;
  sentBytes = 0;
  /** Message and Beat frames handed to the socket (tests count coalescing by them). */
  framesSent = 0;
  refused = 0;
  lastError: string | null = null;
  #loggedQueueFull = false;

  constructor(
    readonly id: NodeId,
    address: string,
    readonly options: ResolvedOptions,
  ) {
    this.address = address;
  }

  get connected(): boolean {
    return this.#state === 'open';
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  start(): void {
    this.#dial();
  }

  /** Points the link at a new address: drops the current connection and dials at once. */
  retarget(address: string): void {
    if (address === this.address || this.#state === 'closed') return;
    this.address = address;
    this.#failedAttempts = 0;
    this.#clearReconnectTimer();
    this.#dropConnection('peer address changed');
    this.#dial();
  }

  /**
   * Sends a Challenge to this peer (it proves an inbound connection that claims to be this peer).
   * It goes on the current connection, even one still waiting for its HelloAck, since the peer
   * may be proving our own dial at the same time; without a connection it waits for the next one,
   * and a link in backoff redials sooner: a dial from the peer says it is up again.
   */
  sendChallenge(nonce: Uint8Array): void {
    const frame = encodeNonceFrame(FrameKind.Challenge, nonce);
    if (this.#socketReady) {
      this.#socket!.write(frame);
      return;
    }
    if (this.#state === 'closed') return;
    if (this.#challenges.length >= peerQueuedChallengesMax) this.#challenges.shift();
    this.#challenges.push(frame);
    this.#hurry();
  }

  /**
   * Answers a Challenge on the current connection: that is the connection the peer is proving.
   * Without one the proof is dropped, since the connection it was for is gone.
   */
  sendProof(nonce: Uint8Array): void {
    if (this.#socketReady) this.#socket!.write(encodeNonceFrame(FrameKind.Proof, nonce));
  }

  /** Stops for good: no callbacks afterwards, since the caller is shutting down or removed the peer. */
  close(): void {
    this.#state = 'closed';
    this.#clearReconnectTimer();
    this.#queue = [];
    this.#challenges = [];
    this.#socketReady = false;
    this.#head = 0;
    this.#snapsInFlight.clear();
    const socket = this.#socket;
    this.#socket = null;
    socket?.destroy();
  }

  enqueue(m: Message, group: GroupId): void {
    if (!this.#admitToQueue(m.type)) {
      if (m.type === 'Snap') this.options.onSnapshotSent(this.id, false, group, m.to);
      return;
    }
    const item = m.type === 'Snap' ? this.#snapItem(m, group) : this.#frameItem(m, group);
    if (item === null) return;
    this.#queue.push(item);
    if (this.#state === 'open') this.#scheduleFlush();
  }

  /** Queues Beat frames (see frame.ts): dropped when the queue is full, like any message. */
  enqueueBeat(messages: GroupMessage[]): void {
    if (!this.#admitToQueue('Beat')) return;
    for (const frame of encodeBeatFrames(messages, this.options.maxFrameBytes)) this.#queue.push({ kind: 'frame', frame });
    if (this.#state === 'open') this.#scheduleFlush();
  }

  /** Whether the queue has room; a full one drops (counted, logged once) and reports the peer unreachable. */
  #admitToQueue(what: string): boolean {
    if (this.#state === 'closed') return false;
    if (this.queued >= this.options.sendQueueMax) {
      this.dropped++;
      if (!this.#loggedQueueFull) {
        this.#loggedQueueFull = true;
        this.options.logger('queue-full', { peer: this.id, queued: this.queued, message: what });
      }
      this.options.onUnreachable(this.id);
      return false;
    }
    this.#loggedQueueFull = false;
    return true;
  }

  #frameItem(m: Message, group: GroupId): QueueItem | null {
    const frame = encodeMessageFrame(group, m);
    if (frame.length > this.options.maxFrameBytes) {
      // Raft bounds its message sizes (entries per append); a message this large is dropped so the
      // log shows the limit to raise, and raft treats the peer as unreachable and retries.
      this.dropped++;
      this.options.logger('message-too-large', {
        peer: this.id,
        message: m.type,
        bytes: frame.length,
        maxFrameBytes: this.options.maxFrameBytes,
      });
      this.options.onUnreachable(this.id);
      return null;
    }
    return { kind: 'frame', frame };
  }

  #snapItem(m: SnapMessage, group: GroupId): SnapItem {
    const withoutData: SnapMessage = { ...m, snapshot: { metadata: m.snapshot.metadata, data: EMPTY_BYTES } };
    const begin = encodeSnapBegin(m.snapshot.data.byteLength, group, encodeMessage(withoutData));
    assert(begin.length <= this.options.maxFrameBytes, 'transport: snapshot metadata exceeds maxFrameBytes');
    return { kind: 'snap', group, to: m.to, begin, data: m.snapshot.data, written: -1, reported: false };
  }

  #dial(): void {
    if (this.#state === 'closed') return;
    const target = dialTarget(this.address);
    if (target === null) {
      this.lastError = `invalid peer address ${JSON.stringify(this.address)} (want host:port)`;
      this.options.logger('dial-failed', { peer: this.id, address: this.address, error: this.lastError });
      this.#onFailure();
      return;
    }
    this.#state = 'dialing';
    this.#hurried = false;
    const peerTls = this.options.tls;
    const socket = peerTls ? tls.connect({ ...peerTls.client, host: target.host, port: target.port }) : net.connect({ host: target.host, port: target.port });
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(this.options.handshakeTimeoutMs);
    const reader = new FrameReader(HANDSHAKE_FRAME_BYTES_MAX);
    socket.on(peerTls ? 'secureConnect' : 'connect', () => {
      if (socket !== this.#socket) return;
      socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
      socket.write(encodeHello({ clusterId: this.options.clusterId, from: this.options.id, to: this.id, dataDirId: this.options.dataDirId }));
      for (const challenge of this.#challenges) socket.write(challenge);
      this.#challenges = [];
      this.#socketReady = true;
    });
    socket.on('timeout', () => {
      socket.destroy(new Error(`no handshake reply within ${this.options.handshakeTimeoutMs} ms`));
    });
    // Whether the listener said anything, or the socket failed: a silent close gets a hint (#onClose).
    let heard = false;
    socket.on('data', (chunk: Buffer) => {
      heard = true;
      if (socket !== this.#socket) return;
      const error = reader.push(chunk, (frame) => this.#onReplyFrame(socket, reader, frame));
      if (error !== null) socket.destroy(new Error(`bad reply from peer: ${error}`));
    });
    socket.on('drain', () => {
      if (socket !== this.#socket) return;
      this.#blocked = false;
      this.#flush();
    });
    socket.on('error', (error) => {
      heard = true;
      if (socket !== this.#socket) return;
      this.lastError = errorText(error);
    });
    socket.on('close', () => this.#onClose(socket, heard));
  }

  #onReplyFrame(socket: net.Socket, reader: FrameReader, frame: Buffer): void {
    if (this.#state !== 'dialing' || frame[0] !== FrameKind.HelloAck) {
      reader.stop();
      socket.destroy(new Error(`unexpected frame kind ${frame[0]} from the listener`));
      return;
    }
    let ack: HelloAck;
    try {
      ack = decodeHelloAck(frame.subarray(1));
    } catch (error) {
      rethrowIfBug(error);
      reader.stop();
      socket.destroy(error as Error);
      return;
    }
    reader.stop();
    if (ack.status !== 'accepted') {
      this.refused++;
      this.lastError = `refused by peer ${this.id} at ${this.address}: ${ack.reason}`;
      this.options.logger('handshake-refused', {
        localId: this.options.id,
        peer: this.id,
        address: this.address,
        clusterId: this.options.clusterId,
        reason: ack.reason,
      });
      socket.destroy();
      if (ack.status === 'superseded') this.options.onSuperseded(this.id, ack.reason);
      if (ack.status === 'not_member' || ack.status === 'wrong_member') this.options.onMembershipRefused(this.id, ack.status, ack.reason);
      return;
    }
    void this.options.admitPeer(this.id, ack.dataDirId, 'outbound').then((refusal) => {
      if (socket !== this.#socket || this.#state !== 'dialing') return;
      if (refusal !== undefined) {
        this.lastError = refusal;
        this.options.logger('peer-superseded', { peer: this.id, address: this.address, reason: refusal });
        socket.destroy();
        return;
      }
      socket.setTimeout(0);
      this.#state = 'open';
      this.#failedAttempts = 0;
      this.lastError = null;
      this.options.logger('peer-connected', { peer: this.id, address: this.address });
      this.#scheduleFlush();
    }, (error: unknown) => socket.destroy(error as Error));
  }

  #onClose(socket: net.Socket, heard: boolean): void {
    if (socket !== this.#socket) return;
    if (this.#state === 'dialing' && this.#socketReady && !heard) {
      // Silence is what a TLS listener answers to a plain hello.
      this.lastError = 'the peer closed the connection without answering the hello (does its peer port use TLS and ours not?)';
    }
    this.#socket = null;
    this.#socketReady = false;
    const wasOpen = this.#state === 'open';
    this.options.logger(wasOpen ? 'peer-disconnected' : 'dial-failed', {
      peer: this.id,
      address: this.address,
      error: this.lastError,
    });
    this.#onFailure();
  }

  /** Shared by every kind of connection failure: fail snapshots, report, and retry later. */
  #onFailure(): void {
    this.#blocked = false;
    this.#failSnapshots();
    this.options.onUnreachable(this.id);
    if (this.#state === 'closed') return;
    this.#state = 'backoff';
    this.#clearReconnectTimer();
    const { min, max } = this.options.reconnectBackoffMs;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.#failedAttempts, 30));
    // "Equal jitter": half the delay is fixed, half random, so peers that failed together spread out.
    const delayMs = ceiling / 2 + (this.options.random() * ceiling) / 2;
    this.#failedAttempts++;
    this.#scheduleDial(delayMs);
  }

  #scheduleDial(delayMs: number): void {
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = null;
      this.#dial();
    }, delayMs);
    // A pending reconnect alone must not keep the process alive.
    this.#reconnectTimer.unref();
  }

  /**
   * Cuts a backoff short (to the minimum delay) once per dial attempt, so that challenges reach
   * a peer that just came back without waiting out a long backoff, while a stranger's stream of
   * claims cannot make us dial faster than once per minimum delay.
   */
  #hurry(): void {
    if (this.#state !== 'backoff' || this.#hurried || this.#reconnectTimer === null) return;
    this.#hurried = true;
    this.#clearReconnectTimer();
    this.#scheduleDial(this.options.reconnectBackoffMs.min);
  }

  /** Closes the current socket without the failure path (used when the address changes). */
  #dropConnection(reason: string): void {
    const socket = this.#socket;
    if (socket === null) return;
    this.#socket = null;
    this.#socketReady = false;
    this.#state = 'idle';
    this.#blocked = false;
    this.#failSnapshots();
    socket.destroy();
    this.options.logger('peer-disconnected', { peer: this.id, address: this.address, error: reason });
  }

  /**
   * A snapshot cannot resume on a new connection (the receiver's reassembly state went with the
   * old one), and a stale snapshot is not worth keeping: every queued or in-flight snapshot fails
   * and raft sends a fresh one when the peer is back.
   */
  #failSnapshots(): void {
    const failed: SnapItem[] = [...this.#snapsInFlight];
    this.#snapsInFlight.clear();
    const kept: QueueItem[] = [];
    for (let i = this.#head; i < this.#queue.length; i++) {
      const item = this.#queue[i]!;
      if (item.kind === 'snap') failed.push(item);
      else kept.push(item);
    }
    if (kept.length !== this.queued) {
      this.#queue = kept;
      this.#head = 0;
    }
    for (const item of failed) this.#reportSnapshot(item, false);
  }

  #reportSnapshot(item: SnapItem, ok: boolean): void {
    if (item.reported || this.#state === 'closed') return;
    item.reported = true;
    this.options.onSnapshotSent(this.id, ok, item.group, item.to);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // setImmediate runs after the current turn's I/O callbacks, so every send() of this turn
    // lands in the same socket write.
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    const socket = this.#socket;
    if (this.#state !== 'open' || socket === null) return;
    while (this.#head < this.#queue.length && !this.#blocked) {
      const item = this.#queue[this.#head]!;
      if (item.kind === 'snap') {
        if (this.#writeSnapshot(socket, item)) this.#head++;
        continue;
      }
      const frames: Buffer[] = [];
      let bytes = 0;
      while (this.#head < this.#queue.length && bytes < WRITE_BATCH_BYTES_MAX) {
        const next = this.#queue[this.#head]!;
        if (next.kind !== 'frame') break;
        frames.push(next.frame);
        bytes += next.frame.length;
        this.#head++;
      }
      this.sentBytes += bytes;
      this.framesSent += frames.length;
      const batch = frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes);
      if (!socket.write(batch)) this.#blocked = true;
    }
    this.#compactQueue();
  }

  /** Writes as much of a snapshot as backpressure allows; true when all of it is handed over. */
  #writeSnapshot(socket: net.Socket, item: SnapItem): boolean {
    if (item.written < 0) {
      item.written = 0;
      this.sentBytes += item.begin.length;
      // Without data the SnapBegin frame is the whole snapshot, so its write completes it.
      const empty = item.data.byteLength === 0;
      if (empty) this.#snapsInFlight.add(item);
      const more = socket.write(item.begin, empty ? (error) => this.#onSnapshotWritten(item, error) : undefined);
      if (!more) this.#blocked = true;
    }
    const chunkBytesMax = Math.min(peerSnapshotChunkBytesMax, this.options.maxFrameBytes - FRAME_HEADER_BYTES);
    while (item.written < item.data.byteLength && !this.#blocked) {
      const end = Math.min(item.data.byteLength, item.written + chunkBytesMax);
      const chunk = readSnapshotData(item.data, item.written, end - item.written);
      item.written = end;
      const last = end === item.data.byteLength;
      this.sentBytes += FRAME_HEADER_BYTES + chunk.length;
      socket.cork();
      socket.write(frameHeader(FrameKind.SnapChunk, chunk.length));
      const more = socket.write(chunk, last ? (error) => this.#onSnapshotWritten(item, error) : undefined);
      socket.uncork();
      if (!more) this.#blocked = true;
      if (last) this.#snapsInFlight.add(item);
    }
    return item.written === item.data.byteLength;
  }

  #onSnapshotWritten(item: SnapItem, error: Error | null | undefined): void {
    if (!this.#snapsInFlight.delete(item)) return;
    this.#reportSnapshot(item, !error);
  }

  #compactQueue(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }

  #clearReconnectTimer(): void {
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
  }
}

/** A snapshot being received; `sink` is null when it is over the limit and skipped. */
interface Reception {
  group: GroupId;
  message: SnapMessage;
  totalBytes: number;
  receivedBytes: number;
  sink: SnapshotSink | null;
}

/** What an inbound connection needs from its transport. */
interface InboundHost {
  options: ResolvedOptions;
  inbound: InboundStats;
  /** Whether `id` is a current member other than this one (a peer added with addPeer). */
  isPeer(id: NodeId): boolean;
  /** Asks member `id`, over our own link to its registered address, to prove a connection. */
  challenge(id: NodeId, nonce: Uint8Array): void;
  /** Proves our own connection to member `id` by sending back the nonce it challenged us with. */
  prove(id: NodeId, nonce: Uint8Array): void;
  onAccepted(conn: InboundConnection): void;
}

/**
 * The receiving side of one inbound connection: it waits for a Hello, then for the Proof that
 * binds it to the claimed member id (see the top of this file), then reads that member's messages.
 */
class InboundConnection {
  /** The id the Hello claimed; null before the Hello. */
  #claimedId: NodeId | null = null;
  /** The data directory id the Hello named. */
  #dataDirId: Uint8Array | null = null;
  /** The nonce the claimed member must send back on this connection; null once proven. */
  #nonce: Buffer | null = null;
  #challengesRelayed = 0;
  #loggedMismatch = false;
  /** The member this connection is bound to; null until it proved the claimed id. */
  #remoteId: NodeId | null = null;
  #reader = new FrameReader(HANDSHAKE_FRAME_BYTES_MAX);
  #snapshot: Reception | null = null;
  /** Frames that arrived after a whole snapshot that is not delivered yet (see #finishSnapshot). */
  #deferred: Buffer[] | null = null;
  #closing = false;

  constructor(
    readonly socket: net.Socket,
    readonly transport: InboundHost,
  ) {
    socket.setNoDelay(true);
    socket.setTimeout(transport.options.handshakeTimeoutMs);
    socket.on('timeout', () => this.#onHandshakeTimeout());
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    // Errors (resets by the peer) end in 'close'; the listener only has to exist so none is thrown.
    socket.on('error', () => {});
    socket.on('close', () => this.#abortSnapshot());
  }

  /** The member this connection is bound to, or null while it is not (yet) proven. */
  get remoteId(): NodeId | null {
    return this.#remoteId;
  }

  /** The member id the dialer claims or proved, for closing a removed member's connections. */
  get claimedId(): NodeId | null {
    return this.#claimedId;
  }

  get #logFields(): Record<string, unknown> {
    return { localId: this.transport.options.id, remoteId: this.#claimedId, bound: this.#remoteId !== null, remoteAddress: this.socket.remoteAddress };
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    if (this.#claimedId === null && !this.transport.options.tls && looksLikeTls(chunk)) {
      return this.#fail('the dialer speaks TLS: its peer port uses TLS and ours does not (set --peer-cert-file or --peer-auto-tls on every member, or on none)');
    }
    this.transport.inbound.receivedBytes += chunk.length;
    const error = this.#reader.push(chunk, (frame) => this.#onFrame(frame));
    if (error !== null) this.#fail(error);
  }

  #onFrame(frame: Buffer): void {
    if (this.#deferred !== null) return void this.#deferred.push(frame);
    const kind = frame[0];
    const payload = frame.subarray(1);
    if (this.#claimedId === null) {
      if (kind !== FrameKind.Hello) return this.#fail(`first frame has kind ${kind}, not hello`);
      return this.#onHello(payload);
    }
    if (kind === FrameKind.Challenge) return this.#onChallenge(payload);
    if (kind === FrameKind.Proof) return this.#onProof(payload);
    if (this.#remoteId === null) return this.#fail(`frame kind ${kind} before the dialer proved its member id`);
    switch (kind) {
      case FrameKind.Message:
        return this.#onMessageFrame(payload);
      case FrameKind.SnapBegin:
        return this.#onSnapBegin(payload);
      case FrameKind.SnapChunk:
        return this.#onSnapChunk(payload);
      case FrameKind.Beat:
        return this.#onBeat(payload);
      default:
        return this.#fail(`unexpected frame kind ${kind}`);
    }
  }

  #onHello(payload: Buffer): void {
    let hello;
    try {
      hello = decodeHello(payload);
    } catch (error) {
      rethrowIfBug(error);
      return this.#fail(errorText(error));
    }
    const { id, clusterId } = this.transport.options;
    // The reasons go back to a dialer that may be a stranger: they name no id of this cluster.
    // Our own log gets the ids (see #refuse).
    let refusal: [Extract<PeerRefusal, { kind: 'handshake' }>['reason'], string] | null = null;
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      refusal = [
        'version',
        `the dialer speaks peer protocol version ${hello.protocolVersion}, this member speaks ${PROTOCOL_VERSION}: ` +
          'run lichen releases that speak the same version on every member (README, "Upgrades")',
      ];
    } else if (hello.clusterId !== clusterId) {
      refusal = ['cluster', 'the dialer belongs to another cluster'];
    } else if (hello.to !== id) {
      refusal = ['wrong_member', 'the dialer wants another member than the one at this address (stale peer address?)'];
    } else if (hello.from === id) {
      refusal = ['self', 'the dialer claims the id of the member it dialed'];
    } else if (!this.transport.isPeer(hello.from)) {
      refusal = ['not_member', 'the dialer is not a current member of this cluster'];
    }
    if (refusal !== null) {
      return this.#refuse(refusal[0], refusal[1], { claimedId: hello.from, remoteClusterId: hello.clusterId, localClusterId: clusterId, dialedId: hello.to });
    }
    this.#claimedId = hello.from;
    this.#dataDirId = hello.dataDirId;
    this.#nonce = Buffer.from(this.transport.options.randomNonce());
    assert(this.#nonce.length === NONCE_BYTES, `transport: randomNonce must return ${NONCE_BYTES} bytes`);
    this.transport.challenge(hello.from, this.#nonce);
  }

  /** The member this connection claims asks us to prove one of our own connections to it. */
  #onChallenge(payload: Buffer): void {
    let nonce: Buffer;
    try {
      nonce = decodeNonce(payload);
    } catch (error) {
      rethrowIfBug(error);
      return this.#fail(errorText(error));
    }
    // Relaying is harmless even for an impostor (the proof goes to the real member, which ignores
    // nonces it did not issue), but an unbound connection gets only a few.
    if (this.#remoteId === null && ++this.#challengesRelayed > peerUnboundChallengesMax) {
      return this.#fail(`more than ${peerUnboundChallengesMax} challenges before the dialer proved its member id`);
    }
    this.transport.prove(this.#claimedId!, nonce);
  }

  #onProof(payload: Buffer): void {
    let nonce: Buffer;
    try {
      nonce = decodeNonce(payload);
    } catch (error) {
      rethrowIfBug(error);
      return this.#fail(errorText(error));
    }
    // A proof of another connection (an impostor's claim that the real member answered on its
    // own connection, or a connection that is gone) is ignored, not held against this one.
    if (this.#nonce === null || !timingSafeEqual(nonce, this.#nonce)) return;
    this.#nonce = null;
    void this.transport.options.admitPeer(this.#claimedId!, this.#dataDirId!, 'inbound').then((refusal) => {
      if (this.#closing) return;
      if (refusal === undefined) return this.#bind();
      this.#refuse('superseded', 'this member knows the dialer by another data directory: its data was lost or replaced', { refusal });
    }, (error: unknown) => this.#fail(`cannot admit the dialer: ${errorText(error)}`));
  }

  #bind(): void {
    this.#remoteId = this.#claimedId;
    this.#reader.frameBytesMax = this.transport.options.maxFrameBytes;
    this.socket.setTimeout(0);
    this.socket.setKeepAlive(true, KEEPALIVE_INITIAL_DELAY_MS);
    this.socket.write(encodeHelloAck({ status: 'accepted', dataDirId: this.transport.options.dataDirId }));
    this.transport.onAccepted(this);
  }

  #onHandshakeTimeout(): void {
    const { handshakeTimeoutMs } = this.transport.options;
    if (this.#claimedId === null) return this.#fail(`no hello within ${handshakeTimeoutMs} ms`);
    this.#refuse('unproven', `the dialer did not prove its member id within ${handshakeTimeoutMs} ms (the proof comes back over the link to the member's registered peer address)`, {});
  }

  /** Refuses the handshake: logs and counts it, tells the dialer why (what kind, for those it acts on), and closes. */
  #refuse(reason: Extract<PeerRefusal, { kind: 'handshake' }>['reason'], text: string, details: Record<string, unknown>): void {
    if (this.#closing) return;
    this.transport.inbound.rejected++;
    this.transport.inbound.lastError = text;
    this.transport.options.onRefusal({ kind: 'handshake', reason });
    this.transport.options.logger('handshake-rejected', { ...this.#logFields, ...details, reason: text });
    this.#closing = true;
    this.#reader.stop();
    const status = reason === 'superseded' || reason === 'not_member' || reason === 'wrong_member' ? reason : 'refused';
    this.socket.end(encodeHelloAck({ status, reason: text }));
    this.socket.setTimeout(this.transport.options.handshakeTimeoutMs, () => this.socket.destroy());
  }

  /**
   * Decodes one message of a bound connection. A message whose sender is not a member of its
   * group hosted on the bound node, or whose receiver is not one hosted here, is dropped and
   * counted (null); one that does not decode closes the connection (the stream is broken).
   */
  #decode(bytes: Uint8Array, group: GroupId): Message | null {
    let m: Message;
    try {
      m = decodeMessage(bytes);
    } catch (error) {
      rethrowIfBug(error);
      this.#fail(errorText(error));
      return null;
    }
    const { memberNode, id } = this.transport.options;
    const fromMatches = memberNode(group, m.from) === this.#remoteId;
    if (!fromMatches || memberNode(group, m.to) !== id) {
      const reason = fromMatches ? 'to_mismatch' : 'from_mismatch';
      this.transport.inbound.mismatchedMessagesDropped++;
      this.transport.options.onRefusal({ kind: 'message', reason });
      // Logged once per connection: the counters tell how many more followed.
      if (!this.#loggedMismatch) this.transport.options.logger('message-dropped', { ...this.#logFields, reason, group, message: m.type, from: m.from, to: m.to });
      this.#loggedMismatch = true;
      return null;
    }
    return m;
  }

  #onMessageFrame(payload: Buffer): void {
    let frame;
    try {
      frame = decodeMessageFrame(payload);
    } catch (error) {
      rethrowIfBug(error);
      return this.#fail(errorText(error));
    }
    const m = this.#decode(frame.message, frame.group);
    if (m === null) return;
    if (m.type === 'Snap') return this.#fail('a snapshot must arrive as SnapBegin and chunks');
    this.#deliver(m, frame.group);
  }

  /** A Beat: the peer process is alive, and here are its groups' heartbeats (see frame.ts). */
  #onBeat(payload: Buffer): void {
    let items;
    try {
      items = decodeBeat(payload);
    } catch (error) {
      rethrowIfBug(error);
      return this.#fail(errorText(error));
    }
    this.transport.options.onBeat(this.#remoteId!);
    for (const item of items) {
      if (this.#closing) return;
      const m = this.#decode(item.message, item.group);
      if (m === null) continue;
      if (m.type !== 'Heartbeat' && m.type !== 'HeartbeatResp') return this.#fail(`a beat carries a ${m.type} message`);
      this.#deliver(m, item.group);
    }
  }

  #onSnapBegin(payload: Buffer): void {
    if (this.#snapshot !== null) return this.#fail('a snapshot began before the previous one finished');
    let begin;
    try {
      begin = decodeSnapBegin(payload);
    } catch (error) {
      rethrowIfBug(error);
      return this.#fail(errorText(error));
    }
    const m = this.#decode(begin.message, begin.group);
    if (m === null) return;
    if (m.type !== 'Snap' || m.snapshot.data.byteLength !== 0) return this.#fail('SnapBegin does not carry an empty Snap');
    const { maxSnapshotBytes, receiveSnapshot } = this.transport.options;
    let sink: SnapshotSink | null = null;
    if (begin.totalBytes > maxSnapshotBytes) {
      this.transport.options.logger('snapshot-too-large', { ...this.#logFields, bytes: begin.totalBytes, maxSnapshotBytes });
    } else {
      try {
        sink = receiveSnapshot(m, begin.totalBytes, begin.group);
      } catch (error) {
        // No room for even the file (a full disk): refuse the snapshot as a failed write of it is
        // refused, and the leader, hearing of a failed send, tries again later.
        if (!isDiskFull(error)) throw error;
        return this.#fail(`cannot store the snapshot: ${errorText(error)}`);
      }
    }
    this.#snapshot = { group: begin.group, message: m, totalBytes: begin.totalBytes, receivedBytes: 0, sink };
    if (begin.totalBytes === 0) this.#finishSnapshot();
  }

  #onSnapChunk(payload: Buffer): void {
    const snapshot = this.#snapshot;
    if (snapshot === null) return this.#fail('snapshot chunk without SnapBegin');
    if (payload.length === 0) return this.#fail('empty snapshot chunk');
    if (snapshot.receivedBytes + payload.length > snapshot.totalBytes) {
      return this.#fail(`snapshot chunks exceed the announced ${snapshot.totalBytes} bytes`);
    }
    snapshot.receivedBytes += payload.length;
    this.transport.inbound.snapshotChunksReceived++;
    const sink = snapshot.sink;
    if (sink !== null) {
      // The data goes to the sink (a file) as it comes; while more than snapshotPendingBytesMax of
      // it waits to be stored, this connection is not read.
      sink.write(payload).then(
        () => this.#updateReading(),
        (error: unknown) => this.#fail(`cannot store the snapshot: ${errorText(error)}`),
      );
      this.#updateReading();
    }
    if (snapshot.receivedBytes === snapshot.totalBytes) this.#finishSnapshot();
  }

  /**
   * A snapshot is whole: it is delivered once its sink has stored it, and the frames that follow
   * it wait (in order, and with this connection not read) until then.
   */
  #finishSnapshot(): void {
    const snapshot = this.#snapshot!;
    this.#snapshot = null;
    if (snapshot.sink === null) {
      this.transport.inbound.snapshotsDropped++;
      this.transport.options.logger('snapshot-dropped', { ...this.#logFields, bytes: snapshot.totalBytes });
      return;
    }
    this.#deferred = [];
    this.#updateReading();
    snapshot.sink.finish().then(
      (data) => {
        if (this.#closing) return;
        this.transport.inbound.snapshotsReceived++;
        const { message } = snapshot;
        this.#deliver({ ...message, snapshot: { metadata: message.snapshot.metadata, data } }, snapshot.group);
        const deferred = this.#deferred!;
        this.#deferred = null;
        // A frame below may finish another snapshot, which defers the ones after it in turn.
        for (const frame of deferred) if (!this.#closing) this.#onFrame(frame);
        this.#updateReading();
      },
      (error: unknown) => this.#fail(`cannot store the snapshot: ${errorText(error)}`),
    );
  }

  /** Reads the socket unless a snapshot's data waits to be stored, or a whole snapshot to be delivered. */
  #updateReading(): void {
    if (this.#closing) return;
    const pending = this.#snapshot?.sink?.pendingBytes ?? 0;
    if (this.#deferred !== null || pending > this.transport.options.snapshotPendingBytesMax) this.socket.pause();
    else this.socket.resume();
  }

  /** A snapshot cut short (the connection failed or closed) leaves nothing behind. */
  #abortSnapshot(): void {
    this.#snapshot?.sink?.abort();
    this.#snapshot = null;
  }

  #deliver(m: Message, group: GroupId): void {
    this.transport.inbound.messagesReceived++;
    // Not wrapped in try/catch on purpose: an exception from raft is a broken invariant and crashes.
    this.transport.options.onMessage(m, group, this.#remoteId!);
  }

  /** A peer broke the protocol: log it, count it, and close the connection (the dialer reconnects). */
  #fail(reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.#reader.stop();
    this.#abortSnapshot();
    this.transport.inbound.protocolErrors++;
    this.transport.inbound.lastError = reason;
    this.transport.options.logger('protocol-error', { ...this.#logFields, error: reason });
    this.socket.destroy();
  }

  close(): void {
    this.#closing = true;
    this.#reader.stop();
    this.#abortSnapshot();
    this.socket.destroy();
  }
}

export class TcpTransport implements Transport {
  readonly options: ResolvedOptions;
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
  #server: net.Server | null = null;
  readonly #given: net.Server | undefined;
  #address: { host: string; port: number } | null = null;
  #peers = new Map<NodeId, PeerLink>();
  #connections = new Set<InboundConnection>();
  #unknownPeerDrops = 0;
  #closed = false;

  constructor(options: TransportOptions) {
    const maxFrameBytes = options.maxFrameBytes ?? peerFrameBytesMax;
    assert(maxFrameBytes >= MAX_FRAME_BYTES_MIN, `transport: maxFrameBytes must be at least ${MAX_FRAME_BYTES_MIN}`);
    assert(maxFrameBytes <= 2 ** 32, 'transport: maxFrameBytes must fit the u32 length field');
    const backoff = options.reconnectBackoffMs ?? RECONNECT_BACKOFF_MS_DEFAULT;
    assert(backoff.min > 0 && backoff.max >= backoff.min, 'transport: reconnectBackoffMs needs 0 < min <= max');
    assert(Number.isSafeInteger(options.id) && options.id > 0, 'transport: id must be a positive safe integer');
    this.#given = options.server;
    this.options = {
      id: options.id,
      clusterId: options.clusterId,
      listen: options.listen,
      onMessage: options.onMessage,
      onBeat: options.onBeat ?? (() => {}),
      memberNode: options.memberNode ?? ((_group, member) => member),
      onUnreachable: options.onUnreachable ?? (() => {}),
      onSnapshotSent: options.onSnapshotSent ?? (() => {}),
      sendQueueMax: options.sendQueueMax ?? peerSendQueueMessagesMax,
      maxFrameBytes,
      maxSnapshotBytes: options.maxSnapshotBytes ?? peerSnapshotBytesMax,
      reconnectBackoffMs: backoff,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS_DEFAULT,
      maxInboundConnections: options.maxInboundConnections ?? peerInboundConnectionsMax,
      random: options.random ?? Math.random,
      randomNonce: options.randomNonce ?? (() => randomBytes(NONCE_BYTES)),
      receiveSnapshot: options.receiveSnapshot ?? ((_m, dataBytes) => memorySink(dataBytes)),
      snapshotPendingBytesMax: options.snapshotPendingBytesMax ?? peerSnapshotPendingBytesMax,
      onRefusal: options.onRefusal ?? (() => {}),
      dataDirId: options.dataDirId ?? new Uint8Array(DATA_DIR_ID_BYTES),
      admitPeer: options.admitPeer ?? (() => Promise.resolve(undefined)),
      onSuperseded: options.onSuperseded ?? (() => {}),
      onMembershipRefused: options.onMembershipRefused ?? (() => {}),
      logger: options.logger ?? (() => {}),
      tls: options.tls,
    };
  }

  /** Starts listening; resolves with the bound address (the real port when asked for port 0). */
  async start(): Promise<{ host: string; port: number }> {
    assert(this.#server === null && !this.#closed, 'transport: start() called twice or after close()');
    const peerTls = this.options.tls;
    const server = this.#given ?? net.createServer();
    // With TLS, each accepted socket is handed to a TLS server that never listens itself (Node's
    // documented way to inject a connection), so the listener can be bound before the transport exists.
    const tlsServer = peerTls ? this.#tlsServer(peerTls) : undefined;
    server.removeAllListeners('connection');
    server.on('connection', (socket: net.Socket) => (tlsServer ? tlsServer.emit('connection', socket) : this.#onConnection(socket)));
    // Handshakes in flight are not in #connections yet; the listener bounds them.
    if (tlsServer) server.maxConnections = this.options.maxInboundConnections;
    this.#server = server;
    if (!server.listening) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.options.listen.host, port: this.options.listen.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    }
    server.on('error', (error) => this.options.logger('listener-error', { error: errorText(error) }));
    const bound = server.address() as net.AddressInfo;
    this.#address = { host: this.options.listen.host, port: bound.port };
    this.options.logger('listening', { id: this.options.id, ...this.#address });
    return this.#address;
  }

  get address(): { host: string; port: number } {
    assert(this.#address !== null, 'transport: address read before start()');
    return this.#address;
  }

  addPeer(id: NodeId, address: string): void {
    assert(id !== this.options.id, 'transport: a node is not its own peer');
    if (this.#closed) return;
    const existing = this.#peers.get(id);
    if (existing !== undefined) return existing.retarget(address);
    const link = new PeerLink(id, address, this.options);
    this.#peers.set(id, link);
    link.start();
  }

  updatePeer(id: NodeId, address: string): void {
    this.addPeer(id, address);
  }

  /** Forgets a peer: its queue is discarded, its connections close, and no more callbacks name it. */
  removePeer(id: NodeId): void {
    this.#peers.get(id)?.close();
    this.#peers.delete(id);
    for (const connection of this.#connections) {
      if (connection.claimedId !== id) continue;
      connection.close();
      this.#connections.delete(connection);
    }
  }

  send(messages: Message[], group: GroupId = metaGroupId): void {
    if (this.#closed) return;
    for (const m of messages) {
      const node = this.options.memberNode(group, m.to);
      const link = node === undefined ? undefined : this.#peers.get(node);
      if (link === undefined) {
        this.#unknownPeerDrops++;
        this.options.logger('unknown-peer', { peer: node ?? m.to, group, message: m.type });
        if (m.type === 'Snap') this.options.onSnapshotSent(node ?? m.to, false, group, m.to);
        if (node !== undefined) this.options.onUnreachable(node);
        continue;
      }
      link.enqueue(m, group);
    }
  }

  sendBeat(node: NodeId, messages: GroupMessage[]): void {
    if (this.#closed) return;
    const link = this.#peers.get(node);
    if (link === undefined) {
      this.#unknownPeerDrops++;
      this.options.logger('unknown-peer', { peer: node, message: 'Beat' });
      return;
    }
    link.enqueueBeat(messages);
  }

  stats(): TransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const [id, link] of this.#peers) {
      peers[id] = {
        address: link.address,
        connected: link.connected,
        queued: link.queued,
        dropped: link.dropped,
        sentBytes: link.sentBytes,
        framesSent: link.framesSent,
        refused: link.refused,
        lastError: link.lastError,
      };
    }
    return {
      peers,
      inbound: { ...this.inbound, connections: this.#connections.size },
      unknownPeerDrops: this.#unknownPeerDrops,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const link of this.#peers.values()) link.close();
    this.#peers.clear();
    for (const connection of this.#connections) connection.close();
    this.#connections.clear();
    const server = this.#server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * A TLS listener: connections reach #onConnection once their handshake verified what the
   * options demand; failed handshakes are refusals, logged and counted like the others.
   */
  #tlsServer(peerTls: PeerTls): tls.Server {
    const server = tls.createServer({ ...peerTls.server, handshakeTimeout: this.options.handshakeTimeoutMs }, (socket) => {
      const problem = peerTls.accept?.(socket);
      if (problem === undefined) return this.#onConnection(socket);
      this.#refuseTls(problem, socket.remoteAddress);
      socket.destroy();
    });
    server.on('tlsClientError', (error, socket) => this.#refuseTls(`TLS handshake failed: ${error.message}`, socket.remoteAddress));
    return server;
  }

  #refuseTls(reason: string, remoteAddress: string | undefined): void {
    this.inbound.rejected++;
    this.inbound.lastError = reason;
    this.options.onRefusal({ kind: 'handshake', reason: 'tls' });
    this.options.logger('handshake-rejected', { localId: this.options.id, remoteAddress, reason });
  }

  #onConnection(socket: net.Socket): void {
    if (this.#closed || this.#connections.size >= this.options.maxInboundConnections) {
      this.options.logger('inbound-refused', {
        remoteAddress: socket.remoteAddress,
        reason: this.#closed ? 'closing' : `over ${this.options.maxInboundConnections} inbound connections`,
      });
      socket.destroy();
      return;
    }
    const connection = new InboundConnection(socket, {
      options: this.options,
      inbound: this.inbound,
      isPeer: (id) => this.#peers.has(id),
      challenge: (id, nonce) => this.#peers.get(id)?.sendChallenge(nonce),
      prove: (id, nonce) => this.#peers.get(id)?.sendProof(nonce),
      onAccepted: (accepted) => this.#onAccepted(accepted),
    });
    this.#connections.add(connection);
    socket.on('close', () => this.#connections.delete(connection));
  }

  /**
   * A peer that reconnects replaces its previous inbound connection (likely half-open). Only a
   * bound connection does: an unproven claim of the same id leaves the member's connection alone.
   */
  #onAccepted(accepted: InboundConnection): void {
    for (const connection of this.#connections) {
      if (connection !== accepted && connection.remoteId === accepted.remoteId) {
        connection.close();
        this.#connections.delete(connection);
      }
    }
  }
}
