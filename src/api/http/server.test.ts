import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { ErrorCode, LichenError } from '../../errors.js';
import { formatId } from '../../ids.js';
import { httpRequestSecondsOn, Registry } from '../../metrics.js';
import { startHttpServer, type HttpServer, type HttpServerOptions } from './server.js';
import { StoreBackend, TEST_CLUSTER_ID, TEST_MEMBER_ID } from './test-backend.js';
import { ManualTimers } from '../testing/manual-timers.js';
import { EventType } from '../../mvcc/types.js';
import type { WatchCreate, WatchHandle, WatchSink } from '../backend.js';
import type { DashboardSource } from './dashboard/report.js';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function startWith(options: Partial<HttpServerOptions> = {}): Promise<{ server: HttpServer; backend: StoreBackend; registry: Registry; call: Caller }> {
  const backend = (options.backend as StoreBackend | undefined) ?? new StoreBackend();
  const registry = options.registry ?? new Registry();
  const server = await startHttpServer({ backend, registry, host: '127.0.0.1', port: 0, ...options });
  const call: Caller = async (method, path, init = {}) => {
    const response = await fetch(`http://127.0.0.1:${server.port}${path}`, { method, body: init.body, headers: init.headers });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, text, json };
  };
  return { server, backend, registry, call };
}

type Caller = (method: string, path: string, init?: { body?: string | Uint8Array; headers?: Record<string, string> }) => Promise<Answer>;

/** A request through node:http, which sends the path as given; an array body goes out chunked. */
function nodeRequest(port: number, method: string, path: string, body: string | string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = Array.isArray(body) ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(Buffer.byteLength(body)) };
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    for (const chunk of Array.isArray(body) ? body : [body]) req.write(chunk);
    req.end();
  });
}

/** Sends raw bytes and returns the raw response text; for input fetch refuses to produce. */
function rawRequest(port: number, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(payload));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
  });
}

function assertError(answer: Answer, status: number, code: string, message: RegExp): void {
  assert.equal(answer.status, status, answer.text);
  assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(answer.json.error.code, code);
  assert.match(answer.json.error.message, message);
}

describe('HTTP API over a single-node MVCC store', () => {
  let ctx: Awaited<ReturnType<typeof startWith>>;
  before(async () => {
    ctx = await startWith({ maxRequestBytes: 1024 });
  });
  after(async () => {
    await ctx.server.close();
  });

  describe('simple routes', () => {
    test('POST /set with a JSON body stores the value and GET /get reads it with revision info', async () => {
      const set = await ctx.call('POST', '/set', { body: JSON.stringify({ key: 'simple/a', value: 'hello' }) });
      assert.equal(set.status, 200, set.text);
      assert.equal(set.json.key, 'simple/a');
      const got = await ctx.call('GET', '/get?key=simple%2Fa');
      assert.equal(got.status, 200);
      assert.deepEqual(got.json, {
        key: 'simple/a',
        value: 'hello',
        createRevision: set.json.revision,
        modRevision: set.json.revision,
        version: 1,
        lease: '0000000000000000',
        revision: set.json.revision,
      });
    });

    test('GET and PUT /set?key=k&value=v store values; a second write bumps the version', async () => {
      const first = await ctx.call('GET', '/set?key=simple%20b&value=one+two');
      assert.equal(first.status, 200, first.text);
      const second = await ctx.call('PUT', '/set?key=simple%20b&value=three');
      assert.equal(second.status, 200, second.text);
      assert.equal(second.json.revision, first.json.revision + 1);
      const got = await ctx.call('GET', '/get?key=simple+b');
      assert.equal(got.json.value, 'three');
      assert.equal(got.json.version, 2);
      assert.equal(got.json.createRevision, first.json.revision);
      assert.equal(got.json.modRevision, second.json.revision);
    });

    test('GET /get of a missing key is a 404 JSON error naming the key', async () => {
      assertError(await ctx.call('GET', '/get?key=simple/missing'), 404, 'NotFound', /key "simple\/missing" not found/);
    });

    test('DELETE /delete removes the key and reports how many were deleted', async () => {
      await ctx.call('POST', '/set', { body: JSON.stringify({ key: 'simple/del', value: 'x' }) });
      const deleted = await ctx.call('DELETE', '/delete?key=simple/del');
      assert.equal(deleted.status, 200);
      assert.equal(deleted.json.deleted, 1);
      assert.equal((await ctx.call('GET', '/get?key=simple/del')).status, 404);
      const again = await ctx.call('DELETE', '/delete?key=simple/del');
      assert.equal(again.status, 200);
      assert.equal(again.json.deleted, 0);
    });

    test('a missing or empty key is a 400 on every simple route', async () => {
      assertError(await ctx.call('GET', '/get'), 400, 'InvalidArgument', /missing query parameter "key"/);
      assertError(await ctx.call('GET', '/get?key='), 400, 'InvalidArgument', /"key" must not be empty/);
      assertError(await ctx.call('DELETE', '/delete'), 400, 'InvalidArgument', /missing query parameter "key"/);
      assertError(await ctx.call('GET', '/set?value=v'), 400, 'InvalidArgument', /missing query parameter "key"/);
      assertError(await ctx.call('POST', '/set', { body: '{"value":"v"}' }), 400, 'InvalidArgument', /JSON field "key" is required/);
      assertError(await ctx.call('POST', '/set', { body: '{"key":"","value":"v"}' }), 400, 'InvalidArgument', /"key" must not be empty/);
    });

    test('/set without a value is a 400, and so is a value of the wrong JSON type', async () => {
      assertError(await ctx.call('GET', '/set?key=k'), 400, 'InvalidArgument', /missing query parameter "value"/);
      assertError(await ctx.call('POST', '/set', { body: '{"key":"k"}' }), 400, 'InvalidArgument', /JSON field "value" is required/);
      assertError(await ctx.call('POST', '/set', { body: '{"key":"k","value":5}' }), 400, 'InvalidArgument', /"value" must be a string, got number/);
      assertError(await ctx.call('POST', '/set', { body: '{"key":"k","value":"v","lease":-1}' }), 400, 'InvalidArgument', /"lease" must be a non-negative integer/);
    });

    test('lease ids go in and come out as 16 hex digits, as the CLI prints them; a JSON number still works', async () => {
      const granted = await ctx.backend.leaseGrant({ ID: 0, TTL: 60 });
      const id = formatId(granted.ID);
      assert.ok(granted.ID > 0xffff_ffff, 'a generated id, wider than 32 bits');
      const viaQuery = await ctx.call('PUT', `/v1/kv/leased/query?lease=${id}`, { body: 'q' });
      assert.equal(viaQuery.status, 200, viaQuery.text);
      const viaSet = await ctx.call('GET', `/set?key=leased/set&value=s&lease=${id.toUpperCase()}`);
      assert.equal(viaSet.status, 200, viaSet.text);
      const viaJson = await ctx.call('POST', '/set', { body: JSON.stringify({ key: 'leased/json', value: 'j', lease: id }) });
      assert.equal(viaJson.status, 200, viaJson.text);
      const viaNumber = await ctx.call('PUT', '/v1/kv/leased/number', {
        body: JSON.stringify({ value: 'n', lease: granted.ID }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(viaNumber.status, 200, viaNumber.text);

      const listed = await ctx.call('GET', '/v1/kv/leased/?prefix=true');
      assert.deepEqual(
        listed.json.kvs.map((kv: { key: string; lease: string }) => `${kv.key} ${kv.lease}`),
        ['json', 'number', 'query', 'set'].map((k) => `leased/${k} ${id}`),
      );
      assert.equal((await ctx.call('GET', '/get?key=leased/set')).json.lease, id);
    });

    test('a lease id that is not 16 hex digits is a 400; an unknown one a 404 naming it in hex', async () => {
      assertError(await ctx.call('PUT', '/v1/kv/leased/bad?lease=123', { body: 'v' }), 400, 'InvalidArgument', /query parameter "lease" must be a lease id of 16 hex digits.*"123"/);
      assertError(await ctx.call('GET', '/set?key=k&value=v&lease=0x00000000000000ff'), 400, 'InvalidArgument', /16 hex digits/);
      assertError(await ctx.call('POST', '/set', { body: '{"key":"k","value":"v","lease":"ff"}' }), 400, 'InvalidArgument', /JSON field "lease" must be a lease id of 16 hex digits/);
      assertError(await ctx.call('POST', '/set', { body: '{"key":"k","value":"v","lease":true}' }), 400, 'InvalidArgument', /"lease" must be a non-negative integer/);
      assertError(await ctx.call('PUT', '/v1/kv/k?lease=ffffffffffffffff', { body: 'v' }), 400, 'InvalidArgument', /out of range: Lichen's lease ids are below 2\^53/);
      const unknown = await ctx.call('PUT', '/v1/kv/k?lease=00000000000000ab', { body: 'v' });
      assertError(unknown, 404, 'LeaseNotFound', /requested lease 00000000000000ab not found/);
      assert.deepEqual(unknown.json.error.details, { lease: '00000000000000ab' });
      const none = await ctx.call('PUT', '/v1/kv/leased/none?lease=0000000000000000', { body: 'v' });
      assert.equal(none.status, 200, none.text);
    });

    test('invalid JSON bodies are a 400 that names the problem', async () => {
      assertError(await ctx.call('POST', '/set', { body: '{"key": "k", ' }), 400, 'InvalidArgument', /^invalid JSON body: .*JSON/);
      assertError(await ctx.call('POST', '/set', { body: '["k","v"]' }), 400, 'InvalidArgument', /must be an object, got an array/);
      assertError(await ctx.call('POST', '/set', { body: 'null' }), 400, 'InvalidArgument', /must be an object, got null/);
    });

    test('a wrong method is a 405 with an Allow header listing the right ones', async () => {
      const getDelete = await ctx.call('GET', '/delete?key=k');
      assertError(getDelete, 405, 'MethodNotAllowed', /method GET is not allowed here; allowed: DELETE/);
      assert.equal(getDelete.headers.get('allow'), 'DELETE');
      const postGet = await ctx.call('POST', '/get?key=k', { body: '' });
      assertError(postGet, 405, 'MethodNotAllowed', /allowed: GET/);
      assert.equal(postGet.headers.get('allow'), 'GET');
      assert.equal((await ctx.call('DELETE', '/set?key=k')).headers.get('allow'), 'GET, PUT, POST');
      assert.equal((await ctx.call('POST', '/v1/kv/k', { body: 'x' })).headers.get('allow'), 'GET, PUT, DELETE');
      assert.equal((await ctx.call('PATCH', '/metrics')).status, 405);
    });
  });

  describe('REST routes', () => {
    test('PUT /v1/kv/<key> stores the raw body bytes under the URL-decoded key', async () => {
      const put = await ctx.call('PUT', '/v1/kv/rest%2Fa%20b', { body: 'raw value', headers: { 'content-type': 'text/plain' } });
      assert.equal(put.status, 200, put.text);
      assert.equal(put.json.key, 'rest/a b');
      const got = await ctx.call('GET', '/v1/kv/rest/a%20b');
      assert.equal(got.status, 200);
      assert.equal(got.json.key, 'rest/a b');
      assert.equal(got.json.value, 'raw value');
      assert.equal(got.json.revision, put.json.revision);
    });

    test('keys keep dot segments and plus signs exactly as sent', async () => {
      // fetch would resolve "/../" itself, so this request goes out through node:http unchanged.
      const put = await nodeRequest(ctx.server.port, 'PUT', '/v1/kv/rest/x/../y+z', '1');
      assert.equal(put.status, 200, put.body);
      const scan = await ctx.call('GET', '/v1/kv/rest/x/?prefix=true');
      assert.deepEqual(
        scan.json.kvs.map((kv: { key: string }) => kv.key),
        ['rest/x/../y+z'],
      );
    });

    test('PUT with Content-Type application/json takes {"value"}, also base64-encoded', async () => {
      const text = await ctx.call('PUT', '/v1/kv/rest/json', { body: '{"value":"from json"}', headers: { 'content-type': 'application/json; charset=utf-8' } });
      assert.equal(text.status, 200, text.text);
      assert.equal((await ctx.call('GET', '/v1/kv/rest/json')).json.value, 'from json');
      const b64 = await ctx.call('PUT', '/v1/kv/rest/json', {
        body: JSON.stringify({ value: Buffer.from('binary?').toString('base64'), encoding: 'base64' }),
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(b64.status, 200, b64.text);
      assert.equal((await ctx.call('GET', '/v1/kv/rest/json')).json.value, 'binary?');
      assertError(
        await ctx.call('PUT', '/v1/kv/rest/json', { body: '{"value":"***","encoding":"base64"}', headers: { 'content-type': 'application/json' } }),
        400,
        'InvalidArgument',
        /not valid base64/,
      );
      assertError(
        await ctx.call('PUT', '/v1/kv/rest/json', { body: 'plain', headers: { 'content-type': 'application/json' } }),
        400,
        'InvalidArgument',
        /invalid JSON body/,
      );
    });

    test('binary keys and values that are not UTF-8 come back base64 with an encoding marker', async () => {
      const value = new Uint8Array([0xff, 0x00, 0xfe, 0x41]);
      const put = await ctx.call('PUT', '/v1/kv/bin%FF%01', { body: value, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual({ key: put.json.key, keyEncoding: put.json.keyEncoding }, { key: Buffer.from([0x62, 0x69, 0x6e, 0xff, 0x01]).toString('base64'), keyEncoding: 'base64' });
      const got = await ctx.call('GET', '/v1/kv/bin%FF%01');
      assert.equal(got.status, 200);
      assert.equal(got.json.encoding, 'base64');
      assert.deepEqual(new Uint8Array(Buffer.from(got.json.value, 'base64')), value);
      assert.equal(got.json.keyEncoding, 'base64');
    });

    test('GET ?prefix=true lists keys in order with count, and ?limit cuts it short with more', async () => {
      for (const k of ['c', 'a', 'b']) await ctx.call('PUT', `/v1/kv/list/${k}`, { body: k.toUpperCase() });
      await ctx.call('PUT', '/v1/kv/listx', { body: 'outside the prefix' });
      const all = await ctx.call('GET', '/v1/kv/list/?prefix=true');
      assert.equal(all.status, 200);
      assert.deepEqual(all.json.kvs.map((kv: { key: string; value: string }) => `${kv.key}=${kv.value}`), ['list/a=A', 'list/b=B', 'list/c=C']);
      assert.equal(all.json.count, 3);
      assert.equal(all.json.more, false);
      const limited = await ctx.call('GET', '/v1/kv/list/?prefix=true&limit=2');
      assert.deepEqual(limited.json.kvs.map((kv: { key: string }) => kv.key), ['list/a', 'list/b']);
      assert.equal(limited.json.count, 3);
      assert.equal(limited.json.more, true);
      const none = await ctx.call('GET', '/v1/kv/nothing-here/?prefix=true');
      assert.equal(none.status, 200);
      assert.deepEqual(none.json.kvs, []);
    });

    test('GET /v1/kv/?prefix=true covers every key, while an empty key without prefix is a 400', async () => {
      const everything = await ctx.call('GET', '/v1/kv/?prefix=true');
      assert.equal(everything.status, 200);
      assert.ok(everything.json.count >= 3);
      assert.equal(everything.json.count, everything.json.kvs.length);
      assertError(await ctx.call('GET', '/v1/kv/'), 400, 'InvalidArgument', /must not be empty/);
      assertError(await ctx.call('PUT', '/v1/kv/', { body: 'v' }), 400, 'InvalidArgument', /must not be empty/);
      assertError(await ctx.call('DELETE', '/v1/kv/'), 400, 'InvalidArgument', /must not be empty/);
    });

    test('a prefix GET is capped at rangeKeysMax keys even without a limit', async () => {
      const capped = await startWith({ rangeKeysMax: 2 });
      try {
        for (const k of ['a', 'b', 'c']) await capped.call('PUT', `/v1/kv/cap/${k}`, { body: k });
        const listed = await capped.call('GET', '/v1/kv/cap/?prefix=true&limit=50');
        assert.equal(listed.json.kvs.length, 2);
        assert.equal(listed.json.more, true);
        assert.equal(listed.json.count, 3);
      } finally {
        await capped.server.close();
      }
    });

    test('a prefix GET stops once its keys and values pass responseBytesMax, and always returns one key', async () => {
      // Before this limit, 150 values of 1.4 MB came back in one 210 MB response.
      const capped = await startWith({ responseBytesMax: 100 });
      try {
        for (const k of ['a', 'b', 'c', 'd']) await capped.call('PUT', `/v1/kv/bytes/${k}`, { body: k.repeat(40) });
        const first = await capped.call('GET', '/v1/kv/bytes/?prefix=true');
        assert.deepEqual(first.json.kvs.map((kv: { key: string }) => kv.key), ['bytes/a', 'bytes/b'], '2 × 47 bytes fit in 100, a third does not');
        assert.equal(first.json.more, true);
        assert.equal(first.json.count, 4);
        await capped.call('PUT', '/v1/kv/huge', { body: 'h'.repeat(300) });
        const one = await capped.call('GET', '/v1/kv/huge?prefix=true');
        assert.equal(one.json.kvs.length, 1, 'a key larger than the cap still comes back, alone');
        assert.equal(one.json.more, false);
      } finally {
        await capped.server.close();
      }
    });

    test('DELETE /v1/kv/<key> deletes one key, and ?prefix=true deletes the range with ?prevKv', async () => {
      for (const k of ['1', '2', '3']) await ctx.call('PUT', `/v1/kv/gone/${k}`, { body: `v${k}` });
      await ctx.call('PUT', '/v1/kv/gone', { body: 'the bare prefix key stays' });
      const one = await ctx.call('DELETE', '/v1/kv/gone/1');
      assert.equal(one.json.deleted, 1);
      const rest = await ctx.call('DELETE', '/v1/kv/gone/?prefix=true&prevKv=true');
      assert.equal(rest.status, 200);
      assert.equal(rest.json.deleted, 2);
      assert.deepEqual(rest.json.prevKvs.map((kv: { key: string; value: string }) => `${kv.key}=${kv.value}`), ['gone/2=v2', 'gone/3=v3']);
      assert.equal((await ctx.call('GET', '/v1/kv/gone')).status, 200);
      assertError(await ctx.call('GET', '/v1/kv/gone/2'), 404, 'NotFound', /key "gone\/2" not found/);
    });

    test('PUT ?prevKv=true returns the previous key-value', async () => {
      await ctx.call('PUT', '/v1/kv/prev', { body: 'old' });
      const put = await ctx.call('PUT', '/v1/kv/prev?prevKv=true', { body: 'new' });
      assert.equal(put.json.prevKv.value, 'old');
    });

    test('?rev=N reads an older revision; compacted revisions are 410 and future ones 400', async () => {
      const v1 = await ctx.call('PUT', '/v1/kv/rev/k', { body: 'one' });
      const v2 = await ctx.call('PUT', '/v1/kv/rev/k', { body: 'two' });
      const old = await ctx.call('GET', `/v1/kv/rev/k?rev=${v1.json.revision}`);
      assert.equal(old.json.value, 'one');
      assert.equal((await ctx.call('GET', `/v1/kv/rev/k?rev=${v2.json.revision}`)).json.value, 'two');
      assertError(await ctx.call('GET', `/v1/kv/rev/k?rev=${v2.json.revision + 1000}`), 400, 'FutureRevision', /future revision/);
      await ctx.backend.compact({ revision: v2.json.revision });
      const compacted = await ctx.call('GET', `/v1/kv/rev/k?rev=${v1.json.revision}`);
      assertError(compacted, 410, 'Compacted', /compacted/);
      assert.equal(compacted.json.error.details.compactRevision, v2.json.revision);
    });

    test('?serializable=true reaches the backend as a serializable range', async () => {
      await ctx.call('PUT', '/v1/kv/ser', { body: 's' });
      await ctx.call('GET', '/v1/kv/ser?serializable=true');
      await ctx.call('GET', '/v1/kv/ser');
      const ranges = ctx.backend.callsOf('range').slice(-2) as Array<{ serializable: boolean }>;
      assert.deepEqual(ranges.map((r) => r.serializable), [true, false]);
    });

    test('malformed query values are 400s that name the parameter', async () => {
      assertError(await ctx.call('GET', '/v1/kv/k?rev=abc'), 400, 'InvalidArgument', /"rev" must be a non-negative integer/);
      assertError(await ctx.call('GET', '/v1/kv/k?rev=-1'), 400, 'InvalidArgument', /"rev"/);
      assertError(await ctx.call('GET', '/v1/kv/k?rev=99999999999999999'), 400, 'InvalidArgument', /below 2\^53/);
      assertError(await ctx.call('GET', '/v1/kv/k?limit=1.5&prefix=true'), 400, 'InvalidArgument', /"limit"/);
      assertError(await ctx.call('GET', '/v1/kv/k?prefix=yes'), 400, 'InvalidArgument', /"prefix" must be true or false, got "yes"/);
      assertError(await ctx.call('GET', '/v1/kv/bad%zzkey'), 400, 'InvalidArgument', /malformed percent-encoding at "%zz"/);
      assertError(await ctx.call('GET', '/get?key=a%2'), 400, 'InvalidArgument', /malformed percent-encoding/);
    });
  });

  describe('cluster routes', () => {
    test('GET /v1/status returns the backend status with its header, ids as 16 hex digits', async () => {
      const status = await ctx.call('GET', '/v1/status');
      assert.equal(status.status, 200);
      assert.equal(status.json.version, '3.5.0');
      assert.equal(status.json.leader, formatId(TEST_MEMBER_ID));
      assert.equal(status.json.header.clusterId, formatId(TEST_CLUSTER_ID));
      assert.match(status.json.header.memberId, /^[0-9a-f]{16}$/);
      assert.equal(status.json.raftAppliedIndex, ctx.backend.store.appliedIndex);
    });

    test('GET /v1/members lists members, linearizable only when asked', async () => {
      const members = await ctx.call('GET', '/v1/members');
      assert.deepEqual(members.json.members.map((m: { name: string }) => m.name), ['node-a', 'node-b']);
      for (const member of members.json.members) assert.match(member.id, /^[0-9a-f]{16}$/);
      await ctx.call('GET', '/v1/members?linearizable=true');
      assert.deepEqual(ctx.backend.callsOf('memberList').slice(-2), [false, true]);
    });

    test('GET /v1/leader names the leader, or is a 503 when none is known', async () => {
      const leader = await ctx.call('GET', '/v1/leader');
      assert.equal(leader.status, 200);
      assert.equal(leader.json.leader.id, formatId(TEST_MEMBER_ID));
      assert.equal(leader.json.leader.name, 'node-a');
      ctx.backend.leader = 0;
      try {
        const none = await ctx.call('GET', '/v1/leader');
        assertError(none, 503, 'Unavailable', /no leader is known/);
      } finally {
        ctx.backend.leader = TEST_MEMBER_ID;
      }
    });

    test('GET /health is 200 with a leader and a working linearizable read', async () => {
      const before = ctx.backend.callsOf('range').length;
      const health = await ctx.call('GET', '/health');
      assert.equal(health.status, 200);
      assert.deepEqual(health.json, { health: 'true' });
      const reads = ctx.backend.callsOf('range').slice(before) as Array<{ serializable?: boolean }>;
      assert.equal(reads.length, 1);
      assert.notEqual(reads[0]!.serializable, true);
    });

    test('GET /health is 503 with a reason when there is no leader, an alarm, or a failed read', async () => {
      ctx.backend.leader = 0;
      const noLeader = await ctx.call('GET', '/health');
      ctx.backend.leader = TEST_MEMBER_ID;
      assert.equal(noLeader.status, 503);
      assert.equal(noLeader.json.health, 'false');
      assert.equal(noLeader.json.reason, 'no leader is known');
      assert.equal(noLeader.json.error.code, 'Unavailable');

      ctx.backend.alarms = [{ memberId: TEST_MEMBER_ID, alarm: 1 }];
      const alarm = await ctx.call('GET', '/health');
      ctx.backend.alarms = [];
      assert.equal(alarm.status, 503);
      assert.match(alarm.json.reason, /alarm raised: NOSPACE on member 0000000000000abc/);

      ctx.backend.failNext('range', new LichenError(ErrorCode.Unavailable, 'quorum lost'));
      const failed = await ctx.call('GET', '/health');
      assert.equal(failed.status, 503);
      assert.equal(failed.json.reason, 'health check failed: quorum lost');
    });

    test('GET /health is 503 when the linearizable read does not finish within the bound', async () => {
      const slow = await startWith({ healthTimeoutMs: 20 });
      try {
        slow.backend.hangNext('range');
        const health = await slow.call('GET', '/health');
        assert.equal(health.status, 503);
        assert.equal(health.json.error.code, 'Timeout');
        assert.match(health.json.reason, /did not complete within 20 ms/);
      } finally {
        await slow.server.close();
      }
    });

    test('GET /metrics is Prometheus text and counts requests by route template and code', async () => {
      await ctx.call('GET', '/v1/kv/metrics-probe');
      await ctx.call('GET', '/nowhere');
      const metrics = await ctx.call('GET', '/metrics');
      assert.equal(metrics.status, 200);
      assert.equal(metrics.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      assert.match(metrics.text, /^# TYPE lichen_http_request_seconds histogram$/m);
      assert.match(metrics.text, /^lichen_http_request_seconds_count\{route="\/v1\/kv\/:key",code="404"\} [1-9]\d*$/m);
      assert.match(metrics.text, /^lichen_http_request_seconds_count\{route="unmatched",code="404"\} [1-9]\d*$/m);
      assert.match(metrics.text, /^lichen_http_request_seconds_count\{route="\/set",code="200"\} [1-9]\d*$/m);
      assert.doesNotMatch(metrics.text, /metrics-probe/);
    });
  });

  describe('bad input and backend failures', () => {
    test('an unknown route is a 404 JSON error', async () => {
      assertError(await ctx.call('GET', '/v2/keys/foo'), 404, 'NotFound', /no route for GET \/v2\/keys\/foo/);
      assertError(await ctx.call('GET', '/v1/kv'), 404, 'NotFound', /no route/);
      assertError(await ctx.call('GET', '/get/'), 404, 'NotFound', /no route/);
    });

    test('a body over maxRequestBytes is a 413, whether declared by Content-Length or streamed', async () => {
      const big = 'x'.repeat(2000);
      const declared = await ctx.call('PUT', '/v1/kv/big', { body: big });
      assertError(declared, 413, 'TooLarge', /larger than the limit of 1024 bytes/);
      const streamed = await nodeRequest(ctx.server.port, 'POST', '/set', ['y'.repeat(500), 'y'.repeat(500), 'y'.repeat(500), 'y'.repeat(500)]);
      assert.equal(streamed.status, 413);
      assert.equal(JSON.parse(streamed.body).error.code, 'TooLarge');
      assert.equal((await ctx.call('GET', '/get?key=big')).status, 404);
      const fits = await ctx.call('PUT', '/v1/kv/big', { body: 'x'.repeat(1024) });
      assert.equal(fits.status, 200);
    });

    test('a URL over the length limit is a 413', async () => {
      const answer = await ctx.call('GET', `/get?key=${'k'.repeat(70 * 1024)}`);
      assertError(answer, 413, 'TooLarge', /URL is longer than/);
    });

    test('a malformed HTTP request gets a 400 and the server keeps serving', async () => {
      const raw = await rawRequest(ctx.server.port, 'NOT HTTP AT ALL\r\n\r\n');
      assert.match(raw, /^HTTP\/1\.1 400 Bad Request/);
      assert.equal((await ctx.call('GET', '/v1/status')).status, 200);
    });

    test('backend errors map through the one status table', async () => {
      const cases: Array<[LichenError, number, string | null]> = [
        [new LichenError(ErrorCode.Overloaded, 'queue full'), 429, '1'],
        [new LichenError(ErrorCode.Unavailable, 'no quorum'), 503, '1'],
        [new LichenError(ErrorCode.Timeout, 'proposal timed out'), 504, null],
        [new LichenError(ErrorCode.TooLarge, 'value too large'), 413, null],
        [new LichenError(ErrorCode.NotLeader, 'not the leader', { leaderId: 7 }), 503, '1'],
        [new LichenError(ErrorCode.LeaseNotFound, 'lease 5 not found'), 404, null],
      ];
      for (const [error, status, retryAfter] of cases) {
        ctx.backend.failNext('put', error);
        const answer = await ctx.call('PUT', '/v1/kv/failing', { body: 'v' });
        assertError(answer, status, error.code, new RegExp(error.message));
        assert.equal(answer.headers.get('retry-after'), retryAfter, error.code);
      }
      ctx.backend.failNext('range', new LichenError(ErrorCode.NotLeader, 'not the leader', { leaderId: 7 }));
      const notLeader = await ctx.call('GET', '/get?key=k');
      assert.deepEqual(notLeader.json.error.details, { leaderId: '0000000000000007' });
    });

    test('an unexpected backend exception is a 500 that does not leak its message', async () => {
      ctx.backend.failNext('range', new TypeError('secret internal detail'));
      const answer = await ctx.call('GET', '/get?key=k');
      assertError(answer, 500, 'Internal', /^internal error$/);
      assert.doesNotMatch(answer.text, /secret/);
      assert.equal((await ctx.call('GET', '/v1/status')).status, 200);
    });
  });

  describe('request accounting', () => {
    test('request latency comes from the injected clock and lands under the route template', async () => {
      let clockMs = 0;
      const timed = await startWith({ nowMs: () => (clockMs += 125) });
      try {
        await timed.call('GET', '/v1/kv/absent');
        await timed.call('PUT', '/v1/kv/present', { body: 'v' });
        // The response 'close' event may trail the client's read by a tick.
        await waitFor(async () => (await requestSeconds(timed.registry, { route: '/v1/kv/:key', code: '200' })).count === 1);
        assert.deepEqual(await requestSeconds(timed.registry, { route: '/v1/kv/:key', code: '404' }), { count: 1, sum: 0.125 });
        assert.deepEqual(await requestSeconds(timed.registry, { route: '/v1/kv/:key', code: '200' }), { count: 1, sum: 0.125 });
      } finally {
        await timed.server.close();
      }
    });

    test('a client that leaves before the answer is counted as aborted and the server keeps serving', async () => {
      const { server, backend, registry, call } = await startWith();
      try {
        backend.hangNext('range');
        const controller = new AbortController();
        const pending = fetch(`http://127.0.0.1:${server.port}/get?key=k`, { signal: controller.signal });
        await waitFor(() => backend.callsOf('range').length === 1);
        controller.abort();
        await assert.rejects(pending, { name: 'AbortError' });
        await waitFor(async () => (await requestSeconds(registry, { route: '/get', code: 'aborted' })).count === 1);
        assert.equal((await call('GET', '/v1/status')).status, 200);
      } finally {
        await server.close();
      }
    });
  });
});

describe('HTTP API: what one client may take of the server', () => {
  /** A connection that sends `payload` and keeps everything the server answers. */
  async function holder(port: number, payload: string): Promise<{ received: () => string; closed: () => boolean; socket: ReturnType<typeof connect> }> {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let closed = false;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(payload);
    return { received: () => received, closed: () => closed, socket };
  }

  test('a connection over connectionsMax is answered 503 with a JSON error, and one is free again once a holder leaves', async () => {
    // Before: node's maxConnections reset such connections; about 1,100 slow clients locked
    // everyone else out of the HTTP API without a word.
    const { server, call } = await startWith({ connectionsMax: 2 });
    const slow = [await holder(server.port, 'GET /get?key=a HTTP/1.1\r\n'), await holder(server.port, 'GET /get?key=b HTTP/1.1\r\n')];
    try {
      await waitFor(() => server.connections === 2);
      const refused = await call('GET', '/v1/status');
      assertError(refused, 503, 'Unavailable', /too many HTTP connections \(the limit is 2\); retry later/);
      assert.equal(refused.headers.get('retry-after'), '1');
      slow[0]!.socket.destroy();
      await waitFor(() => server.connections === 1);
      assert.equal((await call('GET', '/v1/status')).status, 200);
    } finally {
      for (const s of slow) s.socket.destroy();
      await server.close();
    }
  });

  test('a client that does not finish its headers in time gets 408, and a kept-alive connection gets the same time again', async () => {
    const timers = new ManualTimers();
    const { server } = await startWith({ timers, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000 });
    try {
      const slow = await holder(server.port, 'GET /v1/status HTTP/1.1\r\nHost: x\r\n');
      await waitFor(() => timers.pending.size === 1);
      assert.equal(timers.fire(10_000), 1);
      await waitFor(() => slow.closed());
      assert.match(slow.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(slow.received(), /"code":"Timeout","message":"the client did not send its request headers within 10000 ms"/);

      const kept = await holder(server.port, 'GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => /\r\n\r\n\{/.test(kept.received()));
      assert.match(kept.received(), /^HTTP\/1\.1 200 OK/);
      await waitFor(() => timers.pending.size === 1);
      assert.deepEqual([...timers.pending.values()].map((t) => t.ms), [10_000], 'the next request has its own header deadline');
      timers.fire(10_000);
      await waitFor(() => kept.closed());
      assert.match(kept.received(), /408 Request Timeout/);
    } finally {
      await server.close();
    }
  });

  test('close() ends kept-alive connections at once', async () => {
    const { server } = await startWith();
    const kept = await holder(server.port, 'GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => /\r\n\r\n\{/.test(kept.received()));
    const closed = server.close();
    await waitFor(() => kept.closed());
    await closed;
  });

  test('a server-sent event stream (a dashboard watch) outlives the request deadlines, and close() ends it', async () => {
    // The deadlines bound receiving a request; a long-lived answer that has started is not cut.
    let sink: WatchSink | undefined;
    let canceled = false;
    class WatchingBackend extends StoreBackend {
      override watch(_request: WatchCreate, watchSink: WatchSink): WatchHandle {
        sink = watchSink;
        return { cancel: () => (canceled = true), requestProgress: () => undefined, resume: () => undefined };
      }
    }
    const dashboard: DashboardSource = {
      memberId: formatId(TEST_MEMBER_ID),
      report: () => Promise.reject(new Error('not asked in this test')),
      members: () => [],
      access: () => ({ admin: true, mayRead: () => true }),
    };
    const timers = new ManualTimers();
    const { server } = await startWith({ backend: new WatchingBackend(), dashboard, timers, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000 });
    try {
      const stream = await holder(server.port, 'GET /v1/watch/k HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => /event: created/.test(stream.received()));
      assert.equal(timers.fire(60_000), 1, 'the request deadline ran out while the stream was open');
      assert.equal(timers.fire(10_000), 0, 'no header deadline runs while the answer is being sent');
      const kv = { key: Buffer.from('k'), value: Buffer.from('v'), createRevision: 5, modRevision: 5, version: 1, lease: 0 };
      sink!.onEvents([{ type: EventType.PUT, kv }], 5);
      await waitFor(() => /id: 5\nevent: events\n/.test(stream.received()));
      assert.match(stream.received(), /^HTTP\/1\.1 200 OK\r\n/);
      assert.doesNotMatch(stream.received(), /408/);
      assert.equal(stream.closed(), false);

      const closed = server.close();
      await waitFor(() => stream.closed());
      await closed;
      assert.ok(canceled, 'the watch ends with its stream');
    } finally {
      await server.close();
    }
  });

  test('a client that does not finish its body in time gets 408 through the waiting handler', async () => {
    const timers = new ManualTimers();
    const { server } = await startWith({ timers, headersTimeoutMs: 10_000, requestTimeoutMs: 60_000 });
    try {
      const slow = await holder(server.port, 'PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
      await waitFor(() => [...timers.pending.values()].some((t) => t.ms === 60_000));
      timers.fire(60_000);
      await waitFor(() => slow.closed());
      assert.match(slow.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
      assert.match(slow.received(), /"message":"the client did not send its request body within 60000 ms"/);
    } finally {
      await server.close();
    }
  });
});

/** Count and sum of one series of lichen_http_request_seconds. */
async function requestSeconds(registry: Registry, labels: { route: string; code: string }): Promise<{ count: number; sum: number }> {
  const { values } = await httpRequestSecondsOn(registry).get();
  const of = (suffix: string): number =>
    values.find((v) => v.metricName === `lichen_http_request_seconds_${suffix}` && v.labels.route === labels.route && v.labels.code === labels.code)?.value ?? 0;
  return { count: of('count'), sum: of('sum') };
}

/** Polls a condition on the event loop (no timers), bounded by a number of turns. */
async function waitFor(condition: () => boolean | Promise<boolean>, turnsMax = 10_000): Promise<void> {
  for (let turn = 0; turn < turnsMax; turn++) {
    if (await condition()) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.fail('condition not reached');
}
