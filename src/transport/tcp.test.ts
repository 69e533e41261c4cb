import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { snapshotBytes, type Message, type NodeId } from '../raft/types.js';
import { TcpTransport, type PeerRefusal, type SnapshotSink, type TransportOptions } from './tcp.js';
import { encodeMessage } from './codec.js';
import { FRAME_HEADER_BYTES, FrameKind, FrameReader, PROTOCOL_VERSION, decodeHelloAck, encodeHello, encodeBeatFrames, encodeHelloAck, encodeMessageFrame, encodeNonceFrame, encodeSnapBegin, writeFrameHeader, type HelloAck } from './frame.js';
import { Waiter, plain, seededRandom } from './testing.js';
import { createCertificateAuthority, issueCertificate, selfSignedCertificate, type PemPair } from '../tls/certs.js';
import { peerTlsOptions, type TlsMaterial } from '../tls/index.js';

const TEST_TIMEOUT_MS = 15_000;

/** A transport on 127.0.0.1 that records everything it receives and reports. */
class Node {
  readonly received: Message[] = [];
  /** The group of each received message. */
  readonly groups: number[] = [];
  /** Beat frames received, by sending node. */
  readonly beats: NodeId[] = [];
  readonly unreachable: NodeId[] = [];
  readonly snapshotsSent: { peer: NodeId; ok: boolean }[] = [];
  readonly events: { event: string; fields: Record<string, unknown> }[] = [];
  readonly refusals: PeerRefusal[] = [];
  /** Dials of ours refused because of membership (onMembershipRefused). */
  readonly membershipRefusals: { peer: NodeId; refusal: string; reason: string }[] = [];
  readonly transport: TcpTransport;

  constructor(
    readonly id: NodeId,
    readonly waiter: Waiter,
    overrides: Partial<TransportOptions> = {},
  ) {
    this.transport = new TcpTransport({
      id,
      clusterId: 7,
      listen: { host: '127.0.0.1', port: 0 },
      onMessage: (m, group) => {
        this.received.push(m);
        this.groups.push(group);
        waiter.poke();
      },
      onBeat: (node) => {
        this.beats.push(node);
        waiter.poke();
      },
      onUnreachable: (peer) => {
        this.unreachable.push(peer);
        waiter.poke();
      },
      onSnapshotSent: (peer, ok) => {
        this.snapshotsSent.push({ peer, ok });
        waiter.poke();
      },
      onRefusal: (refusal) => {
        this.refusals.push(refusal);
        waiter.poke();
      },
      onMembershipRefused: (peer, refusal, reason) => {
        this.membershipRefusals.push({ peer, refusal, reason });
        waiter.poke();
      },
      logger: (event, fields) => {
        this.events.push({ event, fields });
        waiter.poke();
      },
      ...overrides,
    });
  }

  get addressText(): string {
    return `127.0.0.1:${this.transport.address.port}`;
  }

  hasEvent(event: string): boolean {
    return this.events.some((e) => e.event === event);
  }
}

/** Runs a test body with nodes that are always closed afterwards, also when the body fails. */
async function withNodes(
  count: number,
  body: (nodes: Node[], waiter: Waiter) => Promise<void>,
  overrides: (id: NodeId) => Partial<TransportOptions> = () => ({}),
): Promise<void> {
  const waiter = new Waiter();
  const nodes = Array.from({ length: count }, (_, i) => new Node(i + 1, waiter, overrides(i + 1)));
  try {
    for (const node of nodes) await node.transport.start();
    await body(nodes, waiter);
  } finally {
    await Promise.all(nodes.map((node) => node.transport.close()));
  }
}

function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return { type: 'Heartbeat', from, to, term: 1, commit, context: new Uint8Array(0) };
}

function append(from: NodeId, to: NodeId, index: number, dataBytes = 16): Message {
  return {
    type: 'App',
    from,
    to,
    term: 3,
    prevLogIndex: index - 1,
    prevLogTerm: 3,
    commit: index - 1,
    entries: [{ term: 3, index, type: 0, data: Buffer.alloc(dataBytes, index % 251) }],
  };
}

/** A port nobody listens on: bind one, remember it, release it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('a message round-trips between two transports', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(2, async ([a, b], waiter) => {
    a!.transport.addPeer(2, b!.addressText);
    b!.transport.addPeer(1, a!.addressText);
    const request = append(1, 2, 5, 1024);
    a!.transport.send([request]);
    await waiter.until(() => b!.received.length === 1, 'B to receive the append');
    assert.deepEqual(plain(b!.received[0]), plain(request));
    const reply: Message = { type: 'AppResp', from: 2, to: 1, term: 3, reject: false, index: 5, rejectHint: 0, hintTerm: 0 };
    b!.transport.send([reply]);
    await waiter.until(() => a!.received.length === 1, 'A to receive the reply');
    assert.deepEqual(plain(a!.received[0]), plain(reply));
    assert.equal(a!.transport.stats().peers[2]!.connected, true);
    assert.ok(a!.transport.stats().peers[2]!.sentBytes > 1024);
  });
});

test('many messages sent in many batches arrive complete and in order', { timeout: TEST_TIMEOUT_MS }, async () => {
  const total = 20_000;
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      const random = seededRandom(3);
      let next = 1;
      // Batches of random sizes, some sent in the same turn and some in later turns.
      while (next <= total) {
        const size = Math.min(total - next + 1, 1 + Math.floor(random() * 300));
        a!.transport.send(Array.from({ length: size }, (_, i) => append(1, 2, next + i, 1 + (i % 200))));
        next += size;
        if (random() < 0.3) await new Promise((resolve) => setImmediate(resolve));
      }
      await waiter.until(() => b!.received.length === total, `B to receive ${total} messages`, 10_000);
      b!.received.forEach((m, i) => {
        assert.equal(m.type, 'App');
        if (m.type === 'App') assert.equal(m.entries[0]!.index, i + 1);
      });
      assert.equal(a!.transport.stats().peers[2]!.dropped, 0);
    },
    () => ({ sendQueueMax: total }),
  );
});

test('the link reconnects after the peer restarts on the same port', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(
    1,
    async ([a], waiter) => {
      const b = new Node(2, waiter);
      const { port } = await b.transport.start();
      b.transport.addPeer(1, a!.addressText);
      let restarted: Node | null = null;
      try {
        a!.transport.addPeer(2, b.addressText);
        a!.transport.send([heartbeat(1, 2, 1)]);
        await waiter.until(() => b.received.length === 1, 'first heartbeat');
        await b.transport.close();
        await waiter.until(() => a!.unreachable.includes(2), 'A to notice B is gone');
        assert.equal(a!.transport.stats().peers[2]!.connected, false);
        // Sent while B is down: queued, then delivered once the link is back.
        a!.transport.send([heartbeat(1, 2, 2)]);
        restarted = new Node(2, waiter, { listen: { host: '127.0.0.1', port } });
        restarted.transport.addPeer(1, a!.addressText);
        await restarted.transport.start();
        await waiter.until(() => restarted!.received.length >= 1, 'heartbeat after restart');
        assert.equal((restarted.received[0] as { commit: number }).commit, 2);
        assert.equal(a!.transport.stats().peers[2]!.connected, true);
      } finally {
        await b.transport.close();
        await restarted?.transport.close();
      }
    },
    () => ({ reconnectBackoffMs: { min: 5, max: 50 } }),
  );
});

test('a full send queue drops messages and reports the peer unreachable', { timeout: TEST_TIMEOUT_MS }, async () => {
  const port = await closedPort();
  await withNodes(
    1,
    async ([a]) => {
      a!.transport.addPeer(2, `127.0.0.1:${port}`);
      a!.transport.send(Array.from({ length: 15 }, (_, i) => heartbeat(1, 2, i)));
      // Drops happen synchronously inside send(), before the failed dial is even noticed.
      assert.deepEqual(a!.unreachable, [2, 2, 2, 2, 2]);
      const stats = a!.transport.stats().peers[2]!;
      assert.equal(stats.queued, 10);
      assert.equal(stats.dropped, 5);
      assert.equal(stats.connected, false);
      assert.ok(a!.hasEvent('queue-full'));
      // A dropped snapshot fails right away, so raft leaves its snapshot state.
      a!.transport.send([
        { type: 'Snap', from: 1, to: 2, term: 1, snapshot: { metadata: { index: 1, term: 1, conf: { voters: [1], learners: [] } }, data: new Uint8Array(10) } },
      ]);
      assert.deepEqual(a!.snapshotsSent, [{ peer: 2, ok: false }]);
    },
    () => ({ sendQueueMax: 10 }),
  );
});

test('messages to a peer that was never added are dropped and reported', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(1, async ([a]) => {
    a!.transport.send([heartbeat(1, 9, 1)]);
    assert.deepEqual(a!.unreachable, [9]);
    assert.equal(a!.transport.stats().unknownPeerDrops, 1);
  });
});

/** The refusal text a dialer got must not name the cluster's ids (the dialer may be a stranger). */
function assertNamesNoId(text: string, ids: number[]): void {
  for (const id of ids) assert.doesNotMatch(text, new RegExp(`\\b${id}\\b`), `refusal ${JSON.stringify(text)} names ${id}`);
}

test('a peer of another cluster is refused, both sides surface the error, and the refusal names no id', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => a!.hasEvent('handshake-refused') && b!.hasEvent('handshake-rejected'), 'refusal');
      const rejected = b!.events.find((e) => e.event === 'handshake-rejected')!.fields;
      // The listener's own log has the ids; the dialer is told only what kind of mismatch it is.
      assert.deepEqual([rejected['remoteClusterId'], rejected['localClusterId']], [100, 200]);
      const peerStats = a!.transport.stats().peers[2]!;
      assert.equal(peerStats.connected, false);
      assert.ok(peerStats.refused >= 1);
      assert.match(peerStats.lastError ?? '', /the dialer belongs to another cluster/);
      const told = String(a!.events.find((e) => e.event === 'handshake-refused')!.fields['reason']);
      assertNamesNoId(told, [1, 2, 200]);
      assert.ok(b!.transport.stats().inbound.rejected >= 1);
      await waiter.until(() => a!.unreachable.includes(2), 'A to report B unreachable');
      assert.equal(b!.received.length, 0);
      assert.deepEqual(a!.membershipRefusals, [], 'another cluster says nothing about membership');
    },
    (id) => ({ clusterId: id * 100 }),
  );
});

test('a dial addressed to another member id is refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(2, async ([a, b], waiter) => {
    // A believes member 3 lives at B's address (a stale address after a member was replaced).
    a!.transport.addPeer(3, b!.addressText);
    b!.transport.addPeer(1, a!.addressText);
    await waiter.until(() => a!.hasEvent('handshake-refused'), 'refusal');
    const told = a!.transport.stats().peers[3]!.lastError ?? '';
    assert.match(told, /the dialer wants another member than the one at this address \(stale peer address\?\)/);
    assertNamesNoId(told.slice(told.indexOf(': ')), [1, 2, 3]);
    // The dialer learns what kind of refusal it is, to act on it (a new member whose
    // --initial-cluster was replaced stops: src/server/data-dirs.ts).
    await waiter.until(() => a!.membershipRefusals.length > 0, 'the membership refusal reported');
    assert.deepEqual(a!.membershipRefusals[0], { peer: 3, refusal: 'wrong_member', reason: 'the dialer wants another member than the one at this address (stale peer address?)' });
  });
});

test('a 10 MiB snapshot arrives in chunks and the sender learns it was sent', { timeout: TEST_TIMEOUT_MS }, async () => {
  const maxFrameBytes = 1024 * 1024;
  await withNodes(
    2,
    async ([a, b], waiter) => {
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.addPeer(2, b!.addressText);
      const data = Buffer.alloc(10 * 1024 * 1024);
      for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
      const snap: Message = {
        type: 'Snap',
        from: 1,
        to: 2,
        term: 4,
        snapshot: { metadata: { index: 100, term: 4, conf: { voters: [1, 2, 3], learners: [4] } }, data },
      };
      // Messages before and after the snapshot keep their order around it.
      a!.transport.send([heartbeat(1, 2, 1), snap, heartbeat(1, 2, 2)]);
      await waiter.until(() => b!.received.length === 3 && a!.snapshotsSent.length === 1, 'snapshot delivery');
      assert.deepEqual(b!.received.map((m) => m.type), ['Heartbeat', 'Snap', 'Heartbeat']);
      const got = b!.received[1] as Extract<Message, { type: 'Snap' }>;
      assert.deepEqual(got.snapshot.metadata, snap.snapshot.metadata);
      assert.ok(data.equals(snapshotBytes(got.snapshot.data)), 'snapshot data differs');
      assert.deepEqual(a!.snapshotsSent, [{ peer: 2, ok: true }]);
      const inbound = b!.transport.stats().inbound;
      assert.ok(inbound.snapshotChunksReceived >= 10, `only ${inbound.snapshotChunksReceived} chunks`);
    },
    () => ({ maxFrameBytes }),
  );
});

test('a snapshot goes to its sink as it arrives, the connection is not read while the sink lags, and what follows waits for its delivery', { timeout: TEST_TIMEOUT_MS }, async () => {
  const maxFrameBytes = 64 * 1024;
  const pendingMax = 128 * 1024;
  // A sink whose writes complete only when the test says so; it notes the most it ever held.
  const writes: Array<() => void> = [];
  let pendingBytes = 0;
  let mostPending = 0;
  let finishing: (() => void) | undefined;
  let poke = (): void => undefined;
  const sink: SnapshotSink = {
    get pendingBytes() {
      return pendingBytes;
    },
    write: (chunk) => {
      pendingBytes += chunk.length;
      mostPending = Math.max(mostPending, pendingBytes);
      poke();
      return new Promise((resolve) => writes.push(() => ((pendingBytes -= chunk.length), resolve())));
    },
    finish: () =>
      new Promise((resolve) => {
        finishing = () => resolve(data);
        poke();
      }),
    abort: () => undefined,
  };
  const data = Buffer.alloc(4 * 1024 * 1024, 7);
  await withNodes(
    2,
    async ([a, b], waiter) => {
      poke = () => waiter.poke();
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.addPeer(2, b!.addressText);
      const snap: Message = { type: 'Snap', from: 1, to: 2, term: 4, snapshot: { metadata: { index: 100, term: 4, conf: { voters: [1, 2], learners: [] } }, data } };
      a!.transport.send([snap, heartbeat(1, 2, 9)]);
      while (finishing === undefined) {
        await waiter.until(() => pendingBytes > pendingMax || finishing !== undefined, 'the sink to fill');
        for (const complete of writes.splice(0)) complete();
      }
      for (const complete of writes.splice(0)) complete();
      assert.equal(b!.received.length, 0, 'nothing after the snapshot is delivered before the snapshot');
      finishing();
      await waiter.until(() => b!.received.length === 2, 'delivery');
      assert.deepEqual(b!.received.map((m) => m.type), ['Snap', 'Heartbeat']);
      // Past the bound the connection was not read: the sink never held more than the bound
      // plus what one read of the socket carried (node reads 64 KiB at a time).
      assert.ok(mostPending <= pendingMax + 64 * 1024, `the sink held ${mostPending} bytes at once`);
    },
    (id) => (id === 2 ? { maxFrameBytes, snapshotPendingBytesMax: pendingMax, receiveSnapshot: () => sink } : { maxFrameBytes }),
  );
});

test('an empty snapshot is delivered and reported sent', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(2, async ([a, b], waiter) => {
    b!.transport.addPeer(1, a!.addressText);
    a!.transport.addPeer(2, b!.addressText);
    const snap: Message = {
      type: 'Snap',
      from: 1,
      to: 2,
      term: 4,
      snapshot: { metadata: { index: 7, term: 2, conf: { voters: [1, 2], learners: [] } }, data: new Uint8Array(0) },
    };
    a!.transport.send([snap]);
    await waiter.until(() => b!.received.length === 1 && a!.snapshotsSent.length === 1, 'empty snapshot');
    assert.deepEqual(plain(b!.received[0]), plain(snap));
    assert.deepEqual(a!.snapshotsSent, [{ peer: 2, ok: true }]);
  });
});

test('a snapshot over the receiver limit is dropped and logged, later messages still flow', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(
    2,
    async ([a, b], waiter) => {
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.addPeer(2, b!.addressText);
      const snap: Message = {
        type: 'Snap',
        from: 1,
        to: 2,
        term: 1,
        snapshot: { metadata: { index: 1, term: 1, conf: { voters: [1, 2], learners: [] } }, data: new Uint8Array(100_000) },
      };
      a!.transport.send([snap, heartbeat(1, 2, 9)]);
      await waiter.until(() => b!.received.length === 1, 'heartbeat after the dropped snapshot');
      assert.equal(b!.received[0]!.type, 'Heartbeat');
      assert.ok(b!.hasEvent('snapshot-too-large'));
      assert.equal(b!.transport.stats().inbound.snapshotsDropped, 1);
    },
    (id) => (id === 2 ? { maxSnapshotBytes: 50_000, maxFrameBytes: 16 * 1024 } : { maxFrameBytes: 16 * 1024 }),
  );
});

/** One raw connection to a transport: what came back, and whether it closed. */
class RawDial {
  readonly frames: Buffer[] = [];
  closed = false;

  constructor(
    readonly socket: net.Socket,
    waiter: Waiter,
  ) {
    const reader = new FrameReader(1 << 20);
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk, (frame) => this.frames.push(Buffer.from(frame)));
      waiter.poke();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      waiter.poke();
    });
  }

  /** The HelloAck, once it came. */
  get ack(): HelloAck | undefined {
    const frame = this.frames.find((f) => f[0] === FrameKind.HelloAck);
    return frame && decodeHelloAck(frame.subarray(1));
  }

  write(...frames: Buffer[]): void {
    this.socket.write(Buffer.concat(frames));
  }
}

/**
 * Hand-made frames for protocol tests, playing a member or an impostor. listen() makes it the
 * process at a member's registered peer address, so it receives the challenges a real member
 * there would; dial() connects to a transport claiming any id.
 */
class RawPeer {
  readonly challenges: Buffer[] = [];
  #server = net.createServer((socket) => this.#onConnection(socket));
  #sockets = new Set<net.Socket>();

  constructor(readonly waiter: Waiter) {}

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  async dial(port: number, hello: { clusterId: number; from: NodeId; to: NodeId }): Promise<RawDial> {
    const socket = net.connect({ host: '127.0.0.1', port });
    this.#sockets.add(socket);
    const dial = new RawDial(socket, this.waiter);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    dial.write(encodeHello({ ...hello, dataDirId: new Uint8Array(8) }));
    return dial;
  }

  /** Dials as member `from` and proves it with the challenge that reaches this peer's address. */
  async provenDial(port: number, from: NodeId, to: NodeId): Promise<RawDial> {
    const seen = this.challenges.length;
    const dial = await this.dial(port, { clusterId: 7, from, to });
    await this.waiter.until(() => this.challenges.length > seen, 'a challenge at the registered address');
    // A proof that does not match is ignored, not held against the connection.
    dial.write(encodeNonceFrame(FrameKind.Proof, Buffer.alloc(16, 1)), encodeNonceFrame(FrameKind.Proof, this.challenges.at(-1)!));
    await this.waiter.until(() => dial.ack !== undefined, 'the hello acknowledgement');
    assert.equal(dial.ack?.status, 'accepted');
    return dial;
  }

  #onConnection(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('error', () => {});
    const reader = new FrameReader(1 << 20);
    socket.on('data', (chunk: Buffer) =>
      reader.push(chunk, (frame) => {
        if (frame[0] === FrameKind.Challenge) this.challenges.push(Buffer.from(frame.subarray(1)));
        this.waiter.poke();
      }),
    );
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function messageFrame(m: Message, group = 1): Buffer {
  return encodeMessageFrame(group, m);
}

function proposal(from: NodeId, to: NodeId): Message {
  return { type: 'Prop', from, to, term: 0, entries: [{ term: 0, index: 0, type: 0, data: Buffer.from('forged') }] };
}

async function withRawPeer<T>(waiter: Waiter, body: (raw: RawPeer) => Promise<T>): Promise<T> {
  const raw = new RawPeer(waiter);
  try {
    return await body(raw);
  } finally {
    await raw.close();
  }
}

test('garbage on the socket is rejected without harming the receiver', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(2, async ([a, b], waiter) => {
    await withRawPeer(waiter, async (raw) => {
      b!.transport.addPeer(3, await raw.listen());
      const port = b!.transport.address.port;
      const random = seededRandom(99);
      const garbage = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256)));
      const unbound = { clusterId: 7, from: 3, to: 2 };
      const sendAndWaitClose = async (dial: RawDial, bytes: Buffer): Promise<void> => {
        dial.write(bytes);
        await waiter.until(() => dial.closed, 'the receiver to close the connection');
      };
      // Before the handshake: random bytes (the length prefix is far over the handshake limit).
      await sendAndWaitClose(await raw.dial(port, unbound), garbage.subarray(16));
      // After a hello, before the proof: a message, even a well-formed one.
      await sendAndWaitClose(await raw.dial(port, unbound), messageFrame(heartbeat(3, 2, 1)));
      // After the proof: a message frame that does not decode.
      await sendAndWaitClose(await raw.provenDial(port, 3, 2), Buffer.from([0, 0, 0, 4, FrameKind.Message, 1, 99, 1]));
      // After the proof: a frame whose length is over maxFrameBytes.
      await sendAndWaitClose(await raw.provenDial(port, 3, 2), Buffer.from([0xff, 0xff, 0xff, 0xff, FrameKind.Message]));
      // After the proof: a snapshot chunk without a SnapBegin.
      await sendAndWaitClose(await raw.provenDial(port, 3, 2), Buffer.from([0, 0, 0, 3, FrameKind.SnapChunk, 1, 2]));
      assert.equal(b!.transport.stats().inbound.protocolErrors, 5);
      assert.equal(b!.received.length, 0);
      assert.match(b!.transport.stats().inbound.lastError ?? '', /snapshot chunk without SnapBegin/);
      // An HTTP request instead of a hello.
      const http = await raw.dial(port, unbound);
      http.socket.destroy();
      const request = net.connect({ host: '127.0.0.1', port });
      request.on('error', () => {});
      request.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await waiter.until(() => b!.transport.stats().inbound.protocolErrors === 6, 'the HTTP request rejected');
      request.destroy();
    });
    // The receiver still serves real peers.
    b!.transport.addPeer(1, a!.addressText);
    a!.transport.addPeer(2, b!.addressText);
    a!.transport.send([heartbeat(1, 2, 1)]);
    await waiter.until(() => b!.received.length === 1, 'a good message after the garbage');
  });
});

test('an impostor that knows the cluster id and a member id gets no message delivered', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => b!.received.length === 1, 'the real member to be heard');
      await withRawPeer(waiter, async (impostor) => {
        const port = b!.transport.address.port;
        // B challenges member 1 at its registered address; the real member 1 answers on its own
        // connection, where the proof binds nothing. The impostor never sees the nonce.
        const hasty = await impostor.dial(port, { clusterId: 7, from: 1, to: 2 });
        hasty.write(messageFrame(proposal(1, 2)), messageFrame(append(1, 2, 9)), messageFrame({ type: 'TimeoutNow', from: 1, to: 2, term: 9 }));
        await waiter.until(() => hasty.closed, 'the impostor to be cut off');
        assert.match(b!.transport.stats().inbound.lastError ?? '', /before the dialer proved its member id/);
        // One that waits for the acknowledgement is refused at the handshake timeout.
        const patient = await impostor.dial(port, { clusterId: 7, from: 1, to: 2 });
        await waiter.until(() => patient.closed, 'the patient impostor to be refused');
        const ack = patient.ack;
        assert.ok(ack?.status === 'refused');
        assert.match(ack.reason, /did not prove its member id/);
        assertNamesNoId(ack.reason, [1, 2, 7]);
        assert.deepEqual(b!.refusals, [{ kind: 'handshake', reason: 'unproven' }]);
        assert.equal(impostor.challenges.length, 0);
      });
      // Nothing of the impostor's arrived, and the real member's connection survived its claims.
      assert.equal(b!.received.length, 1);
      a!.transport.send([heartbeat(1, 2, 2)]);
      await waiter.until(() => b!.received.length === 2, 'the real member after the impostors');
      assert.deepEqual(b!.received.map((m) => [m.type, m.from]), [['Heartbeat', 1], ['Heartbeat', 1]]);
      assert.equal(a!.transport.stats().peers[2]!.connected, true);
    },
    () => ({ handshakeTimeoutMs: 1000 }),
  );
});

test('members of two protocol versions refuse each other at the hello, and both ends name both versions', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(2, async ([, b], waiter) => {
    // A newer release dials this member: another version byte, and a hello laid out differently after it.
    const socket = net.connect({ host: '127.0.0.1', port: b!.transport.address.port });
    const newer = new RawDial(socket, waiter);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const hello = Buffer.concat([encodeHello({ clusterId: 7, from: 1, to: 2, dataDirId: new Uint8Array(8) }), Buffer.from('a future field')]);
    hello[FRAME_HEADER_BYTES + 4] = PROTOCOL_VERSION + 1;
    newer.write(writeFrameHeader(hello, FrameKind.Hello), messageFrame(heartbeat(1, 2, 1)));
    await waiter.until(() => newer.closed, 'the newer dialer to be refused');
    const told = `the dialer speaks peer protocol version ${PROTOCOL_VERSION + 1}, this member speaks ${PROTOCOL_VERSION}`;
    const ack = newer.ack;
    assert.ok(ack?.status === 'refused');
    assert.ok(ack.reason.startsWith(told), ack.reason);
    assert.ok(b!.transport.stats().inbound.lastError?.startsWith(told));
    assert.deepEqual(b!.refusals, [{ kind: 'handshake', reason: 'version' }]);
    assert.equal(b!.received.length, 0);
  });

  // This member dials a newer one, which answers as this code would, in the frozen refusal layout.
  const hellos: Buffer[] = [];
  const newerListener = net.createServer((socket) => {
    socket.on('error', () => {});
    const reader = new FrameReader(1 << 20);
    socket.on('data', (chunk: Buffer) =>
      reader.push(chunk, (frame) => {
        hellos.push(Buffer.from(frame));
        const reason = `the dialer speaks peer protocol version ${frame[1 + 4]}, this member speaks ${PROTOCOL_VERSION + 1}`;
        socket.end(encodeHelloAck({ status: 'refused', reason }));
      }),
    );
  });
  await new Promise<void>((resolve) => newerListener.listen(0, '127.0.0.1', resolve));
  try {
    await withNodes(1, async ([a], waiter) => {
      a!.transport.addPeer(2, `127.0.0.1:${(newerListener.address() as net.AddressInfo).port}`);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => a!.hasEvent('handshake-refused'), 'the refusal to reach the dialer');
      assert.equal(hellos[0]!.subarray(1, 6).toString('latin1'), `LCHN${String.fromCharCode(PROTOCOL_VERSION)}`, 'a hello starts with the magic and the version');
      assert.match(a!.transport.stats().peers[2]!.lastError ?? '', new RegExp(`speaks peer protocol version ${PROTOCOL_VERSION}, this member speaks ${PROTOCOL_VERSION + 1}$`));
      assert.equal(a!.transport.stats().peers[2]!.connected, false);
    });
  } finally {
    await new Promise<void>((resolve) => newerListener.close(() => resolve()));
  }
});

test('a snapshot announced on a connection not bound to a member is refused before anything is stored', { timeout: TEST_TIMEOUT_MS }, async () => {
  let sinks = 0;
  await withNodes(
    2,
    async ([, b], waiter) => {
      b!.transport.addPeer(1, '127.0.0.1:1');
      await withRawPeer(waiter, async (impostor) => {
        const dial = await impostor.dial(b!.transport.address.port, { clusterId: 7, from: 1, to: 2 });
        const empty: Message = { type: 'Snap', from: 1, to: 2, term: 9, snapshot: { metadata: { index: 50, term: 9, conf: { voters: [1, 2], learners: [] } }, data: new Uint8Array(0) } };
        dial.write(encodeSnapBegin(512 * 1024 * 1024, 1, encodeMessage(empty)));
        await waiter.until(() => dial.closed, 'the impostor to be cut off');
      });
      assert.match(b!.transport.stats().inbound.lastError ?? '', /before the dialer proved its member id/);
      assert.equal(sinks, 0, 'no sink was opened');
      assert.equal(b!.received.length, 0);
    },
    (id) => (id === 2 ? { receiveSnapshot: () => assert.fail(`sink ${++sinks} opened`) } : {}),
  );
});

test('a message on a bound connection that names another sender or receiver is dropped and counted', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(2, async ([, b], waiter) => {
    await withRawPeer(waiter, async (raw) => {
      b!.transport.addPeer(3, await raw.listen());
      const dial = await raw.provenDial(b!.transport.address.port, 3, 2);
      dial.write(messageFrame(proposal(1, 2)), messageFrame(heartbeat(3, 9, 1)), messageFrame(heartbeat(3, 2, 2)));
      await waiter.until(() => b!.received.length === 1, 'the honest message');
      assert.deepEqual(b!.received.map((m) => [m.type, m.from]), [['Heartbeat', 3]]);
      assert.equal(b!.transport.stats().inbound.mismatchedMessagesDropped, 2);
      assert.deepEqual(b!.refusals, [
        { kind: 'message', reason: 'from_mismatch' },
        { kind: 'message', reason: 'to_mismatch' },
      ]);
      assert.equal(dial.closed, false);
    });
  });
});

test('a member of the previous release (peer protocol version 3) is refused at the hello with both versions named', { timeout: TEST_TIMEOUT_MS }, async () => {
  assert.equal(PROTOCOL_VERSION, 4);
  await withNodes(2, async ([, b], waiter) => {
    const socket = net.connect({ host: '127.0.0.1', port: b!.transport.address.port });
    const old = new RawDial(socket, waiter);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    // Version 3's hello has this layout too; its messages carry no group id.
    const hello = encodeHello({ clusterId: 7, from: 1, to: 2, dataDirId: new Uint8Array(8) });
    hello[FRAME_HEADER_BYTES + 4] = 3;
    old.write(hello, writeFrameHeader(encodeMessage(heartbeat(1, 2, 1), FRAME_HEADER_BYTES), FrameKind.Message));
    await waiter.until(() => old.closed, 'the old dialer to be refused');
    const ack = old.ack;
    assert.ok(ack?.status === 'refused');
    assert.equal(
      ack.reason,
      'the dialer speaks peer protocol version 3, this member speaks 4: run lichen releases that speak the same version on every member (README, "Upgrades")',
    );
    assert.deepEqual(b!.refusals, [{ kind: 'handshake', reason: 'version' }]);
    assert.equal(b!.received.length, 0);
  });
});

test('messages carry their group: a sender or receiver not hosted on the bound node or here is dropped and counted', { timeout: TEST_TIMEOUT_MS }, async () => {
  // Node 3 hosts member 31 of group 5 and member 3 of group 1; node 2 (under test) hosts member 22 of group 5.
  const hosts = new Map([['5:31', 3], ['5:22', 2], ['5:41', 4]]);
  await withNodes(
    2,
    async ([, b], waiter) => {
      await withRawPeer(waiter, async (raw) => {
        b!.transport.addPeer(3, await raw.listen());
        const dial = await raw.provenDial(b!.transport.address.port, 3, 2);
        dial.write(
          messageFrame(heartbeat(31, 22, 1), 5),
          // Member 41 of group 5 lives on node 4: node 3 cannot speak for it.
          messageFrame(heartbeat(41, 22, 1), 5),
          // Member 31 exists in group 5 only.
          messageFrame(heartbeat(31, 22, 1), 6),
          // Member 31 on node 3 writes to member 2, which is not hosted here in group 5.
          messageFrame(heartbeat(31, 2, 1), 5),
          messageFrame(heartbeat(3, 2, 7), 1),
        );
        await waiter.until(() => b!.received.length === 2, 'the honest messages');
        assert.deepEqual(b!.received.map((m) => [m.from, m.to]), [[31, 22], [3, 2]]);
        assert.deepEqual(b!.groups, [5, 1]);
        assert.equal(b!.transport.stats().inbound.mismatchedMessagesDropped, 3);
        assert.deepEqual(b!.refusals.map((r) => r.reason), ['from_mismatch', 'from_mismatch', 'to_mismatch']);
        // A frame with group id 0 breaks the protocol: the connection closes.
        dial.write(messageFrame(heartbeat(31, 22, 1), 1).fill(0, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 1));
        await waiter.until(() => dial.closed, 'the connection to close');
        assert.match(b!.transport.stats().inbound.lastError ?? '', /group id 0 is not a positive 32-bit integer/);
      });
    },
    (id) => (id === 2 ? { memberNode: (group, member) => (group === 1 ? member : hosts.get(`${group}:${member}`)) } : {}),
  );
});

test('a beat is one frame with the heartbeats of many groups, or none; it may carry nothing else', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      const heartbeats = Array.from({ length: 300 }, (_, i) => ({ group: i + 1, message: heartbeat(1, 2, i) }));
      a!.transport.sendBeat(2, heartbeats);
      a!.transport.sendBeat(2, []);
      await waiter.until(() => b!.beats.length === 2, 'both beats');
      assert.deepEqual(b!.beats, [1, 1]);
      assert.equal(b!.received.length, 300);
      assert.deepEqual(b!.groups, heartbeats.map((h) => h.group));
      assert.equal(a!.transport.stats().peers[2]!.framesSent, 2);
      await withRawPeer(waiter, async (raw) => {
        b!.transport.addPeer(3, await raw.listen());
        const dial = await raw.provenDial(b!.transport.address.port, 3, 2);
        const [beat] = encodeBeatFrames([{ group: 1, message: proposal(3, 2) }], 1 << 20);
        dial.write(beat!);
        await waiter.until(() => dial.closed, 'the connection to close');
        assert.match(b!.transport.stats().inbound.lastError ?? '', /a beat carries a Prop message/);
      });
    },
    (id) => (id === 2 ? { memberNode: (_group, member) => member } : {}),
  );
});

test('a dialer that is not a current member is refused, and a removed member is cut off', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => a!.hasEvent('handshake-refused'), 'refusal of a stranger');
      assert.match(a!.transport.stats().peers[2]!.lastError ?? '', /the dialer is not a current member of this cluster$/);
      assert.deepEqual(b!.refusals, [{ kind: 'handshake', reason: 'not_member' }]);
      assert.deepEqual(a!.membershipRefusals[0], { peer: 2, refusal: 'not_member', reason: 'the dialer is not a current member of this cluster' });
      b!.transport.addPeer(1, a!.addressText);
      await waiter.until(() => b!.received.length === 1, 'the heartbeat once B knows A');
      b!.transport.removePeer(1);
      await waiter.until(() => b!.refusals.length === 2, 'the removed member refused on its redial');
      a!.transport.send([heartbeat(1, 2, 2)]);
      assert.equal(b!.received.length, 1);
    },
    () => ({ reconnectBackoffMs: { min: 5, max: 50 } }),
  );
});

test('close() stops reconnecting and later sends are ignored', { timeout: TEST_TIMEOUT_MS }, async () => {
  const port = await closedPort();
  const waiter = new Waiter();
  const a = new Node(1, waiter, { reconnectBackoffMs: { min: 1, max: 2 } });
  await a.transport.start();
  a.transport.addPeer(2, `127.0.0.1:${port}`);
  await waiter.until(() => a.unreachable.length >= 2, 'a few failed dials');
  await a.transport.close();
  const reportsAtClose = a.unreachable.length;
  a.transport.send([heartbeat(1, 2, 1)]);
  assert.equal(a.unreachable.length, reportsAtClose);
  assert.deepEqual(a.transport.stats().peers, {});
});

test('a snapshot queued for a peer that cannot be reached is reported failed', { timeout: TEST_TIMEOUT_MS }, async () => {
  const port = await closedPort();
  await withNodes(1, async ([a], waiter) => {
    a!.transport.addPeer(2, `127.0.0.1:${port}`);
    a!.transport.send([
      { type: 'Snap', from: 1, to: 2, term: 1, snapshot: { metadata: { index: 3, term: 1, conf: { voters: [1, 2], learners: [] } }, data: new Uint8Array(1000) } },
      heartbeat(1, 2, 1),
    ]);
    await waiter.until(() => a!.snapshotsSent.length === 1, 'snapshot failure report');
    assert.deepEqual(a!.snapshotsSent, [{ peer: 2, ok: false }]);
    // The heartbeat stays queued for when the peer comes back; the stale snapshot does not.
    assert.equal(a!.transport.stats().peers[2]!.queued, 1);
  });
});

test('updatePeer redirects queued traffic to the new address', { timeout: TEST_TIMEOUT_MS }, async () => {
  const port = await closedPort();
  await withNodes(2, async ([a, b], waiter) => {
    b!.transport.addPeer(1, a!.addressText);
    a!.transport.addPeer(2, `127.0.0.1:${port}`);
    a!.transport.send([heartbeat(1, 2, 1)]);
    a!.transport.updatePeer(2, b!.addressText);
    await waiter.until(() => b!.received.length === 1, 'heartbeat at the new address');
    assert.equal(a!.transport.stats().peers[2]!.address, b!.addressText);
  });
});

// ---- Peer TLS ---------------------------------------------------------------------------------

interface TestCerts {
  ca: PemPair;
  members: Map<NodeId, PemPair>;
  /** Signed by the cluster's CA, but nobody's member certificate. */
  outsider: PemPair;
  /** From another CA altogether. */
  stranger: PemPair;
}

let testCerts: Promise<TestCerts> | undefined;

/** Certificates for members 1..3 (common name "member"), made once per file run. */
function certs(): Promise<TestCerts> {
  return (testCerts ??= (async () => {
    const hosts = ['127.0.0.1', 'localhost'];
    const ca = await createCertificateAuthority('test CA', 1);
    const issue = (authority: PemPair, commonName: string) => issueCertificate(authority, { commonName, hosts, usage: 'server-and-client', validDays: 1 });
    const members = new Map<NodeId, PemPair>();
    for (const id of [1, 2, 3]) members.set(id, await issue(ca, 'member'));
    const otherCa = await createCertificateAuthority('other CA', 1);
    return { ca, members, outsider: await issue(ca, 'outsider'), stranger: await issue(otherCa, 'member') };
  })());
}

function material(pair: PemPair, ca: PemPair | undefined, overrides: Partial<TlsMaterial> = {}): TlsMaterial {
  return {
    cert: Buffer.from(pair.cert),
    key: Buffer.from(pair.key),
    ca: ca && Buffer.from(ca.cert),
    requireClientCert: ca !== undefined,
    commonNameIsUser: false,
    selfSigned: ca === undefined,
    allowedCn: '',
    ...overrides,
  };
}

/**
 * Dials over TLS with `options`, says Hello, and sends a forged proposal at once; resolves when
 * the listener closes the connection with whether it ever accepted the claim.
 */
async function tlsForgery(port: number, options: tls.ConnectionOptions, waiter: Waiter): Promise<{ accepted: boolean }> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  const dial = new RawDial(socket, waiter);
  socket.on('secureConnect', () => dial.write(encodeHello({ clusterId: 7, from: 1, to: 2, dataDirId: new Uint8Array(8) }), messageFrame(proposal(1, 2))));
  await waiter.until(() => dial.closed, 'the listener to close the TLS connection');
  return { accepted: dial.ack?.status === 'accepted' };
}

test('peers with certificates from one CA talk over TLS; dialers without a valid certificate are refused', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { ca, members, outsider, stranger } = await certs();
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => b!.received.length === 1, 'a heartbeat over TLS');
      const port = b!.transport.address.port;
      const plain = await withRawPeer(waiter, async (raw) => {
        const dial = await raw.dial(port, { clusterId: 7, from: 1, to: 2 });
        dial.write(messageFrame(proposal(1, 2)));
        await waiter.until(() => dial.closed, 'the plain dialer to be cut off');
        return dial.ack;
      });
      assert.equal(plain, undefined);
      assert.deepEqual(await tlsForgery(port, {}, waiter), { accepted: false });
      assert.deepEqual(await tlsForgery(port, { cert: stranger.cert, key: stranger.key }, waiter), { accepted: false });
      assert.deepEqual(b!.refusals, [1, 2, 3].map(() => ({ kind: 'handshake', reason: 'tls' })));
      // A certificate of the cluster's CA gets through TLS, but not past the member-id binding.
      assert.deepEqual(await tlsForgery(port, { cert: outsider.cert, key: outsider.key }, waiter), { accepted: false });
      assert.match(b!.transport.stats().inbound.lastError ?? '', /before the dialer proved its member id/);
      a!.transport.send([heartbeat(1, 2, 2)]);
      await waiter.until(() => b!.received.length === 2, 'the real member after the forgeries');
      assert.deepEqual(b!.received.map((m) => m.type), ['Heartbeat', 'Heartbeat']);
    },
    (id) => ({ tls: peerTlsOptions(material(members.get(id)!, ca)) }),
  );
});

test('an allowed common name is required of the certificates at both ends', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { ca, members, outsider } = await certs();
  await withNodes(
    3,
    async ([a, b, c], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => b!.received.length === 1, 'members with the allowed name');
      // Member 3 presents the outsider's certificate: refused when it dials, and when it is dialed.
      c!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(3, c!.addressText);
      await waiter.until(() => b!.refusals.some((r) => r.reason === 'tls'), 'B to refuse C');
      assert.match(b!.transport.stats().inbound.lastError ?? '', /common name "outsider", not the allowed "member"/);
      b!.transport.send([heartbeat(2, 3, 1)]);
      await waiter.until(() => /not the allowed "member"/.test(b!.transport.stats().peers[3]!.lastError ?? ''), 'B to refuse dialing C');
      assert.equal(c!.received.length, 0);
    },
    (id) => ({ tls: peerTlsOptions(material(id === 3 ? outsider : members.get(id)!, ca, { allowedCn: 'member' })) }),
  );
});

test('auto TLS: self-signed certificates without a chain check, and the member-id binding still applies', { timeout: TEST_TIMEOUT_MS }, async () => {
  const selfSigned = await Promise.all([1, 2].map(() => selfSignedCertificate({ commonName: 'lichen', hosts: ['127.0.0.1'], usage: 'server-and-client', validDays: 1 })));
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => b!.received.length === 1, 'a heartbeat over auto TLS');
      assert.deepEqual(await tlsForgery(b!.transport.address.port, {}, waiter), { accepted: false });
      assert.match(b!.transport.stats().inbound.lastError ?? '', /before the dialer proved its member id/);
      assert.equal(b!.received.length, 1);
    },
    (id) => ({ tls: peerTlsOptions(material(selfSigned[id - 1]!, undefined)) }),
  );
});

test('a member with peer TLS and one without are told why they cannot talk', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { ca, members } = await certs();
  await withNodes(
    2,
    async ([a, b], waiter) => {
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      // B (TLS) dials A (plain); A (plain) dials B (TLS).
      await waiter.until(() => /the dialer speaks TLS/.test(a!.transport.stats().inbound.lastError ?? ''), 'A to name the mismatch');
      await waiter.until(() => /does its peer port use TLS and ours not/.test(a!.transport.stats().peers[2]!.lastError ?? ''), 'A to guess why B does not answer');
    },
    (id) => (id === 2 ? { tls: peerTlsOptions(material(members.get(2)!, ca)) } : {}),
  );
});

test('both ends of a connection admit the other by its data directory id; a refused dialer learns it is superseded', { timeout: TEST_TIMEOUT_MS }, async () => {
  const ids: Record<number, Uint8Array> = { 1: Uint8Array.of(1, 1, 1, 1, 1, 1, 1, 1), 2: Uint8Array.of(2, 2, 2, 2, 2, 2, 2, 2) };
  const asked: { by: NodeId; peer: NodeId; dataDirId: number[] }[] = [];
  const superseded: { by: NodeId; peer: NodeId; reason: string }[] = [];
  /** Member 2 knows member 1 by another data directory once `stale` is set. */
  let stale = false;
  let poke = (): void => {};
  await withNodes(
    2,
    async ([a, b], waiter) => {
      poke = () => waiter.poke();
      a!.transport.addPeer(2, b!.addressText);
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.send([heartbeat(1, 2, 1)]);
      await waiter.until(() => b!.received.length === 1, 'B to receive the heartbeat');
      assert.deepEqual(
        [...new Set(asked.map((x) => `${x.by}<${x.peer}:${x.dataDirId[0]}`))].sort(),
        ['1<2:2', '2<1:1'],
        'each end admitted the other by the id its handshake named',
      );

      // Member 1 comes back with another data directory: member 2 refuses it, member 1 is told.
      stale = true;
      b!.transport.removePeer(1);
      b!.transport.addPeer(1, a!.addressText);
      a!.transport.removePeer(2);
      a!.transport.addPeer(2, b!.addressText);
      a!.transport.send([heartbeat(1, 2, 2)]);
      await waiter.until(() => superseded.length > 0, 'A to learn that B refuses its data directory');
      assert.equal(superseded[0]!.by, 1);
      assert.equal(superseded[0]!.peer, 2);
      assert.ok(b!.refusals.some((r) => r.kind === 'handshake' && r.reason === 'superseded'));
      assert.equal(b!.received.length, 1, 'nothing from the refused data directory reached raft');
    },
    (id) => ({
      dataDirId: ids[id],
      admitPeer: async (peer, dataDirId) => {
        asked.push({ by: id, peer, dataDirId: [...dataDirId] });
        poke();
        return id === 2 && stale ? 'known by another data directory' : undefined;
      },
      onSuperseded: (peer, reason) => {
        superseded.push({ by: id, peer, reason });
        poke();
      },
    }),
  );
});
