// Test support: a hostile HTTP/2 client that opens many gRPC calls on one connection and never
// finishes their request bodies. Each stream announces a message of `messageBytes` and sends as
// much of it as the server's flow-control windows allow, all but its last byte, and waits. A
// server that buffers what it receives until a message is whole holds everything sent here.
import net from 'node:net';
import { CLIENT_PREFACE, FRAME_HEADER_BYTES, Flag, FrameType, errorCodeName, frame, settingsFrame, writeFrameHeader } from '../h2/frames.js';
import { HpackDecoder, encodeHeaders } from '../h2/hpack.js';

export interface UnfinishedStreamsOptions {
  host: string;
  port: number;
  streams: number;
  /** The length each stream's gRPC message prefix announces. */
  messageBytes: number;
  path?: string;
}

/** What the server did to the streams so far, and how many request bytes it let through. */
export interface UnfinishedStreamsReport {
  /** Request body bytes written to the socket (prefixes included). */
  sentBytes: number;
  /** Streams ended by the server: RST_STREAM codes and gRPC statuses (from trailers), counted. */
  resets: Record<string, number>;
  statuses: Record<string, number>;
  /** The GOAWAY error code, when the server ended the connection. */
  goaway: number | undefined;
  closed: boolean;
}

const DEFAULT_WINDOW = 65_535;
const DATA_FRAME_BYTES = 16_384;

interface Stream {
  id: number;
  /** Message bytes (prefix included) still to send, keeping back the last one. */
  remaining: number;
  window: number;
  open: boolean;
}

export class UnfinishedStreams {
  readonly report: UnfinishedStreamsReport = { sentBytes: 0, resets: {}, statuses: {}, goaway: undefined, closed: false };
  private readonly socket: net.Socket;
  private readonly streams = new Map<number, Stream>();
  private connectionWindow = DEFAULT_WINDOW;
  private initialWindow = DEFAULT_WINDOW;
  private pending = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder();
  private pings = 0;
  private readonly pongs = new Map<number, () => void>();

  private constructor(options: UnfinishedStreamsOptions) {
    this.socket = net.connect(options.port, options.host);
    this.socket.on('data', (chunk: Buffer) => this.receive(chunk));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.report.closed = true;
      for (const resolve of this.pongs.values()) resolve();
    });
  }

  /** Connects, opens every stream and starts sending; the sending goes on as windows open. */
  static async open(options: UnfinishedStreamsOptions): Promise<UnfinishedStreams> {
    const attack = new UnfinishedStreams(options);
    await new Promise<void>((resolve, reject) => {
      attack.socket.once('connect', resolve);
      attack.socket.once('error', reject);
    });
    attack.socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
    const headers = encodeHeaders([
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', options.path ?? '/etcdserverpb.KV/Put'],
      [':authority', `${options.host}:${options.port}`],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ]);
    for (let i = 0; i < options.streams; i++) {
      const id = 2 * i + 1;
      const stream: Stream = { id, remaining: 5 + options.messageBytes - 1, window: attack.initialWindow, open: true };
      attack.streams.set(id, stream);
      attack.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS, id, headers));
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(options.messageBytes, 1);
      attack.sendData(stream, prefix);
    }
    attack.pump();
    return attack;
  }

  /**
   * Resolves once the server lets no stream send more: a PING round trip (the server has handled
   * everything sent before it) during which nothing more could be sent.
   */
  async settled(): Promise<void> {
    while (!this.report.closed) {
      const sent = this.report.sentBytes;
      await this.ping();
      if (this.report.sentBytes === sent && !this.canSend()) return;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private canSend(): boolean {
    if (this.connectionWindow <= 0) return false;
    for (const stream of this.streams.values()) if (stream.open && stream.remaining > 0 && stream.window > 0) return true;
    return false;
  }

  private ping(): Promise<void> {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.pings);
    this.socket.write(frame(FrameType.PING, 0, 0, payload));
    return new Promise((resolve) => this.pongs.set(payload.readUInt32BE(0), resolve));
  }

  /** Sends filler on every stream as far as the windows allow. */
  private pump(): void {
    for (const stream of this.streams.values()) {
      while (stream.open && stream.remaining > 0) {
        const bytes = Math.min(stream.remaining, stream.window, this.connectionWindow, DATA_FRAME_BYTES);
        if (bytes <= 0) break;
        this.sendData(stream, Buffer.alloc(bytes, 0x61));
      }
    }
  }

  private sendData(stream: Stream, data: Buffer): void {
    const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    writeFrameHeader(head, 0, data.length, FrameType.DATA, 0, stream.id);
    this.socket.write(Buffer.concat([head, data]));
    stream.remaining -= data.length;
    stream.window -= data.length;
    this.connectionWindow -= data.length;
    this.report.sentBytes += data.length;
  }

  private receive(chunk: Buffer): void {
    let data = Buffer.concat([this.pending, chunk]);
    while (data.length >= FRAME_HEADER_BYTES) {
      const length = data.readUIntBE(0, 3);
      if (data.length < FRAME_HEADER_BYTES + length) break;
      const type = data[3]!;
      const flags = data[4]!;
      const streamId = data.readUInt32BE(5) & 0x7fffffff;
      this.onFrame(type, flags, streamId, data.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length));
      data = data.subarray(FRAME_HEADER_BYTES + length);
    }
    this.pending = Buffer.from(data);
    this.pump();
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    const stream = this.streams.get(streamId);
    switch (type) {
      case FrameType.SETTINGS:
        if ((flags & Flag.ACK) !== 0) return;
        for (let at = 0; at + 6 <= payload.length; at += 6) {
          if (payload.readUInt16BE(at) !== 0x4) continue;
          const value = payload.readUInt32BE(at + 2);
          for (const s of this.streams.values()) s.window += value - this.initialWindow;
          this.initialWindow = value;
        }
        this.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
        return;
      case FrameType.WINDOW_UPDATE: {
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (streamId === 0) this.connectionWindow += increment;
        else if (stream) stream.window += increment;
        return;
      }
      case FrameType.RST_STREAM: {
        const name = errorCodeName(payload.readUInt32BE(0));
        this.report.resets[name] = (this.report.resets[name] ?? 0) + 1;
        if (stream) stream.open = false;
        return;
      }
      case FrameType.HEADERS: {
        // Every block is decoded (the decoder's table must stay in step); no CONTINUATION expected.
        const status = this.decoder.decode(payload).find(([name]) => name === 'grpc-status')?.[1];
        if (status !== undefined) this.report.statuses[status] = (this.report.statuses[status] ?? 0) + 1;
        if ((flags & Flag.END_STREAM) !== 0 && stream) stream.open = false;
        return;
      }
      case FrameType.PING:
        if ((flags & Flag.ACK) === 0) this.socket.write(frame(FrameType.PING, Flag.ACK, 0, payload));
        else this.pongs.get(payload.readUInt32BE(0))?.();
        return;
      case FrameType.GOAWAY:
        this.report.goaway = payload.readUInt32BE(4);
        return;
      default:
        return;
    }
  }
}
