// The dashboard's HTTP routes against one real in-process member (raft, lmdb, watch, leases).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { startTestMember, type TestMember } from '../../../server/testing/in-process.js';
import { HASHED_LENGTH_UNIT, SHA256_BYTES } from '../../../backup/index.js';
import { eventStreamsMax } from '../../../limits.js';
import { formatId } from '../../../ids.js';

let member: TestMember;
let base: string;

before(async () => {
  member = await startTestMember({ listenHttp: '127.0.0.1:0' });
  base = `http://${member.node.addresses.http}`;
});

after(async () => {
  await member?.close();
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

const put = (key: string, value: string, lease = '0000000000000000') => call('PUT', `/v1/kv/${encodeURIComponent(key)}`, { value, lease });

interface SentEvent {
  event: string;
  data: string;
  id?: string;
}

/** Reads a server-sent event stream one event at a time. */
function eventReader(response: Response): { next(): Promise<SentEvent>; close(): Promise<void> } {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const ready: SentEvent[] = [];
  let buffer = '';
  return {
    async next() {
      while (ready.length === 0) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the event stream ended');
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));
          if (fields['event']) ready.push({ event: fields['event'], data: fields['data'] ?? '', id: fields['id'] });
        }
      }
      return ready.shift()!;
    },
    close: () => reader.cancel(),
  };
}

test('GET / serves the built page, gzipped when asked, and a 304 for a known ETag', async () => {
  const page = await fetch(`${base}/`, { headers: { 'Accept-Encoding': 'identity' } });
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type')!, /^text\/html/);
  assert.match(await page.text(), /<script type="module" src="\/assets\/app.js">/);
  const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    import('node:http').then(({ get }) =>
      get(`${base}/assets/app.js`, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject),
    );
  });
  assert.equal(raw.headers['content-encoding'], 'gzip');
  assert.ok(gunzipSync(raw.body).length > raw.body.length, 'the script is sent compressed');
  const again = await fetch(`${base}/assets/app.js`, { headers: { 'If-None-Match': String(raw.headers['etag']) } });
  assert.equal(again.status, 304);
  assert.equal((await call('GET', '/assets/..%2Fpackage.json')).status, 404, 'only the dashboard files are served');
});

test('GET /v1/history/<key> lists the versions newest first, and pages back with rev', async () => {
  for (const value of ['one', 'two', 'three']) await put('history/a', value);
  await put('history/other', 'x');
  await put('history/a', 'four');
  const { json } = await call('GET', '/v1/history/history%2Fa?limit=3');
  assert.deepEqual(json.versions.map((kv: { value: string }) => kv.value), ['four', 'three', 'two']);
  assert.equal(json.more, true);
  const older = await call('GET', `/v1/history/history%2Fa?limit=3&rev=${json.versions[2].modRevision - 1}`);
  assert.deepEqual(older.json.versions.map((kv: { value: string; version: number }) => [kv.value, kv.version]), [['one', 1]]);
  assert.equal(older.json.more, false);
});

test('history stops at the compacted revision and says so', async () => {
  await put('compacted/k', 'v1');
  const second = await put('compacted/k', 'v2');
  await put('compacted/k', 'v3');
  assert.equal((await call('POST', '/v1/compact', { revision: second.json.revision })).status, 200);
  const { json } = await call('GET', '/v1/history/compacted%2Fk');
  assert.deepEqual(json.versions.map((kv: { value: string }) => kv.value), ['v3', 'v2']);
  assert.equal(json.compacted, true);
});

test('GET /v1/children/<prefix> gives one level of the key tree, skipping over large folders', async () => {
  for (let batch = 0; batch < 15; batch++) {
    const success = Array.from({ length: 100 }, (_, i) => ({
      request_put: { key: Buffer.from(`tree/big/${String(batch * 100 + i).padStart(5, '0')}`), value: Buffer.from('v') },
    }));
    await member.call('KV', 'Txn', { compare: [], success, failure: [] });
  }
  await put('tree/small/x', '1');
  await put('tree/leaf', '2');
  await put('tree/zeta/y', '3');
  const { json } = await call('GET', '/v1/children/tree%2F');
  assert.deepEqual(json.children, [
    { name: 'big/', folder: true },
    { name: 'leaf', folder: false },
    { name: 'small/', folder: true },
    { name: 'zeta/', folder: true },
  ]);
  assert.equal(json.more, false);
  const page = await call('GET', '/v1/children/tree%2F?limit=2');
  assert.deepEqual(page.json.children.map((c: { name: string }) => c.name), ['big/', 'leaf']);
  assert.equal(page.json.more, true);
  const next = await call('GET', '/v1/children/tree%2F?limit=2&after=leaf');
  assert.deepEqual(next.json.children.map((c: { name: string }) => c.name), ['small/', 'zeta/']);
});

test('GET /v1/keys/<prefix> pages through keys without values', async () => {
  const first = await call('GET', '/v1/keys/tree%2Fbig%2F?limit=2');
  assert.deepEqual(first.json.kvs.map((kv: { key: string }) => kv.key), ['tree/big/00000', 'tree/big/00001']);
  assert.equal(first.json.kvs[0].value, undefined);
  assert.equal(first.json.count, 1500);
  assert.equal(first.json.more, true);
  const second = await call('GET', `/v1/keys/tree%2Fbig%2F?limit=2&after=${encodeURIComponent('tree/big/00001')}`);
  assert.deepEqual(second.json.kvs.map((kv: { key: string }) => kv.key), ['tree/big/00002', 'tree/big/00003']);
  assert.equal(second.json.count, 1500);
});

test('GET /v1/watch/<prefix> streams changes as server-sent events and resumes after Last-Event-ID', async () => {
  const response = await fetch(`${base}/v1/watch/tail%2F?prefix=true`);
  assert.equal(response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const stream = eventReader(response);
  assert.equal((await stream.next()).event, 'created');
  await put('tail/a', 'v1');
  await put('outside', 'not watched');
  await call('DELETE', '/v1/kv/tail%2Fa');
  const seen: Array<{ type: string; kv: { key: string; value?: string; modRevision: number } }> = [];
  let firstId = '';
  while (seen.length < 2) {
    const event = await stream.next();
    assert.equal(event.event, 'events');
    firstId ||= event.id!;
    seen.push(...JSON.parse(event.data));
  }
  await stream.close();
  assert.deepEqual(seen.map((e) => [e.type, e.kv.key]), [['PUT', 'tail/a'], ['DELETE', 'tail/a']]);
  assert.equal(seen[0]!.kv.value, 'v1');
  // A reconnecting EventSource sends the last id it saw: the stream replays what came after it.
  const resumed = eventReader(await fetch(`${base}/v1/watch/tail%2F?prefix=true`, { headers: { 'Last-Event-ID': firstId } }));
  assert.equal((await resumed.next()).event, 'created');
  const replay = JSON.parse((await resumed.next()).data);
  await resumed.close();
  assert.deepEqual(replay.map((e: { type: string }) => e.type), ['DELETE']);
});

test('leases: grant, list with TTLs and key counts, keys of one, revoke', async () => {
  const granted = await call('POST', '/v1/leases', { ttl: 120 });
  // etcdctl's form: 16 hex digits, zero-padded.
  const hex: string = granted.json.id;
  assert.match(hex, /^[0-9a-f]{16}$/);
  await put('leased/a', '1', hex);
  await put('leased/b', '2', hex);
  const list = await call('GET', '/v1/leases');
  const row = list.json.leases.find((l: { id: string }) => l.id === hex);
  assert.ok(row.ttl > 100 && row.ttl <= 120, `ttl ${row.ttl}`);
  assert.equal(row.grantedTTL, 120);
  assert.equal(row.keys, 2);
  const one = await call('GET', `/v1/leases/${hex}`);
  assert.deepEqual(one.json.keys.map((k: { key: string }) => k.key).sort(), ['leased/a', 'leased/b']);
  assert.equal((await call('DELETE', `/v1/leases/${hex}`)).status, 200);
  assert.equal((await call('GET', '/v1/kv/leased%2Fa')).status, 404, 'revoking deletes the keys');
  const gone = await call('GET', `/v1/leases/${hex}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.json.error.code, 'LeaseNotFound');
  assert.equal((await call('GET', '/v1/leases/xyz')).status, 400);
  assert.equal((await call('GET', '/v1/leases/ffffffffffffffff')).status, 400, 'ids are below 2^53');
});

test('membership and leadership through the routes: add a learner, remove it, move the leadership to the leader', async () => {
  const added = await call('POST', '/v1/members', { peerURLs: ['http://127.0.0.1:1'], isLearner: true });
  assert.equal(added.status, 200);
  const learner = added.json.member;
  assert.match(learner.id, /^[0-9a-f]{16}$/);
  assert.equal(learner.isLearner, true);
  assert.equal(added.json.members.length, 2);
  const promoted = await call('POST', `/v1/members/${learner.id}?promote`);
  assert.equal(promoted.status, 409, 'a learner that has not caught up is not promoted');
  const removed = await call('DELETE', `/v1/members/${learner.id}`);
  assert.equal(removed.status, 200);
  assert.deepEqual(removed.json.members.map((m: { id: string }) => m.id), [formatId(member.node.memberId)]);
  const moved = await call('POST', '/v1/leader', { id: formatId(member.node.memberId) });
  assert.equal(moved.status, 200);
  assert.equal(moved.json.leader, formatId(member.node.memberId));
});

test('operations refuse bad input with a clear error', async () => {
  const missing = await call('POST', '/v1/compact', {});
  assert.equal(missing.status, 400);
  assert.match(missing.json.error.message, /"revision" is required/);
  const future = await call('POST', '/v1/compact', { revision: 10_000_000 });
  assert.equal(future.status, 400);
  assert.equal(future.json.error.code, 'FutureRevision');
  const badMember = await call('DELETE', '/v1/members/abc');
  assert.equal(badMember.status, 404);
  assert.equal(badMember.json.error.code, 'MemberNotFound');
  const noUrls = await call('POST', '/v1/members', { peerURLs: [] });
  assert.equal(noUrls.status, 400);
  const numericId = await call('POST', '/v1/leader', { id: 12 });
  assert.equal(numericId.status, 400);
  assert.match(numericId.json.error.message, /"id" must be an id in hexadecimal/);
});

test('GET /v1/snapshot downloads the backend with its SHA-256 trailer, as etcdctl snapshot save writes it', async () => {
  const response = await fetch(`${base}/v1/snapshot`);
  assert.equal(response.status, 200);
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.equal(Number(response.headers.get('content-length')), bytes.length);
  assert.equal(bytes.length % HASHED_LENGTH_UNIT, SHA256_BYTES);
  const body = bytes.subarray(0, bytes.length - SHA256_BYTES);
  assert.deepEqual(createHash('sha256').update(body).digest(), bytes.subarray(bytes.length - SHA256_BYTES));
});

test('GET /v1/events sends the cluster history, then a tick a second; GET /v1/traffic reports this member', async () => {
  await put('events/k', 'v');
  const stream = eventReader(await fetch(`${base}/v1/events`));
  const first = await stream.next();
  const second = await stream.next();
  await stream.close();
  assert.deepEqual([first.event, second.event], ['history', 'tick']);
  const history = JSON.parse(first.data);
  assert.equal(history.leader, formatId(member.node.memberId));
  assert.equal(history.members.length, 1);
  assert.equal(history.members[0].state, 'up');
  assert.equal(history.members[0].facts.role, 'leader');
  assert.ok(Object.keys(history.samples).includes(formatId(member.node.memberId)));
  assert.ok(Number(second.id) >= Number(first.id), 'ids are the seconds of the events');
  const traffic = await call('GET', '/v1/traffic?since=0');
  assert.equal(traffic.json.member.name, 'solo');
  assert.ok(traffic.json.samples.writes.reduce((a: number, b: number) => a + b, 0) > 0, 'the writes above were counted');
});

test(`at most ${eventStreamsMax} event streams are open at once; more get 503`, async () => {
  const open = await Promise.all(Array.from({ length: eventStreamsMax }, () => fetch(`${base}/v1/watch/x?prefix=true`)));
  assert.ok(open.every((r) => r.status === 200));
  const refused = await call('GET', '/v1/watch/x?prefix=true');
  assert.equal(refused.status, 503);
  assert.match(refused.json.error.message, /too many open event streams/);
  await Promise.all(open.map((r) => r.body!.cancel()));
  // The slots come back once the streams are closed.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const retry = await fetch(`${base}/v1/watch/x?prefix=true`);
    if (retry.status === 200) {
      await retry.body!.cancel();
      break;
    }
    await retry.text();
    assert.ok(Date.now() < deadline, 'the closed streams were never released');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
});
