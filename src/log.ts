// A small structured logger: one JSON object per line ({ ts, level, name, msg, ...fields }).
// The server and the CLI share it. A disabled level costs one integer comparison, so callers
// may log on hot paths at debug level without building strings first.
import type { Writable } from 'node:stream';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** True when a message at this level would be written (for costly field building). */
  isLevelEnabled(level: LogLevel): boolean;
  /** A logger that adds these fields to every line (the child's own fields win over the parent's). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  name: string;
  level: LogLevel;
  streams: Writable[];
  /** Injected clock (milliseconds since the epoch) so tests get stable timestamps. */
  now?: () => number;
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field names the logger owns; a caller's field with one of these names is renamed, not lost. */
const RESERVED_KEYS = new Set(['ts', 'level', 'name', 'msg']);

/** A single string field longer than this is cut, so one bad value cannot flood the log. */
export const FIELD_STRING_CHARS_MAX = 16 * 1024;

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

export function createLogger(options: LoggerOptions): Logger {
  if (!isLogLevel(options.level)) throw new Error(`unknown log level: ${String(options.level)}`);
  const sink: Sink = { name: options.name, streams: options.streams, now: options.now ?? Date.now };
  return new JsonLogger(sink, LEVEL_RANK[options.level], options.level, {});
}

/** A logger that drops everything: for tests and library callers that do not care. */
export function createSilentLogger(): Logger {
  const silent: Logger = {
    level: 'error',
    debug() {},
    info() {},
    warn() {},
    error() {},
    isLevelEnabled: () => false,
    child: () => silent,
  };
  return silent;
}

interface Sink {
  name: string;
  streams: Writable[];
  now: () => number;
}

class JsonLogger implements Logger {
  constructor(
    private readonly sink: Sink,
    private readonly minRank: number,
    readonly level: LogLevel,
    private readonly boundFields: LogFields,
  ) {}

  debug(msg: string, fields?: LogFields): void {
    if (this.minRank <= LEVEL_RANK.debug) this.write('debug', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    if (this.minRank <= LEVEL_RANK.info) this.write('info', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    if (this.minRank <= LEVEL_RANK.warn) this.write('warn', msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    if (this.minRank <= LEVEL_RANK.error) this.write('error', msg, fields);
  }

  isLevelEnabled(level: LogLevel): boolean {
    return this.minRank <= LEVEL_RANK[level];
  }

  child(fields: LogFields): Logger {
    return new JsonLogger(this.sink, this.minRank, this.level, { ...this.boundFields, ...fields });
  }

  private write(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    const record: LogFields = {
      ts: new Date(this.sink.now()).toISOString(),
      level,
      name: this.sink.name,
      msg,
    };
    copyFields(record, this.boundFields);
    if (fields !== undefined) copyFields(record, fields);
    const line = stringifyRecord(record) + '\n';
    for (const stream of this.sink.streams) {
      // A closed stream must not crash the process that is trying to report something.
      if (!stream.destroyed && !stream.writableEnded) stream.write(line);
    }
  }
}

function copyFields(record: LogFields, fields: LogFields): void {
  for (const key of Object.keys(fields)) {
    const target = RESERVED_KEYS.has(key) ? `field_${key}` : key;
    record[target] = fields[key];
  }
}

/** JSON.stringify that never throws: errors, bigints, bytes and cycles become readable values. */
export function stringifyRecord(record: LogFields): string {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(record, function replacer(this: Record<string, unknown>, key, value: unknown) {
      // Bytes are checked on the holder's own value: Buffer.toJSON has already run on `value`.
      const original = key === '' ? value : this[key];
      if (original instanceof Uint8Array) return bytesToBase64(original);
      return normalizeValue(value, seen);
    });
  } catch (error) {
    return JSON.stringify({
      ts: record.ts,
      level: record.level,
      name: record.name,
      msg: record.msg,
      logError: `fields could not be serialized: ${(error as Error).message}`,
    });
  }
}

function normalizeValue(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') {
    return value.length > FIELD_STRING_CHARS_MAX ? `${value.slice(0, FIELD_STRING_CHARS_MAX)}…(truncated)` : value;
  }
  if (value instanceof Error) return describeError(value);
  if (value !== null && typeof value === 'object') {
    if (seen.has(value)) return '[Circular]';
    seen.add(value);
  }
  return value;
}

function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function describeError(error: Error): LogFields {
  const described: LogFields = { type: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) described.code = code;
  if (error.stack !== undefined) described.stack = error.stack;
  return described;
}
