// recoverStorage against the engine a member restarts with: a reference snapshot (a member's own)
// needs an engine that holds its index; a whole one (received from the leader) is installed when
// the engine lags it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine } from '../engine/index.js';
import { ErrorCode, isLichenError } from '../errors.js';
import { ConfChangeType, type Snapshot } from '../raft/index.js';
import { MemberTable, encodeJson } from './members.js';
import { MemoryLog, MemorySnapshots } from './memory-storage.js';
import { recoverStorage } from './recovery.js';
import { decodeSnapshotData, encodeSnapshotData, encodeSnapshotReference } from './snapshot-data.js';
import { KvStateMachine } from './state-machine.js';

const members = new MemberTable();
members.applyConfChange({ type: ConfChangeType.AddNode, nodeId: 1, context: encodeJson({ name: 'm1', peerAddress: 'm1:1' }) });
const metadata = { index: 10, term: 2, conf: { voters: [1], learners: [] } };
const log = { hardState: { term: 2, vote: 1, commit: 8 }, entries: [] };

/** A machine whose engine says it applied up to `applied`, with key `k` written at that index. */
function machineAt(applied: number): KvStateMachine {
  const machine = new KvStateMachine(new MemoryEngine());
  if (applied > 0) machine.apply(applied, { type: 'put', request: { key: Buffer.from('k'), value: Buffer.from(String(applied)) } });
  return machine;
}

const recover = (machine: KvStateMachine, snapshot: Snapshot) => recoverStorage({ wal: new MemoryLog(), snapshots: new MemorySnapshots(), machine, snapshot, log });

test('a reference snapshot with an engine ahead of it: the engine is kept, raft holds the reference, the commit is at least the snapshot', () => {
  const machine = machineAt(12);
  const storage = recover(machine, { metadata, data: encodeSnapshotReference(members) });
  assert.equal(machine.appliedIndex, 12);
  assert.equal(storage.snapshotIndex, 10);
  assert.equal(storage.raftLog.initialState().hardState.commit, 10);
  assert.equal(decodeSnapshotData(storage.raftLog.snapshot().data).engineChunks, undefined);
  assert.deepEqual(storage.members.list().map((m) => m.id), [1]);
});

test('a reference snapshot whose engine holds less than it names refuses to start: the engine lost durable writes', () => {
  assert.throws(
    () => recover(machineAt(7), { metadata, data: encodeSnapshotReference(members) }),
    (error: unknown) => isLichenError(error, ErrorCode.DataLoss) && /engine holds the state up to index 7, but the snapshot at index 10/.test(error.message),
  );
});

test('a whole snapshot the engine lags (an install not yet synced) is installed again; raft keeps only the reference', () => {
  // The sender's last command was at 9; entries up to 10 changed no key.
  const sent = machineAt(9);
  const machine = machineAt(3);
  const storage = recover(machine, { metadata, data: encodeSnapshotData(members, sent.export()) });
  assert.equal(Buffer.from(machine.mvcc.range({ key: Buffer.from('k') }).kvs[0]!.value).toString(), '9');
  assert.equal(machine.appliedIndex, 10, 'the engine records that it holds the snapshot: the next restart installs nothing');
  assert.equal(decodeSnapshotData(storage.raftLog.snapshot().data).engineChunks, undefined);
});
