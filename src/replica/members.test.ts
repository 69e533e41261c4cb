// The member table's apply-time check of conf changes. Found by `lichen check` (30 minutes, seed
// 31): a joiner's self-promotion committed after the nemesis had removed it, every member applied
// "AddNode" for an id without an address, and all five stopped on the transport's address parse.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfChangeType, type ConfChange } from '../raft/index.js';
import { MemberTable, encodeJson } from './members.js';

const JOINER = 0xabc;

function change(type: ConfChangeType, nodeId: number, context: object = {}): ConfChange {
  return { type, nodeId, context: encodeJson(context) };
}

function tableWithLearner(): MemberTable {
  const table = MemberTable.fromJSON({
    members: [{ id: 1, name: 'n1', peerAddress: '127.0.0.1:1', clientAddress: '', httpAddress: '', isLearner: false }],
    removed: [],
  });
  const add = change(ConfChangeType.AddLearner, JOINER, { name: 'j1', peerAddress: '127.0.0.1:2' });
  assert.equal(table.refusal(add), undefined);
  table.applyConfChange(add);
  return table;
}

describe('member table: conf changes checked at apply', () => {
  it('promotes a learner that is still a member', () => {
    const table = tableWithLearner();
    const promote = change(ConfChangeType.AddNode, JOINER, { origin: JOINER, sequence: 1 });
    assert.equal(table.refusal(promote), undefined);
    table.applyConfChange(promote);
    assert.equal(table.get(JOINER)?.isLearner, false);
  });

  it('refuses a promotion that commits after the learner was removed', () => {
    const table = tableWithLearner();
    table.applyConfChange(change(ConfChangeType.RemoveNode, JOINER));
    const promote = change(ConfChangeType.AddNode, JOINER, { origin: JOINER, sequence: 1 });
    assert.match(table.refusal(promote) ?? '', /was removed/);
    assert.equal(table.has(JOINER), false);
  });

  it('refuses to add back a removed id, even with an address (ids never rejoin)', () => {
    const table = tableWithLearner();
    table.applyConfChange(change(ConfChangeType.RemoveNode, JOINER));
    assert.match(table.refusal(change(ConfChangeType.AddLearner, JOINER, { name: 'j1', peerAddress: '127.0.0.1:2' })) ?? '', /was removed/);
  });

  it('refuses a promotion of an id it never knew', () => {
    assert.match(tableWithLearner().refusal(change(ConfChangeType.AddNode, 0xdead, { origin: 1, sequence: 2 })) ?? '', /not in the cluster/);
  });

  it('refuses an update or a removal of a member that is gone', () => {
    const table = tableWithLearner();
    table.applyConfChange(change(ConfChangeType.RemoveNode, JOINER));
    assert.match(table.refusal(change(ConfChangeType.UpdateNode, JOINER, { name: 'j1', peerAddress: '127.0.0.1:3' })) ?? '', /not in the cluster/);
    assert.match(table.refusal(change(ConfChangeType.RemoveNode, JOINER)) ?? '', /not in the cluster/);
  });
});
