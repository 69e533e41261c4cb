// A small command-line argument parser: long flags (--name value, --name=value), single-letter
// aliases (-w json), booleans (--prefix, --prefix=false), and `--` to end flags. Flags and
// positionals may be interleaved, as in etcdctl. Every mistake is a UsageError (exit code 2)
// that names the flag, so the user sees what to fix.

export type FlagType = 'string' | 'boolean' | 'integer';

export interface FlagSpec {
  /** The long name without dashes, e.g. "data-dir". */
  name: string;
  type: FlagType;
  /** A one-letter alias used as -x. */
  short?: string;
  /** Shown in help. */
  description: string;
  /** Shown in help for flags that take a value, e.g. "host:port". */
  valueName?: string;
  /** For string flags: the only values accepted. */
  choices?: readonly string[];
  /** For integer flags: the smallest value accepted (default 0). */
  min?: number;
  /** May be given more than once; the values are collected in order. */
  repeatable?: boolean;
}

export type FlagValue = string | number | boolean | string[];

export interface ParsedArgs {
  flags: Record<string, FlagValue>;
  positionals: string[];
}

/** A mistake in how a command was called: the CLI prints the message and exits with 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(
    message: string,
    /** The command whose usage the message is about, for the "see lichen help <cmd>" hint. */
    readonly command?: string,
  ) {
    super(message);
  }
}

/** Arguments beyond this count are refused: nobody types that many, and it bounds the loop. */
export const ARGS_MAX = 10_000;

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  if (argv.length > ARGS_MAX) throw new UsageError(`too many arguments (${argv.length}; at most ${ARGS_MAX})`);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short !== undefined).map((s) => [s.short as string, s]));
  const flags: Record<string, FlagValue> = {};
  const positionals: string[] = [];

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const flag = splitFlag(arg);
    if (flag === undefined) {
      positionals.push(arg);
      continue;
    }
    const spec = flag.long ? byName.get(flag.name) : byShort.get(flag.name);
    if (spec === undefined) throw new UsageError(`unknown flag: ${arg.split('=')[0]}`);
    let raw = flag.inlineValue;
    if (spec.type !== 'boolean' && raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`flag --${spec.name} needs a value`);
      raw = next;
      i++;
    }
    const value = convertFlagValue(spec, raw);
    if (spec.repeatable) {
      const previous = flags[spec.name];
      flags[spec.name] = [...(Array.isArray(previous) ? previous : []), String(value)];
    } else {
      flags[spec.name] = value;
    }
  }
  return { flags, positionals };
}

interface SplitFlag {
  long: boolean;
  name: string;
  inlineValue: string | undefined;
}

/** Undefined for a positional. A lone "-" and negative numbers are positionals. */
function splitFlag(arg: string): SplitFlag | undefined {
  if (arg.startsWith('--') && arg.length > 2) {
    const eq = arg.indexOf('=');
    return eq === -1
      ? { long: true, name: arg.slice(2), inlineValue: undefined }
      : { long: true, name: arg.slice(2, eq), inlineValue: arg.slice(eq + 1) };
  }
  if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(1) : arg.slice(1, eq);
    return { long: false, name, inlineValue: eq === -1 ? undefined : arg.slice(eq + 1) };
  }
  return undefined;
}

/** Converts one raw value (from a flag, an environment variable or a file) to the spec's type. */
export function convertFlagValue(spec: FlagSpec, raw: string | undefined): FlagValue {
  switch (spec.type) {
    case 'boolean':
      return parseBoolean(raw, `--${spec.name}`);
    case 'integer':
      return parseInteger(raw ?? '', `--${spec.name}`, spec.min ?? 0);
    case 'string': {
      const value = raw ?? '';
      if (spec.choices !== undefined && !spec.choices.includes(value)) {
        throw new UsageError(`invalid value for --${spec.name}: "${value}" (expected one of ${spec.choices.join(', ')})`);
      }
      return value;
    }
  }
}

export function parseBoolean(raw: string | undefined, what: string): boolean {
  if (raw === undefined) return true;
  const lowered = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(lowered)) return true;
  if (['false', '0', 'no', 'off'].includes(lowered)) return false;
  throw new UsageError(`invalid value for ${what}: "${raw}" (expected true or false)`);
}

export function parseInteger(raw: string, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const trimmed = raw.trim();
  // Underscores allow readable sizes like 1_572_864.
  if (!/^-?\d[\d_]*$/.test(trimmed)) throw new UsageError(`invalid value for ${what}: "${raw}" (expected an integer)`);
  const value = Number(trimmed.replaceAll('_', ''));
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
    throw new UsageError(`invalid value for ${what}: "${raw}" (expected an integer ${range})`);
  }
  return value;
}

/** Reads a typed flag, or undefined when it was not given. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags[name];
  return typeof value === 'string' ? value : undefined;
}
export function integerFlag(args: ParsedArgs, name: string): number | undefined {
  const value = args.flags[name];
  return typeof value === 'number' ? value : undefined;
}
export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}

/**
 * Splits a line typed in the shell (or a txn op line) into words, honouring "double" and
 * 'single' quotes and backslash escapes inside double quotes and outside quotes.
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else current += ch;
      continue;
    }
    if (ch === '\\' && i + 1 < line.length) {
      current += unescapeChar(line[++i] as string, quote === '"');
      inWord = true;
      continue;
    }
    if (quote === '"') {
      if (ch === '"') quote = undefined;
      else current += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new UsageError(`unterminated ${quote} quote in: ${line}`);
  if (inWord) words.push(current);
  return words;
}

function unescapeChar(ch: string, inDoubleQuotes: boolean): string {
  if (inDoubleQuotes) {
    if (ch === 'n') return '\n';
    if (ch === 't') return '\t';
  }
  return ch;
}
