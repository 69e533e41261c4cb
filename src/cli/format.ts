// Output of the client commands. "simple" follows etcdctl's simple printer (get prints a key
// line then a value line; put prints OK), so scripts written for etcdctl keep working.
// "json" writes the objects etcd-json.ts builds (what etcdctl -w json prints) as one line each.
// Keys and values are written as raw bytes, so binary data survives a pipe.
import type { DeleteRangeResponse, Event, KeyValue, RangeResponse, ResponseOp, TxnResponse } from '../mvcc/types.js';
import { EventType } from '../mvcc/types.js';
import type { CliMember, EndpointStatus, Exact } from './client-port.js';
import { formatId } from '../ids.js';

export type OutputFormat = 'simple' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['simple', 'json'];

/** One output line: text, or raw bytes (a key or a value). */
export type Line = string | Uint8Array;

export function linesToBuffer(lines: readonly Line[]): Buffer {
  const parts: Buffer[] = [];
  for (const line of lines) {
    parts.push(typeof line === 'string' ? Buffer.from(line, 'utf8') : Buffer.from(line.buffer, line.byteOffset, line.byteLength));
    parts.push(NEWLINE);
  }
  return Buffer.concat(parts);
}
const NEWLINE = Buffer.from('\n');

export { formatId };

export function kvLines(kv: Exact<KeyValue>, options: { keysOnly?: boolean } = {}): Line[] {
  return options.keysOnly ? [kv.key] : [kv.key, kv.value];
}

export function formatPut(response: { prevKv?: Exact<KeyValue> }): Line[] {
  return ['OK', ...(response.prevKv ? kvLines(response.prevKv) : [])];
}

export function formatRange(response: Exact<RangeResponse>, options: { keysOnly?: boolean; countOnly?: boolean }): Line[] {
  if (options.countOnly) return [String(response.count)];
  return response.kvs.flatMap((kv) => kvLines(kv, options));
}

export function formatDelete(response: Exact<DeleteRangeResponse>): Line[] {
  return [String(response.deleted), ...response.prevKvs.flatMap((kv) => kvLines(kv))];
}

export function formatEvent(event: Exact<Event>): Line[] {
  const lines: Line[] = [event.type === EventType.PUT ? 'PUT' : 'DELETE'];
  if (event.prevKv) lines.push(...kvLines(event.prevKv));
  lines.push(...kvLines(event.kv));
  return lines;
}

/** etcdctl prints SUCCESS/FAILURE, then each op's result after a blank line. */
export function formatTxn(response: Exact<TxnResponse>): Line[] {
  const lines: Line[] = [response.succeeded ? 'SUCCESS' : 'FAILURE'];
  for (const op of response.responses) {
    lines.push('', ...formatResponseOp(op));
  }
  return lines;
}

function formatResponseOp(op: Exact<ResponseOp>): Line[] {
  if ('responseRange' in op) return formatRange(op.responseRange, {});
  if ('responsePut' in op) return formatPut(op.responsePut);
  if ('responseDeleteRange' in op) return formatDelete(op.responseDeleteRange);
  return formatTxn(op.responseTxn);
}

export function formatLeaseGranted(id: bigint, ttl: number): Line[] {
  return [`lease ${formatId(id)} granted with TTL(${ttl}s)`];
}

export function formatLeaseTimeToLive(
  response: { ID: bigint; TTL: number; grantedTTL: number; keys: Uint8Array[] },
  withKeys: boolean,
): Line[] {
  if (response.TTL === -1) return [`lease ${formatId(response.ID)} already expired`];
  let line = `lease ${formatId(response.ID)} granted with TTL(${response.grantedTTL}s), remaining(${response.TTL}s)`;
  if (withKeys) {
    const keys = response.keys.map((k) => Buffer.from(k).toString('utf8')).join(', ');
    line += `, attached keys([${keys}])`;
  }
  return [line];
}

export function formatLeaseList(ids: readonly bigint[]): Line[] {
  return [`found ${ids.length} leases`, ...ids.map(formatId)];
}

/** etcdctl member list: id, status, name, peer URLs, client URLs, is learner. */
export function formatMembers(members: readonly CliMember[]): Line[] {
  return members.map((m) =>
    [
      formatId(m.id),
      m.name === '' ? 'unstarted' : 'started',
      m.name,
      m.peerURLs.join(','),
      m.clientURLs.join(','),
      String(m.isLearner),
    ].join(', '),
  );
}

/** A table with one row per endpoint; a failed endpoint shows its error in the last column. */
export function formatStatusTable(statuses: readonly EndpointStatus[]): Line[] {
  const header = ['ENDPOINT', 'ID', 'LEADER', 'IS LEADER', 'TERM', 'RAFT INDEX', 'APPLIED', 'REVISION', 'DB SIZE', 'ERRORS'];
  const rows = statuses.map(({ endpoint, status, error }) => {
    if (status === undefined) return [endpoint, '-', '-', '-', '-', '-', '-', '-', '-', error ?? 'unknown error'];
    const memberId = status.header?.memberId ?? 0n;
    return [
      endpoint,
      formatId(memberId),
      formatId(status.leader),
      String(memberId !== 0n && memberId === status.leader),
      String(status.raftTerm),
      String(status.raftIndex),
      String(status.raftAppliedIndex),
      String(status.header?.revision ?? '-'),
      formatBytes(status.dbSize),
      status.errors.join('; '),
    ];
  });
  return formatTable([header, ...rows]);
}

/** Left-aligned columns separated by two spaces; trailing spaces trimmed. */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** Sizes as etcdctl prints them (go-humanize's Bytes): SI units, one decimal below 10. */
export function formatBytes(bytes: number): string {
  if (bytes < 10) return `${bytes} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const exponent = Math.min(Math.floor(Math.log(bytes) / Math.log(1000)), units.length - 1);
  const value = Math.floor((bytes / 1000 ** exponent) * 10 + 0.5) / 10;
  // Go's %.0f rounds a half to the even neighbour (20.5 → 20); value has one decimal at most.
  const whole = Math.abs(value % 1) === 0.5 ? 2 * Math.round(value / 2) : Math.round(value);
  return `${value < 10 ? value.toFixed(1) : whole} ${units[exponent]}`;
}

/** A boxed table as etcdctl's -w table prints it: headers centred, cells right-aligned. */
export function formatBoxTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const centre = (text: string, width: number): string => {
    const left = Math.floor((width - text.length) / 2);
    return ' '.repeat(left) + text + ' '.repeat(width - text.length - left);
  };
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [
    rule,
    line(header.map((title, i) => centre(title, widths[i]!))),
    rule,
    ...rows.map((row) => line(widths.map((w, i) => (row[i] ?? '').padStart(w)))),
    rule,
  ];
}

/**
 * The response object as one JSON line, as etcdctl's json output has it: bytes as base64, and
 * 64-bit integers (bigint ids) as bare numbers, exact even above 2^53 (JSON.stringify cannot
 * write a bigint, and a number would round it).
 */
export function formatJson(value: unknown): Line[] {
  return [toJson(value)];
}

function toJson(value: unknown): string {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : toJson(item))).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const fields = Object.entries(value).filter(([, field]) => field !== undefined && typeof field !== 'function');
    return `{${fields.map(([name, field]) => `${JSON.stringify(name)}:${toJson(field)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
