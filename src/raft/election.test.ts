import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawNode } from './rawnode.js';
import { Network, seededRandom, storageWithLog } from './testkit.js';
import type { Message } from './types.js';

const noPreVote = { config: { preVote: false, checkQuorum: false } };

/** A lone node with the given log terms and hard-state term, in a group of `voters`. */
function lone(id: number, terms: number[], voters: number[], term?: number, config = {}): RawNode {
  return new RawNode({
    id,
    storage: storageWithLog(terms, { voters, learners: [] }, term),
    random: seededRandom(id),
    preVote: false,
    checkQuorum: false,
    ...config,
  });
}

function drain(rn: RawNode): Message[] {
  if (!rn.hasReady()) return [];
  const rd = rn.ready();
  rn.advance();
  return [...rd.messages, ...rd.messagesAfterPersist];
}

function vote(from: number, to: number, term: number, lastLogIndex: number, lastLogTerm: number, extra = {}): Message {
  return { type: 'Vote', from, to, term, lastLogIndex, lastLogTerm, transfer: false, ...extra };
}

test('§5.2: a follower that hears nothing for an election timeout starts an election and wins with a majority', () => {
  const net = new Network([1, 2, 3], noPreVote);
  const startTerm = net.raft(1).term;
  net.tick(1, 2 * 10);
  assert.equal(net.raft(1).role, 'leader');
  assert.equal(net.raft(1).term, startTerm + 1);
  for (const id of [2, 3]) {
    assert.equal(net.raft(id).lead, 1);
    assert.equal(net.raft(id).vote, 1);
  }
});

test('§5.2: election timeouts are chosen randomly from [electionTicks, 2*electionTicks)', () => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 200; seed++) {
    const rn = new RawNode({ id: 1, storage: storageWithLog([], { voters: [1, 2, 3], learners: [] }), random: seededRandom(seed) });
    const t = rn.raft.randomizedElectionTimeout;
    assert.ok(t >= 10 && t < 20, `timeout ${t}`);
    seen.add(t);
  }
  assert.ok(seen.size >= 8, `only ${seen.size} distinct timeouts`);
  const low = new RawNode({ id: 1, storage: storageWithLog([], { voters: [1], learners: [] }), random: () => 0 });
  const high = new RawNode({ id: 1, storage: storageWithLog([], { voters: [1], learners: [] }), random: () => 0.9999 });
  assert.equal(low.raft.randomizedElectionTimeout, 10);
  assert.equal(high.raft.randomizedElectionTimeout, 19);
});

test('§5.2: a single-voter group elects itself at once', () => {
  const net = new Network([1]);
  net.campaign(1);
  assert.equal(net.raft(1).role, 'leader');
  net.propose(1, 'x');
  assert.deepEqual(net.node(1).applied, ['x']);
});

test('§5.2: each server will vote for at most one candidate in a given term, first come first served', () => {
  const rn = lone(1, [1], [1, 2, 3], 1);
  rn.step(vote(2, 1, 2, 1, 1));
  let out = drain(rn);
  assert.deepEqual(
    out.map((m) => [m.type, m.to, 'reject' in m ? m.reject : undefined]),
    [['VoteResp', 2, false]],
  );
  rn.step(vote(3, 1, 2, 1, 1));
  out = drain(rn);
  assert.deepEqual(out.map((m) => [m.type, m.to, 'reject' in m ? m.reject : undefined]), [['VoteResp', 3, true]]);
  // A repeated request from the candidate we voted for is granted again (lost responses).
  rn.step(vote(2, 1, 2, 1, 1));
  out = drain(rn);
  assert.deepEqual(out.map((m) => ['reject' in m ? m.reject : undefined]), [[false]]);
  assert.equal(rn.raft.vote, 2);
});

test('§5.4.1: a voter denies its vote if its own log is more up-to-date than the candidate\'s', () => {
  // Our log: terms [1, 2, 2] (last index 3, last term 2).
  const cases: Array<{ lastIndex: number; lastTerm: number; granted: boolean; why: string }> = [
    { lastIndex: 5, lastTerm: 1, granted: false, why: 'lower last term, longer log' },
    { lastIndex: 2, lastTerm: 2, granted: false, why: 'same last term, shorter log' },
    { lastIndex: 3, lastTerm: 2, granted: true, why: 'same last term, same length' },
    { lastIndex: 4, lastTerm: 2, granted: true, why: 'same last term, longer log' },
    { lastIndex: 1, lastTerm: 3, granted: true, why: 'higher last term, shorter log' },
  ];
  for (const c of cases) {
    const rn = lone(1, [1, 2, 2], [1, 2, 3], 2);
    rn.step(vote(2, 1, 3, c.lastIndex, c.lastTerm));
    const [resp] = drain(rn);
    assert.ok(resp && resp.type === 'VoteResp', c.why);
    assert.equal(resp.reject, !c.granted, c.why);
    // §5.1: the request's higher term is adopted whatever the answer.
    assert.equal(rn.raft.term, 3, c.why);
  }
});

test('§5.1: a server rejects requests with a stale term number', () => {
  const rn = lone(1, [1, 2], [1, 2, 3], 5);
  rn.step(vote(2, 1, 4, 10, 4));
  const out = drain(rn);
  assert.ok(out.every((m) => !(m.type === 'VoteResp' && !m.reject)), 'no vote granted to a stale candidate');
  assert.equal(rn.raft.term, 5);
  assert.equal(rn.raft.vote, 0);
});

test('§5.1: a leader that sees a higher term reverts to follower', () => {
  const net = new Network([1, 2, 3], noPreVote);
  net.campaign(1);
  const term = net.raft(1).term;
  net.node(1).raw.step({ type: 'AppResp', from: 2, to: 1, term: term + 3, reject: false, index: 0, rejectHint: 0, hintTerm: 0 });
  assert.equal(net.raft(1).role, 'follower');
  assert.equal(net.raft(1).term, term + 3);
});

test('§5.2: a candidate that receives an append from a leader of its term returns to follower', () => {
  const rn = lone(1, [1], [1, 2, 3], 1);
  rn.campaign();
  assert.equal(rn.raft.role, 'candidate');
  drain(rn);
  rn.step({ type: 'App', from: 2, to: 1, term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [], commit: 0 });
  assert.equal(rn.raft.role, 'follower');
  assert.equal(rn.raft.lead, 2);
  assert.equal(rn.raft.vote, 1, 'the vote of the term is kept');
});

test('§5.2: a candidate that cannot reach a majority loses and returns to follower', () => {
  const rn = lone(1, [1], [1, 2, 3], 1);
  rn.campaign();
  drain(rn);
  rn.step({ type: 'VoteResp', from: 2, to: 1, term: 2, reject: true });
  assert.equal(rn.raft.role, 'candidate', 'one rejection out of three is not yet a loss');
  rn.step({ type: 'VoteResp', from: 3, to: 1, term: 2, reject: true });
  assert.equal(rn.raft.role, 'follower');
  assert.equal(rn.raft.term, 2);
});

test('§5.2: with split votes, randomized timeouts eventually elect exactly one leader', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const net = new Network([1, 2, 3, 4, 5], { ...noPreVote, seed });
    const leader = net.electSomeone();
    const term = net.raft(leader).term;
    const leadersOfTerm = [...net.nodes.values()].filter((n) => n.raw.raft.role === 'leader' && n.raw.raft.term === term);
    assert.equal(leadersOfTerm.length, 1, `seed ${seed}`);
  }
});

test('§9.6: a pre-candidate does not increment its term, so a partitioned node cannot disrupt the cluster when it returns', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const term = net.raft(1).term;
  net.isolate(3);
  net.tick(3, 100);
  assert.equal(net.raft(3).term, term, 'pre-votes never raise the term');
  assert.equal(net.raft(3).role, 'precandidate');
  net.heal();
  net.tickAll(3);
  assert.equal(net.raft(1).role, 'leader');
  assert.equal(net.raft(1).term, term);
  assert.equal(net.raft(3).lead, 1);
});

test('§9.6: without pre-vote, a partitioned node that returns with a higher term disrupts the leader', () => {
  const net = new Network([1, 2, 3], noPreVote);
  net.campaign(1);
  const term = net.raft(1).term;
  net.isolate(3);
  net.tick(3, 100);
  assert.ok(net.raft(3).term > term + 3);
  net.heal();
  net.tickAll(30);
  assert.ok(net.raft(1).term > term, 'the leader was forced into a higher term');
});

test('§9.6: a pre-vote is granted on the log check alone and changes neither the voter\'s term nor its vote', () => {
  const rn = lone(1, [1, 1], [1, 2, 3], 1);
  rn.step({ type: 'PreVote', from: 2, to: 1, term: 2, lastLogIndex: 2, lastLogTerm: 1, transfer: false });
  let [resp] = drain(rn);
  assert.ok(resp && resp.type === 'PreVoteResp' && !resp.reject);
  assert.equal(resp.term, 2, 'a granted pre-vote carries the requested term');
  assert.equal(rn.raft.term, 1);
  assert.equal(rn.raft.vote, 0);
  rn.step({ type: 'PreVote', from: 3, to: 1, term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
  [resp] = drain(rn);
  assert.ok(resp && resp.type === 'PreVoteResp' && resp.reject, 'a shorter log gets no pre-vote');
});

test('§9.6: a node that wins the pre-vote then runs the real election in the next term', () => {
  const net = new Network([1, 2, 3]);
  const term = net.raft(1).term;
  const seen: string[] = [];
  net.route = (m) => {
    if (m.from === 1) seen.push(m.type);
    return 'deliver';
  };
  net.campaign(1);
  assert.equal(net.raft(1).role, 'leader');
  assert.equal(net.raft(1).term, term + 1);
  assert.ok(seen.indexOf('PreVote') < seen.indexOf('Vote') && seen.includes('PreVote'));
});

test('§6.2 CheckQuorum: a leader that has not heard from a quorum within an election timeout steps down', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.tick(1, 2 * 10 + 1);
  assert.equal(net.raft(1).role, 'follower');
  assert.equal(net.raft(1).lead, 0);
});

test('CheckQuorum: a leader that hears from a quorum keeps leading', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.tickAll(50);
  assert.equal(net.raft(1).role, 'leader');
});

test('§4.2.3 leader lease: a follower that heard from a leader within the election timeout ignores a vote request', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const term = net.raft(1).term;
  const follower = net.node(2).raw;
  follower.step(vote(3, 2, term + 1, 100, term + 1));
  assert.equal(follower.raft.term, term, 'the term did not move');
  assert.equal(follower.raft.vote, 1);
  assert.equal(follower.raft.hasMessages(), false, 'no answer at all');
  // A campaign started by a leadership transfer is heard despite the lease.
  follower.step(vote(3, 2, term + 1, 100, term + 1, { transfer: true }));
  assert.equal(follower.raft.term, term + 1);
  assert.equal(follower.raft.vote, 3);
});

test('a stale leader learns the newer term from the answer to its append and steps down', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.down.add(1);
  const newLeader = net.electSomeone();
  assert.notEqual(newLeader, 1);
  const newTerm = net.raft(newLeader).term;
  net.down.delete(1);
  net.heal();
  assert.equal(net.raft(1).role, 'leader', 'the old leader, frozen meanwhile, still believes it leads');
  // Its heartbeat is answered with the newer term.
  net.tick(1, 1);
  assert.equal(net.raft(1).role, 'follower');
  assert.equal(net.raft(1).term, newTerm);
});

test('§5.2 Figure 2: refusing a candidate whose log is behind adopts its term but keeps the election timer running (sim seed 100436)', () => {
  // "If election timeout elapses without receiving AppendEntries RPC from current leader or
  // granting vote to candidate: convert to candidate." A refused vote restarts nothing, so a member
  // that is behind and campaigns without pre-vote cannot keep the up-to-date ones from campaigning.
  const rn = lone(1, [1, 1, 2], [1, 2, 3], 2);
  for (let i = 0; i < 5; i++) rn.tick();
  rn.step(vote(3, 1, 3, 1, 1));
  const [refusal] = drain(rn);
  assert.ok(refusal?.type === 'VoteResp' && refusal.reject);
  assert.equal(rn.raft.term, 3);
  assert.equal(rn.raft.electionElapsed, 5, 'the timer kept running');
  // A granted vote does restart it.
  rn.step(vote(2, 1, 4, 3, 2));
  const [grant] = drain(rn);
  assert.ok(grant?.type === 'VoteResp' && !grant.reject);
  assert.equal(rn.raft.electionElapsed, 0);
});
