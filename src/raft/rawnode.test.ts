import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from '../errors.js';
import { Raft, type VoteRequest } from './raft.js';
import { RawNode, type Ready } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import { Network, seededRandom, storageWithLog, text } from './testkit.js';
import type { Message } from './types.js';

test('a Ready carries hard state only when it changed, and mustSync only for entries, term or vote', () => {
  const net = new Network([1]);
  const rn = net.node(1).raw;
  rn.campaign();
  let rd = rn.ready();
  assert.ok(rd.hardState && rd.hardState.term === 2 && rd.hardState.vote === 1);
  assert.deepEqual(rd.softState, { lead: 1, role: 'leader' });
  assert.equal(rd.mustSync, true);
  net.node(1).storage.append(rd.entries);
  rn.advance();
  rd = rn.ready();
  assert.equal(rd.entries.length, 0);
  assert.ok(rd.hardState, 'the commit index moved');
  assert.equal(rd.mustSync, false, 'a commit-only change needs no fsync');
  assert.equal(rd.softState, undefined);
  rn.advance();
  assert.equal(rn.hasReady(), false);
});

test('hasReady is false while a Ready is outstanding, and ready() twice without advance() is a bug', () => {
  const net = new Network([1]);
  const rn = net.node(1).raw;
  rn.campaign();
  assert.equal(rn.hasReady(), true);
  rn.ready();
  assert.equal(rn.hasReady(), false);
  assert.throws(() => rn.ready(), /before advance/);
  rn.advance();
  assert.throws(() => rn.advance(), /without an outstanding/);
});

test('committed entries are handed to the application only once persisted locally', () => {
  const storage = new MemoryStorage();
  storage.setConfState({ voters: [1, 2, 3], learners: [] });
  const rn = new RawNode({ id: 2, storage, random: seededRandom(2) });
  rn.step({
    type: 'App',
    from: 1,
    to: 2,
    term: 1,
    prevLogIndex: 0,
    prevLogTerm: 0,
    entries: [{ term: 1, index: 1, type: 0, data: text('x') }],
    commit: 1,
  });
  let rd = rn.ready();
  assert.equal(rd.entries.length, 1);
  assert.equal(rd.hardState?.commit, 1);
  assert.equal(rd.committedEntries.length, 0, 'not applied before it is on our disk');
  storage.append(rd.entries);
  storage.setHardState(rd.hardState!);
  rn.advance();
  rd = rn.ready();
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1]);
  rn.advance();
  assert.equal(rn.status().applied, 1);
});

test('status reports role, term, commit, membership and (on the leader) progress', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'x');
  const s = net.node(1).raw.status();
  assert.equal(s.role, 'leader');
  assert.equal(s.lead, 1);
  assert.equal(s.commit, s.lastIndex);
  assert.equal(s.applied, s.commit);
  assert.deepEqual(s.conf, { voters: [1, 2, 3], learners: [] });
  assert.equal(s.progress?.get(2)?.match, s.lastIndex);
  assert.equal(s.progress?.get(2)?.state, 'replicate');
  assert.equal(net.node(2).raw.status().progress, undefined);
});

test('bootstrap writes the initial membership as committed entries that every later member learns', () => {
  const net = new Network([1, 2, 3, 4], { joiners: [4] });
  assert.deepEqual(net.node(1).conf, { voters: [1, 2, 3], learners: [] });
  assert.equal(net.raft(1).log.committed, 3);
  net.campaign(1);
  net.node(1).raw.proposeConfChange({ type: 1, nodeId: 4, context: new Uint8Array(0) });
  net.stabilize();
  net.tickAll(2);
  assert.deepEqual(net.node(4).conf, { voters: [1, 2, 3], learners: [4] }, 'the joiner replayed the bootstrap entries');
});

test('a subclass that grants two votes in one term can elect two leaders in one term (for the simulator)', () => {
  class DoubleVoteRaft extends Raft {
    protected override canGrantVote(m: VoteRequest): boolean {
      return this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    }
  }
  for (const [raftClass, expectTwo] of [
    [DoubleVoteRaft, true],
    [Raft, false],
  ] as const) {
    const net = new Network([1, 2, 3], { config: { preVote: false, checkQuorum: false }, raftClass: () => raftClass });
    net.cut(1, 2);
    // Appends from 1 to 3 are held, so 3 does not learn of leader 1 before 2's request arrives.
    net.route = (m) => (m.from === 1 && m.type === 'App' ? 'hold' : 'deliver');
    net.campaign(1);
    net.campaign(2);
    const leaders = net.leaders();
    const terms = new Set(leaders.map((id) => net.raft(id).term));
    if (expectTwo) {
      assert.deepEqual(leaders, [1, 2]);
      assert.equal(terms.size, 1, 'two leaders in the same term');
    } else {
      assert.deepEqual(leaders, [1]);
    }
  }
});

test('a commit index beyond the log is DataLoss with etcd words, from a heartbeat and from a restart', () => {
  // The leader tells a follower a commit only up to what the follower acknowledged, so a follower
  // whose log ends before it lost entries it had promised (a wiped or truncated data directory).
  const storage = new MemoryStorage();
  storage.setConfState({ voters: [1, 2, 3], learners: [] });
  const rn = new RawNode({ id: 2, storage, random: seededRandom(2) });
  assert.throws(
    () => rn.step({ type: 'Heartbeat', from: 1, to: 2, term: 3, commit: 7, context: new Uint8Array(0) }),
    (error: unknown) =>
      isLichenError(error, 'DataLoss') &&
      error.message === 'tocommit(7) is out of range [lastIndex(0)]. Was the raft log corrupted, truncated, or lost?',
  );
  const truncated = new MemoryStorage();
  truncated.setConfState({ voters: [1, 2, 3], learners: [] });
  truncated.setHardState({ term: 3, vote: 1, commit: 7 });
  assert.throws(() => new RawNode({ id: 2, storage: truncated, random: seededRandom(2) }), (error: unknown) => isLichenError(error, 'DataLoss'));
});

test("the leader's status counts a follower active while it answered within the last two check-quorum rounds, not only since the last reset", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const active = (id: number) => net.node(1).raw.status().progress?.get(id)?.recentActive;
  // Three election timeouts, looking right after every tick, before the answers to that tick's
  // heartbeats arrive: a check-quorum round resets raft's own flags on one of these ticks, and a
  // member-remove check asked then saw live followers as inactive (a CI run was refused so).
  for (let i = 0; i < 3 * net.raft(1).electionTicks; i++) {
    net.node(1).raw.tick();
    assert.equal(active(2), true, `tick ${i}`);
    assert.equal(active(3), true, `tick ${i}`);
    net.stabilize();
  }
  // A follower that stops answering is reported inactive once two rounds passed without it.
  net.isolate(3);
  net.tick(1, 2 * net.raft(1).electionTicks);
  assert.equal(active(2), true);
  assert.equal(active(3), false);
});

/** Persists a Ready into `storage` as the application would (the test then calls advance()). */
function persist(storage: MemoryStorage, rd: Ready): void {
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
}

const types = (messages: Message[]): string[] => messages.map((m) => `${m.type}>${m.to}`);

function app(term: number, prevLogIndex: number, entryTerms: number[], commit = 0): Message {
  const entries = entryTerms.map((t, i) => ({ term: t, index: prevLogIndex + 1 + i, type: 0 as const, data: text(`e${prevLogIndex + 1 + i}`) }));
  return { type: 'App', from: 1, to: 2, term, prevLogIndex, prevLogTerm: 1, entries, commit };
}

test("while a Ready is in flight, a follower's forwarded requests and heartbeat answers leave at once; append answers and the entries they promise wait for the next Ready", () => {
  const storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 1);
  const rn = new RawNode({ id: 2, storage, random: seededRandom(2) });
  rn.step(app(1, 1, [1]));
  const inFlight = rn.ready();
  assert.deepEqual(inFlight.entries.map((e) => e.index), [2]);
  // Stepped while entry 2 is being written:
  rn.propose(text('p'));
  rn.readIndex(text('r'));
  rn.step({ type: 'Heartbeat', from: 1, to: 2, term: 1, commit: 1, context: new Uint8Array(0) });
  rn.step(app(1, 2, [1]));
  const early = rn.takeMessagesDuringPersist();
  assert.deepEqual(types(early), ['Prop>1', 'ReadIndex>1', 'HeartbeatResp>1'], 'in the order the core queued them; the append answer is not among them');
  assert.equal(rn.takeMessagesDuringPersist().length, 0, 'handed out once');
  rn.propose(text('q'));
  persist(storage, inFlight);
  assert.deepEqual(types(inFlight.messagesAfterPersist), ['AppResp>1']);
  rn.advance();
  const next = rn.ready();
  assert.deepEqual(next.entries.map((e) => e.index), [3], 'the append that arrived meanwhile is written in the next Ready');
  assert.deepEqual(types(next.messages), ['Prop>1'], 'only what was stepped after the last call; nothing twice');
  assert.equal(next.messages[0]?.type === 'Prop' && new TextDecoder().decode(next.messages[0].entries[0]!.data), 'q');
  assert.deepEqual(types(next.messagesAfterPersist), ['AppResp>1'], 'the answer for entry 3 waits for its write');
});

test('nothing leaves while a Ready is in flight unless the term and vote are durable', () => {
  // The Ready in flight changes the term: a message of that term may not leave before it is durable.
  let storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 1);
  let rn = new RawNode({ id: 2, storage, random: seededRandom(2) });
  rn.step({ type: 'Heartbeat', from: 1, to: 2, term: 2, commit: 0, context: new Uint8Array(0) });
  let inFlight = rn.ready();
  assert.equal(inFlight.hardState?.term, 2);
  rn.propose(text('p'));
  assert.deepEqual(rn.takeMessagesDuringPersist(), []);
  persist(storage, inFlight);
  rn.advance();
  assert.deepEqual(types(rn.ready().messages), ['Prop>1'], 'it leaves with the next Ready, once the term is durable');

  // A step while the Ready is in flight changes the term: what was queued before waits too.
  storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 1);
  rn = new RawNode({ id: 2, storage, random: seededRandom(2) });
  rn.step(app(1, 1, [1]));
  inFlight = rn.ready();
  rn.propose(text('p'));
  rn.step({ type: 'Heartbeat', from: 3, to: 2, term: 2, commit: 0, context: new Uint8Array(0) });
  rn.propose(text('q'));
  assert.deepEqual(rn.takeMessagesDuringPersist(), []);
  persist(storage, inFlight);
  rn.advance();
  const next = rn.ready();
  assert.equal(next.hardState?.term, 2);
  assert.deepEqual([types(next.messages), types(next.messagesAfterPersist)], [[], ['Prop>1', 'HeartbeatResp>3', 'Prop>3']]);

  // A vote granted in flight (same term) holds them as well.
  storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 2);
  rn = new RawNode({ id: 2, storage, random: seededRandom(2), preVote: false, checkQuorum: false });
  rn.tick();
  inFlight = rn.ready();
  rn.step({ type: 'Vote', from: 3, to: 2, term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
  rn.step({ type: 'Heartbeat', from: 1, to: 2, term: 2, commit: 0, context: new Uint8Array(0) });
  assert.equal(rn.raft.vote, 3);
  assert.deepEqual(rn.takeMessagesDuringPersist(), []);
});

test("a leader's read round leaves while its write is in flight; its proposals stay batched for the next Ready", () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const { raw, storage } = net.node(1);
  raw.propose(text('a'));
  const inFlight = raw.ready();
  assert.deepEqual(types(inFlight.messages), ['App>2', 'App>3']);
  raw.propose(text('b'));
  raw.propose(text('c'));
  assert.deepEqual(raw.takeMessagesDuringPersist(), [], 'group commit: proposals wait for the next Ready');
  raw.readIndex(text('read'));
  const early = raw.takeMessagesDuringPersist();
  assert.deepEqual(types(early), ['Heartbeat>2', 'Heartbeat>3'], "the read round's heartbeats");
  persist(storage, inFlight);
  raw.advance();
  const next = raw.ready();
  assert.deepEqual(
    next.messages.map((m) => (m.type === 'App' ? m.entries.map((e) => new TextDecoder().decode(e.data)) : m.type)),
    [['b', 'c'], ['b', 'c']],
    'one append per follower carries both proposals',
  );
});

test('nothing leaves while a Ready is in flight once the commit index passes a membership change that is not durable', () => {
  for (const membership of [true, false]) {
    const net = new Network([1, 2, 3]);
    net.campaign(1);
    const leader = net.node(1);
    if (membership) leader.raw.proposeConfChange({ type: 1, nodeId: 4, context: new Uint8Array(0) });
    else leader.raw.propose(text('x'));
    // The leader writes the entry; follower 2 writes it and answers; the answer is held.
    const written = leader.raw.ready();
    persist(leader.storage, written);
    leader.raw.advance();
    for (const m of written.messages) if (m.to === 2) net.node(2).raw.step(m);
    net.handleReady(net.node(2));
    const answer = net.queue.find((m) => m.type === 'AppResp' && m.from === 2)!;
    net.queue = [];
    // While the leader's next write is in flight, the answer commits the entry.
    leader.raw.propose(text('y'));
    const inFlight = leader.raw.ready();
    leader.raw.step(answer);
    assert.equal(leader.raw.raft.log.committed, written.entries[0]!.index);
    const early = leader.raw.takeMessagesDuringPersist();
    if (membership) {
      assert.deepEqual(early, [], 'the appends that tell the commit wait for a synced Ready');
      persist(leader.storage, inFlight);
      leader.raw.advance();
      const next = leader.raw.ready();
      assert.ok(next.mustSync);
      assert.deepEqual([types(next.messages), types(next.messagesAfterPersist)], [[], ['App>2', 'App>3']]);
    } else {
      assert.deepEqual(types(early), ['App>2', 'App>3'], 'an ordinary entry: the new commit index leaves at once');
    }
  }
});

test('takeMessagesDuringPersist() without an outstanding Ready is a bug', () => {
  const net = new Network([1]);
  assert.throws(() => net.node(1).raw.takeMessagesDuringPersist(), /without an outstanding/);
});
