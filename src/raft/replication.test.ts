import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from '../errors.js';
import { Raft } from './raft.js';
import { RawNode } from './rawnode.js';
import { Network, chaosStep, seededRandom, storageWithLog, text } from './testkit.js';
import type { Entry, Message } from './types.js';

const quiet = { preVote: false, checkQuorum: false };

function lone(id: number, terms: number[], voters: number[], term?: number, config = {}): RawNode {
  return new RawNode({
    id,
    storage: storageWithLog(terms, { voters, learners: [] }, term),
    random: seededRandom(id),
    ...quiet,
    ...config,
  });
}

function drain(rn: RawNode): Message[] {
  if (!rn.hasReady()) return [];
  const rd = rn.ready();
  rn.advance();
  return [...rd.messages, ...rd.messagesAfterPersist];
}

function logTerms(rn: RawNode): number[] {
  const log = rn.raft.log;
  const out: number[] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(i));
  return out;
}

function ent(index: number, term: number, data = `t${term}i${index}`): Entry {
  return { index, term, type: 0, data: text(data) };
}

function app(from: number, to: number, term: number, prevLogIndex: number, prevLogTerm: number, entries: Entry[], commit = 0): Message {
  return { type: 'App', from, to, term, prevLogIndex, prevLogTerm, entries, commit };
}

test('§5.3: the leader appends a proposal, replicates it, commits it once on a majority, and every member applies it', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  net.propose(1, 'b');
  for (const id of [1, 2, 3]) {
    assert.deepEqual(net.node(id).applied, ['a', 'b']);
    assert.equal(net.raft(id).log.committed, net.raft(1).log.lastIndex());
  }
});

test('§5.3: an entry stored on a majority is committed even when a minority is down', () => {
  const net = new Network([1, 2, 3, 4, 5]);
  net.campaign(1);
  net.down.add(4);
  net.down.add(5);
  net.propose(1, 'x');
  assert.deepEqual(net.node(1).applied, ['x']);
  net.down.add(3);
  net.propose(1, 'y');
  assert.deepEqual(net.node(1).applied, ['x'], 'two of five is not a majority');
});

test('§5.4.2: a new leader appends a no-op entry of its own term', () => {
  const net = new Network([1, 2, 3]);
  const before = net.raft(1).log.lastIndex();
  net.campaign(1);
  const r = net.raft(1);
  assert.equal(r.log.lastIndex(), before + 1);
  const noop = r.log.slice(before + 1, before + 2)[0]!;
  assert.equal(noop.term, r.term);
  assert.equal(noop.data.length, 0);
  assert.equal(r.log.committed, before + 1, 'the no-op commits everything before it');
});

test('§5.3: a follower refuses an append whose previous entry does not match (consistency check)', () => {
  const rn = lone(2, [1, 1, 2], [1, 2, 3], 3);
  rn.step(app(1, 2, 3, 3, 3, [ent(4, 3)]));
  const [resp] = drain(rn);
  assert.ok(resp && resp.type === 'AppResp');
  assert.equal(resp.reject, true);
  assert.equal(resp.index, 3, 'names the rejected prevLogIndex');
  // Fast backtracking hint: our largest index whose term is <= 3 is 3 (term 2).
  assert.deepEqual([resp.rejectHint, resp.hintTerm], [3, 2]);
  assert.deepEqual(logTerms(rn), [1, 1, 2], 'nothing appended');
});

test('§5.3: if an existing entry conflicts with a new one, the follower deletes it and all that follow', () => {
  const rn = lone(2, [1, 1, 2, 2], [1, 2, 3], 3);
  rn.step(app(1, 2, 3, 2, 1, [ent(3, 3)]));
  const rd = rn.ready();
  assert.deepEqual(logTerms(rn), [1, 1, 3]);
  assert.deepEqual(rd.entries.map((e) => [e.index, e.term]), [[3, 3]], 'the replacement goes to disk');
  const resp = rd.messagesAfterPersist[0]!;
  assert.ok(resp.type === 'AppResp' && !resp.reject && resp.index === 3);
  rn.advance();
});

test('§5.3: a follower never truncates its log for an append whose entries it already has (reordered messages)', () => {
  const rn = lone(2, [1, 1, 1, 1], [1, 2, 3], 1);
  // A late append carrying entries 2..3, which we already have, after we received 2..4.
  rn.step(app(1, 2, 1, 1, 1, [ent(2, 1), ent(3, 1)]));
  assert.deepEqual(logTerms(rn), [1, 1, 1, 1]);
  const [resp] = drain(rn);
  assert.ok(resp && resp.type === 'AppResp' && !resp.reject && resp.index === 3);
});

test('§5.3: a follower sets its commit index to min(leaderCommit, index of last new entry)', () => {
  const rn = lone(2, [1], [1, 2, 3], 1);
  rn.step(app(1, 2, 1, 1, 1, [ent(2, 1)], 5));
  assert.equal(rn.raft.log.committed, 2);
  rn.step(app(1, 2, 1, 2, 1, [ent(3, 1)], 2));
  assert.equal(rn.raft.log.committed, 2);
});

test('Figure 7: a new leader brings every follower\'s log to match its own, discarding uncommitted conflicting entries', () => {
  const logs: Record<number, number[]> = {
    1: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6], // the leader for term 8
    2: [1, 1, 1, 4, 4, 5, 5, 6, 6], // (a)
    3: [1, 1, 1, 4], // (b)
    4: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], // (c)
    5: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], // (d)
    6: [1, 1, 1, 4, 4, 4, 4], // (e)
    7: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], // (f)
  };
  const voters = [1, 2, 3, 4, 5, 6, 7];
  let rejects = 0;
  const net = new Network(voters, {
    config: quiet,
    storage: (id) => storageWithLog(logs[id]!, { voters, learners: [] }, 7),
  });
  net.route = (m) => {
    if (m.type === 'AppResp' && m.reject) rejects++;
    return 'deliver';
  };
  net.campaign(1);
  assert.equal(net.raft(1).role, 'leader');
  assert.equal(net.raft(1).term, 8);
  const want = [...logs[1]!, 8];
  for (const id of voters) assert.deepEqual(logTerms(net.node(id).raw), want, `node ${id}`);
  // Fast backtracking: at most one rejection per conflicting term per follower, far fewer than
  // one per entry (which would be 1+... ~20 here).
  assert.ok(rejects <= 8, `${rejects} rejections`);
});

test('fast backtracking: a follower with a long conflicting tail is repaired in a few round trips', () => {
  const leaderLog = [1, ...Array.from({ length: 50 }, () => 2)];
  const followerLog = [1, ...Array.from({ length: 80 }, () => 1)];
  const net = new Network([1, 2, 3], {
    config: quiet,
    storage: (id) =>
      storageWithLog(id === 2 ? followerLog : leaderLog, { voters: [1, 2, 3], learners: [] }, 2),
  });
  let rejects = 0;
  net.route = (m) => {
    if (m.type === 'AppResp' && m.reject && m.from === 2) rejects++;
    return 'deliver';
  };
  net.campaign(1);
  assert.deepEqual(logTerms(net.node(2).raw), logTerms(net.node(1).raw));
  assert.ok(rejects <= 2, `${rejects} rejections`);
});

test('§10.2.1: the leader counts its own log toward commit only after persisting it, but may send appends in parallel', () => {
  // Single voter: nobody else can make up the majority.
  const net = new Network([1]);
  net.campaign(1);
  const node = net.node(1).raw;
  node.propose(text('x'));
  const rd = node.ready();
  assert.equal(rd.entries.length, 1);
  assert.equal(node.raft.log.committed, rd.entries[0]!.index - 1, 'not committed before the fsync');
  net.node(1).storage.append(rd.entries);
  node.advance();
  assert.equal(node.raft.log.committed, rd.entries[0]!.index, 'committed once persisted');

  // Three voters: the append to followers is in the same Ready as the leader's own entries.
  const net3 = new Network([1, 2, 3]);
  net3.campaign(1);
  const leader = net3.node(1).raw;
  leader.propose(text('y'));
  const rd3 = leader.ready();
  assert.equal(rd3.entries.length, 1);
  assert.equal(rd3.messages.filter((m) => m.type === 'App' && m.entries.length === 1).length, 2);
  leader.advance();
});

test('proposals made before the next Ready are batched into one append per follower', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const leader = net.node(1).raw;
  for (let i = 0; i < 10; i++) leader.propose(text(`p${i}`));
  const rd = leader.ready();
  assert.equal(rd.entries.length, 10);
  const apps = rd.messages.filter((m) => m.type === 'App');
  assert.equal(apps.length, 2);
  for (const m of apps) assert.equal(m.type === 'App' && m.entries.length, 10);
  leader.advance();
});

test('lazyCommitBroadcast: the new commit index waits for the next append, or for flushCommit', () => {
  const net = new Network([1, 2, 3], { config: { lazyCommitBroadcast: true } });
  net.campaign(1);
  net.raft(1).flushCommit();
  net.stabilize();
  const sent: Message[] = [];
  net.route = (m) => {
    sent.push(m);
    return 'deliver';
  };
  net.propose(1, 'a');
  const leader = net.raft(1);
  assert.deepEqual(net.node(1).applied, ['a'], 'the leader commits and applies at once');
  assert.deepEqual(net.node(2).applied, [], 'followers have not been told yet');
  assert.equal(sent.filter((m) => m.type === 'App' && m.entries.length === 0).length, 0, 'no append only for the commit');
  assert.ok(leader.commitUnannounced());

  net.propose(1, 'b');
  assert.deepEqual(net.node(2).applied, ['a'], "b's append carried a's commit");
  assert.deepEqual(net.node(3).applied, ['a']);

  net.raft(1).flushCommit();
  net.stabilize();
  assert.ok(!leader.commitUnannounced());
  for (const id of [2, 3]) assert.deepEqual(net.node(id).applied, ['a', 'b']);
});

test('lazyCommitBroadcast: the follower a proposal came through is told at once when it commits', () => {
  // Regression (issue 13, item 9): its client waits until that follower applies the entry, so
  // holding the commit back made every write through a follower wait for the flush timer.
  const net = new Network([1, 2, 3], { config: { lazyCommitBroadcast: true } });
  net.campaign(1);
  net.raft(1).flushCommit();
  net.stabilize();
  net.propose(2, 'via-2');
  assert.deepEqual(net.node(2).applied, ['via-2'], 'the proposing follower applied it without a flush');
  assert.deepEqual(net.node(3).applied, [], 'the other follower still learns it lazily');
  assert.ok(net.raft(1).commitUnannounced());
  net.propose(1, 'direct');
  assert.deepEqual(net.node(2).applied, ['via-2'], "the leader's own proposals stay lazy for every follower");
});

test('lazyCommitBroadcast: a heartbeat tells followers the commit index too', () => {
  const net = new Network([1, 2, 3], { config: { lazyCommitBroadcast: true } });
  net.campaign(1);
  net.propose(1, 'a');
  assert.deepEqual(net.node(2).applied, []);
  net.tick(1);
  net.stabilize();
  assert.ok(!net.raft(1).commitUnannounced());
  assert.deepEqual(net.node(2).applied, ['a']);
  assert.deepEqual(net.node(3).applied, ['a']);
});

test('flow control: maxMsgBytes bounds the entries per append (at least one entry is always sent)', () => {
  const net = new Network([1, 2], { config: { maxMsgBytes: 10 } });
  net.campaign(1);
  const sizes: number[] = [];
  net.route = (m) => {
    if (m.type === 'App' && m.entries.length > 0) sizes.push(m.entries.reduce((s, e) => s + e.data.length, 0));
    return 'deliver';
  };
  const leader = net.node(1).raw;
  for (let i = 0; i < 6; i++) leader.propose(text('abcd'));
  leader.propose(text('a-much-longer-entry'));
  net.stabilize();
  assert.ok(sizes.length >= 4);
  for (const s of sizes) assert.ok(s <= 10 || s === 'a-much-longer-entry'.length, `append of ${s} bytes`);
  assert.equal(net.node(2).applied.length, 7);
});

test('flow control: a follower in probe state gets one append at a time until it answers', () => {
  const net = new Network([1, 2, 3], { config: quiet });
  net.campaign(1);
  net.isolate(3);
  net.propose(1, 'a');
  // Answers from 3 are lost: 1 does not know 3's match. Put 3 back in probe and hold its traffic.
  net.raft(1).reportUnreachable(3);
  net.heal();
  net.route = (m) => (m.to === 3 ? 'hold' : 'deliver');
  net.propose(1, 'b');
  net.propose(1, 'c');
  net.propose(1, 'd');
  const toThree = net.held.filter((m) => m.type === 'App');
  assert.equal(toThree.length, 1, 'one probe in flight');
  assert.equal(net.raft(1).tracker.progress.get(3)!.state, 'probe');
});

test('flow control: in replicate state at most maxInflightMsgs appends are in flight', () => {
  const net = new Network([1, 2], { config: { maxInflightMsgs: 3, maxMsgBytes: 1 } });
  net.campaign(1);
  assert.equal(net.raft(1).tracker.progress.get(2)!.state, 'replicate');
  net.route = (m) => (m.to === 2 ? 'hold' : 'deliver');
  const leader = net.node(1).raw;
  for (let i = 0; i < 10; i++) {
    leader.propose(text(`e${i}`));
    net.stabilize();
  }
  assert.equal(net.held.filter((m) => m.type === 'App').length, 3);
  // Delivering the held appends lets the window slide until everything is replicated.
  net.route = () => 'deliver';
  const held = net.held;
  net.held = [];
  for (const m of held) net.deliver(m);
  net.stabilize();
  assert.equal(net.node(2).applied.length, 10);
});

test('§5.4.2 Figure 8: a leader never commits an entry from a previous term by counting replicas', () => {
  const { net, s1Applied, finalTerm7 } = runFigure8(Raft);
  assert.ok(!s1Applied.includes('x'), 'S1 did not commit the term-2 entry when it reached a majority');
  // S5 later overwrote index 7 everywhere, which is safe because it was never committed.
  for (const id of [2, 3, 4, 5]) assert.equal(net.raft(id).log.term(7), finalTerm7);
  for (const n of net.nodes.values()) assert.ok(!n.applied.includes('x'));
});

test('§5.4.2 Figure 8 with the rule broken (commit by counting replicas): a committed entry is lost', () => {
  class CountingCommitRaft extends Raft {
    protected override maybeCommit(): boolean {
      const index = this.tracker.quorumMatchIndex();
      if (index <= this.log.committed) return false;
      this.log.commitTo(index);
      return true;
    }
  }
  const { net, s1Applied } = runFigure8(CountingCommitRaft);
  assert.ok(s1Applied.includes('x'), 'S1 applied the term-2 entry');
  for (const id of [2, 3, 4, 5]) assert.ok(!net.node(id).applied.includes('x'), `node ${id} lost it`);
});

/**
 * Figure 8 with a no-op per leader: S1 (term 2) gets "x" to S2 only; S5 (term 3) is elected by
 * S3, S4 and appends its no-op at the same index; S1 (term 4) brings "x" to S3 (a majority: S1, S2,
 * S3) and crashes before its own no-op replicates; S5 is elected again and overwrites index 7.
 */
function runFigure8(raftClass: typeof Raft) {
  const ids = [1, 2, 3, 4, 5];
  // maxMsgBytes 0: one entry per append, so we can let exactly the entries we want through.
  const net = new Network(ids, { config: { ...quiet, maxMsgBytes: 0 }, raftClass: () => raftClass });
  net.campaign(1); // Term 2, no-op at index 6.
  assert.equal(net.raft(1).log.lastIndex(), 6);
  net.route = (m) => (m.from === 1 && m.to !== 2 ? 'drop' : 'deliver');
  net.propose(1, 'x'); // Index 7, term 2, only on S1 and S2.
  assert.equal(net.raft(2).log.lastIndex(), 7);
  assert.equal(net.raft(3).log.lastIndex(), 6);

  // (b) S1 down; S5 elected for term 3 by S3, S4; its no-op at 7 reaches nobody.
  net.down.add(1);
  net.route = (m) => (m.from === 5 && m.type === 'App' ? 'drop' : 'deliver');
  net.campaign(5);
  assert.equal(net.raft(5).role, 'leader');
  assert.equal(net.raft(5).term, 3);
  assert.equal(net.raft(5).log.term(7), 3);

  // (c) S5 down, S1 back; S1 elected for term 4; only index 7 (term 2) reaches S2 and S3.
  net.down.delete(1);
  net.restart(1);
  net.down.add(5);
  // Entries past 7 are never stored anywhere but S1 (it crashes first); a probe that the follower
  // rejects anyway (it lacks the previous entry) still arrives, so S1 can find S3's match.
  net.route = (m) =>
    m.from === 1 &&
    m.type === 'App' &&
    m.entries.some((e) => e.index > 7) &&
    net.raft(m.to).log.matchTerm(m.prevLogIndex, m.prevLogTerm)
      ? 'drop'
      : 'deliver';
  // Term 3 is taken (S3, S4 voted for S5), so S1 wins in term 4.
  for (let i = 0; i < 3 && net.raft(1).role !== 'leader'; i++) net.campaign(1);
  assert.equal(net.raft(1).role, 'leader');
  assert.equal(net.raft(1).term, 4);
  net.stabilize();
  assert.equal(net.raft(3).log.term(7), 2, 'x is on S1, S2, S3: a majority');
  const s1Applied = [...net.node(1).applied];

  // (d) S1 crashes; S5 comes back and is elected (by S2, S3, S4), overwriting index 7.
  net.down.add(1);
  net.down.delete(5);
  net.restart(5);
  net.route = () => 'deliver';
  for (let i = 0; i < 3 && net.raft(5).role !== 'leader'; i++) net.campaign(5);
  assert.equal(net.raft(5).role, 'leader');
  net.propose(5, 'after');
  return { net, s1Applied, finalTerm7: 3 };
}

test('followers forward proposals to the leader', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(3, 'from-3');
  for (const id of [1, 2, 3]) assert.deepEqual(net.node(id).applied, ['from-3']);
});

test('proposing with no known leader throws Unavailable ("proposal dropped")', () => {
  const net = new Network([1, 2, 3]);
  assert.throws(() => net.node(2).raw.propose(text('x')), (e) => isLichenError(e, 'Unavailable'));
  net.isolate(1);
  net.node(1).raw.campaign();
  assert.equal(net.raft(1).role, 'precandidate');
  assert.throws(() => net.node(1).raw.propose(text('x')), (e) => isLichenError(e, 'Unavailable'));
});

test('maxUncommittedBytes: a leader refuses proposals beyond the bound with Overloaded, but always takes one', () => {
  const net = new Network([1, 2, 3], { config: { maxUncommittedBytes: 10 } });
  net.campaign(1);
  net.isolate(1);
  const leader = net.node(1).raw;
  leader.propose(text('a'.repeat(30))); // Alone it exceeds the bound but nothing else is pending.
  assert.throws(() => leader.propose(text('b')), (e) => isLichenError(e, 'Overloaded'));
  net.heal();
  net.stabilize();
  leader.propose(text('c')); // Committed and applied: the budget is free again.
  net.stabilize();
  assert.deepEqual(net.node(2).applied.map((s) => s.slice(0, 1)), ['a', 'c']);
});

test('§5.2, §5.4.3: one leader per term and identical applied sequences under message loss, partitions and restarts (randomized)', () => {
  for (let seed = 1; seed <= 10; seed++) {
    const net = new Network([1, 2, 3, 4, 5], { seed });
    const rnd = seededRandom(seed);
    net.route = () => (rnd() < 0.2 ? 'drop' : 'deliver');
    const leaderOfTerm = new Map<number, number>();
    for (let step = 0; step < 150; step++) {
      chaosStep(net, rnd, `s${seed}-${step}`);
      // Election Safety (§5.2): at most one leader per term.
      for (const n of net.nodes.values()) {
        if (n.raw.raft.role !== 'leader') continue;
        const known = leaderOfTerm.get(n.raw.raft.term);
        assert.ok(known === undefined || known === n.id, `seed ${seed}: two leaders in term ${n.raw.raft.term}`);
        leaderOfTerm.set(n.raw.raft.term, n.id);
      }
    }
    net.heal();
    net.tickAll(60);
    // State Machine Safety: every node applied the same sequence (a prefix of the longest).
    const applied = [...net.nodes.values()].map((n) => n.applied);
    const longest = applied.reduce((a, b) => (b.length > a.length ? b : a));
    for (const a of applied) assert.deepEqual(a, longest.slice(0, a.length), `seed ${seed}`);
    assert.ok(longest.length > 10, `seed ${seed}: progress (${longest.length} applied)`);
  }
});
