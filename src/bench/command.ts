// `lichen bench put|range|txn|mixed`: the benchmark as CLI commands. The summary goes to stdout
// (or one JSON object with -w json); the progress line goes to stderr, rewritten in place when
// stderr is a terminal, one line per second with --progress otherwise.
import type { Writable } from 'node:stream';
import { booleanFlag, stringFlag, type ParsedArgs } from '../cli/args.js';
import { expectPositionals, type Command, type CommandContext } from '../cli/command.js';
import { BENCH_FLAGS, BENCH_KINDS, KIND_FLAGS, benchOptionsFromArgs, type BenchKind } from './options.js';
import { formatJson, formatProgress, formatSummary, type ProgressSnapshot } from './report.js';
import { runBench } from './run.js';

const EXAMPLES: Record<BenchKind, string> = {
  put: 'lichen bench put --endpoints 127.0.0.1:2379 --clients 64 --conns 8 --duration 10 --key-space-size 100000 --target-leader',
  range: 'lichen bench range --clients 64 --conns 8 --key-space-size 1000 --consistency s --duration 10',
  txn: 'lichen bench txn --clients 64 --conns 8 --total 50000 --target-leader',
  mixed: 'lichen bench mixed --clients 32 --conns 4 --read-ratio 0.9 --key-space-size 1000 --duration 10',
  watch: 'lichen bench watch --watchers 1000 --streams 10 --clients 16 --conns 4 --rate 1000 --key-space-size 1000 --duration 10',
  'lease-keepalive': 'lichen bench lease-keepalive --leases 10000 --clients 64 --conns 8 --duration 10',
  'txn-cas': 'lichen bench txn-cas --clients 64 --conns 8 --key-space-size 16 --duration 10',
};

const SUMMARIES: Record<BenchKind, string> = {
  put: 'Benchmark puts (etcd v3 KV.Put)',
  range: 'Benchmark single-key ranges (etcd v3 KV.Range)',
  txn: 'Benchmark txns with one version compare and one put (etcd v3 KV.Txn)',
  mixed: 'Benchmark a mix of ranges and puts (--read-ratio)',
  watch: 'Benchmark watch fan-out: events delivered per second and delivery latency while clients put',
  'lease-keepalive': 'Benchmark lease keep-alives (etcd v3 Lease.LeaseKeepAlive) over many leases',
  'txn-cas': 'Benchmark compare-and-swap txns on a few contended keys (read, then put if unchanged)',
};

const DETAILS = [
  'Speaks only the etcd v3 gRPC API, so it drives etcd and Lichen alike.',
  'Keys are the decimal index in the key space, zero-padded to --key-size.',
  'Runs --total requests (default 10000) or for --duration seconds, whichever comes first.',
  'The JSON output (-w json) is one object: throughputPerSecond, latency {averageMs, p50Ms, p90Ms,',
  'p99Ms, p999Ms, maxMs}, histogram, errors, and tool (the CPU the benchmark itself used).',
].join('\n');

/** Whether a stream is an interactive terminal (process.stderr is a tty.WriteStream then). */
function isTerminal(stream: Writable): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

export interface ProgressPrinter {
  print(snapshot: ProgressSnapshot): void;
  /** Ends the in-place line so the next output starts on a fresh line. */
  finish(): void;
}

export function progressPrinter(stream: Writable, inPlace: boolean): ProgressPrinter {
  let printed = false;
  return {
    print(snapshot) {
      const line = formatProgress(snapshot);
      stream.write(inPlace ? `\r\x1b[2K${line}` : `${line}\n`);
      printed = true;
    },
    finish() {
      if (inPlace && printed) stream.write('\r\x1b[2K');
    },
  };
}

function createBenchCommand(kind: BenchKind): Command {
  const command: Command = {
    name: `bench ${kind}`,
    usage: '[flags]',
    summary: SUMMARIES[kind],
    details: `${DETAILS}\n\nExample: ${EXAMPLES[kind]}`,
    flags: BENCH_FLAGS.filter((f) => KIND_FLAGS[f.name]?.includes(kind) ?? true),
    async run(args: ParsedArgs, context: CommandContext): Promise<number> {
      expectPositionals(args, command, 0);
      const options = benchOptionsFromArgs(kind, args, context.env);
      const json = stringFlag(args, 'write-out') === 'json';
      const terminal = isTerminal(context.stderr);
      const showProgress = booleanFlag(args, 'progress') || terminal;
      const printer = showProgress ? progressPrinter(context.stderr, terminal) : undefined;
      try {
        const result = await runBench(options, {
          signal: context.signal,
          ...(printer !== undefined ? { onProgress: (s: ProgressSnapshot) => printer.print(s) } : {}),
        });
        printer?.finish();
        context.stdout.write(json ? formatJson(result) : formatSummary(result));
        // A run with failures still prints its numbers, but the exit code says it was not clean.
        return result.errors > 0 || result.stoppedReason !== undefined ? 1 : 0;
      } catch (error) {
        printer?.finish();
        throw error;
      }
    },
  };
  return command;
}

/** Every `lichen bench …` command, for the CLI's command table. */
export const BENCH_COMMANDS: readonly Command[] = BENCH_KINDS.map(createBenchCommand);
export const benchRangeCommand = BENCH_COMMANDS[BENCH_KINDS.indexOf('range')]!;
