// Which outgoing messages may leave before a Ready is durable (Ready.messages) and which must wait
// for it (Ready.messagesAfterPersist), per role. Thesis §3.8: a server persists its term and vote
// "before responding to RPCs", and new log entries "before they are counted towards the entries'
// commitment"; §10.2.1: a leader may write its log in parallel with replicating it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawNode, type Ready } from './rawnode.js';
import { isLichenError } from '../errors.js';
import { MemoryStorage } from './storage.js';
import { Network, chaosStep, seededRandom, storageWithLog, text, type TestNode } from './testkit.js';
import type { Message, MessageType } from './types.js';

const quiet = { preVote: false, checkQuorum: false };

const storages = new Map<RawNode, MemoryStorage>();

/** A member of the group `voters` (+ `learners`) whose log holds entries of the given terms. */
function member(id: number, terms: number[], voters: number[], config = {}, learners: number[] = []): RawNode {
  const storage = storageWithLog(terms, { voters, learners });
  const rn = new RawNode({ id, storage, random: seededRandom(id), ...quiet, ...config });
  storages.set(rn, storage);
  return rn;
}

/** Takes the next Ready, persists it and advances. */
function handle(rn: RawNode): Ready {
  const rd = rn.ready();
  const storage = storages.get(rn)!;
  if (rd.snapshot) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  rn.advance();
  return rd;
}

/** The message types of the next Ready, as [may leave now, wait for persistence]. */
function sorted(rn: RawNode): [MessageType[], MessageType[]] {
  const rd = handle(rn);
  return [rd.messages.map((m) => m.type), rd.messagesAfterPersist.map((m) => m.type)];
}

function app(term: number, prevLogIndex: number, prevLogTerm: number, entryTerms: number[], commit = 0): Message {
  const entries = entryTerms.map((t, i) => ({ term: t, index: prevLogIndex + 1 + i, type: 0 as const, data: text('x') }));
  return { type: 'App', from: 1, to: 2, term, prevLogIndex, prevLogTerm, entries, commit };
}

test('follower: append responses wait for the fsync; heartbeat responses and forwarded requests leave at once', () => {
  const rn = member(2, [1], [1, 2, 3]);
  rn.step(app(1, 1, 1, [1, 1]));
  assert.deepEqual(sorted(rn), [[], ['AppResp']], 'an acknowledgement of entries not yet on disk waits');
  rn.step(app(1, 3, 1, [], 3));
  assert.deepEqual(sorted(rn), [[], ['AppResp']], 'even one with nothing new to write');
  rn.step(app(1, 9, 1, [1]));
  const rd = handle(rn);
  assert.ok(rd.messagesAfterPersist[0]?.type === 'AppResp' && rd.messagesAfterPersist[0].reject, 'a rejection waits too');
  rn.step({ type: 'Heartbeat', from: 1, to: 2, term: 1, commit: 3, context: new Uint8Array(0) });
  assert.deepEqual(sorted(rn), [['HeartbeatResp'], []]);
  rn.propose(text('p'));
  rn.readIndex(text('r'));
  rn.transferLeader(3);
  assert.deepEqual(sorted(rn), [['Prop', 'ReadIndex', 'TransferLeader'], []]);
});

test('follower: an answer to a snapshot waits until the snapshot is durable', () => {
  const rn = member(2, [1], [1, 2, 3]);
  const snapshot = { metadata: { index: 5, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: text('s') };
  rn.step({ type: 'Snap', from: 1, to: 2, term: 1, snapshot });
  const rd = rn.ready();
  assert.ok(rd.snapshot);
  assert.deepEqual([rd.messages, rd.messagesAfterPersist.map((m) => m.type)], [[], ['AppResp']]);
});

test('voter: a granted or refused vote and a pre-vote answer wait for the fsync', () => {
  const rn = member(2, [1], [1, 2, 3]);
  rn.step({ type: 'Vote', from: 3, to: 2, term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
  const rd = handle(rn);
  assert.deepEqual(rd.hardState, { term: 2, vote: 3, commit: 0 });
  assert.deepEqual([rd.messages, rd.messagesAfterPersist.map((m) => m.type)], [[], ['VoteResp']]);
  rn.step({ type: 'Vote', from: 1, to: 2, term: 2, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
  assert.deepEqual(sorted(rn), [[], ['VoteResp']], 'a refusal in the same term (nothing to persist) waits as well');
  rn.step({ type: 'PreVote', from: 1, to: 2, term: 3, lastLogIndex: 1, lastLogTerm: 1, transfer: false });
  assert.deepEqual(sorted(rn), [[], ['PreVoteResp']]);
});

test('candidate: vote requests wait until its new term and its vote for itself are durable', () => {
  const rn = member(1, [1], [1, 2, 3]);
  rn.campaign();
  const rd = rn.ready();
  assert.deepEqual(rd.hardState, { term: 2, vote: 1, commit: 0 });
  assert.ok(rd.mustSync);
  assert.deepEqual([rd.messages, rd.messagesAfterPersist.map((m) => m.type)], [[], ['Vote', 'Vote']]);
});

test('pre-candidate: pre-vote requests change no durable state and leave at once', () => {
  const rn = member(1, [1], [1, 2, 3], { preVote: true });
  rn.campaign();
  const rd = rn.ready();
  assert.equal(rd.hardState, undefined);
  assert.deepEqual([rd.messages.map((m) => m.type), rd.messagesAfterPersist], [['PreVote', 'PreVote'], []]);
});

/** Snapshots the test state machine at its applied index and compacts the log, like a server does. */
function snapshotAndCompact(node: TestNode): void {
  node.storage.createSnapshot(node.appliedIndex, node.conf, text(JSON.stringify(node.applied)));
  node.storage.compact(node.appliedIndex);
}

const WAITING: ReadonlySet<MessageType> = new Set(['AppResp', 'Vote', 'VoteResp', 'PreVoteResp']);

test('leader: appends, heartbeats, snapshots, TimeoutNow and read answers leave before its own fsync', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const leader = net.node(1);
  const fromElection = leader.readies.length;
  leader.raw.propose(text('a'));
  const rd = leader.raw.ready();
  assert.equal(rd.entries.length, 1, "the entry is not yet on the leader's disk");
  assert.deepEqual([rd.messages.map((m) => m.type), rd.messagesAfterPersist], [['App', 'App'], []]);
  net.queue.push(...rd.messages);
  leader.storage.append(rd.entries);
  leader.raw.advance();
  net.tickAll(1);
  net.node(2).raw.readIndex(text('read'));
  net.stabilize();
  net.down.add(3);
  for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
  snapshotAndCompact(leader);
  net.down.delete(3);
  net.tickAll(3);
  leader.raw.transferLeader(2);
  net.stabilize();
  assert.equal(net.raft(2).role, 'leader');
  const now = new Set<MessageType>();
  const after = new Set<MessageType>();
  for (const ready of leader.readies.slice(fromElection)) {
    if (ready.softState?.role === 'follower') break;
    for (const m of ready.messages) now.add(m.type);
    for (const m of ready.messagesAfterPersist) after.add(m.type);
  }
  assert.deepEqual([...now].sort(), ['App', 'Heartbeat', 'ReadIndexResp', 'Snap', 'TimeoutNow']);
  assert.deepEqual([...after], []);
});

test('a member answering a stale leader (to tell it the term) waits for the fsync like any append response', () => {
  const rn = member(2, [1, 2], [1, 2, 3], { checkQuorum: true });
  rn.step(app(1, 1, 1, [1]));
  assert.deepEqual(sorted(rn), [[], ['AppResp']]);
});

test('a Ready that changes the term or the vote holds every message until it is durable', () => {
  const follower = member(2, [1], [1, 2, 3]);
  follower.step({ type: 'Heartbeat', from: 1, to: 2, term: 2, commit: 0, context: new Uint8Array(0) });
  assert.deepEqual(sorted(follower), [[], ['HeartbeatResp']], 'a heartbeat of a new term');
  // A lone voter wins its election in one step; appends to its learner in the same Ready would
  // carry a term that a crash could forget, and a leader of that term again could write other
  // entries at the same index and term.
  const lone = member(1, [1], [1], {}, [2]);
  lone.campaign();
  lone.propose(text('x'));
  const rd = handle(lone);
  assert.deepEqual(rd.hardState && [rd.hardState.term, rd.hardState.vote], [2, 1]);
  assert.deepEqual([rd.messages, rd.messagesAfterPersist.map((m) => m.type)], [[], ['App']]);
  lone.tick();
  assert.deepEqual(sorted(lone), [['Heartbeat'], []], 'once the term is durable, the leader\'s messages leave at once');
});

test('in randomized runs with loss, partitions and restarts, no Ready lets a promise leave before its fsync', () => {
  let readies = 0;
  let early = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const net = new Network([1, 2, 3, 4, 5], { seed });
    const rnd = seededRandom(seed);
    net.route = () => (rnd() < 0.2 ? 'drop' : 'deliver');
    const checked = new Map<TestNode, { term: number; vote: number; seen: number }>();
    const check = (): void => {
      for (const node of net.nodes.values()) {
        const last = checked.get(node) ?? { term: 0, vote: 0, seen: 0 };
        for (const rd of node.readies.slice(last.seen)) {
          readies++;
          early += rd.messages.length;
          for (const m of rd.messages) assert.ok(!WAITING.has(m.type), `seed ${seed}: ${m.type} sent before the fsync`);
          const hs = rd.hardState;
          if (hs && (hs.term !== last.term || hs.vote !== last.vote)) {
            assert.deepEqual(rd.messages, [], `seed ${seed}: messages before a new term or vote is durable`);
            last.term = hs.term;
            last.vote = hs.vote;
          }
        }
        last.seen = node.readies.length;
        checked.set(node, last);
      }
    };
    for (let step = 0; step < 150; step++) {
      chaosStep(net, rnd, `s${seed}-${step}`, (restarted) => checked.set(restarted, { ...restarted.raw.raft.hardState(), seen: 0 }));
      check();
    }
  }
  assert.ok(readies > 1000 && early > 1000, `only ${readies} Readies, ${early} messages sent at once`);
});

test('in randomized runs where messages are stepped while Readies are in flight, nothing leaves early that waits, and every member applies the same log', () => {
  let early = 0;
  let applied = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const net = new Network([1, 2, 3, 4, 5], { seed });
    const rnd = seededRandom(seed);
    /** Each member's Ready in flight: written (durable) once completed. */
    const inFlight = new Map<TestNode, Ready>();
    const complete = (node: TestNode): void => {
      const rd = inFlight.get(node)!;
      inFlight.delete(node);
      if (rd.snapshot) {
        node.storage.applySnapshot(rd.snapshot);
        node.applied = JSON.parse(new TextDecoder().decode(rd.snapshot.data as Uint8Array)) as string[];
        node.appliedIndex = rd.snapshot.metadata.index;
        node.conf = rd.snapshot.metadata.conf;
      }
      node.storage.append(rd.entries);
      if (rd.hardState) node.storage.setHardState(rd.hardState);
      net.queue.push(...rd.messagesAfterPersist);
      for (const e of rd.committedEntries) {
        assert.equal(e.index, node.appliedIndex + 1, `seed ${seed}: node ${node.id} applies in order`);
        node.appliedIndex = e.index;
        if (e.data.length > 0 && e.type === 0) node.applied.push(new TextDecoder().decode(e.data));
      }
      node.raw.advance();
    };
    const release = (node: TestNode): void => {
      const durable = node.storage.initialState().hardState;
      for (const m of node.raw.takeMessagesDuringPersist()) {
        early++;
        assert.ok(!WAITING.has(m.type), `seed ${seed}: ${m.type} left before the fsync`);
        assert.equal(m.term, m.type === 'PreVote' ? durable.term + 1 : durable.term, `seed ${seed}: ${m.type} of a term not yet durable`);
        net.queue.push(m);
      }
    };
    for (let step = 0; step < 300; step++) {
      const ids = [...net.nodes.keys()];
      const pick = (): TestNode => net.node(ids[Math.floor(rnd() * ids.length)]!);
      try {
        pick().raw.propose(text(`s${seed}-${step}`));
      } catch (error) {
        if (!isLichenError(error)) throw error;
      }
      if (rnd() < 0.03) {
        // A crash: the write in flight is lost.
        const node = pick();
        inFlight.delete(node);
        net.restart(node.id);
      }
      for (const node of net.nodes.values()) {
        if (rnd() < 0.5) node.raw.tick();
        if (inFlight.has(node)) {
          if (rnd() < 0.5) complete(node);
          else release(node);
        }
        if (!inFlight.has(node) && node.raw.hasReady()) {
          const rd = node.raw.ready();
          net.queue.push(...rd.messages);
          inFlight.set(node, rd);
        }
      }
      const batch = net.queue;
      net.queue = [];
      for (const m of batch) {
        if (rnd() < 0.1) continue;
        const to = net.nodes.get(m.to);
        if (!to) continue;
        try {
          to.raw.step(m);
        } catch (error) {
          if (!isLichenError(error)) throw error;
        }
        if (inFlight.has(to) && rnd() < 0.5) release(to);
      }
    }
    const logs = [...net.nodes.values()].map((n) => n.applied);
    const longest = logs.reduce((a, b) => (b.length > a.length ? b : a));
    for (const log of logs) assert.deepEqual(log, longest.slice(0, log.length), `seed ${seed}: the members applied different logs`);
    applied += longest.length;
  }
  assert.ok(early > 1000 && applied > 500, `only ${early} messages left early, ${applied} entries applied`);
});
