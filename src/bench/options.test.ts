import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, UsageError } from '../cli/args.js';
import { BENCH_FLAGS, benchOptionsFromArgs, parseDurationMs, parseEndpoints, type BenchKind } from './options.js';

function optionsFor(kind: BenchKind, argv: string[]) {
  return benchOptionsFromArgs(kind, parseArgs(argv, BENCH_FLAGS));
}

test('defaults follow etcd benchmark: one client, one connection, 10000 requests, 8-byte keys and values', () => {
  const options = optionsFor('put', []);
  assert.deepEqual(options, {
    kind: 'put',
    endpoints: ['127.0.0.1:2379'],
    clients: 1,
    conns: 1,
    total: 10_000,
    keySizeBytes: 8,
    valueSizeBytes: 8,
    keySpaceSize: 1,
    sequentialKeys: false,
    consistency: 'l',
    targetLeader: false,
    readRatio: 0.5,
    preload: false,
    requestTimeoutMs: 10_000,
    rangeKeys: 1,
    watchers: 1_000,
    watchStreams: 10,
    leases: 10_000,
  });
});

test('every flag reaches its option', () => {
  const options = optionsFor('mixed', [
    '--endpoints', 'http://10.0.0.1:2379,10.0.0.2:2379/',
    '--clients', '64', '--conns', '8', '--total', '500', '--duration', '2.5s',
    '--key-size', '16', '--val-size', '256', '--key-space-size', '1000', '--sequential-keys',
    '--consistency', 's', '--target-leader', '--rate', '300', '--read-ratio', '0.9',
    '--preload=false', '--request-timeout-ms', '2000',
  ]);
  assert.deepEqual(options, {
    kind: 'mixed',
    endpoints: ['10.0.0.1:2379', '10.0.0.2:2379'],
    clients: 64,
    conns: 8,
    total: 500,
    durationMs: 2500,
    keySizeBytes: 16,
    valueSizeBytes: 256,
    keySpaceSize: 1000,
    sequentialKeys: true,
    consistency: 's',
    targetLeader: true,
    ratePerSecond: 300,
    readRatio: 0.9,
    preload: false,
    requestTimeoutMs: 2000,
    rangeKeys: 1,
    watchers: 1_000,
    watchStreams: 10,
    leases: 10_000,
  });
  const watch = optionsFor('watch', ['--watchers', '50', '--streams', '5', '--key-space-size', '10']);
  assert.deepEqual([watch.watchers, watch.watchStreams], [50, 5]);
  assert.equal(optionsFor('lease-keepalive', ['--leases', '123']).leases, 123);
  assert.equal(optionsFor('range', ['--range-keys', '10', '--key-space-size', '10']).rangeKeys, 10);
});

test('flags of one benchmark are refused by the others, and impossible sizes are named', () => {
  assert.throws(() => optionsFor('put', ['--watchers', '5']), { message: '--watchers applies to bench watch only' });
  assert.throws(() => optionsFor('watch', ['--leases', '5']), { message: '--leases applies to bench lease-keepalive only' });
  assert.throws(() => optionsFor('put', ['--read-ratio', '0.5']), { message: '--read-ratio applies to bench mixed only' });
  assert.throws(() => optionsFor('range', ['--range-keys', '11', '--key-space-size', '10']), /--range-keys 11 is more than --key-space-size 10/);
  assert.throws(() => optionsFor('watch', ['--watchers', '2', '--streams', '3']), /--streams \(at most --watchers\)/);
});

test('--duration alone replaces the default request count', () => {
  const options = optionsFor('put', ['--duration', '10']);
  assert.equal(options.durationMs, 10_000);
  assert.equal(options.total, undefined);
});

test('range and mixed preload the key space by default; put and txn do not', () => {
  assert.equal(optionsFor('range', []).preload, true);
  assert.equal(optionsFor('mixed', []).preload, true);
  assert.equal(optionsFor('put', []).preload, false);
  assert.equal(optionsFor('txn', []).preload, false);
  assert.equal(optionsFor('put', ['--preload']).preload, true);
});

test('--rate 0 means no cap', () => {
  assert.equal(optionsFor('put', ['--rate', '0']).ratePerSecond, undefined);
});

test('durations accept seconds, fractions, s and ms suffixes, and refuse the rest', () => {
  assert.equal(parseDurationMs('10'), 10_000);
  assert.equal(parseDurationMs('0.5'), 500);
  assert.equal(parseDurationMs('3s'), 3_000);
  assert.equal(parseDurationMs('250ms'), 250);
  for (const bad of ['', 'abc', '-1', '0', '10m', '1e3']) assert.throws(() => parseDurationMs(bad), UsageError, bad);
});

test('endpoints drop the scheme and refuse what is not host:port', () => {
  assert.deepEqual(parseEndpoints('127.0.0.1:1, http://[::1]:2 ,grpc://x:3'), ['127.0.0.1:1', '[::1]:2', 'x:3']);
  assert.throws(() => parseEndpoints(''), /no endpoint/);
  assert.throws(() => parseEndpoints('localhost'), /expected host:port/);
});

test('impossible combinations are refused with a message naming the flag', () => {
  assert.throws(() => optionsFor('put', ['--key-size', '2', '--key-space-size', '1000']), /--key-size 2 is too small/);
  assert.throws(() => optionsFor('put', ['--clients', '2', '--conns', '4']), /--conns 4 is more than --clients 2/);
  assert.throws(() => optionsFor('put', ['--read-ratio', '0.5']), /--read-ratio applies to bench mixed only/);
  assert.throws(() => optionsFor('mixed', ['--read-ratio', '1.5']), /--read-ratio: "1.5"/);
  assert.throws(() => optionsFor('put', ['--clients', '0']), /--clients/);
  assert.throws(() => optionsFor('put', ['--clients', '20000']), /--clients: 20000/);
  assert.throws(() => optionsFor('put', ['--val-size', '2000000']), /--val-size/);
  assert.throws(() => optionsFor('range', ['--key-space-size', '5000000', '--key-size', '8']), /--preload writes every key/);
  assert.throws(() => parseArgs(['--consistency', 'x'], BENCH_FLAGS), /expected one of l, s/);
  assert.throws(() => parseArgs(['-w', 'yaml'], BENCH_FLAGS), /expected one of simple, json/);
});

test('TLS: an https:// endpoint or a TLS flag turns it on, as for the other client commands', () => {
  assert.equal(optionsFor('put', ['--endpoints', '127.0.0.1:2379']).tls, undefined);
  const https = optionsFor('put', ['--endpoints', 'https://127.0.0.1:2379']);
  assert.deepEqual(https.endpoints, ['127.0.0.1:2379']);
  assert.deepEqual(https.tls, { ca: undefined, cert: undefined, key: undefined, insecureSkipVerify: false });
  assert.equal(optionsFor('range', ['--insecure-skip-tls-verify']).tls?.insecureSkipVerify, true);
  assert.throws(() => optionsFor('put', ['--cacert', '/nonexistent/ca.pem']), /cannot read --cacert file \/nonexistent\/ca\.pem/);
});
