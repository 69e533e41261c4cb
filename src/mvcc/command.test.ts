import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LichenError } from '../errors.js';
import { decodeCommand, encodeCommand, type Command } from './command.js';
import { b, randomCommands } from './testkit.js';

const commands: { name: string; command: Command }[] = [
  { name: 'a plain put', command: { type: 'put', request: { key: b('k'), value: b('v') } } },
  {
    name: 'a put with every option, false kept apart from absent',
    command: { type: 'put', request: { key: b('k'), value: new Uint8Array(0), lease: Number.MAX_SAFE_INTEGER, prevKv: false, ignoreValue: true, ignoreLease: false } },
  },
  { name: 'a put of binary bytes', command: { type: 'put', request: { key: Uint8Array.of(0, 255, 128), value: Uint8Array.from({ length: 300 }, (_, i) => i % 256) } } },
  { name: 'a delete range', command: { type: 'deleteRange', request: { key: b('a'), rangeEnd: Uint8Array.of(0), prevKv: true } } },
  {
    name: 'a nested txn with every op and compare kind',
    command: {
      type: 'txn',
      request: {
        compare: [
          { key: b('a'), target: 0, result: 0, version: 3 },
          { key: b('a'), rangeEnd: b('b'), target: 3, result: 3, value: b('x') },
          { key: b('a'), target: 4, result: 1, lease: -1 },
        ],
        success: [
          { requestRange: { key: b('a'), rangeEnd: b('z'), limit: 10, revision: 5, sortOrder: 2, sortTarget: 4, keysOnly: true, countOnly: false, minModRevision: 1, maxCreateRevision: 9 } },
          { requestTxn: { compare: [], success: [{ requestPut: { key: b('n'), value: b('1') } }], failure: [{ requestDeleteRange: { key: b('n') } }] } },
        ],
        failure: [{ requestDeleteRange: { key: b('q') } }],
      },
    },
  },
  { name: 'a compaction', command: { type: 'compact', request: { revision: 2 ** 40, physical: true } } },
  { name: 'a lease grant without id', command: { type: 'leaseGrant', request: { TTL: 60 } } },
  { name: 'a lease grant with id', command: { type: 'leaseGrant', request: { TTL: 0, ID: 123456789012 } } },
  { name: 'a lease revoke', command: { type: 'leaseRevoke', id: 77 } },
  { name: 'a noop', command: { type: 'noop' } },
  { name: 'an alarm activation', command: { type: 'alarmActivate', memberId: 2 ** 52 + 7, alarm: 1 } },
  { name: 'an alarm deactivation for member 0', command: { type: 'alarmDeactivate', memberId: 0, alarm: 2 } },
  { name: 'auth enable', command: { type: 'authEnable' } },
  { name: 'an authenticate', command: { type: 'authenticate', name: 'alice', tokenPrefix: 'abcdefghABCDEFGH', checkedRevision: 12 } },
  { name: 'a user add with a UTF-8 name', command: { type: 'userAdd', name: 'zoë', passwordHash: '$2b$10$abc', noPassword: false } },
  { name: 'a no-password user add', command: { type: 'userAdd', name: 'svc', passwordHash: '', noPassword: true } },
  { name: 'a role grant', command: { type: 'userGrantRole', user: 'alice', role: 'root' } },
  { name: 'a permission grant', command: { type: 'roleGrantPermission', name: 'r', permType: 2, key: b('/a/'), rangeEnd: Uint8Array.of(0) } },
  { name: 'a permission revoke', command: { type: 'roleRevokePermission', role: 'r', key: b('k'), rangeEnd: new Uint8Array(0) } },
  {
    name: 'a put carrying its caller',
    command: { type: 'authorized', user: 'alice', authRevision: 9, command: { type: 'put', request: { key: b('k'), value: b('v') } } },
  },
  { name: 'an auth change carrying its caller', command: { type: 'authorized', user: 'root', authRevision: 1, command: { type: 'roleDelete', role: 'r' } } },
  {
    name: 'a put carrying a caller whose name is not ASCII',
    command: { type: 'authorized', user: 'zoë-日本', authRevision: 3, command: { type: 'put', request: { key: b('k'), value: b('v') } } },
  },
];

describe('command codec', () => {
  for (const { name, command } of commands) {
    it(`round-trips ${name}`, () => {
      assert.deepEqual(decodeCommand(encodeCommand(command)), command);
    });
  }

  it('round-trips a generated command stream', () => {
    for (const command of randomCommands(5, 500)) assert.deepEqual(decodeCommand(encodeCommand(command)), command);
  });

  it('is several times smaller than JSON with base64 bytes', () => {
    const command: Command = { type: 'put', request: { key: b('/registry/pods/default/web-1'), value: b('x'.repeat(16)), prevKv: true } };
    const binary = encodeCommand(command).length;
    const json = Buffer.byteLength(
      JSON.stringify(command, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value)),
    );
    assert.ok(binary * 2 < json, `binary ${binary} B vs json ${json} B`);
  });

  const garbage: { name: string; bytes: Uint8Array }[] = [
    { name: 'an unknown format version', bytes: Uint8Array.of(9, 1, 0, 0) },
    { name: 'an unknown tag', bytes: Uint8Array.of(1, 99) },
    { name: 'a truncated put', bytes: encodeCommand({ type: 'put', request: { key: b('key'), value: b('value') } }).subarray(0, 6) },
    { name: 'trailing bytes', bytes: Uint8Array.of(...encodeCommand({ type: 'noop' }), 0) },
    { name: 'an empty buffer', bytes: new Uint8Array(0) },
    {
      name: 'an authorized command inside another',
      bytes: Uint8Array.of(1, 16, 1, 0x61, 1, ...encodeCommand({ type: 'authorized', user: 'b', authRevision: 1, command: { type: 'noop' } }).subarray(1)),
    },
  ];
  for (const { name, bytes } of garbage) {
    it(`rejects ${name} with InvalidArgument`, () => {
      assert.throws(() => decodeCommand(bytes), (error: unknown) => error instanceof LichenError && error.code === 'InvalidArgument');
    });
  }

  it("decodes a write's user as the same string while it repeats, and anew when another user writes", () => {
    const as = (user: string, key: string): Uint8Array => encodeCommand({ type: 'authorized', user, authRevision: 2, command: { type: 'put', request: { key: b(key), value: b('v') } } });
    const userOf = (bytes: Uint8Array): string => (decodeCommand(bytes) as { user: string }).user;
    // The same user from different entries (and a source buffer reused after decoding) is one string.
    const source = Buffer.from(as('alice', 'k1'));
    const first = userOf(source);
    assert.equal(first, 'alice');
    assert.equal(userOf(as('alice', 'k2')), first);
    // The source reused for another user's entry: what was kept is a copy, not a view of it.
    source.set(as('carol', 'k1'));
    assert.equal(userOf(as('carol', 'k3')), 'carol');
    // Names of the same length and of other lengths, UTF-8 included, each decode to themselves,
    // and encoding after them still writes each one's own bytes.
    for (const user of ['alicf', 'bob', 'zoë', 'alice', '', 'zoé', 'alice', 'bob']) {
      assert.equal(userOf(as(user, 'k')), user);
      assert.deepEqual(decodeCommand(as(user, 'k')), { type: 'authorized', user, authRevision: 2, command: { type: 'put', request: { key: b('k'), value: b('v') } } });
    }
  });

  it('refuses to encode numbers outside the safe-integer range', () => {
    assert.throws(() => encodeCommand({ type: 'leaseRevoke', id: 2 ** 60 }), LichenError);
  });
});
