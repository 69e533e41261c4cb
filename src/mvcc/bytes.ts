// Small binary writer/reader used by the command codec and the on-engine record format.
// Numbers are int64 values limited to the safe-integer range (see types.ts), so they are
// encoded with arithmetic (not 32-bit bit operations) as zigzag varints.
import { LichenError } from '../errors.js';

const TWO_POW_32 = 0x1_0000_0000;

export class ByteWriter {
  private buffer: Buffer;
  private offset = 0;

  constructor(initialBytes = 64) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  private reserve(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.offset + bytes) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buffer.copy(next, 0, 0, this.offset);
    this.buffer = next;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buffer[this.offset++] = value & 0xff;
    return this;
  }

  /** Unsigned varint of a non-negative safe integer. */
  uvar(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new LichenError('InvalidArgument', `not a non-negative safe integer: ${value}`);
    this.reserve(8);
    while (value >= 0x80) {
      this.buffer[this.offset++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buffer[this.offset++] = value;
    return this;
  }

  /** Signed varint (zigzag) of a safe integer; doubles keep 2|n| exact up to 2^54. */
  svar(value: number): this {
    if (!Number.isSafeInteger(value)) throw new LichenError('InvalidArgument', `not a safe integer: ${value}`);
    const zigzag = value >= 0 ? value * 2 : -value * 2 - 1;
    this.reserve(9);
    let rest = zigzag;
    while (rest >= 0x80) {
      this.buffer[this.offset++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.buffer[this.offset++] = rest;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.uvar(value.length);
    this.raw(value);
    return this;
  }

  raw(value: Uint8Array): this {
    this.reserve(value.length);
    this.buffer.set(value, this.offset);
    this.offset += value.length;
    return this;
  }

  /** Big-endian fixed 8 bytes of a non-negative safe integer (sortable). */
  u64(value: number): this {
    this.reserve(8);
    writeU64(this.buffer, this.offset, value);
    this.offset += 8;
    return this;
  }

  finish(): Uint8Array {
    return this.buffer.subarray(0, this.offset);
  }
}

export class ByteReader {
  private offset = 0;
  private readonly buffer: Buffer;

  constructor(bytes: Uint8Array, private readonly what: string) {
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.offset >= this.buffer.length;
  }

  private fail(reason: string): never {
    throw new LichenError('InvalidArgument', `${this.what}: ${reason} at byte ${this.offset}`);
  }

  u8(): number {
    if (this.offset >= this.buffer.length) this.fail('truncated');
    return this.buffer[this.offset++]!;
  }

  uvar(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(result)) this.fail('varint out of range');
        return result;
      }
      scale *= 0x80;
    }
    return this.fail('varint too long');
  }

  svar(): number {
    let zigzag = 0;
    let scale = 1;
    for (let i = 0; i < 9; i++) {
      const byte = this.u8();
      zigzag += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        const value = zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2;
        if (!Number.isSafeInteger(value)) this.fail('varint out of range');
        return value;
      }
      scale *= 0x80;
    }
    return this.fail('varint too long');
  }

  bytes(): Uint8Array {
    return this.raw(this.uvar());
  }

  raw(length: number): Uint8Array {
    if (this.offset + length > this.buffer.length) this.fail('truncated');
    // Copy so that callers may keep the bytes after the source buffer is reused.
    const out = new Uint8Array(length);
    out.set(this.buffer.subarray(this.offset, this.offset + length));
    this.offset += length;
    return out;
  }

  rest(): Uint8Array {
    return this.raw(this.buffer.length - this.offset);
  }

  /**
   * The next `length` bytes (default: all that are left) as a view of the source, not a copy:
   * only for a source nobody reuses or changes afterwards (an engine read's own buffer). Copying
   * key and value was a third of a 10,000-key range's CPU.
   */
  view(length = this.buffer.length - this.offset): Uint8Array {
    if (this.offset + length > this.buffer.length) this.fail('truncated');
    // A plain Uint8Array even when the source is a Buffer, as a copy would be.
    const out = new Uint8Array(this.buffer.buffer, this.buffer.byteOffset + this.offset, length);
    this.offset += length;
    return out;
  }

  /**
   * The next `length` bytes as UTF-8 text: `last`'s text when they are the bytes `last` was made
   * from (no view, no new string), else a new string, which `last` then keeps.
   */
  text(length: number, last: LastText): string {
    if (this.offset + length > this.buffer.length) this.fail('truncated');
    const from = this.offset;
    this.offset += length;
    const known = last.bytes;
    if (known.length === length) {
      let same = true;
      for (let i = 0; i < length; i++) {
        if (known[i] !== this.buffer[from + i]) {
          same = false;
          break;
        }
      }
      if (same) return last.text;
    }
    // A copy: the source may be reused (Buffer's slice would be a view).
    last.bytes = Uint8Array.prototype.slice.call(this.buffer, from, this.offset);
    last.text = this.buffer.toString('utf8', from, this.offset);
    return last.text;
  }

  u64(): number {
    if (this.offset + 8 > this.buffer.length) this.fail('truncated');
    const value = readU64(this.buffer, this.offset);
    this.offset += 8;
    return value;
  }
}

/**
 * The last text a ByteReader decoded through it and the bytes it came from (a copy), so that the
 * same bytes decode to the same string object: for a field that repeats from entry to entry (a
 * write's user name), decoding is a compare, and later compares with that string are a pointer's.
 */
export class LastText {
  bytes: Uint8Array = new Uint8Array(0);
  text = '';
}

export function writeU64(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32BE(Math.floor(value / TWO_POW_32), offset);
  buffer.writeUInt32BE(value % TWO_POW_32, offset + 4);
}

export function readU64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32BE(offset) * TWO_POW_32 + buffer.readUInt32BE(offset + 4);
}

export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Keys up to this many bytes become strings through String.fromCharCode, which is twice as fast as
 * a Buffer view's toString for short keys: 8 bytes 225–318 vs 505–608 ns, 32 bytes 361 vs 446 ns,
 * 64 bytes 867 vs 392 ns (measured 2026-12-06, node 20, this 2-core machine under load). Every
 * request converts its key at least once (the key index; with auth, the permission check on every
 * member for a write).
 */
const SHORT_KEY_BYTES_MAX = 32;

/** Latin-1 string of the bytes: one char per byte, so JS string order equals byte order. */
export function keyString(bytes: Uint8Array): string {
  if (bytes.length <= SHORT_KEY_BYTES_MAX) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return asBuffer(bytes).toString('latin1');
}

export function keyBytes(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(key, 'latin1'));
}
