// Watches on a real member (raft, lmdb, gRPC), where the watcher's store side and the stream meet.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageQueue } from '../api/grpc/testing/harness.js';
import { startTestMember, type TestMember } from './testing/in-process.js';

const b = (s: string): Buffer => Buffer.from(s);
let member: TestMember;

before(async () => {
  member = await startTestMember();
});

after(() => member?.close());

function openWatch() {
  const stream = (member.client('Watch') as any).Watch() as NodeJS.EventEmitter & { write(m: object): void; cancel(): void };
  const queue = new MessageQueue<any>(stream);
  return { stream, next: () => queue.next(5000), close: () => stream.cancel() };
}

// Regression: the watcher's compacted notice arrived while it was still being created, and the
// stream answered one refusal (watch_id -1, "Cannot access 'timers' before initialization").
test('a watch from a compacted revision is created, then canceled with the compact revision, as etcd answers', async () => {
  for (const value of ['1', '2', '3']) await member.call('KV', 'Put', { key: b('c'), value: b(value) });
  const last = await member.call('KV', 'Put', { key: b('c'), value: b('4') });
  const compactRevision = Number(last.header.revision) - 1;
  await member.call('KV', 'Compact', { revision: compactRevision, physical: true });

  const w = openWatch();
  w.stream.write({ create_request: { key: b('c'), start_revision: 1, progress_notify: true } });
  const created = await w.next();
  assert.equal(created.created, true);
  assert.equal(created.canceled, false);
  assert.equal(created.watch_id, '0');
  assert.equal(created.cancel_reason, '');
  const canceled = await w.next();
  assert.equal(canceled.watch_id, '0');
  assert.equal(canceled.created, false);
  assert.equal(canceled.canceled, true);
  assert.equal(canceled.compact_revision, String(compactRevision));
  assert.equal(canceled.cancel_reason, '', 'etcd leaves the reason empty: clients derive it from compact_revision');
  assert.equal(canceled.header.revision, '0', 'etcd sends the compacted notice with header revision 0');

  // The stream goes on: a watch from the compact revision itself replays what is left.
  w.stream.write({ create_request: { key: b('c'), start_revision: compactRevision } });
  assert.equal((await w.next()).created, true);
  const replay = await w.next();
  assert.deepEqual(replay.events.map((e: any) => e.kv.value.toString()), ['3', '4']);
  w.close();
});
