import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, LichenError } from '../../errors.js';
import { keyValueJson, parseQuery, percentDecode, prefixRange, queryBoolean, queryInteger } from './codec.js';
import { errorResponse, HTTP_STATUS_BY_CODE, MethodNotAllowedError } from './errors.js';

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);
const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

test('prefixRange increments the last byte below 0xFF and drops trailing 0xFF bytes', () => {
  assert.deepEqual(prefixRange(text('ab')), { key: text('ab'), rangeEnd: text('ac') });
  assert.deepEqual(prefixRange(bytes(0x61, 0xff, 0xff)), { key: bytes(0x61, 0xff, 0xff), rangeEnd: bytes(0x62) });
  assert.deepEqual(prefixRange(bytes(0xff, 0xff)).rangeEnd, bytes(0));
  assert.deepEqual(prefixRange(bytes()), { key: bytes(0), rangeEnd: bytes(0) });
});

test('prefixRange never modifies the prefix it was given, even a Buffer', () => {
  const prefix = Buffer.from('list/');
  prefixRange(prefix);
  assert.equal(prefix.toString(), 'list/');
});

test('percentDecode yields raw bytes and treats + as space only in queries', () => {
  assert.deepEqual(percentDecode('a%FF%00b', false), bytes(0x61, 0xff, 0x00, 0x62));
  assert.deepEqual(percentDecode('a+b', false), text('a+b'));
  assert.deepEqual(percentDecode('a+b', true), text('a b'));
  assert.deepEqual(percentDecode('é', false), text('é'));
  assert.throws(() => percentDecode('%G0', false), /malformed percent-encoding at "%G0"/);
  assert.throws(() => percentDecode('abc%', false), /malformed percent-encoding/);
});

test('parseQuery keeps the last value of a repeated name and bounds the parameter count', () => {
  const query = parseQuery('?a=1&b=&c&a=2');
  assert.deepEqual([...query.keys()], ['a', 'b', 'c']);
  assert.deepEqual(query.get('a'), text('2'));
  assert.equal(queryBoolean(query, 'c'), true);
  assert.equal(queryBoolean(query, 'missing', true), true);
  assert.equal(queryInteger(query, 'a', 0), 2);
  assert.throws(() => parseQuery(Array.from({ length: 65 }, (_, i) => `p${i}=1`).join('&')), /too many query parameters/);
});

test('keyValueJson marks non-UTF-8 keys and values as base64 and leaves text alone', () => {
  const kv = { key: text('k'), value: text('v'), createRevision: 2, modRevision: 3, version: 2, lease: 0 };
  assert.deepEqual(keyValueJson(kv), { key: 'k', value: 'v', createRevision: 2, modRevision: 3, version: 2, lease: '0000000000000000' });
  const binary = keyValueJson({ ...kv, key: bytes(0xc3), value: bytes(0xff) });
  assert.deepEqual([binary.key, binary.keyEncoding, binary.value, binary.encoding], ['ww==', 'base64', '/w==', 'base64']);
});

test('every error code has an HTTP status, and the table holds the documented ones', () => {
  for (const code of Object.values(ErrorCode)) assert.ok(HTTP_STATUS_BY_CODE[code] >= 400, code);
  assert.deepEqual(
    {
      InvalidArgument: HTTP_STATUS_BY_CODE.InvalidArgument,
      TooLarge: HTTP_STATUS_BY_CODE.TooLarge,
      NotFound: HTTP_STATUS_BY_CODE.NotFound,
      Compacted: HTTP_STATUS_BY_CODE.Compacted,
      Unavailable: HTTP_STATUS_BY_CODE.Unavailable,
      Timeout: HTTP_STATUS_BY_CODE.Timeout,
      Overloaded: HTTP_STATUS_BY_CODE.Overloaded,
      NotLeader: HTTP_STATUS_BY_CODE.NotLeader,
      Internal: HTTP_STATUS_BY_CODE.Internal,
    },
    { InvalidArgument: 400, TooLarge: 413, NotFound: 404, Compacted: 410, Unavailable: 503, Timeout: 504, Overloaded: 429, NotLeader: 503, Internal: 500 },
  );
});

test('errorResponse shows the details, ids as hex, and hides messages of foreign errors', () => {
  const compacted = errorResponse(new LichenError(ErrorCode.Compacted, 'gone', { compactRevision: 9, leaderId: 0x1b, reason: undefined }));
  assert.deepEqual(compacted.body, { error: { code: 'Compacted', message: 'gone', details: { compactRevision: 9, leaderId: '000000000000001b' } } });
  assert.equal(compacted.internal, false);
  const foreign = errorResponse(new RangeError('stack details'));
  assert.deepEqual([foreign.status, foreign.body.error.message, foreign.internal], [500, 'internal error', true]);
  const method = errorResponse(new MethodNotAllowedError('POST', ['GET', 'PUT']));
  assert.deepEqual([method.status, method.headers], [405, { Allow: 'GET, PUT' }]);
});
