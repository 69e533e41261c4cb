// etcd's HTTP/1.1 JSON gateway, on the client port beside gRPC (h2/sniff.ts tells them apart):
// POST /v3/<service>/<call> with a JSON request, answered in JSON (proto-json.ts says how), and
// /version, /health and /metrics as etcd serves them there.
//
// Like etcd's grpc-gateway, which dials its own gRPC server, the gateway runs the very service
// handlers the gRPC router runs, in-process: the JSON request becomes the protobuf request the
// gRPC path would have decoded (same deserializer, so the same size checks), the Authorization
// header becomes the "authorization" metadata (and Grpc-Metadata-<name> headers become <name>),
// and the handler's answer is serialized as for gRPC, then written as JSON. Validation, auth and
// error mapping are therefore the gRPC path's, unchanged.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type net from 'node:net';
import { ErrorCode, isLichenError } from '../../../errors.js';
import { gatewayConnectionsMax, gatewayHeadersMsMax, gatewayJsonExpansionMax, gatewayKeepAliveIdleMsMax } from '../../../limits.js';
import type { Registry } from '../../../metrics.js';
import type { EtcdBackend } from '../../backend.js';
import { checkHealth } from '../../health.js';
import { readBody } from '../../http/body.js';
import { HttpAdmission } from '../../http/admission.js';
import { GRPC_ERROR_TABLE } from '../errors.js';
import type { RequestHeaders } from '../h2/connection.js';
import type { ClientIdentity } from '../h2/server.js';
import { CallMetadata, GrpcCode, type GrpcRouter, type RegisteredMethod, type StatusError, type StreamHandler, type UnaryHandler } from '../http2-server.js';
import { GatewayCall, RESPONSE_HEADERS } from './call.js';
import { httpStatusOf, unaryErrorBody } from './errors.js';
import { JsonValueSplitter, ValueTooLarge } from './json-stream.js';
import { JsonSyntaxError, readJsonValue } from './json-text.js';
import { ProtoJsonError, encodeFromJson, etcdProtoRoot, jsonFromEncoded } from './proto-json.js';
import { GATEWAY_ROUTES, V3BETA_PREFIX, V3_PREFIX, type GatewayRoute } from './routes.js';
import type protobuf from 'protobufjs';

export interface GatewayOptions {
  router: GrpcRouter;
  backend: EtcdBackend;
  /** GET /metrics renders it. */
  registry?: Registry;
  /** The etcd API version this member reports in /version (e.g. "3.5.0"). */
  version: string;
  /** Bound on the read /health makes. */
  healthTimeoutMs: number;
}

/** etcd serves the gateway with CORS open to every origin (its --cors default, "*"). */
const CORS_HEADERS = {
  'Access-Control-Allow-Headers': 'accept, content-type, authorization',
  'Access-Control-Allow-Methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'Access-Control-Allow-Origin': '*',
} as const;

/** A request the gateway cannot turn into a call, and how it fails. */
class RequestError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

interface Route extends GatewayRoute {
  method: RegisteredMethod;
  requestMessage: protobuf.Type;
  responseMessage: protobuf.Type;
}

export class Gateway {
  private readonly server: Server;
  /** The connection limit and the header deadline (src/api/http/admission.ts), in etcd's error shape. */
  private readonly admission: HttpAdmission;
  private readonly routes = new Map<string, Route>();
  private readonly jsonBytesMax: number;
  /** Connections handed to the HTTP server (it counts only those it accepted itself). */
  private readonly sockets = new Set<net.Socket>();
  /** Who is on each connection, as its transport told (TLS client certificates). */
  private readonly clients = new WeakMap<net.Socket, ClientIdentity>();
  private closing = false;

  constructor(private readonly options: GatewayOptions) {
    const root = etcdProtoRoot();
    for (const [path, route] of GATEWAY_ROUTES) {
      const method = options.router.method(route.grpcPath);
      if (!method) continue;
      this.routes.set(path, { ...route, method, requestMessage: root.lookupType(route.requestType), responseMessage: root.lookupType(route.responseType) });
    }
    this.jsonBytesMax = gatewayJsonExpansionMax * options.router.receiveMessageBytesMax;
    this.server = createServer({ requestTimeout: 0, keepAliveTimeout: gatewayKeepAliveIdleMsMax }, (request, response) => this.handle(request, response));
    this.admission = new HttpAdmission(
      this.server,
      // No request deadline: the body of a watch or keep-alive call is a stream that stays open.
      { connectionsMax: gatewayConnectionsMax, headersTimeoutMs: gatewayHeadersMsMax, requestTimeoutMs: 0 },
      undefined,
      (error) => unaryErrorBody(GRPC_ERROR_TABLE[error.code].code, error.message),
    );
  }

  /** Serves HTTP/1.1 on an accepted connection (its first bytes put back) from `client`. */
  accept(socket: net.Socket, client?: ClientIdentity): void {
    if (this.closing) return void socket.destroy();
    if (client !== undefined) this.clients.set(socket, client);
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    this.admission.admit(socket);
  }

  /**
   * Closes idle keep-alive connections now and every other one after `graceMs` (watch and
   * keep-alive streams never end on their own); resolves once all are closed.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.admission.closeIdle();
    const force = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, graceMs);
    await Promise.all([...this.sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve))));
    clearTimeout(force);
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    for (const [name, value] of Object.entries(CORS_HEADERS)) response.setHeader(name, value);
    if (request.method === 'OPTIONS') return void response.writeHead(200, { 'Content-Length': '0' }).end();
    let path = pathOf(request.url ?? '/');
    // etcd 3.4 answers 3.3's /v3beta/ paths as /v3/.
    if (path.startsWith(V3BETA_PREFIX)) path = V3_PREFIX + path.slice(V3BETA_PREFIX.length);
    if (path.startsWith(V3_PREFIX)) return this.serveCall(path, request, response);
    switch (path) {
      case '/version':
        if (request.method !== 'GET') return methodNotAllowed(response, 'GET');
        return sendJson(response, 200, versionBody(this.options.version), 'application/json');
      case '/health':
        if (request.method !== 'GET') return methodNotAllowed(response, 'GET');
        return void this.serveHealth(request, response);
      case '/metrics':
        if (this.options.registry) return void this.serveMetrics(this.options.registry, response);
    }
    plainError(response, 404, '404 page not found');
  }

  private async serveMetrics(registry: Registry, response: ServerResponse): Promise<void> {
    sendJson(response, 200, await registry.metrics(), registry.contentType);
  }

  /** etcd's /health: {"health":"true"}, or 503 with {"health":"false"}. */
  private async serveHealth(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const serializable = new URL(request.url ?? '/', 'http://x').searchParams.get('serializable') === 'true';
    const problem = await checkHealth(this.options.backend, this.options.healthTimeoutMs, { serializable });
    if (problem) plainError(response, 503, '{"health":"false"}');
    else sendJson(response, 200, '{"health":"true"}', 'text/plain; charset=utf-8');
  }

  private serveCall(path: string, request: IncomingMessage, response: ServerResponse): void {
    const route = this.routes.get(path);
    if (!route) return plainError(response, 404, 'Not Found');
    if (request.method !== 'POST') return plainError(response, 405, 'Method Not Allowed');
    const toJson = (message: unknown): string => jsonFromEncoded(route.responseMessage, route.method.definition.responseSerialize(message as never));
    const call = new GatewayCall<unknown, unknown>(metadataOf(request), response, toJson, this.clients.get(request.socket)?.peerCommonName);
    if (route.kind === 'bidi-stream') return this.serveBidiStream(route, call, request, response);
    void this.readRequest(route, request).then(
      (message) => {
        call.request = message;
        if (route.kind === 'server-stream') return (route.method.handler as StreamHandler)(call);
        this.options.router.runUnary(route.grpcPath, route.method.handler as UnaryHandler, call, (error, reply) => {
          if (error) sendUnaryError(response, error);
          else sendJson(response, 200, toJson(reply), RESPONSE_HEADERS['Content-Type'], RESPONSE_HEADERS);
        });
      },
      (error: RequestError) => sendUnaryError(response, { code: error.code, details: error.message }),
    );
  }

  /** Reads the whole body as one request message (an empty body is an empty message). */
  private async readRequest(route: Route, request: IncomingMessage): Promise<unknown> {
    let body: Uint8Array;
    try {
      body = await readBody(request, this.jsonBytesMax);
    } catch (error) {
      if (isLichenError(error, ErrorCode.TooLarge)) throw new RequestError(GrpcCode.RESOURCE_EXHAUSTED, this.bodyTooLargeMessage());
      throw new RequestError(GrpcCode.CANCELLED, 'the request body could not be read');
    }
    // grpc-gateway reports a body it cannot read as INVALID_ARGUMENT.
    return this.decode(route, Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'), GrpcCode.INVALID_ARGUMENT);
  }

  /**
   * A watch or keep-alive call: the body is a stream of JSON requests, each handed to the
   * handler as it completes. The first one must be readable (else the call fails as a whole,
   * with UNKNOWN as etcd's gateway reports it); after that, an unreadable one ends the client's
   * side of the call, as the end of the body does.
   */
  private serveBidiStream(route: Route, call: GatewayCall, request: IncomingMessage, response: ServerResponse): void {
    const splitter = new JsonValueSplitter(this.jsonBytesMax);
    let started = false;
    let stopped = false;
    const start = (): void => {
      started = true;
      (route.method.handler as StreamHandler)(call);
    };
    const stop = (error?: RequestError): void => {
      stopped = true;
      request.off('data', onData);
      request.resume(); // The rest of the body is read and dropped.
      if (!started && error) return sendUnaryError(response, { code: error.code, details: error.message });
      if (!started) start();
      if (!call.done) call.emit('end');
    };
    const deliver = (text: string): boolean => {
      let message: unknown;
      try {
        message = this.decode(route, text, GrpcCode.UNKNOWN);
      } catch (error) {
        stop(error as RequestError);
        return false;
      }
      if (!started) start();
      if (!call.done) call.emit('data', message);
      return true;
    };
    const onData = (chunk: Buffer): void => {
      let texts: string[];
      try {
        texts = splitter.push(chunk);
      } catch (error) {
        if (!(error instanceof ValueTooLarge)) throw error;
        return stop(new RequestError(GrpcCode.RESOURCE_EXHAUSTED, this.bodyTooLargeMessage()));
      }
      for (const text of texts) if (!deliver(text)) return;
    };
    request.on('data', onData);
    request.on('end', () => {
      if (stopped) return;
      const rest = splitter.end();
      if (rest !== undefined && !deliver(rest)) return;
      stop();
    });
  }

  /** The request message the gRPC path would have decoded from the same request in protobuf. */
  private decode(route: Route, text: string, failureCode: number): unknown {
    let bytes: Uint8Array;
    try {
      const json = readJsonValue(text);
      bytes = json === undefined ? new Uint8Array(0) : encodeFromJson(route.requestMessage, json.value);
    } catch (error) {
      if (error instanceof JsonSyntaxError || error instanceof ProtoJsonError) throw new RequestError(failureCode, error.message);
      throw error;
    }
    const max = this.options.router.receiveMessageBytesMax;
    // gRPC's own limit, with grpc-go's words, as etcd's gateway reports it.
    if (bytes.length > max) throw new RequestError(GrpcCode.RESOURCE_EXHAUSTED, `grpc: received message larger than max (${bytes.length} vs. ${max})`);
    return route.method.definition.requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  private bodyTooLargeMessage(): string {
    return `lichen: the request body is larger than the gateway's limit of ${this.jsonBytesMax} bytes`;
  }
}

/** The path of a request URL, percent-decoded as Go's URL.Path is. */
function pathOf(url: string): string {
  const queryAt = url.indexOf('?');
  const raw = queryAt < 0 ? url : url.slice(0, queryAt);
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The metadata grpc-gateway forwards: Authorization, and every Grpc-Metadata-<name> header as <name>. */
function metadataOf(request: IncomingMessage): CallMetadata {
  const metadata: RequestHeaders = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    if (name === 'authorization') metadata[name] = value;
    else if (name.startsWith('grpc-metadata-')) metadata[name.slice('grpc-metadata-'.length)] = value;
  }
  return new CallMetadata(metadata);
}

function versionBody(version: string): string {
  const [major = '0', minor = '0'] = version.split('.');
  return JSON.stringify({ etcdserver: version, etcdcluster: `${major}.${minor}.0` });
}

function sendUnaryError(response: ServerResponse, error: StatusError): void {
  if (response.headersSent || response.destroyed) return;
  const headers: Record<string, string> = {};
  // A body we stopped reading is not worth reading to the end to keep the connection.
  if (error.code === GrpcCode.RESOURCE_EXHAUSTED) headers['Connection'] = 'close';
  sendJson(response, httpStatusOf(error.code), unaryErrorBody(error.code, error.details), RESPONSE_HEADERS['Content-Type'], headers);
}

function sendJson(response: ServerResponse, status: number, body: string, contentType: string, headers: Record<string, string> = {}): void {
  if (response.headersSent || response.destroyed) return;
  const payload = Buffer.from(body, 'utf8');
  response.writeHead(status, { ...headers, 'Content-Type': contentType, 'Content-Length': String(payload.length) });
  response.end(payload);
}

/** Go's http.Error: the text and a newline, as plain text. */
function plainError(response: ServerResponse, status: number, text: string): void {
  sendJson(response, status, `${text}\n`, 'text/plain; charset=utf-8', { 'X-Content-Type-Options': 'nosniff' });
}

function methodNotAllowed(response: ServerResponse, allowed: string): void {
  response.setHeader('Allow', allowed);
  plainError(response, 405, 'Method Not Allowed');
}
