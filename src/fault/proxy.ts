// A fault-injecting TCP proxy in front of one member's peer listener.
//
// Members advertise the proxy's address in --initial-cluster and listen on a private port behind
// it, so every raft connection to a member passes through its proxy. Lichen's peer connections
// are one-directional (A dials B to send A → B) and start with a Hello frame naming `from` and
// `to` (see src/transport/frame.ts), so the proxy learns the directed pair of each connection from
// its first frame and asks the network's policy whether that direction may pass.
//
// A blocked direction behaves like a black hole, not like a refused port: connections that exist
// when the block starts are cut, and new ones are accepted but get no handshake reply and have
// their bytes dropped until the dialer gives up (its handshake timeout). That exercises the
// timeout paths a real partition exercises. When the block ends, black-holed connections are cut,
// so the dialer redials at once and a fresh stream starts on a frame boundary.
import net from 'node:net';
import { FRAME_LENGTH_BYTES, FrameKind, HANDSHAKE_FRAME_BYTES_MAX, decodeHello } from '../transport/frame.js';

/** The direction of one peer connection, in member ids. */
export interface DirectedPair {
  from: number;
  to: number;
}

export interface PeerProxyOptions {
  /** The member's real peer listener. */
  target: { host: string; port: number };
  /** Port to listen on (0: any free port). */
  listenPort?: number;
  /** True when traffic from → to may pass right now. */
  allows(pair: DirectedPair): boolean;
}

/** Connections a proxy keeps at once; beyond it new ones are refused (a real cluster has a few). */
const CONNECTIONS_MAX = 256;

interface ProxiedConnection {
  client: net.Socket;
  upstream: net.Socket | undefined;
  pair: DirectedPair | undefined;
  /** True while the connection is held in the black hole. */
  blackHoled: boolean;
}

export class PeerProxy {
  private server: net.Server | undefined;
  private readonly connections = new Set<ProxiedConnection>();
  private listenPort = 0;
  /** Connections cut or black-holed because of the policy (for the report). */
  blockedConnections = 0;

  constructor(private readonly options: PeerProxyOptions) {}

  get port(): number {
    return this.listenPort;
  }

  async start(): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listenPort ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.listenPort = (server.address() as net.AddressInfo).port;
    return this.listenPort;
  }

  /**
   * Applies a policy change: cuts live connections whose direction is now blocked and releases
   * black-holed ones whose direction is allowed again (by cutting them, so the dialer redials).
   */
  refresh(): void {
    for (const connection of this.connections) {
      if (connection.pair === undefined) continue;
      const allowed = this.options.allows(connection.pair);
      if (connection.blackHoled ? allowed : !allowed) {
        if (!allowed) this.blockedConnections++;
        this.destroy(connection);
      }
    }
  }

  async close(): Promise<void> {
    for (const connection of this.connections) this.destroy(connection);
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.connections.size >= CONNECTIONS_MAX) {
      client.destroy();
      return;
    }
    const connection: ProxiedConnection = { client, upstream: undefined, pair: undefined, blackHoled: false };
    this.connections.add(connection);
    client.on('error', () => this.destroy(connection));
    client.on('close', () => this.destroy(connection));
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const pair = readHelloPair(head);
      if (pair === 'incomplete') return;
      client.off('data', onHead);
      if (pair === 'invalid') {
        // Not a Lichen hello: pass it through untouched and let the member refuse it.
        this.connectUpstream(connection, head);
        return;
      }
      connection.pair = pair;
      if (this.options.allows(pair)) {
        this.connectUpstream(connection, head);
      } else {
        this.blockedConnections++;
        this.blackHole(connection);
      }
    };
    client.on('data', onHead);
  }

  private connectUpstream(connection: ProxiedConnection, head: Buffer): void {
    const { client } = connection;
    const upstream = net.connect(this.options.target.port, this.options.target.host);
    connection.upstream = upstream;
    upstream.on('error', () => this.destroy(connection));
    upstream.on('close', () => this.destroy(connection));
    upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  private blackHole(connection: ProxiedConnection): void {
    connection.blackHoled = true;
    // Read and drop: the dialer sees an open connection that never answers.
    connection.client.on('data', () => {});
  }

  private destroy(connection: ProxiedConnection): void {
    if (!this.connections.delete(connection)) return;
    connection.client.destroy();
    connection.upstream?.destroy();
  }
}

/** The directed pair of a stream's first frame, if it is a complete Lichen hello. */
export function readHelloPair(head: Buffer): DirectedPair | 'incomplete' | 'invalid' {
  if (head.length < FRAME_LENGTH_BYTES) return 'incomplete';
  const length = head.readUInt32BE(0);
  if (length === 0 || length + FRAME_LENGTH_BYTES > HANDSHAKE_FRAME_BYTES_MAX) return 'invalid';
  if (head.length < FRAME_LENGTH_BYTES + length) return 'incomplete';
  if (head[FRAME_LENGTH_BYTES] !== FrameKind.Hello) return 'invalid';
  try {
    const hello = decodeHello(head.subarray(FRAME_LENGTH_BYTES + 1, FRAME_LENGTH_BYTES + length));
    return { from: hello.from, to: hello.to };
  } catch {
    return 'invalid';
  }
}
