import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, isLichenError } from '../errors.js';
import { PendingProposals, ReadRounds } from './requests.js';
import { VirtualEnvironment } from './virtual-environment.js';

/** A ReadRounds as one process incarnation builds it; `issued` collects its round contexts. */
function incarnation(options: { now: () => number; applied: () => number; incarnation: Uint8Array }) {
  const issued: Uint8Array[] = [];
  const rounds = new ReadRounds({
    max: 100,
    timeoutMs: 60_000,
    retryMs: 1_000,
    now: options.now,
    incarnation: options.incarnation,
    issue: (context) => issued.push(context),
    appliedIndex: options.applied,
  });
  return { rounds, issued };
}

/** 'released' when the read went, 'waiting' when it is still held after the current turn. */
async function outcome(read: Promise<void>): Promise<'released' | 'waiting'> {
  return Promise.race([read.then(() => 'released' as const), new Promise<'waiting'>((resolve) => setImmediate(() => resolve('waiting')))]);
}

test('a ReadIndex answer meant for a previous incarnation of the member does not release a read', async () => {
  // Both processes see their clock start near zero (performance.now() restarts with the process).
  const now = () => 0.5;
  let applied = 7;
  const before = incarnation({ now, applied: () => applied, incarnation: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) });
  void before.rounds.wait().catch(() => undefined);
  assert.equal(before.issued.length, 1);
  // The member restarts; the leader's answer to the old round (read index 7) is still on its way.
  applied = 9;
  const after = incarnation({ now, applied: () => applied, incarnation: Uint8Array.of(8, 7, 6, 5, 4, 3, 2, 1) });
  const read = after.rounds.wait();
  assert.equal(after.issued.length, 1);
  after.rounds.onReadState(before.issued[0]!, 7);
  assert.equal(await outcome(read), 'waiting', 'the old answer released a read of the new incarnation');
  // The answer to the new incarnation's own round does release it.
  after.rounds.onReadState(after.issued[0]!, 9);
  assert.equal(await outcome(read), 'released');
});

test('a read past its deadline fails on the next tick; an unanswered round is re-issued under a new id', async () => {
  let now = 0;
  const { rounds, issued } = incarnation({ now: () => now, applied: () => 0, incarnation: new Uint8Array(8) });
  const read = rounds.wait();
  now = 999;
  rounds.onTick();
  assert.equal(issued.length, 1, 'not re-issued before retryMs');
  now = 1000;
  rounds.onTick();
  assert.equal(issued.length, 2);
  assert.notDeepEqual(issued[1], issued[0]);
  rounds.onReadState(issued[0]!, 0);
  assert.equal(await outcome(read), 'waiting', 'the answer to the replaced id is ignored');
  now = 60_000;
  rounds.onTick();
  await assert.rejects(read, /request timed out/);
  assert.equal(rounds.size, 0);
});

test('a proposal nobody answers fails with Timeout on the first tick once its timeout has passed in virtual time, and not before', async () => {
  const environment = new VirtualEnvironment(1);
  const proposals = new PendingProposals<string>({ max: 2, timeoutMs: 5_000, now: () => environment.clock.monotonicMs() });
  const first = proposals.register();
  environment.advance(1);
  const second = proposals.register();
  assert.equal(environment.timersPending, 0, 'a proposal sets no timer of its own');
  assert.throws(() => proposals.register(), /too many requests in flight \(limit 2\)/);
  const failure = first.result.catch((error: unknown) => error);
  environment.advance(4_998);
  proposals.onTick();
  assert.equal(proposals.resolve(second.sequence, 'applied'), 1, 'resolve tells when the proposal was registered (the proposal-to-commit histogram)');
  assert.equal(proposals.resolve(second.sequence, 'again'), undefined, 'nobody waits for it any more');
  assert.equal(await second.result, 'applied');
  assert.equal(await outcome(failure.then(() => undefined)), 'waiting');
  environment.advance(1);
  assert.equal(await outcome(failure.then(() => undefined)), 'waiting', 'it fails on a tick, not by a timer');
  proposals.onTick();
  assert.ok(isLichenError(await failure, ErrorCode.Timeout));
  assert.equal(proposals.size, 0);
});

test('proposals past their deadline fail on a tick in registration order; later ones keep waiting', async () => {
  let now = 0;
  const proposals = new PendingProposals<string>({ max: 10, timeoutMs: 100, now: () => now });
  const settled: string[] = [];
  for (const at of [0, 10, 20]) {
    now = at;
    const { sequence, result } = proposals.register();
    result.then(() => settled.push(`${sequence} applied`), () => settled.push(`${sequence} timed out`));
  }
  now = 110;
  proposals.onTick();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(settled, ['1 timed out', '2 timed out']);
  assert.equal(proposals.size, 1);
  proposals.resolve(3, 'x');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(settled, ['1 timed out', '2 timed out', '3 applied']);
});

test('src/replica reads no clock, sets no timer and draws no random number except through its Environment', () => {
  const dir = new URL('.', import.meta.url).pathname;
  const forbidden = /(?<![.\w])(Date\.now|performance\.now|setTimeout|setInterval|setImmediate|Math\.random|randomBytes)\s*\(/;
  for (const name of readdirSync(dir)) {
    // environment.ts declares the interface (its methods bear the same names).
    if (!name.endsWith('.ts') || name.endsWith('.test.ts') || name === 'environment.ts') continue;
    const code = readFileSync(join(dir, name), 'utf8').replace(/^\s*(\/\/|\/\*|\*).*$/gm, '');
    assert.doesNotMatch(code, forbidden, name);
  }
});
