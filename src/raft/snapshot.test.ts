import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawNode } from './rawnode.js';
import { Network, seededRandom, storageWithLog, text, type TestNode } from './testkit.js';
import type { Snapshot } from './types.js';

/** Snapshots the test state machine at its applied index and compacts the log, like a server does. */
function snapshotAndCompact(node: TestNode): Snapshot {
  const data = text(JSON.stringify(node.applied));
  const snap = node.storage.createSnapshot(node.appliedIndex, node.conf, data);
  node.storage.compact(node.appliedIndex);
  return snap;
}

test('§7: the leader sends a snapshot to a follower that needs compacted entries, and the follower catches up', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.down.add(3);
  for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
  snapshotAndCompact(net.node(1));
  net.propose(1, 'after-snapshot');
  net.down.delete(3);
  const sent: string[] = [];
  net.route = (m) => {
    if (m.to === 3) sent.push(m.type);
    return 'deliver';
  };
  net.tickAll(3);
  assert.ok(sent.includes('Snap'));
  assert.deepEqual(net.node(3).applied, ['v0', 'v1', 'v2', 'v3', 'v4', 'after-snapshot']);
  assert.equal(net.raft(1).tracker.progress.get(3)!.state, 'replicate');
});

test('§7: a follower ignores a snapshot that is not newer than its commit index', () => {
  const rn = new RawNode({
    id: 2,
    storage: storageWithLog([1, 1, 1, 1], { voters: [1, 2, 3], learners: [] }, 1, 4),
    random: seededRandom(2),
  });
  const snap: Snapshot = { metadata: { index: 3, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: text('[]') };
  rn.step({ type: 'Snap', from: 1, to: 2, term: 1, snapshot: snap });
  const rd = rn.ready();
  assert.equal(rd.snapshot, undefined);
  const resp = rd.messagesAfterPersist[0]!;
  assert.ok(resp.type === 'AppResp' && !resp.reject && resp.index === 4, 'answers with its commit index');
  rn.advance();
  assert.equal(rn.raft.log.lastIndex(), 4);
});

test('§7: if the follower already has the snapshot\'s last entry, it keeps the entries that follow', () => {
  const rn = new RawNode({
    id: 2,
    storage: storageWithLog([1, 1, 1, 1, 1], { voters: [1, 2, 3], learners: [] }, 1, 1),
    random: seededRandom(2),
  });
  const snap: Snapshot = { metadata: { index: 3, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: text('[]') };
  rn.step({ type: 'Snap', from: 1, to: 2, term: 1, snapshot: snap });
  assert.equal(rn.raft.log.lastIndex(), 5);
  assert.equal(rn.raft.log.committed, 3);
  assert.equal(rn.raft.log.unstableSnapshot(), undefined);
});

test('§7: a follower installs a newer snapshot, replacing its whole log, and adopts its membership', () => {
  const storage = storageWithLog([1, 1, 2], { voters: [1, 2, 3], learners: [] }, 2, 1);
  const rn = new RawNode({ id: 2, storage, random: seededRandom(2) });
  const snap: Snapshot = { metadata: { index: 10, term: 3, conf: { voters: [1, 2, 3], learners: [4] } }, data: text('["s"]') };
  rn.step({ type: 'Snap', from: 1, to: 2, term: 3, snapshot: snap });
  const rd = rn.ready();
  assert.equal(rd.snapshot, snap);
  assert.equal(rd.committedEntries.length, 0);
  assert.ok(rd.mustSync);
  const resp = rd.messagesAfterPersist[0]!;
  assert.ok(resp.type === 'AppResp' && !resp.reject && resp.index === 10);
  storage.applySnapshot(rd.snapshot!);
  rn.advance();
  assert.deepEqual(rn.status().conf, { voters: [1, 2, 3], learners: [4] });
  assert.equal(rn.status().applied, 10);
  assert.equal(rn.raft.log.firstIndex(), 11);
});

test('reportSnapshot: a failed snapshot moves the follower back to probe; a finished one continues after it', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.down.add(3);
  for (let i = 0; i < 3; i++) net.propose(1, `v${i}`);
  const snap = snapshotAndCompact(net.node(1));
  net.down.delete(3);
  net.route = (m) => (m.type === 'Snap' ? 'hold' : 'deliver');
  net.tickAll(2);
  const leader = net.raft(1);
  const pr = leader.tracker.progress.get(3)!;
  assert.equal(pr.state, 'snapshot');
  assert.equal(pr.pendingSnapshot, snap.metadata.index);
  net.node(1).raw.reportSnapshot(3, false);
  assert.equal(pr.state, 'probe');
  assert.equal(pr.next, pr.match + 1);
  // The next heartbeat answer triggers a new attempt, which we let through this time.
  net.held = [];
  net.route = () => 'deliver';
  net.tickAll(2);
  assert.deepEqual(net.node(3).applied, ['v0', 'v1', 'v2']);

  net.down.add(2);
  net.propose(1, 'v3');
  snapshotAndCompact(net.node(1));
  net.down.delete(2);
  net.route = (m) => (m.type === 'Snap' ? 'hold' : 'deliver');
  net.tickAll(2);
  const held = net.held.filter((m) => m.type === 'Snap');
  assert.equal(held.length, 1);
  net.held = [];
  net.route = () => 'deliver';
  net.deliver(held[0]!);
  net.node(1).raw.reportSnapshot(2, true);
  const pr2 = leader.tracker.progress.get(2)!;
  assert.equal(pr2.state === 'probe' || pr2.state === 'replicate', true);
  net.stabilize();
  net.tickAll(2);
  assert.deepEqual(net.node(2).applied, ['v0', 'v1', 'v2', 'v3']);
});

test('a restarted node recovers its term, vote, log and state machine from storage and snapshot', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  for (let i = 0; i < 4; i++) net.propose(1, `v${i}`);
  snapshotAndCompact(net.node(2));
  net.propose(1, 'v4');
  const before = net.raft(2);
  const term = before.term;
  const vote = before.vote;
  const last = before.log.lastIndex();
  const node = net.restart(2);
  assert.equal(node.raw.raft.term, term);
  assert.equal(node.raw.raft.vote, vote);
  assert.equal(node.raw.raft.log.lastIndex(), last);
  net.stabilize();
  assert.deepEqual(node.applied, ['v0', 'v1', 'v2', 'v3', 'v4'], 'entries after the snapshot are applied again');
  net.propose(1, 'v5');
  assert.deepEqual(net.node(2).applied.at(-1), 'v5');
});

test('a node that lost unpersisted entries in a crash catches up again from the leader', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  // Node 3 receives an append but crashes before handling its Ready.
  net.route = (m) => (m.to === 3 ? 'hold' : 'deliver');
  net.propose(1, 'b');
  const held = net.held;
  net.held = [];
  net.route = () => 'deliver';
  for (const m of held) net.node(3).raw.step(m);
  assert.equal(net.node(3).raw.hasReady(), true);
  net.restart(3);
  net.tickAll(3);
  assert.deepEqual(net.node(3).applied, ['a', 'b']);
});
