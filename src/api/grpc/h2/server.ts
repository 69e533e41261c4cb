// A listening socket whose connections speak HTTP/2 (connection.ts) and hand over request streams.
import net from 'node:net';
import { Http2Connection, type H2Stream } from './connection.js';
import { routeByFirstBytes } from './sniff.js';

export interface H2Server {
  readonly port: number;
  /** Stops accepting connections; open streams get `graceMs` to finish, then are cut off. */
  close(graceMs: number): Promise<void>;
}

export interface H2ListenOptions {
  /**
   * Where connections that do not open with the HTTP/2 preface go (sniff.ts), their first bytes
   * put back; without it every connection is taken as HTTP/2.
   */
  http1?: (socket: net.Socket) => void;
}

/** Listens on host:port (0 picks a free port) and passes every request stream to `onStream`. */
export async function listenH2(host: string, port: number, onStream: (stream: H2Stream) => void, options: H2ListenOptions = {}): Promise<H2Server> {
  const connections = new Set<Http2Connection>();
  let closing = false;
  const http2 = (socket: net.Socket): void => {
    const connection = new Http2Connection(socket, onStream);
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  };
  const server = net.createServer({ noDelay: true }, (socket) => {
    // A connection accepted while we shut down would keep the server open: refuse it.
    if (closing) return void socket.destroy();
    if (options.http1) routeByFirstBytes(socket, { http2, http1: options.http1 });
    else http2(socket);
  });
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
