import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from '../errors.js';
import { Network, text } from './testkit.js';
import { ConfChangeType } from './types.js';

test('§3.10: the leader sends TimeoutNow to an up-to-date target, which wins at once despite the other voters\' leases', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  const term = net.raft(1).term;
  const types: string[] = [];
  net.route = (m) => {
    types.push(m.type);
    return 'deliver';
  };
  net.node(1).raw.transferLeader(2);
  net.stabilize();
  assert.equal(net.raft(2).role, 'leader');
  assert.equal(net.raft(2).term, term + 1);
  assert.equal(net.raft(1).lead, 2);
  assert.ok(types.includes('TimeoutNow'));
  assert.ok(!types.includes('PreVote'), 'a transfer skips the pre-vote');
  net.propose(2, 'b');
  assert.deepEqual(net.node(1).applied, ['a', 'b']);
});

test('§3.10: the leader first brings a lagging target up to date, then sends TimeoutNow', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.down.add(3);
  for (let i = 0; i < 5; i++) net.propose(1, `v${i}`);
  net.down.delete(3);
  const order: string[] = [];
  net.route = (m) => {
    if (m.to === 3 && (m.type === 'App' || m.type === 'TimeoutNow')) order.push(m.type);
    return 'deliver';
  };
  net.node(1).raw.transferLeader(3);
  net.stabilize();
  assert.equal(net.raft(3).role, 'leader');
  assert.equal(order.at(-1), 'TimeoutNow');
  assert.ok(order.indexOf('App') < order.indexOf('TimeoutNow'));
  assert.deepEqual(net.node(3).applied, ['v0', 'v1', 'v2', 'v3', 'v4']);
});

test('§3.10: during a transfer the leader stops accepting proposals', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(2);
  net.node(1).raw.transferLeader(2);
  assert.equal(net.raft(1).leadTransferee, 2);
  assert.throws(() => net.node(1).raw.propose(text('x')), (e) => isLichenError(e, 'Unavailable'));
});

test('§3.10: a transfer that does not finish within an election timeout is aborted and proposals resume', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.isolate(2);
  net.cut(1, 2);
  net.node(1).raw.transferLeader(2);
  net.heal();
  net.isolate(2);
  net.tick(1, 10);
  assert.equal(net.raft(1).leadTransferee, 0);
  assert.equal(net.raft(1).role, 'leader');
  net.propose(1, 'resumed');
  assert.deepEqual(net.node(3).applied, ['resumed']);
});

test('followers forward a transfer request to the leader', () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  net.node(3).raw.transferLeader(2);
  net.stabilize();
  assert.equal(net.raft(2).role, 'leader');
});

test('a transfer to a learner or a non-member is refused', () => {
  const net = new Network([1, 2, 3, 4], { joiners: [4] });
  net.campaign(1);
  net.node(1).raw.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4, context: new Uint8Array(0) });
  net.stabilize();
  assert.throws(() => net.node(1).raw.transferLeader(4), (e) => isLichenError(e, 'InvalidArgument'));
  assert.throws(() => net.node(1).raw.transferLeader(9), (e) => isLichenError(e, 'MemberNotFound'));
  assert.equal(net.raft(1).leadTransferee, 0);
});

test('a transfer request with no known leader throws Unavailable', () => {
  const net = new Network([1, 2, 3]);
  assert.throws(() => net.node(2).raw.transferLeader(3), (e) => isLichenError(e, 'Unavailable'));
});
