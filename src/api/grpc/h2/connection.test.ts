// The HTTP/2 server layer against node:http2's client (nghttp2, a second implementation) and
// against raw sockets for what a well-behaved client never sends.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { listenH2, type H2Server } from './server.js';
import { STREAM_BUFFER_BYTES, type H2Stream } from './connection.js';
import { encodeHeaders } from './hpack.js';
import { CLIENT_PREFACE, ErrorCode, FrameType, frame, settingsFrame } from './frames.js';

const OK = encodeHeaders([[':status', '200']]);
const DONE = encodeHeaders([['x-done', 'yes']]);

/** What the test server's handler saw, by path. */
interface Seen {
  headers: Record<string, string | string[]>;
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
    stream.onData = (chunk) => body.push(Buffer.from(chunk));
    stream.onEnd = () => {
      if (path === '/hold') return;
      stream.respond(OK);
      if (path === '/echo') return stream.end(Buffer.concat(body), DONE);
      if (path.startsWith('/big/')) return stream.end(pattern(Number(path.slice(5))), DONE);
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
    server = await listenH2('127.0.0.1', 0, handler(seen, () => drains++));
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
    server = await listenH2('127.0.0.1', 0, () => undefined);
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
    const server = await listenH2('127.0.0.1', 0, (stream) => {
      stream.onEnd = () => {
        if (stream.headers[':path'] === '/hold') return void holds.push(stream);
        stream.respond(OK);
        stream.end(Buffer.from('late answer'), DONE);
      };
    });
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
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition not reached');
}
