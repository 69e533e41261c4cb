// The JSON gateway on a real member's client port (raft, WAL, lmdb), next to gRPC on the same
// port. Field-by-field parity with etcd 3.4 is golden.e2e.test.ts's job; this file checks the
// gateway's own behaviour: protocol detection, unary and streaming calls, errors, and a watch
// whose reader is slow.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { startTestMember, type TestMember } from '../../../server/testing/in-process.js';
import { startHarness } from '../testing/harness.js';
import { GatewayClient } from './testing/http-client.js';
import { gatewayConnectionsMax } from '../../../limits.js';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const text = (base64: string): string => Buffer.from(base64, 'base64').toString();

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

describe('one client port for gRPC and HTTP/1.1', () => {
  it('answers gRPC and the JSON gateway on the same port', async () => {
    await member.call('KV', 'Put', { key: Buffer.from('both'), value: Buffer.from('grpc') });
    const range = await client.post('/v3/kv/range', { key: b64('both') });
    assert.equal(range.status, 200);
    assert.equal(text(range.json.kvs[0].value), 'grpc');
    await client.post('/v3/kv/put', { key: b64('both'), value: b64('http') });
    const viaGrpc = await member.call('KV', 'Range', { key: Buffer.from('both') });
    assert.equal(viaGrpc.kvs[0].value.toString(), 'http');
  });

  it('answers what is neither HTTP/2 nor HTTP/1 with 400 and closes', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(member.node.addresses.client.split(':')[1]), '127.0.0.1');
      const chunks: Buffer[] = [];
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      socket.on('error', reject);
      socket.write('\x16\x03\x01 not a request\r\n\r\n');
    });
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request/);
  });
});

describe('what one client may take of the gateway', () => {
  it('answers a connection over gatewayConnectionsMax with 503 in etcd\'s error shape, not a reset', async () => {
    const port = Number(member.node.addresses.client.split(':')[1]);
    const open = (): Promise<net.Socket> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.write('POST /v3/kv/range HTTP/1.1\r\n'); // headers never finished
          resolve(socket);
        });
        socket.on('error', reject);
      });
    const holders: net.Socket[] = [];
    const probe = new GatewayClient(member.node.addresses.client);
    try {
      // As many as the limit (the shared client may hold one more): the limit is reached.
      for (let i = 0; i < gatewayConnectionsMax; i++) holders.push(await open());
      const answer = await probe.post('/v3/kv/range', { key: b64('x') });
      assert.equal(answer.status, 503);
      assert.match(answer.json.message, /^too many HTTP connections \(the limit is 1024\); retry later$/);
      assert.equal(answer.json.code, 14, 'UNAVAILABLE');
    } finally {
      probe.close();
      for (const holder of holders) holder.destroy();
    }
  });
});

describe('JSON gateway unary calls', () => {
  it('puts, ranges a prefix, runs a txn and deletes, with etcd\'s encoding', async () => {
    for (const key of ['p/a', 'p/b']) assert.equal((await client.post('/v3/kv/put', { key: b64(key), value: b64('v') })).status, 200);
    const range = await client.post('/v3/kv/range', { key: b64('p/'), range_end: b64('p0'), keys_only: true });
    assert.deepEqual(range.json.kvs.map((kv: any) => text(kv.key)), ['p/a', 'p/b']);
    assert.equal(range.json.count, '2');
    assert.equal(range.json.kvs[0].value, undefined);
    assert.match(range.json.header.revision, /^\d+$/);
    const txn = await client.post('/v3/kv/txn', {
      compare: [{ key: b64('p/a'), result: 'EQUAL', target: 'VALUE', value: b64('v') }],
      success: [{ request_put: { key: b64('p/a'), value: b64('w'), prev_kv: true } }],
    });
    assert.equal(txn.json.succeeded, true);
    assert.equal(text(txn.json.responses[0].response_put.prev_kv.value), 'v');
    const deleted = await client.post('/v3beta/kv/deleterange', { key: b64('p/'), range_end: b64('p0') });
    assert.equal(deleted.json.deleted, '2');
  });

  it('maps errors to the gRPC code and its HTTP status, with etcd\'s body', async () => {
    const cases: Array<[string, object | string, number, number, string]> = [
      ['/v3/kv/range', {}, 400, 3, 'etcdserver: key is not provided'],
      ['/v3/kv/range', '{"key":', 400, 3, 'unexpected EOF'],
      ['/v3/lease/revoke', { ID: '123' }, 404, 5, 'etcdserver: requested lease not found'],
      ['/v3/kv/range', { key: b64('x'), revision: '1000000' }, 400, 11, 'etcdserver: mvcc: required revision is a future revision'],
    ];
    for (const [path, body, status, code, message] of cases) {
      const reply = await client.post(path, body);
      assert.deepEqual([reply.status, reply.json], [status, { error: message, message, code }], `${path} ${JSON.stringify(body)}`);
    }
    const member1 = (await client.post('/v3/cluster/member/list', {})).json.members[0];
    const promote = await client.post('/v3/cluster/member/promote', { ID: member1.ID });
    assert.equal(promote.status, 412);
    assert.equal(promote.json.code, 9);
  });

  it('refuses a request larger than the gRPC message limit as etcd does, and a huge body unread', async () => {
    // Base64 of a value just over gRPC's 2 MiB message limit (1.5 MiB + 512 KiB).
    const value = 'A'.repeat(4 * Math.ceil((2 * 1024 * 1024 + 1024) / 3));
    const tooLarge = await client.post('/v3/kv/put', { key: b64('big'), value });
    assert.equal(tooLarge.status, 429);
    assert.equal(tooLarge.json.code, 8);
    assert.match(tooLarge.json.message, /^grpc: received message larger than max \(\d+ vs\. \d+\)$/);
    const etcdLimit = await client.post('/v3/kv/put', { key: b64('big'), value: 'A'.repeat(1.5 * 1024 * 1024 * (4 / 3) + 400) });
    assert.deepEqual([etcdLimit.status, etcdLimit.json.message], [400, 'etcdserver: request is too large']);
    const huge = await client.request('POST', '/v3/kv/put', `{"key":"${'A'.repeat(5 * 1024 * 1024)}"}`);
    assert.equal(huge.status, 429);
    assert.equal(huge.headers['connection'], 'close');
  });

  it('serves /version, /health, /metrics, CORS preflight, and etcd\'s 404 and 405 answers', async () => {
    const version = await client.request('GET', '/version');
    assert.deepEqual(JSON.parse(version.text), { etcdserver: '3.5.0', etcdcluster: '3.5.0' });
    const health = await client.request('GET', '/health');
    assert.deepEqual([health.status, health.text], [200, '{"health":"true"}']);
    const metrics = await client.request('GET', '/metrics');
    assert.match(metrics.text, /lichen_grpc_request_seconds/);
    const preflight = await client.request('OPTIONS', '/v3/kv/range');
    assert.deepEqual([preflight.status, preflight.headers['access-control-allow-origin']], [200, '*']);
    assert.deepEqual(await statusAndText('GET', '/v3/kv/range'), [405, 'Method Not Allowed\n']);
    assert.deepEqual(await statusAndText('POST', '/v3/kv/nope'), [404, 'Not Found\n']);
    assert.deepEqual(await statusAndText('GET', '/v2/keys'), [404, '404 page not found\n']);
    assert.deepEqual(await statusAndText('POST', '/version'), [405, 'Method Not Allowed\n']);
  });
});

async function statusAndText(method: string, path: string): Promise<[number, string]> {
  const reply = await client.request(method, path);
  return [reply.status, reply.text];
}

describe('JSON gateway streams', () => {
  it('streams watch events as they happen and keeps going after the request body ends', async () => {
    const watch = client.stream('/v3/watch');
    watch.send({ create_request: { key: b64('w/'), range_end: b64('w0'), prev_kv: true } });
    watch.endRequest();
    const created = await watch.next();
    assert.equal(created.result.created, true);
    await client.post('/v3/kv/put', { key: b64('w/1'), value: b64('a') });
    await client.post('/v3/kv/put', { key: b64('w/1'), value: b64('b') });
    await client.post('/v3/kv/deleterange', { key: b64('w/1') });
    const put1 = (await watch.next()).result.events[0];
    const put2 = (await watch.next()).result.events[0];
    const deleted = (await watch.next()).result.events[0];
    assert.deepEqual([put1.type, text(put1.kv.value)], [undefined, 'a']);
    assert.deepEqual([put2.type, text(put2.kv.value), text(put2.prev_kv.value)], [undefined, 'b', 'a']);
    assert.equal(deleted.type, 'DELETE');
    assert.equal(watch.response!.headers['content-type'], 'application/json');
    watch.close();
  });

  it('cancels the watchers of a stream whose client goes away', async () => {
    // The watchers of earlier tests' streams are gone once their connections have closed.
    await waitFor(() => member.node.node.hub.watcherCount === 0);
    const before = 0;
    const watch = client.stream('/v3/watch');
    watch.send({ create_request: { key: b64('gone') } });
    await watch.next();
    assert.equal(member.node.node.hub.watcherCount, before + 1);
    watch.close();
    await waitFor(() => member.node.node.hub.watcherCount === before);
  });

  it('fails a stream whose first request is unreadable with UNKNOWN, as etcd\'s gateway does', async () => {
    const reply = await client.post('/v3/watch', 'garbage');
    assert.deepEqual([reply.status, reply.json.code, reply.json.message], [500, 2, "invalid character 'g' looking for beginning of value"]);
  });

  it('answers keep-alives in order and ends cleanly when the request body ends', async () => {
    const grant = await client.post('/v3/lease/grant', { TTL: 30 });
    const keepAlive = client.stream('/v3/lease/keepalive');
    keepAlive.send({ ID: grant.json.ID });
    keepAlive.send(`{"ID":"424242"}{"ID":${grant.json.ID}}`);
    keepAlive.endRequest();
    assert.deepEqual((await keepAlive.next()).result.TTL, '30');
    const missing = (await keepAlive.next()).result;
    assert.deepEqual(missing, { header: missing.header, ID: '424242' });
    assert.equal((await keepAlive.next()).result.TTL, '30');
    assert.equal(await keepAlive.next(), undefined);
    assert.ok(keepAlive.complete);
  });

  it('streams a snapshot as base64 blobs ending with its SHA-256', async () => {
    const reply = await client.request('POST', '/v3/maintenance/snapshot', '{}');
    const lines = reply.text.trim().split('\n').map((line) => JSON.parse(line).result);
    assert.ok(lines.length >= 2);
    assert.equal(Buffer.from(lines.at(-1).blob, 'base64').length, 32);
  });
});

describe('closing the client port', () => {
  // Regression: the HTTP server never listened itself, so its 'close' came at once and the
  // forced close of open streams was cancelled with it: a member with an open watch over the
  // gateway never finished closing.
  it('ends open gateway streams after the grace period', async () => {
    const harness = await startHarness();
    const watchClient = new GatewayClient(harness.address);
    const watch = watchClient.stream('/v3/watch');
    watch.send({ create_request: { key: b64('held') } });
    await watch.next();
    await harness.server.close(50);
    assert.equal(await watch.next(), undefined);
    assert.equal(watch.complete, false);
    watchClient.close();
  });
});

describe('a watch over the gateway whose client reads slowly', () => {
  it('delivers 10,000 events in order while the member holds back no more than a bounded amount', { timeout: 240_000 }, async () => {
    const txns = 1000;
    const putsPerTxn = 10;
    const value = 'x'.repeat(2048);
    const prefixLength = 'slow/'.length;
    const watch = client.stream('/v3/watch');
    watch.send({ create_request: { key: b64('slow/'), range_end: b64('slow0') } });
    await watch.next();
    // The client stops reading: only the kernel's socket buffers and what the member holds back
    // stand between the writer and the reader.
    watch.response!.pause();
    const serverSide = await serverSocketOf(watch.request.socket!);
    let heldMax = 0;
    let heldBackWatchers = 0;
    const sample = setInterval(() => {
      heldMax = Math.max(heldMax, serverSide.writableLength);
      heldBackWatchers = Math.max(heldBackWatchers, member.node.node.hub.unsyncedCount);
    }, 5);
    const seen: Array<[number, string]> = [];
    let firstRevision: number;
    try {
      firstRevision = await putMany('slow/', txns, putsPerTxn, value);
      clearInterval(sample);
      watch.response!.resume();
      while (seen.length < txns * putsPerTxn) {
        const line = await watch.next(60_000);
        for (const event of line.result.events ?? []) seen.push([Number(event.kv.mod_revision), Buffer.from(event.kv.key, 'base64').toString()]);
      }
    } finally {
      // A failure must not leave the sampler or the stream holding the test process open.
      clearInterval(sample);
      watch.close();
    }
    // Every event once, in revision order: each txn's revision carries its puts, in the order the
    // txn made them.
    const index = (key: string): number => Number(key.slice(prefixLength));
    for (let i = 0; i < seen.length; i++) {
      const [revision, key] = seen[i]!;
      assert.equal(revision, firstRevision + Math.floor(i / putsPerTxn), `event ${i} has the revision it should`);
      if (i % putsPerTxn !== 0) assert.equal(index(key), index(seen[i - 1]![1]) + 1, `event ${i} follows the one before it in its txn`);
    }
    assert.equal(new Set(seen.map(([, key]) => key)).size, txns * putsPerTxn);
    // The member did hold the watcher back (it caught up from history), and what it held for the
    // stream stayed far below what the stream carried.
    const streamBytes = txns * putsPerTxn * (Math.ceil(value.length / 3) * 4 + 100);
    assert.ok(heldBackWatchers >= 1, 'the watcher was never held back: the stream was too small to fill the socket buffers');
    assert.ok(heldMax < streamBytes / 8, `the member held ${heldMax} bytes for a stream of ${streamBytes}`);
  });
});

/** Writes `txns` txns of `putsPerTxn` puts under `prefix`, 16 at a time; resolves with the first txn's revision. */
async function putMany(prefix: string, txns: number, putsPerTxn: number, value: string): Promise<number> {
  let next = 0;
  let first = Infinity;
  const worker = async (): Promise<void> => {
    while (next < txns) {
      const txn = next++;
      const success = Array.from({ length: putsPerTxn }, (_unused, i) => ({
        request_put: { key: Buffer.from(`${prefix}${String(txn * putsPerTxn + i).padStart(5, '0')}`), value: Buffer.from(value) },
      }));
      const response = await member.call('KV', 'Txn', { success });
      first = Math.min(first, Number(response.header.revision));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return first;
}

// Every connection the member accepts, by the client's port: the test and the member share this
// process, so the member's end of a connection can be looked at directly.
const acceptedByClientPort = new Map<number, net.Socket>();
diagnostics.subscribe('net.server.socket', (message) => {
  const socket = (message as { socket: net.Socket }).socket;
  acceptedByClientPort.set(socket.remotePort!, socket);
});

/** The member's end of a loopback connection this process opened. */
async function serverSocketOf(clientSocket: net.Socket): Promise<net.Socket> {
  await waitFor(() => acceptedByClientPort.has(clientSocket.localPort!));
  return acceptedByClientPort.get(clientSocket.localPort!)!;
}

/** Yields to the event loop until `condition` holds; gives up after 10 s (a bound, not a delay). */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!condition() && performance.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(condition(), 'condition not reached');
}
