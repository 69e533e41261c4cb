import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, NodeId } from '../raft/types.js';
import { MemoryNetwork, MemoryTransport } from './memory.js';
import type { TransportOptions } from './tcp.js';
import { ALL_MESSAGE_TYPES, MessageGenerator, Waiter, plain, seededRandom } from './testing.js';

const TEST_TIMEOUT_MS = 10_000;

class Node {
  readonly received: Message[] = [];
  readonly unreachable: NodeId[] = [];
  readonly snapshotsSent: { peer: NodeId; ok: boolean }[] = [];
  readonly events: string[] = [];
  readonly transport: MemoryTransport;

  constructor(
    readonly id: NodeId,
    network: MemoryNetwork,
    waiter: Waiter,
    overrides: Partial<TransportOptions> = {},
  ) {
    const poke = () => waiter.poke();
    this.transport = new MemoryTransport({
      network,
      id,
      clusterId: 1,
      listen: { host: 'mem', port: 0 },
      onMessage: (m) => (this.received.push(m), poke()),
      onUnreachable: (peer) => (this.unreachable.push(peer), poke()),
      onSnapshotSent: (peer, ok) => (this.snapshotsSent.push({ peer, ok }), poke()),
      logger: (event) => (this.events.push(event), poke()),
      ...overrides,
    });
  }
}

/** Three started nodes, all knowing each other. */
async function cluster(network: MemoryNetwork, waiter: Waiter, overrides: Partial<TransportOptions> = {}): Promise<Node[]> {
  const nodes = [1, 2, 3].map((id) => new Node(id, network, waiter, overrides));
  for (const node of nodes) await node.transport.start();
  for (const node of nodes) {
    for (const other of nodes) {
      if (other !== node) node.transport.addPeer(other.id, `mem:${other.transport.address.port}`);
    }
  }
  return nodes;
}

function heartbeat(from: NodeId, to: NodeId, commit: number): Message {
  return { type: 'Heartbeat', from, to, term: 1, commit, context: new Uint8Array(0) };
}

test('messages are delivered asynchronously, in order, as copies', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiter = new Waiter();
  const [a, b] = await cluster(new MemoryNetwork(), waiter);
  const generate = new MessageGenerator(seededRandom(5));
  const sent = ALL_MESSAGE_TYPES.map((type) => ({ ...generate.message(type), from: 1, to: 2 }) as Message);
  a!.transport.send(sent);
  assert.equal(b!.received.length, 0, 'delivery must not happen inside send()');
  await waiter.until(() => b!.received.length === sent.length, 'all variants');
  assert.deepEqual(b!.received.map(plain), sent.map(plain));
  assert.notEqual(b!.received[0], sent[0]);
  assert.ok(a!.transport.stats().peers[2]!.sentBytes > 0);
});

test('a partition drops traffic between the sides until healed', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiter = new Waiter();
  const network = new MemoryNetwork({ observer: () => waiter.poke() });
  const [a, b, c] = await cluster(network, waiter);
  network.partition([1], [2, 3]);
  a!.transport.send([heartbeat(1, 2, 1), heartbeat(1, 3, 1)]);
  b!.transport.send([heartbeat(2, 3, 1), heartbeat(2, 1, 1)]);
  await waiter.until(() => c!.received.length === 1, 'traffic inside the majority side');
  await waiter.until(() => network.dropped === 3, 'the three cross-partition messages dropped');
  assert.equal(a!.received.length, 0);
  assert.equal(b!.received.length, 0);
  assert.equal(a!.transport.stats().peers[2]!.connected, false);
  network.heal();
  a!.transport.send([heartbeat(1, 2, 2)]);
  await waiter.until(() => b!.received.length === 1, 'traffic after healing');
});

test('one-way cuts, isolation, filters and a seeded drop rate', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiter = new Waiter();
  const network = new MemoryNetwork({ seed: 11, observer: () => waiter.poke() });
  const [a, b, c] = await cluster(network, waiter);
  network.cut(1, 2);
  a!.transport.send([heartbeat(1, 2, 1)]);
  b!.transport.send([heartbeat(2, 1, 1)]);
  await waiter.until(() => a!.received.length === 1, 'the uncut direction');
  assert.equal(b!.received.length, 0);
  network.heal();

  network.isolate(3);
  a!.transport.send([heartbeat(1, 3, 1)]);
  c!.transport.send([heartbeat(3, 1, 1)]);
  await waiter.until(() => network.dropped === 1 + 2, 'isolated traffic dropped (after the one cut message)');
  network.heal();

  network.setFilter((m) => m.type !== 'Heartbeat');
  a!.transport.send([heartbeat(1, 2, 2), { type: 'TimeoutNow', from: 1, to: 2, term: 1 }]);
  await waiter.until(() => b!.received.length === 1, 'the filtered-in message');
  assert.equal(b!.received[0]!.type, 'TimeoutNow');
  network.heal();

  network.setDropRate(0.5);
  const before = b!.received.length;
  const seenBefore = network.delivered + network.dropped;
  a!.transport.send(Array.from({ length: 1000 }, (_, i) => heartbeat(1, 2, i)));
  await waiter.until(() => network.delivered + network.dropped === seenBefore + 1000, 'the lossy batch');
  const got = b!.received.length - before;
  assert.ok(got > 400 && got < 600, `about half delivered, got ${got}`);
});

test('a full queue drops and reports unreachable; an unbound address reports unreachable', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiter = new Waiter();
  const network = new MemoryNetwork();
  const a = new Node(1, network, waiter, { sendQueueMax: 3 });
  await a.transport.start();
  a.transport.addPeer(2, 'mem:999');
  a.transport.send(Array.from({ length: 5 }, (_, i) => heartbeat(1, 2, i)));
  assert.deepEqual(a.unreachable, [2, 2]);
  assert.equal(a.transport.stats().peers[2]!.dropped, 2);
  await waiter.until(() => a.unreachable.length === 5, 'the queued three fail to an unbound address');
  assert.match(a.transport.stats().peers[2]!.lastError ?? '', /nobody listens at mem:999/);
});

test('another cluster or a stale member address is refused on both sides', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiter = new Waiter();
  const network = new MemoryNetwork();
  const a = new Node(1, network, waiter);
  const b = new Node(2, network, waiter, { clusterId: 2 });
  const c = new Node(3, network, waiter);
  for (const node of [a, b, c]) await node.transport.start();
  a.transport.addPeer(2, `mem:${b.transport.address.port}`);
  a.transport.addPeer(4, `mem:${c.transport.address.port}`);
  a.transport.send([heartbeat(1, 2, 1), heartbeat(1, 4, 1)]);
  await waiter.until(() => a.unreachable.length === 2, 'both refused');
  assert.match(a.transport.stats().peers[2]!.lastError ?? '', /member 1 belongs to cluster 1, but member 2 belongs to cluster 2/);
  assert.match(a.transport.stats().peers[4]!.lastError ?? '', /member 1 dialed member 4, but this address is member 3/);
  assert.equal(b.transport.stats().inbound.rejected, 1);
  assert.ok(b.events.includes('handshake-rejected') && a.events.includes('handshake-refused'));
  assert.equal(b.received.length + c.received.length, 0);
});

test('snapshots report sent on delivery and failed when lost', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiter = new Waiter();
  const network = new MemoryNetwork();
  const [a, b] = await cluster(network, waiter);
  const snap: Message = {
    type: 'Snap',
    from: 1,
    to: 2,
    term: 2,
    snapshot: { metadata: { index: 9, term: 2, conf: { voters: [1, 2, 3], learners: [] } }, data: Buffer.alloc(1000, 7) },
  };
  a!.transport.send([snap]);
  await waiter.until(() => a!.snapshotsSent.length === 1, 'first snapshot');
  assert.deepEqual(a!.snapshotsSent, [{ peer: 2, ok: true }]);
  assert.deepEqual(plain(b!.received[0]), plain(snap));
  network.cut(1, 2);
  a!.transport.send([snap]);
  await waiter.until(() => a!.snapshotsSent.length === 2, 'second snapshot');
  assert.deepEqual(a!.snapshotsSent[1], { peer: 2, ok: false });
});

test('after close nothing is delivered to or from the node', { timeout: TEST_TIMEOUT_MS }, async () => {
  const waiter = new Waiter();
  const network = new MemoryNetwork();
  const [a, b] = await cluster(network, waiter);
  await b!.transport.close();
  a!.transport.send([heartbeat(1, 2, 1)]);
  await waiter.until(() => a!.unreachable.includes(2), 'B unreachable after close');
  b!.transport.send([heartbeat(2, 1, 1)]);
  assert.equal(b!.received.length, 0);
  assert.deepEqual(b!.transport.stats().peers, {});
});
