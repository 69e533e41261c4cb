// Protobuf messages as JSON, exactly as etcd's gateway writes and reads them: grpc-gateway v1's
// JSONPb marshaler with OrigName (proto field names) and EmitDefaults off, which is golang/protobuf's
// jsonpb. Writing: bytes as standard base64, 64-bit integers as decimal strings, 32-bit ones as
// numbers, enums by name, fields holding their zero value left out (a set oneof member is written
// even when zero; a present sub-message even when empty). Reading: a field under its proto name or
// its lowerCamelCase JSON name, 64-bit and 32-bit integers as numbers or strings, enums by name or
// number, null as "not given", unknown fields ignored; bad input fails with Go's own messages.
//
// Both directions go through the protobuf wire form: a request read from JSON is encoded and then
// decoded by the same deserializer the gRPC path uses, and a response is serialized as for gRPC
// and decoded here, so the gateway shows exactly what a gRPC client would receive.
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { PROTO_DIR, PROTO_FILES } from '../proto.js';
import { JsonNumber, goJsonString, parseJsonText, type JsonValue } from './json-text.js';

/** A request that cannot be read: the message is the one etcd's gateway gives. */
export class ProtoJsonError extends Error {}

let cachedRoot: protobuf.Root | undefined;

/** etcd's protos as protobufjs reflection types (proto field names kept as written). */
export function etcdProtoRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(PROTO_DIR, target);
  root.loadSync(PROTO_FILES, { keepCase: true });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

// ---- reading -------------------------------------------------------------------------------

/** The protobuf encoding of the message `value` describes (the JSON read by readJsonValue). */
export function encodeFromJson(type: protobuf.Type, value: JsonValue): Uint8Array {
  return type.encode(type.fromObject(messageFromJson(type, value))).finish();
}

function messageFromJson(type: protobuf.Type, value: JsonValue): Record<string, unknown> {
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || value instanceof JsonNumber) {
    throw cannotUnmarshal(value, 'map[string]json.RawMessage');
  }
  const object: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    // jsonpb looks for the proto name first, then the JSON name.
    const given = Object.hasOwn(value, field.name) ? value[field.name] : value[jsonName(field.name)];
    if (given === undefined || given === null) continue;
    object[field.name] = field.repeated ? repeatedFromJson(field, given) : singleFromJson(field, given);
  }
  return object;
}

function repeatedFromJson(field: protobuf.Field, value: JsonValue): unknown[] {
  if (!Array.isArray(value)) throw cannotUnmarshal(value, '[]json.RawMessage');
  return value.map((item) => (item === null ? defaultOf(field) : singleFromJson(field, item)));
}

function singleFromJson(field: protobuf.Field, value: JsonValue): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageFromJson(resolved, value);
  if (resolved instanceof protobuf.Enum) return enumFromJson(resolved, value);
  switch (field.type) {
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return integerFromJson(value, 'int64');
    case 'uint64':
    case 'fixed64':
      return integerFromJson(value, 'uint64');
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return Number(integerFromJson(value, 'int32'));
    case 'uint32':
    case 'fixed32':
      return Number(integerFromJson(value, 'uint32'));
    case 'bool':
      if (typeof value !== 'boolean') throw cannotUnmarshal(value, 'bool');
      return value;
    case 'string':
      if (typeof value !== 'string') throw cannotUnmarshal(value, 'string');
      return value;
    case 'bytes':
      return bytesFromJson(value);
    case 'double':
    case 'float':
      if (!(value instanceof JsonNumber)) throw cannotUnmarshal(value, field.type === 'double' ? 'float64' : 'float32');
      return Number(value.text);
    default:
      throw new Error(`proto-json: field ${field.name} has unsupported type ${field.type}`);
  }
}

function defaultOf(field: protobuf.Field): unknown {
  if (field.resolvedType instanceof protobuf.Type) return {};
  if (field.type === 'bytes') return Buffer.alloc(0);
  if (field.type === 'string') return '';
  if (field.type === 'bool') return false;
  return 0;
}

const INTEGER_RANGES: Record<string, [bigint, bigint]> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  uint8: [0n, 255n],
};

/**
 * An integer as a decimal string. jsonpb drops the quotes of a quoted integer and parses what
 * is inside as JSON, so "12" is 12 and "abc" fails with a syntax error.
 */
function integerFromJson(value: JsonValue, goType: string): string {
  let number = value;
  if (typeof value === 'string') {
    try {
      number = parseJsonText(value);
    } catch (error) {
      throw new ProtoJsonError((error as Error).message);
    }
    if (number === null) return '0';
  }
  if (!(number instanceof JsonNumber)) throw cannotUnmarshal(number, goType);
  const [min, max] = INTEGER_RANGES[goType]!;
  if (!/^-?\d+$/.test(number.text) || BigInt(number.text) < min || BigInt(number.text) > max) {
    throw new ProtoJsonError(`json: cannot unmarshal number ${number.text} into Go value of type ${goType}`);
  }
  return BigInt(number.text).toString();
}

function enumFromJson(type: protobuf.Enum, value: JsonValue): number {
  if (typeof value === 'string') {
    const number = type.values[value];
    if (number === undefined) throw new ProtoJsonError(`unknown value ${goJsonString(value)} for enum ${goEnumName(type)}`);
    return number;
  }
  if (!(value instanceof JsonNumber)) throw cannotUnmarshal(value, goEnumName(type));
  const [min, max] = INTEGER_RANGES['int32']!;
  if (!/^-?\d+$/.test(value.text) || BigInt(value.text) < min || BigInt(value.text) > max) {
    throw new ProtoJsonError(`json: cannot unmarshal number ${value.text} into Go value of type ${goEnumName(type)}`);
  }
  return Number(value.text);
}

/** Bytes are standard base64 (Go's base64.StdEncoding, which skips \r and \n), or an array of byte values. */
function bytesFromJson(value: JsonValue): Buffer {
  if (Array.isArray(value)) {
    return Buffer.from(value.map((item) => (item === null ? 0 : Number(integerFromJson(item, 'uint8')))));
  }
  if (typeof value !== 'string') throw cannotUnmarshal(value, '[]uint8');
  if (value.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(value)) return Buffer.from(value, 'base64');
  const corruptAt = base64CorruptionOffset(value);
  if (corruptAt !== undefined) throw new ProtoJsonError(`illegal base64 data at input byte ${corruptAt}`);
  return Buffer.from(value.replace(/[\r\n]/g, ''), 'base64');
}

const BASE64_ALPHABET = /[A-Za-z0-9+/]/;

/**
 * Where Go's base64.StdEncoding.Decode reports the input corrupt, or undefined when it decodes.
 * It reads quanta of four characters, skipping \r and \n; "=" may end the input only as "xx=="
 * or "xxx=", followed by nothing but newlines.
 */
function base64CorruptionOffset(text: string): number | undefined {
  let at = 0;
  const skipNewlines = (): void => {
    while (at < text.length && (text[at] === '\n' || text[at] === '\r')) at++;
  };
  for (;;) {
    let have = 0;
    while (have < 4) {
      if (at === text.length) {
        if (have === 0) return undefined;
        return at - have;
      }
      const c = text[at++]!;
      if (BASE64_ALPHABET.test(c)) {
        have++;
        continue;
      }
      if (c === '\n' || c === '\r') continue;
      if (c !== '=') return at - 1;
      if (have < 2) return at - 1;
      if (have === 2) {
        skipNewlines();
        if (at === text.length) return text.length;
        if (text[at] !== '=') return at - 1;
        at++;
      }
      skipNewlines();
      return at < text.length ? at : undefined;
    }
  }
}

function cannotUnmarshal(value: JsonValue, goType: string): ProtoJsonError {
  return new ProtoJsonError(`json: cannot unmarshal ${jsonKind(value)} into Go value of type ${goType}`);
}

function jsonKind(value: JsonValue): string {
  if (value instanceof JsonNumber) return 'number';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'string') return 'string';
  return 'object';
}

const jsonNames = new Map<string, string>();

/** protoc's JSON name: underscores dropped, the letter after each one upper-cased. */
function jsonName(protoName: string): string {
  let name = jsonNames.get(protoName);
  if (name === undefined) jsonNames.set(protoName, (name = protoName.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase())));
  return name;
}

/** The Go type name golang/protobuf registers for an enum: package.Outer_Inner. */
function goEnumName(type: protobuf.Enum): string {
  const names: string[] = [type.name];
  let parent = type.parent;
  while (parent instanceof protobuf.Type) {
    names.unshift(parent.name);
    parent = parent.parent;
  }
  return `${parent?.name ?? ''}.${names.join('_')}`;
}

// ---- writing -------------------------------------------------------------------------------

/** The JSON text of the message whose protobuf encoding is `bytes`. */
export function jsonFromEncoded(type: protobuf.Type, bytes: Uint8Array): string {
  return writeMessage(type, type.decode(bytes) as unknown as Record<string, unknown>);
}

function writeMessage(type: protobuf.Type, message: Record<string, unknown>): string {
  let out = '';
  for (const field of type.fieldsArray) {
    const value = message[field.name];
    // A oneof member is written whenever it is the one set, even with a zero value.
    const present = field.partOf ? Object.hasOwn(message, field.name) && value != null : !isZero(field, value);
    if (!present) continue;
    out += `${out === '' ? '' : ','}"${field.name}":${field.repeated ? writeRepeated(field, value as unknown[]) : writeSingle(field, value)}`;
  }
  return `{${out}}`;
}

function writeRepeated(field: protobuf.Field, values: unknown[]): string {
  return `[${values.map((value) => writeSingle(field, value)).join(',')}]`;
}

function writeSingle(field: protobuf.Field, value: unknown): string {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return writeMessage(resolved, value as Record<string, unknown>);
  if (resolved instanceof protobuf.Enum) {
    const name = resolved.valuesById[value as number];
    return name === undefined ? String(value) : goJsonString(name);
  }
  switch (field.type) {
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64':
      return `"${String(value)}"`;
    case 'string':
      return goJsonString(value as string);
    case 'bytes': {
      const bytes = value as Uint8Array;
      return `"${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}"`;
    }
    default:
      return String(value);
  }
}

function isZero(field: protobuf.Field, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (field.repeated) return (value as unknown[]).length === 0;
  if (field.resolvedType instanceof protobuf.Type) return false;
  if (typeof value === 'object') {
    // Bytes (a decoded Uint8Array, or the empty array protobufjs keeps as the default) or a Long.
    if ('length' in value) return (value as ArrayLike<number>).length === 0;
    const long = value as protobuf.Long;
    return long.low === 0 && long.high === 0;
  }
  return value === 0 || value === '' || value === false;
}
