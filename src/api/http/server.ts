// The HTTP/JSON API server on node:http: parses the request line, finds the route, runs the
// handler, and writes JSON. Every failure, ours or the backend's, leaves as a JSON error with
// the status from errors.ts; nothing a client sends can crash the process.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { TLSSocket, TlsOptions } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import { ErrorCode, isLichenError, LichenError } from '../../errors.js';
import { createSilentLogger, type Logger } from '../../log.js';
import { httpRequestSecondsOn, type Histogram, type Registry } from '../../metrics.js';
import { clientTlsHandshakeMsMax, httpConnectionsMax, httpRangeKeysMax, httpUrlCharsMax, requestBytesMaxDefault } from '../../limits.js';
import type { Caller, EtcdBackend } from '../backend.js';
import { readBody } from './body.js';
import { parseQuery } from './codec.js';
import { errorResponse } from './errors.js';
import { matchRoute, templateOf, type Reply, type RouteDeps } from './routes.js';

export interface HttpServerOptions {
  backend: EtcdBackend;
  /** Serve HTTPS: the TLS options, and how a connection's verified certificate names its user. */
  tls?: { options: TlsOptions; peerCommonName(socket: TLSSocket): string | undefined };
  /** GET /metrics renders it; lichen_http_request_seconds is registered on it when missing. */
  registry: Registry;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (the default) picks a free port; the chosen one is in the result. */
  port?: number;
  /** Largest request body accepted; larger ones get 413. Default 1.5 MiB (etcd's). */
  maxRequestBytes?: number;
  /** Bound on the read that /health makes. Default 2000 ms. */
  healthTimeoutMs?: number;
  /** A prefix GET returns at most this many keys. Default 10,000. */
  rangeKeysMax?: number;
  /** Open connections beyond this are refused by the kernel accept path. Default 1024. */
  connectionsMax?: number;
  /** A request (headers and body) must arrive within this. Default 60 s. */
  requestTimeoutMs?: number;
  log?: Logger;
  /** Monotonic milliseconds, for request latency; injected by tests. Default performance.now. */
  nowMs?: () => number;
}

export interface HttpServer {
  readonly host: string;
  readonly port: number;
  /** Stops accepting, drops open connections (including keep-alive ones), resolves when closed. */
  close(): Promise<void>;
}

export const HEALTH_TIMEOUT_MS_DEFAULT = 2_000;
export const REQUEST_TIMEOUT_MS_DEFAULT = 60_000;

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const host = options.host ?? '127.0.0.1';
  const maxRequestBytes = options.maxRequestBytes ?? requestBytesMaxDefault;
  const log = options.log ?? createSilentLogger();
  const nowMs = options.nowMs ?? (() => performance.now());
  const requestSeconds = httpRequestSecondsOn(options.registry);
  const deps: RouteDeps = {
    backend: options.backend,
    registry: options.registry,
    healthTimeoutMs: options.healthTimeoutMs ?? HEALTH_TIMEOUT_MS_DEFAULT,
    rangeKeysMax: options.rangeKeysMax ?? httpRangeKeysMax,
  };

  // The default header limit (16 KiB) would cut off long keys in URLs before we could answer.
  const httpOptions = { maxHeaderSize: httpUrlCharsMax + 16 * 1024, requestTimeout: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT };
  const withTls = options.tls;
  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const peerCommonName = withTls?.peerCommonName(request.socket as TLSSocket);
    void handleRequest(request, response, { deps, maxRequestBytes, log, nowMs, requestSeconds }, peerCommonName);
  };
  const server = withTls
    ? createTlsServer({ ...withTls.options, ...httpOptions, ALPNProtocols: ['http/1.1'], handshakeTimeout: clientTlsHandshakeMsMax }, onRequest)
    : createServer(httpOptions, onRequest);
  server.maxConnections = options.connectionsMax ?? httpConnectionsMax;
  // Malformed HTTP never reaches the handler; answer it plainly and drop the connection.
  server.on('clientError', (error: Error & { code?: string }, socket: Socket) => {
    if (socket.writable && error.code !== 'ECONNRESET') {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info('http api listening', { host, port });

  return {
    host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface RequestDeps {
  deps: RouteDeps;
  maxRequestBytes: number;
  log: Logger;
  nowMs: () => number;
  requestSeconds: Histogram<'route' | 'code'>;
}

async function handleRequest(request: IncomingMessage, response: ServerResponse, env: RequestDeps, peerCommonName: string | undefined): Promise<void> {
  const startedMs = env.nowMs();
  const rawUrl = request.url ?? '';
  const queryAt = rawUrl.indexOf('?');
  const path = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
  const method = request.method ?? 'GET';
  const route = templateOf(path);
  response.once('close', () => {
    // A client that went away before the answer was written leaves no status worth recording.
    const code = response.writableFinished ? String(response.statusCode) : 'aborted';
    env.requestSeconds.observe({ route, code }, (env.nowMs() - startedMs) / 1000);
  });
  try {
    if (rawUrl.length > httpUrlCharsMax) throw new LichenError(ErrorCode.TooLarge, `URL is longer than ${httpUrlCharsMax} characters`);
    const match = matchRoute(path, method);
    const reply = await match.handler(
      {
        method,
        query: parseQuery(queryAt < 0 ? '' : rawUrl.slice(queryAt + 1)),
        contentType: (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase(),
        body: () => readBody(request, env.maxRequestBytes),
        key: match.key,
        caller: () => callerOf(env.deps.backend, request, peerCommonName),
      },
      env.deps,
    );
    send(response, reply);
  } catch (error) {
    const failure = errorResponse(error);
    if (failure.internal) env.log.error('http request failed', { method, path, error });
    const headers = { ...failure.headers };
    // We stopped reading a too-large body; close the connection rather than read the rest of it
    // just to keep the connection alive.
    if (isLichenError(error, ErrorCode.TooLarge)) headers['Connection'] = 'close';
    send(response, { status: failure.status, json: failure.body, headers });
  }
}

/**
 * The credentials of a request: a token in the Authorization header, bare as etcd's gateway takes
 * it or as "Bearer <token>", and the common name of a verified TLS client certificate, which the
 * TLS layer reads from the connection. HTTP Basic is not taken: it would cost a bcrypt check per request.
 */
function callerOf(backend: EtcdBackend, request: IncomingMessage, peerCommonName: string | undefined): Promise<Caller | undefined> {
  const header = request.headers.authorization;
  const token = header === undefined ? undefined : header.replace(/^Bearer\s+/i, '');
  if (token === undefined && !peerCommonName) return Promise.resolve(undefined);
  return backend.identify({ token, commonName: peerCommonName });
}

function send(response: ServerResponse, reply: Reply): void {
  if (response.headersSent || response.destroyed) return;
  const body = reply.text ?? JSON.stringify(reply.json) + '\n';
  const payload = Buffer.from(body, 'utf8');
  response.writeHead(reply.status, {
    ...reply.headers,
    'Content-Type': reply.contentType ?? JSON_CONTENT_TYPE,
    'Content-Length': String(payload.length),
  });
  response.end(payload);
}
