import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { LichenError } from '../../errors.js';
import { seededRandom } from '../../random.js';
import type { KeyValue } from '../../mvcc/types.js';
import { EncodedWatchEvents, KV_MESSAGES, RangeResponseWriter, servedServiceDefinition, withFastKvCodec, withFastLeaseKeepAliveCodec, type MessageCodec } from './kv-codec.js';
import { etcdPackageDefinition, serviceDefinition } from './proto.js';
import { decodeRangeRequest } from './wire.js';

// protobufjs (through proto-loader, with the options the server used before this codec) is the
// reference: same values both ways, and the same bytes whenever no field holds its default.
const kvDefinition = etcdPackageDefinition()['etcdserverpb.KV'] as unknown as ServiceDefinition;

interface Reference {
  encode(message: object): Buffer;
  decode(bytes: Buffer): unknown;
}

function reference(method: string, side: 'request' | 'response'): Reference {
  const m = kvDefinition[method]!;
  return side === 'request'
    ? { encode: (x) => m.requestSerialize(x), decode: (b) => m.requestDeserialize(b) }
    : { encode: (x) => m.responseSerialize(x), decode: (b) => m.responseDeserialize(b) };
}

const CASES: { name: string; method: string; side: 'request' | 'response'; codec: MessageCodec<any> }[] = [
  { name: 'RangeRequest', method: 'Range', side: 'request', codec: KV_MESSAGES.RangeRequest },
  { name: 'RangeResponse', method: 'Range', side: 'response', codec: KV_MESSAGES.RangeResponse },
  { name: 'PutRequest', method: 'Put', side: 'request', codec: KV_MESSAGES.PutRequest },
  { name: 'PutResponse', method: 'Put', side: 'response', codec: KV_MESSAGES.PutResponse },
  { name: 'DeleteRangeRequest', method: 'DeleteRange', side: 'request', codec: KV_MESSAGES.DeleteRangeRequest },
  { name: 'DeleteRangeResponse', method: 'DeleteRange', side: 'response', codec: KV_MESSAGES.DeleteRangeResponse },
  { name: 'TxnRequest', method: 'Txn', side: 'request', codec: KV_MESSAGES.TxnRequest },
  { name: 'TxnResponse', method: 'Txn', side: 'response', codec: KV_MESSAGES.TxnResponse },
  { name: 'CompactionRequest', method: 'Compact', side: 'request', codec: KV_MESSAGES.CompactionRequest },
  { name: 'CompactionResponse', method: 'Compact', side: 'response', codec: KV_MESSAGES.CompactionResponse },
];

function caseOf(name: string) {
  const found = CASES.find((c) => c.name === name)!;
  return { ...found, ref: reference(found.method, found.side) };
}

/** protobufjs gives every int64 as a string, we give safe ones as numbers: compare as strings. */
function normalize(value: unknown): unknown {
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value;
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

/** Every int64 we decode is a safe integer number, or a decimal string only beyond 2^53 - 1. */
function assertInt64Shapes(value: unknown, path = 'message'): void {
  if (typeof value === 'number') assert.ok(Number.isSafeInteger(value), `${path} = ${value}`);
  else if (typeof value === 'string' && /^-?\d+$/.test(value)) {
    assert.ok(!Number.isSafeInteger(Number(value)), `${path} = "${value}" should have been a number`);
  } else if (Array.isArray(value)) value.forEach((v, i) => assertInt64Shapes(v, `${path}[${i}]`));
  else if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    for (const [k, v] of Object.entries(value)) assertInt64Shapes(v, `${path}.${k}`);
  }
}

/** Checks one message both ways against protobufjs; `canonical` also requires identical bytes. */
function crossCheck(name: string, message: object, options: { canonical: boolean }): void {
  const { codec, ref } = caseOf(name);
  const ours = codec.encode(message);
  const theirs = ref.encode(message);
  if (options.canonical) assert.deepEqual(ours.toString('hex'), theirs.toString('hex'), `${name} bytes`);
  assert.deepEqual(normalize(ref.decode(ours)), normalize(ref.decode(theirs)), `${name}: protobufjs reads our bytes`);
  const decoded = codec.decode(theirs);
  assert.deepEqual(normalize(decoded), normalize(ref.decode(theirs)), `${name}: we read protobufjs's bytes`);
  assertInt64Shapes(decoded);
  assert.deepEqual(normalize(codec.decode(ours)), normalize(decoded), `${name}: round trip`);
}

const b = (s: string): Buffer => Buffer.from(s);

const header = { cluster_id: '1001', member_id: '3', revision: '42', raft_term: '7' };
const kvA = { key: b('a'), create_revision: '2', mod_revision: '5', version: '3', value: b('one'), lease: '99' };
const kvB = { key: b('b'), create_revision: '4', mod_revision: '4', version: '1', value: Buffer.from([0, 255]), lease: '12' };

describe('KV codec against protobufjs', () => {
  it('writes every RangeRequest option byte for byte as protobufjs does, and reads them back', () => {
    crossCheck(
      'RangeRequest',
      {
        key: b('a'),
        range_end: b('z'),
        limit: '10',
        revision: '12345678901',
        sort_order: 2,
        sort_target: 4,
        serializable: true,
        keys_only: true,
        count_only: true,
        min_mod_revision: '1',
        max_mod_revision: '200',
        min_create_revision: '3',
        max_create_revision: '4000000',
      },
      { canonical: true },
    );
    const decoded = KV_MESSAGES.RangeRequest.decode(reference('Range', 'request').encode({ key: b('a'), sort_order: 1, keys_only: true }));
    assert.equal(decoded.sort_order, 1);
    assert.equal(decoded.sort_target, 0);
    assert.equal(decoded.keys_only, true);
    assert.equal(decoded.count_only, false);
    assert.equal(decoded.limit, 0);
  });

  it('reads and writes Range, Put, DeleteRange and Compact responses with headers and kvs', () => {
    crossCheck('RangeResponse', { header, kvs: [kvA, kvB], more: true, count: '2' }, { canonical: true });
    crossCheck('PutResponse', { header, prev_kv: kvA }, { canonical: true });
    crossCheck('DeleteRangeResponse', { header, deleted: '2', prev_kvs: [kvA, kvB] }, { canonical: true });
    crossCheck('CompactionResponse', { header }, { canonical: true });
    crossCheck('CompactionRequest', { revision: '17', physical: true }, { canonical: true });
    crossCheck('PutRequest', { key: b('k'), value: b('v'), lease: '8', prev_kv: true, ignore_value: true, ignore_lease: true }, { canonical: true });
    crossCheck('DeleteRangeRequest', { key: b('a'), range_end: b('b'), prev_kv: true }, { canonical: true });
  });

  it('reads prev_kv in Put and DeleteRange responses, and null when it is absent', () => {
    const put = KV_MESSAGES.PutResponse.decode(reference('Put', 'response').encode({ header, prev_kv: kvA }));
    assert.deepEqual(put.prev_kv, { key: b('a'), create_revision: 2, mod_revision: 5, version: 3, value: b('one'), lease: 99 });
    assert.equal(KV_MESSAGES.PutResponse.decode(reference('Put', 'response').encode({ header })).prev_kv, null);
    const deleted = KV_MESSAGES.DeleteRangeResponse.decode(
      reference('DeleteRange', 'response').encode({ header, deleted: '2', prev_kvs: [kvA, kvB] }),
    );
    assert.equal(deleted.deleted, 2);
    assert.deepEqual(
      deleted.prev_kvs.map((kv) => kv.key.toString()),
      ['a', 'b'],
    );
  });

  it('handles a nested Txn with every op kind and every compare target', () => {
    const request = {
      compare: [
        { result: 3, key: b('k'), version: '-1' },
        { result: 1, target: 1, key: b('k'), create_revision: '2' },
        { result: 2, target: 2, key: b('k'), range_end: b('l'), mod_revision: '3' },
        { target: 3, key: b('k'), value: b('v') },
        { result: 3, target: 4, key: b('k'), lease: '0' }, // a zero member is still written
      ],
      success: [
        { request_range: { key: b('a'), range_end: b('b'), limit: '1' } },
        { request_put: { key: b('a'), value: b('1'), prev_kv: true } },
        { request_delete_range: { key: b('a'), prev_kv: true } },
        {
          request_txn: {
            compare: [{ key: b('x'), target: 3, value: Buffer.alloc(0) }],
            success: [{ request_put: { key: b('x'), value: b('y') } }],
            failure: [{ request_range: { key: b('x') } }],
          },
        },
      ],
      failure: [{ request_delete_range: { key: b('z'), range_end: b('\0') } }],
    };
    crossCheck('TxnRequest', request, { canonical: true });
    const decoded = KV_MESSAGES.TxnRequest.decode(KV_MESSAGES.TxnRequest.encode(request));
    assert.deepEqual(
      decoded.compare.map((c) => c.target_union),
      ['version', 'create_revision', 'mod_revision', 'value', 'lease'],
    );
    assert.equal(decoded.compare[0]!.version, -1);
    assert.equal(decoded.compare[4]!.lease, 0);
    assert.ok(!('version' in decoded.compare[1]!), 'only the set member is present');
    assert.deepEqual(
      decoded.success.map((op) => op.request),
      ['request_range', 'request_put', 'request_delete_range', 'request_txn'],
    );
    assert.equal(decoded.success[3]!.request_txn!.success[0]!.request_put!.value.toString(), 'y');

    const response = {
      header,
      succeeded: true,
      responses: [
        { response_range: { header, kvs: [kvA], count: '1' } },
        { response_put: { header, prev_kv: kvB } },
        { response_delete_range: { header, deleted: '1' } },
        { response_txn: { header, succeeded: true, responses: [{ response_put: { header } }] } },
      ],
    };
    crossCheck('TxnResponse', response, { canonical: true });
    const decodedResponse = KV_MESSAGES.TxnResponse.decode(KV_MESSAGES.TxnResponse.encode(response));
    assert.deepEqual(
      decodedResponse.responses.map((op) => op.response),
      ['response_range', 'response_put', 'response_delete_range', 'response_txn'],
    );
  });

  it('decodes an empty message as every field at its default, like protobufjs', () => {
    for (const { name, codec, method, side } of CASES) {
      const ref = reference(method, side);
      const empty = Buffer.alloc(0);
      assert.deepEqual(normalize(codec.decode(empty)), normalize(ref.decode(empty)), name);
      assert.equal(codec.encode({}).length, 0, `${name} encodes {} as nothing`);
    }
    assert.deepEqual(KV_MESSAGES.RequestOp.decode(Buffer.alloc(0)), {});
    assert.deepEqual(KV_MESSAGES.Compare.decode(Buffer.alloc(0)), { result: 0, target: 0, key: Buffer.alloc(0), range_end: Buffer.alloc(0) });
  });
});

describe('KV codec: proto3 encoding rules', () => {
  it('omits zero, empty and false fields but always writes a set oneof member', () => {
    const zeros = {
      key: Buffer.alloc(0),
      limit: 0,
      revision: '0',
      min_mod_revision: 0n,
      max_mod_revision: { low: 0, high: 0 },
      sort_order: 0,
      serializable: false,
    };
    assert.equal(KV_MESSAGES.RangeRequest.encode(zeros).length, 0);
    assert.equal(KV_MESSAGES.PutResponse.encode({ header: null, prev_kv: undefined }).length, 0);
    assert.equal(KV_MESSAGES.Compare.encode({ version: 0 }).toString('hex'), '2000');
    assert.equal(KV_MESSAGES.Compare.encode({ value: Buffer.alloc(0) }).toString('hex'), '3a00');
    // An empty but present embedded message is written (its presence is information).
    assert.equal(KV_MESSAGES.PutResponse.encode({ header: {} }).toString('hex'), '0a00');
    assert.equal(KV_MESSAGES.RequestOp.encode({ request_put: {} }).toString('hex'), '1200');
  });

  it('writes the oneof member the virtual field names, else the first one set', () => {
    assert.equal(KV_MESSAGES.Compare.encode({ target_union: 'lease', version: 1, lease: 2 }).toString('hex'), '4002');
    assert.equal(KV_MESSAGES.Compare.encode({ version: 1, lease: 2 }).toString('hex'), '2001');
    assert.equal(
      KV_MESSAGES.RequestOp.encode({ request: 'request_range', request_range: { key: b('a') }, request_put: { key: b('b') } }).toString('hex'),
      '0a030a0161',
    );
  });

  it('accepts int64 as number, decimal string, bigint or Long and writes the same varint', () => {
    const cases: [unknown[], string][] = [
      [[1, '1', 1n, { low: 1, high: 0, unsigned: false }], '1801'],
      [[300, '300', 300n, { low: 300, high: 0 }], '18ac02'],
      [[-1, '-1', -1n, { low: -1, high: -1, unsigned: false }], '18ffffffffffffffffff01'],
      [[2 ** 53, '9007199254740992', 2n ** 53n, { low: 0, high: 0x200000 }], '188080808080808010'],
      [['9223372036854775807', 2n ** 63n - 1n, { low: -1, high: 0x7fffffff }], '18ffffffffffffffff7f'],
      [['-9223372036854775808', -(2n ** 63n), { low: 0, high: -0x80000000 }], '1880808080808080808001'],
    ];
    for (const [forms, hex] of cases) {
      for (const lease of forms) {
        assert.equal(KV_MESSAGES.PutRequest.encode({ lease: lease as never }).toString('hex'), hex, `lease ${String(lease)}`);
      }
    }
    // Unsigned fields take the whole 64-bit range.
    const maxUint = KV_MESSAGES.ResponseHeader.encode({ cluster_id: '18446744073709551615' });
    assert.equal(maxUint.toString('hex'), '08ffffffffffffffffff01');
    assert.equal(KV_MESSAGES.ResponseHeader.decode(maxUint).cluster_id, '18446744073709551615');
  });

  it('rejects values that are not 64-bit integers or bytes, naming the message', () => {
    assert.throws(() => KV_MESSAGES.PutRequest.encode({ lease: 1.5 }), /cannot encode etcdserverpb.PutRequest: .*integer/);
    assert.throws(() => KV_MESSAGES.PutRequest.encode({ lease: '12abc' }), /decimal integer/);
    assert.throws(() => KV_MESSAGES.PutRequest.encode({ lease: 2n ** 64n }), /does not fit in 64 bits/);
    assert.throws(() => KV_MESSAGES.PutRequest.encode({ lease: NaN }), /integer/);
    assert.throws(() => KV_MESSAGES.PutRequest.encode({ key: 'text' as never }), /must be a Uint8Array/);
    assert.throws(() => KV_MESSAGES.RangeRequest.encode({ sort_order: 2 ** 40 }), /32-bit integer/);
  });
});

describe('KV codec: int64 decoding', () => {
  it('decodes negative int64 (ten-byte two’s complement) to the negative value', () => {
    const ref = reference('Range', 'request');
    for (const value of ['-1', '-2', '-4294967296', '-9007199254740991']) {
      const decoded = KV_MESSAGES.RangeRequest.decode(ref.encode({ revision: value }));
      assert.equal(decoded.revision, Number(value));
    }
    for (const value of ['-9007199254740992', '-9223372036854775808']) {
      assert.equal(KV_MESSAGES.RangeRequest.decode(ref.encode({ revision: value })).revision, value);
    }
  });

  it('decodes magnitudes above 2^53 - 1 to exact decimal strings, which wire.ts rejects by name', () => {
    const ref = reference('Range', 'request');
    const edge = KV_MESSAGES.RangeRequest.decode(ref.encode({ key: b('a'), limit: '9007199254740991', revision: '9007199254740992' }));
    assert.equal(edge.limit, Number.MAX_SAFE_INTEGER);
    assert.equal(edge.revision, '9007199254740992');
    const big = KV_MESSAGES.RangeRequest.decode(ref.encode({ key: b('a'), limit: '9223372036854775807' }));
    assert.equal(big.limit, '9223372036854775807');
    assert.throws(
      () => decodeRangeRequest(big),
      (error: unknown) => error instanceof LichenError && /limit is out of range: 9223372036854775807/.test(error.message),
    );
    const uint = KV_MESSAGES.RangeResponse.decode(reference('Range', 'response').encode({ header: { member_id: '12345678901234567890' } }));
    assert.equal(uint.header!.member_id, '12345678901234567890');
  });
});

describe('KV codec: malformed input', () => {
  const put = (): Buffer => reference('Put', 'request').encode({ key: b('key'), value: b('value'), lease: '5' });

  it('skips unknown fields of every wire type, and known numbers with the wrong wire type', () => {
    const unknown = Buffer.from([
      0xc8, 0x06, 0x96, 0x01, // field 105, varint 150
      0xc9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8, // field 105, fixed64
      0xca, 0x06, 0x02, 0xaa, 0xbb, // field 105, 2 bytes
      0xcd, 0x06, 1, 2, 3, 4, // field 105, fixed32
      0x0d, 9, 9, 9, 9, // field 1 (key, bytes) as fixed32: not the key
    ]);
    const bytes = Buffer.concat([unknown.subarray(0, 14), put(), unknown.subarray(14)]);
    const decoded = KV_MESSAGES.PutRequest.decode(bytes);
    assert.deepEqual(decoded, { key: b('key'), value: b('value'), lease: 5, prev_kv: false, ignore_value: false, ignore_lease: false });
    // Unknown fields inside embedded messages too: field 31 in the RequestOp, field 500 in the PutRequest.
    const putWithUnknown = Buffer.concat([put(), Buffer.from([0xa0, 0x1f, 0x01])]);
    const op = Buffer.concat([Buffer.from([0xf8, 0x01, 0x07, 0x12]), varint(putWithUnknown.length), putWithUnknown]);
    const txn = Buffer.concat([Buffer.from([0x12]), varint(op.length), op]);
    const decodedOp = KV_MESSAGES.TxnRequest.decode(txn).success[0]!;
    assert.equal(decodedOp.request, 'request_put');
    assert.equal(decodedOp.request_put!.key.toString(), 'key');
    assert.equal(decodedOp.request_put!.lease, 5);
  });

  it('throws a clear error on every truncated prefix that protobufjs also rejects, and accepts the others', () => {
    const request = {
      compare: [{ key: b('k'), target: 2, mod_revision: '-7', range_end: b('kz') }],
      success: [{ request_txn: { success: [{ request_put: { key: b('key'), value: Buffer.alloc(200, 1), lease: '300' } }] } }],
      failure: [{ request_range: { key: b('r'), limit: '9007199254740993' } }],
    };
    const bytes = reference('Txn', 'request').encode(request);
    let rejected = 0;
    for (let length = 0; length < bytes.length; length++) {
      const prefix = bytes.subarray(0, length);
      let theirsThrew = false;
      try {
        reference('Txn', 'request').decode(prefix);
      } catch {
        theirsThrew = true;
      }
      let oursThrew = false;
      try {
        KV_MESSAGES.TxnRequest.decode(prefix);
      } catch (error) {
        oursThrew = true;
        assert.ok(error instanceof Error && /^cannot decode etcdserverpb\.TxnRequest: /.test(error.message), String(error));
      }
      assert.equal(oursThrew, theirsThrew, `prefix of ${length} bytes`);
      if (oursThrew) rejected++;
    }
    assert.ok(rejected > bytes.length - 10, `most prefixes cut a field (${rejected} of ${bytes.length})`);
  });

  it('rejects malformed varints, groups, bad wire types, field 0 and overlong lengths', () => {
    const cases: [number[], RegExp][] = [
      [[0x18, 0x80], /truncated/],
      [[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], /longer than 64 bits/],
      [[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /longer than 64 bits/],
      [[0x0b, 0x0c], /group/],
      [[0x0e], /invalid wire type 6/],
      [[0x0f], /invalid wire type 7/],
      [[0x00, 0x00], /field number 0/],
      [[0x0a, 0x05, 0x61], /runs past the end/],
      [[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /runs past the end/],
      [[0xf9, 0x01, 1, 2, 3], /truncated/],
      [[0xfd, 0x01, 1], /truncated/],
    ];
    for (const [bytes, message] of cases) {
      assert.throws(() => KV_MESSAGES.PutRequest.decode(Buffer.from(bytes)), message, Buffer.from(bytes).toString('hex'));
    }
    // An embedded message whose length runs past its parent's end.
    assert.throws(() => KV_MESSAGES.TxnRequest.decode(Buffer.from([0x12, 0x02, 0x12, 0x05])), /runs past the end/);
  });

  it('bounds txn nesting so decoding is a bounded recursion', () => {
    // Txn { success (2) or responses (3): Op { request_txn / response_txn (4): Txn { ... } } }
    const nested = (depth: number, listTag: number): Buffer => {
      let message = Buffer.alloc(0);
      for (let level = 0; level < depth; level++) {
        const op = Buffer.concat([Buffer.from([0x22]), varint(message.length), message]);
        message = Buffer.concat([Buffer.from([listTag]), varint(op.length), op]);
      }
      return message;
    };
    // Deeper than wire.ts allows (its error is etcd's, so the decoder leaves it to the handler).
    assert.equal(KV_MESSAGES.TxnRequest.decode(nested(20, 0x12)).success.length, 1);
    assert.throws(() => KV_MESSAGES.TxnRequest.decode(nested(200, 0x12)), /nested deeper than/);
    assert.throws(() => KV_MESSAGES.TxnResponse.decode(nested(200, 0x1a)), /nested deeper than/);
  });

  it('decodes bytes as views of the input (no copy)', () => {
    const bytes = put();
    const decoded = KV_MESSAGES.PutRequest.decode(bytes);
    assert.equal(decoded.key.buffer, bytes.buffer);
    assert.ok(Buffer.isBuffer(decoded.value));
    // A plain Uint8Array input decodes too, to Buffers.
    const plain = new Uint8Array(bytes);
    assert.ok(Buffer.isBuffer(KV_MESSAGES.PutRequest.decode(plain).key));
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

// ---- seeded random messages ----

type Random = () => number;

/** Random messages in protobufjs's input form (int64 as decimal strings); every field present
 * holds a non-default value, so protobufjs's bytes are canonical and ours must equal them. */
class MessageGenerator {
  constructor(private readonly random: Random) {}

  private int(max: number): number {
    return Math.floor(this.random() * max);
  }

  private chance(): boolean {
    return this.random() < 0.5;
  }

  private bytes(): Buffer {
    const out = Buffer.alloc(1 + this.int(12));
    for (let i = 0; i < out.length; i++) out[i] = this.int(256);
    return out;
  }

  /** A non-zero int64 across every varint length, both signs, and both sides of 2^53. */
  private int64(): string {
    const magnitude = BigInt(1 + this.int(1000)) << BigInt(this.int(63));
    const value = BigInt.asIntN(64, this.chance() ? magnitude : -magnitude);
    return String(value === 0n ? 1n : value);
  }

  private uint64(): string {
    const value = BigInt.asUintN(64, (BigInt(1 + this.int(1000)) << BigInt(this.int(64))) | 1n);
    return String(value);
  }

  /** Includes each field with probability 1/2. */
  private some(fields: Record<string, () => unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [name, make] of Object.entries(fields)) if (this.chance()) out[name] = make();
    return out;
  }

  private list<T>(make: () => T, max = 3): T[] {
    return Array.from({ length: this.int(max + 1) }, make);
  }

  header = () => this.some({ cluster_id: () => this.uint64(), member_id: () => this.uint64(), revision: () => this.int64(), raft_term: () => this.uint64() });

  keyValue = () =>
    this.some({
      key: () => this.bytes(),
      create_revision: () => this.int64(),
      mod_revision: () => this.int64(),
      version: () => this.int64(),
      value: () => this.bytes(),
      lease: () => this.int64(),
    });

  rangeRequest = () =>
    this.some({
      key: () => this.bytes(),
      range_end: () => this.bytes(),
      limit: () => this.int64(),
      revision: () => this.int64(),
      sort_order: () => 1 + this.int(2),
      sort_target: () => 1 + this.int(4),
      serializable: () => true,
      keys_only: () => true,
      count_only: () => true,
      min_mod_revision: () => this.int64(),
      max_mod_revision: () => this.int64(),
      min_create_revision: () => this.int64(),
      max_create_revision: () => this.int64(),
    });

  putRequest = () =>
    this.some({
      key: () => this.bytes(),
      value: () => this.bytes(),
      lease: () => this.int64(),
      prev_kv: () => true,
      ignore_value: () => true,
      ignore_lease: () => true,
    });

  deleteRangeRequest = () => this.some({ key: () => this.bytes(), range_end: () => this.bytes(), prev_kv: () => true });

  compare = () => {
    const compare = this.some({ result: () => 1 + this.int(3), target: () => 1 + this.int(4), key: () => this.bytes(), range_end: () => this.bytes() });
    // A oneof member may hold its zero value: it is written all the same.
    const member = this.int(6);
    if (member === 0) compare['version'] = this.chance() ? '0' : this.int64();
    if (member === 1) compare['create_revision'] = this.int64();
    if (member === 2) compare['mod_revision'] = this.int64();
    if (member === 3) compare['value'] = this.chance() ? Buffer.alloc(0) : this.bytes();
    if (member === 4) compare['lease'] = this.int64();
    return compare;
  };

  requestOp = (depth: number): Record<string, unknown> => {
    switch (this.int(depth >= 2 ? 4 : 5)) {
      case 0: return { request_range: this.rangeRequest() };
      case 1: return { request_put: this.putRequest() };
      case 2: return { request_delete_range: this.deleteRangeRequest() };
      case 3: return {};
      default: return { request_txn: this.txnRequest(depth + 1) };
    }
  };

  txnRequest = (depth = 0) => ({
    compare: this.list(this.compare),
    success: this.list(() => this.requestOp(depth)),
    failure: this.list(() => this.requestOp(depth)),
  });

  rangeResponse = () => ({ ...this.some({ header: this.header, more: () => true, count: () => this.int64() }), kvs: this.list(this.keyValue) });
  putResponse = () => this.some({ header: this.header, prev_kv: this.keyValue });
  deleteRangeResponse = () => ({ ...this.some({ header: this.header, deleted: () => this.int64() }), prev_kvs: this.list(this.keyValue) });

  responseOp = (depth: number): Record<string, unknown> => {
    switch (this.int(depth >= 2 ? 4 : 5)) {
      case 0: return { response_range: this.rangeResponse() };
      case 1: return { response_put: this.putResponse() };
      case 2: return { response_delete_range: this.deleteRangeResponse() };
      case 3: return {};
      default: return { response_txn: this.txnResponse(depth + 1) };
    }
  };

  txnResponse = (depth = 0) => ({ ...this.some({ header: this.header, succeeded: () => true }), responses: this.list(() => this.responseOp(depth)) });
  compactionRequest = () => this.some({ revision: () => this.int64(), physical: () => true });
  compactionResponse = () => this.some({ header: this.header });

  /** The same message with each int64 string in another accepted form: number, bigint or Long. */
  otherForms(value: unknown): unknown {
    if (typeof value === 'string') {
      const big = BigInt(value);
      const form = this.int(4);
      if (form === 0 && Number.isSafeInteger(Number(big))) return Number(big);
      if (form === 1) return big;
      if (form === 2) return { low: Number(BigInt.asIntN(32, big)), high: Number(BigInt.asIntN(32, big >> 32n)), unsigned: big > 0n };
      return value;
    }
    if (Buffer.isBuffer(value) || value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map((v) => this.otherForms(v));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.otherForms(v)]));
  }
}

describe('KV codec: seeded random messages', () => {
  it('matches protobufjs byte for byte and value for value over 2,000 random messages', () => {
    const seed = 0x5eed;
    const gen = new MessageGenerator(seededRandom(seed));
    const makers: Record<string, () => object> = {
      RangeRequest: gen.rangeRequest,
      RangeResponse: gen.rangeResponse,
      PutRequest: gen.putRequest,
      PutResponse: gen.putResponse,
      DeleteRangeRequest: gen.deleteRangeRequest,
      DeleteRangeResponse: gen.deleteRangeResponse,
      TxnRequest: () => gen.txnRequest(),
      TxnResponse: () => gen.txnResponse(),
      CompactionRequest: gen.compactionRequest,
      CompactionResponse: gen.compactionResponse,
    };
    for (let i = 0; i < 200; i++) {
      for (const [name, make] of Object.entries(makers)) {
        const message = make();
        const { codec } = caseOf(name);
        try {
          crossCheck(name, message, { canonical: true });
          // Any accepted int64 form encodes to the same bytes.
          assert.deepEqual(codec.encode(gen.otherForms(message) as object), codec.encode(message));
        } catch (error) {
          assert.fail(`seed ${seed}, round ${i}, ${name}: ${(error as Error).message}`);
        }
      }
    }
  });
});

describe('withFastKvCodec', () => {
  it('swaps all four (de)serializers of every KV method and leaves proto-loader’s definition alone', () => {
    const original = serviceDefinition('etcdserverpb.KV');
    const originalPut = original['Put']!.requestDeserialize;
    const fast = withFastKvCodec(original);
    assert.deepEqual(Object.keys(fast).sort(), ['Compact', 'DeleteRange', 'Put', 'Range', 'Txn']);
    assert.equal(fast['Put']!.requestDeserialize, KV_MESSAGES.PutRequest.decode);
    assert.equal(fast['Put']!.responseSerialize, KV_MESSAGES.PutResponse.encode);
    assert.equal(fast['Txn']!.requestSerialize, KV_MESSAGES.TxnRequest.encode);
    assert.equal(fast['Compact']!.responseDeserialize, KV_MESSAGES.CompactionResponse.decode);
    assert.equal(fast['Range']!.path, '/etcdserverpb.KV/Range');
    assert.equal(original['Put']!.requestDeserialize, originalPut);
    assert.throws(() => withFastKvCodec(serviceDefinition('etcdserverpb.Lease')), /unexpected method/);
  });
});

describe('Lease keep-alive codec (withFastLeaseKeepAliveCodec)', () => {
  const lease = serviceDefinition('etcdserverpb.Lease');
  const keepAlive = lease['LeaseKeepAlive']!;

  it('writes requests and responses byte for byte as protobufjs does, and reads them back as numbers', () => {
    const messages: [MessageCodec<any>, (x: object) => Buffer, (b: Buffer) => unknown, object][] = [
      [KV_MESSAGES.LeaseKeepAliveRequest, keepAlive.requestSerialize, keepAlive.requestDeserialize, { ID: '7587883286331711493' }],
      [KV_MESSAGES.LeaseKeepAliveRequest, keepAlive.requestSerialize, keepAlive.requestDeserialize, { ID: '-5' }],
      [KV_MESSAGES.LeaseKeepAliveResponse, keepAlive.responseSerialize, keepAlive.responseDeserialize, { header, ID: '4503599627370495', TTL: '300' }],
      // TTL 0 (a lease not found): proto3 leaves a default out, protobufjs writes it; same values.
      [KV_MESSAGES.LeaseKeepAliveResponse, keepAlive.responseSerialize, keepAlive.responseDeserialize, { header, ID: '12', TTL: '0' }],
    ];
    for (const [codec, encode, decode, message] of messages) {
      const theirs = encode(message);
      const ours = codec.encode(message);
      if (!Object.values(message).includes('0')) assert.equal(ours.toString('hex'), theirs.toString('hex'));
      assert.deepEqual(normalize(decode(ours)), normalize(decode(theirs)));
      const decoded = codec.decode(theirs);
      assert.deepEqual(normalize(decoded), normalize(decode(theirs)));
      assertInt64Shapes(decoded);
    }
    assert.deepEqual(KV_MESSAGES.LeaseKeepAliveResponse.decode(Buffer.alloc(0)), { header: null, ID: 0, TTL: 0 });
  });

  it('swaps LeaseKeepAlive\'s four (de)serializers only, and serves them', () => {
    const fast = withFastLeaseKeepAliveCodec(lease);
    assert.deepEqual(Object.keys(fast).sort(), Object.keys(lease).sort());
    assert.equal(fast['LeaseKeepAlive']!.requestDeserialize, KV_MESSAGES.LeaseKeepAliveRequest.decode);
    assert.equal(fast['LeaseKeepAlive']!.responseSerialize, KV_MESSAGES.LeaseKeepAliveResponse.encode);
    assert.equal(fast['LeaseKeepAlive']!.path, '/etcdserverpb.Lease/LeaseKeepAlive');
    assert.equal(fast['LeaseGrant'], lease['LeaseGrant']);
    assert.equal(keepAlive.requestDeserialize, lease['LeaseKeepAlive']!.requestDeserialize, 'proto-loader\'s definition is left alone');
    assert.equal(servedServiceDefinition('etcdserverpb.Lease')['LeaseKeepAlive']!.requestDeserialize, KV_MESSAGES.LeaseKeepAliveRequest.decode);
  });
});

describe('Watch responses: each watcher\'s own bytes, then events encoded once (WATCH_RESPONSE)', () => {
  const watchDefinition = etcdPackageDefinition()['etcdserverpb.Watch'] as unknown as ServiceDefinition;
  const method = watchDefinition['Watch']!;
  const served = servedServiceDefinition('etcdserverpb.Watch')['Watch']! as ServiceDefinition[string] & { responseSerializeFramed(m: unknown): Buffer | readonly Buffer[] };
  /** An object holding only the fields that are not their default: protobufjs writes every field an object holds. */
  const withoutDefaults = (m: Record<string, unknown>): Record<string, unknown> =>
    Object.fromEntries(
      Object.entries(m)
        .filter(([, v]) => v !== null && v !== 0 && v !== '0' && !(v instanceof Uint8Array && v.length === 0))
        .map(([k, v]) => [k, v !== null && typeof v === 'object' && !(v instanceof Uint8Array) ? withoutDefaults(v as Record<string, unknown>) : v]),
    );
  const kv = (key: string, mod: number, rest: object = {}) => ({ key: Buffer.from(key), create_revision: 2, mod_revision: mod, version: 3, value: Buffer.from(`v${mod}`), lease: 0, ...rest });
  const events = [
    { type: 0, kv: kv('a', 5), prev_kv: null },
    // A delete with its prevKv (the watcher asked for it).
    { type: 1, kv: kv('b', 6, { create_revision: 0, version: 0, value: Buffer.alloc(0) }), prev_kv: kv('b', 4, { lease: 7 }) },
    { type: 0, kv: kv('c', 7, { value: Buffer.alloc(300, 0x78), lease: 2 ** 40 }), prev_kv: null },
    // Revisions above 2^32 (and their varints above 5 bytes).
    { type: 0, kv: kv('d', 2 ** 33 + 5, { create_revision: 2 ** 32 + 1, version: 2 ** 35 }), prev_kv: kv('d', 2 ** 32 + 1) },
  ];
  const header = { cluster_id: '17', member_id: '9', revision: 7, raft_term: 2 };
  const framedBody = (m: unknown): Buffer => {
    const framed = served.responseSerializeFramed(m);
    const pieces = Buffer.isBuffer(framed) ? [framed] : framed;
    return Buffer.concat(pieces).subarray(5);
  };
  const encodedEvents = (list: typeof events) => EncodedWatchEvents.encode(list.map((e) => KV_MESSAGES.Event.encode(e)));

  it('a response with events is the bytes protobufjs writes for it (events without their default fields)', () => {
    const cases = [[events[0]!], [events[1]!], [events[2]!], [events[3]!], events];
    for (const list of cases) {
      for (const h of [header, { cluster_id: 0x1234_5678_9abc, member_id: '18446744073709551615', revision: 2 ** 40 + 3, raft_term: 7 }]) {
        const reference = method.responseSerialize({ header: h, watch_id: 42, events: list.map(withoutDefaults) });
        const response = { header: h, watch_id: 42, events: encodedEvents(list) };
        assert.deepEqual(served.responseSerialize(response), reference);
        assert.deepEqual(framedBody(response), reference);
        // What the client decodes is what protobufjs makes of the events as they are, defaults and all.
        assert.deepEqual(method.responseDeserialize(reference), method.responseDeserialize(method.responseSerialize({ header: h, watch_id: 42, events: list })));
      }
    }
  });

  it('a part of an encoded list from any event on is that suffix\'s encoding, as a view of the same bytes', () => {
    const whole = encodedEvents(events);
    for (let first = 0; first <= events.length; first++) {
      const part = whole.from(first);
      assert.deepEqual(part.bytes, encodedEvents(events.slice(first)).bytes);
      assert.equal(part.bytes.buffer, whole.bytes.buffer, 'not copied');
      assert.deepEqual(served.responseSerialize({ header, watch_id: 4, events: part }), method.responseSerialize({ header, watch_id: 4, events: events.slice(first).map(withoutDefaults) }));
    }
    assert.throws(() => whole.from(1).from(1), RangeError);
  });

  it('the framed form is the watcher\'s own bytes after room for the gRPC prefix, then the shared events as they are', () => {
    const shared = encodedEvents(events);
    const framed = served.responseSerializeFramed({ header, watch_id: 1, events: shared }) as readonly Buffer[];
    assert.equal(framed.length, 2);
    assert.equal(framed[1], shared.bytes, 'the events are not copied');
    const other = served.responseSerializeFramed({ header, watch_id: 2, events: shared }) as readonly Buffer[];
    assert.equal(other[1], shared.bytes);
    assert.notEqual(other[0], framed[0]);
  });

  it('responses without events are protobufjs\'s bytes exactly: created, canceled, compacted, refused, progress, zero fields included', () => {
    const big = { cluster_id: '18446744073709551615', member_id: 0x2345_6789_abcd, revision: 2 ** 32 + 17, raft_term: 2 ** 33 };
    const responses: Record<string, unknown>[] = [
      { header, watch_id: 3, created: true },
      { header, watch_id: 0, created: true },
      { header: big, watch_id: 5, created: true },
      { header, watch_id: 3, canceled: true },
      { header: { ...header, revision: 0 }, watch_id: 4, canceled: true, compact_revision: 2 ** 32 + 9 },
      { header, watch_id: -1, created: true, canceled: true, cancel_reason: 'mvcc: duplicate watch ID provided on the WatchStream' },
      { header, watch_id: -1, created: true, canceled: true, cancel_reason: 'rpc error: code = PermissionDenied desc = etcdserver: permission denied ☃' },
      { header, watch_id: 7, canceled: true, cancel_reason: '' },
      { header, watch_id: -1 },
      { header: big, watch_id: 9 },
      { header: { cluster_id: 0, member_id: 0, revision: 0, raft_term: 0 }, watch_id: 0, created: false, canceled: false, compact_revision: 0, fragment: false },
      { header, watch_id: 1, fragment: true },
      {},
    ];
    for (const response of responses) {
      const reference = method.responseSerialize(response);
      assert.deepEqual(served.responseSerialize(response), reference, JSON.stringify(response));
      assert.deepEqual(framedBody(response), reference, JSON.stringify(response));
    }
  });

  it('a value it cannot encode is an error naming the message', () => {
    assert.throws(() => served.responseSerialize({ header, watch_id: 1.5 }), /cannot encode etcdserverpb.WatchResponse/);
    assert.throws(() => served.responseSerialize({ header: { ...header, revision: 'x' }, watch_id: 1 }), /cannot encode etcdserverpb.WatchResponse/);
  });
});

describe('Range responses encoded as the store reads them (RangeResponseWriter)', () => {
  const header = { cluster_id: 0x1234_5678_9abc, member_id: '18446744073709551615', revision: 2 ** 40 + 3, raft_term: 7 };
  /** A stored-record-like buffer: some bytes, then the key, then the value to the end (as the store hands them over). */
  /** A record's bytes as the store hands them over: other bytes before the key and after the value (a cache slab). */
  const record = (key: Uint8Array, value: Uint8Array): { bytes: Uint8Array; keyStart: number; keyEnd: number; valueEnd: number } => {
    const lead = 3;
    const trail = 5;
    const bytes = new Uint8Array(lead + key.length + value.length + trail).fill(0xee);
    bytes.set(key, lead);
    bytes.set(value, lead + key.length);
    return { bytes, keyStart: lead, keyEnd: lead + key.length, valueEnd: lead + key.length + value.length };
  };
  const kvs: KeyValue[] = [
    { key: Buffer.from('a'), createRevision: 2, modRevision: 2, version: 1, value: Buffer.from('one'), lease: 0 },
    { key: Buffer.from('empty-value'), createRevision: 3, modRevision: 9, version: 4, value: new Uint8Array(0), lease: 0x7fff_ffff_ffff },
    { key: Buffer.from('k'.repeat(300)), createRevision: 2 ** 33, modRevision: 2 ** 53 - 1, version: 128, value: Buffer.alloc(70_000, 7), lease: 1 },
    { key: Buffer.from('short'), createRevision: 0, modRevision: 5, version: 0, value: Buffer.from('0123456789abcdefg'), lease: 0 },
  ];
  const wire = (kv: KeyValue) => ({ key: kv.key, create_revision: kv.createRevision, mod_revision: kv.modRevision, version: kv.version, value: kv.value, lease: kv.lease });

  it('writes the bytes the generic encoder writes, from records and from key-values, framed for gRPC', () => {
    // Many small key-values too: the response then spans several pieces.
    const many = Array.from({ length: 3_000 }, (_, i): KeyValue => ({ key: Buffer.from(`key/${i}`), createRevision: i + 2, modRevision: i + 2, version: 1, value: Buffer.alloc(i % 50, i % 256), lease: i % 3 }));
    for (const list of [[], kvs.slice(0, 1), kvs, many, [...many.slice(0, 10), ...kvs]]) {
      for (const [more, count] of [[false, 0], [true, list.length + 5], [false, 2 ** 40]] as const) {
        const expected = KV_MESSAGES.RangeResponse.encode({ header, kvs: list.map(wire), more, count });
        const fromRecords = new RangeResponseWriter();
        for (const kv of list) {
          const r = record(kv.key, kv.value);
          fromRecords.add(r.bytes, r.keyStart, r.keyEnd, r.valueEnd, kv.createRevision, kv.modRevision, kv.version, kv.lease);
        }
        const fromObjects = new RangeResponseWriter();
        for (const kv of list) fromObjects.addKeyValue(kv);
        for (const message of [fromRecords.finish(header, more, count), fromObjects.finish(header, more, count)]) {
          assert.deepEqual(message.body, expected);
          const framed = Buffer.concat(message.framed);
          assert.equal(framed.length, expected.length + 5);
          assert.deepEqual(framed.subarray(5), expected);
          if (list.length >= 3_000) assert.ok(message.framed.length > 1, 'a large response comes in pieces');
          // The served serializers pass an encoded message through as it is.
          assert.deepEqual(KV_MESSAGES.RangeResponse.encode(message), expected);
          assert.equal(KV_MESSAGES.RangeResponse.encodeFramed(message), message.framed);
          const decoded = reference('Range', 'response').decode(message.body) as { kvs: unknown[]; count: string; more: boolean };
          assert.equal(decoded.kvs.length, list.length);
          assert.equal(decoded.more, more);
        }
      }
    }
  });

  it('a header of any size fits in front of the key-values', () => {
    for (const h of [{}, { revision: 1 }, header, { cluster_id: '18446744073709551615', member_id: '18446744073709551615', revision: -1, raft_term: '18446744073709551615' }]) {
      const writer = new RangeResponseWriter();
      writer.addKeyValue(kvs[0]!);
      assert.deepEqual(writer.finish(h, false, 1).body, KV_MESSAGES.RangeResponse.encode({ header: h, kvs: [wire(kvs[0]!)], more: false, count: 1 }));
    }
  });

  it('refuses a revision, version or lease that is not a non-negative safe integer', () => {
    for (const bad of [-1, 2 ** 53, 1.5]) {
      assert.throws(() => new RangeResponseWriter().addKeyValue({ ...kvs[0]!, lease: bad }), /RangeResponse/);
      assert.throws(() => new RangeResponseWriter().addKeyValue({ ...kvs[0]!, modRevision: bad }), /RangeResponse/);
    }
  });

  it('the encodeFramed of every KV codec leaves room for the prefix before the bytes encode writes', () => {
    const message = { header, prev_kv: wire(kvs[1]!) };
    const framed = KV_MESSAGES.PutResponse.encodeFramed(message);
    assert.ok(Buffer.isBuffer(framed));
    assert.deepEqual(framed.subarray(5), KV_MESSAGES.PutResponse.encode(message));
  });
});
