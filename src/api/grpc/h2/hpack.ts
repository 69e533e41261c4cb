// HPACK (RFC 7541): the header compression of HTTP/2, for our own HTTP/2 server that serves gRPC.
//
// The two directions are deliberately unequal. Decoding must accept whatever a peer's encoder
// chooses (indexing, Huffman, table size updates), so HpackDecoder implements all of §6. Encoding
// is ours to choose: encodeHeaders writes literals that never enter the peer's dynamic table and
// never uses Huffman. A gRPC response's headers are a handful of short strings, so indexing would
// save a few bytes per call, and in exchange we would have to track the peer's table size setting.
//
// Strings are latin1 both ways (one char per byte, lossless): HTTP/2 field values are bytes, and
// the gRPC layer reads only ASCII headers.
import assert from 'node:assert';
import { grpcHeaderListBytesMax } from '../../../limits.js';

/** Any malformed header block. The connection answers it with COMPRESSION_ERROR (RFC 7540 §4.3). */
export class HpackError extends Error {
  override name = 'HpackError';
}


/** The fixed cost of a field in the dynamic table and in the header list size (RFC 7541 §4.1). */
const FIELD_OVERHEAD_BYTES = 32;

/** HPACK integers we accept: below 2^31, in at most 5 continuation bytes (35 bits, enough). */
const INTEGER_MAX = 2 ** 31 - 1;
const INTEGER_CONTINUATION_BYTES_MAX = 5;

// ---------------------------------------------------------------------------------------------
// Static table (RFC 7541 Appendix A)

/** Index i + 1 of the static table is STATIC_TABLE[i]. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** The first dynamic table index: dynamic entries are numbered right after the static ones. */
const FIRST_DYNAMIC_INDEX = STATIC_TABLE.length + 1;

/** For the encoder: a name's first static index, and the static index of each full field. */
interface StaticName {
  nameIndex: number;
  fieldIndexByValue: Map<string, number>;
}

const STATIC_NAMES = indexStaticTable();

function indexStaticTable(): Map<string, StaticName> {
  const names = new Map<string, StaticName>();
  STATIC_TABLE.forEach(([name, value], i) => {
    let entry = names.get(name);
    if (entry === undefined) {
      entry = { nameIndex: i + 1, fieldIndexByValue: new Map() };
      names.set(name, entry);
    }
    entry.fieldIndexByValue.set(value, i + 1);
  });
  return names;
}

// ---------------------------------------------------------------------------------------------
// Huffman code (RFC 7541 Appendix B)

const EOS = 256;

/**
 * The code length in bits of each symbol: bytes 0..255, then EOS. The code is canonical, so
 * these lengths alone determine every code (deriveCanonicalCodes), and 257 small numbers are
 * easier to check against the RFC than 257 codes.
 */
// prettier-ignore
const HUFFMAN_CODE_BITS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //   0..15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //  16..31
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6, //  32..47  ' ' .. '/'
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10, //  48..63  '0' .. '?'
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7, //  64..79  '@' .. 'O'
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6, //  80..95  'P' .. '_'
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5, //  96..111 '`' .. 'o'
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28, // 112..127 'p' .. DEL
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..255
  30,                                                             // EOS
];

/**
 * Canonical Huffman codes from their lengths: walk the symbols by (length, symbol), counting up
 * by one per symbol and appending a zero bit whenever the length grows.
 */
function deriveCanonicalCodes(bitsBySymbol: readonly number[]): Uint32Array {
  const symbols = bitsBySymbol.map((_, symbol) => symbol);
  symbols.sort((a, b) => bitsBySymbol[a]! - bitsBySymbol[b]! || a - b);
  const codes = new Uint32Array(bitsBySymbol.length);
  let code = 0;
  let bits = bitsBySymbol[symbols[0]!]!;
  for (const symbol of symbols) {
    const symbolBits = bitsBySymbol[symbol]!;
    code *= 2 ** (symbolBits - bits);
    bits = symbolBits;
    codes[symbol] = code;
    code += 1;
  }
  // A complete prefix code ends on the all-ones code of the longest length (EOS here).
  assert.equal(code, 2 ** bits, 'HPACK Huffman code lengths do not form a complete prefix code');
  return codes;
}

const HUFFMAN_CODES = deriveCanonicalCodes(HUFFMAN_CODE_BITS);

/** A symbol's Huffman code, right-aligned, and its length (exported for tests). */
export function huffmanCodeOf(symbol: number): readonly [code: number, bits: number] {
  assert(Number.isInteger(symbol) && symbol >= 0 && symbol <= EOS, `no Huffman symbol ${symbol}`);
  return [HUFFMAN_CODES[symbol]!, HUFFMAN_CODE_BITS[symbol]!];
}

// The decoder is a state machine fed 4 bits at a time. A state is an internal node of the code
// tree, that is, the bits read so far of a code not yet complete; state 0 is the root. No code is
// shorter than 5 bits, so one nibble completes at most one symbol, and a transition is a next state
// plus at most one output byte. 256 states x 16 nibbles, built once at module load.

const NIBBLE_EMITS_NOTHING = -1;
const NIBBLE_HITS_EOS = -2;

interface NibbleMachine {
  /** Indexed by state * 16 + nibble. */
  nextState: Uint8Array;
  /** Indexed by state * 16 + nibble: the byte completed, NIBBLE_EMITS_NOTHING, or NIBBLE_HITS_EOS. */
  emitted: Int16Array;
  /** Whether a string may end in this state: the pending bits are at most 7 ones (EOS's prefix). */
  mayEnd: Uint8Array;
}

/** The code tree as child arrays; a child >= 0 is an internal node, -(symbol + 1) a leaf. */
interface CodeTree {
  zeroChild: number[];
  oneChild: number[];
  depth: number[];
  allOnes: boolean[];
}

function buildCodeTree(): CodeTree {
  const tree: CodeTree = { zeroChild: [0], oneChild: [0], depth: [0], allOnes: [true] };
  for (let symbol = 0; symbol <= EOS; symbol++) {
    const bits = HUFFMAN_CODE_BITS[symbol]!;
    const code = HUFFMAN_CODES[symbol]!;
    let node = 0;
    for (let i = bits - 1; i > 0; i--) node = childOrNew(tree, node, (code >>> i) & 1);
    setChild(tree, node, code & 1, -(symbol + 1));
  }
  return tree;
}

function childOrNew(tree: CodeTree, node: number, bit: number): number {
  const existing = bit === 1 ? tree.oneChild[node]! : tree.zeroChild[node]!;
  if (existing > 0) return existing;
  assert.equal(existing, 0, 'HPACK Huffman code is not prefix-free');
  const created = tree.zeroChild.length;
  tree.zeroChild.push(0);
  tree.oneChild.push(0);
  tree.depth.push(tree.depth[node]! + 1);
  tree.allOnes.push(tree.allOnes[node]! && bit === 1);
  setChild(tree, node, bit, created);
  return created;
}

function setChild(tree: CodeTree, node: number, bit: number, child: number): void {
  if (bit === 1) tree.oneChild[node] = child;
  else tree.zeroChild[node] = child;
}

function buildNibbleMachine(): NibbleMachine {
  const tree = buildCodeTree();
  const states = tree.zeroChild.length;
  assert.equal(states, HUFFMAN_CODE_BITS.length - 1, 'a complete code has one node fewer than leaves');
  const machine: NibbleMachine = {
    nextState: new Uint8Array(states * 16),
    emitted: new Int16Array(states * 16),
    mayEnd: new Uint8Array(states),
  };
  for (let state = 0; state < states; state++) {
    machine.mayEnd[state] = tree.allOnes[state]! && tree.depth[state]! <= 7 ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      fillTransition(tree, machine, state, nibble);
    }
  }
  return machine;
}

function fillTransition(tree: CodeTree, machine: NibbleMachine, state: number, nibble: number): void {
  let node = state;
  let emitted = NIBBLE_EMITS_NOTHING;
  for (let i = 3; i >= 0; i--) {
    const child = (nibble >>> i) & 1 ? tree.oneChild[node]! : tree.zeroChild[node]!;
    if (child >= 0) {
      node = child;
      continue;
    }
    const symbol = -child - 1;
    if (symbol === EOS) {
      emitted = NIBBLE_HITS_EOS;
      break;
    }
    emitted = symbol;
    node = 0;
  }
  machine.nextState[state * 16 + nibble] = node;
  machine.emitted[state * 16 + nibble] = emitted;
}

const NIBBLE_MACHINE = buildNibbleMachine();

/** Reused output space for Huffman decoding, grown to the largest string seen. */
let huffmanScratch = Buffer.allocUnsafe(1024);

/**
 * Huffman-decodes a string literal (exported for tests). Throws HpackError on EOS in the data,
 * padding longer than 7 bits, or padding that is not the EOS prefix (all 1s).
 */
export function huffmanDecode(bytes: Buffer): string {
  return huffmanDecodeRange(bytes, 0, bytes.length);
}

function huffmanDecodeRange(source: Buffer, start: number, end: number): string {
  // Every code is at least 5 bits long, which bounds the output.
  const out = scratchOfAtLeast(Math.floor(((end - start) * 8) / 5));
  const { nextState, emitted, mayEnd } = NIBBLE_MACHINE;
  let state = 0;
  let length = 0;
  for (let i = start; i < end; i++) {
    const byte = source[i]!;
    let transition = state * 16 + (byte >>> 4);
    let symbol = emitted[transition]!;
    if (symbol >= 0) out[length++] = symbol;
    else if (symbol === NIBBLE_HITS_EOS) throw new HpackError('Huffman string contains EOS');
    state = nextState[transition]!;

    transition = state * 16 + (byte & 0x0f);
    symbol = emitted[transition]!;
    if (symbol >= 0) out[length++] = symbol;
    else if (symbol === NIBBLE_HITS_EOS) throw new HpackError('Huffman string contains EOS');
    state = nextState[transition]!;
  }
  if (mayEnd[state] !== 1) {
    throw new HpackError('Huffman padding is longer than 7 bits or not all ones');
  }
  return out.toString('latin1', 0, length);
}

function scratchOfAtLeast(bytes: number): Buffer {
  if (huffmanScratch.length < bytes) {
    huffmanScratch = Buffer.allocUnsafe(2 ** Math.ceil(Math.log2(bytes)));
  }
  return huffmanScratch;
}

// ---------------------------------------------------------------------------------------------
// Decoding (RFC 7541 §5, §6)

/** A cursor over one header block that reads the primitive types of §5. */
class BlockReader {
  position = 0;

  constructor(private readonly block: Buffer) {}

  atEnd(): boolean {
    return this.position >= this.block.length;
  }

  /** The current byte, unconsumed: its high bits say which representation follows. */
  peekByte(): number {
    return this.block[this.position]!;
  }

  /** An integer whose first `prefixBits` bits share a byte with flags (§5.1). */
  readInteger(prefixBits: number): number {
    const prefixMax = (1 << prefixBits) - 1;
    let value = this.readByte() & prefixMax;
    if (value < prefixMax) return value;
    let scale = 1;
    for (let i = 0; i < INTEGER_CONTINUATION_BYTES_MAX; i++) {
      const byte = this.readByte();
      value += (byte & 0x7f) * scale;
      if (value > INTEGER_MAX) throw new HpackError('integer is 2^31 or more');
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new HpackError(`integer has more than ${INTEGER_CONTINUATION_BYTES_MAX} continuation bytes`);
  }

  /** A string literal: H bit, 7-bit prefixed length, then the raw or Huffman-coded bytes (§5.2). */
  readString(): string {
    const huffman = (this.peekByteOrFail() & 0x80) !== 0;
    const length = this.readInteger(7);
    const start = this.position;
    if (length > this.block.length - start) {
      throw new HpackError('string literal runs past the end of the header block');
    }
    this.position += length;
    return huffman
      ? huffmanDecodeRange(this.block, start, this.position)
      : this.block.toString('latin1', start, this.position);
  }

  private readByte(): number {
    const byte = this.peekByteOrFail();
    this.position += 1;
    return byte;
  }

  private peekByteOrFail(): number {
    if (this.atEnd()) throw new HpackError('header block ends inside a field');
    return this.peekByte();
  }
}

/**
 * The dynamic table of §2.3.2 and §4: a FIFO of fields bounded in bytes. A ring buffer, because a
 * peer that indexes a changing field (grpc-go's grpc-timeout) makes every request add an entry
 * and, once the table is full, evict one; Array.shift would copy the whole table each time.
 */
class DynamicTable {
  /** Ring of entries; `count` of them from `oldest`, wrapping. Grows by doubling when full. */
  private ring: Array<readonly [string, string] | undefined> = new Array(16);
  private oldest = 0;
  private count = 0;
  private bytes = 0;

  constructor(private bytesMax: number) {}

  get size(): number {
    return this.bytes;
  }

  /** The entry `age` insertions old: 0 is the newest (index 62 in the RFC's numbering). */
  entry(age: number): readonly [string, string] | undefined {
    if (age >= this.count) return undefined;
    return this.ring[(this.oldest + this.count - 1 - age) % this.ring.length];
  }

  /** Adds a field as the newest entry, evicting the oldest ones to make room (§4.4). */
  insert(name: string, value: string): void {
    const bytes = entryBytes(name, value);
    // An entry larger than the whole table is not an error: it empties the table.
    this.evictUntil(Math.max(0, this.bytesMax - bytes));
    if (bytes > this.bytesMax) return;
    if (this.count === this.ring.length) this.grow();
    this.ring[(this.oldest + this.count) % this.ring.length] = [name, value];
    this.count += 1;
    this.bytes += bytes;
  }

  /** Applies a size update (§4.3): evicts until the table fits the new maximum. */
  resize(bytesMax: number): void {
    this.bytesMax = bytesMax;
    this.evictUntil(bytesMax);
  }

  private evictUntil(bytes: number): void {
    while (this.bytes > bytes) {
      const [name, value] = this.ring[this.oldest]!;
      this.ring[this.oldest] = undefined;
      this.oldest = (this.oldest + 1) % this.ring.length;
      this.count -= 1;
      this.bytes -= entryBytes(name, value);
    }
  }

  private grow(): void {
    const entries = Array.from({ length: this.count }, (_, age) => this.entry(this.count - 1 - age));
    this.ring = entries.concat(new Array(this.ring.length));
    this.oldest = 0;
  }
}

/** A field's size as the header list size and the dynamic table count it (RFC 7541 §4.1). */
export function entryBytes(name: string, value: string): number {
  return name.length + value.length + FIELD_OVERHEAD_BYTES;
}

/**
 * Decodes the header blocks of one direction of one connection. Keep one per connection and feed
 * it every block in the order received: the blocks share the dynamic table. After a decode throws,
 * the table may hold part of the failed block, so the connection must end (COMPRESSION_ERROR is a
 * connection error anyway).
 */
export class HpackDecoder {
  private readonly table: DynamicTable;

  /** @param tableBytesLimit the SETTINGS_HEADER_TABLE_SIZE we advertise (4096 unless we say) */
  constructor(private readonly tableBytesLimit = 4096) {
    assert(Number.isSafeInteger(tableBytesLimit) && tableBytesLimit >= 0, 'bad HPACK table size');
    this.table = new DynamicTable(tableBytesLimit);
  }

  /** Decodes one complete header block. Names are lower-case as sent. Throws HpackError on bad input. */
  decode(block: Buffer): Array<[name: string, value: string]> {
    const reader = new BlockReader(block);
    const fields: Array<[string, string]> = [];
    let listBytes = 0;
    while (!reader.atEnd()) {
      const first = reader.peekByte();
      if ((first & 0xe0) === 0x20) {
        // RFC 7541 §4.2 with RFC 9113 §4.3: size updates only open a block.
        if (fields.length > 0) throw new HpackError('dynamic table size update after a field');
        this.resizeTable(reader.readInteger(5));
        continue;
      }
      const field = this.readField(reader, first);
      listBytes += entryBytes(field[0], field[1]);
      if (listBytes > grpcHeaderListBytesMax) {
        throw new HpackError(`header list exceeds ${grpcHeaderListBytesMax} bytes`);
      }
      fields.push(field);
    }
    return fields;
  }

  /** The dynamic table, newest first as the RFC numbers it (for tests and debugging). */
  dynamicTable(): Array<[name: string, value: string]> {
    const entries: Array<[string, string]> = [];
    for (let age = 0, entry = this.table.entry(0); entry; entry = this.table.entry(++age)) {
      entries.push([entry[0], entry[1]]);
    }
    return entries;
  }

  /** The dynamic table's size as §4.1 counts it (for tests and debugging). */
  get dynamicTableBytes(): number {
    return this.table.size;
  }

  private readField(reader: BlockReader, first: number): [string, string] {
    if (first & 0x80) {
      const [name, value] = this.lookup(reader.readInteger(7));
      return [name, value];
    }
    if (first & 0x40) {
      const field = this.readLiteral(reader, 6);
      this.table.insert(field[0], field[1]);
      return field;
    }
    // 0000xxxx (without indexing) and 0001xxxx (never indexed) differ only for re-encoders.
    return this.readLiteral(reader, 4);
  }

  /** A literal field whose name is an index in `prefixBits` bits, or 0 and a literal name. */
  private readLiteral(reader: BlockReader, prefixBits: number): [string, string] {
    const nameIndex = reader.readInteger(prefixBits);
    const name = nameIndex === 0 ? reader.readString() : this.lookup(nameIndex)[0];
    return [name, reader.readString()];
  }

  private lookup(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0 is not a field');
    if (index < FIRST_DYNAMIC_INDEX) return STATIC_TABLE[index - 1]!;
    const entry = this.table.entry(index - FIRST_DYNAMIC_INDEX);
    if (entry === undefined) throw new HpackError(`index ${index} is past the tables' end`);
    return entry;
  }

  private resizeTable(bytesMax: number): void {
    if (bytesMax > this.tableBytesLimit) {
      throw new HpackError(`table size update to ${bytesMax} exceeds our ${this.tableBytesLimit}`);
    }
    this.table.resize(bytesMax);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** The most an encoded integer takes: its prefix byte and 5 continuation bytes (< 2^31). */
const INTEGER_BYTES_MAX = 1 + INTEGER_CONTINUATION_BYTES_MAX;

/**
 * Encodes a header list as literals without indexing (never touches a dynamic table, so the
 * peer's table size setting does not matter); uses the static table for names (and for a full
 * match such as ':status: 200', an indexed field). No Huffman on output. Strings are written as
 * latin1: a char above U+00FF would lose its high byte, so callers send ASCII.
 */
export function encodeHeaders(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  let bytesBound = 0;
  for (const [name, value] of headers) bytesBound += 3 * INTEGER_BYTES_MAX + name.length + value.length;
  const out = Buffer.allocUnsafe(bytesBound);
  let position = 0;
  for (const [name, value] of headers) position = writeField(out, position, name, value);
  return out.subarray(0, position);
}

function writeField(out: Buffer, position: number, name: string, value: string): number {
  const known = STATIC_NAMES.get(name);
  const fieldIndex = known?.fieldIndexByValue.get(value);
  if (fieldIndex !== undefined) return writeInteger(out, position, 0x80, 7, fieldIndex);
  // Literal without indexing (0000xxxx): a name index in 4 bits, or 0 and a literal name.
  if (known !== undefined) {
    position = writeInteger(out, position, 0x00, 4, known.nameIndex);
  } else {
    out[position++] = 0x00;
    position = writeString(out, position, name);
  }
  return writeString(out, position, value);
}

/** A string literal without Huffman coding (H bit 0). */
function writeString(out: Buffer, position: number, text: string): number {
  position = writeInteger(out, position, 0x00, 7, text.length);
  return position + out.write(text, position, 'latin1');
}

/** An integer in `prefixBits` bits of a byte whose other bits are `flags` (§5.1). */
function writeInteger(out: Buffer, position: number, flags: number, prefixBits: number, value: number): number {
  assert(Number.isInteger(value) && value >= 0 && value <= INTEGER_MAX, `HPACK integer ${value}`);
  const prefixMax = (1 << prefixBits) - 1;
  if (value < prefixMax) {
    out[position++] = flags | value;
    return position;
  }
  out[position++] = flags | prefixMax;
  let rest = value - prefixMax;
  while (rest >= 128) {
    out[position++] = (rest % 128) | 0x80;
    rest = Math.floor(rest / 128);
  }
  out[position++] = rest;
  return position;
}
