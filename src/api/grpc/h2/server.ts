// A listening socket whose connections speak HTTP/2 (connection.ts) and hand over request streams,
// over plain TCP (prior knowledge, as gRPC clients speak it) or TLS (ALPN "h2").
import net from 'node:net';
import tls from 'node:tls';
import { clientTlsHandshakeMsMax, clientUnsortedConnectionsMax } from '../../../limits.js';
import { Http2Connection, type H2Limits, type H2Stream } from './connection.js';
import { nodeTimers, type Timers } from '../../timers.js';
import { endWithAnswer } from '../../linger.js';
import { ErrorCode, goawayFrame, settingsFrame } from './frames.js';
import { routeByFirstBytes } from './sniff.js';
import { UnsortedConnections } from '../../unsorted.js';

/** Who is on the other end of a connection, as far as its transport tells. */
export interface ClientIdentity {
  /** The common name of a verified client certificate that names the user (TLS with client-cert-auth). */
  peerCommonName: string | undefined;
}

/** A TLS listener: its options, and how a connection's verified certificate names its user. */
export interface H2Tls {
  options: tls.TlsOptions;
  peerCommonName(socket: tls.TLSSocket): string | undefined;
}

const PLAIN: ClientIdentity = { peerCommonName: undefined };

export interface H2Server {
  readonly port: number;
  /** HTTP/2 connections open now. */
  readonly connections: number;
  /** Stops accepting connections; open streams get `graceMs` to finish, then are cut off. */
  close(graceMs: number): Promise<void>;
}

export interface H2ServerOptions {
  limits: H2Limits;
  /** HTTP/2 connections open at once; one more is answered with GOAWAY (ENHANCE_YOUR_CALM) and closed. */
  connectionsMax: number;
  timers?: Timers;
  /**
   * Where connections that do not speak HTTP/2 go, with who is on them: without TLS, those that do
   * not open with the HTTP/2 preface (sniff.ts, their first bytes put back); with TLS, those whose
   * ALPN names "http/1.1", and those without ALPN that do not open with the preface. Without it
   * every connection is taken as HTTP/2.
   */
  http1?: (socket: net.Socket, client: ClientIdentity) => void;
  /** Serve TLS, offering ALPN "h2" (and "http/1.1" with `http1`). */
  tls?: H2Tls;
  /**
   * Connections whose protocol is not known yet (in their TLS handshake, or, with `http1`, still
   * to send their first bytes), at once. One more closes the one that has waited longest (it sent
   * nothing that could be answered; clients handshake and send as they connect), so silent
   * connections cannot lock the port.
   */
  unsortedConnectionsMax?: number;
  /**
   * Told of every connection ended with an error code (ENHANCE_YOUR_CALM for a client over a
   * limit, PROTOCOL_ERROR and the like for one that breaks the protocol), with the reason sent.
   */
  onConnectionError?: (code: number, reason: string) => void;
}

/**
 * Listens on host:port (0 picks a free port) and passes every request stream to `onStream`, with
 * the identity of the connection it came on.
 */
export async function listenH2(
  host: string,
  port: number,
  onStream: (stream: H2Stream, client: ClientIdentity) => void,
  options: H2ServerOptions,
): Promise<H2Server> {
  const timers = options.timers ?? nodeTimers;
  const connections = new Set<Http2Connection>();
  let closing = false;
  const http2 = (socket: net.Socket, client: ClientIdentity): void => {
    if (connections.size >= options.connectionsMax) {
      const reason = `too many connections (the limit is ${options.connectionsMax})`;
      options.onConnectionError?.(ErrorCode.ENHANCE_YOUR_CALM, reason);
      return refuseConnection(socket, reason, timers);
    }
    const connection = new Http2Connection(socket, (stream) => onStream(stream, client), options.limits, timers, options.onConnectionError);
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  };
  const unsorted = new UnsortedConnections(options.unsortedConnectionsMax ?? clientUnsortedConnectionsMax);
  /** Hands a connection to its protocol: by ALPN when TLS negotiated one, else by its first bytes. */
  const serve = (socket: net.Socket, client: ClientIdentity, alpn: string | false | null): void => {
    // A connection accepted while we shut down would keep the server open: refuse it.
    if (closing) return void socket.destroy();
    const { http1 } = options;
    if (http1 === undefined || alpn === 'h2') return http2(socket, client);
    if (alpn === 'http/1.1') return http1(socket, client);
    unsorted.wait(socket);
    const sorted = (to: (socket: net.Socket, client: ClientIdentity) => void) => (s: net.Socket) => {
      unsorted.sorted(s);
      to(s, client);
    };
    routeByFirstBytes(socket, { http2: sorted(http2), http1: sorted(http1) });
  };
  const withTls = options.tls;
  const server = withTls
    ? tls.createServer(
        { ...withTls.options, ALPNProtocols: options.http1 ? ['h2', 'http/1.1'] : ['h2'], handshakeTimeout: clientTlsHandshakeMsMax },
        (socket) => {
          unsorted.handshakeDone(socket);
          socket.setNoDelay(true);
          serve(socket, { peerCommonName: withTls.peerCommonName(socket) }, socket.alpnProtocol);
        },
      )
    : net.createServer({ noDelay: true }, (socket) => serve(socket, PLAIN, false));
  // TLS handshakes count as connections whose protocol is not known yet.
  if (server instanceof tls.Server) unsorted.countHandshakes(server);
  // A failed TLS handshake (no or a bad client certificate) only ends that connection.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    get connections() {
      return connections.size;
    },
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        for (const connection of connections) connection.goAway();
        // Watch and keep-alive streams never end on their own: after the grace period, cut them.
        const force = setTimeout(() => {
          for (const connection of connections) connection.destroy();
        }, graceMs);
        server.once('close', () => clearTimeout(force));
      }),
  };
}

/**
 * Answers a connection over the limit with our preface and a GOAWAY that names the reason, so
 * the client reports it (and retries elsewhere or later) instead of seeing a reset.
 */
function refuseConnection(socket: net.Socket, reason: string, timers: Timers): void {
  endWithAnswer(socket, Buffer.concat([settingsFrame([]), goawayFrame(0, ErrorCode.ENHANCE_YOUR_CALM, reason)]), timers);
}
