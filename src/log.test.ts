import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, createSilentLogger, FIELD_STRING_CHARS_MAX, type LogLevel } from './log.js';
import { LichenError, ErrorCode } from './errors.js';

/** A stream that keeps every chunk it receives. */
function memoryStream(): { stream: Writable; lines: () => Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const raw = () => chunks.join('');
  return {
    stream,
    raw,
    lines: () =>
      raw()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const FIXED_MS = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

function loggerAt(level: LogLevel) {
  const memory = memoryStream();
  const logger = createLogger({ name: 'node-a', level, streams: [memory.stream], now: () => FIXED_MS });
  return { logger, ...memory };
}

test('writes one JSON object per line with ts, level, name, msg and the fields', () => {
  const { logger, lines, raw } = loggerAt('debug');
  logger.info('started', { port: 2379 });
  logger.debug('tick', { term: 3 });
  assert.equal(raw().split('\n').length, 3, 'two lines, each ended by a newline');
  assert.deepEqual(lines(), [
    { ts: '2024-01-02T03:04:05.678Z', level: 'info', name: 'node-a', msg: 'started', port: 2379 },
    { ts: '2024-01-02T03:04:05.678Z', level: 'debug', name: 'node-a', msg: 'tick', term: 3 },
  ]);
});

test('drops messages below the level and keeps those at or above it', () => {
  const { logger, lines } = loggerAt('warn');
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  logger.error('e');
  assert.deepEqual(
    lines().map((l) => l.level),
    ['warn', 'error'],
  );
  assert.equal(logger.isLevelEnabled('info'), false);
  assert.equal(logger.isLevelEnabled('error'), true);
});

test('a disabled level does not touch its fields', () => {
  const { logger, raw } = loggerAt('info');
  const fields = {
    get costly(): string {
      throw new Error('fields of a disabled level must not be read');
    },
  };
  logger.debug('skipped', fields);
  assert.equal(raw(), '');
});

test('a child adds its fields to every line and its own fields win over the parent', () => {
  const { logger, lines } = loggerAt('info');
  const child = logger.child({ component: 'raft', group: 1 }).child({ group: 2 });
  child.info('elected', { term: 7 });
  logger.info('plain');
  assert.deepEqual(lines(), [
    { ts: '2024-01-02T03:04:05.678Z', level: 'info', name: 'node-a', msg: 'elected', component: 'raft', group: 2, term: 7 },
    { ts: '2024-01-02T03:04:05.678Z', level: 'info', name: 'node-a', msg: 'plain' },
  ]);
});

test('a field named like a reserved key is renamed rather than overwriting it', () => {
  const { logger, lines } = loggerAt('info');
  logger.info('hello', { level: 'sneaky', msg: 'other' });
  const [line] = lines();
  assert.equal(line?.level, 'info');
  assert.equal(line?.msg, 'hello');
  assert.equal(line?.field_level, 'sneaky');
  assert.equal(line?.field_msg, 'other');
});

test('errors, bigints, bytes and cycles serialize without throwing', () => {
  const { logger, lines } = loggerAt('info');
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  logger.error('failed', {
    err: new LichenError(ErrorCode.NotLeader, 'not the leader', { leaderId: 2 }),
    big: 2n ** 70n,
    bytes: new Uint8Array([104, 105]),
    buffer: Buffer.from('hi'),
    when: new Date(FIXED_MS),
    cyclic,
  });
  const [line] = lines();
  const err = line?.err as Record<string, unknown>;
  assert.equal(err.type, 'LichenError');
  assert.equal(err.message, 'not the leader');
  assert.equal(err.code, 'NotLeader');
  assert.equal(typeof err.stack, 'string');
  assert.equal(line?.big, '1180591620717411303424');
  assert.equal(line?.bytes, 'aGk=');
  assert.equal(line?.buffer, 'aGk=');
  assert.equal(line?.when, '2024-01-02T03:04:05.678Z');
  assert.deepEqual(line?.cyclic, { a: 1, self: '[Circular]' });
});

test('a very long string field is truncated', () => {
  const { logger, lines } = loggerAt('info');
  logger.info('big', { blob: 'x'.repeat(FIELD_STRING_CHARS_MAX + 10) });
  const blob = lines()[0]?.blob as string;
  assert.ok(blob.length < FIELD_STRING_CHARS_MAX + 20);
  assert.ok(blob.endsWith('(truncated)'));
});

test('writes every line to every stream and skips a destroyed one', () => {
  const first = memoryStream();
  const second = memoryStream();
  const logger = createLogger({ name: 'n', level: 'info', streams: [first.stream, second.stream], now: () => FIXED_MS });
  second.stream.destroy();
  logger.info('once');
  assert.equal(first.lines().length, 1);
  assert.equal(second.lines().length, 0);
});

test('rejects an unknown level when created', () => {
  assert.throws(() => createLogger({ name: 'n', level: 'loud' as LogLevel, streams: [] }), /unknown log level: loud/);
});

test('the silent logger accepts every call and writes nothing', () => {
  const silent = createSilentLogger();
  silent.error('nothing');
  assert.equal(silent.child({ a: 1 }).isLevelEnabled('error'), false);
});
