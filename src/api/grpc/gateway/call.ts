// A gRPC call carried by an HTTP/1.1 exchange of the JSON gateway, for the service handlers (it is
// a ServerCall like the HTTP/2 one). A streamed response is one line per message,
// {"result": <message>}, written as the handler produces it; a failure ends the stream with
// grpc-gateway's error chunk, or, before anything was sent, becomes the HTTP status itself.
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { CallMetadata, ServerCall, StatusError } from '../http2-server.js';
import { httpStatusOf, streamErrorChunk } from './errors.js';

/** Headers etcd's gateway sends on every successful response (the last is the gRPC response header it forwards). */
export const RESPONSE_HEADERS = {
  'Content-Type': 'application/json',
  'Grpc-Metadata-Content-Type': 'application/grpc',
} as const;

const UNKNOWN = 2;

export class GatewayCall<Req = unknown, Res = unknown> extends EventEmitter implements ServerCall<Req, Res> {
  request!: Req;
  private finished = false;
  private cancelled = false;

  constructor(
    readonly metadata: CallMetadata,
    private readonly response: ServerResponse,
    /** The JSON text of a response message. */
    private readonly toJson: (message: Res) => string,
    readonly peerCommonName: string | undefined,
  ) {
    super();
    response.on('drain', () => this.emit('drain'));
    // The client went away before the call ended.
    response.on('close', () => {
      if (!this.finished) this.markCancelled();
    });
  }

  get writableLength(): number {
    return this.response.writableLength;
  }

  /** Whether the call has ended, by the handler, the transport or the client. */
  get done(): boolean {
    return this.finished || this.cancelled;
  }

  write(message: Res): boolean {
    if (this.done) return true;
    this.sendHeaders();
    return this.response.write(`{"result":${this.toJson(message)}}\n`);
  }

  end(): void {
    if (this.done) return;
    this.finished = true;
    this.sendHeaders();
    this.response.end();
  }

  destroy(error?: StatusError): void {
    if (this.done) return;
    this.finished = true;
    const code = error?.code ?? UNKNOWN;
    const chunk = streamErrorChunk(code, error?.details ?? 'call destroyed');
    if (!this.response.headersSent) this.response.writeHead(httpStatusOf(code), { 'Content-Type': RESPONSE_HEADERS['Content-Type'] });
    this.response.end(chunk);
  }

  /** The transport ends the call (a request it cannot read): the client gets the error, the handler 'cancelled'. */
  abort(error: StatusError): void {
    this.destroy(error);
    this.markCancelled();
  }

  private markCancelled(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled');
    // A writer waiting for 'drain' wakes up, finds the call done, and stops.
    this.emit('drain');
  }

  private sendHeaders(): void {
    if (!this.response.headersSent) this.response.writeHead(200, RESPONSE_HEADERS);
  }
}
