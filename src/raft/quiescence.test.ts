// Quiescence (see Raft.quiesced): when an idle leader goes quiet, what wakes a group, and what
// stays true while it is quiet (CheckQuorum, leader leases, ReadIndex).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Network, text } from './testkit.js';
import type { Message } from './types.js';

const quiet = { config: { quiescence: true } };

/** A three-member group with leader 1, its first entries committed everywhere. */
function group(options: { config: { quiescence?: boolean } } = quiet): Network {
  const net = new Network([1, 2, 3], options);
  net.campaign(1);
  assert.equal(net.raft(1).role, 'leader');
  return net;
}

/** Records every message the network carries from now on. */
function record(net: Network): Message[] {
  const seen: Message[] = [];
  net.route = (m) => (seen.push(m), 'deliver');
  return seen;
}

test('an idle leader whose followers hold its whole log sends one quiesce heartbeat, then nothing; the followers stop their timers', () => {
  const net = group();
  const seen = record(net);
  net.tickAll(1);
  assert.ok(net.raft(1).quiesced, 'the leader quiesced at its first heartbeat with everyone caught up');
  const quiesce = seen.filter((m) => m.type === 'Heartbeat');
  assert.deepEqual(quiesce.map((m) => [m.to, m.type === 'Heartbeat' && m.quiesce]), [[2, true], [3, true]]);
  assert.ok(net.raft(2).quiesced && net.raft(3).quiesced);
  seen.length = 0;
  // Ten election timeouts: no message, no election, the same leader and term.
  const term = net.raft(1).term;
  net.tickAll(200);
  assert.deepEqual(seen.filter((m) => m.type !== 'HeartbeatResp'), []);
  assert.deepEqual(net.leaders(), [1]);
  assert.equal(net.raft(2).term, term);
});

test('quiescence is off unless the host asks for it (the host must stand in with liveness)', () => {
  const net = group({ config: {} });
  const seen = record(net);
  net.tickAll(50);
  assert.ok(!net.raft(1).quiesced);
  assert.ok(seen.filter((m) => m.type === 'Heartbeat').length >= 2 * 50);
});

test('a leader does not quiesce while a follower lags, the application holds it awake, or a read is in flight', () => {
  const net = group();
  // Follower 3 misses an entry: it does not hold the whole log.
  net.down.add(3);
  net.propose(1, 'x');
  net.tickAll(5);
  assert.ok(!net.raft(1).quiesced, 'follower 3 lags');
  net.down.delete(3);
  net.tickAll(3);
  assert.ok(net.raft(1).quiesced, 'quiet once 3 caught up');

  const held = group();
  for (let i = 0; i < 30; i++) {
    held.node(1).raw.tick(true);
    held.stabilize();
  }
  assert.ok(!held.raft(1).quiesced, 'the application held it awake');

  const reading = group();
  reading.route = (m) => (m.type === 'HeartbeatResp' ? 'drop' : 'deliver');
  reading.node(1).raw.readIndex(text('r'));
  reading.stabilize();
  reading.tick(1, 3);
  assert.ok(!reading.raft(1).quiesced, 'a read round waits for a quorum');
});

test('a proposal, a read or a message wakes a quiet group, which goes quiet again when idle', () => {
  const net = group();
  net.tickAll(1);
  assert.ok(net.raft(1).quiesced);
  net.propose(1, 'wake');
  assert.ok(!net.raft(1).quiesced && !net.raft(2).quiesced && !net.raft(3).quiesced, 'the append woke the followers');
  assert.deepEqual(net.node(2).applied.slice(-1), ['wake']);
  net.tickAll(2);
  assert.ok(net.raft(1).quiesced && net.raft(2).quiesced);

  // A linearizable read on a quiet leader needs a fresh heartbeat round: it wakes the group.
  const seen = record(net);
  net.node(1).raw.readIndex(text('read'));
  net.stabilize();
  assert.ok(seen.some((m) => m.type === 'Heartbeat' && m.context.length > 0), 'a heartbeat round confirmed the read');
  assert.equal(net.node(1).readStates.length, 1);

  // A read on a quiet follower goes to the leader, which wakes.
  net.tickAll(2);
  assert.ok(net.raft(1).quiesced && net.raft(3).quiesced);
  net.node(3).raw.readIndex(text('read-3'));
  net.stabilize();
  assert.equal(net.node(3).readStates.length, 1);
  assert.ok(!net.raft(1).quiesced);
});

test('a quiet leader keeps no lease: once woken it must hear from a quorum within an election timeout, or step down (CheckQuorum)', () => {
  const net = group();
  net.tickAll(1);
  assert.ok(net.raft(1).quiesced);
  // The followers' processes are gone (the host woke the leader because it stopped hearing them).
  net.down.add(2);
  net.down.add(3);
  net.node(1).raw.wake();
  net.tick(1, 10);
  assert.equal(net.raft(1).role, 'follower', 'no answers within an election timeout since waking');
});

test('followers whose host lost touch with the leader process wake with their lease expired and elect a new leader', () => {
  const net = group();
  net.tickAll(1);
  net.down.add(1);
  for (const id of [2, 3]) net.node(id).raw.wake('leaderSilent');
  let ticks = 0;
  while (net.leaders().filter((id) => id !== 1).length === 0 && ticks < 200) {
    for (const id of [2, 3]) net.node(id).raw.tick();
    net.stabilize();
    ticks++;
  }
  const [leader] = net.leaders().filter((id) => id !== 1);
  assert.ok(leader === 2 || leader === 3, 'a new leader');
  // The first campaign starts within the randomized half of an election timeout (the lease is
  // over); a split vote costs another randomized timeout, as in any election.
  assert.ok(ticks <= 3 * 20, `elected after ${ticks} ticks`);
});

test('a quiet follower still refuses a vote while it has not lost touch with the leader (the lease holds)', () => {
  const net = group();
  net.tickAll(1);
  const term = net.raft(2).term;
  // Member 3 campaigns on its own (say its log was fine but its host woke it by mistake).
  net.node(3).raw.wake('leaderSilent');
  net.tick(3, 20);
  assert.deepEqual(net.leaders(), [1]);
  assert.equal(net.raft(1).term, term);
});
