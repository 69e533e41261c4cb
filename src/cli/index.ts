// The public surface of the CLI: the command table and the dispatcher, so the process entry
// (main.ts), the shell and tests all run commands the same way.
import { BENCH_COMMANDS } from '../bench/index.js';
import { checkCommand } from './check.js';
import type { Command } from './command.js';
import { CLIENT_COMMANDS } from './client-commands.js';
import { serveCommand } from './serve.js';
import { createShellCommand } from './shell.js';
import { SNAPSHOT_COMMANDS } from './snapshot.js';
import { upCommand } from './up.js';

export const COMMANDS: readonly Command[] = [
  serveCommand,
  upCommand,
  createShellCommand(() => COMMANDS),
  ...CLIENT_COMMANDS,
  ...SNAPSHOT_COMMANDS,
  // The benchmark (src/bench) is written against this folder's Command shape.
  ...BENCH_COMMANDS,
  checkCommand,
];

export { dispatch, EXIT_FAILURE, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE } from './dispatch.js';
export type { Command, CommandContext } from './command.js';
export type { CliClient, ClientFactory, ClientOptions } from './client-port.js';
export { parseArgs, splitWords, UsageError, type FlagSpec, type ParsedArgs } from './args.js';
export { resolveServeConfig, SERVE_OPTIONS, UNSAFE_ENV } from './serve-config.js';
export { parseTxnInput } from './txn-input.js';
