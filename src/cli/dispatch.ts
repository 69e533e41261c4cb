// Turns an argument vector into a command run: help, version, lookup in the command table,
// flag parsing, and the mapping of failures to exit codes (2: usage, 3: the cluster could not be
// reached or gave no answer in time, 4: `serve` stopped on a full disk, 1: any other failure).
// Used by main.ts for the process and by the shell for each line typed.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from './args.js';
import {
  commandsUnder,
  findCommand,
  formatCommandHelp,
  formatCommandList,
  parseCommandArgs,
  type Command,
  type CommandContext,
} from './command.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** No endpoint answered within --timeout: nothing listens, no leader, or no answer in time. */
export const EXIT_UNAVAILABLE = 3;
/** `lichen serve` stopped because its data directory's disk is full (README, "A full disk"). */
export const EXIT_DISK_FULL = 4;

export interface DispatchOptions {
  /** Inside `lichen shell`: process-only commands (serve, up, shell) are unknown there. */
  inShell: boolean;
}

export async function dispatch(
  table: readonly Command[],
  argv: readonly string[],
  context: CommandContext,
  options: DispatchOptions,
): Promise<number> {
  const visible = options.inShell ? table.filter((c) => !c.processOnly) : table;
  const [first] = argv;
  if (first === undefined) {
    context.stdout.write(generalHelp(visible, options.inShell));
    return EXIT_OK;
  }
  if (first === '--version' || first === 'version') {
    context.stdout.write(`lichen ${readVersion(context.selfPath)}\n`);
    return EXIT_OK;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    return printHelp(visible, argv.slice(1), context, options.inShell);
  }

  const match = findCommand(visible, argv);
  if (match === undefined) {
    const group = commandsUnder(visible, first);
    if (group.length > 0) {
      const subcommands = group.map((c) => c.name.slice(first.length + 1)).join(', ');
      const given = argv[1] === undefined ? 'a subcommand' : `a known subcommand (not "${argv[1]}")`;
      return usageFailure(context, `${first} needs ${given}: ${subcommands}`, first, options.inShell);
    }
    return usageFailure(context, `unknown command: ${first}`, undefined, options.inShell);
  }

  const { command, rest } = match;
  try {
    const args = parseCommandArgs(command, rest);
    if (args.flags.help === true) {
      context.stdout.write(formatCommandHelp(command));
      return EXIT_OK;
    }
    return await command.run(args, context);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(context, error.message, command.name, options.inShell);
    context.stderr.write(`Error: ${describeFailure(error)}\n`);
    return isClusterUnavailable(error) ? EXIT_UNAVAILABLE : EXIT_FAILURE;
  }
}

/** The client gave up without an answer from the cluster (see src/client/transport.ts). */
function isClusterUnavailable(error: unknown): boolean {
  return (error as { details?: Record<string, unknown> } | null)?.details?.['clusterUnavailable'] === true;
}

function usageFailure(context: CommandContext, message: string, commandName: string | undefined, inShell: boolean): number {
  const prefix = inShell ? '' : 'lichen ';
  const hint = commandName === undefined ? `${prefix}help` : `${prefix}help ${commandName}`;
  context.stderr.write(`Error: ${message}\nRun '${hint}' for usage.\n`);
  return EXIT_USAGE;
}

/** The message of an error from the cluster, with its stable code when it has one. */
export function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const message = error.message || error.name;
    // The client's sentence about unreachable endpoints is complete; a code would only add noise.
    if (isClusterUnavailable(error)) return message;
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(error);
}

function printHelp(table: readonly Command[], words: readonly string[], context: CommandContext, inShell: boolean): number {
  if (words.length === 0) {
    context.stdout.write(generalHelp(table, inShell));
    return EXIT_OK;
  }
  const match = findCommand(table, words);
  if (match !== undefined && match.rest.length === 0) {
    context.stdout.write(formatCommandHelp(match.command));
    return EXIT_OK;
  }
  const group = commandsUnder(table, words.join(' '));
  if (group.length > 0) {
    context.stdout.write(formatCommandList(group, inShell));
    return EXIT_OK;
  }
  return usageFailure(context, `no help for unknown command: ${words.join(' ')}`, undefined, inShell);
}

function generalHelp(table: readonly Command[], inShell: boolean): string {
  const intro = inShell
    ? 'Commands (type them without the "lichen" prefix; quit, exit or Ctrl-D to leave):\n'
    : 'lichen: a Raft-replicated key-value database that speaks the etcd v3 API\n\nUsage: lichen <command> [arguments] [flags]\n\nCommands:\n';
  const outro = inShell
    ? "\nRun 'help <command>' for a command's flags.\n"
    : "\nRun 'lichen help <command>' for a command's flags; 'lichen --version' for the version.\n" +
      'Client commands take --endpoints host:port,... (or LICHEN_ENDPOINTS), --timeout and -w simple|json.\n';
  return intro + formatCommandList(table, inShell) + outro;
}

/** The version from package.json, two levels above the script (src/cli or dist/cli). */
export function readVersion(selfPath: string): string {
  try {
    const text = readFileSync(resolve(dirname(selfPath), '..', '..', 'package.json'), 'utf8');
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'string' ? version : 'unknown';
  } catch {
    return 'unknown';
  }
}
