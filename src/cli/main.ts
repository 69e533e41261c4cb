#!/usr/bin/env node
// The `lichen` command. This file only wires the process (argv, streams, signals, exit code)
// to the command table; the commands live in their own modules.
import { fileURLToPath } from 'node:url';
import type { CommandContext } from './command.js';
import { dispatch } from './dispatch.js';
import { unknownVariableWarnings } from './environment.js';
import { COMMANDS } from './index.js';
import { openSdkClient } from './sdk-adapter.js';

/** After a second Ctrl-C, a command gets this long to stop before the process exits anyway. */
export const FORCE_EXIT_GRACE_MS = 2_000;

/**
 * grpc-js (1.14, channel-credentials.js) sets the TLS server name to the endpoint's host, which
 * for Lichen is usually an IP address, and Node warns about that once per process (DEP0123). The
 * certificate is still checked against the IP; the warning is about grpc-js, not the user's setup,
 * so only that one is kept off stderr (where `lichen serve` writes JSON lines).
 */
function silenceGrpcServerNameWarning(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: unknown }).code : rest[1];
    if (code === 'DEP0123') return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}

async function main(): Promise<void> {
  silenceGrpcServerNameWarning();
  const stop = new AbortController();
  const force = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      stop.abort(signal);
      return;
    }
    force.abort(signal);
    // Bounded: a command that ignores the force signal does not keep the process alive.
    setTimeout(() => process.exit(130), FORCE_EXIT_GRACE_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A closing terminal sends SIGHUP: stop as on Ctrl-C (`lichen up` then stops its nodes).
  process.on('SIGHUP', onSignal);
  // A terminal or pipe that went away (EIO, EPIPE) must not crash a command that is still
  // stopping what it started; what it would have printed has nowhere to go anyway.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  // `lichen up` starts its nodes with an IPC channel, which closes when `up` ends, however it
  // ends (a signal, a crash, SIGKILL): a node stops then, as on SIGTERM. (The node leads a process
  // group of its own, so the terminal's signals do not reach it.)
  if (process.channel) {
    process.channel.unref();
    process.once('disconnect', () => onSignal('SIGHUP'));
  }

  const context: CommandContext = {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    signal: stop.signal,
    forceSignal: force.signal,
    selfPath: fileURLToPath(import.meta.url),
    interactive: process.stdin.isTTY === true,
    openClient: openSdkClient,
  };
  for (const warning of unknownVariableWarnings(process.env)) process.stderr.write(`${warning}\n`);
  const code = await dispatch(COMMANDS, process.argv.slice(2), context, { inShell: false });
  await flush(process.stdout);
  await flush(process.stderr);
  // Exit explicitly: client connections and timers of a finished command must not keep us alive.
  process.exit(code);
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) resolve();
    else stream.write('', () => resolve());
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`lichen: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
