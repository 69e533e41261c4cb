// The HTTP/2 server layer against node:http2's client (nghttp2, a second implementation) and
// against raw sockets for what a well-behaved client never sends.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { listenH2, type H2Server, type H2ServerOptions } from './server.js';
import { Http2Connection, STREAM_BUFFER_BYTES, type H2Limits, type H2Stream } from './connection.js';
import { ManualTimers } from '../../testing/manual-timers.js';
import { encodeHeaders } from './hpack.js';
import { CLIENT_PREFACE, ErrorCode, Flag, FrameType, Setting, frame, rstStreamFrame, settingsFrame, windowUpdateFrame } from './frames.js';
import { RESPONSE_PIECE_BYTES, freePieces, isLent, lendPiece } from './pieces.js';

const LIMITS: H2Limits = {
  streamsMax: 1000,
  streamWindowBytes: 16_384,
  bufferedBytesMax: 1 << 20,
  reservedBytesMax: 1 << 20,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  workResetsMax: 1000,
  workResetsWindowMs: 10_000,
  controlFramesUnwrittenMax: 1000,
  unreadResponseBytesMax: 64 << 20,
};
const OPTIONS: H2ServerOptions = { connectionsMax: 100, limits: LIMITS };

const OK = encodeHeaders([[':status', '200']]);
const DONE = encodeHeaders([['x-done', 'yes']]);

/** What the test server's handler saw, by path. */
interface Seen {
  headers: Record<string, string | string[] | undefined>;
  closed: boolean;
}

/**
 * Routes by :path. /echo answers with the request body; /big/<n> with n bytes; /hold never
 * answers; /flood writes until told to wait, then finishes once drained.
 */
function handler(seen: Map<string, Seen>, drained: () => void): (stream: H2Stream) => void {
  return (stream) => {
    const path = stream.headers[':path'] as string;
    const entry: Seen = { headers: stream.headers, closed: false };
    seen.set(path, entry);
    stream.onClose = () => (entry.closed = true);
    const body: Buffer[] = [];
    stream.onData = (chunk) => {
      body.push(Buffer.from(chunk));
      stream.release(chunk.length);
    };
    stream.onEnd = () => {
      if (path === '/hold') return;
      stream.respond(OK);
      if (path === '/echo') return stream.end(Buffer.concat(body), DONE);
      if (path.startsWith('/big/')) return stream.end(pattern(Number(path.slice(5))), DONE);
      if (path.startsWith('/lent/')) {
        // n lent pieces holding the pattern of their whole (pieces.ts), the last one cut short.
        const count = Number(path.slice(6));
        const whole = pattern(count * RESPONSE_PIECE_BYTES - 100);
        const pieces: Buffer[] = [];
        for (let at = 0; at < whole.length; at += RESPONSE_PIECE_BYTES) {
          const piece = lendPiece();
          const part = whole.subarray(at, at + RESPONSE_PIECE_BYTES);
          part.copy(piece);
          pieces.push(piece.subarray(0, part.length));
        }
        return stream.end(pieces, DONE);
      }
      if (path.startsWith('/pieces/')) {
        // The same pattern, handed over in pieces of uneven sizes (an empty one too).
        const whole = pattern(Number(path.slice(8)));
        const pieces = [whole.subarray(0, 1), whole.subarray(1, 1), whole.subarray(1, 70_001), whole.subarray(70_001)];
        return stream.end(pieces, DONE);
      }
      if (path === '/flood') {
        let written = 0;
        while (stream.write(Buffer.alloc(8192, 1))) written += 8192;
        stream.onDrain = () => {
          drained();
          stream.end(Buffer.alloc(0), DONE);
        };
      }
    };
  };
}

function pattern(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < bytes; i++) out[i] = (i * 7) & 0xff;
  return out;
}

/** One request; resolves with status, body and trailers. */
function request(client: http2.ClientHttp2Session, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; trailers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':method': 'POST', ':path': path, ...headers });
    let status = 0;
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks), trailers }));
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP/2 server layer', () => {
  let server: H2Server;
  const seen = new Map<string, Seen>();
  let drains = 0;
  const url = (): string => `http://127.0.0.1:${server.port}`;

  before(async () => {
    server = await listenH2('127.0.0.1', 0, handler(seen, () => drains++), OPTIONS);
  });
  after(async () => {
    await server.close(100);
  });

  it('answers requests with headers, data and trailers, on one connection', async () => {
    const client = http2.connect(url());
    try {
      const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => request(client, '/echo', Buffer.from(`message ${i}`))));
      answers.forEach((answer, i) => {
        assert.equal(answer.status, 200);
        assert.equal(answer.body.toString(), `message ${i}`);
        assert.equal(answer.trailers['x-done'], 'yes');
      });
    } finally {
      client.destroy();
    }
  });

  it('sends a response handed over in pieces as one body, in order, within a small window', async () => {
    const client = http2.connect(url(), { settings: { initialWindowSize: 1000 } });
    try {
      const answer = await request(client, '/pieces/200000');
      assert.ok(answer.body.equals(pattern(200_000)), 'the pieces arrive intact and in order');
      assert.equal(answer.trailers['x-done'], 'yes');
    } finally {
      client.destroy();
    }
  });

  it('gives lent pieces back once the socket has written them, and the next response writes into them intact', async () => {
    const client = http2.connect(url(), { settings: { initialWindowSize: 1000 } });
    try {
      const before = freePieces();
      const first = await request(client, '/lent/5');
      assert.ok(first.body.equals(pattern(5 * RESPONSE_PIECE_BYTES - 100)), 'the body arrives intact and in order');
      // Lending takes free pieces first: once all are back, as many are free as were out at once.
      await waitFor(() => freePieces() === Math.max(before, 5));
      const again = await request(client, '/lent/7');
      assert.ok(again.body.equals(pattern(7 * RESPONSE_PIECE_BYTES - 100)));
      await waitFor(() => freePieces() === Math.max(before, 7));
      assert.equal(isLent(lendPiece()), true);
      assert.equal(isLent(Buffer.alloc(RESPONSE_PIECE_BYTES)), false);
    } finally {
      client.destroy();
    }
  });

  it('leaves the lent pieces of a stream reset before they were sent to the garbage collector', async () => {
    const client = http2.connect(url(), { settings: { initialWindowSize: 1000 } });
    try {
      const before = freePieces();
      const req = client.request({ ':method': 'POST', ':path': '/lent/3' });
      req.on('error', () => undefined);
      req.pause(); // its window stays at 1,000 bytes: the pieces wait in the stream's queue
      req.end();
      await waitFor(() => seen.has('/lent/3'));
      req.close(http2.constants.NGHTTP2_CANCEL);
      await waitFor(() => seen.get('/lent/3')!.closed);
      assert.ok(freePieces() <= before, 'no piece of the reset stream came back');
      const next = await request(client, '/lent/2');
      assert.ok(next.body.equals(pattern(2 * RESPONSE_PIECE_BYTES - 100)));
    } finally {
      client.destroy();
    }
  });

  it('respects a client window far smaller than the response (flow control)', async () => {
    const client = http2.connect(url(), { settings: { initialWindowSize: 1000 } });
    try {
      const answer = await request(client, '/big/300000');
      assert.equal(answer.body.length, 300_000);
      assert.ok(answer.body.equals(pattern(300_000)), 'the body arrives intact and in order');
      assert.equal(answer.trailers['x-done'], 'yes');
    } finally {
      client.destroy();
    }
  });

  it('receives request bodies larger than the default windows', async () => {
    const client = http2.connect(url());
    try {
      const body = pattern(3_000_000);
      const answer = await request(client, '/echo', body);
      assert.ok(answer.body.equals(body));
    } finally {
      client.destroy();
    }
  });

  it('receives header blocks split over CONTINUATION frames', async () => {
    const client = http2.connect(url());
    try {
      const big = 'v'.repeat(40_000); // over the 16 KiB frame size
      await request(client, '/echo', Buffer.from('x'), { 'x-big': big });
      assert.equal(seen.get('/echo')!.headers['x-big'], big);
    } finally {
      client.destroy();
    }
  });

  it('answers PINGs', async () => {
    const client = http2.connect(url());
    try {
      await once(client, 'connect');
      const rtt = await new Promise<number>((resolve, reject) => client.ping((error, ms) => (error ? reject(error) : resolve(ms))));
      assert.ok(rtt >= 0);
    } finally {
      client.destroy();
    }
  });

  it('tells the handler when the client resets its stream', async () => {
    const client = http2.connect(url());
    try {
      const req = client.request({ ':method': 'POST', ':path': '/hold' });
      req.on('error', () => undefined);
      req.end();
      await waitFor(() => seen.has('/hold'));
      req.close(http2.constants.NGHTTP2_CANCEL);
      await waitFor(() => seen.get('/hold')!.closed);
    } finally {
      client.destroy();
    }
  });

  it('asks writers to wait while the client does not read, and wakes them when it does', async () => {
    const client = http2.connect(url(), { settings: { initialWindowSize: 16_384 } });
    try {
      const req = client.request({ ':method': 'POST', ':path': '/flood' });
      req.end();
      req.pause();
      await waitFor(() => seen.has('/flood'));
      assert.equal(drains, 0, 'the handler was told to wait');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => (bytes += chunk.length));
      req.resume();
      await once(req, 'end');
      assert.equal(drains, 1);
      assert.ok(bytes >= STREAM_BUFFER_BYTES, `read ${bytes} bytes`);
    } finally {
      client.destroy();
    }
  });
});

describe('HTTP/2 server layer: what clients must not send', () => {
  let server: H2Server;
  before(async () => {
    server = await listenH2('127.0.0.1', 0, () => undefined, OPTIONS);
  });
  after(async () => {
    await server.close(100);
  });

  /** Writes `bytes` on a new connection and returns everything the server sent until it closed. */
  async function exchange(bytes: Buffer): Promise<Buffer> {
    const socket = net.connect(server.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.write(bytes);
    await once(socket, 'close');
    return Buffer.concat(chunks);
  }

  /** The GOAWAY frame's error code in what the server sent, if there is one. */
  function goawayCode(received: Buffer): number | undefined {
    for (let at = 0; at + 9 <= received.length; ) {
      const length = received.readUIntBE(at, 3);
      if (received[at + 3] === FrameType.GOAWAY) return received.readUInt32BE(at + 9 + 4);
      at += 9 + length;
    }
    return undefined;
  }

  it('answers an HTTP/1 request with a readable refusal', async () => {
    const received = await exchange(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.match(received.toString(), /^HTTP\/1\.1 505 .*serves gRPC/s);
  });

  it('ends a connection that does not start with the preface', async () => {
    assert.equal(goawayCode(await exchange(Buffer.from('hello, this is not HTTP/2 at all'))), ErrorCode.PROTOCOL_ERROR);
  });

  it('ends a connection whose first frame is not SETTINGS', async () => {
    const received = await exchange(Buffer.concat([CLIENT_PREFACE, frame(FrameType.PING, 0, 0, Buffer.alloc(8))]));
    assert.equal(goawayCode(received), ErrorCode.PROTOCOL_ERROR);
  });

  it('ends a connection that sends DATA on stream 0', async () => {
    const received = await exchange(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.DATA, 0, 0, Buffer.from('x'))]));
    assert.equal(goawayCode(received), ErrorCode.PROTOCOL_ERROR);
  });

  it('ends a connection that sends a frame over the frame size limit', async () => {
    const received = await exchange(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.DATA, 0, 1, Buffer.alloc(20_000))]));
    assert.equal(goawayCode(received), ErrorCode.FRAME_SIZE_ERROR);
  });

  it('ends a connection whose header block does not decode', async () => {
    const received = await exchange(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.HEADERS, 0x4, 1, Buffer.from([0x80]))]));
    assert.equal(goawayCode(received), ErrorCode.COMPRESSION_ERROR);
  });
});

describe('HTTP/2 server layer: shutdown', () => {
  it('lets open streams finish after GOAWAY, then cuts the ones left at the end of the grace period', async () => {
    const holds: H2Stream[] = [];
    const server = await listenH2(
      '127.0.0.1',
      0,
      (stream) => {
        stream.onEnd = () => {
          if (stream.headers[':path'] === '/hold') return void holds.push(stream);
          stream.respond(OK);
          stream.end(Buffer.from('late answer'), DONE);
        };
      },
      OPTIONS,
    );
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    client.on('error', () => undefined);
    try {
      const goaway = once(client, 'goaway');
      const held = client.request({ ':method': 'POST', ':path': '/hold' });
      held.on('error', () => undefined);
      held.end();
      await waitFor(() => holds.length === 1);
      const closed = server.close(200);
      await goaway;
      // The held stream is still open: it may still be answered.
      const late = new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        held.on('data', (chunk: Buffer) => chunks.push(chunk));
        held.on('close', () => resolve(Buffer.concat(chunks).toString()));
      });
      holds[0]!.respond(OK);
      holds[0]!.end(Buffer.from('answered during the grace period'), DONE);
      assert.equal(await late, 'answered during the grace period');
      await closed;
    } finally {
      client.destroy();
    }
  });
});

/** Yields to the event loop until `condition` holds; gives up after 10 s (a bound, not a delay). */
async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition not reached');
}

interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  /** The number of the socket read that completed the frame. */
  read: number;
}

/** Hands each whole frame at the start of `data` to `onFrame`; returns the bytes of an incomplete one. */
function readFrames(data: Buffer, onFrame: (frame: Omit<Frame, 'read'>) => void): Buffer {
  while (data.length >= 9 && data.length >= 9 + data.readUIntBE(0, 3)) {
    const length = data.readUIntBE(0, 3);
    onFrame({ type: data[3]!, flags: data[4]!, streamId: data.readUInt32BE(5) & 0x7fffffff, payload: data.subarray(9, 9 + length) });
    data = data.subarray(9 + length);
  }
  return data;
}

/** A client on a raw socket that sends exactly the frames a test writes and records every frame it gets. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  private pending = Buffer.alloc(0);
  private pings = 0;
  private reads = 0;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      const read = ++this.reads;
      const rest = readFrames(Buffer.concat([this.pending, chunk]), (f) => this.frames.push({ ...f, read }));
      this.pending = Buffer.from(rest);
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async connect(port: number, handshake = true): Promise<RawClient> {
    const client = new RawClient(net.connect(port, '127.0.0.1'));
    await once(client.socket, 'connect');
    if (handshake) {
      client.socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.SETTINGS, Flag.ACK, 0)]));
      await client.sync();
    }
    return client;
  }

  /** Opens stream `id` with a POST to `path` (extra header fields optional). */
  open(id: number, path: string, extra: Array<[string, string]> = []): void {
    const block = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', path], [':authority', 'test'], ...extra]);
    this.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block));
  }

  /** Sends `bytes` of data on stream `id`, in frames of at most 16 KiB. */
  data(id: number, bytes: number, end = false): void {
    for (let left = bytes; ; left -= 16_384) {
      const last = left <= 16_384;
      this.socket.write(frame(FrameType.DATA, last && end ? Flag.END_STREAM : 0, id, Buffer.alloc(Math.min(left, 16_384), 0x61)));
      if (last) return;
    }
  }

  /** Resolves once the server has answered a PING sent now: it has handled everything sent before. */
  async sync(): Promise<void> {
    const payload = this.ping();
    await waitFor(() => this.closed || this.pingAck(payload) !== undefined);
  }

  /** Sends a PING; returns its payload. */
  ping(): Buffer {
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.pings);
    this.socket.write(frame(FrameType.PING, 0, 0, payload));
    return payload;
  }

  pingAck(payload: Buffer): Frame | undefined {
    return this.frames.find((f) => f.type === FrameType.PING && (f.flags & Flag.ACK) !== 0 && f.payload.equals(payload));
  }

  /** The window the server has given stream `id` beyond its initial window. */
  windowUpdates(id: number): number {
    return this.frames.filter((f) => f.type === FrameType.WINDOW_UPDATE && f.streamId === id).reduce((sum, f) => sum + f.payload.readUInt32BE(0), 0);
  }

  resetCode(id: number): number | undefined {
    return this.frames.find((f) => f.type === FrameType.RST_STREAM && f.streamId === id)?.payload.readUInt32BE(0);
  }

  goaway(): { code: number; reason: string } | undefined {
    const goaway = this.frames.find((f) => f.type === FrameType.GOAWAY);
    return goaway && { code: goaway.payload.readUInt32BE(4), reason: goaway.payload.subarray(8).toString() };
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('HTTP/2 server layer: what one connection may make the server hold', () => {
  const limits: H2Limits = { ...LIMITS, bufferedBytesMax: 64 * 1024, reservedBytesMax: 256 * 1024 };
  let server: H2Server;
  const streams = new Map<number, H2Stream>();
  const refusals = new Map<number, string>();
  before(async () => {
    server = await listenH2(
      '127.0.0.1',
      0,
      (stream) => {
        // Hold everything; the test releases and asks for room by hand.
        streams.set(stream.id, stream);
        stream.onRefused = (reason) => refusals.set(stream.id, reason);
      },
      { connectionsMax: 100, limits },
    );
  });
  after(async () => {
    await server.close(100);
  });

  it('gives a stream window back only as its caller releases what it holds', async () => {
    const client = await RawClient.connect(server.port);
    try {
      client.open(1, '/held');
      client.data(1, 16_384);
      await client.sync();
      assert.equal(streams.get(1)!.held, 16_384);
      assert.equal(client.windowUpdates(1), 0, 'nothing released, no window');
      // Over the window: the stream is reset, nothing more is held.
      client.data(1, 1);
      await client.sync();
      assert.equal(client.resetCode(1), ErrorCode.FLOW_CONTROL_ERROR);
    } finally {
      client.close();
    }
    const client2 = await RawClient.connect(server.port);
    try {
      client2.open(1, '/released');
      client2.data(1, 16_384);
      await client2.sync();
      const stream = streams.get(1)!;
      stream.release(4_000);
      await client2.sync();
      assert.equal(client2.windowUpdates(1), 0, 'refills wait for half a window');
      stream.release(12_384);
      await client2.sync();
      assert.equal(client2.windowUpdates(1), 16_384);
    } finally {
      client2.close();
    }
  });

  it('sends the whole pieces that fit in one DATA frame, and cuts a piece larger than a frame', async () => {
    streams.clear();
    const client = await RawClient.connect(server.port);
    try {
      client.open(1, '/pieces');
      await client.sync();
      const stream = streams.get(1)!;
      stream.respond(OK);
      // A watch response: a watcher's own bytes and the events shared with others, two pieces.
      stream.write([pattern(5), pattern(7)]);
      stream.write([pattern(3), pattern(20_000), pattern(4)]);
      await client.sync();
      const data = client.frames.filter((f) => f.type === FrameType.DATA && f.streamId === 1);
      assert.deepEqual(data.map((f) => f.payload.length), [12, 3, 16_384, 3_620]);
      assert.deepEqual(Buffer.concat(data.map((f) => f.payload)), Buffer.concat([pattern(5), pattern(7), pattern(3), pattern(20_000), pattern(4)]));
    } finally {
      client.close();
    }
  });

  it('reserves room for messages larger than a window, granting them in order as room frees', async () => {
    streams.clear();
    const client = await RawClient.connect(server.port);
    try {
      for (const id of [1, 3, 5]) {
        client.open(id, '/large');
        client.data(id, 100);
      }
      await client.sync();
      // Two of 120 KiB fit in 256 KiB; the third waits for room without any window.
      for (const id of [1, 3, 5]) streams.get(id)!.need(120 * 1024);
      await client.sync();
      assert.equal(client.windowUpdates(1), 120 * 1024 - 16_384);
      assert.equal(client.windowUpdates(3), 120 * 1024 - 16_384);
      assert.equal(client.windowUpdates(5), 0);
      // Stream 1's message arrives and is consumed: its reservation goes to stream 5.
      client.data(1, 120 * 1024 - 100);
      await client.sync();
      assert.equal(streams.get(1)!.held, 120 * 1024);
      streams.get(1)!.release(120 * 1024);
      streams.get(1)!.need(0);
      await client.sync();
      assert.equal(client.windowUpdates(5), 120 * 1024 - 16_384);
      // A message larger than all the room a connection may reserve is refused outright.
      streams.get(3)!.need(limits.reservedBytesMax + 1);
      await client.sync();
      assert.match(refusals.get(3)!, /larger than the 262144 bytes a connection may reserve/);
      assert.equal(client.resetCode(3), ErrorCode.ENHANCE_YOUR_CALM, 'a caller that does not end the stream sees it reset');
    } finally {
      client.close();
    }
  });

  it('refuses data beyond the bytes a connection may buffer, and streams whose headers would pass them', async () => {
    streams.clear();
    refusals.clear();
    const client = await RawClient.connect(server.port);
    try {
      // Four streams fill 64 KiB with header lists and data held within their windows.
      for (const id of [1, 3, 5, 7]) client.open(id, '/fill');
      for (const id of [1, 3, 5]) client.data(id, 16_384);
      await client.sync();
      client.data(7, 16_384);
      await client.sync();
      assert.match(refusals.get(7)!, /unfinished requests and headers; the limit is 65536/);
      assert.equal(client.resetCode(7), ErrorCode.ENHANCE_YOUR_CALM);
      assert.equal(streams.get(7)!.held, 0, 'the refused data was not kept');
      client.open(9, '/big-headers', [['x-pad', 'p'.repeat(16_000)]]);
      await client.sync();
      assert.equal(client.resetCode(9), ErrorCode.REFUSED_STREAM, 'refused before any processing: a client may retry it');
      assert.equal(streams.has(9), false);
      // Room comes back as streams end.
      client.socket.write(rstStreamFrame(1, ErrorCode.CANCEL));
      client.open(11, '/after');
      client.data(11, 16_384);
      await client.sync();
      assert.equal(streams.get(11)!.held, 16_384);
    } finally {
      client.close();
    }
  });

  it('lets streams opened before the client acknowledged its SETTINGS use the default window until then', async () => {
    streams.clear();
    const client = await RawClient.connect(server.port, false);
    try {
      client.socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
      client.open(1, '/early');
      client.data(1, 40_000);
      await client.sync();
      assert.equal(client.resetCode(1), undefined);
      assert.equal(streams.get(1)!.held, 40_000);
      client.socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
      await client.sync();
      // From the acknowledgement on, its window is 16 KiB, of which it used 40,000 bytes: all
      // of those come back once released, and no more.
      streams.get(1)!.release(40_000);
      await client.sync();
      assert.equal(client.windowUpdates(1), 40_000);
    } finally {
      client.close();
    }
  });
});

describe('HTTP/2 server layer: deadlines and the connection limit', () => {
  it('ends a connection that does not complete its handshake in time with GOAWAY SETTINGS_TIMEOUT', async () => {
    const timers = new ManualTimers();
    const server = await listenH2('127.0.0.1', 0, () => undefined, { connectionsMax: 100, limits: LIMITS, timers });
    const client = await RawClient.connect(server.port, false);
    try {
      client.socket.write(CLIENT_PREFACE); // ... and never SETTINGS
      await waitFor(() => timers.pending.size === 1);
      assert.equal(timers.fire(LIMITS.handshakeTimeoutMs), 1);
      await waitFor(() => client.closed);
      assert.deepEqual(client.goaway(), { code: ErrorCode.SETTINGS_TIMEOUT, reason: 'no HTTP/2 handshake (preface, SETTINGS and acknowledgement) within 10000 ms' });
    } finally {
      client.close();
      await server.close(100);
    }
  });

  it('sends GOAWAY NO_ERROR to a connection that has no open stream for the idle time, and only then', async () => {
    const timers = new ManualTimers();
    const server = await listenH2(
      '127.0.0.1',
      0,
      (stream) => {
        stream.onEnd = () => stream.end(undefined, OK);
      },
      { connectionsMax: 100, limits: LIMITS, timers },
    );
    const client = await RawClient.connect(server.port);
    try {
      assert.deepEqual([...timers.pending.values()].map((t) => t.ms), [LIMITS.idleTimeoutMs], 'the handshake deadline gave way to the idle one');
      client.open(1, '/quick');
      await client.sync();
      assert.equal(timers.pending.size, 0, 'no idle deadline while a stream is open');
      client.data(1, 0, true);
      await client.sync();
      assert.equal(timers.pending.size, 1, 'idle again once it ended');
      timers.fire(LIMITS.idleTimeoutMs);
      await waitFor(() => client.closed);
      assert.deepEqual(client.goaway(), { code: ErrorCode.NO_ERROR, reason: 'idle for 60000 ms' });
    } finally {
      client.close();
      await server.close(100);
    }
  });

  it('acknowledges a PING at once when no stream is open, else with the next response in one write, or after pingAckDelayMs', async () => {
    const timers = new ManualTimers();
    const held: H2Stream[] = [];
    const limits: H2Limits = { ...LIMITS, pingAckDelayMs: 20 };
    const server = await listenH2('127.0.0.1', 0, (stream) => void held.push(stream), { connectionsMax: 100, limits, timers });
    const client = await RawClient.connect(server.port);
    const pingTimers = (): number => [...timers.pending.values()].filter((t) => t.ms === 20).length;
    try {
      // Nothing open: no response to wait for.
      await client.sync();
      assert.equal(pingTimers(), 0);
      client.open(1, '/held');
      client.data(1, 1, true);
      await waitFor(() => held.length === 1);
      // A stream is open: the ACK waits for its response and leaves in the same write.
      const first = client.ping();
      await waitFor(() => pingTimers() === 1);
      assert.equal(client.pingAck(first), undefined, 'not acknowledged on its own');
      held[0]!.end(Buffer.from('answer'), DONE);
      await waitFor(() => client.frames.some((f) => f.type === FrameType.DATA && f.streamId === 1));
      const ack = client.pingAck(first);
      assert.ok(ack, 'acknowledged with the response');
      const answer = client.frames.find((f) => f.type === FrameType.DATA && f.streamId === 1)!;
      assert.equal(ack.read, answer.read, 'the ACK and the response came in one read');
      assert.ok(client.frames.indexOf(ack) < client.frames.indexOf(answer), 'frames keep their order');
      assert.equal(pingTimers(), 0, 'the write took the deadline with it');
      // A stream stays open and nothing answers it: the ACK goes once the delay is over.
      client.open(3, '/held');
      client.data(3, 1, true);
      await waitFor(() => held.length === 2);
      const second = client.ping();
      await waitFor(() => pingTimers() === 1);
      assert.equal(timers.fire(20), 1);
      await waitFor(() => client.pingAck(second) !== undefined);
    } finally {
      client.close();
      await server.close(100);
    }
  });

  it('answers a connection over the limit with GOAWAY ENHANCE_YOUR_CALM naming it', async () => {
    const server = await listenH2('127.0.0.1', 0, () => undefined, { connectionsMax: 1, limits: LIMITS });
    const first = await RawClient.connect(server.port);
    const second = await RawClient.connect(server.port, false);
    try {
      second.socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
      await waitFor(() => second.closed);
      assert.deepEqual(second.goaway(), { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'too many connections (the limit is 1)' });
      assert.equal(first.closed, false);
      first.close();
      await waitFor(() => server.connections === 0);
      // The first one's place is free again.
      const third = await RawClient.connect(server.port);
      assert.equal(third.goaway(), undefined);
      third.close();
    } finally {
      first.close();
      second.close();
      await server.close(100);
    }
  });

  it('closes the connection that has waited longest for its first bytes when one more would pass the limit', async () => {
    const server = await listenH2('127.0.0.1', 0, () => undefined, {
      ...OPTIONS,
      unsortedConnectionsMax: 2,
      http1: (socket) => void socket.end('HTTP/1.1 204 No Content\r\n\r\n'),
    });
    const connect = async (): Promise<{ socket: net.Socket; closed: boolean; received: string }> => {
      const socket = net.connect(server.port, '127.0.0.1');
      await once(socket, 'connect');
      const state = { socket, closed: false, received: '' };
      socket.on('data', (chunk: Buffer) => (state.received += chunk.toString()));
      socket.on('error', () => undefined);
      socket.on('close', () => (state.closed = true));
      return state;
    };
    const silent = [await connect(), await connect()];
    const client = await connect();
    try {
      client.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => client.closed);
      assert.match(client.received, /^HTTP\/1.1 204 /);
      // Well before the first-bytes deadline (10 s): the oldest silent one made room.
      await waitFor(() => silent[0]!.closed, 2000);
      assert.equal(silent[1]!.closed, false);
    } finally {
      for (const { socket } of [...silent, client]) socket.destroy();
      await server.close(100);
    }
  });
});

/**
 * A byte stream whose writes complete only when the test lets them, as a socket's do when a slow
 * client leaves the kernel's buffers full: until then it holds references to the bytes handed to
 * it, and it reads them only as it "sends" them.
 */
class HeldSocket extends Duplex {
  holding = false;
  readonly sent: Buffer[] = [];
  private readonly held: Array<{ chunk: Buffer; done: (error?: Error | null) => void }> = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (!this.holding) {
      this.sent.push(Buffer.from(chunk));
      done();
      return;
    }
    this.held.push({ chunk, done });
  }

  /** Sends what was held (a completed write lets the stream hand over the next). */
  release(): void {
    this.holding = false;
    for (let write = this.held.shift(); write; write = this.held.shift()) {
      this.sent.push(Buffer.from(write.chunk));
      write.done();
    }
  }

  /** The DATA payloads sent on `streamId`, joined. */
  dataOf(streamId: number): Buffer {
    const parts: Buffer[] = [];
    readFrames(Buffer.concat(this.sent), (f) => {
      if (f.type === FrameType.DATA && f.streamId === streamId) parts.push(f.payload);
    });
    return Buffer.concat(parts);
  }
}

describe('HTTP/2 server layer: a PING read with the next request', () => {
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  /** The frame types of each write the connection made, in order. */
  const writes = (socket: HeldSocket): number[][] =>
    socket.sent.map((bytes) => {
      const types: number[] = [];
      readFrames(bytes, (f) => void types.push(f.type));
      return types;
    });

  it('waits for the response of a request read with it while no stream was open, and leaves in the same write', async () => {
    const socket = new HeldSocket();
    const timers = new ManualTimers();
    let stream: H2Stream | undefined;
    const connection = new Http2Connection(socket, (opened) => (stream = opened), { ...LIMITS, pingAckDelayMs: 20 }, timers);
    try {
      socket.push(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.SETTINGS, Flag.ACK, 0)]));
      await tick();
      const before = socket.sent.length;
      // One read: the PING (no stream open yet), then the request that follows it.
      const block = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/next'], [':authority', 'test']]);
      socket.push(Buffer.concat([frame(FrameType.PING, 0, 0, Buffer.alloc(8, 7)), frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, block)]));
      await tick();
      assert.ok(stream, 'the request opened');
      assert.equal(socket.sent.length, before, 'the ACK did not go out alone');
      stream.respond(OK);
      stream.end(Buffer.from('answer'), DONE);
      await tick();
      assert.deepEqual(writes(socket).slice(before), [[FrameType.PING, FrameType.HEADERS, FrameType.DATA, FrameType.HEADERS]], 'the ACK and the response in one write');
      assert.equal(timers.pending.size, 1, 'the write took the ACK deadline with it (the idle deadline remains)');

      // A PING read alone, with no stream open: acknowledged at once.
      socket.push(frame(FrameType.PING, 0, 0, Buffer.alloc(8, 8)));
      await tick();
      assert.deepEqual(writes(socket).at(-1), [FrameType.PING]);
    } finally {
      connection.destroy();
    }
  });
});

describe('HTTP/2 server layer: lent memory and a socket that has not written yet', () => {
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

  it('gives a lent piece cut by the window back only after the socket wrote its first part too', async () => {
    const socket = new HeldSocket();
    let stream: H2Stream | undefined;
    const connection = new Http2Connection(socket, (opened) => (stream = opened), LIMITS, new ManualTimers());
    try {
      socket.push(Buffer.concat([CLIENT_PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 10_000]]), frame(FrameType.SETTINGS, Flag.ACK, 0)]));
      const block = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/cut'], [':authority', 'test']]);
      socket.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, block));
      await tick();
      assert.ok(stream, 'the stream opened');

      // 12,000 bytes in a lent piece against a window of 10,000: the first 10,000 go out as a view of
      // the lent memory (more than a join's worth, so not copied), and the socket does not write them yet.
      socket.holding = true;
      const body = pattern(12_000);
      const piece = lendPiece();
      body.copy(piece);
      stream.respond(OK);
      stream.write([piece.subarray(0, body.length)]);
      await tick();
      const free = freePieces();

      // The window opens: the last 2,000 bytes go out in a small flush, joined (copied).
      socket.push(windowUpdateFrame(1, 2_000));
      await tick();
      assert.equal(freePieces(), free, 'the piece is not free while the socket still holds its first part');
      // Whatever is lent next must not be the memory the socket has yet to send.
      lendPiece().fill(0);

      socket.release();
      await tick();
      assert.ok(socket.dataOf(1).equals(body), 'the bytes on the wire are the response');
      assert.equal(freePieces(), Math.max(free, 1), 'the piece came back once written');
    } finally {
      connection.destroy();
    }
  });
});

/** An HPACK integer with `prefixBits` bits of prefix in a first byte that carries `flags` (RFC 7541 §5.1). */
function hpackInteger(flags: number, prefixBits: number, value: number): Buffer {
  const limit = (1 << prefixBits) - 1;
  if (value < limit) return Buffer.from([flags | value]);
  const bytes = [flags | limit];
  for (value -= limit; value >= 128; value >>>= 7) bytes.push((value & 0x7f) | 0x80);
  bytes.push(value);
  return Buffer.from(bytes);
}

/** A literal field with a literal name (not Huffman coded): 0x40 to index it, 0x00 not to. */
function hpackLiteral(flags: 0x40 | 0x00, name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([flags]), hpackInteger(0, 7, name.length), Buffer.from(name, 'latin1'), hpackInteger(0, 7, value.length), Buffer.from(value, 'latin1')]);
}

const REQUEST_BLOCK = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/x'], [':authority', 'test']]);

/** Every SETTINGS value the server advertised, by id. */
function advertised(client: RawClient): Map<number, number> {
  const settings = new Map<number, number>();
  for (const f of client.frames) {
    if (f.type !== FrameType.SETTINGS || (f.flags & Flag.ACK) !== 0) continue;
    for (let at = 0; at + 6 <= f.payload.length; at += 6) settings.set(f.payload.readUInt16BE(at), f.payload.readUInt32BE(at + 2));
  }
  return settings;
}

// Each known HTTP/2 attack on a server, by the name the advisories gave it, and the bound that
// holds against it here. Limits are small so that the tests send little.
describe('HTTP/2 server layer: the known denial-of-service attacks', () => {
  const errors: Array<{ code: number; reason: string }> = [];
  const onConnectionError = (code: number, reason: string): void => void errors.push({ code, reason });

  it('Rapid Reset (CVE-2023-44487): streams reset while their requests run keep their place, and resetting too many ends the connection', async () => {
    const timers = new ManualTimers();
    const limits: H2Limits = { ...LIMITS, streamsMax: 4, workResetsMax: 20, workResetsWindowMs: 1000 };
    const running: H2Stream[] = [];
    const server = await listenH2(
      '127.0.0.1',
      0,
      (stream) => {
        // A unary handler: its work starts once the request is in, and outlives a reset.
        stream.onEnd = () => {
          stream.startWork();
          running.push(stream);
        };
      },
      { connectionsMax: 100, limits, timers, onConnectionError },
    );
    const rapid = (client: RawClient, id: number): void => {
      client.socket.write(Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, REQUEST_BLOCK), rstStreamFrame(id, ErrorCode.CANCEL)]));
    };
    const client = await RawClient.connect(server.port);
    const other = await RawClient.connect(server.port);
    try {
      // Never more than one stream open as the client sees it, but each one's work goes on.
      for (let id = 1; id <= 19; id += 2) rapid(client, id);
      await client.sync();
      assert.equal(running.length, 4, 'no more requests run at once than streamsMax');
      assert.deepEqual([9, 11, 13, 15, 17, 19].map((id) => client.resetCode(id)), Array(6).fill(ErrorCode.REFUSED_STREAM));
      // A handler ends: its place is free again.
      running[0]!.endWork();
      rapid(client, 21);
      await client.sync();
      assert.equal(running.length, 5);
      for (const stream of running) stream.endWork();

      // Resets of streams that had not started work (a request still being sent) are not counted.
      for (let id = 23; id < 23 + 2 * 50; id += 2) {
        client.open(id, '/x');
        client.socket.write(rstStreamFrame(id, ErrorCode.CANCEL));
      }
      await client.sync();
      assert.equal(client.goaway(), undefined);

      // 20 resets of running requests fill the window (5 so far); it clears after workResetsWindowMs.
      const resetRunning = async (count: number, from: number): Promise<number> => {
        let id = from;
        for (let i = 0; i < count; i++, id += 2) {
          rapid(client, id);
          await client.sync();
          for (const stream of running) stream.endWork();
        }
        return id;
      };
      let next = await resetRunning(15, 123);
      assert.equal(client.goaway(), undefined);
      assert.equal(timers.fire(1000), 1, 'the window closed');
      next = await resetRunning(20, next);
      assert.equal(client.goaway(), undefined, '20 in a window are allowed');
      await resetRunning(1, next);
      await waitFor(() => client.closed);
      assert.deepEqual(client.goaway(), { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'more than 20 streams reset while their requests ran, within 1000 ms' });
      assert.deepEqual(errors.at(-1), client.goaway());
      // Other connections are served.
      await other.sync();
      assert.equal(other.closed, false);
    } finally {
      client.close();
      other.close();
      await server.close(100);
    }
  });

  describe('header blocks', () => {
    let server: H2Server;
    const opened: H2Stream[] = [];
    before(async () => {
      server = await listenH2('127.0.0.1', 0, (stream) => void opened.push(stream), { connectionsMax: 100, limits: LIMITS, onConnectionError });
    });
    after(async () => {
      await server.close(100);
    });

    it('CONTINUATION flood (CVE-2024-27316): a block in more frames than grpcHeaderBlockFramesMax ends the connection, empty frames too', async () => {
      const client = await RawClient.connect(server.port);
      const other = await RawClient.connect(server.port);
      try {
        client.socket.write(frame(FrameType.HEADERS, 0, 1, REQUEST_BLOCK.subarray(0, 3)));
        for (let i = 0; i < 40; i++) client.socket.write(frame(FrameType.CONTINUATION, 0, 1));
        await waitFor(() => client.closed);
        assert.deepEqual(client.goaway(), { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'header block in more than 32 frames' });
        await other.sync();
        assert.equal(other.closed, false, 'other connections are served');
      } finally {
        client.close();
        other.close();
      }
    });

    it('CONTINUATION flood: a block over grpcHeaderBlockBytesMax ends the connection before more is buffered', async () => {
      const client = await RawClient.connect(server.port);
      try {
        client.socket.write(frame(FrameType.HEADERS, 0, 1, REQUEST_BLOCK));
        for (let i = 0; i < 17 && !client.closed; i++) client.socket.write(frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(16_384, 0x40)));
        await waitFor(() => client.closed);
        assert.deepEqual(client.goaway(), { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'header block over 262144 bytes' });
      } finally {
        client.close();
      }
    });

    it('HPACK bomb: a small block whose references decode to a large header list ends the connection (COMPRESSION_ERROR), and the table is the advertised 4 KiB', async () => {
      const client = await RawClient.connect(server.port);
      try {
        assert.equal(advertised(client).get(Setting.HEADER_TABLE_SIZE), 4096);
        assert.equal(advertised(client).get(Setting.MAX_HEADER_LIST_SIZE), 65_536);
        // One 4,038-byte entry in the table, then 100 one-byte references to it: 4 KiB that
        // decode to 400 KB.
        const block = Buffer.concat([REQUEST_BLOCK, hpackLiteral(0x40, 'x-bomb', 'b'.repeat(4000)), Buffer.alloc(100, 0x80 | 62)]);
        assert.ok(block.length < 4200);
        client.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, block));
        await waitFor(() => client.closed);
        assert.deepEqual(client.goaway(), { code: ErrorCode.COMPRESSION_ERROR, reason: 'header list exceeds 65536 bytes' });
      } finally {
        client.close();
      }
      const grower = await RawClient.connect(server.port);
      try {
        // A table size update past what we advertised.
        grower.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat([hpackInteger(0x20, 5, 8192), REQUEST_BLOCK])));
        await waitFor(() => grower.closed);
        assert.deepEqual(grower.goaway(), { code: ErrorCode.COMPRESSION_ERROR, reason: 'table size update to 8192 exceeds our 4096' });
      } finally {
        grower.close();
      }
    });

    it('0-length headers (CVE-2019-9516): a request with an empty field name is malformed, and thousands of them pass the header list limit', async () => {
      const client = await RawClient.connect(server.port);
      try {
        opened.length = 0;
        const empty = hpackLiteral(0x00, '', '');
        client.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, Buffer.concat([REQUEST_BLOCK, empty, empty, empty])));
        await client.sync();
        assert.equal(client.resetCode(1), ErrorCode.PROTOCOL_ERROR);
        assert.equal(opened.length, 0, 'no handler saw it');
        // 3,000 of them: 9 KB that count 96,000 bytes (32 each) against the 64 KiB list limit.
        client.socket.write(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 3, Buffer.concat([REQUEST_BLOCK, ...Array<Buffer>(3000).fill(empty)])));
        await waitFor(() => client.closed);
        assert.deepEqual(client.goaway(), { code: ErrorCode.COMPRESSION_ERROR, reason: 'header list exceeds 65536 bytes' });
      } finally {
        client.close();
      }
    });

    it('resource loop (CVE-2019-9513): PRIORITY frames that reshuffle streams, themselves included, cost no answer and keep nothing', async () => {
      const client = await RawClient.connect(server.port);
      try {
        opened.length = 0;
        client.open(1, '/x');
        const priority = (id: number, dependsOn: number): Buffer => {
          const payload = Buffer.alloc(5);
          payload.writeUInt32BE((dependsOn | 0x80000000) >>> 0); // exclusive
          payload[4] = 255;
          return frame(FrameType.PRIORITY, 0, id, payload);
        };
        const frames: Buffer[] = [];
        for (let i = 0; i < 10_000; i++) frames.push(priority(1 + 2 * (i % 50), 1 + 2 * ((i * 7) % 50)));
        const before = client.frames.length;
        client.socket.write(Buffer.concat(frames));
        await client.sync();
        assert.deepEqual(client.frames.slice(before).map((f) => f.type), [FrameType.PING], 'only the PING was answered');
        assert.equal(opened.length, 1, 'the open stream is still there');
        // A PRIORITY frame of the wrong length is a stream error (RFC 9113 §6.3).
        client.socket.write(frame(FrameType.PRIORITY, 0, 1, Buffer.alloc(4)));
        await client.sync();
        assert.equal(client.resetCode(1), ErrorCode.FRAME_SIZE_ERROR);
        assert.equal(client.closed, false);
      } finally {
        client.close();
      }
    });

    it('empty frames flood (CVE-2019-9518): more than grpcEmptyDataFramesMax DATA frames in a row without data or END_STREAM end the connection', async () => {
      const client = await RawClient.connect(server.port);
      try {
        client.open(1, '/x');
        const empties = (count: number): Buffer => Buffer.concat(Array<Buffer>(count).fill(frame(FrameType.DATA, 0, 1)));
        client.socket.write(empties(100));
        client.data(1, 10);
        client.socket.write(empties(100));
        await client.sync();
        assert.equal(client.goaway(), undefined, '100 in a row are allowed; data between them starts the count again');
        client.socket.write(empties(1));
        await waitFor(() => client.closed);
        assert.deepEqual(client.goaway(), { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'more than 100 empty DATA frames in a row' });
      } finally {
        client.close();
      }
    });
  });

  it('data dribble (CVE-2019-9511): one-byte window updates get one-byte DATA frames, no more frames than updates', async () => {
    const server = await listenH2('127.0.0.1', 0, handler(new Map(), () => undefined), { connectionsMax: 100, limits: LIMITS });
    const client = await RawClient.connect(server.port, false);
    try {
      client.socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 0]]), frame(FrameType.SETTINGS, Flag.ACK, 0)]));
      client.open(1, '/big/100000');
      client.data(1, 0, true);
      await client.sync();
      const dataFrames = (): Frame[] => client.frames.filter((f) => f.type === FrameType.DATA);
      assert.equal(dataFrames().length, 0, 'no window, no data');
      for (let i = 0; i < 200; i++) client.socket.write(windowUpdateFrame(1, 1));
      await client.sync();
      assert.equal(dataFrames().length, 200);
      assert.ok(dataFrames().every((f) => f.payload.length === 1));
      assert.equal(client.closed, false);
    } finally {
      client.close();
      await server.close(100);
    }
  });

  describe('a client that sends and does not read', () => {
    const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const limits: H2Limits = { ...LIMITS, controlFramesUnwrittenMax: 100 };

    async function connect(): Promise<{ socket: HeldSocket; connection: Http2Connection; errors: number[] }> {
      const socket = new HeldSocket();
      const errors: number[] = [];
      const connection = new Http2Connection(socket, () => undefined, limits, new ManualTimers(), (code) => void errors.push(code));
      socket.push(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.SETTINGS, Flag.ACK, 0)]));
      await tick();
      socket.holding = true; // From here on the client reads nothing.
      return { socket, connection, errors };
    }

    const floods: Array<[string, (i: number) => Buffer]> = [
      ['ping flood (CVE-2019-9512)', () => frame(FrameType.PING, 0, 0, Buffer.alloc(8))],
      ['settings flood (CVE-2019-9515)', () => settingsFrame([[Setting.ENABLE_PUSH, 0]])],
      // Each request lacks :path, so each is reset (PROTOCOL_ERROR).
      ['reset flood (CVE-2019-9514)', (i) => frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1 + 2 * i, encodeHeaders([[':method', 'POST']]))],
    ];
    for (const [name, flood] of floods) {
      it(`${name}: the answers owed stay under controlFramesUnwrittenMax, then the connection is cut`, async () => {
        const { socket, connection, errors } = await connect();
        try {
          let sent = 0;
          for (; sent < 99; sent++) socket.push(flood(sent));
          await tick();
          assert.ok(connection.controlFramesPending <= 100, `${connection.controlFramesPending} answers owed`);
          assert.equal(socket.destroyed, false, 'up to the limit the connection lives');
          for (; sent < 110; sent++) socket.push(flood(sent));
          await tick();
          assert.equal(socket.destroyed, true);
          assert.deepEqual(errors, [ErrorCode.ENHANCE_YOUR_CALM]);
        } finally {
          connection.destroy();
        }
      });
    }

    it('internal data buffering (CVE-2019-9517): responses to a client that opened its windows and does not read stop at unreadResponseBytesMax', async () => {
      const socket = new HeldSocket();
      const errors: number[] = [];
      const unread: H2Limits = { ...LIMITS, unreadResponseBytesMax: 1 << 20 };
      const connection = new Http2Connection(socket, handler(new Map(), () => undefined), unread, new ManualTimers(), (code) => void errors.push(code));
      try {
        socket.push(Buffer.concat([CLIENT_PREFACE, settingsFrame([[Setting.INITIAL_WINDOW_SIZE, 2 ** 31 - 1]]), frame(FrameType.SETTINGS, Flag.ACK, 0), windowUpdateFrame(0, 2 ** 31 - 1 - 65_535)]));
        await tick();
        socket.holding = true;
        const ask = (id: number): void => {
          socket.push(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, id, encodeHeaders([[':method', 'POST'], [':path', '/big/600000']])));
        };
        ask(1);
        await tick();
        ask(3);
        await tick();
        assert.equal(socket.destroyed, false, '1.2 MB handed to the socket: the last flush found 600 KB unread');
        assert.ok(socket.writableLength <= unread.unreadResponseBytesMax + 600_100);
        ask(5);
        await tick();
        assert.equal(socket.destroyed, true, 'the next flush found more than 1 MiB unread');
        assert.deepEqual(errors, [ErrorCode.ENHANCE_YOUR_CALM]);
      } finally {
        connection.destroy();
      }
    });

    it('a client that reads may send as many PINGs as it likes, spread over reads', async () => {
      const { socket, connection, errors } = await connect();
      try {
        socket.release();
        for (let round = 0; round < 20; round++) {
          for (let i = 0; i < 90; i++) socket.push(frame(FrameType.PING, 0, 0, Buffer.alloc(8)));
          await tick();
          await tick();
        }
        assert.equal(socket.destroyed, false);
        assert.deepEqual(errors, []);
        assert.equal(connection.controlFramesPending, 0, 'everything owed was written');
      } finally {
        connection.destroy();
      }
    });
  });
});
