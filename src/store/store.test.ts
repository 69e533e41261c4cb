// Stores in one process: three nodes, each hosting a replica of several groups, over the
// in-memory transport and one virtual clock; in-memory storage under the real replica and MVCC.
// Member ids differ from node ids (member 100·node + group), so routing by group is really tested.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GroupId } from '../ids.js';
import { createSilentLogger } from '../log.js';
import type { NodeId } from '../raft/index.js';
import { VirtualEnvironment, type Replica } from '../replica/index.js';
import { MemoryNetwork, MemoryTransport } from '../transport/index.js';
import { Store } from './store.js';
import { bootstrapMemoryStorage, testReplicaSettings } from './testing.js';

const TICK_MS = 100;
const ELECTION_TICKS = 10;
const bytes = (text: string): Uint8Array => Buffer.from(text);

const memberOf = (node: NodeId, group: GroupId): NodeId => node * 100 + group;
const nodeOf = (_group: GroupId, member: NodeId): NodeId => Math.floor(member / 100);
const address = (node: NodeId): string => `node-${node}:1`;

class Cluster {
  readonly environment = new VirtualEnvironment(3);
  readonly network = new MemoryNetwork();
  readonly stores = new Map<NodeId, Store>();
  readonly transports = new Map<NodeId, MemoryTransport>();

  private constructor(
    readonly nodes: NodeId[],
    readonly groups: GroupId[],
  ) {}

  static async start(nodes: NodeId[], groups: GroupId[], options: { quiescence?: boolean } = {}): Promise<Cluster> {
    const cluster = new Cluster(nodes, groups);
    for (const node of nodes) {
      const store = new Store({
        nodeId: node,
        transport: (events) => {
          const transport = new MemoryTransport({ ...events, network: cluster.network, id: node, clusterId: 7, listen: { host: `node-${node}`, port: 1 } });
          cluster.transports.set(node, transport);
          return transport;
        },
        openStorage: (group) => bootstrapMemoryStorage(nodes.map((n) => ({ id: memberOf(n, group), peerAddress: address(n) }))),
        replicaSettings: (group) => testReplicaSettings(group, memberOf(node, group)),
        memberNode: nodeOf,
        environment: cluster.environment,
        tickMs: TICK_MS,
        electionTicks: ELECTION_TICKS,
        quiescence: options.quiescence,
        logger: createSilentLogger(),
      });
      for (const group of groups) (await store.openGroup(group)).syncPeers();
      await store.start();
      for (const group of groups) store.replica(group)!.start();
      cluster.stores.set(node, store);
    }
    return cluster;
  }

  replica(node: NodeId, group: GroupId): Replica {
    return this.stores.get(node)!.replica(group)!;
  }

  leader(group: GroupId): Replica | undefined {
    return [...this.stores.values()].map((store) => store.replica(group)!).find((replica) => replica.isLeader());
  }

  /** Moves virtual time a tick at a time, letting messages and Readies run in between. */
  async run(ms: number): Promise<void> {
    for (let elapsed = 0; elapsed < ms; elapsed += TICK_MS) {
      this.environment.advance(TICK_MS);
      await settle();
    }
  }

  async until(done: () => boolean, withinMs: number, what: string): Promise<number> {
    let elapsed = 0;
    for (; !done(); elapsed += TICK_MS) {
      assert.ok(elapsed < withinMs, `${what}: not within ${withinMs} ms of virtual time`);
      await this.run(TICK_MS);
    }
    return elapsed;
  }

  async drive<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    const watched = work.finally(() => (settled = true));
    watched.catch(() => undefined);
    await this.until(() => settled, 10_000, 'the request');
    return watched;
  }

  async electAll(): Promise<void> {
    await this.until(() => this.groups.every((group) => this.leader(group) !== undefined), 20_000, 'a leader in every group');
  }

  framesSent(from: NodeId, to: NodeId): number {
    return this.transports.get(from)!.stats().peers[to]!.framesSent;
  }

  messagesReceived(node: NodeId): number {
    return this.transports.get(node)!.stats().inbound.messagesReceived;
  }

  async close(): Promise<void> {
    for (const store of this.stores.values()) await store.close();
  }
}

/** Lets delivered messages and the loops' Readies run (the in-memory network delivers on the next turn). */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 8; turn++) await new Promise((resolve) => setImmediate(resolve));
}

function valueAt(replica: Replica, key: string): string | undefined {
  const kv = replica.store.range({ key: bytes(key) }).kvs[0];
  return kv && Buffer.from(kv.value).toString();
}

test('each group elects its own leader and its writes reach only its own replicas', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2, 3]);
  try {
    await cluster.electAll();
    for (const group of cluster.groups) {
      await cluster.drive(cluster.leader(group)!.propose({ type: 'put', request: { key: bytes('k'), value: bytes(`group ${group}`) } }));
    }
    await cluster.run(5 * TICK_MS);
    for (const node of cluster.nodes) {
      for (const group of cluster.groups) {
        const replica = cluster.replica(node, group);
        assert.equal(replica.memberId, memberOf(node, group));
        assert.equal(valueAt(replica, 'k'), `group ${group}`, `node ${node}, group ${group}`);
        assert.equal(nodeOf(group, replica.leaderId), nodeOf(group, cluster.leader(group)!.memberId));
      }
    }
  } finally {
    await cluster.close();
  }
});

test('one frame per tick per peer process carries the heartbeats of every group (quiescence off)', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2, 3, 4, 5], { quiescence: false });
  try {
    await cluster.electAll();
    await cluster.run(5 * TICK_MS);
    const frames = cluster.framesSent(1, 2);
    const received = cluster.messagesReceived(2);
    const ticks = 20;
    await cluster.run(ticks * TICK_MS);
    assert.equal(cluster.framesSent(1, 2) - frames, ticks, 'one Beat per tick, whatever the number of groups');
    // Node 2 hears a heartbeat (or a response) of each of the 5 groups every tick, from node 1 and node 3.
    assert.ok(cluster.messagesReceived(2) - received >= ticks * 5, `${cluster.messagesReceived(2) - received} messages in ${ticks} ticks`);
    assert.equal(cluster.stores.get(1)!.stats.replicaTicks > 0, true);
  } finally {
    await cluster.close();
  }
});

test('an idle group quiesces: then only the stores beat; a write wakes it and it goes quiet again', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2, 3]);
  try {
    await cluster.electAll();
    await cluster.until(() => cluster.nodes.every((node) => cluster.groups.every((group) => cluster.replica(node, group).quiesced)), 5_000, 'every group to quiesce');
    // The answers to the quiesce heartbeats leave with the next tick's beats.
    await cluster.run(2 * TICK_MS);
    const frames = cluster.framesSent(1, 2);
    const received = cluster.nodes.map((node) => cluster.messagesReceived(node));
    const replicaTicks = [...cluster.stores.values()].map((store) => store.stats.replicaTicks);
    const ticks = 10 * ELECTION_TICKS;
    await cluster.run(ticks * TICK_MS);
    assert.equal(cluster.framesSent(1, 2) - frames, ticks, 'the liveness beat, one per tick');
    assert.deepEqual(cluster.nodes.map((node) => cluster.messagesReceived(node)), received, 'no raft message at all');
    assert.deepEqual([...cluster.stores.values()].map((store) => store.stats.replicaTicks), replicaTicks, 'no replica ticked');
    for (const group of cluster.groups) assert.ok(cluster.leader(group), `group ${group} still has its leader`);

    const leader = cluster.leader(2)!;
    await cluster.drive(leader.propose({ type: 'put', request: { key: bytes('cold'), value: bytes('written') } }));
    await cluster.until(() => cluster.nodes.every((node) => valueAt(cluster.replica(node, 2), 'cold') === 'written'), 2_000, 'the write everywhere');
    assert.ok(cluster.nodes.every((node) => cluster.replica(node, 1).quiesced), 'group 1 slept through it');
    await cluster.until(() => cluster.nodes.every((node) => cluster.replica(node, 2).quiesced), 2_000, 'group 2 to quiesce again');
    // A linearizable read on a follower of a quiet group wakes it for a heartbeat round, and is served.
    const follower = cluster.nodes.map((node) => cluster.replica(node, 3)).find((replica) => !replica.isLeader())!;
    await cluster.drive(follower.linearizableBarrier());
  } finally {
    await cluster.close();
  }
});

test("when the store of a quiet group's leader dies, the followers of that group elect a new leader within bounded virtual time", async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2, 3]);
  try {
    await cluster.electAll();
    await cluster.until(() => cluster.nodes.every((node) => cluster.groups.every((group) => cluster.replica(node, group).quiesced)), 5_000, 'every group to quiesce');
    const dead = nodeOf(1, cluster.leader(1)!.memberId);
    const deadLeaderGroups = cluster.groups.filter((group) => nodeOf(group, cluster.leader(group)!.memberId) === dead);
    await cluster.stores.get(dead)!.close();
    cluster.stores.delete(dead);
    const alive = cluster.nodes.filter((node) => node !== dead);
    const elected = () => deadLeaderGroups.every((group) => alive.some((node) => cluster.replica(node, group).isLeader()));
    // An election timeout without word from the dead store, the randomized half of another before
    // the first campaign, and room for a split vote.
    const tookMs = await cluster.until(elected, (ELECTION_TICKS + 2 * 2 * ELECTION_TICKS) * TICK_MS, 'new leaders for the groups led by the dead store');
    assert.ok(tookMs >= ELECTION_TICKS * TICK_MS, `the followers waited for the liveness timeout (${tookMs} ms)`);
    assert.ok(alive.every((node) => cluster.stores.get(node)!.stats.livenessWakes > 0));
    const group = deadLeaderGroups[0]!;
    const leader = alive.map((node) => cluster.replica(node, group)).find((replica) => replica.isLeader())!;
    await cluster.drive(leader.propose({ type: 'put', request: { key: bytes('after'), value: bytes('failover') } }));
  } finally {
    await cluster.close();
  }
});

test('forged frames are dropped: a member not hosted on the sending node, or a group the receiver does not host', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2]);
  try {
    await cluster.electAll();
    const leader = cluster.leader(2)!;
    const leaderNode = nodeOf(2, leader.memberId);
    const victim = cluster.nodes.find((node) => node !== leaderNode)!;
    const forger = cluster.nodes.find((node) => node !== leaderNode && node !== victim)!;
    const term = leader.raftTerm;
    // A process that proved it is node `forger` (the transport bound its connection to that id).
    const forging = new MemoryTransport({ network: cluster.network, id: forger, clusterId: 7, listen: { host: 'forger', port: 1 }, onMessage: () => undefined, memberNode: nodeOf });
    await forging.start();
    forging.addPeer(victim, address(victim));
    const before = cluster.transports.get(victim)!.stats().inbound.mismatchedMessagesDropped;
    // It speaks for the leader's member of group 2, which lives on another node.
    forging.send([{ type: 'TimeoutNow', from: leader.memberId, to: memberOf(victim, 2), term }], 2);
    // Group 9 exists nowhere: the victim hosts no member of it.
    forging.send([{ type: 'TimeoutNow', from: memberOf(forger, 9), to: memberOf(victim, 9), term: term + 5 }], 9);
    await cluster.run(3 * TICK_MS);
    assert.equal(cluster.transports.get(victim)!.stats().inbound.mismatchedMessagesDropped - before, 2);
    assert.equal(cluster.leader(2), leader, 'no forged TimeoutNow started an election');
    assert.equal(leader.raftTerm, term);
  } finally {
    await cluster.close();
  }
});

test('a store whose replica failed stops vouching for its process: the followers of the group it led elect a new leader', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2]);
  try {
    await cluster.electAll();
    await cluster.until(() => cluster.nodes.every((node) => cluster.groups.every((group) => cluster.replica(node, group).quiesced)), 5_000, 'every group to quiesce');
    const leader = cluster.leader(1)!;
    const failedNode = nodeOf(1, leader.memberId);
    leader.fail(new Error('the disk is gone'));
    const others = cluster.nodes.filter((node) => node !== failedNode);
    await cluster.until(() => others.some((node) => cluster.replica(node, 1).isLeader()), (ELECTION_TICKS + 4 * ELECTION_TICKS) * TICK_MS, 'a new leader of group 1');
  } finally {
    await cluster.close();
  }
});

test('a pause of the whole process (a long garbage collection) wakes no quiet group: silence is counted in ticks', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2]);
  try {
    await cluster.electAll();
    await cluster.until(() => cluster.nodes.every((node) => cluster.groups.every((group) => cluster.replica(node, group).quiesced)), 5_000, 'every group to quiesce');
    await cluster.run(2 * TICK_MS);
    // All three stores share the process, as in the groups benchmark: each ticker fires once when it resumes.
    cluster.environment.pause(5 * ELECTION_TICKS * TICK_MS);
    await settle();
    await cluster.run(3 * TICK_MS);
    assert.deepEqual([...cluster.stores.values()].map((store) => store.stats.livenessWakes), [0, 0, 0]);
    assert.ok(cluster.nodes.every((node) => cluster.groups.every((group) => cluster.replica(node, group).quiesced)));
  } finally {
    await cluster.close();
  }
});

test('a watcher that must catch up from history on a quiet replica is driven by ticks again', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1]);
  try {
    await cluster.electAll();
    await cluster.drive(cluster.leader(1)!.propose({ type: 'put', request: { key: bytes('w'), value: bytes('1') } }));
    await cluster.until(() => cluster.nodes.every((node) => cluster.replica(node, 1).quiesced), 5_000, 'the group to quiesce');
    await cluster.run(2 * TICK_MS);
    const follower = cluster.nodes.map((node) => cluster.replica(node, 1)).find((replica) => !replica.isLeader())!;
    const store = cluster.stores.get(nodeOf(1, follower.memberId))!;
    // A client that reads slowly: its sink takes nothing at first, so the watcher stays behind.
    let open = false;
    const events: string[] = [];
    follower.hub.create({ key: bytes('w'), startRevision: 1 }, {
      send: (message) => {
        if (!open) return false;
        if (message.type === 'events') events.push(...message.events.map((e) => Buffer.from(e.kv.value).toString()));
        return true;
      },
    });
    const ticks = store.stats.replicaTicks;
    open = true;
    await cluster.until(() => events.includes('1'), 2_000, 'the watcher to catch up');
    assert.ok(store.stats.replicaTicks > ticks, 'the quiet replica was ticked for its watcher');
  } finally {
    await cluster.close();
  }
});

test('a group removed from a store sends nothing more: the heartbeats it held for the next Beat are dropped with it', async () => {
  const cluster = await Cluster.start([1, 2, 3], [1, 2], { quiescence: false });
  try {
    await cluster.electAll();
    const node = nodeOf(2, cluster.leader(2)!.memberId);
    const store = cluster.stores.get(node)!;
    const transport = cluster.transports.get(node)!;
    const beats: GroupId[][] = [];
    const sendBeat = transport.sendBeat.bind(transport);
    transport.sendBeat = (to, messages) => {
      beats.push(messages.map((m) => m.group));
      sendBeat(to, messages);
    };
    // The leader's heartbeats of the last tick wait for the next tick's Beat.
    await cluster.run(TICK_MS);
    assert.ok(beats.some((groups) => groups.includes(2)), 'the leader of group 2 beats its heartbeats');
    await store.removeGroup(2);
    beats.length = 0;
    await cluster.run(2 * TICK_MS);
    assert.ok(beats.length > 0 && beats.every((groups) => !groups.includes(2)), `a removed group's heartbeats left with a Beat: ${JSON.stringify(beats)}`);
  } finally {
    await cluster.close();
  }
});
