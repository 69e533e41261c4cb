// The gateway's JSON, checked against what etcd 3.4.23's gateway answers for the same input (each
// expected message below was read from a real etcd with curl; golden.e2e.test.ts compares the two
// servers side by side).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { servedServiceDefinition } from '../kv-codec.js';
import { JsonValueSplitter, ValueTooLarge } from './json-stream.js';
import { JsonNumber, goJsonString, parseJsonText, readJsonValue } from './json-text.js';
import { encodeFromJson, etcdProtoRoot, jsonFromEncoded } from './proto-json.js';

const root = etcdProtoRoot();
const kv = servedServiceDefinition('etcdserverpb.KV');

/** The request the gRPC KV service would see for this JSON body of /v3/kv/range. */
function rangeRequest(body: string): Record<string, unknown> {
  const json = readJsonValue(body);
  const bytes = json === undefined ? new Uint8Array(0) : encodeFromJson(root.lookupType('etcdserverpb.RangeRequest'), json.value);
  return kv['Range']!.requestDeserialize(Buffer.from(bytes)) as Record<string, unknown>;
}

function rangeError(body: string): string {
  try {
    rangeRequest(body);
  } catch (error) {
    return (error as Error).message;
  }
  return assert.fail(`${body} was accepted`);
}

describe('gateway JSON reading', () => {
  it('reads fields by proto name or JSON name, integers as strings or numbers, enums by name or number', () => {
    const request = rangeRequest('{"key":"Zm9v","range_end":"Zm9w","limit":"5","revision":7,"sortOrder":"DESCEND","sort_target":3,"keysOnly":true}');
    assert.deepEqual(request['key'], Buffer.from('foo'));
    assert.deepEqual(request['range_end'], Buffer.from('fop'));
    assert.equal(request['limit'], 5);
    assert.equal(request['revision'], 7);
    assert.equal(request['sort_order'], 2);
    assert.equal(request['sort_target'], 3);
    assert.equal(request['keys_only'], true);
  });

  it('ignores unknown fields and takes null as not given, and an empty body as an empty request', () => {
    assert.equal(rangeRequest('{"key":null,"limit":null,"bogus":{"x":[1]}}')['limit'], 0);
    assert.deepEqual(rangeRequest('')['key'], Buffer.alloc(0));
    assert.deepEqual(rangeRequest('  \n')['key'], Buffer.alloc(0));
  });

  it('reads only the first value of the body, as a json.Decoder does', () => {
    assert.deepEqual(rangeRequest('{"key":"Zm9v"} {"key":"YmFy"} trailing')['key'], Buffer.from('foo'));
  });

  it('keeps 64-bit integers exact', () => {
    const json = readJsonValue('{"ID":18446744073709551615}')!.value as Record<string, JsonNumber>;
    assert.equal(json['ID']!.text, '18446744073709551615');
    const type = root.lookupType('etcdserverpb.MemberRemoveRequest');
    const decoded = type.decode(encodeFromJson(type, readJsonValue('{"ID":18446744073709551615}')!.value)) as unknown as { ID: { toString(): string } };
    assert.equal(decoded.ID.toString(), '18446744073709551615');
  });

  it('fails bad input with the messages etcd 3.4 gives', () => {
    const cases: Array<[string, string]> = [
      ['notjson', "invalid character 'o' in literal null (expecting 'u')"],
      ['garbage', "invalid character 'g' looking for beginning of value"],
      ['{"key":"Zm9v" "x"}', "invalid character '\"' after object key:value pair"],
      ['{key:1}', "invalid character 'k' looking for beginning of object key string"],
      ['{"key"}', "invalid character '}' after object key"],
      ['{"key":', 'unexpected EOF'],
      ['[1]', 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage'],
      ['{"key":"!!!"}', 'illegal base64 data at input byte 0'],
      ['{"key":"Zm9v-_"}', 'illegal base64 data at input byte 4'],
      ['{"key":"Zm8"}', 'illegal base64 data at input byte 0'],
      ['{"key":5}', 'json: cannot unmarshal number into Go value of type []uint8'],
      ['{"limit":"abc"}', "invalid character 'a' looking for beginning of value"],
      ['{"limit":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type int64'],
      ['{"limit":1e3}', 'json: cannot unmarshal number 1e3 into Go value of type int64'],
      ['{"limit":99999999999999999999}', 'json: cannot unmarshal number 99999999999999999999 into Go value of type int64'],
      ['{"limit":true}', 'json: cannot unmarshal bool into Go value of type int64'],
      ['{"serializable":"true"}', 'json: cannot unmarshal string into Go value of type bool'],
      ['{"sort_order":"BAD"}', 'unknown value "BAD" for enum etcdserverpb.RangeRequest_SortOrder'],
      ['{"sort_order":{}}', 'json: cannot unmarshal object into Go value of type etcdserverpb.RangeRequest_SortOrder'],
    ];
    for (const [body, message] of cases) assert.equal(rangeError(body), message, body);
  });

  it('decodes base64 with newlines and correct padding only', () => {
    assert.deepEqual(rangeRequest('{"key":"Zm9v\\nYmFy"}')['key'], Buffer.from('foobar'));
    assert.deepEqual(rangeRequest('{"key":"Zm8="}')['key'], Buffer.from('fo'));
    assert.equal(rangeError('{"key":"Zm8=="}'), 'illegal base64 data at input byte 4');
    assert.equal(rangeError('{"key":"Z==="}'), 'illegal base64 data at input byte 1');
  });

  it('parses a quoted number as JSON, as jsonpb does', () => {
    assert.equal(rangeRequest('{"limit":" 12 "}')['limit'], 12);
    assert.equal(rangeRequest('{"limit":"null"}')['limit'], 0);
    assert.throws(() => parseJsonText('12 x'), /invalid character 'x' after top-level value/);
  });
});

describe('gateway JSON writing', () => {
  it('writes bytes as base64, 64-bit integers as strings, enums by name, and leaves zero values out', () => {
    const response = { header: { cluster_id: 5, member_id: '18446744073709551615', revision: 2, raft_term: 0 }, kvs: [{ key: Buffer.from('foo'), create_revision: 2, mod_revision: 2, version: 1, value: Buffer.from('bar'), lease: 0 }], more: false, count: 1 };
    const text = jsonFromEncoded(root.lookupType('etcdserverpb.RangeResponse'), kv['Range']!.responseSerialize(response as never));
    assert.equal(text, '{"header":{"cluster_id":"5","member_id":"18446744073709551615","revision":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}');
  });

  it('writes a set oneof member and an empty sub-message, and enum zero values not at all', () => {
    const txn = { header: { revision: 3 }, succeeded: false, responses: [{ response_range: { header: {}, kvs: [], count: 0 } }] };
    assert.equal(jsonFromEncoded(root.lookupType('etcdserverpb.TxnResponse'), kv['Txn']!.responseSerialize(txn as never)), '{"header":{"revision":"3"},"responses":[{"response_range":{"header":{}}}]}');
    const type = root.lookupType('etcdserverpb.WatchResponse');
    const watch = type.encode(type.fromObject({ events: [{ type: 0, kv: { key: Buffer.from('a') } }, { type: 1, kv: { key: Buffer.from('b') } }] })).finish();
    assert.equal(jsonFromEncoded(type, watch), '{"events":[{"kv":{"key":"YQ=="}},{"type":"DELETE","kv":{"key":"Yg=="}}]}');
  });

  it('escapes strings as Go does', () => {
    assert.equal(goJsonString('a<b>&c\u2028\b'), '"a\\u003cb\\u003e\\u0026c\\u2028\\u0008"');
    assert.equal(goJsonString('back\\b'), '"back\\\\b"');
  });
});

describe('gateway request streams', () => {
  it('cuts a body into values across chunk boundaries, strings and nesting included', () => {
    const splitter = new JsonValueSplitter(1024);
    const body = ' {"a":"}{\\"","b":[{}]}\n{"c":1}  "s" 12 ';
    const values: string[] = [];
    for (const byte of Buffer.from(body)) values.push(...splitter.push(Buffer.from([byte])));
    const rest = splitter.end();
    assert.deepEqual(values.map((value) => value.trim()), ['{"a":"}{\\"","b":[{}]}', '{"c":1}', '"s"', '12']);
    assert.equal(rest, undefined);
  });

  it('returns a value cut short at the end of the body, which then fails to parse', () => {
    const splitter = new JsonValueSplitter(1024);
    assert.deepEqual(splitter.push(Buffer.from('{"ID":1}{"ID"')), ['{"ID":1}']);
    const rest = splitter.end()!;
    assert.throws(() => readJsonValue(rest), /unexpected EOF/);
  });

  it('refuses a value larger than its limit without buffering more of it', () => {
    const splitter = new JsonValueSplitter(16);
    assert.throws(() => splitter.push(Buffer.from('{"key":"' + 'A'.repeat(64))), ValueTooLarge);
    // Whitespace between values is not held.
    const idle = new JsonValueSplitter(16);
    for (let i = 0; i < 100; i++) assert.deepEqual(idle.push(Buffer.from('    ')), []);
  });
});
