import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../raft/types.js';
import { isLichenError } from '../errors.js';
import { CODEC_VERSION, decodeMessage, encodeMessage, encodedMessageBytes } from './codec.js';
import { ALL_MESSAGE_TYPES, MessageGenerator, plain, seededRandom } from './testing.js';

const ROUNDS_PER_TYPE = 200;

function assertRejected(bytes: Uint8Array, why: string): void {
  assert.throws(
    () => decodeMessage(bytes),
    (error: unknown) => isLichenError(error, 'InvalidArgument') && /malformed peer message/.test(error.message),
    why,
  );
}

test('every message variant round-trips with random contents', () => {
  const generate = new MessageGenerator(seededRandom(42));
  for (const type of ALL_MESSAGE_TYPES) {
    for (let round = 0; round < ROUNDS_PER_TYPE; round++) {
      const message = generate.message(type);
      const bytes = encodeMessage(message);
      assert.equal(bytes.length, encodedMessageBytes(message));
      assert.equal(bytes[0], CODEC_VERSION);
      assert.deepEqual(plain(decodeMessage(bytes)), plain(message), `${type} round ${round}`);
    }
  }
});

test('encoding with headroom places the message after the reserved bytes', () => {
  const message: Message = { type: 'TimeoutNow', from: 1, to: 2, term: 3 };
  const bytes = encodeMessage(message, 5);
  assert.deepEqual(plain(decodeMessage(bytes.subarray(5))), plain(message));
});

test('decoded byte fields alias the input unless copy is asked for', () => {
  const message: Message = {
    type: 'App',
    from: 1,
    to: 2,
    term: 1,
    prevLogIndex: 0,
    prevLogTerm: 0,
    commit: 0,
    entries: [{ term: 1, index: 1, type: 0, data: Buffer.from('hello') }],
  };
  const bytes = encodeMessage(message);
  const aliased = decodeMessage(bytes) as Extract<Message, { type: 'App' }>;
  const copied = decodeMessage(bytes, { copy: true }) as Extract<Message, { type: 'App' }>;
  assert.equal(aliased.entries[0]!.data.buffer, bytes.buffer);
  assert.notEqual(copied.entries[0]!.data.buffer, bytes.buffer);
  bytes.fill(0);
  assert.equal(Buffer.from(copied.entries[0]!.data).toString(), 'hello');
});

test('every strict prefix of a valid message is rejected as truncated', () => {
  const generate = new MessageGenerator(seededRandom(7));
  for (const type of ALL_MESSAGE_TYPES) {
    const bytes = encodeMessage(generate.message(type));
    for (let length = 0; length < bytes.length; length++) {
      assertRejected(bytes.subarray(0, length), `${type} cut to ${length} of ${bytes.length} bytes`);
    }
  }
});

test('trailing bytes after a valid message are rejected', () => {
  const bytes = encodeMessage({ type: 'VoteResp', from: 1, to: 2, term: 3, reject: false });
  assertRejected(Buffer.concat([bytes, Buffer.from([0])]), 'one extra byte');
});

test('a wrong version, unknown type code, bad boolean or bad entry type is rejected', () => {
  const vote = encodeMessage({ type: 'VoteResp', from: 1, to: 2, term: 3, reject: true });
  const withByte = (bytes: Buffer, offset: number, value: number): Buffer => {
    const copy = Buffer.from(bytes);
    copy[offset] = value;
    return copy;
  };
  assertRejected(withByte(vote, 0, CODEC_VERSION + 1), 'version');
  assertRejected(withByte(vote, 1, 0), 'type code 0');
  assertRejected(withByte(vote, 1, 200), 'type code 200');
  assertRejected(withByte(vote, vote.length - 1, 2), 'boolean 2');
  const app = encodeMessage({
    type: 'App',
    from: 1,
    to: 2,
    term: 3,
    prevLogIndex: 4,
    prevLogTerm: 5,
    commit: 6,
    entries: [{ term: 1, index: 2, type: 0, data: new Uint8Array(0) }],
  });
  // The entry type byte sits just before the final (empty) data length byte.
  assertRejected(withByte(app, app.length - 2, 9), 'entry type 9');
});

test('lengths and counts larger than the remaining input are rejected without allocating', () => {
  // version, App, from 1, to 2, term 3, prevLogIndex, prevLogTerm, commit, then a count of 2^40 entries.
  const hugeCount = Buffer.from([CODEC_VERSION, 5, 1, 2, 3, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
  assertRejected(hugeCount, 'entry count 2^40');
  // Heartbeat with a context that claims 1000 bytes but has 2.
  const longContext = Buffer.from([CODEC_VERSION, 7, 1, 2, 3, 0, 0xe8, 0x07, 1, 2]);
  assertRejected(longContext, 'context length past the end');
});

test('varints above 2^53 - 1 or longer than 8 bytes are rejected', () => {
  const tooBig = Buffer.from([CODEC_VERSION, 13, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 2, 3]);
  assertRejected(tooBig, 'from = 2^56 - 1');
  const tooLong = Buffer.from([CODEC_VERSION, 13, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 2, 3]);
  assertRejected(tooLong, '9-byte varint');
  const largest = encodeMessage({ type: 'TimeoutNow', from: Number.MAX_SAFE_INTEGER, to: 2, term: 3 });
  assert.equal(decodeMessage(largest).from, Number.MAX_SAFE_INTEGER);
});

test('random garbage never decodes into anything but a clean error or a valid message', () => {
  const random = seededRandom(1234);
  const generate = new MessageGenerator(random);
  for (let round = 0; round < 5000; round++) {
    let bytes: Uint8Array;
    if (round % 2 === 0) {
      bytes = generate.bytes(64);
    } else {
      // Flip a few bytes of a valid message so the garbage reaches deep into the decoder.
      const valid = Buffer.from(encodeMessage(generate.message(ALL_MESSAGE_TYPES[round % ALL_MESSAGE_TYPES.length]!)));
      for (let flips = 1 + generate.int(3); flips > 0; flips--) valid[generate.int(valid.length - 1)] = generate.int(255);
      bytes = valid;
    }
    try {
      const message = decodeMessage(bytes);
      // Whatever decodes must re-encode to the same bytes: the decoder accepted a real message.
      assert.deepEqual(plain(decodeMessage(encodeMessage(message))), plain(message));
    } catch (error) {
      assert.ok(isLichenError(error, 'InvalidArgument'), `round ${round}: unexpected ${String(error)}`);
    }
  }
});

test('encoding a negative or fractional number is a bug and asserts', () => {
  assert.throws(() => encodeMessage({ type: 'TimeoutNow', from: -1, to: 2, term: 3 }), /assertion failed/);
  assert.throws(() => encodeMessage({ type: 'TimeoutNow', from: 1, to: 2, term: 1.5 }), /assertion failed/);
});
