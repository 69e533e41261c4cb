// The server side of one HTTP/2 connection (RFC 9113, cleartext with prior knowledge, as gRPC
// clients speak it): frames in, streams out to the caller, responses framed and flow-controlled.
//
// Why not node:http2. Profiled under 64 concurrent puts, node:http2 (its JavaScript, nghttp2 and
// the per-stream Duplex objects) was 28% of the leader's CPU, the largest single share; under one
// client it also sends a response's trailers one event-loop turn after its data (sendTrailers
// defers to setImmediate, and the write after it to the next turn). This file does only what a
// gRPC server needs: no server push, no priorities, no HTTP/1 upgrade (TLS is the listener's, server.ts), and header
// blocks encoded without a dynamic table. Every frame queued during one turn of the event loop
// leaves in one socket write.
import type { Duplex } from 'node:stream';
import { HpackDecoder, entryBytes } from './hpack.js';
import {
  CLIENT_PREFACE,
  ConnectionError,
  DEFAULT_FRAME_BYTES,
  DEFAULT_WINDOW_BYTES,
  ErrorCode,
  FRAME_BYTES_LIMIT,
  FRAME_HEADER_BYTES,
  Flag,
  FrameType,
  Setting,
  WINDOW_BYTES_LIMIT,
  frame,
  goawayFrame,
  headerFrames,
  rstStreamFrame,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from './frames.js';
import {
  grpcEmptyDataFramesMax,
  grpcHeaderBlockBytesMax,
  grpcHeaderBlockFramesMax,
  grpcHeaderListBytesMax,
  grpcHpackTableBytesMax,
} from '../../../limits.js';
import { nodeTimers, type Timers } from '../../timers.js';
import { giveBack, isLent } from './pieces.js';

/**
 * What one connection may make the server hold, and how long it may take to say anything. Request
 * data is admitted through flow control: a client cannot send beyond the windows we advertise, and
 * we give window back only as the caller consumes what it was given (H2Stream.release), or, for a
 * message larger than a stream window, once the connection has room for all of it (H2Stream.need).
 */
export interface H2Limits {
  /** Streams open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with REFUSED_STREAM. */
  streamsMax: number;
  /**
   * Each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE): what a stream may send before
   * its caller asks for more. One frame's worth, so that a small request arrives whole in one go.
   */
  streamWindowBytes: number;
  /**
   * Bytes held for all streams outside reservations: their header lists and the data they sent
   * within their windows. A stream whose header list would pass it is refused (REFUSED_STREAM);
   * one whose data would is ended (H2Stream.onRefused, else ENHANCE_YOUR_CALM).
   */
  bufferedBytesMax: number;
  /**
   * Bytes reserved at once for messages larger than a stream window. A stream waits, without
   * window, until all of its message fits; reservations are granted in the order asked.
   */
  reservedBytesMax: number;
  /** The client preface, its SETTINGS and its acknowledgement of ours must arrive within this. */
  handshakeTimeoutMs: number;
  /** A connection with no open stream for this long is sent GOAWAY (NO_ERROR) and closed. */
  idleTimeoutMs: number;
  /**
   * While streams are open, the acknowledgement of a client's PING waits up to this long for
   * other frames to leave with (see onPing). Undefined: acknowledged at once.
   */
  pingAckDelayMs?: number;
  /**
   * Streams the client may reset while their caller works on them (H2Stream.startWork), within
   * workResetsWindowMs; one more ends the connection with ENHANCE_YOUR_CALM ("Rapid Reset").
   */
  workResetsMax: number;
  workResetsWindowMs: number;
  /**
   * Control frames answering the client (PING and SETTINGS acknowledgements, RST_STREAM) the
   * socket may have left unwritten; one more ends the connection (ENHANCE_YOUR_CALM): the client
   * floods us and does not read.
   */
  controlFramesUnwrittenMax: number;
  /**
   * Bytes the socket may hold unwritten when more are to be written: beyond it the client is taken
   * to have stopped reading, and the connection is cut rather than let responses pile up in memory.
   */
  unreadResponseBytesMax: number;
}

/** Receive window of the whole connection, raised from the protocol's 64 KiB at the start. */
export const CONNECTION_WINDOW_BYTES = 16 << 20;
/** Response bytes one stream may have queued before write() asks its caller to wait for drain. */
export const STREAM_BUFFER_BYTES = 64 << 10;
/** Bytes waiting in the socket above which every write() asks its caller to wait for drain. */
export const SOCKET_BUFFER_BYTES = 1 << 20;
/**
 * Bytes of queued frames written as one joined buffer; more go out corked (one writev), without
 * the copy. Small: a join of this size comes from Node's buffer pool, while a larger one is an
 * ArrayBuffer of its own. At 64 KiB, a 2.8 MB range response sent as the client's window opened
 * was copied once more into fresh 20-64 KiB buffers, whose churn (external memory) drove the
 * members' full collections (range-10000, 2026-12-07).
 */
const JOIN_BYTES_MAX = 4 << 10;

/** A request's header fields by name; a name the request did not send may be present, undefined. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

/** Trailers (or a trailers-only response) waiting behind a stream's queued data. */
class EndOfStream {
  constructor(readonly block: Buffer) {}
}

/**
 * One request stream. The caller sets the callbacks it wants when the connection hands the
 * stream over (before any data arrives) and answers with respond/write/end.
 *
 * Data handed to onData stays counted against the connection's limits until the caller gives it
 * back with release(); the stream's window refills only then. A caller that must hold more than
 * a stream window at once (a whole gRPC message) says so with need().
 */
export class H2Stream {
  onData: ((chunk: Buffer) => void) | undefined;
  onEnd: (() => void) | undefined;
  /** The stream is gone: reset by the client, the connection closed, or the response finished. */
  onClose: (() => void) | undefined;
  /** write() returned false earlier and queued data has drained below the limits. */
  onDrain: (() => void) | undefined;
  /**
   * The connection refuses more data for this stream (its limits are reached; `reason` says
   * which). The caller should end the stream with an error; if it does not, the stream is reset.
   */
  onRefused: ((reason: string) => void) | undefined;

  remoteEnded = false;
  closed = false;
  /** Response bytes not yet handed to the socket (waiting for flow-control window). */
  queuedBytes = 0;
  sendWindow: number;
  receiveWindow: number;
  /** Bytes handed to onData and not yet released. */
  held = 0;
  /** The caller works on the request (startWork) and has not said it is done (endWork). */
  working = false;
  /** Bytes reserved for this stream's current message (0: it lives within its window). */
  reserved = 0;
  /** Bytes this stream waits to have reserved (0: it is not waiting). */
  wanted = 0;
  readonly queue: Array<Buffer | EndOfStream> = [];
  private ending = false;

  constructor(
    private readonly connection: Http2Connection,
    readonly id: number,
    readonly headers: RequestHeaders,
    /** The header list's size, counted against the connection's buffered bytes while the stream is open. */
    readonly headerBytes: number,
    sendWindow: number,
    receiveWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.receiveWindow = receiveWindow;
  }

  /** The caller is done with `bytes` of the data it was given: the client may send that much more. */
  release(bytes: number): void {
    if (bytes > 0) this.connection.release(this, bytes);
  }

  /**
   * The caller cannot go on until it holds `bytes` at once (counting what it holds now). Up to a
   * stream window this only refills the window; beyond it, the bytes are reserved on the
   * connection, and the window opens once they are.
   */
  need(bytes: number): void {
    this.connection.need(this, bytes);
  }

  /**
   * The caller has started work on the request that goes on whether or not the client stays (a
   * handler running, a proposal made). Until endWork(), the stream counts against streamsMax even
   * after it closed, and a reset from the client counts against workResetsMax: a client cannot
   * make us run more than streamsMax requests at once by resetting the ones it sent ("Rapid Reset").
   */
  startWork(): void {
    this.working = true;
  }

  /** The work begun with startWork() is over (answered, failed, or abandoned after the close). */
  endWork(): void {
    if (!this.working) return;
    this.working = false;
    if (this.closed) this.connection.workEndedAfterClose();
  }

  /** Whether end() was called (the response may still be waiting for window). */
  get ended(): boolean {
    return this.ending || this.closed;
  }

  /** Sends the response headers (an HPACK block). */
  respond(block: Buffer): void {
    if (this.ended) return;
    this.connection.sendHeaderBlock(this.id, block, false);
  }

  /** Queues response data (one buffer, or pieces sent in order); false asks the caller to wait for onDrain before writing more. */
  write(data: Buffer | readonly Buffer[]): boolean {
    if (this.ended) return true;
    this.enqueue(data);
    return this.connection.flushStream(this);
  }

  private enqueue(data: Buffer | readonly Buffer[]): void {
    if (Buffer.isBuffer(data)) return this.enqueuePiece(data);
    for (const piece of data) this.enqueuePiece(piece);
  }

  private enqueuePiece(piece: Buffer): void {
    if (piece.length === 0) return;
    this.queue.push(piece);
    this.queuedBytes += piece.length;
  }

  /**
   * Ends the response: optional last data, then `block` as the final HEADERS frame (trailers,
   * or the whole response when nothing was sent before).
   */
  end(data: Buffer | readonly Buffer[] | undefined, block: Buffer): void {
    if (this.ended) return;
    if (data !== undefined) this.enqueue(data);
    this.ending = true;
    this.queue.push(new EndOfStream(block));
    this.connection.flushStream(this);
  }
}

export class Http2Connection {
  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder = new HpackDecoder(grpcHpackTableBytesMax);
  private pending: Buffer | undefined;
  private prefaceSeen = false;
  private prefaceSent = false;
  private settingsSeen = false;
  /** Whether the client acknowledged our SETTINGS: until then its streams start with the default window. */
  private settingsAcknowledged = false;
  private headerBlock: { streamId: number; endStream: boolean; chunks: Buffer[]; bytes: number } | undefined;
  /** Closed streams whose caller still works on them (H2Stream.startWork): they count against streamsMax. */
  private workingClosed = 0;
  /** Streams reset by the client while worked on, since workResetsTimer was set. */
  private workResets = 0;
  private workResetsTimer: unknown;
  /** Control frames in `out`, and those handed to the socket and not written yet (H2Limits.controlFramesUnwrittenMax). */
  private controlFramesQueued = 0;
  private controlFramesUnwritten = 0;
  /** DATA frames in a row without data or END_STREAM (grpcEmptyDataFramesMax). */
  private emptyDataFrames = 0;
  private lastStreamId = 0;
  private receiveWindow = CONNECTION_WINDOW_BYTES;
  private receivedUnacknowledged = 0;
  private sendWindow = DEFAULT_WINDOW_BYTES;
  private peerStreamWindow = DEFAULT_WINDOW_BYTES;
  private peerFrameBytes = DEFAULT_FRAME_BYTES;
  /** The window a new stream starts with, as the client sees it. */
  private streamWindow = DEFAULT_WINDOW_BYTES;
  /** Header lists of open streams plus data held outside reservations (H2Limits.bufferedBytesMax). */
  private bufferedBytes = 0;
  /** Sum of the streams' reservations (H2Limits.reservedBytesMax). */
  private reservedBytes = 0;
  /** Streams waiting for a reservation, in the order they asked. */
  private readonly reservationQueue: H2Stream[] = [];
  private out: Buffer[] = [];
  private outBytes = 0;
  /** Lent pieces (pieces.ts) whose last bytes are in `out`: given back once the socket has written them. */
  private outLent: ArrayBuffer[] = [];
  private flushQueued = false;
  /** Streams with data waiting for window, and streams whose caller waits for onDrain. */
  private readonly blocked = new Set<H2Stream>();
  private readonly waitingForDrain = new Set<H2Stream>();
  /** The handshake deadline until it completes, then the idle deadline while no stream is open. */
  private timer: unknown;
  /** Set while a PING's acknowledgement waits in `out` for other frames (see onPing). */
  private pingAckTimer: unknown;
  /** A PING came while no stream was open: its ACK waits in `out` for the end of the bytes read with it (see onPing). */
  private pingAckAfterRead = false;
  private goingAway = false;
  private closed = false;

  constructor(
    /** Any byte stream: a TCP socket, or a TLS socket after its handshake. */
    private readonly socket: Duplex,
    private readonly onStream: (stream: H2Stream) => void,
    private readonly limits: H2Limits,
    private readonly timers: Timers = nodeTimers,
    /** Told of every connection error we end a connection with (GOAWAY with a code other than NO_ERROR). */
    private readonly onConnectionError?: (code: number, reason: string) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('drain', () => this.releaseWaiters());
    socket.on('close', () => this.onSocketClosed());
    socket.on('error', () => undefined); // 'close' follows and cancels the streams.
    this.timer = timers.setTimeout(() => this.onHandshakeTimeout(), limits.handshakeTimeoutMs);
  }

  /** Graceful shutdown: GOAWAY now, the socket ends once the open streams have finished. */
  goAway(code: number = ErrorCode.NO_ERROR, reason = 'server shutting down'): void {
    if (this.goingAway || this.closed) return;
    this.goingAway = true;
    this.sendPrefaceIfNeeded();
    this.send(goawayFrame(this.lastStreamId, code, reason));
    this.endIfIdle();
  }

  destroy(): void {
    this.socket.destroy();
  }

  // ------------------------------------------------------------------ timeouts

  private get handshakeDone(): boolean {
    return this.settingsSeen && this.settingsAcknowledged;
  }

  private onHandshakeTimeout(): void {
    this.timer = undefined;
    if (this.handshakeDone) return;
    // SETTINGS_TIMEOUT (RFC 9113 §6.5.3): our SETTINGS, or the client's, never completed.
    this.fail(ErrorCode.SETTINGS_TIMEOUT, `no HTTP/2 handshake (preface, SETTINGS and acknowledgement) within ${this.limits.handshakeTimeoutMs} ms`);
  }

  /** Arms the idle deadline when the handshake is done and no stream is open; disarms it otherwise. */
  private updateIdleTimer(): void {
    if (!this.handshakeDone || this.closed) return;
    const idle = this.streams.size === 0 && !this.goingAway;
    if (idle && this.timer === undefined) {
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        this.goAway(ErrorCode.NO_ERROR, `idle for ${this.limits.idleTimeoutMs} ms`);
      }, this.limits.idleTimeoutMs);
    } else if (!idle && this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private clearPingAckTimer(): void {
    if (this.pingAckTimer === undefined) return;
    this.timers.clearTimeout(this.pingAckTimer);
    this.pingAckTimer = undefined;
  }

  // ------------------------------------------------------------------ input

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    const data = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    try {
      let at = this.prefaceSeen ? 0 : this.readPreface(data);
      if (at < 0) return;
      while (data.length - at >= FRAME_HEADER_BYTES) {
        const length = (data[at]! << 16) | (data[at + 1]! << 8) | data[at + 2]!;
        if (length > DEFAULT_FRAME_BYTES) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes is over the ${DEFAULT_FRAME_BYTES}-byte limit`);
        const end = at + FRAME_HEADER_BYTES + length;
        if (end > data.length) break;
        const streamId = data.readUInt32BE(at + 5) & 0x7fffffff;
        this.onFrame(data[at + 3]!, data[at + 4]!, streamId, data.subarray(at + FRAME_HEADER_BYTES, end));
        at = end;
        if (this.closed) return;
      }
      if (at < data.length) this.pending = data.subarray(at);
      if (this.pingAckAfterRead) this.placePingAck();
    } catch (error) {
      if (error instanceof ConnectionError) this.fail(error.code, error.message);
      else this.fail(ErrorCode.INTERNAL_ERROR, error instanceof Error ? error.message : String(error));
    }
  }

  /** Where frames start after the client preface, or -1 when more bytes are needed. */
  private readPreface(data: Buffer): number {
    const seen = Math.min(data.length, CLIENT_PREFACE.length);
    if (!data.subarray(0, seen).equals(CLIENT_PREFACE.subarray(0, seen))) {
      this.refuseNonHttp2(data);
      return -1;
    }
    if (seen < CLIENT_PREFACE.length) {
      this.pending = data;
      return -1;
    }
    this.prefaceSeen = true;
    this.sendPrefaceIfNeeded();
    return CLIENT_PREFACE.length;
  }

  /** Our preface (RFC 9113 §3.4), sent once the client's is in, or before a GOAWAY that ends the connection early. */
  private sendPrefaceIfNeeded(): void {
    if (this.prefaceSent) return;
    this.prefaceSent = true;
    this.send(
      settingsFrame([
        [Setting.ENABLE_PUSH, 0],
        [Setting.MAX_CONCURRENT_STREAMS, this.limits.streamsMax],
        [Setting.INITIAL_WINDOW_SIZE, this.limits.streamWindowBytes],
        [Setting.MAX_HEADER_LIST_SIZE, grpcHeaderListBytesMax],
        [Setting.HEADER_TABLE_SIZE, grpcHpackTableBytesMax],
      ]),
    );
    this.send(windowUpdateFrame(0, CONNECTION_WINDOW_BYTES - DEFAULT_WINDOW_BYTES));
  }

  /** Something other than HTTP/2 with prior knowledge: HTTP/1 gets a readable answer, others a GOAWAY. */
  private refuseNonHttp2(data: Buffer): void {
    if (/^[A-Z]+ \S+ HTTP\/1/.test(data.subarray(0, 64).toString('latin1'))) {
      const body = 'This port serves gRPC (HTTP/2 without TLS, prior knowledge); the HTTP/JSON API has its own port.\n';
      this.closed = true;
      this.socket.end(`HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
      return;
    }
    this.fail(ErrorCode.PROTOCOL_ERROR, 'expected the HTTP/2 client connection preface');
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (this.headerBlock !== undefined && (type !== FrameType.CONTINUATION || streamId !== this.headerBlock.streamId)) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'a header block was interrupted by another frame');
    }
    if (!this.settingsSeen) {
      if (type !== FrameType.SETTINGS || (flags & Flag.ACK) !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the first frame must be SETTINGS');
      this.settingsSeen = true;
    }
    switch (type) {
      case FrameType.DATA:
        return this.onData(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.onHeaders(flags, streamId, payload);
      case FrameType.CONTINUATION:
        return this.onContinuation(flags, streamId, payload);
      case FrameType.PRIORITY:
        return this.onPriority(streamId, payload);
      case FrameType.RST_STREAM:
        return this.onRstStream(streamId, payload);
      case FrameType.SETTINGS:
        return this.onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'clients cannot send PUSH_PROMISE');
      case FrameType.PING:
        return this.onPing(flags, streamId, payload);
      case FrameType.GOAWAY:
        if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        return; // The client opens no more streams; the ones open still get their answers.
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, payload);
      default:
        return; // Unknown frame types are ignored (RFC 9113 §4.1).
    }
  }

  private onData(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    if (payload.length === 0 && (flags & Flag.END_STREAM) === 0) {
      if (++this.emptyDataFrames > grpcEmptyDataFramesMax) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${grpcEmptyDataFramesMax} empty DATA frames in a row`);
    } else {
      this.emptyDataFrames = 0;
    }
    this.consumeConnectionWindow(payload.length);
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
      return; // A stream we closed: the client had not heard yet.
    }
    if (stream.remoteEnded) return this.resetStream(stream, ErrorCode.STREAM_CLOSED);
    stream.receiveWindow -= payload.length;
    if (stream.receiveWindow < 0) return this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR);
    const data = unpad(flags, payload);
    const endStream = (flags & Flag.END_STREAM) !== 0;
    // Marked before the data is handed over, so that nothing the caller does asks for window the
    // client can no longer use.
    if (endStream) stream.remoteEnded = true;
    if (data.length > 0) {
      if (stream.reserved === 0) {
        if (this.bufferedBytes + data.length > this.limits.bufferedBytesMax) {
          return this.refuse(stream, `the connection holds ${this.bufferedBytes} bytes of unfinished requests and headers; the limit is ${this.limits.bufferedBytesMax}`);
        }
        this.bufferedBytes += data.length;
      }
      stream.held += data.length;
      stream.onData?.(data);
    }
    if (endStream) {
      if (!stream.closed) stream.onEnd?.();
    } else if (data.length < payload.length) {
      this.refill(stream, false); // Padding is never held: its window comes back at once.
    }
  }

  /**
   * The connection window only guards against a client that ignores stream windows: what is held
   * is bounded per stream and per connection (H2Limits), so it is given back as data arrives.
   */
  private consumeConnectionWindow(bytes: number): void {
    this.receiveWindow -= bytes;
    if (this.receiveWindow < 0) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'the client sent more than the connection window');
    this.receivedUnacknowledged += bytes;
    if (this.receivedUnacknowledged >= CONNECTION_WINDOW_BYTES / 2) {
      this.send(windowUpdateFrame(0, this.receivedUnacknowledged));
      this.receiveWindow += this.receivedUnacknowledged;
      this.receivedUnacknowledged = 0;
    }
  }

  /** The stream's data passes a limit: its caller ends it with an error, or it is reset. */
  private refuse(stream: H2Stream, reason: string): void {
    stream.onRefused?.(reason);
    if (!stream.closed) this.resetStream(stream, ErrorCode.ENHANCE_YOUR_CALM);
  }

  // ------------------------------------------------------------------ admission

  release(stream: H2Stream, bytes: number): void {
    if (stream.closed) return;
    if (bytes > stream.held) throw new Error(`stream ${stream.id} released ${bytes} bytes but holds ${stream.held}`);
    stream.held -= bytes;
    // A reserved stream's window waits for need(), which says what the next message takes.
    if (stream.reserved > 0) return;
    this.bufferedBytes -= bytes;
    this.refill(stream, false);
  }

  need(stream: H2Stream, bytes: number): void {
    if (stream.closed) return;
    if (bytes <= this.streamWindow) {
      // Within a window: no reservation; the window is refilled at once if it is too short now.
      this.dropReservation(stream);
      this.refill(stream, stream.held + stream.receiveWindow < bytes);
      return;
    }
    if (bytes === stream.reserved) return this.refill(stream, true);
    if (stream.remoteEnded || bytes === stream.wanted) return;
    if (bytes > this.limits.reservedBytesMax) {
      return this.refuse(stream, `a message of ${bytes} bytes is larger than the ${this.limits.reservedBytesMax} bytes a connection may reserve`);
    }
    this.dropReservation(stream);
    stream.wanted = bytes;
    this.reservationQueue.push(stream);
    this.grantReservations();
  }

  /** Ends the stream's reservation or its wait for one; what it still holds counts as buffered again. */
  private dropReservation(stream: H2Stream): void {
    if (stream.wanted > 0) {
      stream.wanted = 0;
      this.reservationQueue.splice(this.reservationQueue.indexOf(stream), 1);
    }
    if (stream.reserved > 0) {
      this.reservedBytes -= stream.reserved;
      this.bufferedBytes += stream.held;
      stream.reserved = 0;
      this.grantReservations();
    }
  }

  /** Grants waiting reservations in order while they fit; a granted stream's window opens to its message. */
  private grantReservations(): void {
    while (this.reservationQueue.length > 0) {
      const stream = this.reservationQueue[0]!;
      if (this.reservedBytes + stream.wanted > this.limits.reservedBytesMax) return;
      this.reservationQueue.shift();
      this.reservedBytes += stream.wanted;
      this.bufferedBytes -= stream.held;
      stream.reserved = stream.wanted;
      stream.wanted = 0;
      this.refill(stream, true);
    }
  }

  /**
   * Opens the stream's window up to what it may hold (its reservation, else a stream window)
   * minus what it holds. Refills within a window are batched (half a window at a time) unless
   * `now`: the caller then waits for bytes the client cannot send yet.
   */
  private refill(stream: H2Stream, now: boolean): void {
    if (stream.remoteEnded || stream.closed) return;
    const allowed = stream.reserved > 0 ? stream.reserved : this.streamWindow;
    const increment = allowed - stream.held - stream.receiveWindow;
    if (increment <= 0 || (!now && stream.reserved === 0 && increment < allowed / 2)) return;
    this.send(windowUpdateFrame(stream.id, increment));
    stream.receiveWindow += increment;
  }

  private onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let fragment = unpad(flags, payload);
    if ((flags & Flag.PRIORITY) !== 0) {
      if (fragment.length < 5) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'HEADERS too short for its priority fields');
      fragment = fragment.subarray(5);
    }
    this.headerBlock = { streamId, endStream: (flags & Flag.END_STREAM) !== 0, chunks: [fragment], bytes: fragment.length };
    this.emptyDataFrames = 0;
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.headerBlock;
    if (block === undefined) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `CONTINUATION without HEADERS on stream ${streamId}`);
    // Frames and bytes are both bounded: empty or tiny CONTINUATION frames would cost a buffer each.
    if (block.chunks.length >= grpcHeaderBlockFramesMax) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block in more than ${grpcHeaderBlockFramesMax} frames`);
    block.chunks.push(payload);
    block.bytes += payload.length;
    if (block.bytes > grpcHeaderBlockBytesMax) throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block over ${grpcHeaderBlockBytesMax} bytes`);
    if ((flags & Flag.END_HEADERS) !== 0) this.finishHeaderBlock();
  }

  private finishHeaderBlock(): void {
    const { streamId, endStream, chunks } = this.headerBlock!;
    this.headerBlock = undefined;
    // Every block is decoded, even one we then ignore: the decoder's table must stay in step.
    let fields: Array<[string, string]>;
    try {
      fields = this.decoder.decode(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    } catch (error) {
      throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, error instanceof Error ? error.message : String(error));
    }
    const existing = this.streams.get(streamId);
    if (existing !== undefined) {
      // Trailers from the client: they must end its side of the stream.
      if (!endStream || existing.remoteEnded) return this.resetStream(existing, ErrorCode.PROTOCOL_ERROR);
      return this.endRemote(existing);
    }
    if (streamId % 2 === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `client stream ids are odd, got ${streamId}`);
    if (streamId <= this.lastStreamId) return; // A stream that is already closed.
    this.lastStreamId = streamId;
    // Refused streams were not processed at all: clients may retry them (RFC 9113 §8.7).
    const headerBytes = fields.reduce((sum, [name, value]) => sum + entryBytes(name, value), 0);
    // Streams closed by the client while worked on still count: their work goes on (startWork).
    const full = this.streams.size + this.workingClosed >= this.limits.streamsMax || this.bufferedBytes + headerBytes > this.limits.bufferedBytesMax;
    if (this.goingAway || full) return this.sendControl(rstStreamFrame(streamId, ErrorCode.REFUSED_STREAM));
    const headers = requestHeaders(fields);
    if (headers === undefined) return this.sendControl(rstStreamFrame(streamId, ErrorCode.PROTOCOL_ERROR));
    const stream = new H2Stream(this, streamId, headers, headerBytes, this.peerStreamWindow, this.streamWindow);
    this.streams.set(streamId, stream);
    this.bufferedBytes += headerBytes;
    this.updateIdleTimer();
    this.onStream(stream);
    if (endStream && !stream.closed) this.endRemote(stream);
  }

  private endRemote(stream: H2Stream): void {
    stream.remoteEnded = true;
    stream.onEnd?.();
  }

  /**
   * Priorities are advisory (and deprecated by RFC 9113): responses go out in the order they are
   * made. Nothing is kept for them, no tree, so a flood of PRIORITY frames that reshuffles one
   * (CVE-2019-9513, "resource loop") costs only the reading of each.
   */
  private onPriority(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
    // RFC 9113 §6.3: a stream error, so it is answered (a control frame, counted as such).
    if (payload.length === 5) return;
    const stream = this.streams.get(streamId);
    if (stream !== undefined) this.resetStream(stream, ErrorCode.FRAME_SIZE_ERROR);
    else this.sendControl(rstStreamFrame(streamId, ErrorCode.FRAME_SIZE_ERROR));
  }

  private onRstStream(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM must be 4 bytes');
    if (streamId === 0 || streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
    const stream = this.streams.get(streamId);
    if (stream === undefined) return;
    if (stream.working) this.countWorkReset();
    this.closeStream(stream);
  }

  /** A client reset a stream we work on: past workResetsMax within the window, it is flooding us. */
  private countWorkReset(): void {
    const { workResetsMax, workResetsWindowMs } = this.limits;
    if (this.workResets++ === 0) {
      this.workResetsTimer = this.timers.setTimeout(() => {
        this.workResetsTimer = undefined;
        this.workResets = 0;
      }, workResetsWindowMs);
    }
    if (this.workResets > workResetsMax) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${workResetsMax} streams reset while their requests ran, within ${workResetsWindowMs} ms`);
    }
  }

  /** A stream closed while worked on is done with (H2Stream.endWork): its place may be taken. */
  workEndedAfterClose(): void {
    this.workingClosed--;
  }

  private onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS acknowledgement with a payload');
      return this.onSettingsAcknowledged();
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS payload is not a multiple of 6 bytes');
    for (let at = 0; at < payload.length; at += 6) this.applySetting(payload.readUInt16BE(at), payload.readUInt32BE(at + 2));
    this.sendControl(frame(FrameType.SETTINGS, Flag.ACK, 0));
    this.flushBlocked();
    this.onHandshakeProgress();
  }

  /**
   * Our SETTINGS are in force from the client's acknowledgement on: the streams it opened before
   * started with the default window, and now shrink (or grow) by the difference (RFC 9113 §6.9.2).
   */
  private onSettingsAcknowledged(): void {
    if (this.settingsAcknowledged) return;
    this.settingsAcknowledged = true;
    const delta = this.limits.streamWindowBytes - this.streamWindow;
    this.streamWindow = this.limits.streamWindowBytes;
    for (const stream of this.streams.values()) {
      stream.receiveWindow += delta;
      this.refill(stream, false);
    }
    this.onHandshakeProgress();
  }

  private onHandshakeProgress(): void {
    if (!this.handshakeDone) return;
    this.clearTimer();
    this.updateIdleTimer();
  }

  private applySetting(id: number, value: number): void {
    switch (id) {
      case Setting.ENABLE_PUSH:
        if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH must be 0 or 1');
        return;
      case Setting.INITIAL_WINDOW_SIZE: {
        if (value > WINDOW_BYTES_LIMIT) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1');
        const delta = value - this.peerStreamWindow;
        this.peerStreamWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > WINDOW_BYTES_LIMIT) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, `stream ${stream.id} window over 2^31-1`);
        }
        return;
      }
      case Setting.MAX_FRAME_SIZE:
        if (value < DEFAULT_FRAME_BYTES || value > FRAME_BYTES_LIMIT) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE ${value} out of range`);
        this.peerFrameBytes = value;
        return;
      default:
        // HEADER_TABLE_SIZE: our encoder never uses the dynamic table. MAX_CONCURRENT_STREAMS:
        // we open none. MAX_HEADER_LIST_SIZE: our headers are small. Unknown: ignored (§6.5.2).
        return;
    }
  }

  private onPing(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
    if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING must be 8 bytes');
    if ((flags & Flag.ACK) !== 0) return;
    const ack = frame(FrameType.PING, Flag.ACK, 0, payload);
    const delayMs = this.limits.pingAckDelayMs;
    // gRPC clients ping after most responses they read (grpc-go's bandwidth estimator: one PING
    // in flight, the next after its ACK). Each ACK sent at once was a socket write of its own:
    // under 64 clients on 8 connections, 45% of the writes to clients (strace), each a loopback
    // send and a wake-up of the client. While streams are open a response follows soon, so the
    // ACK waits to leave with it, in the same write, or after delayMs (a PING's sender waits
    // seconds for its ACK; its round-trip estimate only grows). Frames keep their order.
    // ACKs still went out alone as 11% of a member's writes to clients under put-64 (strace,
    // 2026-12-07): a PING read while no stream was open was acknowledged at once, though grpc-go
    // pings after reading a response and its next request follows at once, often in the same
    // read. So such an ACK is placed once the rest of the read is handled: with a request opened
    // it waits for the response like any other, else it goes at once.
    if (delayMs === undefined || this.flushQueued || this.goingAway || this.closed) return this.sendControl(ack);
    if (!this.countControlFrame()) return;
    this.out.push(ack);
    this.outBytes += ack.length;
    if (this.streams.size === 0) this.pingAckAfterRead = true;
    else this.armPingAck(delayMs);
  }

  /** The end of a read with a PING that came while no stream was open (see onPing). */
  private placePingAck(): void {
    this.pingAckAfterRead = false;
    if (this.flushQueued) return;
    if (this.streams.size > 0 && this.limits.pingAckDelayMs !== undefined) return this.armPingAck(this.limits.pingAckDelayMs);
    this.flushQueued = true;
    process.nextTick(flushConnection, this);
  }

  private armPingAck(delayMs: number): void {
    this.pingAckTimer ??= this.timers.setTimeout(() => {
      this.pingAckTimer = undefined;
      this.flushOutput();
    }, delayMs);
  }

  private onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE must be 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > WINDOW_BYTES_LIMIT) throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window over 2^31-1');
      return this.flushBlocked();
    }
    const stream = this.streams.get(streamId);
    if (stream === undefined) {
      if (streamId > this.lastStreamId) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    if (increment === 0) return this.resetStream(stream, ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > WINDOW_BYTES_LIMIT) return this.resetStream(stream, ErrorCode.FLOW_CONTROL_ERROR);
    this.flushStream(stream);
    this.releaseWaiters();
  }

  // ------------------------------------------------------------------ output

  sendHeaderBlock(streamId: number, block: Buffer, endStream: boolean): void {
    for (const piece of headerFrames(streamId, block, endStream, this.peerFrameBytes)) this.send(piece);
  }

  /**
   * Frames as much of the stream's queue as the windows allow, the final HEADERS once all data
   * before it is out. Returns whether the caller may keep writing without waiting for drain.
   */
  flushStream(stream: H2Stream): boolean {
    const queue = stream.queue;
    while (queue.length > 0 && !stream.closed) {
      const head = queue[0]!;
      if (head instanceof EndOfStream) {
        queue.shift();
        this.sendHeaderBlock(stream.id, head.block, true);
        this.endLocal(stream);
        break;
      }
      const room = Math.min(this.sendWindow, stream.sendWindow, this.peerFrameBytes);
      if (room <= 0) {
        this.blocked.add(stream);
        break;
      }
      // Whole pieces that fit go out in one DATA frame: a watch response is its watcher's few
      // bytes and the events shared with other watchers, and a frame for each would double the
      // frames (and their headers) a fan-out sends. A piece larger than the room is cut.
      let pieces = 0;
      let bytes = 0;
      for (let i = 0; i < queue.length; i++) {
        const piece = queue[i]!;
        if (piece instanceof EndOfStream || bytes + piece.length > room) break;
        bytes += piece.length;
        pieces++;
      }
      if (pieces === 0) {
        bytes = room;
        this.sendData(stream.id, head.subarray(0, bytes));
        queue[0] = head.subarray(bytes);
      } else {
        this.sendDataHeader(stream.id, bytes);
        for (let i = 0; i < pieces; i++) {
          const piece = queue.shift() as Buffer;
          this.send(piece);
          // A lent piece (or the rest of one cut before) goes back once the socket has written it.
          if (isLent(piece)) this.outLent.push(piece.buffer as ArrayBuffer);
        }
      }
      this.sendWindow -= bytes;
      stream.sendWindow -= bytes;
      stream.queuedBytes -= bytes;
    }
    if (queue.length === 0) this.blocked.delete(stream);
    const mayContinue = stream.queuedBytes < STREAM_BUFFER_BYTES && this.socket.writableLength < SOCKET_BUFFER_BYTES;
    if (!mayContinue && !stream.closed) this.waitingForDrain.add(stream);
    return mayContinue;
  }

  private sendData(streamId: number, data: Buffer): void {
    this.sendDataHeader(streamId, data.length);
    this.send(data);
  }

  /** A DATA frame's header; its `length` bytes of data are sent next. */
  private sendDataHeader(streamId: number, length: number): void {
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    writeFrameHeader(head, 0, length, FrameType.DATA, 0, streamId);
    this.send(head);
  }

  /** Our side is done. A client still sending is told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1). */
  private endLocal(stream: H2Stream): void {
    if (!stream.remoteEnded) this.sendControl(rstStreamFrame(stream.id, ErrorCode.NO_ERROR));
    this.closeStream(stream);
  }

  private resetStream(stream: H2Stream, code: number): void {
    this.sendControl(rstStreamFrame(stream.id, code));
    this.closeStream(stream);
  }

  private closeStream(stream: H2Stream): void {
    if (stream.closed) return;
    if (stream.working) this.workingClosed++;
    this.dropReservation(stream);
    this.bufferedBytes -= stream.headerBytes + stream.held;
    stream.held = 0;
    stream.closed = true;
    stream.queue.length = 0;
    stream.queuedBytes = 0;
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    this.waitingForDrain.delete(stream);
    stream.onClose?.();
    this.updateIdleTimer();
    this.endIfIdle();
  }

  private flushBlocked(): void {
    for (const stream of this.blocked) {
      if (this.sendWindow <= 0) break;
      this.flushStream(stream);
    }
    this.releaseWaiters();
  }

  /** Wakes writers that were told to wait, once their stream and the socket have room again. */
  private releaseWaiters(): void {
    for (const stream of [...this.waitingForDrain]) {
      if (this.socket.writableLength >= SOCKET_BUFFER_BYTES) return;
      if (stream.queuedBytes >= STREAM_BUFFER_BYTES) continue;
      this.waitingForDrain.delete(stream);
      stream.onDrain?.();
    }
  }

  /**
   * A frame that answers one the client sent (an acknowledgement, a reset): counted until the socket
   * has written it, so that a client that sends such frames and does not read cannot make us queue
   * answers without end (CVE-2019-9512, -9514, -9515).
   */
  private sendControl(bytes: Buffer): void {
    if (this.countControlFrame()) this.send(bytes);
  }

  /** Counts one more control frame; false (and the connection ended) when it is one too many. */
  private countControlFrame(): boolean {
    if (this.closed) return false;
    if (++this.controlFramesQueued + this.controlFramesUnwritten <= this.limits.controlFramesUnwrittenMax) return true;
    // The client does not read what we owe it: the GOAWAY would wait behind the rest, so the
    // connection is cut, and what it queued is let go.
    this.fail(ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.limits.controlFramesUnwrittenMax} control frames unwritten: the client sends and does not read`, true);
    return false;
  }

  /** Control frames queued and not yet written by the socket (for tests). */
  get controlFramesPending(): number {
    return this.controlFramesQueued + this.controlFramesUnwritten;
  }

  private send(bytes: Buffer): void {
    if (this.closed) return;
    this.out.push(bytes);
    this.outBytes += bytes.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(flushConnection, this);
    }
  }

  /** Writes every frame queued since the last flush in one go (see the top of the file). */
  flushOutput(): void {
    this.flushQueued = false;
    this.clearPingAckTimer();
    if (this.closed || this.out.length === 0) return;
    const out = this.out;
    const bytes = this.outBytes;
    const lentPieces = this.outLent;
    const controlFrames = this.controlFramesQueued;
    this.out = [];
    this.outBytes = 0;
    this.outLent = [];
    this.controlFramesQueued = 0;
    if (this.socket.writableLength > this.limits.unreadResponseBytesMax) {
      // Internal data buffering for a client that does not read (CVE-2019-9517).
      this.closed = true;
      this.socket.destroy();
      this.onConnectionError?.(ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.limits.unreadResponseBytesMax} bytes unread`);
      return;
    }
    // Lent pieces go back once written, and only then (a failed write leaves them to the collector).
    // Control frames count as unwritten until then.
    this.controlFramesUnwritten += controlFrames;
    const written = lentPieces.length === 0 && controlFrames === 0 ? undefined : (error?: Error | null): void => {
      this.controlFramesUnwritten -= controlFrames;
      if (!error) for (const memory of lentPieces) giveBack(memory);
    };
    if (out.length === 1) {
      this.socket.write(out[0]!, written);
    } else if (bytes <= JOIN_BYTES_MAX) {
      // Copied, but not given back yet: a lent piece cut by a window may have its first part in an
      // earlier write, not copied and not yet written. Writes complete in order.
      this.socket.write(Buffer.concat(out, bytes), written);
    } else {
      this.socket.cork();
      const last = out.length - 1;
      for (let i = 0; i < last; i++) this.socket.write(out[i]!);
      this.socket.write(out[last]!, written);
      this.socket.uncork();
    }
  }

  private endIfIdle(): void {
    if (!this.goingAway || this.streams.size > 0 || this.closed) return;
    this.flushOutput();
    this.closed = true;
    this.clearTimer();
    this.socket.end();
  }

  /** A connection error: GOAWAY with the code and reason, then the socket closes (at once when `cut`: the client does not read). */
  private fail(code: number, reason: string, cut = false): void {
    if (this.closed) return;
    this.sendPrefaceIfNeeded();
    this.send(goawayFrame(this.lastStreamId, code, reason));
    this.flushOutput();
    this.closed = true;
    this.clearTimer();
    this.clearWorkResetsTimer();
    if (cut) this.socket.destroy();
    else this.socket.end();
    this.cancelAll();
    this.onConnectionError?.(code, reason);
  }

  private clearWorkResetsTimer(): void {
    if (this.workResetsTimer === undefined) return;
    this.timers.clearTimeout(this.workResetsTimer);
    this.workResetsTimer = undefined;
  }

  private onSocketClosed(): void {
    this.closed = true;
    this.clearTimer();
    this.clearPingAckTimer();
    this.clearWorkResetsTimer();
    this.cancelAll();
  }

  private cancelAll(): void {
    for (const stream of [...this.streams.values()]) this.closeStream(stream);
  }
}

function flushConnection(connection: Http2Connection): void {
  connection.flushOutput();
}

/** The payload without its padding (RFC 9113 §6.1). */
function unpad(flags: number, payload: Buffer): Buffer {
  if ((flags & Flag.PADDED) === 0) return payload;
  if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame without a pad length');
  const padding = payload[0]!;
  if (padding >= payload.length) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the frame');
  return payload.subarray(1, payload.length - padding);
}

/**
 * The request's header fields as an object (repeated names become arrays), or undefined when
 * the request is malformed (RFC 9113 §8.3.1: it needs :method and :path; names are lower case and not empty).
 */
function requestHeaders(fields: ReadonlyArray<readonly [string, string]>): RequestHeaders | undefined {
  // Every field a gRPC request commonly has (or is looked for on every request) has a slot from
  // the start, undefined until sent: a `{}` holds 4 fields in the object and grows a separate
  // array for more, which the 8th (etcd's Go client's `token`, after its 7 others) outgrew:
  // two more allocations per authenticated request than per anonymous one.
  const headers: RequestHeaders = {
    ':method': undefined, ':scheme': undefined, ':path': undefined, ':authority': undefined, 'content-type': undefined,
    'user-agent': undefined, te: undefined, 'grpc-timeout': undefined, 'grpc-encoding': undefined,
    'grpc-accept-encoding': undefined, hasleader: undefined, token: undefined, authorization: undefined,
  };
  for (const [name, value] of fields) {
    // An empty name is no field name (RFC 9110 §5.1: a token of one or more characters); the
    // "0-length headers" attack (CVE-2019-9516) sends them by the thousand.
    if (name.length === 0 || name !== name.toLowerCase()) return undefined;
    const previous = headers[name];
    if (previous === undefined) headers[name] = value;
    else if (Array.isArray(previous)) previous.push(value);
    else headers[name] = [previous, value];
  }
  if (typeof headers[':method'] !== 'string' || typeof headers[':path'] !== 'string') return undefined;
  return headers;
}
