// Keys have no size limit of their own, as in etcd: a key (with its value) must fit the request
// limit (--max-request-bytes), and every API refuses a larger one with its "too large" error.
// Regression (issue 13, item 4): the README promised a 4,025-byte key limit that nothing
// enforced (user keys are never storage-engine keys); the rule now documented is tested here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestMember, type TestMember } from './testing/in-process.js';

let member: TestMember;
let http: string;

before(async () => {
  member = await startTestMember({ listenHttp: '127.0.0.1:0' });
  http = `http://${member.node.addresses.http}`;
});

after(async () => {
  await member?.close();
});

const limit = 1.5 * 1024 * 1024;
const keyOf = (bytes: number, fill: string) => Buffer.alloc(bytes, fill);

test('a 1,000,000-byte key within the request limit is stored and read back through gRPC and HTTP', async () => {
  const key = keyOf(1_000_000, 'g');
  await member.call('KV', 'Put', { key, value: Buffer.from('v1') });
  const read = await member.call<{ kvs: { key: Buffer; value: Buffer }[] }>('KV', 'Range', { key });
  assert.equal(read.kvs[0]?.key.length, 1_000_000);
  assert.equal(read.kvs[0]?.value.toString(), 'v1');

  const httpKey = 'h'.repeat(1_000_000);
  const put = await fetch(`${http}/set`, { method: 'POST', body: JSON.stringify({ key: httpKey, value: 'v2' }) });
  assert.equal(put.status, 200, await put.text());
  const count = await member.call<{ count: string }>('KV', 'Range', { key: Buffer.from(httpKey), count_only: true });
  assert.equal(Number(count.count), 1);
});

test('a key that makes the request larger than --max-request-bytes is refused by every API', async () => {
  const before = await member.call<{ header: { revision: string } }>('KV', 'Range', { key: Buffer.from('x') });
  const key = keyOf(limit + 1, 'k');
  await assert.rejects(member.call('KV', 'Put', { key, value: Buffer.from('v') }), /etcdserver: request is too large/);
  await assert.rejects(member.call('KV', 'Range', { key }), /etcdserver: request is too large/);
  await assert.rejects(
    member.call('KV', 'Txn', { success: [{ request_put: { key, value: Buffer.from('v') } }] }),
    /etcdserver: request is too large/,
  );
  const put = await fetch(`${http}/set`, { method: 'POST', body: JSON.stringify({ key: key.toString(), value: 'v' }) });
  assert.equal(put.status, 413);
  assert.equal(((await put.json()) as { error: { code: string } }).error.code, 'TooLarge');
  const after = await member.call<{ header: { revision: string } }>('KV', 'Range', { key: Buffer.from('x') });
  assert.equal(after.header.revision, before.header.revision, 'nothing was written');
});

test('an empty key is refused with etcd\'s error', async () => {
  await assert.rejects(member.call('KV', 'Put', { key: Buffer.alloc(0), value: Buffer.from('v') }), /etcdserver: key is not provided/);
  const put = await fetch(`${http}/set`, { method: 'POST', body: JSON.stringify({ key: '', value: 'v' }) });
  assert.equal(put.status, 400);
});
