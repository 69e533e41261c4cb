import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONSECUTIVE_ERRORS_MAX, driveLoad, RateLimiter } from './driver.js';
import { pickLeader } from './connections.js';
import { keyForIndex, randomKeyPicker, sequentialKeyPicker, makeValue } from './keys.js';

test('a run with a total issues exactly that many requests, spread over the workers', async () => {
  const perWorker = new Map<number, number>();
  const outcome = await driveLoad({
    kind: 'put',
    phase: 'measure',
    workers: 4,
    total: 103,
    operations: ['put'],
    pickOperation: () => 0,
    issue: async (worker) => {
      perWorker.set(worker, (perWorker.get(worker) ?? 0) + 1);
    },
  });
  assert.equal(outcome.requests, 103);
  assert.equal(outcome.errors, 0);
  assert.equal(outcome.histogram.count, 103);
  assert.equal([...perWorker.values()].reduce((a, b) => a + b, 0), 103);
  assert.equal(perWorker.size, 4);
});

test('onMeasured marks the first and last measured request, and a preload phase calls it never', async () => {
  const log: string[] = [];
  for (const phase of ['preload', 'measure'] as const) {
    await driveLoad({
      kind: 'put',
      phase,
      workers: 2,
      total: 3,
      operations: ['put'],
      pickOperation: () => 0,
      issue: async () => void log.push(`${phase} request`),
      onMeasured: (edge) => void log.push(`${phase} ${edge}`),
    });
  }
  assert.deepEqual(log, ['preload request', 'preload request', 'preload request', 'measure start', 'measure request', 'measure request', 'measure request', 'measure end']);
});

test('failed requests are counted by message and kept out of the latency histogram', async () => {
  let n = 0;
  const outcome = await driveLoad({
    kind: 'put',
    phase: 'measure',
    workers: 2,
    total: 30,
    operations: ['put'],
    pickOperation: () => 0,
    issue: async () => {
      n++;
      if (n % 3 === 0) throw Object.assign(new Error('etcdserver: request timed out'), { code: 4 });
    },
  });
  assert.equal(outcome.requests + outcome.errors, 30);
  assert.equal(outcome.errors, 10);
  assert.equal(outcome.histogram.count, 20);
  assert.deepEqual(outcome.errorSamples, [{ message: 'etcdserver: request timed out (code 4)', count: 10 }]);
  assert.equal(outcome.stoppedReason, undefined);
});

test('a target that only fails stops the run after a bounded number of consecutive errors', async () => {
  const outcome = await driveLoad({
    kind: 'put',
    phase: 'measure',
    workers: 3,
    total: 1_000_000,
    operations: ['put'],
    pickOperation: () => 0,
    issue: async () => {
      throw new Error('connect ECONNREFUSED');
    },
  });
  assert.equal(outcome.requests, 0);
  assert.ok(outcome.errors >= CONSECUTIVE_ERRORS_MAX && outcome.errors < CONSECUTIVE_ERRORS_MAX + 3);
  assert.match(outcome.stoppedReason ?? '', /consecutive errors \(last: connect ECONNREFUSED\)/);
});

test('an aborted run stops issuing and says it was interrupted', async () => {
  const controller = new AbortController();
  let issued = 0;
  const outcome = await driveLoad({
    kind: 'put',
    phase: 'measure',
    workers: 2,
    total: 1_000,
    operations: ['put'],
    pickOperation: () => 0,
    signal: controller.signal,
    issue: async () => {
      if (++issued === 10) controller.abort();
    },
  });
  assert.ok(outcome.requests >= 10 && outcome.requests <= 11);
  assert.equal(outcome.stoppedReason, 'interrupted');
});

test('mixed runs keep one histogram per operation', async () => {
  let i = 0;
  const outcome = await driveLoad({
    kind: 'mixed',
    phase: 'measure',
    workers: 1,
    total: 10,
    operations: ['read', 'write'],
    pickOperation: () => (i++ % 5 === 0 ? 1 : 0),
    issue: async () => undefined,
  });
  assert.equal(outcome.byOperation.get('read')?.count, 8);
  assert.equal(outcome.byOperation.get('write')?.count, 2);
});

test('the rate limiter spaces slots 1/rate apart and banks no credit after idle time', () => {
  let now = 1_000;
  const limiter = new RateLimiter(10, () => now);
  assert.deepEqual([limiter.reserveWaitMs(), limiter.reserveWaitMs(), limiter.reserveWaitMs()], [0, 10, 20]);
  now = 1_015;
  assert.equal(limiter.reserveWaitMs(), 15);
  now = 5_000;
  assert.deepEqual([limiter.reserveWaitMs(), limiter.reserveWaitMs()], [0, 10]);
});

test('the leader is the endpoint whose own member id others report as leader', () => {
  assert.equal(
    pickLeader([
      { endpoint: 'a:1', memberId: '11', leaderId: '22' },
      { endpoint: 'b:2', memberId: '22', leaderId: '22' },
      { endpoint: 'c:3', error: 'unavailable' },
    ]),
    'b:2',
  );
  // The leader is known but not among the endpoints.
  assert.equal(pickLeader([{ endpoint: 'a:1', memberId: '11', leaderId: '33' }]), undefined);
  // No leader during an election.
  assert.equal(pickLeader([{ endpoint: 'a:1', memberId: '11', leaderId: '0' }]), undefined);
});

test('keys are zero-padded decimal indexes; sequential keys wrap at the key space', () => {
  assert.equal(keyForIndex(42, 8).toString(), '00000042');
  const seq = sequentialKeyPicker(3, 4);
  assert.deepEqual(Array.from({ length: 5 }, () => seq.next().toString()), ['0000', '0001', '0002', '0000', '0001']);
  const values = [0, 0.999, 0.5];
  const random = randomKeyPicker(1000, 4, () => values.shift() ?? 0);
  assert.deepEqual([random.next(), random.next(), random.next()].map(String), ['0000', '0999', '0500']);
  const value = makeValue(64);
  assert.equal(value.length, 64);
  assert.match(value.toString(), /^[a-z]{64}$/);
});
