import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, LichenError } from '../errors.js';
import { proposalResultsMax } from '../limits.js';
import { ProposalResults } from './proposal-results.js';

const put = (revision: number, prev?: string) => ({
  command: {
    revision,
    response: prev === undefined ? {} : { prevKv: { key: Buffer.from('k'), value: Buffer.from(prev), createRevision: 1, modRevision: 2, version: 1, lease: 0 } },
    events: [],
  },
});

test('a snapshot carries the results up to its index, bytes and errors included, and the installing member finds its own', () => {
  const table = new ProposalResults(10);
  table.record(11, 1, 100, put(5, 'old value'));
  table.record(12, 2, 7, { command: { revision: 5, error: new LichenError(ErrorCode.NoSpace, 'no space', { etcdError: 'noSpace' }) } });
  table.record(13, 1, 101, { conf: undefined });
  table.record(14, 1, 0, put(6)); // no client waits: not kept
  table.record(15, 1, 102, put(7));
  const carried = ProposalResults.fromJSON(JSON.parse(JSON.stringify(table.toJSON(14))), 14);
  const found = carried.settle(1, 100, 10, 14);
  assert.ok(typeof found === 'object' && 'command' in found && 'response' in found.command);
  assert.equal(found.command.revision, 5);
  const prevKv = (found.command.response as { prevKv: { value: Uint8Array } }).prevKv;
  assert.ok(prevKv.value instanceof Uint8Array);
  assert.equal(Buffer.from(prevKv.value).toString(), 'old value');
  const refused = carried.settle(2, 7, 10, 14);
  assert.ok(typeof refused === 'object' && 'command' in refused && 'error' in refused.command);
  assert.ok(refused.command.error instanceof LichenError);
  assert.equal(refused.command.error.code, ErrorCode.NoSpace);
  assert.deepEqual(carried.settle(1, 101, 10, 14), { conf: undefined });
  // Entry 15 is past the snapshot: not carried, so its proposal still waits (complete above 10).
  assert.equal(carried.settle(1, 102, 10, 14), 'waiting');
  // A proposal registered at applied index 14 or later lies past the snapshot.
  assert.equal(carried.settle(1, 999, 14, 14), 'waiting');
});

test('what the table cannot say is unknown: results dropped for the bound, or applied before the table began', () => {
  const table = new ProposalResults(0);
  for (let i = 1; i <= proposalResultsMax + 10; i++) table.record(i, 1, i, put(i));
  assert.equal(table.size, proposalResultsMax);
  const index = proposalResultsMax + 10;
  assert.equal(table.settle(1, 5, 0, index), 'unknown', 'its result was dropped');
  assert.notEqual(table.settle(1, 50, 0, index), 'unknown', 'kept');
  assert.equal(table.settle(1, 1e9, 10, index), 'waiting', 'a proposal registered after the drops is surely not in');
  // A snapshot from a member without results (or one that restarted): complete only after its index.
  const bare = ProposalResults.fromJSON(undefined, 40);
  assert.equal(bare.settle(1, 1, 20, 40), 'unknown');
  assert.equal(bare.settle(1, 1, 40, 40), 'waiting');
});

test("an Authenticate's answer is the proposer's own state: unknown to a member that did not apply it", () => {
  const table = new ProposalResults(0);
  table.record(3, 1, 9, { local: true });
  const carried = ProposalResults.fromJSON(JSON.parse(JSON.stringify(table.toJSON(3))), 3);
  assert.equal(carried.settle(1, 9, 0, 3), 'unknown');
});
