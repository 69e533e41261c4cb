// The register workload: get, put and compare-and-set (a Txn comparing the value) over a few
// keys, each worker bound to one member. The history is checked for linearizability against the
// key-value register model of src/check.
import { checkOperations, kvModel, type KvInput, type KvOperation, type KvOutput } from '../check/index.js';
import { compare, op } from '../client/index.js';
import type { History, HistoryOp } from './history.js';
import type { Anomaly, WorkloadCheck } from './verdict.js';
import { failedOutcome, runWorker, type WorkerContext } from './worker.js';

export const REGISTER_PREFIX = 'reg/';

export interface RegisterOptions {
  keyCount: number;
}

export async function registerWorker(context: WorkerContext, options: RegisterOptions): Promise<void> {
  const { history, client, prng } = context;
  /** The last value this worker saw per key: the expected value of its next cas. */
  const lastSeen = new Map<string, string | undefined>();
  let sequence = 0;
  await runWorker(context, async (process) => {
    const key = `${REGISTER_PREFIX}${prng.int(options.keyCount)}`;
    const roll = prng.float();
    const f = roll < 0.4 ? 'get' : roll < 0.7 ? 'put' : 'cas';
    const value = `${process}.${sequence++}`;
    const input: Record<string, unknown> =
      f === 'get' ? {} : f === 'put' ? { value } : { expected: lastSeen.get(key), value };
    const entry = history.invoke({ workload: 'register', process, worker: context.worker, node: context.node, f, key, input });
    try {
      if (f === 'get') {
        const read = (await client.getValue(key))?.toString();
        lastSeen.set(key, read);
        history.complete(entry, 'ok', { value: read });
      } else if (f === 'put') {
        const result = await client.put(key, value);
        lastSeen.set(key, value);
        history.complete(entry, 'ok', { revision: result.header.revision });
      } else {
        const expected = lastSeen.get(key);
        const result = await client
          .txn()
          .if(expected === undefined ? compare.missing(key) : compare.value(key, '==', expected))
          .then(op.put(key, value))
          .commit();
        if (result.succeeded) lastSeen.set(key, value);
        history.complete(entry, 'ok', { ok: result.succeeded, revision: result.header.revision });
      }
    } catch (error) {
      const { status, message } = failedOutcome(error, f !== 'get');
      history.complete(entry, status, undefined, message);
    }
    return entry.status as 'ok' | 'fail' | 'unknown';
  });
}

/** The register part of a history in the checker's terms (failed operations had no effect). */
export function registerOperations(history: readonly HistoryOp[]): { operations: KvOperation[]; sources: HistoryOp[] } {
  const operations: KvOperation[] = [];
  const sources: HistoryOp[] = [];
  for (const entry of history) {
    if (entry.workload !== 'register' || entry.status === 'fail') continue;
    // A pending operation at the end of the run is as unknown as a timed-out one.
    const known = entry.status === 'ok';
    if (!known && entry.f === 'get') continue;
    let input: KvInput;
    let output: KvOutput | undefined;
    if (entry.f === 'get') {
      input = { kind: 'get', key: entry.key };
      output = { value: entry.output?.['value'] as string | undefined };
    } else if (entry.f === 'put') {
      input = { kind: 'put', key: entry.key, value: entry.input['value'] as string };
      output = {};
    } else {
      input = { kind: 'cas', key: entry.key, expected: entry.input['expected'] as string | undefined, value: entry.input['value'] as string };
      output = known ? { ok: entry.output?.['ok'] as boolean } : undefined;
    }
    operations.push({
      clientId: entry.process,
      input,
      call: entry.invokeMs,
      output: known ? output : undefined,
      return: known ? entry.completeMs! : Infinity,
    });
    sources.push(entry);
  }
  return { operations, sources };
}

/** Operations of a failed key shown around the culprit (the whole key can have thousands). */
const ANOMALY_CONTEXT_OPS_MAX = 40;

/** The culprit first, then the operations whose invocation is nearest to it. */
function nearestInTime(ops: HistoryOp[], culprit: HistoryOp | undefined, max: number): HistoryOp[] {
  if (culprit === undefined) return ops.slice(-max);
  const others = ops.filter((o) => o !== culprit);
  others.sort((a, b) => Math.abs(a.invokeMs - culprit.invokeMs) - Math.abs(b.invokeMs - culprit.invokeMs));
  return [culprit, ...others.slice(0, max - 1)];
}

export function checkRegister(history: History, options: { timeoutMs: number }): WorkloadCheck {
  const { operations, sources } = registerOperations(history.ops);
  const started = performance.now();
  const result = checkOperations(kvModel, operations, { timeoutMs: options.timeoutMs });
  const elapsedMs = Math.round(performance.now() - started);
  const anomalies: Anomaly[] = [];
  if (result.result === 'illegal' && result.failure) {
    const failure = result.failure;
    const byOperation = new Map(operations.map((o, i) => [o, sources[i]!]));
    const involved = failure.ops.map((o) => byOperation.get(o)!);
    // The operation that could not follow the longest linearizable prefix is the likely culprit;
    // the report names it first, then the rest of the key's operations in the search window.
    const linearized = new Set(failure.longestLinearizedPrefix);
    const stuck = involved.filter((_, i) => !linearized.has(i));
    const culprit = stuck.filter((o) => o.status === 'ok').sort((a, b) => a.completeMs! - b.completeMs!)[0];
    anomalies.push({
      kind: 'not-linearizable',
      workload: 'register',
      key: failure.partitionKey,
      description:
        `no linearization of the ${failure.ops.length} operations on ${failure.partitionKey}` +
        (culprit ? `; the search got stuck at ${culprit.f} by process ${culprit.process} on ${culprit.node} (op ${culprit.id})` : ''),
      opIds: nearestInTime(involved, culprit, ANOMALY_CONTEXT_OPS_MAX).map((o) => o.id),
      culpritOpIds: culprit ? [culprit.id] : [],
      text: failure.text.split('\n').slice(0, 200).join('\n'),
    });
  }
  return {
    workload: 'register',
    result: result.result === 'ok' ? 'valid' : result.result === 'illegal' ? 'invalid' : 'unknown',
    details: {
      operationsChecked: operations.length,
      keys: result.partitionsChecked,
      searchSteps: result.searchSteps,
      checkMs: elapsedMs,
      ...(result.stoppedBy ? { stoppedBy: result.stoppedBy } : {}),
    },
    anomalies,
  };
}
