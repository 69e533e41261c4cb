// A scripted simulation of one read across a member's restart: the leader's answer to a ReadIndex
// round of the member's previous process arrives after the restart, while a new read waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message, NodeId } from '../raft/types.js';
import { Cluster } from './cluster.js';
import { writeCommand } from './clients.js';
import { Network, type Packet } from './network.js';
import { Prng } from '../random.js';

/** A network that holds back the messages `hold` selects until release() lets them through. */
class HoldingNetwork extends Network {
  held: Packet[] = [];
  hold: (m: Message) => boolean = () => false;
  private readonly passing = new Set<Packet>();

  override takeDue(now: number): { deliver: Packet[]; lost: Packet[] } {
    const due = super.takeDue(now);
    const deliver = due.deliver.filter((p) => {
      if (this.passing.delete(p) || !('message' in p) || !this.hold(p.message)) return true;
      this.held.push(p);
      return false;
    });
    return { deliver, lost: due.lost };
  }

  /** The messages held back. */
  get heldMessages(): Message[] {
    return this.held.flatMap((p) => ('message' in p ? [p.message] : []));
  }

  release(which: (m: Message) => boolean, now: number): Message[] {
    const selected = (p: Packet) => 'message' in p && which(p.message);
    const released = this.held.filter(selected);
    this.held = this.held.filter((p) => !selected(p));
    for (const p of released) {
      this.passing.add(p);
      this.send(p, now);
    }
    return released.flatMap((p) => ('message' in p ? [p.message] : []));
  }
}

async function setUp() {
  const network = new HoldingNetwork(new Prng(1), { dropRate: 0, duplicateRate: 0, delayMin: 1, delayMax: 3, slowRate: 0, slowDelayMax: 3 });
  const config = {
    tickSteps: 10,
    electionTicks: 10,
    heartbeatTicks: 1,
    preVote: true,
    checkQuorum: true,
    lazyCommitBroadcast: false,
    snapshotEvery: 1000,
    compactKeep: 3,
    msgBytesMax: 1024,
    syncStepsMax: 2,
    requestTimeoutSteps: 100_000,
    variant: 'correct' as const,
    store: false,
    groups: 1,
  };
  const cluster = new Cluster(config, network, new Prng(2), [1, 2, 3], [1, 2, 3]);
  const reads = new Map<string, string | undefined>();
  for (const id of [1, 2, 3]) await cluster.start(id);
  let now = 0;
  const step = async () => {
    cluster.now = now++;
    cluster.deliver();
    cluster.advanceClocks();
    await cluster.settle();
    cluster.checkLeaders();
  };
  const until = async (what: string, condition: () => boolean) => {
    for (let i = 0; i < 5000 && !condition(); i++) await step();
    assert.ok(condition(), `timed out waiting until ${what}`);
  };
  const replica = (id: NodeId) => cluster.node(id).live!.replica;
  const value = (id: NodeId) => {
    const kv = cluster.node(id).live?.replica.store.range({ key: Buffer.from('k') }).kvs[0];
    return kv && Buffer.from(kv.value).toString();
  };
  const put = (leader: NodeId, v: string) => void replica(leader).propose(writeCommand({ kind: 'put', key: 'k', value: v }));
  /** A linearizable read of k on `id`, recorded under `context` once served. */
  const startRead = (id: NodeId, context: string) => void replica(id).linearizableBarrier().then(() => reads.set(context, value(id)));
  return { network, cluster, reads, step, until, value, put, startRead, replica, now: () => now };
}

test("a ReadIndex answer for a member's previous process does not release a read of the restarted one", async () => {
  const { network, cluster, reads, step, until, value, put, startRead, replica, now } = await setUp();
  await until('a leader is elected', () => cluster.leader() !== undefined);
  const leader = cluster.leader()!.id;
  const member = leader === 1 ? 2 : 1;
  put(leader, 'v1');
  await until('the member applied v1', () => value(member) === 'v1');

  // The answer to the member's read is held back in the network.
  const answerTo = (m: Message) => m.to === member && m.type === 'ReadIndexResp';
  network.hold = answerTo;
  startRead(member, 'before');
  await until('the leader answered the first read', () => network.held.length > 0);

  // The member restarts; meanwhile v2 is committed without it, and appends to it are held back
  // too, so it stays at v1 while it hears the leader's heartbeats.
  cluster.crash(member);
  put(leader, 'v2');
  await until('the leader applied v2', () => value(leader) === 'v2');
  network.hold = (m) => answerTo(m) || (m.to === member && m.type === 'App');
  await cluster.start(member);
  await until('the restarted member knows the leader', () => replica(member).leaderId === leader);
  assert.equal(value(member), 'v1');
  const oldAnswers = new Set(network.heldMessages.filter(answerTo));

  // A new read starts after v2 was acknowledged: it must not return v1.
  startRead(member, 'after');
  await until('the leader answered the new read', () => network.heldMessages.filter(answerTo).length > oldAnswers.size);
  assert.ok(network.release((m) => oldAnswers.has(m), now()).length > 0);
  for (let i = 0; i < 20; i++) await step();
  assert.equal(reads.has('after'), false, `the old answer released the new read (it read ${reads.get('after')})`);

  network.hold = () => false;
  network.release(() => true, now());
  await until('the new read is served', () => reads.has('after'));
  assert.equal(reads.get('after'), 'v2');
});
