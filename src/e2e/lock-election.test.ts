// etcd's Lock and Election services (v3lockpb, v3electionpb), which jetcd, the Rust etcd-client and
// the gateway's /v3/lock and /v3/election paths call: one scenario, run against a real etcd 3.4 and
// against a Lichen member, must give the same transcript (which calls succeed, which fail with
// which code and message, the shape of every answer, and who wins in which order), and Lichen's
// own answers are checked for the facts the transcript leaves out (revisions, keys, leases).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import { GatewayClient } from '../api/grpc/gateway/testing/http-client.js';
import { startEtcd, type EtcdProcess } from '../server/testing/etcd-process.js';
import { startTestMember, type TestMember } from '../server/testing/in-process.js';

/** Bounds every call, so a broken server fails the test instead of hanging it. */
const CALL_DEADLINE_MS = 15_000;

const b = (text: string): Buffer => Buffer.from(text);

interface Clients {
  Auth: Client;
  KV: Client;
  Lease: Client;
  Watch: Client;
  Lock: Client;
  Election: Client;
}

function clientsOf(address: string): Clients {
  const c = etcdClientConstructors();
  const make = (Ctor: (typeof c)['KV']): Client => new Ctor(address, credentials.createInsecure());
  return { Auth: make(c.Auth), KV: make(c.KV), Lease: make(c.Lease), Watch: make(c.Watch), Lock: make(c.Lock), Election: make(c.Election) };
}

interface PendingCall<T> {
  result: Promise<T>;
  cancel(): void;
}

function start<T = any>(client: Client, method: string, request: object, token?: string): PendingCall<T> {
  let call: { cancel(): void } | undefined;
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('token', token);
  const result = new Promise<T>((resolve, reject) => {
    const target = client as unknown as Record<string, Function>;
    call = target[method]!.call(client, request, metadata, { deadline: Date.now() + CALL_DEADLINE_MS }, (error: ServiceError | null, response: T) =>
      error ? reject(error) : resolve(response),
    );
  });
  return { result, cancel: () => call!.cancel() };
}

const call = <T = any>(client: Client, method: string, request: object, token?: string): Promise<T> => start<T>(client, method, request, token).result;

/** The error's code and message, or the answer's shape. */
async function outcome(promise: Promise<unknown>): Promise<unknown> {
  try {
    return { ok: shapeOf(await promise) };
  } catch (error) {
    const e = error as ServiceError;
    return { code: e.code, message: e.details };
  }
}

/** Field names and value types, recursively: what two clusters' answers share. */
function shapeOf(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return 'bytes';
  if (Array.isArray(value)) return value.map(shapeOf);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shapeOf(v)]));
  }
  return typeof value;
}

/** Resolves with the first DELETE event of `key` from `revision` on. */
function deletion(clients: Clients, key: Buffer, revision: string): Promise<void> {
  const stream = (clients.Watch as unknown as { Watch(): any }).Watch();
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no delete of ${key} within ${CALL_DEADLINE_MS} ms`)), CALL_DEADLINE_MS);
    stream.on('data', (response: { events: { type: string | number }[] }) => {
      if (response.events.some((e) => e.type === 'DELETE' || e.type === 1)) {
        clearTimeout(deadline);
        stream.cancel();
        resolve();
      }
    });
    stream.on('error', () => undefined);
    stream.write({ create_request: { key, start_revision: revision } });
  });
}

interface ScenarioResult {
  transcript: Array<[string, unknown]>;
  facts: Record<string, any>;
}

/**
 * Locks and elections as a client library drives them. Every step's outcome goes into the
 * transcript; the values that differ between clusters (revisions, lease ids) go into `facts`.
 */
async function scenario(address: string): Promise<ScenarioResult> {
  const c = clientsOf(address);
  const transcript: Array<[string, unknown]> = [];
  const facts: Record<string, any> = {};
  /** Notes the step's outcome; resolves with its answer, or undefined when it failed. */
  const record = async <T = any>(step: string, promise: Promise<T>): Promise<T> => {
    transcript.push([step, await outcome(promise)]);
    return promise.catch(() => undefined as T);
  };
  try {
    const grant = async (): Promise<string> => (await call(c.Lease, 'LeaseGrant', { TTL: 60 })).ID;
    const [leaseA, leaseB, leaseC] = [await grant(), await grant(), await grant()];
    facts['leases'] = [leaseA, leaseB, leaseC];

    // Lock: the first caller holds it at once; the next waits for the unlock.
    const heldA = await record('lock A', call(c.Lock, 'Lock', { name: b('job'), lease: leaseA }));
    facts['heldA'] = heldA;
    let unlockedA = false;
    const waitingB = start(c.Lock, 'Lock', { name: b('job'), lease: leaseB });
    const waitingC = start(c.Lock, 'Lock', { name: b('job'), lease: leaseC });
    // C gives up while B and A are ahead of it: its place in the queue goes.
    const cKeyGone = (async () => {
      const cKey = Buffer.concat([b('job/'), b(BigInt(leaseC).toString(16))]);
      const rangeC = async (): Promise<any> => call(c.KV, 'Range', { key: cKey });
      // The key appears when C's Lock has queued; the watch from its create revision sees it go.
      let created: any;
      const deadline = Date.now() + CALL_DEADLINE_MS;
      while ((created = (await rangeC()).kvs[0]) === undefined) {
        if (Date.now() > deadline) throw new Error('C never queued');
      }
      const gone = deletion(c, cKey, created.create_revision);
      waitingC.cancel();
      await gone;
      return (await rangeC()).kvs.length;
    })();
    transcript.push(['lock C cancelled', await outcome(waitingC.result)]);
    facts['cKeysAfterCancel'] = await cKeyGone;
    unlockedA = true;
    await record('unlock A', call(c.Lock, 'Unlock', { key: heldA.key }));
    const heldB = await record('lock B after A', waitingB.result);
    facts['heldB'] = heldB;
    facts['bWokeAfterUnlock'] = unlockedA;
    // The same lease locking again holds the same key.
    facts['heldBAgain'] = await record('lock B again', call(c.Lock, 'Lock', { name: b('job'), lease: leaseB }));
    // Revoking the holder's lease releases the lock to the next contender.
    const waitingA = start(c.Lock, 'Lock', { name: b('job'), lease: leaseA });
    await call(c.Lease, 'LeaseRevoke', { ID: leaseB });
    facts['heldAAfterRevoke'] = await record('lock A after revoking B', waitingA.result);
    await record('unlock A again', call(c.Lock, 'Unlock', { key: heldA.key }));
    await record('lock with a missing lease', call(c.Lock, 'Lock', { name: b('job'), lease: '12345' }));
    const leaseless = await record('lock without a lease', call(c.Lock, 'Lock', { name: b('solo'), lease: 0 }));
    const leaselessKv = (await call(c.KV, 'Range', { key: leaseless.key })).kvs[0];
    facts['leaselessTtl'] = (await call(c.Lease, 'LeaseTimeToLive', { ID: leaselessKv.lease })).grantedTTL;
    await record('unlock a key that is not held', call(c.Lock, 'Unlock', { key: b('nothing') }));

    // Election.
    await record('leader of an empty election', call(c.Election, 'Leader', { name: b('vote') }));
    const observer = (c.Election as unknown as { Observe(r: object): ClientReadableStream<any> }).Observe({ name: b('vote') });
    const observed: string[] = [];
    const waiters: Array<() => void> = [];
    observer.on('data', (response: any) => {
      observed.push(response.kv.value.toString());
      waiters.splice(0).forEach((wake) => wake());
    });
    // The observer reads the leader when it starts and after each leader goes: a change made
    // before that read would be seen instead of the value before it, so the scenario waits.
    const observedCount = async (count: number): Promise<void> => {
      while (observed.length < count) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    observer.on('error', () => undefined);
    const wonA = await record('campaign A', call(c.Election, 'Campaign', { name: b('vote'), lease: leaseA, value: b('a1') }));
    facts['wonA'] = wonA;
    await observedCount(1);
    facts['leaderA'] = await record('leader', call(c.Election, 'Leader', { name: b('vote') }));
    let resignedA = false;
    const waitingC2 = start(c.Election, 'Campaign', { name: b('vote'), lease: leaseC, value: b('c1') });
    await record('proclaim A', call(c.Election, 'Proclaim', { leader: wonA.leader, value: b('a2') }));
    await record('proclaim with a wrong revision', call(c.Election, 'Proclaim', { leader: { ...wonA.leader, rev: '1' }, value: b('x') }));
    await record('proclaim without a leader', call(c.Election, 'Proclaim', { value: b('x') }));
    await record('resign without a leader', call(c.Election, 'Resign', {}));
    await record('resign with a wrong revision', call(c.Election, 'Resign', { leader: { ...wonA.leader, rev: '1' } }));
    resignedA = true;
    await record('resign A', call(c.Election, 'Resign', { leader: wonA.leader }));
    const wonC = await record('campaign C after A resigned', waitingC2.result);
    facts['cWonAfterResign'] = resignedA;
    await observedCount(3);
    await record('proclaim C', call(c.Election, 'Proclaim', { leader: wonC.leader, value: b('c2') }));
    await observedCount(4);
    facts['observed'] = observed;
    observer.cancel();
    await record('proclaim as the old leader', call(c.Election, 'Proclaim', { leader: wonA.leader, value: b('late') }));

    // With auth on, every step is the caller's own request, checked against its permissions.
    await call(c.Auth, 'UserAdd', { name: 'root', password: 'rootpw' });
    await call(c.Auth, 'UserGrantRole', { user: 'root', role: 'root' });
    await call(c.Auth, 'UserAdd', { name: 'worker', password: 'workerpw' });
    await call(c.Auth, 'RoleAdd', { name: 'locks' });
    await call(c.Auth, 'RoleGrantPermission', { name: 'locks', perm: { permType: 'READWRITE', key: b('mine/'), range_end: b('mine0') } });
    await call(c.Auth, 'UserGrantRole', { user: 'worker', role: 'locks' });
    await call(c.Auth, 'AuthEnable', {});
    const token = (await call(c.Auth, 'Authenticate', { name: 'worker', password: 'workerpw' })).token;
    const workerLease = (await call(c.Lease, 'LeaseGrant', { TTL: 60 }, token)).ID;
    await record('lock outside the permitted keys', call(c.Lock, 'Lock', { name: b('job'), lease: workerLease }, token));
    await record('lock without a token', call(c.Lock, 'Lock', { name: b('mine'), lease: workerLease }));
    await record('lock with a bad token', call(c.Lock, 'Lock', { name: b('mine'), lease: workerLease }, 'bogus.1'));
    const mine = await record('lock inside the permitted keys', call(c.Lock, 'Lock', { name: b('mine'), lease: workerLease }, token));
    await record('unlock inside the permitted keys', call(c.Lock, 'Unlock', { key: mine.key }, token));
    await record('leader outside the permitted keys', call(c.Election, 'Leader', { name: b('vote') }, token));
    await record('campaign inside the permitted keys', call(c.Election, 'Campaign', { name: b('mine'), lease: workerLease, value: b('w') }, token));
    const rootToken = (await call(c.Auth, 'Authenticate', { name: 'root', password: 'rootpw' })).token;
    await call(c.Auth, 'AuthDisable', {}, rootToken);
    return { transcript, facts };
  } finally {
    for (const client of Object.values(c)) client.close();
  }
}

describe('Lock and Election services, against etcd 3.4', () => {
  let etcd: EtcdProcess;
  let member: TestMember;
  let results: { etcd: ScenarioResult; lichen: ScenarioResult };

  before(async () => {
    [etcd, member] = await Promise.all([startEtcd(), startTestMember()]);
    results = { etcd: await scenario(etcd.client), lichen: await scenario(member.node.addresses.client) };
  });
  after(async () => {
    await Promise.all([etcd?.stop(), member?.close()]);
  });

  it('answer every step as etcd does: same successes, same error codes and messages, same fields', () => {
    assert.deepEqual(results.lichen.transcript, results.etcd.transcript);
  });

  for (const side of ['etcd', 'lichen'] as const) {
    it(`${side}: locks queue in order, wake on unlock and on lease revocation, and forget a cancelled waiter`, () => {
      const { facts } = results[side];
      const [leaseA, leaseB] = facts['leases'].map((id: string) => BigInt(id).toString(16));
      assert.equal(facts['heldA'].key.toString(), `job/${leaseA}`);
      assert.equal(facts['heldB'].key.toString(), `job/${leaseB}`);
      assert.equal(facts['bWokeAfterUnlock'], true);
      assert.equal(facts['cKeysAfterCancel'], 0);
      assert.deepEqual(facts['heldBAgain'].key, facts['heldB'].key);
      assert.equal(facts['heldAAfterRevoke'].key.toString(), `job/${leaseA}`);
      assert.ok(Number(facts['heldB'].header.revision) > Number(facts['heldA'].header.revision));
      assert.equal(facts['leaselessTtl'], '60');
    });

    it(`${side}: an election's leader, its proclamations and its successor are seen in order`, () => {
      const { facts } = results[side];
      const leader = facts['wonA'].leader;
      assert.equal(leader.name.toString(), 'vote');
      assert.equal(leader.key.toString(), `vote/${BigInt(facts['leases'][0]).toString(16)}`);
      assert.equal(leader.lease, facts['leases'][0]);
      assert.equal(facts['leaderA'].kv.create_revision, leader.rev);
      assert.equal(facts['leaderA'].kv.value.toString(), 'a1');
      assert.equal(facts['cWonAfterResign'], true);
      assert.deepEqual(facts['observed'], ['a1', 'a2', 'c1', 'c2']);
    });
  }

  it('serves the JSON gateway paths of both services', async () => {
    const gateway = new GatewayClient(member.node.addresses.client);
    try {
      const name = b('web').toString('base64');
      const granted = await gateway.post('/v3/lease/grant', { TTL: 30 });
      const locked = await gateway.post('/v3/lock/lock', { name, lease: granted.json.ID });
      assert.equal(locked.status, 200);
      assert.equal(Buffer.from(locked.json.key, 'base64').toString(), `web/${BigInt(granted.json.ID).toString(16)}`);
      assert.equal((await gateway.post('/v3/lock/unlock', { key: locked.json.key })).status, 200);
      const won = await gateway.post('/v3/election/campaign', { name, lease: granted.json.ID, value: b('v').toString('base64') });
      assert.equal(won.status, 200);
      const current = await gateway.post('/v3/election/leader', { name });
      assert.equal(Buffer.from(current.json.kv.value, 'base64').toString(), 'v');
      assert.equal((await gateway.post('/v3/election/resign', { leader: won.json.leader })).status, 200);
      const none = await gateway.post('/v3/election/leader', { name });
      assert.equal(none.status, 500);
      assert.equal(none.json.error, 'election: no leader');
    } finally {
      gateway.close();
    }
  });
});
