// Unit tests for raft bugs the simulator (src/sim) found. Each names the simulator seed that
// exposed it; the seed itself is replayed by src/sim/sim.test.ts (src/sim/regressions.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawNode } from './rawnode.js';
import { seededRandom, storageWithLog } from './testkit.js';
import type { Message } from './types.js';

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
