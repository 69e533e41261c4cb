// The replica's Ready loop against an in-memory network and disk whose writes become durable only
// when the test says so: what leaves before a write is durable, what waits for it, what applies
// while it is in flight, and how work that arrives meanwhile is batched into the next write.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Network, seededRandom, storageWithLog, text } from '../raft/testkit.js';
import { ConfChangeType, RawNode, type MemoryStorage, type Message } from '../raft/index.js';
import { ReadyLoop, type ReadyHandler } from './ready-loop.js';

/** Lets the loop run until it waits for something (a write, or work). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function harness(raw: RawNode, storage: MemoryStorage) {
  const events: string[] = [];
  const writes: Array<{ durable: () => void; fail: (error: Error) => void }> = [];
  const handler: ReadyHandler = {
    observe: () => undefined,
    send: (messages) => {
      for (const m of messages) events.push(`send ${m.type}>${m.to}`);
    },
    sendDuringPersist: (messages) => {
      for (const m of messages) events.push(`send early ${m.type}>${m.to}`);
    },
    installSnapshot: async (snapshot) => {
      storage.applySnapshot(snapshot);
      events.push(`snapshot ${snapshot.metadata.index}`);
    },
    persist: (update) =>
      new Promise<void>((resolve, reject) => {
        events.push(`write ${update.entries.map((e) => e.index).join(',')}${update.sync ? ' sync' : ''}`);
        writes.push({
          durable: () => {
            storage.append(update.entries);
            if (update.hardState) storage.setHardState(update.hardState);
            events.push('durable');
            resolve();
          },
          fail: reject,
        });
      }),
    apply: (rd) => {
      for (const e of rd.committedEntries) events.push(`apply ${e.index}`);
    },
    advanced: () => events.push('advanced'),
  };
  const failures: unknown[] = [];
  const loop = new ReadyLoop(raw, handler);
  loop.start((error) => failures.push(error));
  /** The events since the last call. */
  const take = (): string[] => events.splice(0);
  return { loop, writes, take, failures };
}

function app(prevLogIndex: number, indexes: number[], commit: number): Message {
  const entries = indexes.map((index) => ({ term: 1, index, type: 0 as const, data: text(`e${index}`) }));
  return { type: 'App', from: 1, to: 2, term: 1, prevLogIndex, prevLogTerm: 1, entries, commit };
}

test('a follower acknowledges entries only once they are durable; appends that arrive meanwhile share the next write', async () => {
  const storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 1);
  const raw = new RawNode({ id: 2, storage, random: seededRandom(2) });
  const { loop, writes, take } = harness(raw, storage);
  loop.enqueue(() => raw.step(app(1, [2], 1)));
  await settle();
  // Entry 1 was durable already: it applies while entry 2 is written. The answer waits.
  assert.deepEqual(take(), ['write 2 sync', 'apply 1'], 'nothing is sent before the write is durable');
  loop.enqueue(() => raw.step(app(2, [3], 1)));
  loop.enqueue(() => raw.step(app(3, [4], 1)));
  await settle();
  assert.deepEqual(take(), [], 'the loop waits for the write in flight');
  writes[0]!.durable();
  await settle();
  assert.deepEqual(take(), ['durable', 'send AppResp>1', 'advanced', 'write 3,4 sync'], 'one write for both appends');
  writes[1]!.durable();
  await settle();
  assert.deepEqual(take(), ['durable', 'send AppResp>1', 'send AppResp>1', 'advanced']);
  await loop.stop();
});

test("a leader's appends leave before its own write is durable; committed entries apply while the next write is in flight", async () => {
  const net = new Network([1, 2, 3]);
  net.campaign(1);
  const { raw, storage } = net.node(1);
  const last = raw.raft.log.lastIndex();
  const { loop, writes, take } = harness(raw, storage);
  loop.enqueue(() => raw.propose(text('x')));
  await settle();
  assert.deepEqual(take(), ['send App>2', 'send App>3', `write ${last + 1} sync`]);
  loop.enqueue(() => raw.step({ type: 'AppResp', from: 2, to: 1, term: raw.raft.term, reject: false, index: last + 1, rejectHint: 0, hintTerm: 0 }));
  writes[0]!.durable();
  await settle();
  // The follower's answer and the leader's own durable copy make a quorum: the entry commits. The
  // new commit index is written without a flush, and the entry applies meanwhile.
  // The followers hear the new commit index at once.
  assert.deepEqual(take(), ['durable', 'advanced', 'send App>2', 'send App>3', 'write ', `apply ${last + 1}`]);
  writes[1]!.durable();
  await settle();
  assert.deepEqual(take(), ['durable', 'advanced']);
  await loop.stop();
});

test("a membership change applies only after the followers were sent its commit (its answer must not go first)", async () => {
  // Voters {1, 2}, learner 3, commits told lazily. Were the promotion of 3 answered while its
  // commit was still unsent, a leader failing in between would leave 2 and 3 counting in {1, 2}:
  // no leader ever again (replaced-cluster.test.ts timed out so under load).
  const net = new Network([1, 2, 3], { joiners: [3], config: { lazyCommitBroadcast: true } });
  net.campaign(1);
  net.node(1).raw.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 3, context: text('') });
  net.stabilize();
  net.raft(1).flushCommit();
  net.stabilize();
  const { raw, storage } = net.node(1);
  const index = raw.raft.log.lastIndex() + 1;
  const { loop, writes, take } = harness(raw, storage);
  loop.enqueue(() => raw.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: 3, context: text('') }));
  await settle();
  assert.deepEqual(take(), ['send App>2', 'send App>3', `write ${index} sync`]);
  loop.enqueue(() => raw.step({ type: 'AppResp', from: 2, to: 1, term: raw.raft.term, reject: false, index, rejectHint: 0, hintTerm: 0 }));
  writes[0]!.durable();
  await settle();
  assert.deepEqual(take(), ['durable', 'advanced', 'write  sync'], 'the commit of a membership change is synced; nothing applies meanwhile');
  writes[1]!.durable();
  await settle();
  assert.deepEqual(take().slice(0, 4), ['durable', 'send App>2', 'send App>3', `apply ${index}`]);
  await loop.stop();
});

test("a follower's own client proposal leaves while its write is in flight; what promises the write still waits", async () => {
  const storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 1);
  const raw = new RawNode({ id: 2, storage, random: seededRandom(2) });
  const { loop, writes, take } = harness(raw, storage);
  loop.enqueue(() => raw.step(app(1, [2], 1)));
  await settle();
  assert.deepEqual(take(), ['write 2 sync', 'apply 1']);
  // While entry 2 is written: a client's proposal, a heartbeat and another append arrive.
  loop.enqueue(() => raw.propose(text('p')));
  loop.enqueue(() => raw.step({ type: 'Heartbeat', from: 1, to: 2, term: 1, commit: 1, context: new Uint8Array(0) }));
  loop.enqueue(() => raw.step(app(2, [3], 1)));
  await settle();
  assert.deepEqual(take(), ['send early Prop>1', 'send early HeartbeatResp>1'], 'the forwarded proposal does not wait for the write (before: nothing left until it was durable)');
  writes[0]!.durable();
  await settle();
  // The append that arrived meanwhile is written next, and only then acknowledged.
  assert.deepEqual(take(), ['durable', 'send AppResp>1', 'advanced', 'write 3 sync']);
  writes[1]!.durable();
  await settle();
  assert.deepEqual(take(), ['durable', 'send AppResp>1', 'advanced']);
  await loop.stop();
});

test('an answer to a snapshot waits until the snapshot is installed and the hard state durable', async () => {
  const storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 1);
  const raw = new RawNode({ id: 2, storage, random: seededRandom(2) });
  const { loop, writes, take } = harness(raw, storage);
  const snapshot = { metadata: { index: 10, term: 1, conf: { voters: [1, 2, 3], learners: [] } }, data: text('state') };
  loop.enqueue(() => raw.step({ type: 'Snap', from: 1, to: 2, term: 1, snapshot }));
  await settle();
  assert.deepEqual(take(), ['snapshot 10', 'write  sync']);
  writes[0]!.durable();
  await settle();
  assert.deepEqual(take(), ['durable', 'send AppResp>1', 'advanced']);
  await loop.stop();
});

test('a failed write stops the loop and is reported; nothing waiting for it is sent', async () => {
  const storage = storageWithLog([1], { voters: [1, 2, 3], learners: [] }, 1);
  const raw = new RawNode({ id: 2, storage, random: seededRandom(2) });
  const { loop, writes, take, failures } = harness(raw, storage);
  loop.enqueue(() => raw.step(app(1, [2], 1)));
  await settle();
  writes[0]!.fail(new Error('disk full'));
  await settle();
  assert.deepEqual(take(), ['write 2 sync', 'apply 1']);
  assert.equal(String(failures[0]), 'Error: disk full');
  loop.enqueue(() => raw.tick());
  await settle();
  assert.deepEqual(take(), [], 'a stopped loop runs nothing');
  await loop.stop();
});
