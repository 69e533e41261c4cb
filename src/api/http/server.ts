// The HTTP/JSON API server on node:http: parses the request line, finds the route, runs the
// handler, and writes JSON. Every failure, ours or the backend's, leaves as a JSON error with
// the status from errors.ts; nothing a client sends can crash the process.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls, { type TLSSocket, type TlsOptions } from 'node:tls';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, isLichenError, LichenError } from '../../errors.js';
import { createSilentLogger, type Logger } from '../../log.js';
import { httpRequestSecondsOn, type Histogram, type Registry } from '../../metrics.js';
import {
  clientTlsHandshakeMsMax,
  httpConnectionsMax,
  httpHeadersMsMax,
  httpRangeKeysMax,
  httpRequestMsMax,
  httpResponseBytesMax,
  httpTlsHandshakesMax,
  httpUrlCharsMax,
  requestBytesMaxDefault,
} from '../../limits.js';
import { HttpAdmission } from './admission.js';
import { UnsortedConnections } from '../unsorted.js';
import type { Timers } from '../timers.js';
import type { Caller, EtcdBackend } from '../backend.js';
import { readBody } from './body.js';
import { parseQuery } from './codec.js';
import { errorResponse } from './errors.js';
import { matchRoute, templateOf } from './routes.js';
import type { Reply, RouteDeps } from './route.js';
import { DashboardAssets } from './dashboard/assets.js';
import { ClusterMonitor, reportFetcher, type MemberTls } from './dashboard/monitor.js';
import type { DashboardSource } from './dashboard/report.js';

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
  /** A prefix GET returns at most this many keys. Default httpRangeKeysMax. */
  rangeKeysMax?: number;
  /** ... and stops once its keys and values pass this many bytes. Default httpResponseBytesMax. */
  responseBytesMax?: number;
  /** Open connections beyond this are answered 503. Default httpConnectionsMax. */
  connectionsMax?: number;
  /** With TLS: handshakes at once; one more closes the one that has waited longest. Default httpTlsHandshakesMax. */
  tlsHandshakesMax?: number;
  /** A request's headers must arrive within this. Default httpHeadersMsMax. */
  headersTimeoutMs?: number;
  /** A request (headers and body) must arrive within this. Default httpRequestMsMax. */
  requestTimeoutMs?: number;
  /** Timers for those deadlines; tests inject their own. */
  timers?: Timers;
  log?: Logger;
  /** Monotonic milliseconds, for request latency; injected by tests. Default performance.now. */
  nowMs?: () => number;
  /** The member behind the dashboard (its page at /, the cluster event stream); none: not served. */
  dashboard?: DashboardSource;
  /** How the dashboard reaches the other members' HTTP ports when they serve TLS. */
  memberTls?: MemberTls;
}

export interface HttpServer {
  readonly host: string;
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting, drops open connections (including keep-alive ones), resolves when closed. */
  close(): Promise<void>;
}

export const HEALTH_TIMEOUT_MS_DEFAULT = 2_000;

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
    responseBytesMax: options.responseBytesMax ?? httpResponseBytesMax,
    dashboard: options.dashboard && {
      source: options.dashboard,
      monitor: new ClusterMonitor({ source: options.dashboard, fetchReport: reportFetcher(options.memberTls) }),
      assets: new DashboardAssets(),
      openStreams: { count: 0 },
    },
  };

  // Deadlines and the connection limit are the admission's (admission.ts says why not node's).
  const withTls = options.tls;
  const server = createServer(
    // The default header limit (16 KiB) would cut off long keys in URLs before we could answer.
    { maxHeaderSize: httpUrlCharsMax + 16 * 1024, requestTimeout: 0 },
    (request, response) => {
      const peerCommonName = withTls?.peerCommonName(request.socket as TLSSocket);
      void handleRequest(request, response, { deps, maxRequestBytes, log, nowMs, requestSeconds }, peerCommonName);
    },
  );
  const admission = new HttpAdmission(
    server,
    {
      connectionsMax: options.connectionsMax ?? httpConnectionsMax,
      headersTimeoutMs: options.headersTimeoutMs ?? httpHeadersMsMax,
      requestTimeoutMs: options.requestTimeoutMs ?? httpRequestMsMax,
    },
    options.timers,
  );
  // With TLS, a connection is admitted once its handshake is done; until then it counts among the
  // handshakes, whose number is capped as their time is.
  let listener: net.Server;
  if (withTls) {
    const handshakes = new UnsortedConnections(options.tlsHandshakesMax ?? httpTlsHandshakesMax);
    const tlsListener = tls.createServer({ ...withTls.options, ALPNProtocols: ['http/1.1'], handshakeTimeout: clientTlsHandshakeMsMax }, (socket) => {
      handshakes.handshakeDone(socket);
      admission.admit(socket);
    });
    handshakes.countHandshakes(tlsListener);
    listener = tlsListener;
  } else {
    listener = net.createServer({ noDelay: true }, (socket) => admission.admit(socket));
  }
  // A failed TLS handshake (no or a bad client certificate) only ends that connection.
  listener.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port ?? 0, host, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const port = (listener.address() as AddressInfo).port;
  log.info('http api listening', { host, port });

  return {
    host,
    port,
    get connections() {
      return admission.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        deps.dashboard?.monitor.close();
        listener.close(() => resolve());
        admission.closeAll();
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
        headers: request.headers,
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
async function callerOf(backend: EtcdBackend, request: IncomingMessage, peerCommonName: string | undefined): Promise<Caller | undefined> {
  const header = request.headers.authorization;
  const token = header === undefined ? undefined : header.replace(/^Bearer\s+/i, '');
  if (token === undefined && !peerCommonName) return undefined;
  return backend.identify({ token, commonName: peerCommonName });
}

function send(response: ServerResponse, reply: Reply): void {
  if (response.headersSent || response.destroyed) return;
  if (reply.stream) {
    reply.stream(response);
    return;
  }
  if (reply.body) {
    sendBody(response, reply, reply.body);
    return;
  }
  const body = reply.text ?? JSON.stringify(reply.json) + '\n';
  const payload = Buffer.from(body, 'utf8');
  response.writeHead(reply.status, {
    ...reply.headers,
    'Content-Type': reply.contentType ?? JSON_CONTENT_TYPE,
    'Content-Length': String(payload.length),
  });
  response.end(payload);
}

function sendBody(response: ServerResponse, reply: Reply, body: Uint8Array | AsyncIterable<Uint8Array>): void {
  const headers = { ...reply.headers, ...(reply.contentType ? { 'Content-Type': reply.contentType } : {}) };
  if (body instanceof Uint8Array) {
    response.writeHead(reply.status, { ...headers, 'Content-Length': String(body.length) });
    response.end(body);
    return;
  }
  response.writeHead(reply.status, headers);
  // A failure half-way can no longer become an error answer: the connection is cut, so the
  // client sees a short body (and a Content-Length it did not get) rather than a complete one.
  pipeline(Readable.from(body), response).catch(() => response.destroy());
}
