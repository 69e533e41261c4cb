// Unit tests for raft bugs the simulator (src/sim) found. Each names the simulator seed that
// exposed it; the seed itself is replayed by src/sim/sim.test.ts (src/sim/regressions.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from '../errors.js';
import { RawNode } from './rawnode.js';
import { Network, seededRandom, storageWithLog, text } from './testkit.js';
import { encodeConfChange } from './membership.js';
import { ConfChangeType, EntryType, type Message } from './types.js';

function node(id: number, terms: number[], term: number): RawNode {
  const storage = storageWithLog(terms, { voters: [1, 2, 3], learners: [] }, term);
  return new RawNode({ id, storage, random: seededRandom(id), preVote: false, checkQuorum: false });
}

function drain(rn: RawNode): Message[] {
  if (!rn.hasReady()) return [];
  const rd = rn.ready();
  rn.advance();
  return [...rd.messages, ...rd.messagesAfterPersist];
}

test('§5.1: a vote request with a stale term is answered with a rejection carrying the current term (sim seed 3605)', () => {
  const voter = node(1, [1, 2], 9);
  voter.step({ type: 'Vote', from: 2, to: 1, term: 4, lastLogIndex: 10, lastLogTerm: 4, transfer: false });
  const [resp] = drain(voter);
  assert.ok(resp !== undefined && resp.type === 'VoteResp', 'the stale candidate gets an answer');
  assert.equal(resp.reject, true);
  assert.equal(resp.term, 9);
  assert.equal(voter.raft.term, 9);
  assert.equal(voter.raft.vote, 0);

  // The candidate learns the higher term, so its next campaign can reach voters that are ahead.
  const candidate = node(2, [1, 2, 4], 4);
  candidate.campaign();
  drain(candidate);
  assert.equal(candidate.raft.role, 'candidate');
  candidate.step({ ...resp, to: 2 });
  assert.equal(candidate.raft.term, 9);
  assert.equal(candidate.raft.role, 'follower');
});

test('§4.2.2: a leader that removes itself applies the removal only once the remaining voters know it committed (sim seeds 9451, 11744, 15574)', () => {
  // Four voters, one of them down (a wiped member awaiting replacement). The leader removes itself;
  // followers hear of commits only with later appends (lazyCommitBroadcast), and the server stops
  // a member as soon as it applies its own removal.
  const net = new Network([1, 2, 3, 4], { config: { lazyCommitBroadcast: true } });
  net.campaign(1);
  net.down.add(3);
  net.node(1).raw.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1, context: new Uint8Array(0) });
  net.stabilize();
  assert.deepEqual(net.node(1).conf.voters, [2, 3, 4], 'the leader applied its removal');
  net.down.add(1);
  // The others learned that the removal committed, so they count votes among 2, 3 and 4: two of
  // them elect a leader. Before the fix they still counted 1, 2, 3 and 4, and two of four is no quorum.
  for (const id of [2, 4]) assert.deepEqual(net.node(id).conf.voters, [2, 3, 4], `node ${id}`);
  const leader = net.electSomeone();
  net.propose(leader, 'after');
  net.tickAll(); // the lazy commit broadcast reaches the follower with the next heartbeat
  for (const id of [2, 4]) assert.deepEqual(net.node(id).applied, ['after'], `node ${id}`);
});

test('§4.2.2: until the remaining voters answer, a removed leader holds its removal back, refuses proposals and keeps its vote', () => {
  const net = new Network([1, 2, 3], { config: { lazyCommitBroadcast: true, checkQuorum: false, preVote: false } });
  net.campaign(1);
  // The followers store the removal, but neither a heartbeat nor the commit index reaches them.
  net.route = (m) => (m.type === 'Heartbeat' || (m.type === 'App' && m.entries.length === 0) ? 'drop' : 'deliver');
  net.node(1).raw.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 1, context: new Uint8Array(0) });
  net.stabilize();
  assert.equal(net.raft(1).log.committed, net.raft(1).log.lastIndex(), 'the removal committed');
  assert.deepEqual(net.node(1).conf.voters, [1, 2, 3], 'but is not applied');
  assert.equal(net.raft(1).role, 'leader');
  assert.throws(() => net.node(1).raw.propose(text('x')), (e: unknown) => isLichenError(e, 'Unavailable'));
  // Another member campaigns in the old configuration: the removed leader votes for it, and
  // applies its removal once the new leader tells it the commit index.
  net.heal();
  net.campaign(2);
  assert.equal(net.raft(2).role, 'leader');
  net.tickAll(2);
  assert.deepEqual(net.node(1).conf.voters, [2, 3]);
  for (const id of [2, 3]) assert.deepEqual(net.node(id).conf.voters, [2, 3], `node ${id}`);
});

test('§4.2.2: a member that holds its own committed removal may still campaign, since its log may be the only complete one (analysis of sim seed 14837)', () => {
  // Four voters, 4 down. Leader 3 removes itself and appends one more entry; the others store the
  // removal but neither that entry nor any commit index reaches them.
  const net = new Network([1, 2, 3, 4], { config: { lazyCommitBroadcast: true, checkQuorum: false, preVote: false, maxMsgBytes: 1 } });
  net.campaign(3);
  net.down.add(4);
  const removalIndex = net.raft(3).log.lastIndex() + 1;
  net.route = (m) => (m.type === 'Heartbeat' || (m.type === 'App' && m.entries.some((e) => e.index > removalIndex)) ? 'drop' : 'deliver');
  net.node(3).raw.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3, context: new Uint8Array(0) });
  net.node(3).raw.propose(text('x'));
  net.stabilize();
  assert.equal(net.raft(3).log.committed, removalIndex, 'the removal committed on 3');
  for (const id of [1, 2]) assert.equal(net.raft(id).log.lastIndex(), removalIndex, `node ${id} holds the removal but not the entry after it`);
  // 3 restarts: it knows its removal committed, not whether the others know, so it holds it back.
  net.restart(3);
  net.heal();
  // Only 3 can win a vote (its log is the most complete, and 4 is down). Before the fix it could not
  // campaign with a committed change unapplied, and no leader was ever elected. Elected, it tells
  // the others that its removal committed, then applies it.
  for (let tick = 0; tick < 200 && net.raft(3).log.applied < removalIndex; tick++) net.tickAll();
  assert.deepEqual(net.node(3).conf.voters, [1, 2, 4], 'node 3 applied its removal');
  assert.ok(net.raft(3).term > 1, 'after leading a term of its own');
  net.down.add(3);
  const leader = net.electSomeone();
  assert.ok(leader === 1 || leader === 2);
  net.propose(leader, 'after');
  assert.deepEqual(net.node(leader).applied.slice(-2), ['x', 'after']);
});

test('a commit index that passes a membership change is synced before anything this member says leaves (analysis of sim seed 5784)', () => {
  // A follower holds an entry that removes member 3; the leader's heartbeat tells it the entry
  // committed, and its answer may count toward the removed leader's handoff. Told so, a removed
  // member stops; had this follower forgotten it in a machine crash (a commit-only change was not
  // synced), it would count votes among 1, 2, 3 and 4 again after a restart, and with 3 stopped
  // and 4 lost no leader could ever be elected.
  const storage = storageWithLog([1, 1], { voters: [1, 2, 3, 4], learners: [] }, 1, 2);
  const follower = new RawNode({ id: 2, storage, random: seededRandom(2), preVote: false, checkQuorum: false });
  const persist = (): void => {
    const rd = follower.ready();
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    follower.advance();
  };
  const removal = { term: 1, index: 3, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3, context: new Uint8Array(0) }) };
  follower.step({ type: 'App', from: 1, to: 2, term: 1, prevLogIndex: 2, prevLogTerm: 1, entries: [removal], commit: 2 });
  persist();
  follower.step({ type: 'Heartbeat', from: 1, to: 2, term: 1, commit: 3, context: new Uint8Array(0) });
  const rd = follower.ready();
  assert.equal(rd.hardState?.commit, 3);
  assert.equal(rd.mustSync, true, 'the commit index that passes the removal is synced');
  assert.deepEqual(rd.messages, [], 'nothing leaves before it is durable');
  assert.deepEqual(rd.messagesAfterPersist.map((m) => m.type), ['HeartbeatResp']);
  storage.setHardState(rd.hardState!);
  follower.advance();
  // An ordinary commit-only change still skips the sync and answers at once.
  follower.step({ type: 'App', from: 1, to: 2, term: 1, prevLogIndex: 3, prevLogTerm: 1, entries: [{ term: 1, index: 4, type: EntryType.Normal, data: text('x') }], commit: 3 });
  persist();
  follower.step({ type: 'Heartbeat', from: 1, to: 2, term: 1, commit: 4, context: new Uint8Array(0) });
  const plain = follower.ready();
  assert.equal(plain.hardState?.commit, 4);
  assert.equal(plain.mustSync, false);
  assert.deepEqual(plain.messages.map((m) => m.type), ['HeartbeatResp']);
});
