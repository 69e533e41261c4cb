import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { encodeHello } from '../transport/frame.js';
import { partitionGroups } from './network.js';
import { PeerProxy, readHelloPair } from './proxy.js';
import { Prng } from '../random.js';

const names = ['n1', 'n2', 'n3', 'n4', 'n5'];
const pick = (seed: number) => {
  const prng = new Prng(seed);
  return (n: number) => prng.int(n);
};

test('majority/minority splits five members 3 | 2 and three members 2 | 1', () => {
  const five = partitionGroups('majority-minority', names, pick(1), undefined);
  assert.deepEqual(five.groups.map((g) => g.length), [3, 2]);
  const three = partitionGroups('majority-minority', names.slice(0, 3), pick(2), undefined);
  assert.deepEqual(three.groups.map((g) => g.length), [2, 1]);
  assert.deepEqual([...five.groups.flat()].sort(), names);
});

test('isolate-leader puts the leader alone', () => {
  const { groups } = partitionGroups('isolate-leader', names, pick(3), 'n4');
  assert.deepEqual(groups[0], ['n4']);
  assert.equal(groups[1]!.length, 4);
});

test('a bridge member links two halves that cannot see each other', () => {
  const { groups, links } = partitionGroups('bridge', names, pick(4), undefined);
  const bridge = groups[0]![0]!;
  assert.equal(links.length, 4);
  assert.ok(links.every(([a]) => a === bridge));
  assert.deepEqual([...groups.flat()].sort(), names);
});

test('the hello frame names the direction of a peer connection', () => {
  const hello = encodeHello({ clusterId: 77, from: 5, to: 9, dataDirId: new Uint8Array(8) });
  assert.equal(readHelloPair(hello.subarray(0, 3)), 'incomplete');
  assert.equal(readHelloPair(hello.subarray(0, hello.length - 1)), 'incomplete');
  assert.deepEqual(readHelloPair(hello), { from: 5, to: 9 });
  assert.equal(readHelloPair(Buffer.from('GET / HTTP/1.1\r\n\r\n')), 'invalid');
});

async function echoServer(): Promise<net.Server> {
  const server = net.createServer((socket) => socket.pipe(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** A connection through the proxy that sent a hello from `from`, then `payload`; collects what comes back. */
async function dial(port: number, from: number, payload: string): Promise<{ socket: net.Socket; echo: () => string; echoed(length: number): Promise<void>; closed: Promise<unknown> }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const closed = once(socket, 'close');
  const hello = encodeHello({ clusterId: 1, from, to: 2, dataDirId: new Uint8Array(8) });
  let received = Buffer.alloc(0);
  let waiting: { length: number; resolve: () => void } | undefined;
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    if (waiting !== undefined && received.length >= hello.length + waiting.length) waiting.resolve();
  });
  socket.write(Buffer.concat([hello, Buffer.from(payload)]));
  return {
    socket,
    echo: () => received.subarray(Math.min(received.length, hello.length)).toString(),
    // Resolves once the hello and `length` bytes after it came back (no timer: the echo server answers).
    echoed: (length) => new Promise<void>((resolve) => {
      if (received.length >= hello.length + length) resolve();
      else waiting = { length, resolve };
    }),
    closed,
  };
}

test('the proxy passes allowed directions, black-holes blocked ones and cuts them when the policy changes', async () => {
  const server = await echoServer();
  const blocked = new Set<number>();
  // The proxy asks the policy as it reads a connection's hello; a test waits for that, not for a timer.
  const asked = new Map<number, () => void>();
  const askedAbout = (from: number): Promise<void> => new Promise((resolve) => asked.set(from, resolve));
  const proxy = new PeerProxy({
    target: { host: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    allows: (p) => {
      asked.get(p.from)?.();
      return !blocked.has(p.from);
    },
  });
  const port = await proxy.start();
  try {
    const allowed = await dial(port, 1, 'ping');
    await allowed.echoed(4);
    assert.equal(allowed.echo(), 'ping');
    allowed.socket.destroy();

    // A blocked direction is held open and its bytes dropped, until the block ends and it is cut.
    blocked.add(3);
    const decided = askedAbout(3);
    const held = await dial(port, 3, 'ping');
    await decided;
    assert.equal(proxy.blockedConnections, 1);
    assert.equal(held.socket.closed, false);
    blocked.delete(3);
    proxy.refresh();
    await held.closed;
    assert.equal(held.echo(), '');

    // A live connection is cut when its direction becomes blocked.
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(encodeHello({ clusterId: 1, from: 4, to: 2, dataDirId: new Uint8Array(8) }));
    await once(socket, 'data');
    blocked.add(4);
    const closedPromise = once(socket, 'close');
    proxy.refresh();
    await closedPromise;
    assert.equal(proxy.blockedConnections, 2);
  } finally {
    await proxy.close();
    server.close();
  }
});
