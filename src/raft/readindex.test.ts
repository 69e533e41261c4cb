import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from '../errors.js';
import { decodeRoundContext, encodeRoundContext } from './readindex.js';
import { Network, str, text } from './testkit.js';

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
  net.route = () => 'deliver';
  const held = net.held;
  net.held = [];
  for (const m of held) net.deliver(m);
  net.stabilize();
  net.tickAll(1);
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
