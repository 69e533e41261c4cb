import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, parseInteger, splitWords, UsageError, type FlagSpec } from './args.js';

const SPECS: FlagSpec[] = [
  { name: 'prefix', type: 'boolean', description: '' },
  { name: 'limit', type: 'integer', description: '' },
  { name: 'write-out', short: 'w', type: 'string', choices: ['simple', 'json'], description: '' },
  { name: 'endpoints', type: 'string', description: '' },
  { name: 'tag', type: 'string', repeatable: true, description: '' },
];

test('flags and positionals may be interleaved, in both --flag value and --flag=value forms', () => {
  const parsed = parseArgs(['foo', '--limit', '5', '--prefix', '-w', 'json', '--endpoints=a:1,b:2', 'bar'], SPECS);
  assert.deepEqual(parsed, {
    flags: { limit: 5, prefix: true, 'write-out': 'json', endpoints: 'a:1,b:2' },
    positionals: ['foo', 'bar'],
  });
});

test('a boolean flag takes an explicit value only with =', () => {
  assert.deepEqual(parseArgs(['--prefix=false', 'k'], SPECS).flags, { prefix: false });
  assert.deepEqual(parseArgs(['--prefix', 'false'], SPECS), { flags: { prefix: true }, positionals: ['false'] });
});

test('everything after -- is positional, and negative numbers and "-" are positionals', () => {
  assert.deepEqual(parseArgs(['--', '--prefix', '-w'], SPECS).positionals, ['--prefix', '-w']);
  assert.deepEqual(parseArgs(['-5', '-'], SPECS).positionals, ['-5', '-']);
});

test('a repeatable flag collects its values in order', () => {
  assert.deepEqual(parseArgs(['--tag', 'a', '--tag=b'], SPECS).flags.tag, ['a', 'b']);
});

test('an unknown flag is a usage error naming the flag', () => {
  assert.throws(() => parseArgs(['--prefx'], SPECS), (e: unknown) => e instanceof UsageError && /unknown flag: --prefx/.test(e.message));
  assert.throws(() => parseArgs(['-x=1'], SPECS), /unknown flag: -x/);
});

test('a missing or invalid value names the flag and what it expected', () => {
  assert.throws(() => parseArgs(['--limit'], SPECS), /flag --limit needs a value/);
  assert.throws(() => parseArgs(['--limit', 'ten'], SPECS), /invalid value for --limit: "ten" \(expected an integer\)/);
  assert.throws(() => parseArgs(['--limit=-1'], SPECS), /invalid value for --limit: "-1" \(expected an integer at least 0\)/);
  assert.throws(() => parseArgs(['-w', 'yaml'], SPECS), /invalid value for --write-out: "yaml" \(expected one of simple, json\)/);
});

test('integers accept underscores and refuse values beyond the bounds', () => {
  assert.equal(parseInteger('1_572_864', 'x', 0), 1_572_864);
  assert.throws(() => parseInteger('70000', '--port', 0, 65_535), /between 0 and 65535/);
  assert.throws(() => parseInteger('99999999999999999999', 'x', 0), /expected an integer/);
});

test('splitWords honours quotes and escapes like a shell', () => {
  assert.deepEqual(splitWords(`put user:1 "Alice Smith"`), ['put', 'user:1', 'Alice Smith']);
  assert.deepEqual(splitWords(`put k 'it''s'`), ['put', 'k', 'its']);
  assert.deepEqual(splitWords(`put k "say \\"hi\\"\\n"`), ['put', 'k', 'say "hi"\n']);
  assert.deepEqual(splitWords(`put k a\\ b ""`), ['put', 'k', 'a b', '']);
  assert.deepEqual(splitWords('   '), []);
  assert.throws(() => splitWords('put k "open'), /unterminated " quote/);
});
