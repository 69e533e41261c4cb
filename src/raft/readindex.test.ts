import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from '../errors.js';
import { decodeRoundContext, encodeRoundContext } from './readindex.js';
import { Network, str, text } from './testkit.js';
import { ConfChangeType } from './types.js';

test('§6.4: the leader records its commit index and serves the read after a heartbeat round confirms leadership', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  const commit = net.raft(1).log.committed;
  net.node(1).raw.readIndex(text('r1'));
  net.stabilize();
  const rs = net.node(1).readStates;
  assert.equal(rs.length, 1);
  assert.equal(rs[0]!.index, commit);
  assert.equal(str(rs[0]!.context), 'r1');
});

test('§6.4: many pending reads are confirmed by one heartbeat round', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  let heartbeats = 0;
  net.route = (m) => {
    if (m.type === 'Heartbeat') heartbeats++;
    return 'deliver';
  };
  const leader = net.node(1).raw;
  for (let i = 0; i < 50; i++) leader.readIndex(text(`r${i}`));
  net.stabilize();
  assert.equal(heartbeats, 2, 'one heartbeat per follower');
  assert.deepEqual(
    net.node(1).readStates.map((r) => str(r.context)),
    Array.from({ length: 50 }, (_, i) => `r${i}`),
  );
});

test('§6.4: a read that arrives after a round\'s heartbeats left waits for a new round', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.route = (m) => (m.type === 'HeartbeatResp' ? 'hold' : 'deliver');
  const leader = net.node(1).raw;
  leader.readIndex(text('early'));
  net.stabilize(); // The heartbeats of round 1 went out; their answers are held.
  leader.readIndex(text('late'));
  net.stabilize();
  const round1Answers = net.held.filter((m) => m.type === 'HeartbeatResp' && decodeRoundContext(m.context) === 1);
  assert.equal(round1Answers.length, 2);
  net.route = () => 'deliver';
  for (const m of round1Answers) net.deliver(m);
  net.stabilize();
  assert.deepEqual(net.node(1).readStates.map((r) => str(r.context)), ['early'], 'round 1 confirms only the early read');
  for (const m of net.held.filter((x) => !round1Answers.includes(x))) net.deliver(m);
  net.held = [];
  net.stabilize();
  assert.deepEqual(net.node(1).readStates.map((r) => str(r.context)), ['early', 'late']);
});

/** Delivers every held message and routes all later ones, then lets one tick pass (the new leader's no-op commits). */
function releaseHeld(net: Network): void {
  net.route = () => 'deliver';
  const held = net.held;
  net.held = [];
  for (const m of held) net.deliver(m);
  net.stabilize();
  net.tickAll(1);
}

test('§6.4: a leader answers reads only once it has committed an entry of its own term', () => {
  const net = new Network([1, 2, 3]);
  // Hold every append so the new leader's no-op cannot commit yet.
  net.route = (m) => (m.type === 'App' ? 'hold' : 'deliver');
  net.campaign(1);
  assert.equal(net.raft(1).role, 'leader');
  assert.equal(net.raft(1).committedEntryInCurrentTerm(), false);
  net.node(1).raw.readIndex(text('r'));
  net.tickAll(2);
  assert.equal(net.node(1).readStates.length, 0);
  releaseHeld(net);
  assert.equal(net.node(1).readStates.length, 1);
  assert.equal(net.node(1).readStates[0]!.index, net.raft(1).log.committed);
});

test('§6.4: a leader cut off from the quorum never confirms a read', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.node(1).raw.readIndex(text('r'));
  net.tickAll(30);
  assert.equal(net.node(1).readStates.length, 0);
});

test('§6.4: followers forward ReadIndex to the leader and get the leader\'s commit index back', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  const types: string[] = [];
  net.route = (m) => {
    types.push(m.type);
    return 'deliver';
  };
  net.node(3).raw.readIndex(text('f'));
  net.stabilize();
  assert.ok(types.includes('ReadIndex') && types.includes('ReadIndexResp'));
  const rs = net.node(3).readStates;
  assert.equal(rs.length, 1);
  assert.equal(rs[0]!.index, net.raft(1).log.committed);
  assert.equal(str(rs[0]!.context), 'f');
});

/** The heartbeats of read rounds (they carry a context) sent while `run` runs. */
function roundHeartbeats(net: Network, run: () => void): number {
  let heartbeats = 0;
  net.route = (m) => {
    if (m.type === 'Heartbeat' && m.context.length > 0) heartbeats++;
    return 'deliver';
  };
  run();
  net.route = () => 'deliver';
  return heartbeats;
}

/** A read asked at `id`: the heartbeats of read rounds it took, and the contexts answered there. */
function readAt(net: Network, id: number, context: string): { heartbeats: number; answered: string[] } {
  const heartbeats = roundHeartbeats(net, () => {
    net.node(id).raw.readIndex(text(context));
    net.stabilize();
  });
  return { heartbeats, answered: net.node(id).readStates.map((r) => str(r.context)) };
}

test('with three voters the leader answers a follower\'s ReadIndex at once: the request is the second member of the quorum', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  assert.deepEqual(readAt(net, 3, 'f'), { heartbeats: 0, answered: ['f'] }, 'no heartbeat round');
  assert.deepEqual(net.node(3).readStates.map((r) => r.index), [net.raft(1).log.committed]);
});

test('a follower\'s ReadIndex made in an older term takes a heartbeat round', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  const term = net.raft(1).term;
  const heartbeats = roundHeartbeats(net, () => {
    // As if node 3 made the request before it heard of this term (delivered late, say).
    net.deliver({ type: 'ReadIndex', from: 3, to: 1, term: term - 1, context: text('stale') });
    net.stabilize();
  });
  assert.equal(heartbeats, 2);
  assert.deepEqual(net.node(3).readStates.map((r) => str(r.context)), ['stale']);
});

test('with five voters a follower\'s ReadIndex still takes a heartbeat round (leader and follower are no quorum)', () => {
  const net = new Network([1, 2, 3, 4, 5]);
  net.campaign(1);
  net.propose(1, 'a');
  assert.deepEqual(readAt(net, 5, 'f'), { heartbeats: 4, answered: ['f'] });
});

test('§6.4: an old leader and one follower cut off with it never answer the follower\'s read (five voters)', () => {
  const net = new Network([1, 2, 3, 4, 5]);
  net.campaign(1);
  net.propose(1, 'old');
  const oldTerm = net.raft(1).term;
  // 1 and 2 on one side, the majority on the other; the majority elects a leader, which commits a write.
  for (const a of [1, 2]) for (const b of [3, 4, 5]) net.cut(a, b);
  // Only the majority's clocks run (the old leader would step down after an election timeout
  // without a quorum; the read below comes before that).
  const majority = [3, 4, 5];
  for (let i = 0; i < 100 && !majority.some((id) => net.raft(id).role === 'leader'); i++) for (const id of majority) net.tick(id);
  const newLeader = majority.find((id) => net.raft(id).role === 'leader')!;
  assert.ok(newLeader !== undefined, 'the majority elected a leader');
  net.propose(newLeader, 'new');
  assert.ok(net.node(newLeader).applied.includes('new'), 'the write is committed (acknowledged) on the majority side');
  assert.equal(net.raft(1).role, 'leader', 'the old leader has not heard of the new term');
  assert.equal(net.raft(2).term, oldTerm);
  // A read that starts now at 2 goes to 1, in the old term: 1 and 2 are no quorum of five, so the
  // stale commit index (which lacks 'new') must never come back.
  net.node(2).raw.readIndex(text('after-new'));
  net.stabilize();
  net.tick(2, 3);
  net.tick(1, 3);
  net.stabilize();
  assert.deepEqual(net.node(2).readStates, []);
});

test('a learner\'s ReadIndex takes a heartbeat round: leader and learner are no quorum', () => {
  const net = new Network([1, 2, 3, 4], { joiners: [4] });
  net.campaign(1);
  net.node(1).raw.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4, context: text('') });
  net.stabilize();
  assert.deepEqual(net.node(1).conf, { voters: [1, 2, 3], learners: [4] });
  assert.deepEqual(readAt(net, 4, 'learner'), { heartbeats: 3, answered: ['learner'] });
});

test('a follower\'s ReadIndex waits for the new leader\'s first commit in its term even with three voters', () => {
  const net = new Network([1, 2, 3]);
  net.route = (m) => (m.type === 'App' ? 'hold' : 'deliver');
  net.campaign(1);
  net.deliver({ type: 'ReadIndex', from: 3, to: 1, term: net.raft(1).term, context: text('early') });
  net.stabilize();
  assert.equal(net.node(3).readStates.length, 0);
  releaseHeld(net);
  net.stabilize();
  assert.deepEqual(net.node(3).readStates.map((r) => [r.index, str(r.context)]), [[net.raft(1).log.committed, 'early']]);
});

test('§6.4: a single-voter group answers reads at once, without a round trip', () => {
  const net = new Network([1]);
  net.campaign(1);
  net.node(1).raw.readIndex(text('solo'));
  assert.equal(net.raft(1).readStates.length, 1);
});

test('a read with no known leader throws Unavailable', () => {
  const net = new Network([1, 2, 3]);
  assert.throws(() => net.node(2).raw.readIndex(text('r')), (e) => isLichenError(e, 'Unavailable'));
});

test('the number of pending reads is bounded (Overloaded beyond maxPendingReads)', () => {
  const net = new Network([1, 2, 3], { config: { maxPendingReads: 3 } });
  net.campaign(1);
  net.isolate(1);
  const leader = net.node(1).raw;
  for (let i = 0; i < 3; i++) leader.readIndex(text(`r${i}`));
  assert.throws(() => leader.readIndex(text('r3')), (e) => isLichenError(e, 'Overloaded'));
});

test('round numbers survive the heartbeat context encoding', () => {
  for (const seq of [1, 2, 255, 65_536, 2 ** 40]) assert.equal(decodeRoundContext(encodeRoundContext(seq)), seq);
  assert.equal(decodeRoundContext(new Uint8Array(0)), undefined);
  assert.equal(decodeRoundContext(text('not-a-round!')), undefined);
});
