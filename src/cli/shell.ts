// `lichen shell`: an interactive prompt running the client commands without the `lichen`
// prefix, over one client connection kept for the whole session. History is kept in the
// session (arrow keys) and appended to ~/.lichen_history, trimmed to SHELL_HISTORY_LINES_MAX.
// While a command runs, Ctrl-C stops that command (a watch, a keep-alive) and the lines typed go
// to the command's input (so `txn` can read its sections interactively).
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createInterface } from 'node:readline';
import { createHash } from 'node:crypto';
import type { ClientTls } from '../client/tls.js';
import { booleanFlag, splitWords, stringFlag, UsageError, type ParsedArgs } from './args.js';
import type { CliClient, ClientFactory, ClientOptions } from './client-port.js';
import { CLIENT_FLAGS, TLS_FLAG_ENV, resolveAuth, resolveClientTls, resolveEndpoints, resolveTimeoutMs } from './client-commands.js';
import { expectPositionals, type Command, type CommandContext } from './command.js';
import { describeFailure, dispatch } from './dispatch.js';

export const SHELL_HISTORY_LINES_MAX = 1000;
/** A line longer than this is refused rather than parsed. */
export const SHELL_LINE_CHARS_MAX = 1024 * 1024;
export const SHELL_PROMPT = 'lichen> ';

/** The history file: LICHEN_HISTORY_FILE, else ~/.lichen_history; undefined (no file) when neither is known. */
export function historyPath(env: Record<string, string | undefined>): string | undefined {
  if (env.LICHEN_HISTORY_FILE !== undefined) return env.LICHEN_HISTORY_FILE === '' ? undefined : env.LICHEN_HISTORY_FILE;
  return env.HOME ? join(env.HOME, '.lichen_history') : undefined;
}

/** The last `max` lines of the history file, oldest first. */
export function loadHistory(path: string | undefined, max = SHELL_HISTORY_LINES_MAX): string[] {
  if (path === undefined || !existsSync(path)) return [];
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-max);
  } catch {
    return [];
  }
}

/** Rewrites the file when it has grown past the bound, so it never grows without limit. */
export function trimHistoryFile(path: string | undefined, max = SHELL_HISTORY_LINES_MAX): void {
  if (path === undefined || !existsSync(path)) return;
  try {
    const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
    if (lines.length > max) writeFileSync(path, lines.slice(-max).join('\n') + '\n', { mode: 0o600 });
  } catch {
    // History is a convenience: a read-only home must not stop the shell.
  }
}

function appendHistory(path: string | undefined, line: string): void {
  if (path === undefined) return;
  try {
    appendFileSync(path, line.replaceAll('\n', ' ') + '\n', { mode: 0o600 });
  } catch {
    // See trimHistoryFile.
  }
}

/** Tells TLS settings apart without keeping their bytes in a cache key. */
function tlsFingerprint(tls: ClientTls | undefined): string {
  if (tls === undefined) return 'plain';
  const hash = createHash('sha256');
  for (const part of [tls.ca, tls.cert, tls.key]) hash.update(part ?? '').update('\0');
  return `${hash.digest('hex')}${tls.insecureSkipVerify ? '-insecure' : ''}`;
}

/** One client for the whole session; the commands' close() leaves it open. */
function sessionClientFactory(open: ClientFactory): { factory: ClientFactory; closeAll(): Promise<void> } {
  let cached: { key: string; client: CliClient } | undefined;
  const factory: ClientFactory = async (options: ClientOptions) => {
    const key = `${options.endpoints.join(',')}|${options.timeoutMs}|${options.auth?.user ?? ''}|${options.auth?.password ?? ''}|${tlsFingerprint(options.tls)}`;
    if (cached?.key !== key) {
      await cached?.client.close().catch(() => undefined);
      cached = undefined;
      cached = { key, client: await open(options) };
    }
    const client = cached.client;
    return new Proxy(client, {
      get(target, property, receiver) {
        if (property === 'close') return async () => undefined;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  };
  return {
    factory,
    async closeAll() {
      await cached?.client.close().catch(() => undefined);
      cached = undefined;
    },
  };
}

export function createShellCommand(table: () => readonly Command[]): Command {
  const command: Command = {
    name: 'shell',
    usage: '',
    summary: 'An interactive prompt for the client commands (put, get, watch, ...)',
    details: `History is saved to ~/.lichen_history (or LICHEN_HISTORY_FILE; empty disables), at most ${SHELL_HISTORY_LINES_MAX} lines.`,
    flags: CLIENT_FLAGS.filter((f) => f.name !== 'write-out'),
    processOnly: true,
    run: (args, context) => runShell(args, context, table, command),
  };
  return command;
}

async function runShell(args: ParsedArgs, context: CommandContext, table: () => readonly Command[], command: Command): Promise<number> {
  expectPositionals(args, command, 0);
  // Validate now, so a bad --endpoints fails before the prompt appears.
  const endpoints = resolveEndpoints(args, context.env);
  resolveClientTls(args, context.env);
  // The commands typed at the prompt connect as the shell was told to (https:// included).
  const env: Record<string, string | undefined> = { ...context.env, LICHEN_ENDPOINTS: stringFlag(args, 'endpoints') ?? context.env.LICHEN_ENDPOINTS };
  const timeout = stringFlag(args, 'timeout');
  if (timeout !== undefined) env.LICHEN_TIMEOUT = timeout;
  // Commands typed in the shell log in as the shell does.
  const auth = resolveAuth(args, context.env);
  if (auth) Object.assign(env, { LICHEN_USER: auth.user, LICHEN_PASSWORD: auth.password });
  for (const [flag, variable] of Object.entries(TLS_FLAG_ENV)) {
    const value = flag === 'insecure-skip-tls-verify' ? (booleanFlag(args, flag) ? 'true' : undefined) : stringFlag(args, flag);
    if (value !== undefined) env[variable] = value;
  }

  const path = historyPath(context.env);
  trimHistoryFile(path);
  const terminal = context.interactive;
  const session = sessionClientFactory(context.openClient);
  // Before readline starts reading: lines typed meanwhile wait in stdin instead of being missed.
  if (terminal) context.stdout.write(`${await greeting(session.factory, endpoints, resolveTimeoutMs(args, context.env))}; type help for commands\n`);
  const rl = createInterface({
    input: context.stdin,
    output: context.stdout,
    terminal,
    prompt: SHELL_PROMPT,
    historySize: SHELL_HISTORY_LINES_MAX,
    // readline wants the newest entry first.
    history: loadHistory(path).reverse(),
    removeHistoryDuplicates: true,
  } as Parameters<typeof createInterface>[0]);
  // A script piped into the shell gets only the commands' output, no prompts.
  const prompt = () => {
    if (terminal) rl.prompt();
  };

  let running: { abort: AbortController; input: PassThrough } | undefined;
  rl.on('SIGINT', () => {
    if (running !== undefined) {
      running.abort.abort();
      return;
    }
    context.stdout.write('^C (type exit or press Ctrl-D to leave)\n');
    prompt();
  });
  const stopOnSignal = () => rl.close();
  context.signal.addEventListener('abort', stopOnSignal, { once: true });

  prompt();
  let lastCode = 0;
  try {
    for await (const rawLine of rl) {
      if (running !== undefined) {
        // The command in progress (e.g. txn) reads what is typed.
        running.input.write(`${rawLine}\n`);
        continue;
      }
      const line = rawLine.trim();
      if (line === '') {
        prompt();
        continue;
      }
      if (line === 'quit' || line === 'exit') break;
      appendHistory(path, line);
      const abort = new AbortController();
      running = { abort, input: new PassThrough() };
      const done = runLine(line, {
        ...context,
        env,
        stdin: running.input,
        signal: AbortSignal.any([context.signal, abort.signal]),
        forceSignal: AbortSignal.any([context.forceSignal, abort.signal]),
        openClient: session.factory,
      }, table);
      void done.then((code) => {
        lastCode = code;
        running?.input.end();
        running = undefined;
        prompt();
      });
      // At a terminal, lines typed while the command runs are its input (txn), so the loop
      // must go on reading; from a script, the next line is the next command and must wait.
      if (terminal) await untilDoneOrLine(done, rl);
      else await done;
    }
  } finally {
    context.signal.removeEventListener('abort', stopOnSignal);
    running?.abort.abort();
    rl.close();
    await session.closeAll();
  }
  if (terminal) context.stdout.write('\n');
  // From a script, the last command's failure is the shell's; at a terminal the user saw it.
  return terminal ? 0 : lastCode;
}

/**
 * What the shell says when it starts: whether the endpoints answer (Maintenance.Status on each,
 * within the timeout), so that nobody reads "connected" while nothing listens.
 */
async function greeting(open: ClientFactory, endpoints: string[], timeoutMs: number): Promise<string> {
  const statuses = await (await open({ endpoints, timeoutMs })).statusAll();
  const answered = statuses.filter((s) => s.status !== undefined).map((s) => s.endpoint);
  if (answered.length === statuses.length) return `connected to ${answered.join(',')}`;
  const failed = statuses.filter((s) => s.status === undefined).map((s) => `${s.endpoint} ${s.error ?? 'failed'}`);
  if (answered.length > 0) return `connected to ${answered.join(',')} (${failed.join('; ')})`;
  return `not connected: ${failed.join('; ')}; every command will try again`;
}

/** Waits for the command to finish, or for a typed line that `for await` will hand to it. */
async function untilDoneOrLine(done: Promise<number>, rl: ReturnType<typeof createInterface>): Promise<void> {
  let onLine: (() => void) | undefined;
  try {
    await Promise.race([done, new Promise<void>((resolve) => rl.once('line', (onLine = resolve)))]);
  } finally {
    if (onLine !== undefined) rl.off('line', onLine);
  }
}

async function runLine(line: string, context: CommandContext, table: () => readonly Command[]): Promise<number> {
  if (line.length > SHELL_LINE_CHARS_MAX) {
    context.stderr.write(`Error: line longer than ${SHELL_LINE_CHARS_MAX} characters\n`);
    return 2;
  }
  let words: string[];
  try {
    words = splitWords(line);
  } catch (error) {
    context.stderr.write(`Error: ${error instanceof UsageError ? error.message : describeFailure(error)}\n`);
    return 2;
  }
  return dispatch(table(), words, context, { inShell: true });
}
