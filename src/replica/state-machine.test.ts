// The state machine's applied index and current revision across crashes. The replica applies each
// Ready's entries in one engine batch, and the batch writes the applied index and the current
// revision once, as it ends (MvccStore.batchApplies). A crash keeps the engine as of some batch's
// end (a memory engine's batches, lmdb's commits across Readies), so at every batch's end, whatever
// kind of entry ends it, the engine must name exactly the index and revision of the data it holds:
// a restart replays the log from there and must reach the state of a member that never crashed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbEngine, MemoryEngine, ScopedEngine, type Engine } from '../engine/index.js';
import { AlarmType, type Command } from '../mvcc/index.js';
import { KvStateMachine } from './state-machine.js';

const bytes = (text: string): Uint8Array => Buffer.from(text);

/**
 * One committed entry as the replica hands it to the machine: a command, or nothing (a conf
 * change, an empty entry of a new leader, member attributes: the replica applies those itself and
 * the engine never hears of them).
 */
type Step = { what: string; command: Command | undefined };

const LEASE = 77;

/** Every path an entry takes through apply: keys changed or not, refused, leases, alarms, auth. */
const STEPS: Step[] = [
  { what: 'put', command: { type: 'put', request: { key: bytes('a'), value: bytes('1') } } },
  { what: 'conf change', command: undefined },
  { what: 'no-op command', command: { type: 'noop' } },
  { what: 'put refused (no such lease)', command: { type: 'put', request: { key: bytes('b'), value: bytes('1'), lease: 999 } } },
  { what: 'lease grant', command: { type: 'leaseGrant', request: { ID: LEASE, TTL: 60 } } },
  { what: 'put with the lease', command: { type: 'put', request: { key: bytes('c'), value: bytes('1'), lease: LEASE } } },
  { what: 'empty entry', command: undefined },
  { what: 'auth command', command: { type: 'roleAdd', name: 'reader' } },
  { what: 'auth command refused', command: { type: 'roleDelete', role: 'missing' } },
  { what: 'lease revoke deleting its key', command: { type: 'leaseRevoke', id: LEASE } },
  { what: 'delete of nothing', command: { type: 'deleteRange', request: { key: bytes('zz') } } },
  { what: 'compaction', command: { type: 'compact', request: { revision: 2 } } },
  { what: 'alarm raised', command: { type: 'alarmActivate', memberId: 1, alarm: AlarmType.NOSPACE } },
  { what: 'put refused by the alarm', command: { type: 'put', request: { key: bytes('d'), value: bytes('1') } } },
  { what: 'alarm disarmed', command: { type: 'alarmDeactivate', memberId: 1, alarm: AlarmType.NOSPACE } },
  { what: 'txn', command: { type: 'txn', request: { compare: [], success: [{ requestPut: { key: bytes('a'), value: bytes('2') } }], failure: [] } } },
  { what: 'member attributes', command: undefined },
];

/**
 * Applies steps [from, to) at their indexes (step i is entry i + 1) as one Ready does. Commands
 * are built afresh each time: the store keeps a command's byte arrays.
 */
function applySteps(machine: KvStateMachine, from: number, to: number): void {
  machine.batch(() => {
    for (let i = from; i < to; i++) {
      const command = structuredClone(STEPS[i]!.command);
      if (command !== undefined) machine.apply(i + 1, command);
    }
  });
}

/** The engine's whole state, as a crash would keep it now (a batch has ended). */
const image = (machine: KvStateMachine): Buffer => Buffer.concat([...machine.export()]);

/** A restart on `kept`: a new engine holding it, the stores reopened on it. */
function restart(kept: Buffer, engine: Engine): KvStateMachine {
  engine.import([kept]);
  return new KvStateMachine(engine);
}

/** Ready sizes: one entry each (every kind of entry ends a batch), a few mixed, and all at once. */
const PARTITIONS = [1, 2, 3, 5, STEPS.length];

/** Engines as a process and the tests use them: memory, and a group's partition of lmdb (whose commits wait across Readies). */
const ENGINES: Array<{ name: string; open(): { engine: Engine; close(): Promise<void> } }> = [
  { name: 'memory', open: () => ({ engine: new MemoryEngine(), close: async () => {} }) },
  {
    name: 'lmdb partition',
    open: () => {
      const dir = mkdtempSync(join(tmpdir(), 'lichen-state-machine-'));
      const lmdb = LmdbEngine.open({ dir });
      return {
        engine: new ScopedEngine(lmdb, 3),
        close: async () => {
          await lmdb.closeAsync();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
];

for (const { name, open } of ENGINES) {
  test(`${name}: after every Ready, whatever entry ends it, a restart finds the applied index and revision of the data it holds and replays to the same state`, async () => {
    const opened: Array<{ close(): Promise<void> }> = [];
    const fresh = (): Engine => {
      const handle = open();
      opened.push(handle);
      return handle.engine;
    };
    try {
      const reference = new KvStateMachine(fresh());
      applySteps(reference, 0, STEPS.length);
      const final = image(reference);
      assert.equal(reference.appliedIndex, STEPS.length - 1, 'the last command entry is the applied index the engine holds');

      for (const size of PARTITIONS) {
        const live = new KvStateMachine(fresh());
        for (let from = 0; from < STEPS.length; from += size) {
          const to = Math.min(from + size, STEPS.length);
          applySteps(live, from, to);
          // lmdb keeps the Ready's writes waiting across Readies; its commit holds the last of each key.
          if (size % 2 === 1) live.commit();
          const ended = `Readies of ${size}, the one ending with step ${to} (${STEPS[to - 1]!.what})`;
          const restarted = restart(image(live), fresh());
          assert.equal(restarted.appliedIndex, live.appliedIndex, `${ended}: the applied index`);
          assert.equal(restarted.mvcc.currentRevision, live.mvcc.currentRevision, `${ended}: the current revision`);
          // The WAL replays every entry; the machine skips those it holds.
          applySteps(restarted, 0, STEPS.length);
          assert.ok(image(restarted).equals(final), `${ended}: the replay reaches the state of a member that never crashed`);
        }
        assert.ok(image(live).equals(final), `Readies of ${size}: the same state as one Ready`);
      }
    } finally {
      for (const handle of opened) await handle.close();
    }
  });
}

test('a Ready whose apply fails (a disk error) keeps none of its writes, its applied index and revision included', () => {
  const machine = new KvStateMachine(new MemoryEngine());
  applySteps(machine, 0, 1);
  const before = image(machine);
  assert.throws(
    () =>
      machine.batch(() => {
        machine.apply(2, { type: 'put', request: { key: bytes('b'), value: bytes('1') } });
        machine.apply(3, { type: 'noop' });
        throw new Error('disk failed');
      }),
    /disk failed/,
  );
  assert.ok(image(machine).equals(before), 'the engine holds the state before the Ready');
  const restarted = restart(before, new MemoryEngine());
  assert.equal(restarted.appliedIndex, 1);
  assert.equal(restarted.mvcc.currentRevision, 2);
});

test('applies outside a Ready\'s batch (tools, tests) write the applied index and revision with each one', () => {
  const machine = new KvStateMachine(new MemoryEngine());
  machine.apply(1, { type: 'put', request: { key: bytes('a'), value: bytes('1') } });
  machine.apply(2, { type: 'noop' });
  machine.apply(3, { type: 'roleAdd', name: 'reader' });
  const restarted = restart(image(machine), new MemoryEngine());
  assert.equal(restarted.appliedIndex, 3);
  assert.equal(restarted.mvcc.currentRevision, 2);
});
