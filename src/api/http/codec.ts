// Turning HTTP input into request fields and store results into JSON.
//
// Encoding rules of the HTTP/JSON API (also in README.md of this folder):
// - Keys and values are bytes. In URLs they are percent-decoded to bytes as they are (so %FF is
//   the single byte 0xFF), not through UTF-8 replacement, so binary keys are reachable.
// - In JSON output a key or value is a UTF-8 string when its bytes are valid UTF-8; otherwise it
//   is base64 and the object says so: "encoding": "base64" for the value, "keyEncoding":
//   "base64" for the key. Clients that only store text never see base64.
// - In JSON input, "value" is a string taken as UTF-8, or base64 when "encoding": "base64".
// - Lease ids are shown as everywhere else (formatId: 16 hex digits) and taken in that form; a
//   JSON body may still give the decimal number older scripts send (see parseLeaseId).
import { isUtf8 } from 'node:buffer';
import type { KeyValue } from '../../mvcc/types.js';
import { prefixRangeEnd } from '../../mvcc/key-range.js';
import { invalidArgument } from './errors.js';
import { formatId } from '../../ids.js';
import { httpQueryParamsMax } from '../../limits.js';

/** The query string of a URL as name → raw bytes of the (last) value. */
export type Query = Map<string, Uint8Array>;


const HEX = /^[0-9a-fA-F]{2}$/;

/**
 * Percent-decodes to bytes. In the query string '+' means a space (HTML form encoding); in a
 * path it is a plus, so the caller says which one it decodes.
 */
export function percentDecode(text: string, plusIsSpace: boolean): Uint8Array {
  const raw = Buffer.from(text, 'utf8');
  const out = Buffer.allocUnsafe(raw.length);
  let length = 0;
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!;
    if (byte === 0x25 /* % */) {
      const hex = raw.subarray(i + 1, i + 3).toString('latin1');
      if (!HEX.test(hex)) throw invalidArgument(`malformed percent-encoding at "${text.slice(i, i + 3)}"`);
      out[length++] = parseInt(hex, 16);
      i += 2;
    } else if (byte === 0x2b /* + */ && plusIsSpace) {
      out[length++] = 0x20;
    } else {
      out[length++] = byte;
    }
  }
  return new Uint8Array(out.subarray(0, length));
}

export function parseQuery(search: string): Query {
  const query: Query = new Map();
  const text = search.startsWith('?') ? search.slice(1) : search;
  if (text === '') return query;
  const parts = text.split('&');
  if (parts.length > httpQueryParamsMax) throw invalidArgument(`too many query parameters (at most ${httpQueryParamsMax})`);
  for (const part of parts) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = Buffer.from(percentDecode(eq < 0 ? part : part.slice(0, eq), true)).toString('utf8');
    query.set(name, percentDecode(eq < 0 ? '' : part.slice(eq + 1), true));
  }
  return query;
}

export function queryString(query: Query, name: string): string | undefined {
  const value = query.get(name);
  return value === undefined ? undefined : Buffer.from(value).toString('utf8');
}

/** "true"/"1"/"" (a bare ?prefix) are true, "false"/"0" false, absent is `fallback`. */
export function queryBoolean(query: Query, name: string, fallback = false): boolean {
  const text = queryString(query, name);
  if (text === undefined) return fallback;
  if (text === 'true' || text === '1' || text === '') return true;
  if (text === 'false' || text === '0') return false;
  throw invalidArgument(`query parameter "${name}" must be true or false, got ${JSON.stringify(text)}`);
}

/** A non-negative safe integer, or `fallback` when absent. */
export function queryInteger(query: Query, name: string, fallback: number): number {
  const text = queryString(query, name);
  if (text === undefined) return fallback;
  return parseNonNegativeInteger(text, `query parameter "${name}"`);
}

/** The ?lease= parameter (see parseLeaseId), or 0 (no lease) when absent. */
export function queryLeaseId(query: Query): number {
  const text = queryString(query, 'lease');
  return text === undefined ? 0 : parseLeaseId(text, 'query parameter "lease"');
}

/** The "lease" field of a JSON body: the id as text (see parseLeaseId), or the decimal number. */
export function jsonLeaseId(body: Record<string, unknown>): number | undefined {
  const value = body.lease;
  if (typeof value === 'string') return parseLeaseId(value, 'JSON field "lease"');
  // The number is the form every version before the hex ids took, so those scripts keep working.
  return jsonInteger(body, 'lease');
}

/**
 * A lease id as the CLI, etcdctl and this API print it: exactly 16 hex digits. Exactly 16 (the
 * CLI also takes fewer) because an older script's decimal id would read as another id in hex:
 * a short one is refused instead, and a 16-digit one (most generated ids are 16 digits in decimal
 * too) almost surely names no lease, so the request fails with LeaseNotFound.
 */
export function parseLeaseId(text: string, what: string): number {
  if (!/^[0-9a-fA-F]{16}$/.test(text)) {
    throw invalidArgument(`${what} must be a lease id of 16 hex digits as lichen prints it (e.g. 0001d2c3b4a59687), got ${JSON.stringify(text)}`);
  }
  const id = BigInt(`0x${text}`);
  if (id > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`${what} ${text} is out of range: Lichen's lease ids are below 2^53`);
  return Number(id);
}

export function parseNonNegativeInteger(text: string, what: string): number {
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw invalidArgument(`${what} must be a non-negative integer below 2^53, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

/** Every key starting with `prefix`; an empty prefix means all keys, which etcd spells key=[0]. */
export function prefixRange(prefix: Uint8Array): { key: Uint8Array; rangeEnd: Uint8Array } {
  if (prefix.length === 0) return { key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) };
  return { key: prefix, rangeEnd: prefixRangeEnd(prefix) };
}

/** Bytes as a JSON string field: UTF-8 when valid, else base64 with a marker field. */
export function bytesField(bytes: Uint8Array, name: string, markerName: string): Record<string, string> {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isUtf8(buffer)) return { [name]: buffer.toString('utf8') };
  return { [name]: buffer.toString('base64'), [markerName]: 'base64' };
}

export interface KeyValueJson {
  key: string;
  keyEncoding?: 'base64';
  value?: string;
  encoding?: 'base64';
  createRevision: number;
  modRevision: number;
  version: number;
  /** formatId of the lease; 16 zeros for a key without a lease. */
  lease: string;
}

export function keyValueJson(kv: KeyValue, options: { keysOnly?: boolean } = {}): KeyValueJson {
  return {
    ...(bytesField(kv.key, 'key', 'keyEncoding') as { key: string }),
    ...(options.keysOnly ? {} : bytesField(kv.value, 'value', 'encoding')),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: formatId(kv.lease),
  };
}

/** Key bytes in a message, readable whether or not they are UTF-8. */
export function describeKey(key: Uint8Array): string {
  const buffer = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return isUtf8(buffer) ? JSON.stringify(buffer.toString('utf8')) : `base64:${buffer.toString('base64')}`;
}

/** Parses a request body as a JSON object, naming the problem when it is not one. */
export function parseJsonObject(body: Uint8Array): Record<string, unknown> {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalidArgument(`invalid JSON body: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalidArgument(`JSON body must be an object, got ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : typeof parsed}`);
  }
  return parsed as Record<string, unknown>;
}

export function jsonString(body: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const value = body[name];
  if (value === undefined) {
    if (required) throw invalidArgument(`JSON field "${name}" is required`);
    return undefined;
  }
  if (typeof value !== 'string') throw invalidArgument(`JSON field "${name}" must be a string, got ${value === null ? 'null' : typeof value}`);
  return value;
}

export function jsonInteger(body: Record<string, unknown>, name: string): number | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(`JSON field "${name}" must be a non-negative integer below 2^53`);
  }
  return value;
}

/** The "value" of a JSON body as bytes, honouring "encoding": "base64". */
export function jsonValueBytes(body: Record<string, unknown>, required: boolean): Uint8Array | undefined {
  const value = jsonString(body, 'value', required);
  const encoding = jsonString(body, 'encoding', false);
  if (encoding !== undefined && encoding !== 'base64' && encoding !== 'utf8') {
    throw invalidArgument(`JSON field "encoding" must be "base64" or "utf8", got ${JSON.stringify(encoding)}`);
  }
  if (value === undefined) return undefined;
  if (encoding === 'base64') {
    // Buffer.from(…, 'base64') skips invalid characters silently, so check the alphabet first.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 === 1) throw invalidArgument('JSON field "value" is not valid base64');
    return new Uint8Array(Buffer.from(value, 'base64'));
  }
  return new Uint8Array(Buffer.from(value, 'utf8'));
}
