// One lease kept alive for a real minute through a single JSON gateway keep-alive stream: one
// HTTP/1.1 request whose body carries a keep-alive every second while the answers stream back.
//
// Why a real minute rather than injected time: what can end such a stream early runs on real
// clocks that a test cannot inject into a real member: Node's HTTP server timers (headers and
// request deadlines, keep-alive and socket timeouts, checked on an interval) and the leader's
// lease clocks (Date.now). The test is its own file so the runner runs it beside the others; it
// uses little CPU. Its waits pace the keep-alives; none of them waits for an outcome.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestMember, type TestMember } from '../../../server/testing/in-process.js';
import { GatewayClient } from './testing/http-client.js';

const STREAM_MS = 60_000;
const INTERVAL_MS = 1_000;
/** Shorter than the stream by far: the lease expires 12 times over if a keep-alive goes missing. */
const TTL_SECONDS = 5;

let member: TestMember;
let client: GatewayClient;

before(async () => {
  member = await startTestMember();
  client = new GatewayClient(member.node.addresses.client);
});

after(async () => {
  client?.close();
  await member?.close();
});

test('a keep-alive stream over the gateway keeps a lease alive for a minute', { timeout: STREAM_MS + 60_000 }, async () => {
  const key = Buffer.from('kept').toString('base64');
  const grant = await client.post('/v3/lease/grant', { TTL: TTL_SECONDS });
  const id: string = grant.json.ID;
  await client.post('/v3/kv/put', { key, value: Buffer.from('alive').toString('base64'), lease: id });

  const stream = client.stream('/v3/lease/keepalive');
  const started = performance.now();
  let sent = 0;
  let answered = 0;
  while (performance.now() - started < STREAM_MS) {
    stream.send({ ID: id });
    sent++;
    const answer = (await stream.next(INTERVAL_MS * 10)).result;
    assert.deepEqual([answer.ID, answer.TTL], [id, String(TTL_SECONDS)], `keep-alive ${sent}`);
    answered++;
    await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS));
  }
  stream.endRequest();
  assert.equal(await stream.next(), undefined, 'the stream ends when its request body ends');
  assert.ok(stream.complete, 'and ends cleanly, not with the connection');
  assert.ok(answered >= (STREAM_MS / INTERVAL_MS) * 0.5, `${answered} keep-alives answered in a minute`);

  const range = await client.post('/v3/kv/range', { key });
  assert.equal(range.json.count, '1', 'the key on the lease outlived the lease TTL many times over');
  const ttl = await client.post('/v3/lease/timetolive', { ID: id });
  assert.ok(Number(ttl.json.TTL) > 0, `the lease is alive (TTL ${ttl.json.TTL})`);
});
