// The append workload: every key holds a list of unique elements. An append reads the list and
// writes it back with one more element in a Txn that compares the key's mod_revision with the one
// it read, so it applies exactly on the state it saw or not at all. Reads return the list.
//
// Because lists only grow, every state anyone observed must be a prefix of the final list, and
// real time orders them: an operation that starts after an append was acknowledged must see that
// append's element. The check therefore finds lost writes (an acknowledged element missing from
// the final list), duplicated writes, reordered writes (an observed list that is not a prefix of
// the final one), stale reads, and writes that were reported failed but applied.
import { compare, op } from '../client/index.js';
import type { HistoryOp } from './history.js';
import type { Anomaly, WorkloadCheck } from './verdict.js';
import { failedOutcome, runWorker, type WorkerContext } from './worker.js';

export const APPEND_PREFIX = 'app/';

export interface AppendOptions {
  keyCount: number;
}

/** A list value is its elements separated by spaces (elements never contain one). */
export function parseList(value: string | undefined): string[] {
  return value === undefined || value === '' ? [] : value.split(' ');
}

export async function appendWorker(context: WorkerContext, options: AppendOptions): Promise<void> {
  const { history, client, prng } = context;
  let sequence = 0;
  await runWorker(context, async (process) => {
    const key = `${APPEND_PREFIX}${prng.int(options.keyCount)}`;
    const f = prng.next() < 0.7 ? 'append' : 'read';
    const element = `${context.worker}.${process}.${sequence++}`;
    const input = f === 'append' ? { element } : {};
    const entry = history.invoke({ workload: 'append', process, worker: context.worker, node: context.node, f, key, input });
    let wrote = false;
    try {
      const read = await client.get(key);
      const kv = read.kvs[0];
      const before = parseList(kv?.value.toString());
      if (f === 'read') {
        history.complete(entry, 'ok', { list: before, revision: read.header.revision });
      } else {
        const after = [...before, element];
        wrote = true;
        const result = await client
          .txn()
          .if(kv === undefined ? compare.missing(key) : compare.modRevision(key, '==', kv.modRevision))
          .then(op.put(key, after.join(' ')))
          .commit();
        if (result.succeeded) history.complete(entry, 'ok', { before, revision: result.header.revision });
        else history.complete(entry, 'fail', { before }, 'conflict: the list changed since it was read');
      }
    } catch (error) {
      const { status, message } = failedOutcome(error, wrote);
      history.complete(entry, status, undefined, message);
    }
    return entry.status as 'ok' | 'fail' | 'unknown';
  });
}

/**
 * Checks the append history against the final list of every key (read after the cluster healed).
 * Pending operations count as unknown.
 */
export function checkAppend(ops: readonly HistoryOp[], finalLists: ReadonlyMap<string, string[]>): WorkloadCheck {
  const anomalies: Anomaly[] = [];
  const appendOps = ops.filter((o) => o.workload === 'append');
  const keys = new Set(appendOps.map((o) => o.key));
  let elementsChecked = 0;
  let observationsChecked = 0;
  let unknownApplied = 0;
  for (const key of [...keys].sort()) {
    const finalList = finalLists.get(key);
    const keyOps = appendOps.filter((o) => o.key === key);
    if (finalList === undefined) {
      anomalies.push({ kind: 'final-read-missing', workload: 'append', key, description: `no final read of ${key}`, opIds: [] });
      continue;
    }
    const result = checkKey(key, keyOps, finalList);
    anomalies.push(...result.anomalies);
    elementsChecked += finalList.length;
    observationsChecked += result.observations;
    unknownApplied += result.unknownApplied;
  }
  return {
    workload: 'append',
    result: anomalies.length === 0 ? 'valid' : 'invalid',
    details: { keys: keys.size, elementsInFinalLists: elementsChecked, observationsChecked, unknownAppendsApplied: unknownApplied },
    anomalies,
  };
}

/** Anomalies of one kind and key reported at most this often (a broken key can produce thousands). */
const ANOMALIES_PER_KIND_MAX = 5;

function checkKey(
  key: string,
  ops: readonly HistoryOp[],
  finalList: readonly string[],
): { anomalies: Anomaly[]; observations: number; unknownApplied: number } {
  const anomalies: Anomaly[] = [];
  const reported = new Map<string, number>();
  const report = (anomaly: Omit<Anomaly, 'workload' | 'key'>): void => {
    const seen = reported.get(anomaly.kind) ?? 0;
    reported.set(anomaly.kind, seen + 1);
    if (seen < ANOMALIES_PER_KIND_MAX) anomalies.push({ ...anomaly, workload: 'append', key });
  };

  const appendOf = new Map<string, HistoryOp>();
  for (const o of ops) if (o.f === 'append') appendOf.set(o.input['element'] as string, o);
  const position = new Map<string, number>();
  finalList.forEach((element, index) => {
    if (position.has(element)) {
      const source = appendOf.get(element);
      report({ kind: 'duplicate-append', description: `element ${element} appears twice in the final list of ${key}`, opIds: source ? [source.id] : [] });
    } else {
      position.set(element, index);
    }
  });

  let unknownApplied = 0;
  for (const element of position.keys()) {
    const source = appendOf.get(element);
    if (source === undefined) {
      report({ kind: 'phantom-element', description: `element ${element} in the final list of ${key} was never appended`, opIds: [] });
    } else if (source.status === 'fail') {
      report({
        kind: 'failed-append-applied',
        description: `append of ${element} was reported failed (${source.error}) but is in the final list of ${key}`,
        opIds: [source.id],
        culpritOpIds: [source.id],
      });
    } else if (source.status !== 'ok') {
      unknownApplied++;
    }
  }

  const acknowledged = ops.filter((o) => o.f === 'append' && o.status === 'ok');
  for (const o of acknowledged) {
    const element = o.input['element'] as string;
    if (!position.has(element)) {
      report({
        kind: 'lost-append',
        description: `append of ${element} to ${key} was acknowledged but is missing from the final list`,
        opIds: [o.id],
        culpritOpIds: [o.id],
      });
    }
  }

  // Every observed state, and the state an acknowledged append produced, must be a prefix of the
  // final list: lists only grow, so anything else means a lost or reordered write.
  const observations: { op: HistoryOp; list: string[] }[] = [];
  for (const o of ops) {
    if (o.status !== 'ok') continue;
    if (o.f === 'read') observations.push({ op: o, list: o.output!['list'] as string[] });
    else observations.push({ op: o, list: [...(o.output!['before'] as string[]), o.input['element'] as string] });
  }
  for (const { op: o, list } of observations) {
    const mismatch = list.findIndex((element, i) => finalList[i] !== element);
    // A list that runs past the final one because its last element was lost is a lost append
    // (reported above), not a second anomaly.
    const lostTail = mismatch >= 0 && mismatch >= finalList.length && !position.has(list[mismatch]!);
    if (mismatch >= 0 && !lostTail) {
      const writer = appendOf.get(list[mismatch]!);
      report({
        kind: 'order-violation',
        description:
          `${o.f} by process ${o.process} on ${o.node} observed [${abbreviate(list)}], which is not a prefix of the final ` +
          `list of ${key}: position ${mismatch} is ${list[mismatch]} there but ${finalList[mismatch] ?? 'nothing'} finally`,
        opIds: [o.id, ...(writer ? [writer.id] : [])],
        culpritOpIds: [o.id],
      });
    }
  }

  // Real time: an operation that began after an append was acknowledged must observe it. The
  // state an operation observed before its own append is its read part (for an append: before).
  const byCompletion = acknowledged
    .filter((o) => position.has(o.input['element'] as string))
    .sort((a, b) => a.completeMs! - b.completeMs!);
  const required: { atMs: number; length: number; op: HistoryOp }[] = [];
  let longest: { length: number; op: HistoryOp } | undefined;
  for (const o of byCompletion) {
    const length = position.get(o.input['element'] as string)! + 1;
    if (longest === undefined || length > longest.length) longest = { length, op: o };
    required.push({ atMs: o.completeMs!, length: longest.length, op: longest.op });
  }
  for (const o of ops) {
    if (o.status !== 'ok') continue;
    const seen = o.f === 'read' ? (o.output!['list'] as string[]) : (o.output!['before'] as string[]);
    const need = lastBefore(required, o.invokeMs);
    if (need !== undefined && seen.length < need.length) {
      report({
        kind: 'stale-read',
        description:
          `${o.f} by process ${o.process} on ${o.node} began at ${o.invokeMs.toFixed(1)} ms and saw ${seen.length} elements of ${key}, ` +
          `but the append of ${need.op.input['element'] as string} (element ${need.length} finally) was acknowledged at ${need.op.completeMs!.toFixed(1)} ms`,
        opIds: [o.id, need.op.id],
        culpritOpIds: [o.id],
      });
    }
  }
  for (const [kind, count] of reported) {
    if (count > ANOMALIES_PER_KIND_MAX) {
      anomalies.push({ kind, workload: 'append', key, description: `${count - ANOMALIES_PER_KIND_MAX} more ${kind} anomalies on ${key} not listed`, opIds: [] });
    }
  }
  return { anomalies, observations: observations.length, unknownApplied };
}

/** The last entry with atMs < t (entries sorted by atMs). */
function lastBefore<T extends { atMs: number }>(entries: readonly T[], t: number): T | undefined {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (entries[mid]!.atMs < t) low = mid + 1;
    else high = mid;
  }
  return low === 0 ? undefined : entries[low - 1];
}

function abbreviate(list: readonly string[]): string {
  return list.length <= 6 ? list.join(' ') : `${list.slice(0, 2).join(' ')} … ${list.slice(-3).join(' ')} (${list.length})`;
}
