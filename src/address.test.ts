import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHostPort, parseHostPort } from './address.js';
import { ErrorCode, isLichenError } from './errors.js';

test('parses names, IPv4 and IPv6 hosts, with or without a scheme', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:2379'), { host: '127.0.0.1', port: 2379 });
  assert.deepEqual(parseHostPort('localhost:0'), { host: 'localhost', port: 0 });
  assert.deepEqual(parseHostPort('[::1]:2380'), { host: '::1', port: 2380 });
  assert.deepEqual(parseHostPort('::1:2380'), { host: '::1', port: 2380 });
  assert.deepEqual(parseHostPort('https://node-1.example:2379/'), { host: 'node-1.example', port: 2379 });
  assert.deepEqual(parseHostPort('tcp://10.0.0.1:65535'), { host: '10.0.0.1', port: 65535 });
});

test('refuses what is not host:port, naming the address', () => {
  for (const bad of ['', '2379', ':2379', 'host:', 'host:port', 'host:65536', 'host:-1', 'host:1.5', 'ho st:80', 'a/b:80', '[::1]']) {
    assert.throws(
      () => parseHostPort(bad),
      (error: unknown) => isLichenError(error) && error.code === ErrorCode.InvalidArgument && error.message.includes(`"${bad}"`),
      bad,
    );
  }
});

test('formats IPv6 hosts in brackets, so the text parses back', () => {
  for (const address of ['127.0.0.1:1', '[::1]:2379', 'name:80']) assert.equal(formatHostPort(parseHostPort(address)), address);
  assert.equal(formatHostPort({ host: 'fe80::1', port: 7 }), '[fe80::1]:7');
});
