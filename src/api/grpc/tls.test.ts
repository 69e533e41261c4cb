// The client listeners over TLS: gRPC (ALPN h2, Lichen's own HTTP/2 server) beside HTTP/1.1 on the
// client port, and the HTTP API, with client certificates required, and the verified
// certificate's common name on each call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:https';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { credentials, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { GrpcRouter, listenHttp2Grpc, type ServerCall, type UnaryCallback } from './http2-server.js';
import type { ClientIdentity } from './h2/server.js';
import { grpcServerLimits } from './server.js';
import { startHttpServer } from '../http/server.js';
import { StoreBackend } from '../http/test-backend.js';
import { Registry } from '../../metrics.js';
import { createCertificateAuthority, issueCertificate } from '../../tls/certs.js';
import { serverOptions, verifiedCommonName, type TlsMaterial } from '../../tls/index.js';

const identity = (bytes: Buffer): Buffer => bytes;
const WHO_AM_I = {
  WhoAmI: {
    path: '/test.Tls/WhoAmI',
    originalName: 'WhoAmI',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

async function pki() {
  const ca = await createCertificateAuthority('test CA', 1);
  const server = await issueCertificate(ca, { commonName: 'member', hosts: ['127.0.0.1', 'localhost'], usage: 'server-and-client', validDays: 1 });
  const alice = await issueCertificate(ca, { commonName: 'alice', hosts: [], usage: 'client', validDays: 1 });
  const otherCa = await createCertificateAuthority('other CA', 1);
  const mallory = await issueCertificate(otherCa, { commonName: 'root', hosts: [], usage: 'client', validDays: 1 });
  const material: TlsMaterial = {
    cert: Buffer.from(server.cert),
    key: Buffer.from(server.key),
    ca: Buffer.from(ca.cert),
    requireClientCert: true,
    commonNameIsUser: true,
    selfSigned: false,
    allowedCn: '',
  };
  return { ca, alice, mallory, material };
}

const listenerTls = (material: TlsMaterial) => ({ options: serverOptions(material, []), peerCommonName: verifiedCommonName });

test('gRPC over TLS: the verified client certificate names the caller; no or a foreign certificate is refused', async () => {
  const { ca, alice, mallory, material } = await pki();
  const router = new GrpcRouter({ receiveMessageBytesMax: 1024 });
  router.addService(WHO_AM_I, {
    WhoAmI: (call: ServerCall<Buffer, Buffer>, callback: UnaryCallback<Buffer>) => callback(null, Buffer.from(call.peerCommonName ?? '(nobody)')),
  });
  const server = await listenHttp2Grpc(router, '127.0.0.1', 0, { ...grpcServerLimits(1024), tls: listenerTls(material) });
  const Client = makeGenericClientConstructor(WHO_AM_I, 'Tls');
  const ask = (creds: ReturnType<typeof credentials.createSsl>): Promise<string> => {
    const client = new Client(`127.0.0.1:${server.port}`, creds) as unknown as Record<string, Function> & { close(): void };
    return new Promise<string>((resolve, reject) =>
      client.WhoAmI!(Buffer.from(''), new Metadata(), { deadline: Date.now() + 5000 }, (error: ServiceError | null, response: Buffer) =>
        error ? reject(error) : resolve(response.toString()),
      ),
    ).finally(() => client.close());
  };
  try {
    assert.equal(await ask(credentials.createSsl(Buffer.from(ca.cert), Buffer.from(alice.key), Buffer.from(alice.cert))), 'alice');
    await assert.rejects(ask(credentials.createSsl(Buffer.from(ca.cert))), /certificate required|UNAVAILABLE|No connection established/);
    await assert.rejects(ask(credentials.createSsl(Buffer.from(ca.cert), Buffer.from(mallory.key), Buffer.from(mallory.cert))), /UNAVAILABLE|No connection established|unknown ca/);
  } finally {
    await server.close(0);
  }
});

test('over TLS the client port routes by ALPN (h2 to gRPC, http/1.1 to HTTP/1), by the first bytes without ALPN; both know the certificate', async () => {
  const { ca, alice, material } = await pki();
  const router = new GrpcRouter({ receiveMessageBytesMax: 1024 });
  router.addService(WHO_AM_I, {
    WhoAmI: (call: ServerCall<Buffer, Buffer>, callback: UnaryCallback<Buffer>) => callback(null, Buffer.from(`grpc:${call.peerCommonName}`)),
  });
  const http1 = (socket: Socket, client: ClientIdentity): void => {
    const body = `http1:${client.peerCommonName}`;
    socket.resume(); // Read to the end, so the socket sees the client close it.
    socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  };
  const server = await listenHttp2Grpc(router, '127.0.0.1', 0, { ...grpcServerLimits(1024), tls: listenerTls(material), http1 });
  const exchange = async (alpn: string[] | undefined): Promise<{ alpn: string | false | null; text: string }> => {
    const { alpn: negotiated, response } = await requestOverTls(server.port, { ca: ca.cert, cert: alice.cert, key: alice.key }, alpn);
    return { alpn: negotiated, text: response.slice(response.indexOf('\r\n\r\n') + 4) };
  };
  try {
    assert.deepEqual(await exchange(['http/1.1']), { alpn: 'http/1.1', text: 'http1:alice' });
    assert.deepEqual(await exchange(undefined), { alpn: false, text: 'http1:alice' });
    const client = new (makeGenericClientConstructor(WHO_AM_I, 'Tls'))(
      `127.0.0.1:${server.port}`,
      credentials.createSsl(Buffer.from(ca.cert), Buffer.from(alice.key), Buffer.from(alice.cert)),
    ) as unknown as Record<string, Function> & { close(): void };
    const reply = await new Promise<string>((resolve, reject) =>
      client.WhoAmI!(Buffer.from(''), new Metadata(), { deadline: Date.now() + 5000 }, (error: ServiceError | null, response: Buffer) =>
        error ? reject(error) : resolve(response.toString()),
      ),
    ).finally(() => client.close());
    assert.equal(reply, 'grpc:alice');
  } finally {
    await server.close(0);
  }
});

/** Sends `GET /` over TLS offering `alpn`, and reads the response until the server ends it. */
function requestOverTls(port: number, keys: { ca: string; cert: string; key: string }, alpn: string[] | undefined): Promise<{ alpn: string | false | null; response: string }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ...keys, ...(alpn && { ALPNProtocols: alpn }) });
    let response = '';
    socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    socket.on('data', (chunk: Buffer) => (response += chunk.toString()));
    socket.on('end', () => {
      resolve({ alpn: socket.alpnProtocol, response });
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** A TCP connection that never sends a byte, and whether it was closed. */
async function silentConnection(port: number): Promise<{ closed: boolean; socket: Socket }> {
  const socket = netConnect(port, '127.0.0.1');
  await once(socket, 'connect');
  const state = { closed: false, socket };
  socket.on('error', () => undefined);
  socket.on('close', () => (state.closed = true));
  return state;
}

/** Asserts that `connection` is closed within 2 s: at once, not at the 10 s handshake deadline. */
async function closedSoon(connection: { closed: boolean }): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!connection.closed && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.equal(connection.closed, true, 'the oldest silent connection made room');
}

test('over TLS, a connection that never starts its handshake is closed when one more would pass unsortedConnectionsMax', async () => {
  const { ca, alice, material } = await pki();
  const http1 = (socket: Socket): void => {
    socket.resume();
    socket.end('HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n');
  };
  const router = new GrpcRouter({ receiveMessageBytesMax: 1024 });
  const server = await listenHttp2Grpc(router, '127.0.0.1', 0, { ...grpcServerLimits(1024), tls: listenerTls(material), http1, unsortedConnectionsMax: 2 });
  const served = async (alpn: string[] | undefined): Promise<string> =>
    (await requestOverTls(server.port, { ca: ca.cert, cert: alice.cert, key: alice.key }, alpn)).response.split('\r\n')[0]!;
  const waiting = [await silentConnection(server.port), await silentConnection(server.port)];
  try {
    assert.equal(await served(['http/1.1']), 'HTTP/1.1 204 No Content');
    await closedSoon(waiting[0]!);
    // A finished handshake leaves the count: sniffing this one's first bytes closes nobody.
    assert.equal(await served(undefined), 'HTTP/1.1 204 No Content');
    assert.equal(waiting[1]!.closed, false);
  } finally {
    for (const { socket } of waiting) socket.destroy();
    await server.close(0);
  }
});

test('the HTTP API over TLS serves a client with a certificate and refuses one without', async () => {
  const { ca, alice, material } = await pki();
  const server = await startHttpServer({ backend: new StoreBackend(), registry: new Registry(), port: 0, tls: listenerTls(material) });
  const fetchStatus = (options: { cert?: string; key?: string }): Promise<number> =>
    new Promise((resolve, reject) => {
      const request = get(`https://127.0.0.1:${server.port}/v1/kv/missing`, { ca: ca.cert, ...options }, (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      request.on('error', reject);
    });
  try {
    assert.equal(await fetchStatus({ cert: alice.cert, key: alice.key }), 404);
    await assert.rejects(fetchStatus({}), /certificate required|socket hang up|ECONNRESET/);
  } finally {
    await server.close();
  }
});

test('the HTTP API over TLS closes the connection that has waited longest in its handshake when one more would pass tlsHandshakesMax', async () => {
  const { ca, alice, material } = await pki();
  const server = await startHttpServer({ backend: new StoreBackend(), registry: new Registry(), port: 0, tls: listenerTls(material), tlsHandshakesMax: 2 });
  const kept: Socket[] = [];
  /** The status line of a request on a new connection, which stays open (kept alive). */
  const fetchStatus = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: server.port, ca: ca.cert, cert: alice.cert, key: alice.key });
      kept.push(socket);
      socket.on('secureConnect', () => socket.write('GET /v1/kv/missing HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.once('data', (chunk: Buffer) => resolve(chunk.toString().split('\r\n')[0]!));
      socket.on('error', reject);
    });
  const waiting = [await silentConnection(server.port), await silentConnection(server.port)];
  try {
    assert.equal(await fetchStatus(), 'HTTP/1.1 404 Not Found');
    await closedSoon(waiting[0]!);
    // A finished handshake leaves the count: the next one closes nobody.
    assert.equal(await fetchStatus(), 'HTTP/1.1 404 Not Found');
    assert.equal(waiting[1]!.closed, false);
  } finally {
    for (const socket of [...waiting.map((w) => w.socket), ...kept]) socket.destroy();
    await server.close();
  }
});
