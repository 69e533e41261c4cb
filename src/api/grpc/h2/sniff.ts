// One client port, several protocols (as etcd's cmux does it): a connection that opens with the
// HTTP/2 client preface ("PRI * HTTP/2.0...") speaks gRPC with prior knowledge; anything else is
// taken as HTTP/1.x (the JSON gateway), whose parser answers what is not HTTP with a 400. The
// bytes read to decide are put back before the connection is handed over, so the protocol's own
// reader sees the connection from its first byte.
//
// It takes an already-accepted socket, so a TLS listener can call it for connections whose ALPN
// did not name "h2" (clients without ALPN, or "http/1.1").
import type net from 'node:net';
import { clientFirstBytesMsMax } from '../../../limits.js';
import { CLIENT_PREFACE } from './frames.js';

/** Enough of the preface to tell it from any HTTP/1 request line ("PRI" is no HTTP/1 method). */
const PREFACE_START = CLIENT_PREFACE.subarray(0, 4);

export interface ProtocolTargets {
  http2(socket: net.Socket): void;
  http1(socket: net.Socket): void;
}

/** Reads the first bytes of `socket`, then hands it, bytes put back, to the protocol they show. */
export function routeByFirstBytes(socket: net.Socket, targets: ProtocolTargets, timeoutMs = clientFirstBytesMsMax): void {
  let received: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const seen = Math.min(received.length, PREFACE_START.length);
    const isHttp2 = received.subarray(0, seen).equals(PREFACE_START.subarray(0, seen));
    if (isHttp2 && seen < PREFACE_START.length) return; // Too few bytes to tell yet.
    socket.off('data', onData);
    socket.off('error', onError);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(received);
    (isHttp2 ? targets.http2 : targets.http1)(socket);
    socket.resume();
  };
  const onError = (): void => void socket.destroy();
  socket.on('data', onData);
  socket.on('error', onError);
  socket.setTimeout(timeoutMs, () => void socket.destroy());
}
