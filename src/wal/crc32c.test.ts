import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32c, crc32cUpdate } from './crc32c.js';

// Known answers from RFC 3720 (iSCSI), appendix B.4, and the standard "123456789" check value.
test('crc32c matches the published check values', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

test('crc32c fed in pieces equals crc32c of the whole, at every split point', () => {
  const bytes = Uint8Array.from({ length: 77 }, (_, i) => (i * 131 + 7) & 0xff);
  const whole = crc32c(bytes);
  for (let split = 0; split <= bytes.length; split++) {
    assert.equal(crc32cUpdate(crc32cUpdate(0, bytes.subarray(0, split)), bytes.subarray(split)), whole);
  }
});
