import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EntryType, type Entry } from '../raft/types.js';
import { EnvelopeKind, encodeEnvelope } from '../replica/index.js';
import { SafetyMonitor, SafetyViolation } from './invariants.js';

function proposal(index: number, origin: number, sequence: number): Entry {
  const data = encodeEnvelope({ kind: EnvelopeKind.Mvcc, origin, sequence, body: new Uint8Array([index]) });
  return { index, term: 1, type: EntryType.Normal, data };
}

test('a client proposal committed at two indexes breaks exactly-once; the same index on every member does not', () => {
  const monitor = new SafetyMonitor();
  monitor.observeApply(1, proposal(5, 3, 77), 'd5');
  monitor.observeApply(2, proposal(5, 3, 77), 'd5');
  monitor.observeApply(1, proposal(6, 3, 78), 'd6');
  // A member's attributes carry sequence 0: nobody waits for them, and they may be published again.
  const attributes = (index: number): Entry => ({ ...proposal(index, 2, 0), data: encodeEnvelope({ kind: EnvelopeKind.MemberAttributes, origin: 2, sequence: 0, body: new Uint8Array() }) });
  monitor.observeApply(1, attributes(7), 'd7');
  monitor.observeApply(1, attributes(8), 'd8');
  assert.throws(
    () => monitor.observeApply(2, proposal(9, 3, 77), 'd9'),
    (error: unknown) => error instanceof SafetyViolation && error.kind === 'exactly-once' && /index 9, committed before at index 5/.test(error.message),
  );
});
