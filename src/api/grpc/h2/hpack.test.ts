import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import {
  encodeHeaders,
  HpackDecoder,
  HpackError,
  huffmanCodeOf,
  huffmanDecode,
} from './hpack.js';
import { grpcHeaderListBytesMax } from '../../../limits.js';

type Fields = Array<[string, string]>;

/** Bytes from the RFC's hex dumps, typed as printed (spaces and line breaks ignored). */
function hex(dump: string): Buffer {
  return Buffer.from(dump.replace(/\s+/g, ''), 'hex');
}

/** An HPACK integer, for hand-built blocks (RFC 7541 §5.1). */
function integer(flags: number, prefixBits: number, value: number): number[] {
  const prefixMax = 2 ** prefixBits - 1;
  if (value < prefixMax) return [flags | value];
  const bytes = [flags | prefixMax];
  let rest = value - prefixMax;
  for (; rest >= 128; rest = Math.floor(rest / 128)) bytes.push((rest % 128) | 0x80);
  bytes.push(rest);
  return bytes;
}

/** Huffman-encodes bytes with the codes the module derives, padding with ones (RFC 7541 §5.2). */
function huffmanEncode(bytes: Buffer): Buffer {
  let bits = '';
  for (const byte of bytes) {
    const [code, length] = huffmanCodeOf(byte);
    bits += code.toString(2).padStart(length, '0');
  }
  bits += '1'.repeat((8 - (bits.length % 8)) % 8);
  const out = Buffer.alloc(bits.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return out;
}

function assertHpackError(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => error instanceof HpackError && message.test(error.message));
}

describe('HPACK Huffman code', () => {
  it('derives the canonical codes of RFC 7541 Appendix B from the code lengths', () => {
    assert.deepEqual(huffmanCodeOf(0), [0x1ff8, 13]);
    assert.deepEqual(huffmanCodeOf(1), [0x7fffd8, 23]);
    assert.deepEqual(huffmanCodeOf(48), [0x0, 5]); // '0'
    assert.deepEqual(huffmanCodeOf(97), [0x3, 5]); // 'a'
    assert.deepEqual(huffmanCodeOf(47), [0x18, 6]); // '/', the RFC's worked example
    assert.deepEqual(huffmanCodeOf(255), [0x3ffffee, 26]);
    assert.deepEqual(huffmanCodeOf(256), [0x3fffffff, 30]); // EOS
  });

  it('decodes the strings of RFC 7541 C.4 and C.6', () => {
    assert.equal(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')), 'www.example.com');
    assert.equal(huffmanDecode(hex('a8eb 1064 9cbf')), 'no-cache');
    assert.equal(huffmanDecode(hex('25a8 49e9 5ba9 7d7f')), 'custom-key');
    assert.equal(huffmanDecode(hex('25a8 49e9 5bb8 e8b4 bf')), 'custom-value');
    assert.equal(huffmanDecode(hex('6402')), '302');
    assert.equal(huffmanDecode(hex('aec3 771a 4b')), 'private');
    assert.equal(huffmanDecode(hex('9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3')), 'https://www.example.com');
    assert.equal(huffmanDecode(Buffer.alloc(0)), '');
  });

  it('decodes every byte value, one at a time and all together', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    for (const byte of all) {
      assert.equal(huffmanDecode(huffmanEncode(Buffer.from([byte]))), String.fromCharCode(byte));
    }
    assert.equal(huffmanDecode(huffmanEncode(all)), all.toString('latin1'));
  });

  it('rejects EOS inside the data', () => {
    // 30 ones are EOS; the last 2 ones would be valid padding.
    assertHpackError(() => huffmanDecode(hex('ffff ffff')), /EOS/);
    // 'a' (00011), then EOS, then padding.
    assertHpackError(() => huffmanDecode(hex('1fff ffff ff')), /EOS/);
  });

  it('rejects padding longer than 7 bits or not made of ones', () => {
    assert.equal(huffmanDecode(hex('1f')), 'a'); // 00011 + 111
    assertHpackError(() => huffmanDecode(hex('ff')), /padding/); // 8 bits of padding
    assertHpackError(() => huffmanDecode(hex('1fff')), /padding/); // 'a' + 11 ones
    assertHpackError(() => huffmanDecode(hex('18')), /padding/); // 00011 + 000
    assertHpackError(() => huffmanDecode(hex('1e')), /padding/); // 00011 + 110
  });
});

describe('HpackDecoder on RFC 7541 Appendix C', () => {
  it('C.2.1 literal field with indexing adds to the dynamic table', () => {
    const decoder = new HpackDecoder();
    const block = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
    assert.deepEqual(decoder.decode(block), [['custom-key', 'custom-header']]);
    assert.deepEqual(decoder.dynamicTable(), [['custom-key', 'custom-header']]);
    assert.equal(decoder.dynamicTableBytes, 55);
  });

  it('C.2.2 literal field without indexing leaves the table empty', () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex('040c 2f73 616d 706c 652f 7061 7468')), [[':path', '/sample/path']]);
    assert.deepEqual(decoder.dynamicTable(), []);
  });

  it('C.2.3 literal field never indexed leaves the table empty', () => {
    const decoder = new HpackDecoder();
    const block = hex('1008 7061 7373 776f 7264 0673 6563 7265 74');
    assert.deepEqual(decoder.decode(block), [['password', 'secret']]);
    assert.deepEqual(decoder.dynamicTable(), []);
  });

  it('C.2.4 indexed field from the static table', () => {
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(hex('82')), [[':method', 'GET']]);
    assert.deepEqual(decoder.dynamicTable(), []);
  });

  // C.3 and C.4 encode the same three requests, without and with Huffman coding.
  const REQUESTS: Array<{ fields: Fields; table: Fields; tableBytes: number }> = [
    {
      fields: [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
      table: [[':authority', 'www.example.com']],
      tableBytes: 57,
    },
    {
      fields: [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/'],
        [':authority', 'www.example.com'],
        ['cache-control', 'no-cache'],
      ],
      table: [['cache-control', 'no-cache'], [':authority', 'www.example.com']],
      tableBytes: 110,
    },
    {
      fields: [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ],
      table: [['custom-key', 'custom-value'], ['cache-control', 'no-cache'], [':authority', 'www.example.com']],
      tableBytes: 164,
    },
  ];

  function assertSequence(decoder: HpackDecoder, blocks: Buffer[], expected: typeof REQUESTS): void {
    blocks.forEach((block, i) => {
      assert.deepEqual(decoder.decode(block), expected[i]!.fields, `header list ${i + 1}`);
      assert.deepEqual(decoder.dynamicTable(), expected[i]!.table, `dynamic table after ${i + 1}`);
      assert.equal(decoder.dynamicTableBytes, expected[i]!.tableBytes, `table size after ${i + 1}`);
    });
  }

  it('C.3 requests without Huffman coding, on one connection', () => {
    assertSequence(
      new HpackDecoder(),
      [
        hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d'),
        hex('8286 84be 5808 6e6f 2d63 6163 6865'),
        hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'),
      ],
      REQUESTS,
    );
  });

  it('C.4 requests with Huffman coding, on one connection', () => {
    assertSequence(
      new HpackDecoder(),
      [
        hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff'),
        hex('8286 84be 5886 a8eb 1064 9cbf'),
        hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'),
      ],
      REQUESTS,
    );
  });

  // C.5 and C.6 encode the same three responses with a 256-byte table, so entries get evicted.
  const DATE_21 = 'Mon, 21 Oct 2013 20:13:21 GMT';
  const DATE_22 = 'Mon, 21 Oct 2013 20:13:22 GMT';
  const LOCATION = 'https://www.example.com';
  const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
  const RESPONSES: typeof REQUESTS = [
    {
      fields: [[':status', '302'], ['cache-control', 'private'], ['date', DATE_21], ['location', LOCATION]],
      table: [['location', LOCATION], ['date', DATE_21], ['cache-control', 'private'], [':status', '302']],
      tableBytes: 222,
    },
    {
      fields: [[':status', '307'], ['cache-control', 'private'], ['date', DATE_21], ['location', LOCATION]],
      table: [[':status', '307'], ['location', LOCATION], ['date', DATE_21], ['cache-control', 'private']],
      tableBytes: 222,
    },
    {
      fields: [
        [':status', '200'],
        ['cache-control', 'private'],
        ['date', DATE_22],
        ['location', LOCATION],
        ['content-encoding', 'gzip'],
        ['set-cookie', COOKIE],
      ],
      table: [['set-cookie', COOKIE], ['content-encoding', 'gzip'], ['date', DATE_22]],
      tableBytes: 215,
    },
  ];

  it('C.5 responses without Huffman coding, with evictions', () => {
    assertSequence(
      new HpackDecoder(256),
      [
        hex(`4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d`),
        hex('4803 3330 37c1 c0bf'),
        hex(`88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31`),
      ],
      RESPONSES,
    );
  });

  it('C.6 responses with Huffman coding, with evictions', () => {
    assertSequence(
      new HpackDecoder(256),
      [
        hex(`4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`),
        hex('4883 640e ffc1 c0bf'),
        hex(`88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07`),
      ],
      RESPONSES,
    );
  });
});

describe('HpackDecoder rejects bad blocks', () => {
  it('rejects index 0', () => {
    assertHpackError(() => new HpackDecoder().decode(hex('80')), /index 0/);
    // A literal with incremental indexing whose name index is 0 has a literal name instead.
    assert.deepEqual(new HpackDecoder().decode(hex('4001 6101 62')), [['a', 'b']]);
  });

  it('rejects indexes past the static and dynamic tables', () => {
    assertHpackError(() => new HpackDecoder().decode(hex('be')), /index 62/);
    assertHpackError(() => new HpackDecoder().decode(hex('7e 0161')), /index 62/); // as a literal's name
    const decoder = new HpackDecoder();
    decoder.decode(hex('4001 6101 62'));
    assert.deepEqual(decoder.decode(hex('be')), [['a', 'b']]);
    assertHpackError(() => decoder.decode(hex('bf')), /index 63/);
  });

  it('rejects truncated integers', () => {
    assertHpackError(() => new HpackDecoder().decode(hex('ff')), /ends inside/);
    assertHpackError(() => new HpackDecoder().decode(hex('ff 80')), /ends inside/);
  });

  it('rejects integers of 2^31 or more, or with more than 5 continuation bytes', () => {
    const limit = 2 ** 31 - 1;
    assert.deepEqual(new HpackDecoder(limit).decode(Buffer.from(integer(0x20, 5, limit))), []);
    assertHpackError(() => new HpackDecoder(limit).decode(Buffer.from(integer(0x20, 5, 2 ** 31))), /2\^31/);
    assertHpackError(() => new HpackDecoder().decode(hex('ff ffff ffff 0f')), /2\^31/);
    // A size update of 31 padded with zero continuations is legal up to 5 continuation bytes.
    assert.deepEqual(new HpackDecoder().decode(hex('3f 80 80 80 80 00 82')), [[':method', 'GET']]);
    assertHpackError(() => new HpackDecoder().decode(hex('ff 80 80 80 80 80 00')), /continuation/);
  });

  it('rejects truncated string literals', () => {
    assertHpackError(() => new HpackDecoder().decode(hex('40')), /ends inside/);
    assertHpackError(() => new HpackDecoder().decode(hex('400a 6375')), /past the end/);
    assertHpackError(() => new HpackDecoder().decode(hex('4001 61')), /ends inside/); // no value
    assertHpackError(() => new HpackDecoder().decode(hex('0488 a8eb')), /past the end/); // Huffman
  });

  it('rejects Huffman errors inside a field', () => {
    assertHpackError(() => new HpackDecoder().decode(hex('0481 ff')), /padding/);
  });

  it('accepts table size updates up to our limit, only at the start of a block', () => {
    const decoder = new HpackDecoder(256);
    decoder.decode(hex('4001 6101 62'));
    assertHpackError(() => decoder.decode(Buffer.from(integer(0x20, 5, 257))), /exceeds our 256/);
    assertHpackError(() => new HpackDecoder(256).decode(hex('82 20')), /after a field/);

    const shrunk = new HpackDecoder(256);
    shrunk.decode(hex('4001 6101 62'));
    // Two updates in a row are allowed (RFC 7541 §4.2); to 0 evicts everything.
    assert.deepEqual(shrunk.decode(Buffer.from([...integer(0x20, 5, 256), 0x20, 0x82])), [[':method', 'GET']]);
    assert.deepEqual(shrunk.dynamicTable(), []);
    // The table now holds nothing: an entry is added and at once does not fit.
    shrunk.decode(hex('4001 6101 62'));
    assert.deepEqual(shrunk.dynamicTable(), []);
    shrunk.decode(Buffer.from(integer(0x20, 5, 200)));
    shrunk.decode(hex('4001 6101 62'));
    assert.deepEqual(shrunk.dynamicTable(), [['a', 'b']]);
  });

  it('empties the table for an entry larger than the whole table', () => {
    const decoder = new HpackDecoder(100);
    decoder.decode(hex('4001 6101 62'));
    assert.equal(decoder.dynamicTableBytes, 34);
    const big = 'x'.repeat(100 - 32); // 1 + 68 + 32 = 101 bytes
    decoder.decode(Buffer.from([0x40, 0x01, 0x79, ...integer(0, 7, big.length), ...Buffer.from(big)]));
    assert.deepEqual(decoder.dynamicTable(), []);
    assert.equal(decoder.dynamicTableBytes, 0);
  });

  it('keeps the RFC numbering through many insertions and evictions', () => {
    // A plain array model of §4.4, against the decoder's ring buffer as it grows and wraps.
    const decoder = new HpackDecoder(1000);
    const model: Fields = [];
    for (let i = 0; i < 300; i++) {
      const field: [string, string] = [`k${i % 7}`, 'v'.repeat(i % 50)];
      assert.deepEqual(decoder.decode(encodeIndexed(field)), [field]);
      model.unshift(field);
      const size = () => model.reduce((sum, [n, v]) => sum + n.length + v.length + 32, 0);
      while (size() > 1000) model.pop();
      assert.deepEqual(decoder.dynamicTable(), model, `after insertion ${i}`);
      const oldest = 61 + model.length;
      assert.deepEqual(decoder.decode(Buffer.from(integer(0x80, 7, oldest))), [model.at(-1)]);
    }
  });

  /** A literal field with incremental indexing and a literal name. */
  function encodeIndexed([name, value]: [string, string]): Buffer {
    const literal = (text: string) => [...integer(0, 7, text.length), ...Buffer.from(text, 'latin1')];
    return Buffer.from([0x40, ...literal(name), ...literal(value)]);
  }

  it(`rejects header lists over ${grpcHeaderListBytesMax} bytes (name + value + 32 per field)`, () => {
    const atLimit = 'v'.repeat(grpcHeaderListBytesMax - 1 - 32);
    assert.equal(new HpackDecoder().decode(encodeHeaders([['x', atLimit]]))[0]![1].length, atLimit.length);
    assertHpackError(() => new HpackDecoder().decode(encodeHeaders([['x', atLimit + 'v']])), /exceeds/);
    const many = Array.from({ length: 2048 }, (): [string, string] => [':method', 'GET']); // 2048 * 42
    assertHpackError(() => new HpackDecoder().decode(encodeHeaders(many)), /exceeds/);
  });
});

describe('encodeHeaders', () => {
  it('writes a full static match as one indexed byte', () => {
    assert.deepEqual(encodeHeaders([[':status', '200']]), Buffer.from([0x88]));
  });

  it('writes a static name as a 4-bit index and the value as a raw literal', () => {
    // content-type is index 31: 0x0f then 31 - 15 = 16.
    const expected = Buffer.concat([hex('0f10 10'), Buffer.from('application/grpc')]);
    assert.deepEqual(encodeHeaders([['content-type', 'application/grpc']]), expected);
  });

  it('round-trips through HpackDecoder without touching its dynamic table', () => {
    const headers: Fields = [
      [':status', '200'],
      [':status', '503'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '0'],
      ['grpc-message', 'a%20message'],
      ['x-empty', ''],
      ['x-long', 'z'.repeat(300)], // a length in two bytes
      ['x-latin1', 'caf\u00e9'],
      ['www-authenticate', ''], // the last static entry, as a full match
    ];
    const decoder = new HpackDecoder();
    assert.deepEqual(decoder.decode(encodeHeaders(headers)), headers);
    assert.deepEqual(decoder.decode(encodeHeaders(headers)), headers);
    assert.equal(decoder.dynamicTableBytes, 0);
    assert.deepEqual(encodeHeaders([]), Buffer.alloc(0));
  });
});

describe('HpackDecoder against node:http2 (nghttp2) as the encoder', () => {
  const FRAME_HEADER_BYTES = 9;
  const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const FRAME_HEADERS = 0x1;
  const FLAG_END_HEADERS = 0x4;
  const FLAG_PADDED = 0x8;
  const FLAG_PRIORITY = 0x20;

  /** The header block fragments of the HEADERS frames in `bytes` (after the preface), in order. */
  function headerBlocks(bytes: Buffer): Buffer[] {
    assert.deepEqual(bytes.subarray(0, CLIENT_PREFACE.length), CLIENT_PREFACE);
    const blocks: Buffer[] = [];
    let position = CLIENT_PREFACE.length;
    while (position + FRAME_HEADER_BYTES <= bytes.length) {
      const length = bytes.readUIntBE(position, 3);
      const type = bytes[position + 3]!;
      const flags = bytes[position + 4]!;
      const payloadStart = position + FRAME_HEADER_BYTES;
      if (payloadStart + length > bytes.length) break; // a frame still arriving
      if (type === FRAME_HEADERS) {
        assert.ok(flags & FLAG_END_HEADERS, 'small header blocks need no CONTINUATION');
        blocks.push(headersFramePayload(bytes.subarray(payloadStart, payloadStart + length), flags));
      }
      position = payloadStart + length;
    }
    return blocks;
  }

  function headersFramePayload(payload: Buffer, flags: number): Buffer {
    let start = 0;
    let end = payload.length;
    if (flags & FLAG_PADDED) {
      end -= payload[0]!;
      start += 1;
    }
    if (flags & FLAG_PRIORITY) start += 5;
    return payload.subarray(start, end);
  }

  it('decodes two requests that share nghttp2 dynamic table entries', async () => {
    const received: Buffer[] = [];
    let blocks: Buffer[] = [];
    let serverSocket: net.Socket | undefined;
    let gotTwoBlocks!: () => void;
    const twoBlocks = new Promise<void>((resolve) => (gotTwoBlocks = resolve));
    const server = net.createServer((socket) => {
      serverSocket = socket;
      socket.write(Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0])); // our (empty) SETTINGS
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        blocks = headerBlocks(Buffer.concat(received));
        if (blocks.length >= 2) gotTwoBlocks();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;

    const client = http2.connect(`http://127.0.0.1:${port}`);
    // Closing the session below cancels the two requests, which is expected here.
    client.on('error', () => {});
    const longValue = 'token-' + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(8);
    const request = {
      ':method': 'POST',
      ':path': '/etcdserverpb.KV/Put',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-long': longValue,
    };
    for (let i = 0; i < 2; i++) client.request(request, { endStream: false }).on('error', () => {});
    try {
      await twoBlocks;
    } finally {
      client.destroy();
      serverSocket?.destroy();
      server.close();
    }

    const expected: Fields = [
      [':method', 'POST'],
      [':authority', `127.0.0.1:${port}`],
      [':scheme', 'http'],
      [':path', '/etcdserverpb.KV/Put'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['x-long', longValue],
    ];
    const decoder = new HpackDecoder();
    assert.deepEqual(sortFields(decoder.decode(blocks[0]!)), sortFields(expected));
    assert.ok(decoder.dynamicTable().some(([name]) => name === 'x-long'), 'nghttp2 indexed x-long');
    assert.deepEqual(sortFields(decoder.decode(blocks[1]!)), sortFields(expected));
    // The long value went out Huffman-coded (shorter than itself), then as a dynamic table index.
    assert.ok(blocks[0]!.length < longValue.length, `first block is ${blocks[0]!.length} bytes`);
    assert.ok(blocks[1]!.length < 32, `second block is ${blocks[1]!.length} bytes`);
  });

  function sortFields(fields: Fields): Fields {
    return [...fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
});
