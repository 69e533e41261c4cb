// What one HTTP/1.1 client may take of a member: a connection slot, and a bounded time to send a
// request. Sockets are accepted elsewhere and handed over with admit() (the HTTP/JSON API's own
// listener, or a client-port listener that tells HTTP/1.1 from HTTP/2), so the same limits apply
// wherever node:http serves.
//
// Why not node's own: server.maxConnections destroys sockets over the limit (the client sees a
// reset, not an answer), and node checks headersTimeout and requestTimeout only on servers that
// listen themselves, on a 30 s sweep that tests cannot drive. Here a connection over the limit is
// answered 503 with a JSON error, and each connection's deadline is its own timer, injected in tests.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ErrorCode, LichenError } from '../../errors.js';
import { errorResponse } from './errors.js';
import { nodeTimers, type Timers } from '../timers.js';
import { endWithAnswer } from '../linger.js';

export interface HttpLimits {
  /** Connections open at once; one more is answered 503 and closed. */
  connectionsMax: number;
  /** From a connection's start (or the end of its previous response) to the end of the request headers. */
  headersTimeoutMs: number;
  /** From a connection's start (or the end of its previous response) to the end of the request body; 0: no bound (bodies that stream). */
  requestTimeoutMs: number;
}

/** The JSON body of an error the admission answers itself; the default is the HTTP API's shape. */
export type ErrorBody = (error: LichenError) => string;

const httpApiErrorBody: ErrorBody = (error) => JSON.stringify(errorResponse(error).body);

interface Connection {
  socket: Socket;
  deadline: unknown;
  /** The request being received, once its headers are in. */
  request: IncomingMessage | undefined;
  response: ServerResponse | undefined;
}

export class HttpAdmission {
  private readonly open = new Map<Socket, Connection>();
  /** Connections answered and ended, still open for the client to read the answer. */
  private readonly ending = new Set<Socket>();

  constructor(
    private readonly server: Server,
    private readonly limits: HttpLimits,
    private readonly timers: Timers = nodeTimers,
    private readonly errorBody: ErrorBody = httpApiErrorBody,
  ) {
    server.on('request', (request: IncomingMessage, response: ServerResponse) => this.onRequest(request, response));
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket));
  }

  get connections(): number {
    return this.open.size;
  }

  /** Closes every connection now (node's closeAllConnections knows only servers that listen themselves). */
  closeAll(): void {
    for (const socket of [...this.open.keys(), ...this.ending]) socket.destroy();
  }

  /** Closes the connections that are not receiving or answering a request. */
  closeIdle(): void {
    for (const [socket, connection] of this.open) if (connection.request === undefined) socket.destroy();
    for (const socket of this.ending) socket.destroy();
  }

  /** Serves HTTP/1.1 on an accepted socket, or answers 503 when the connections are all taken. */
  admit(socket: Socket): void {
    if (this.open.size >= this.limits.connectionsMax) {
      const error = new LichenError(ErrorCode.Unavailable, `too many HTTP connections (the limit is ${this.limits.connectionsMax}); retry later`);
      return this.answerAndClose(socket, 503, error);
    }
    const connection: Connection = { socket, deadline: undefined, request: undefined, response: undefined };
    this.open.set(socket, connection);
    socket.once('close', () => {
      this.timers.clearTimeout(connection.deadline);
      this.open.delete(socket);
    });
    this.arm(connection, this.limits.headersTimeoutMs, 'its request headers');
    this.server.emit('connection', socket);
  }

  private onRequest(request: IncomingMessage, response: ServerResponse): void {
    const connection = this.open.get(request.socket);
    if (connection === undefined) return;
    connection.request = request;
    connection.response = response;
    this.timers.clearTimeout(connection.deadline);
    connection.deadline = undefined;
    if (this.limits.requestTimeoutMs > 0 && !request.complete) {
      this.arm(connection, this.limits.requestTimeoutMs, 'its request body');
      const bodyDeadline = connection.deadline;
      // 'end' may come only after the response (node drains an unread body then), when the
      // connection already waits for its next request's headers.
      request.once('end', () => {
        if (connection.deadline !== bodyDeadline) return;
        this.timers.clearTimeout(bodyDeadline);
        connection.deadline = undefined;
      });
    }
    // A kept-alive connection starts over once the answer is out.
    response.once('finish', () => {
      if (connection.request !== request) return;
      connection.request = undefined;
      connection.response = undefined;
      if (!connection.socket.destroyed) this.arm(connection, this.limits.headersTimeoutMs, 'its request headers');
    });
  }

  private arm(connection: Connection, ms: number, what: string): void {
    this.timers.clearTimeout(connection.deadline);
    connection.deadline = this.timers.setTimeout(() => {
      connection.deadline = undefined;
      const error = new LichenError(ErrorCode.Timeout, `the client did not send ${what} within ${ms} ms`);
      const response = connection.response;
      if (response !== undefined && !response.headersSent) {
        // A handler may still be waiting for the body: the answer goes through node:http.
        const body = this.errorBody(error) + '\n';
        response.writeHead(408, { 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' });
        response.end(body);
        return;
      }
      if (response === undefined) this.answerAndClose(connection.socket, 408, error);
    }, ms);
  }

  /** Malformed HTTP never reaches a handler: answer it with a JSON error and drop the connection. */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (!socket.writable || error.code === 'ECONNRESET') return void socket.destroy();
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      return this.answerAndClose(socket, 431, new LichenError(ErrorCode.TooLarge, 'request headers are too large'));
    }
    this.answerAndClose(socket, 400, new LichenError(ErrorCode.InvalidArgument, `malformed HTTP request: ${error.message}`));
  }

  /** Writes a whole response with a JSON error on the raw socket, ends it, and lets the client read it. */
  private answerAndClose(socket: Socket, status: number, error: LichenError): void {
    const body = this.errorBody(error) + '\n';
    const headers = { ...errorResponse(error).headers, 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' };
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    this.ending.add(socket);
    socket.once('close', () => this.ending.delete(socket));
    endWithAnswer(socket, `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n${head}\r\n${body}`, this.timers);
  }
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 503: 'Service Unavailable' };
