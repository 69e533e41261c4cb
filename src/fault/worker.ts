// What every workload's client loop shares: a client bound to one member, the rule for turning a
// failed call into "fail" (surely not applied) or "unknown" (may have applied), and the loop that
// runs one operation at a time and switches to a fresh process after an unknown outcome.
import { setTimeout as delay } from 'node:timers/promises';
import { LichenClient } from '../client/index.js';
import { fromGrpcError, surelyNotExecuted } from '../client/errors.js';
import { ErrorCode } from '../errors.js';
import type { History, OpStatus, Workload } from './history.js';
import type { Prng } from '../random.js';

/** Deadline of one client attempt; shorter than the server's request timeout, on purpose. */
export const CLIENT_TIMEOUT_MS = 2000;
/** Total time one operation may spend retrying (only on errors that surely did not apply). */
export const CLIENT_RETRY_BUDGET_MS = 3000;

export interface WorkerContext {
  history: History;
  workload: Workload;
  worker: number;
  /** The member this worker's client talks to. */
  node: string;
  client: LichenClient;
  prng: Prng;
  stopping: () => boolean;
  /** Pause between two operations of one worker, to leave the machine's 2 cores to the cluster. */
  opDelayMs: number;
}

/** A client that talks to exactly the given endpoints (one, for a worker bound to a member). */
export function openClient(endpoints: string[]): LichenClient {
  return new LichenClient({ endpoints, timeoutMs: CLIENT_TIMEOUT_MS, retryBudgetMs: CLIENT_RETRY_BUDGET_MS });
}

/** Codes that mean the server refused the request before doing anything. */
const REFUSED_CODES = new Set<string>([
  ErrorCode.InvalidArgument,
  ErrorCode.TooLarge,
  ErrorCode.DuplicateKey,
  ErrorCode.Compacted,
  ErrorCode.FutureRevision,
]);

/**
 * How a failed call ends in the history. A read that failed had no effect, whatever the error. A
 * write failed for sure only when the server refused it before execution; anything else (timeout,
 * lost connection, member killed) leaves its outcome unknown.
 */
export function failedOutcome(error: unknown, writes: boolean): { status: OpStatus; message: string } {
  const failure = fromGrpcError(error);
  const message = `${failure.code}: ${failure.message}`;
  if (!writes) return { status: 'fail', message };
  if (failure.details.outcomeUnknown === true) return { status: 'unknown', message };
  if (surelyNotExecuted(failure) || REFUSED_CODES.has(failure.code)) return { status: 'fail', message };
  return { status: 'unknown', message };
}

/** Runs `step` until the run stops. `step` performs and records one operation of `process`. */
export async function runWorker(context: WorkerContext, step: (process: number) => Promise<OpStatus>): Promise<void> {
  let process = context.history.newProcess();
  while (!context.stopping() && !context.history.full) {
    const status = await step(process);
    // The unknown operation may still be in flight forever: its process never issues another.
    if (status === 'unknown') process = context.history.newProcess();
    if (context.opDelayMs > 0) await delay(context.prng.int(context.opDelayMs + 1));
  }
}
