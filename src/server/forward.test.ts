import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Channel, credentials } from '@grpc/grpc-js';
import { ErrorCode, isLichenError } from '../errors.js';
import { startHarness, type Harness } from '../api/grpc/testing/harness.js';
import { MemoryBackend } from '../api/grpc/testing/memory-backend.js';
import type { WithHeader } from '../api/backend.js';
import { MemberCalls } from './forward.js';

/** A leader that never answers renewals of chosen leases (a stuck leader). */
class HeldBackend extends MemoryBackend {
  readonly stuck = new Set<number>();

  override async leaseKeepAlive(id: number): Promise<WithHeader<{ TTL: number }>> {
    if (this.stuck.has(id)) return new Promise(() => undefined);
    return super.leaseKeepAlive(id);
  }
}

const lichenCode = (code: ErrorCode) => (error: unknown) => isLichenError(error, code);

describe('keep-alives forwarded to the leader', () => {
  let leader: Harness;
  let backend: HeldBackend;
  before(async () => {
    backend = new HeldBackend();
    leader = await startHarness({ backend });
  });
  after(() => leader.close());

  async function grant(ttl: number): Promise<number> {
    return (await backend.leaseGrant({ TTL: ttl })).ID;
  }

  it('renews many leases at once over a few streams kept open, each renewal with its own answer', async () => {
    const calls = new MemberCalls(10_000, credentials.createInsecure());
    // Every call a grpc-js client makes goes through its channel's createCall.
    const createCall = Channel.prototype.createCall;
    let streamsOpened = 0;
    Channel.prototype.createCall = function (this: Channel, ...args: Parameters<typeof createCall>) {
      if (args[0] === '/etcdserverpb.Lease/LeaseKeepAlive') streamsOpened++;
      return createCall.apply(this, args);
    };
    try {
      const leases = await Promise.all(Array.from({ length: 50 }, (_, i) => grant(10 + i)));
      const missing = 9_999_999;
      const renewals = leases.flatMap((id) => [calls.leaseKeepAlive(leader.address, id), calls.leaseKeepAlive(leader.address, missing).catch((e) => e)]);
      const answers = await Promise.all(renewals);
      assert.deepEqual(answers.filter((_, i) => i % 2 === 0), leases.map((_, i) => 10 + i));
      for (const error of answers.filter((_, i) => i % 2 === 1)) assert.ok(lichenCode(ErrorCode.LeaseNotFound)(error));
      assert.ok(streamsOpened >= 1 && streamsOpened <= 8, `${streamsOpened} streams opened`);
      const opened = streamsOpened;
      for (const id of leases.slice(0, 20)) await calls.leaseKeepAlive(leader.address, id);
      assert.equal(streamsOpened, opened, 'renewals one at a time reuse the open streams');
    } finally {
      Channel.prototype.createCall = createCall;
      calls.close();
    }
  });

  it('fails every renewal waiting on a stream the leader does not answer in time, then opens a new one', async () => {
    const calls = new MemberCalls(200, credentials.createInsecure());
    try {
      const stuck = await grant(5);
      const fine = await grant(6);
      backend.stuck.add(stuck);
      // Eight stuck renewals fill the eight streams; the ninth waits behind one of them.
      const waiting = Array.from({ length: 8 }, () => calls.leaseKeepAlive(leader.address, stuck));
      waiting.push(calls.leaseKeepAlive(leader.address, fine));
      await Promise.all(waiting.map((renewal) => assert.rejects(renewal, lichenCode(ErrorCode.Timeout))));
      assert.equal(await calls.leaseKeepAlive(leader.address, fine), 6);
    } finally {
      calls.close();
    }
  });

  it('fails the renewals still waiting when the member stops', async () => {
    const calls = new MemberCalls(10_000, credentials.createInsecure());
    const stuck = await grant(5);
    backend.stuck.add(stuck);
    const renewal = calls.leaseKeepAlive(leader.address, stuck);
    calls.close();
    await assert.rejects(renewal, lichenCode(ErrorCode.Unavailable));
  });
});
