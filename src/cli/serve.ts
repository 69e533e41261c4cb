// `lichen serve`: runs one node in the foreground until SIGINT/SIGTERM, logging JSON lines to
// stderr. The server module is imported lazily so client commands start fast.
import { diskFullPath, isDiskFull } from '../errors.js';
import { formatId } from '../ids.js';
import { EXIT_DISK_FULL } from './dispatch.js';
import { createLogger, type Logger } from '../log.js';
import type { Command, CommandContext } from './command.js';
import { expectPositionals, whenAborted } from './command.js';
import { formatTable } from './format.js';
import { resolveServeConfig, SERVE_FLAG_SPECS, SERVE_OPTIONS, UNSAFE_ENV } from './serve-config.js';

/** A node that takes longer than this to close is abandoned (exit 1) rather than hanging forever. */
export const SERVE_CLOSE_TIMEOUT_MS = 15_000;

export const serveCommand: Command = {
  name: 'serve',
  usage: '[flags]',
  summary: 'Run one Lichen node in the foreground',
  details: [
    'Every flag can also be set as an environment variable (LICHEN_ plus the flag name in capitals,',
    'e.g. LICHEN_DATA_DIR) or as a key in the --config JSON file. Precedence: flag > env > file > default.',
    '',
    'Test-only fault injection (environment only, never in production):',
    ...formatTable([
      [`${UNSAFE_ENV.walSyncDelayMs}=<ms>`, 'delay every WAL fsync'],
      [`${UNSAFE_ENV.walNoSync}=1`, 'skip fsync (acknowledged writes can be lost)'],
      [`${UNSAFE_ENV.readsWithoutReadIndex}=1`, 'serve linearizable reads locally (stale reads)'],
      [`${UNSAFE_ENV.diskBudgetBytes}=<bytes>`, `a full disk: WAL and snapshot writes fail with ENOSPC after that many bytes (exit ${EXIT_DISK_FULL})`],
    ]).map((line) => `  ${line}`),
    '',
    'Example: lichen serve --name n1 --data-dir data/n1 --initial-cluster n1=127.0.0.1:2380',
  ].join('\n'),
  flags: SERVE_FLAG_SPECS,
  processOnly: true,
  async run(args, context) {
    expectPositionals(args, serveCommand, 0);
    const { config, sources, unsafeWarnings } = resolveServeConfig({ flags: args.flags, env: context.env });
    const logger = createLogger({ name: config.name, level: config.logLevel, streams: [context.stderr] });
    warnAboutUnsafeOptions(unsafeWarnings, config.name, context);
    logger.info('starting lichen node', {
      dataDir: config.dataDir,
      listenClient: config.listenClient,
      listenPeer: config.listenPeer,
      listenHttp: config.listenHttp,
      initialCluster: config.initialCluster.map((p) => `${p.name}=${p.peerAddress}`).join(','),
      engine: config.engine,
      settings: describeSources(sources),
    });

    const { startNode } = await import('../server/index.js');
    // A signal during start-up (a join that waits on an unreachable member, say) stops it: the
    // process exits when this returns, which releases whatever the start had opened.
    const starting = startNode(config, logger);
    let node;
    try {
      node = await Promise.race([starting, whenAborted(context.signal).then(() => undefined)]);
    } catch (error) {
      // Restarted while the disk is still full (the WAL's torn tail is repaired on open, a new
      // segment created): the same stop, the same code, the same remedy.
      if (!isDiskFull(error)) throw error;
      logger.error(diskFullMessage(error, config.dataDir));
      return EXIT_DISK_FULL;
    }
    if (node === undefined) {
      starting.catch(() => undefined);
      logger.info('start-up interrupted by a signal; stopped');
      return 0;
    }
    logger.info('lichen node ready', { memberId: formatId(node.memberId), ...node.addresses });

    const halt = await Promise.race([whenAborted(context.signal).then(() => undefined), node.halted]);
    if (halt) {
      // Removed from the cluster (or a fatal storage failure): stop, say why, and exit non-zero
      // so a supervisor does not mistake it for a clean shutdown.
      const diskFull = !halt.removed && isDiskFull(halt.error);
      logger.error(diskFull ? diskFullMessage(halt.error, config.dataDir) : `stopping: ${halt.reason}`, { removed: halt.removed });
      await closeWithin(node, logger);
      return diskFull ? EXIT_DISK_FULL : 1;
    }
    logger.info('shutting down');
    return closeWithin(node, logger);
  },
};

/**
 * What an operator reads when the member stops on a full disk (fail-stop, as etcd does): the
 * file, the words of the error, and what to do.
 */
export function diskFullMessage(error: unknown, dataDir: string): string {
  const where = diskFullPath(error) ?? dataDir;
  return (
    `stopping: no space left on device writing ${where}. This member stopped so that it never acknowledges a write or a vote ` +
    `it could not make durable; the others keep serving while a quorum of them runs. Free space on the disk that holds ` +
    `${dataDir}, then start this member again: it repairs the WAL's torn tail and catches up from the leader (exit code ${EXIT_DISK_FULL}).`
  );
}

/** Unsafe options are logged through a logger fixed at warn level, so no --log-level can hide them. */
function warnAboutUnsafeOptions(warnings: string[], name: string, context: CommandContext): void {
  if (warnings.length === 0) return;
  const loud = createLogger({ name, level: 'warn', streams: [context.stderr] });
  for (const warning of warnings) {
    loud.warn(`UNSAFE TEST-ONLY OPTION SET, NEVER USE IN PRODUCTION: ${warning}`, { unsafe: true });
  }
}

function describeSources(sources: Record<string, string>): string {
  return SERVE_OPTIONS.filter((o) => sources[o.flag] !== 'default')
    .map((o) => `${o.flag}:${sources[o.flag]}`)
    .join(' ');
}

async function closeWithin(node: { close(): Promise<void> }, logger: Logger): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), SERVE_CLOSE_TIMEOUT_MS);
  });
  try {
    const outcome = await Promise.race([node.close().then(() => 'closed' as const), timedOut]);
    if (outcome === 'timeout') {
      logger.error('node did not close in time; exiting anyway', { timeoutMs: SERVE_CLOSE_TIMEOUT_MS });
      return 1;
    }
    logger.info('stopped');
    return 0;
  } catch (error) {
    logger.error('closing the node failed', { err: error });
    return 1;
  } finally {
    clearTimeout(timer);
  }
}
