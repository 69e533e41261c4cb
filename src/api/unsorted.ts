// Connections a listener has accepted but cannot hand to a protocol yet: in their TLS handshake,
// or still to send the first bytes that tell gRPC from HTTP/1.1 (grpc/h2/sniff.ts). They have
// sent nothing that could be answered, so a cap on them is kept by closing the one that has
// waited longest: clients handshake and send as they connect, so they are never the oldest, and
// silent connections cannot hold a port's descriptors (each is also timed out on its own).
import type net from 'node:net';
import type tls from 'node:tls';

export class UnsortedConnections {
  /** Oldest first (a Set keeps insertion order). */
  private readonly waiting = new Set<net.Socket>();
  /** Accepted sockets in their TLS handshake, by their addresses (see countHandshakes). */
  private readonly handshaking = new Map<string, net.Socket>();

  constructor(private readonly max: number) {}

  /** Counts `socket` until sorted() or its close; closes the one that waited longest if that passes the cap. */
  wait(socket: net.Socket): void {
    if (this.waiting.size >= this.max) {
      const oldest = this.waiting.values().next().value as net.Socket;
      this.waiting.delete(oldest);
      oldest.destroy();
    }
    this.waiting.add(socket);
    socket.once('close', () => this.waiting.delete(socket));
  }

  sorted(socket: net.Socket): void {
    this.waiting.delete(socket);
  }

  /**
   * Counts the TLS handshakes of `server`'s connections; its secure-connection callback calls
   * handshakeDone(). node hands that callback the secure socket, not the accepted one; the two
   * share their addresses, which are unique among open connections, so those tell them apart.
   */
  countHandshakes(server: tls.Server): void {
    server.on('connection', (socket: net.Socket) => {
      const key = addressesOf(socket);
      this.wait(socket);
      this.handshaking.set(key, socket);
      socket.once('close', () => this.handshaking.delete(key));
    });
  }

  handshakeDone(secure: tls.TLSSocket): void {
    const key = addressesOf(secure);
    const accepted = this.handshaking.get(key);
    this.handshaking.delete(key);
    if (accepted !== undefined) this.sorted(accepted);
  }
}

function addressesOf(socket: net.Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}|${socket.localAddress}|${socket.localPort}`;
}
