// Parses `lichen txn` input in etcdctl's interactive format: three sections separated by a
// blank line — compares, success ops, failure ops.
//
//   mod("key1") > "0"
//   value("k") = "v"
//
//   put key1 "overwrote-key1"
//
//   put key1 "created-key1"
//   get key2
//
// Compare targets: ver|version, c|create, m|mod, val|value, lease; operators = != < >.
// Ops: get <key> [--prefix|--from-key] [--limit N] [--rev R] [--keys-only] [--count-only],
//      put <key> <value> [--lease ID] [--prev-kv], del <key> [--prefix|--from-key] [--prev-kv].
import {
  CompareResult,
  CompareTarget,
  type Compare,
  type RequestOp,
  type TxnRequest,
} from '../mvcc/types.js';
import { integerFlag, parseArgs, splitWords, stringFlag, UsageError, type FlagSpec } from './args.js';
import type { Exact } from './client-port.js';
import { keyRange, parseHexId, toBytes } from './keys.js';

/** A txn with more lines than this is refused (etcd's default limit is 128 ops per txn). */
export const TXN_LINES_MAX = 10_000;

const TARGETS: Record<string, CompareTarget> = {
  ver: CompareTarget.VERSION,
  version: CompareTarget.VERSION,
  c: CompareTarget.CREATE,
  create: CompareTarget.CREATE,
  m: CompareTarget.MOD,
  mod: CompareTarget.MOD,
  val: CompareTarget.VALUE,
  value: CompareTarget.VALUE,
  lease: CompareTarget.LEASE,
};

const OPERATORS: Record<string, CompareResult> = {
  '=': CompareResult.EQUAL,
  '==': CompareResult.EQUAL,
  '!=': CompareResult.NOT_EQUAL,
  '>': CompareResult.GREATER,
  '<': CompareResult.LESS,
};

/** target("key") op value, where value is "quoted" or a bare word. */
const COMPARE_PATTERN = /^(\w+)\(\s*("(?:[^"\\]|\\.)*"|'[^']*')\s*\)\s*(!=|==|=|<|>)\s*(.+)$/;

export function parseTxnInput(text: string): Exact<TxnRequest> {
  const lines = text.split(/\r?\n/);
  if (lines.length > TXN_LINES_MAX) throw new UsageError(`txn input has more than ${TXN_LINES_MAX} lines`);
  const sections: string[][] = [[], [], []];
  let section = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') {
      section++;
      continue;
    }
    if (section > 2) {
      throw new UsageError(`txn input line ${i + 1}: more than three sections (compares, success, failure): ${line}`);
    }
    (sections[section] as string[]).push(`${i + 1}\u0000${line}`);
  }
  const [compareLines, successLines, failureLines] = sections as [string[], string[], string[]];
  return {
    compare: compareLines.map((l) => withLine(l, parseCompare)),
    success: successLines.map((l) => withLine(l, parseOp)),
    failure: failureLines.map((l) => withLine(l, parseOp)),
  };
}

/** Runs a line parser and prefixes its error with the line number. */
function withLine<T>(numbered: string, parse: (line: string) => T): T {
  const [lineNumber, line] = numbered.split('\u0000') as [string, string];
  try {
    return parse(line);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`txn input line ${lineNumber}: ${error.message}`, 'txn');
    throw error;
  }
}

export function parseCompare(line: string): Exact<Compare> {
  const match = COMPARE_PATTERN.exec(line);
  if (match === null) {
    throw new UsageError(`not a compare: ${line} (expected e.g. value("key") = "v" or mod("key") > 5)`);
  }
  const [, targetName, quotedKey, operator, rawValue] = match as unknown as [string, string, string, string, string];
  const target = TARGETS[targetName.toLowerCase()];
  if (target === undefined) {
    throw new UsageError(`unknown compare target "${targetName}" (expected ver, create, mod, value or lease)`);
  }
  const result = OPERATORS[operator] as CompareResult;
  const key = toBytes(unquote(quotedKey));
  const value = unquote(rawValue.trim());
  switch (target) {
    case CompareTarget.VALUE:
      return { target, result, key, value: toBytes(value) };
    case CompareTarget.VERSION:
      return { target, result, key, version: parseCompareNumber(value) };
    case CompareTarget.CREATE:
      return { target, result, key, createRevision: parseCompareNumber(value) };
    case CompareTarget.MOD:
      return { target, result, key, modRevision: parseCompareNumber(value) };
    case CompareTarget.LEASE:
      return { target, result, key, lease: parseHexId(value, 'lease id in compare') };
  }
}

function parseCompareNumber(text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`expected a non-negative integer to compare with, got "${text}"`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new UsageError(`number too large: ${text}`);
  return value;
}

/** Removes one level of quotes; a bare word stays as it is. */
function unquote(text: string): string {
  if (text.length >= 2 && text.startsWith('"') && text.endsWith('"')) {
    const words = splitWords(text);
    return words[0] ?? '';
  }
  if (text.length >= 2 && text.startsWith("'") && text.endsWith("'")) return text.slice(1, -1);
  return text;
}

const GET_FLAGS: FlagSpec[] = [
  { name: 'prefix', type: 'boolean', description: '' },
  { name: 'from-key', type: 'boolean', description: '' },
  { name: 'limit', type: 'integer', description: '' },
  { name: 'rev', type: 'integer', description: '' },
  { name: 'keys-only', type: 'boolean', description: '' },
  { name: 'count-only', type: 'boolean', description: '' },
];
const PUT_FLAGS: FlagSpec[] = [
  { name: 'lease', type: 'string', description: '' },
  { name: 'prev-kv', type: 'boolean', description: '' },
];
const DEL_FLAGS: FlagSpec[] = [
  { name: 'prefix', type: 'boolean', description: '' },
  { name: 'from-key', type: 'boolean', description: '' },
  { name: 'prev-kv', type: 'boolean', description: '' },
];

export function parseOp(line: string): Exact<RequestOp> {
  const [verb, ...rest] = splitWords(line);
  switch (verb) {
    case 'get': {
      const args = parseArgs(rest, GET_FLAGS);
      const [key] = expectWords(args.positionals, 1, 'get <key>');
      const range = keyRange(key, { prefix: args.flags.prefix === true, fromKey: args.flags['from-key'] === true });
      return {
        requestRange: {
          ...range,
          limit: integerFlag(args, 'limit') ?? 0,
          revision: integerFlag(args, 'rev') ?? 0,
          keysOnly: args.flags['keys-only'] === true,
          countOnly: args.flags['count-only'] === true,
        },
      };
    }
    case 'put': {
      const args = parseArgs(rest, PUT_FLAGS);
      const [key, value] = expectWords(args.positionals, 2, 'put <key> <value>');
      const lease = stringFlag(args, 'lease');
      return {
        requestPut: {
          key: toBytes(key),
          value: toBytes(value),
          lease: lease === undefined ? 0n : parseHexId(lease, 'lease id'),
          prevKv: args.flags['prev-kv'] === true,
        },
      };
    }
    case 'del':
    case 'delete': {
      const args = parseArgs(rest, DEL_FLAGS);
      const [key] = expectWords(args.positionals, 1, 'del <key>');
      const range = keyRange(key, { prefix: args.flags.prefix === true, fromKey: args.flags['from-key'] === true });
      return { requestDeleteRange: { ...range, prevKv: args.flags['prev-kv'] === true } };
    }
    default:
      throw new UsageError(`unknown txn op "${verb ?? ''}" (expected get, put or del)`);
  }
}

function expectWords(words: string[], count: number, usage: string): string[] {
  if (words.length !== count) throw new UsageError(`expected ${usage}, got ${words.length} argument(s)`);
  return words;
}
