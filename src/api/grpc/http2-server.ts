// A gRPC server that serves this folder's service definitions and implementations over the
// HTTP/2 server in ./h2 (h2/connection.ts says why not node:http2).
//
// Why not @grpc/grpc-js's Server: on this machine a unary call costs its server 48–93 µs of CPU,
// against 31 µs for the same call answered straight from node:http2 (same grpc-js client, 64 calls
// in flight, process.cpuUsage per call). The API needs none of what grpc-js adds on top
// (interceptors, channelz, call credentials, server-side retries), so this file implements the
// gRPC-over-HTTP/2 protocol (grpc/grpc doc/PROTOCOL-HTTP2.md) for what Lichen serves: unary,
// server-streaming and bidirectional calls; identity, gzip and deflate request messages; the status
// in trailers, or trailers-only when a call fails before its first message.
//
// Not implemented: server-side deadlines (grpc-timeout). The client enforces its own deadline and
// resets the stream, which cancels the call here, and every Lichen operation has its own timeout.
import { EventEmitter } from 'node:events';
import zlib from 'node:zlib';
import type { H2Stream, RequestHeaders } from './h2/connection.js';
import { encodeHeaders } from './h2/hpack.js';
import { listenH2, type ClientIdentity, type H2Server, type H2ServerOptions } from './h2/server.js';

/** The gRPC status codes this server sets itself (handlers may use any). */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
} as const;

/**
 * Bytes in front of every gRPC message on the wire: the compressed flag and the message's length
 * (gRPC over HTTP/2's Length-Prefixed-Message).
 */
export const GRPC_MESSAGE_PREFIX_BYTES = 5;

/** One method as @grpc/proto-loader describes it (a grpc-js ServiceDefinition entry fits). */
export interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: never): Buffer;
  /**
   * Optional: the message's bytes after GRPC_MESSAGE_PREFIX_BYTES of room for the prefix, which the server
   * fills in, so a large response is not copied once more behind its prefix.
   */
  responseSerializeFramed?(value: never): Buffer | readonly Buffer[];
}

export type ServiceDefinition = Record<string, MethodDefinition>;

/** A failed call's status. `metadata` goes out as trailers beside grpc-status and grpc-message. */
export interface StatusError {
  code: number;
  details: string;
  metadata?: Record<string, string>;
}

export type UnaryCallback<Res> = (error: StatusError | null, response?: Res) => void;
// Handlers are typed by their own request and response shapes; the table of them is not.
export type UnaryHandler = (call: ServerCall<any, any>, callback: UnaryCallback<any>) => void;
export type StreamHandler = (call: ServerCall<any, any>) => void;
export type Implementation = Record<string, UnaryHandler | StreamHandler>;

export interface Http2GrpcServerOptions {
  /** Largest request message accepted, in bytes (after decompression). */
  receiveMessageBytesMax: number;
  /** Called when a unary call ends, with its full method name, status code and duration. */
  onUnaryDone?: (path: string, code: number, seconds: number) => void;
}

/** The request headers, read the way grpc-js's Metadata is read: every value of a key. */
export class CallMetadata {
  constructor(private readonly headers: RequestHeaders) {}

  get(key: string): string[] {
    const value = this.headers[key.toLowerCase()];
    if (value === undefined) return [];
    return Array.isArray(value) ? value : [value];
  }

  /**
   * The first value of `name` (lower case, as HTTP/2 sends names), or undefined: what a check of
   * one header needs on every request, without get's lower-casing and array.
   */
  first(name: string): string | undefined {
    const value = this.headers[name];
    return typeof value === 'string' || value === undefined ? value : value[0];
  }
}

/**
 * One call as the services see it, whatever carries it (an HTTP/2 stream here, or the JSON
 * gateway in src/api/gateway): the subset of grpc-js's server call objects the services use:
 * `request` (unary and server-streaming), `metadata`, and for streams write/end/destroy,
 * `writableLength` (response bytes not yet handed to the socket), and the events 'data' and 'end'
 * (requests from the client), 'drain' and 'cancelled'.
 */
export interface ServerCall<Req = unknown, Res = unknown> extends EventEmitter {
  request: Req;
  readonly metadata: CallMetadata;
  /**
   * The common name of the client's verified TLS certificate when it names the user (etcd's
   * --client-cert-auth): the user of a call that carries no token.
   */
  readonly peerCommonName: string | undefined;
  readonly writableLength: number;
  /** Sends one response message; false means "wait for 'drain'". */
  write(message: Res): boolean;
  /** Ends the call with status OK. */
  end(): void;
  /** Ends the call with `error`'s status (UNKNOWN when none is given). */
  destroy(error?: StatusError): void;
}

/** A call carried by an HTTP/2 stream. */
class Http2Call<Req = unknown, Res = unknown> extends EventEmitter implements ServerCall<Req, Res> {
  request!: Req;
  cancelled = false;
  private headersSent = false;
  private finished = false;

  constructor(
    private readonly stream: H2Stream,
    private readonly method: MethodDefinition,
    readonly metadata: CallMetadata,
    readonly peerCommonName: string | undefined,
  ) {
    super();
  }

  get writableLength(): number {
    return this.stream.queuedBytes;
  }

  /**
   * Sends one response message; false means "wait for 'drain'". After the call ended (the
   * client went away, or we finished) messages are dropped and true is returned, so a writer
   * waiting for 'drain' never waits forever; writers learn of the end from 'cancelled'.
   */
  write(message: Res): boolean {
    if (this.finished || this.stream.ended) return true;
    this.sendHeaders();
    return this.stream.write(frameMessage(this.method, message));
  }

  /** Ends the call with status OK. */
  end(): void {
    this.finish(GrpcCode.OK, '');
  }

  /** Ends the call with `error`'s status (UNKNOWN when none is given). */
  destroy(error?: StatusError): void {
    if (!error) return this.finish(GrpcCode.UNKNOWN, 'call destroyed');
    this.finish(error.code, error.details, error.metadata);
  }

  /** Whether the call has ended, by our status or by the client. */
  get done(): boolean {
    return this.finished || this.cancelled;
  }

  /** The unary fast path: one message and status OK with as few stream operations as possible. */
  respond(message: Res): void {
    if (this.finished || this.stream.ended) return;
    this.finished = true;
    this.sendHeaders();
    this.stream.end(frameMessage(this.method, message), OK_TRAILERS);
  }

  finish(code: number, details: string, metadata?: Record<string, string>): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stream.ended) return;
    const trailers: Array<[string, string]> = [...Object.entries(metadata ?? {}), ['grpc-status', String(code)], ['grpc-message', percentEncode(details)]];
    // Trailers-only when nothing was sent yet: one HEADERS frame carries the status and ends the stream.
    const fields = this.headersSent ? trailers : [...RESPONSE_HEADER_FIELDS, ...trailers];
    this.stream.end(undefined, encodeHeaders(fields));
  }

  /**
   * The client reset the stream or the connection dropped before we finished. A writer waiting
   * for 'drain' is woken too: its next write is dropped and it sees `done`.
   */
  markCancelled(evenIfFinished = false): void {
    if ((this.finished && !evenIfFinished) || this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled');
    this.emit('drain');
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS);
  }
}

const RESPONSE_HEADER_FIELDS: ReadonlyArray<[string, string]> = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
  ['grpc-accept-encoding', 'identity,deflate,gzip'],
];
// The header blocks every call sends, encoded once.
const RESPONSE_HEADERS = encodeHeaders(RESPONSE_HEADER_FIELDS);
const OK_TRAILERS = encodeHeaders([['grpc-status', '0']]);
const UNSUPPORTED_MEDIA_TYPE = encodeHeaders([
  [':status', '415'],
  ['content-type', 'text/plain'],
]);

export type Http2GrpcServer = H2Server;

export interface RegisteredMethod {
  definition: MethodDefinition;
  handler: UnaryHandler | StreamHandler;
}

export class GrpcRouter {
  private readonly methods = new Map<string, RegisteredMethod>();

  constructor(private readonly options: Http2GrpcServerOptions) {}

  addService(definition: ServiceDefinition, implementation: Implementation): void {
    for (const [name, method] of Object.entries(definition)) {
      const handler = implementation[name] as UnaryHandler | StreamHandler | undefined;
      if (handler) this.methods.set(method.path, { definition: method, handler });
    }
  }

  /** Serves one HTTP/2 stream as a gRPC call from `client`. */
  handle(stream: H2Stream, client: ClientIdentity = { peerCommonName: undefined }): void {
    const headers = stream.headers;
    const contentType = firstValue(headers['content-type']) ?? '';
    if (headers[':method'] !== 'POST' || !contentType.startsWith('application/grpc')) {
      stream.end(undefined, UNSUPPORTED_MEDIA_TYPE);
      return;
    }
    const path = firstValue(headers[':path']) ?? '';
    const route = this.methods.get(path);
    const call = new Http2Call(stream, route?.definition ?? UNKNOWN_METHOD, new CallMetadata(headers), client.peerCommonName);
    stream.onClose = () => call.markCancelled();
    if (!route) return call.finish(GrpcCode.UNIMPLEMENTED, `The server does not implement the method ${path}`);
    const { definition, handler } = route;
    if (definition.requestStream && !definition.responseStream) {
      return call.finish(GrpcCode.UNIMPLEMENTED, `client-streaming method ${path} is not served`);
    }
    if (definition.responseStream) stream.onDrain = () => call.emit('drain');
    const reader = new MessageReader(this.options.receiveMessageBytesMax, firstValue(headers['grpc-encoding']));
    // The transport ends the call (a message it cannot read): the client gets the status, and a
    // streaming handler hears 'cancelled' so it lets go of what the call holds (watchers).
    const fail = (code: number, details: string): void => {
      call.finish(code, details);
      stream.onData = undefined;
      call.markCancelled(true);
    };
    stream.onRefused = (reason) => fail(GrpcCode.RESOURCE_EXHAUSTED, `request refused: ${reason}`);
    // Messages handed on are no longer ours to hold: the client may send that much more. A
    // partial message needs room for all of it before the client may send the rest.
    const admit = (): void => {
      stream.release(stream.held - reader.bufferedBytes);
      stream.need(reader.wholeMessageBytes);
    };
    if (definition.requestStream) {
      handler(call, undefined as never);
      stream.onData = (chunk) => {
        for (const message of reader.push(chunk, fail)) {
          const request = deserialize(definition, message, fail);
          if (request === undefined || call.done) return;
          call.emit('data', request);
        }
        admit();
      };
      stream.onEnd = () => {
        if (!call.done) call.emit('end');
      };
      return;
    }
    let request: unknown;
    let count = 0;
    stream.onData = (chunk) => {
      for (const message of reader.push(chunk, fail)) {
        if (++count > 1) return fail(GrpcCode.UNIMPLEMENTED, `received more than one request message for ${path}`);
        request = deserialize(definition, message, fail);
      }
      admit();
    };
    stream.onEnd = () => {
      if (call.done) return;
      if (count === 0) return call.finish(GrpcCode.UNIMPLEMENTED, `received no request message for ${path}`);
      call.request = request;
      if (definition.responseStream) return (handler as StreamHandler)(call);
      // The handler's work (a proposal, a read round) goes on if the client resets the stream: the
      // stream keeps its place among the connection's streams until the handler answers, so a
      // client that resets calls as fast as it sends them runs no more at once than one that
      // waits (HTTP/2 "Rapid Reset", h2/connection.ts).
      stream.startWork();
      this.runUnary(path, handler as UnaryHandler, call, (error, response) => {
        stream.endWork();
        if (error) call.finish(error.code, error.details, error.metadata);
        else call.respond(response);
      });
    };
  }

  /** The method served at a gRPC path ("/etcdserverpb.KV/Range"), for callers that carry calls themselves. */
  method(path: string): RegisteredMethod | undefined {
    return this.methods.get(path);
  }

  /** Largest request message accepted, in bytes (after decompression). */
  get receiveMessageBytesMax(): number {
    return this.options.receiveMessageBytesMax;
  }

  /** Runs a unary handler, records its duration, and hands its outcome to `reply` (once). */
  runUnary(path: string, handler: UnaryHandler, call: ServerCall, reply: UnaryCallback<unknown>): void {
    const started = performance.now();
    const done = (code: number): void => this.options.onUnaryDone?.(path, code, (performance.now() - started) / 1000);
    try {
      handler(call, (error, response) => {
        reply(error, response);
        done(error ? error.code : GrpcCode.OK);
      });
    } catch (error) {
      reply({ code: GrpcCode.INTERNAL, details: `handler failed: ${error instanceof Error ? error.message : String(error)}` });
      done(GrpcCode.INTERNAL);
    }
  }
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

const UNKNOWN_METHOD: MethodDefinition = {
  path: '',
  requestStream: false,
  responseStream: false,
  requestDeserialize: (bytes) => bytes,
  responseSerialize: () => Buffer.alloc(0),
};

function deserialize(definition: MethodDefinition, message: Buffer, fail: (code: number, details: string) => void): unknown {
  try {
    return definition.requestDeserialize(message);
  } catch (error) {
    fail(GrpcCode.INTERNAL, `Error deserializing request: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}

/**
 * Cuts the request body into gRPC messages: each is a 1-byte compressed flag, a 4-byte
 * big-endian length, then that many bytes. A message longer than the limit fails the call
 * before its bytes are buffered. Chunks are joined once per message, not once per chunk, so a
 * large message arriving in many DATA frames is copied once.
 */
export class MessageReader {
  /**
   * Chunks kept before the newest half of them are joined into one. A client may send a message
   * in DATA frames of one byte ("data dribble", CVE-2019-9511): each would be a Buffer of its own,
   * ~100 bytes of heap for one byte counted by flow control, and would keep alive the whole socket
   * read it came in. Joined, the newest chunks are copied once and the reads they came from let go.
   */
  static readonly CHUNKS_KEPT_MAX = 64;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;

  /** Bytes received and not yet handed on as a message. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The size of the message being received, prefix included, once its prefix is in (else 0). */
  get wholeMessageBytes(): number {
    return this.buffered >= 5 ? 5 + this.head().readUInt32BE(1) : 0;
  }

  constructor(
    private readonly messageBytesMax: number,
    private readonly encoding: string | undefined,
  ) {}

  /** Chunks held (for tests). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  push(chunk: Buffer, fail: (code: number, details: string) => void): Buffer[] {
    if (this.failed) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.chunks.length > MessageReader.CHUNKS_KEPT_MAX) {
      // The newest half only: older chunks are not copied again, so every byte is copied at most once here.
      const newest = this.chunks.splice(MessageReader.CHUNKS_KEPT_MAX / 2);
      this.chunks.push(Buffer.concat(newest));
    }
    const messages: Buffer[] = [];
    while (this.buffered >= 5) {
      const head = this.head();
      const compressed = head[0] === 1;
      const length = head.readUInt32BE(1);
      if (length > this.messageBytesMax) return this.stop(fail, GrpcCode.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs. ${this.messageBytesMax})`);
      if (this.buffered < 5 + length) break;
      const body = this.take(5 + length).subarray(5);
      if (!compressed) {
        messages.push(body);
        continue;
      }
      const inflated = this.inflate(body);
      if (typeof inflated === 'string') return this.stop(fail, inflated.startsWith('Received') ? GrpcCode.RESOURCE_EXHAUSTED : GrpcCode.INTERNAL, inflated);
      messages.push(inflated);
    }
    return messages;
  }

  /** The first chunk, made at least 5 bytes long (a message prefix may span chunks). */
  private head(): Buffer {
    if (this.chunks[0]!.length < 5) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0]!;
  }

  /** Removes and returns the first `bytes` bytes (the caller checked they are buffered). */
  private take(bytes: number): Buffer {
    const first = this.chunks[0]!;
    const whole = first.length >= bytes ? first : Buffer.concat(this.chunks, this.buffered);
    const rest = whole.subarray(bytes);
    if (whole === first) this.chunks.shift();
    else this.chunks = [];
    if (rest.length > 0) this.chunks.unshift(rest);
    this.buffered -= bytes;
    return whole.subarray(0, bytes);
  }

  /** The decompressed message, or why it cannot be had. */
  private inflate(body: Buffer): Buffer | string {
    const options = { maxOutputLength: this.messageBytesMax };
    try {
      if (this.encoding === 'gzip') return zlib.gunzipSync(body, options);
      if (this.encoding === 'deflate') return zlib.inflateSync(body, options);
    } catch (error) {
      const tooBig = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      return tooBig ? `Received message larger than max (more than ${this.messageBytesMax} bytes decompressed)` : `cannot decompress the request: ${(error as Error).message}`;
    }
    return `compressed request message with grpc-encoding "${this.encoding ?? 'identity'}", which this server does not decompress`;
  }

  private stop(fail: (code: number, details: string) => void, code: number, details: string): Buffer[] {
    this.failed = true;
    fail(code, details);
    return [];
  }
}

/** The response message with its gRPC prefix (uncompressed flag, length), in one buffer or in pieces. */
function frameMessage(method: MethodDefinition, message: unknown): Buffer | readonly Buffer[] {
  let framed: Buffer | readonly Buffer[];
  if (method.responseSerializeFramed !== undefined) {
    framed = method.responseSerializeFramed(message as never);
  } else {
    const body = method.responseSerialize(message as never);
    framed = Buffer.allocUnsafe(GRPC_MESSAGE_PREFIX_BYTES + body.length);
    body.copy(framed, GRPC_MESSAGE_PREFIX_BYTES);
  }
  let first: Buffer;
  let length: number;
  if (Buffer.isBuffer(framed)) {
    first = framed;
    length = framed.length;
  } else {
    first = framed[0]!;
    length = 0;
    for (const piece of framed) length += piece.length;
  }
  first[0] = 0;
  first.writeUInt32BE(length - GRPC_MESSAGE_PREFIX_BYTES, 1);
  return framed;
}

/** grpc-message is percent-encoded UTF-8; printable ASCII other than '%' goes as is. */
export function percentEncode(text: string): string {
  if (!/[^\x20-\x24\x26-\x7e]/.test(text)) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Listens on host:port (0 picks a free port) and serves every stream through `router`. */
export function listenHttp2Grpc(router: GrpcRouter, host: string, port: number, options: H2ServerOptions): Promise<Http2GrpcServer> {
  return listenH2(host, port, (stream, client) => router.handle(stream, client), options);
}
