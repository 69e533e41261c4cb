// Runs the benchmark for real against a single-member Lichen server started in this process
// (real gRPC, raft, WAL and MVCC). Numbers are not asserted: only that requests flowed, nothing
// failed, and the result is shaped as documented.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { startNode, defaultNodeConfig, type LichenNode } from '../server/index.js';
import { createSilentLogger } from '../log.js';
import { deadEndpoint } from '../client/testing.js';
import { parseCommandArgs } from '../cli/command.js';
import type { CommandContext } from '../cli/command.js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import { channelCredentials } from '../client/tls.js';
import { benchRangeCommand, runBench, runHttpPutBench, type BenchOptions, type BenchResult } from './index.js';
import { openKvChannel } from './connections.js';
import { keyForIndex, rangeOfKeys } from './keys.js';

let node: LichenNode;
let dataDir: string;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'lichen-bench-'));
  node = await startNode(
    defaultNodeConfig({
      name: 'bench1',
      dataDir,
      listenClient: '127.0.0.1:0',
      listenPeer: '127.0.0.1:0',
      listenHttp: '127.0.0.1:0',
      logLevel: 'error',
    }),
    createSilentLogger(),
  );
});

after(async () => {
  await node?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function options(overrides: Partial<BenchOptions>): BenchOptions {
  return {
    kind: 'put',
    endpoints: [node.addresses.client],
    clients: 8,
    conns: 2,
    keySizeBytes: 8,
    valueSizeBytes: 16,
    keySpaceSize: 100,
    sequentialKeys: false,
    consistency: 'l',
    targetLeader: false,
    readRatio: 0.5,
    preload: false,
    requestTimeoutMs: 5_000,
    rangeKeys: 1,
    watchers: 1,
    watchStreams: 1,
    leases: 1,
    ...overrides,
  };
}

function assertCleanRun(result: BenchResult, expectedRequests?: number): void {
  assert.deepEqual(result.errorSamples, []);
  assert.equal(result.errors, 0);
  assert.ok(result.requests > 0);
  if (expectedRequests !== undefined) assert.equal(result.requests, expectedRequests);
  assert.equal(result.latency.count, result.requests);
  assert.ok(result.throughputPerSecond > 0);
  assert.ok(result.latency.p50Ms <= result.latency.p99Ms && result.latency.p99Ms <= result.latency.maxMs);
  assert.equal(result.histogram.reduce((sum, bar) => sum + bar.count, 0), result.requests);
  assert.equal(result.stoppedReason, undefined);
}

test('a one-second put run against a real server completes with no errors', async () => {
  const result = await runBench(options({ kind: 'put', durationMs: 1_000, targetLeader: true }));
  assertCleanRun(result);
  assert.equal(result.leaderEndpoint, node.addresses.client);
  assert.ok(result.elapsedSeconds >= 1 && result.elapsedSeconds < 10);
});

test('range (after preloading), txn and mixed runs complete with no errors', async () => {
  const range = await runBench(options({ kind: 'range', total: 200, preload: true, consistency: 's' }));
  assertCleanRun(range, 200);
  assert.equal(range.preloadedKeys, 100);
  assertCleanRun(await runBench(options({ kind: 'range', total: 200, consistency: 'l' })), 200);
  assertCleanRun(await runBench(options({ kind: 'txn', total: 200 })), 200);
  const mixed = await runBench(options({ kind: 'mixed', total: 200, readRatio: 0.5, sequentialKeys: true }));
  assertCleanRun(mixed, 200);
  assert.equal((mixed.operations?.read?.count ?? 0) + (mixed.operations?.write?.count ?? 0), 200);
});

test('watch: every watcher receives every put, and each receipt is timed', async () => {
  const result = await runBench(options({ kind: 'watch', total: 50, clients: 4, watchers: 6, watchStreams: 3, keySpaceSize: 20 }));
  assertCleanRun(result, 50);
  const watch = result.watch!;
  assert.equal(watch.eventsExpected, 50 * 6);
  assert.equal(watch.eventsReceived, 50 * 6);
  assert.equal(watch.delivery.count, 50 * 6, 'one delivery time per event, including events that beat their put response');
  assert.ok(watch.eventsPerSecond > 0 && watch.delivery.p50Ms <= watch.delivery.p99Ms);
});

test('lease-keepalive: grants the leases, keeps them alive round robin, and revokes them at the end', async () => {
  const result = await runBench(options({ kind: 'lease-keepalive', total: 60, clients: 3, leases: 7 }));
  assertCleanRun(result, 60);
  assert.equal(result.leases, 7);
  const { Lease } = etcdClientConstructors();
  const client = new Lease(node.addresses.client, channelCredentials(undefined));
  try {
    const listed = await new Promise<{ leases: unknown[] }>((resolve, reject) =>
      (client as unknown as { LeaseLeases(r: object, cb: (e: Error | null, r: { leases: unknown[] }) => void): void }).LeaseLeases({}, (e, r) => (e ? reject(e) : resolve(r))),
    );
    assert.deepEqual(listed.leases, []);
  } finally {
    client.close();
  }
});

test('txn-cas: every attempt either commits its put or loses the race to another client', async () => {
  // A key size no other test uses: the one key is this test's alone.
  const result = await runBench(options({ kind: 'txn-cas', total: 120, clients: 8, keySpaceSize: 1, keySizeBytes: 12 }));
  assertCleanRun(result, 120);
  const { committed, conflicts } = result.cas!;
  assert.equal(committed + conflicts, 120);
  assert.ok(committed > 0);
  // Only committed attempts wrote: the key's version counts them.
  const channel = openKvChannel(node.addresses.client, channelCredentials(undefined));
  try {
    const read = (await channel.range({ key: keyForIndex(0, 12) }, 5_000)) as { kvs: Array<{ version: string }> };
    assert.equal(Number(read.kvs[0]!.version), committed);
  } finally {
    channel.close();
  }
});

test('range --range-keys: one range reads that many consecutive keys, up to the end of the key space', () => {
  assert.deepEqual(rangeOfKeys(0, 3, 10, 4), { key: Buffer.from('0000'), range_end: Buffer.from('0003') });
  assert.deepEqual(rangeOfKeys(7, 3, 10, 4), { key: Buffer.from('0007'), range_end: Buffer.from('::::') });
  assert.deepEqual(rangeOfKeys(0, 10, 10, 2), { key: Buffer.from('00'), range_end: Buffer.from('::') });
});

test('the command prints one JSON object with -w json', async () => {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const args = parseCommandArgs(benchRangeCommand, [
    '--endpoints', node.addresses.client, '--total', '100', '--key-space-size', '10', '--clients', '4', '--conns', '2', '-w', 'json',
  ]);
  const context = { stdout, stderr, signal: new AbortController().signal } as unknown as CommandContext;
  const code = await benchRangeCommand.run(args, context);
  assert.equal(code, 0);
  const result = JSON.parse(String(stdout.read())) as BenchResult;
  assert.equal(result.kind, 'range');
  assert.equal(result.requests, 100);
  assert.equal(result.preloadedKeys, 10);
  // stderr is not a terminal and --progress was not given: no progress output.
  assert.equal(stderr.read(), null);
});

test('over TLS: --insecure-skip-tls-verify against a member with --auto-tls; the same run in cleartext reaches nothing', async () => {
  const tlsDataDir = mkdtempSync(join(tmpdir(), 'lichen-bench-tls-'));
  const config = { name: 'bench-tls', dataDir: tlsDataDir, listenClient: '127.0.0.1:0', listenPeer: '127.0.0.1:0', listenHttp: '127.0.0.1:0' };
  const tlsNode = await startNode(defaultNodeConfig({ ...config, logLevel: 'error', autoTls: true, peerAutoTls: true }), createSilentLogger());
  try {
    const flags = ['--endpoints', tlsNode.addresses.client, '--total', '20', '--key-space-size', '5', '-w', 'json'];
    const stdout = new PassThrough();
    const context = { stdout, stderr: new PassThrough(), env: {}, signal: new AbortController().signal } as unknown as CommandContext;
    assert.equal(await benchRangeCommand.run(parseCommandArgs(benchRangeCommand, [...flags, '--insecure-skip-tls-verify']), context), 0);
    assert.equal((JSON.parse(String(stdout.read())) as BenchResult).requests, 20);
    await assert.rejects(benchRangeCommand.run(parseCommandArgs(benchRangeCommand, flags), context), /cannot reach the cluster/);
  } finally {
    await tlsNode.close();
    rmSync(tlsDataDir, { recursive: true, force: true });
  }
});

test('the command takes LICHEN_ENDPOINTS, and fails at once, naming each endpoint, when none answers', async () => {
  // Regression (issue 13, item 10): bench ignored LICHEN_ENDPOINTS and printed a summary of zeros
  // against a dead cluster.
  const dead = await deadEndpoint();
  const stdout = new PassThrough();
  const args = parseCommandArgs(benchRangeCommand, ['--total', '10', '-w', 'json']);
  const context = { stdout, stderr: new PassThrough(), env: { LICHEN_ENDPOINTS: dead }, signal: new AbortController().signal } as unknown as CommandContext;
  await assert.rejects(benchRangeCommand.run(args, context), (error: Error & { details?: Record<string, unknown> }) => {
    assert.equal(error.message, `cannot reach the cluster: ${dead} refused the connection`);
    assert.equal(error.details?.['clusterUnavailable'], true);
    return true;
  });
  assert.equal(stdout.read(), null, 'no summary');

  const live = { ...context, stdout, env: { LICHEN_ENDPOINTS: node.addresses.client } } as CommandContext;
  assert.equal(await benchRangeCommand.run(args, live), 0);
  assert.equal((JSON.parse(String(stdout.read())) as BenchResult).requests, 10);
});

test('the HTTP put benchmark writes through PUT /v1/kv/<key> on keep-alive connections', async () => {
  const result = await runHttpPutBench({
    urls: [node.addresses.http],
    connections: 4,
    total: 200,
    keySizeBytes: 8,
    valueSizeBytes: 16,
    keySpaceSize: 50,
    sequentialKeys: true,
    requestTimeoutMs: 5_000,
  });
  assertCleanRun(result, 200);
  assert.equal(result.kind, 'http-put');
});
