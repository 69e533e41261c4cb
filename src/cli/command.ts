// The shape every `lichen` subcommand has, and the context it runs in. Commands never touch
// process.* directly: they get streams, environment and an abort signal from the context, so
// the shell can run them in-process and tests can capture their output.
import type { Readable, Writable } from 'node:stream';
import { parseArgs, UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import type { ClientFactory } from './client-port.js';

export interface CommandContext {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
  env: Record<string, string | undefined>;
  /** Aborted on Ctrl-C / SIGTERM: long-running commands (watch, keep-alive, up, serve) stop cleanly. */
  signal: AbortSignal;
  /** Aborted on a second Ctrl-C: stop now, without waiting for a clean shutdown. */
  forceSignal: AbortSignal;
  /** The path of the main script, so `lichen up` can start `lichen serve` children. */
  selfPath: string;
  /** Whether stdin is a terminal (txn prints prompts only then). */
  interactive: boolean;
  /** Opens a cluster client; the shell passes one that reuses a single connection. */
  openClient: ClientFactory;
}

export interface Command {
  /** The words that select the command, e.g. "lease grant". */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The argument synopsis after the name, e.g. "<key> [<value>]". */
  usage: string;
  /** Extra help text: details, examples. */
  details?: string;
  flags: readonly FlagSpec[];
  /** Not offered inside `lichen shell` (serve, up, shell itself). */
  processOnly?: boolean;
  /** Resolves to the exit code. Throws UsageError for mistakes in the call. */
  run(args: ParsedArgs, context: CommandContext): Promise<number>;
}

/** The result of looking up argv in the table: the command and the arguments after its name. */
export interface CommandMatch {
  command: Command;
  rest: string[];
}

/** Finds the longest command name that prefixes argv ("lease grant" before "lease"). */
export function findCommand(table: readonly Command[], argv: readonly string[]): CommandMatch | undefined {
  let best: CommandMatch | undefined;
  for (const command of table) {
    const words = command.name.split(' ');
    if (words.every((word, i) => argv[i] === word)) {
      if (best === undefined || words.length > best.command.name.split(' ').length) {
        best = { command, rest: argv.slice(words.length) };
      }
    }
  }
  return best;
}

/** Commands whose name starts with these words (for "lichen lease" without a subcommand). */
export function commandsUnder(table: readonly Command[], prefix: string): Command[] {
  return table.filter((c) => c.name.startsWith(`${prefix} `));
}

export function parseCommandArgs(command: Command, argv: readonly string[]): ParsedArgs {
  try {
    return parseArgs(argv, [...command.flags, HELP_FLAG]);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(error.message, command.name);
    throw error;
  }
}

export const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', type: 'boolean', description: 'Show help for this command' };

/** Throws a UsageError unless the count of positionals is within [min, max]. */
export function expectPositionals(args: ParsedArgs, command: Command, min: number, max = min): string[] {
  const count = args.positionals.length;
  if (count < min || count > max) {
    const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new UsageError(
      `${command.name} takes ${expected} argument${max === 1 && min === 1 ? '' : 's'} (${command.usage}), got ${count}`,
      command.name,
    );
  }
  return args.positionals;
}

export function formatCommandHelp(command: Command): string {
  const lines = [`Usage: lichen ${command.name}${command.usage ? ` ${command.usage}` : ''}`, '', command.summary];
  if (command.details) lines.push('', command.details);
  if (command.flags.length > 0) {
    lines.push('', 'Flags:');
    lines.push(...formatFlagTable(command.flags));
  }
  return lines.join('\n') + '\n';
}

export function formatFlagTable(flags: readonly FlagSpec[]): string[] {
  const left = flags.map((f) => {
    const short = f.short ? `-${f.short}, ` : '    ';
    const value = f.type === 'boolean' ? '' : ` <${f.valueName ?? (f.type === 'integer' ? 'n' : 'value')}>`;
    return `  ${short}--${f.name}${value}`;
  });
  const width = Math.min(44, Math.max(...left.map((l) => l.length)) + 2);
  return flags.map((f, i) => {
    const head = left[i] as string;
    return head.length >= width ? `${head}\n${' '.repeat(width)}${f.description}` : `${head.padEnd(width)}${f.description}`;
  });
}

export function formatCommandList(table: readonly Command[], inShell: boolean): string {
  const shown = table.filter((c) => !(inShell && c.processOnly));
  const width = Math.max(...shown.map((c) => c.name.length)) + 2;
  return shown.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n') + '\n';
}

/** Resolves when the signal is aborted (at once if it already is). */
export function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
