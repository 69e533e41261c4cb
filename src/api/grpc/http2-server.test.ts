// The gRPC-over-HTTP/2 server, driven by a real grpc-js client: statuses, trailers, limits,
// compression, streaming in both directions, cancellation and shutdown.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { GrpcRouter, MessageReader, listenHttp2Grpc, percentEncode, type Http2GrpcServer, type ServerCall, type UnaryCallback } from './http2-server.js';
import { grpcServerLimits } from './server.js';
import { UnfinishedStreams } from './testing/unfinished-streams.js';
import net from 'node:net';
import { CLIENT_PREFACE, DEFAULT_WINDOW_BYTES, ErrorCode, Flag, FrameType, frame, rstStreamFrame, settingsFrame } from './h2/frames.js';
import { encodeHeaders } from './h2/hpack.js';

const identity = (bytes: Buffer): Buffer => bytes;
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/test.Echo/${name}`,
  originalName: name,
  requestStream,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: (bytes: Buffer): Buffer => {
    if (bytes.toString() === 'poison') throw new Error('poisoned message');
    return bytes;
  },
  responseSerialize: identity,
  responseDeserialize: identity,
});
const DEFINITION = {
  Echo: method('Echo', false, false),
  Fail: method('Fail', false, false),
  Count: method('Count', false, true),
  Chat: method('Chat', true, true),
  Hold: method('Hold', true, true),
};
const MESSAGE_BYTES_MAX = 1024;

type Callback = (error: ServiceError | null, response?: Buffer) => void;

/** The final status of a streaming call (events.once would reject on the 'error' that precedes it). */
const statusOf = (call: NodeJS.EventEmitter): Promise<{ code: number }> => new Promise((resolve) => call.on('status', resolve));

describe('gRPC over HTTP/2', () => {
  let server: Http2GrpcServer;
  let client: Client & Record<string, Function>;
  const unaryDone: { path: string; code: number }[] = [];
  const cancelled: string[] = [];

  before(async () => {
    const router = new GrpcRouter({ receiveMessageBytesMax: MESSAGE_BYTES_MAX, onUnaryDone: (path, code) => unaryDone.push({ path, code }) });
    router.addService(DEFINITION, {
      Echo: (call: ServerCall<Buffer, Buffer>, callback: UnaryCallback<Buffer>) => {
        const leader = call.metadata.get('hasleader');
        callback(null, Buffer.concat([call.request, Buffer.from(leader.length > 0 ? `|${leader[0]}` : '')]));
      },
      Fail: (_call: ServerCall, callback: UnaryCallback<Buffer>) =>
        callback({ code: 9, details: 'etcdserver: naïve 100% failure', metadata: { 'lichen-leader-id': '42' } }),
      Count: (call: ServerCall<Buffer, Buffer>) => {
        const n = Number(call.request.toString());
        for (let i = 1; i <= n; i++) call.write(Buffer.from(String(i)));
        call.end();
      },
      Chat: (call: ServerCall<Buffer, Buffer>) => {
        call.on('data', (message: Buffer) => call.write(Buffer.from(`echo:${message.toString()}`)));
        call.on('end', () => call.end());
      },
      Hold: (call: ServerCall<Buffer, Buffer>) => {
        call.on('cancelled', () => cancelled.push('Hold'));
      },
    });
    server = await listenHttp2Grpc(router, '127.0.0.1', 0, grpcServerLimits(MESSAGE_BYTES_MAX));
    const Client = makeGenericClientConstructor(DEFINITION, 'Echo');
    client = new Client(`127.0.0.1:${server.port}`, credentials.createInsecure()) as never;
  });

  after(async () => {
    client.close();
    await server.close(100);
  });

  const unary = (name: string, request: Buffer, metadata = new Metadata()): Promise<Buffer> =>
    new Promise((resolve, reject) =>
      client[name]!.call(client, request, metadata, ((error, response) => (error ? reject(error) : resolve(response!))) as Callback),
    );

  it('answers a unary call and passes request metadata', async () => {
    assert.equal((await unary('Echo', Buffer.from('hi'))).toString(), 'hi');
    const metadata = new Metadata();
    metadata.set('hasleader', 'true');
    assert.equal((await unary('Echo', Buffer.from('hi'), metadata)).toString(), 'hi|true');
    assert.deepEqual(unaryDone.at(-1), { path: '/test.Echo/Echo', code: 0 });
  });

  it('answers an empty message', async () => {
    assert.equal((await unary('Echo', Buffer.alloc(0))).length, 0);
  });

  it('ends a failed call with its status, a percent-encoded message and trailing metadata', async () => {
    const error = (await unary('Fail', Buffer.from('x')).catch((e: unknown) => e)) as ServiceError;
    assert.equal(error.code, 9);
    assert.equal(error.details, 'etcdserver: naïve 100% failure');
    assert.deepEqual(error.metadata.get('lichen-leader-id'), ['42']);
    assert.equal(percentEncode('a%b ü'), 'a%25b %C3%BC');
  });

  it('refuses a message over the limit with RESOURCE_EXHAUSTED, naming both sizes', async () => {
    const error = (await unary('Echo', Buffer.alloc(MESSAGE_BYTES_MAX + 1)).catch((e: unknown) => e)) as ServiceError;
    assert.equal(error.code, 8);
    assert.match(error.details, /larger than max \(1025 vs\. 1024\)/);
  });

  it('reports a message it cannot decode as INTERNAL', async () => {
    const error = (await unary('Echo', Buffer.from('poison')).catch((e: unknown) => e)) as ServiceError;
    assert.equal(error.code, 13);
    assert.match(error.details, /poisoned message/);
  });

  it('answers an unknown method with UNIMPLEMENTED', async () => {
    const Other = makeGenericClientConstructor({ Nope: { ...method('Nope', false, false), path: '/test.Echo/Nope' } }, 'Other');
    const other = new Other(`127.0.0.1:${server.port}`, credentials.createInsecure()) as Client & Record<string, Function>;
    const error = await new Promise<ServiceError>((resolve) => other['Nope']!.call(other, Buffer.from('x'), (e: ServiceError) => resolve(e)));
    other.close();
    assert.equal(error.code, 12);
    assert.match(error.details, /\/test\.Echo\/Nope/);
  });

  it('decompresses gzip and deflate request messages', async () => {
    for (const algorithm of [1 /* deflate */, 2 /* gzip */]) {
      const Ctor = makeGenericClientConstructor(DEFINITION, 'Echo');
      const zipped = new Ctor(`127.0.0.1:${server.port}`, credentials.createInsecure(), {
        'grpc.default_compression_algorithm': algorithm,
        'grpc.use_local_subchannel_pool': 1,
      }) as Client & Record<string, Function>;
      const text = 'compress me '.repeat(20);
      const response = await new Promise<Buffer>((resolve, reject) =>
        zipped['Echo']!.call(zipped, Buffer.from(text), ((e, r) => (e ? reject(e) : resolve(r!))) as Callback),
      );
      zipped.close();
      assert.equal(response.toString(), text);
    }
  });

  it('streams responses to one request', async () => {
    const call = client['Count']!.call(client, Buffer.from('5'));
    const seen: string[] = [];
    call.on('data', (m: Buffer) => seen.push(m.toString()));
    await once(call, 'status');
    assert.deepEqual(seen, ['1', '2', '3', '4', '5']);
  });

  it('carries a bidirectional stream until the client half-closes', async () => {
    const call = client['Chat']!.call(client);
    const seen: string[] = [];
    call.on('data', (m: Buffer) => seen.push(m.toString()));
    call.write(Buffer.from('a'));
    call.write(Buffer.from('b'));
    call.end();
    const [status] = await once(call, 'status');
    assert.equal(status.code, 0);
    assert.deepEqual(seen, ['echo:a', 'echo:b']);
  });

  it('tells the handler when the client cancels', async () => {
    const call = client['Hold']!.call(client);
    call.on('error', () => undefined);
    call.write(Buffer.from('x'));
    await new Promise((resolve) => setImmediate(resolve));
    call.cancel();
    await statusOf(call);
    for (let i = 0; i < 100 && !cancelled.includes('Hold'); i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(cancelled, ['Hold']);
  });

  it('cuts off open streams once the grace period of close() has passed', async () => {
    const router = new GrpcRouter({ receiveMessageBytesMax: MESSAGE_BYTES_MAX });
    let arrived!: () => void;
    const held = new Promise<void>((resolve) => (arrived = resolve));
    router.addService(DEFINITION, { Hold: () => arrived() });
    const own = await listenHttp2Grpc(router, '127.0.0.1', 0, grpcServerLimits(MESSAGE_BYTES_MAX));
    const Ctor = makeGenericClientConstructor(DEFINITION, 'Echo');
    const c = new Ctor(`127.0.0.1:${own.port}`, credentials.createInsecure()) as Client & Record<string, Function>;
    const call = c['Hold']!.call(c);
    call.on('error', () => undefined);
    call.write(Buffer.from('x'));
    const ended = statusOf(call);
    await held;
    await own.close(10);
    const status = await ended;
    assert.notEqual(status.code, 0);
    c.close();
  });
});

describe('gRPC over HTTP/2: request bytes a connection may make the server hold', () => {
  const messageBytesMax = 64 * 1024;
  const options = grpcServerLimits(messageBytesMax);
  const limits = { ...options, limits: { ...options.limits, bufferedBytesMax: 1024 * 1024 } };
  let server: Http2GrpcServer;
  let client: Client & Record<string, Function>;
  before(async () => {
    const router = new GrpcRouter({ receiveMessageBytesMax: messageBytesMax });
    router.addService(DEFINITION, {
      Echo: (call: ServerCall<Buffer, Buffer>, callback: UnaryCallback<Buffer>) => callback(null, call.request),
      Chat: (call: ServerCall<Buffer, Buffer>) => {
        call.on('data', (message: Buffer) => call.write(message));
        call.on('end', () => call.end());
      },
    });
    server = await listenHttp2Grpc(router, '127.0.0.1', 0, limits);
    const Client = makeGenericClientConstructor(DEFINITION, 'Echo');
    client = new Client(`127.0.0.1:${server.port}`, credentials.createInsecure()) as never;
  });
  after(async () => {
    client.close();
    await server.close(100);
  });

  const echo = (request: Buffer): Promise<Buffer> =>
    new Promise((resolve, reject) => client['Echo']!.call(client, request, (error: ServiceError | null, response?: Buffer) => (error ? reject(error) : resolve(response!))));

  it('receives messages larger than a stream window, many at once on one connection', async () => {
    // 40 messages of 60 KiB need 2.4 MiB; the connection reserves room for four at a time.
    const bodies = Array.from({ length: 40 }, (_, i) => Buffer.alloc(60 * 1024, i));
    const answers = await Promise.all(bodies.map(echo));
    answers.forEach((answer, i) => assert.ok(answer.equals(bodies[i]!), `message ${i}`));
  });

  it('receives a stream of large messages in turn', async () => {
    const call = client['Chat']!.call(client);
    const got: Buffer[] = [];
    call.on('data', (message: Buffer) => got.push(message));
    const ended = once(call, 'end');
    const bodies = [40_000, 60_000, 60_000, 100, 50_000].map((bytes, i) => Buffer.alloc(bytes, i));
    for (const body of bodies) call.write(body);
    call.end();
    await ended;
    assert.deepEqual(got.map((m) => m.length), bodies.map((b) => b.length));
    got.forEach((message, i) => assert.ok(message.equals(bodies[i]!)));
  });

  it('holds unfinished messages only up to the connection limits, ends the rest with RESOURCE_EXHAUSTED, and serves others', async () => {
    const attack = await UnfinishedStreams.open({ host: '127.0.0.1', port: server.port, streams: 200, messageBytes: messageBytesMax, path: '/test.Echo/Echo' });
    try {
      await attack.settled();
      const { bufferedBytesMax, reservedBytesMax } = limits.limits;
      const refused = attack.report.statuses['8'] ?? 0;
      assert.ok(refused > 0, `some streams were refused: ${JSON.stringify(attack.report)}`);
      assert.deepEqual(Object.keys(attack.report.statuses), ['8'], 'only RESOURCE_EXHAUSTED');
      // What it could send: what the server holds, plus what each refused stream sent within its
      // window (the default one: the attacker sends before it hears our SETTINGS), dropped.
      assert.ok(attack.report.sentBytes <= bufferedBytesMax + reservedBytesMax + refused * DEFAULT_WINDOW_BYTES, `sent ${attack.report.sentBytes}`);
      assert.ok((await echo(Buffer.from('still here'))).equals(Buffer.from('still here')));
    } finally {
      attack.close();
    }
  });
});

describe('gRPC over HTTP/2: Rapid Reset (CVE-2023-44487)', () => {
  it('runs no more unary handlers at once than a connection may have streams, however fast the client resets its calls', async () => {
    const options = grpcServerLimits(MESSAGE_BYTES_MAX);
    const streamsMax = 8;
    const pending: Array<() => void> = [];
    const router = new GrpcRouter({ receiveMessageBytesMax: MESSAGE_BYTES_MAX });
    // A handler whose work (a proposal, say) goes on after the client is gone, until the test ends it.
    router.addService(DEFINITION, {
      Echo: (call: ServerCall<Buffer, Buffer>, callback: UnaryCallback<Buffer>) => void pending.push(() => callback(null, call.request)),
    });
    const server = await listenHttp2Grpc(router, '127.0.0.1', 0, { ...options, limits: { ...options.limits, streamsMax } });
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    const block = encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/test.Echo/Echo'], [':authority', 'x'], ['content-type', 'application/grpc'], ['te', 'trailers']]);
    const message = Buffer.from([0, 0, 0, 0, 2, 0x68, 0x69]);
    /** Sends `calls` calls, each reset as soon as sent, then waits until the server has read them all. */
    const rapid = async (calls: number, from: number): Promise<void> => {
      const frames: Buffer[] = [];
      for (let id = from; id < from + 2 * calls; id += 2) {
        frames.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block), frame(FrameType.DATA, Flag.END_STREAM, id, message), rstStreamFrame(id, ErrorCode.CANCEL));
      }
      frames.push(frame(FrameType.PING, 0, 0, Buffer.alloc(8, from & 0xff)));
      socket.write(Buffer.concat(frames));
      const ack = frame(FrameType.PING, Flag.ACK, 0, Buffer.alloc(8, from & 0xff));
      while (!received.includes(ack)) await new Promise((resolve) => setImmediate(resolve));
    };
    try {
      await once(socket, 'connect');
      socket.write(Buffer.concat([CLIENT_PREFACE, settingsFrame([]), frame(FrameType.SETTINGS, Flag.ACK, 0)]));
      await rapid(100, 1);
      assert.equal(pending.length, streamsMax, 'the calls beyond the limit were refused, not run');
      // The handlers answer (to no one): as many calls may run again.
      for (const answer of pending.splice(0)) answer();
      await rapid(100, 201);
      assert.equal(pending.length, streamsMax);
    } finally {
      socket.destroy();
      await server.close(100);
    }
  });
});

describe('gRPC message framing', () => {
  const frame = (body: Buffer): Buffer => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(body.length, 1);
    return Buffer.concat([prefix, body]);
  };
  const noFailure = (code: number, details: string): never => assert.fail(`unexpected failure ${code}: ${details}`);

  it('reassembles messages split anywhere, and several in one chunk', () => {
    const bodies = [Buffer.from('first'), Buffer.alloc(0), Buffer.from('third message')];
    const wire = Buffer.concat(bodies.map(frame));
    for (const size of [1, 2, 3, 5, 7, wire.length]) {
      const reader = new MessageReader(1024, undefined);
      const seen: string[] = [];
      for (let at = 0; at < wire.length; at += size) {
        for (const message of reader.push(wire.subarray(at, at + size), noFailure)) seen.push(message.toString());
      }
      assert.deepEqual(seen, ['first', '', 'third message'], `chunk size ${size}`);
    }
  });

  it('delivers a large message that arrives in many chunks intact', () => {
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    const wire = frame(body);
    const reader = new MessageReader(body.length, undefined);
    const seen: Buffer[] = [];
    for (let at = 0; at < wire.length; at += 16_384) seen.push(...reader.push(wire.subarray(at, at + 16_384), noFailure));
    assert.equal(seen.length, 1);
    assert.ok(seen[0]!.equals(body));
  });

  it('data dribble (CVE-2019-9511): a message sent a byte at a time is held in few buffers, and arrives intact', () => {
    const body = Buffer.alloc(16_000);
    for (let i = 0; i < body.length; i++) body[i] = i % 251;
    const wire = frame(body);
    const reader = new MessageReader(body.length, undefined);
    const seen: Buffer[] = [];
    let chunksMax = 0;
    for (let at = 0; at < wire.length; at++) {
      seen.push(...reader.push(wire.subarray(at, at + 1), noFailure));
      chunksMax = Math.max(chunksMax, reader.chunkCount);
    }
    // 16,005 one-byte chunks; kept as they came, 16,004 Buffers before the last one.
    assert.ok(chunksMax <= MessageReader.CHUNKS_KEPT_MAX + 16_005 / (MessageReader.CHUNKS_KEPT_MAX / 2), `${chunksMax} chunks held at most`);
    assert.equal(seen.length, 1);
    assert.ok(seen[0]!.equals(body));
  });

  it('fails on the length prefix of an oversized message, before its bytes arrive', () => {
    const reader = new MessageReader(10, undefined);
    const failures: [number, string][] = [];
    assert.deepEqual(reader.push(frame(Buffer.alloc(11)).subarray(0, 5), (code, details) => failures.push([code, details])), []);
    assert.deepEqual(failures, [[8, 'Received message larger than max (11 vs. 10)']]);
    assert.deepEqual(reader.push(Buffer.alloc(11), noFailure), []);
  });
});
