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
/**
 * A list this long moves its slot on to a fresh key (app/<slot>.<generation + 1>), so values and
 * per-operation records stay small however long the run is.
 */
export const APPEND_LIST_ELEMENTS_MAX = 64;

export interface AppendOptions {
  keyCount: number;
  /** The current generation of each slot, shared by every append worker of the run. */
  generations: Map<number, number>;
}

/**
 * What the history keeps of an observed list: its length, a hash of its contents and its last
 * element. Keeping whole lists would cost memory quadratic in the run's length.
 */
export interface ListDigest {
  length: number;
  hash: number;
  last: string | undefined;
}

const FNV_OFFSET_32 = 0x811c9dc5;

/** FNV-1a over the elements, each followed by a space; extendDigest adds one element. */
export function digestList(list: readonly string[]): ListDigest {
  let digest: ListDigest = { length: 0, hash: FNV_OFFSET_32, last: undefined };
  for (const element of list) digest = extendDigest(digest, element);
  return digest;
}

export function extendDigest(digest: ListDigest, element: string): ListDigest {
  let hash = digest.hash;
  for (let i = 0; i < element.length; i++) hash = Math.imul(hash ^ element.charCodeAt(i), 0x01000193) >>> 0;
  hash = Math.imul(hash ^ 0x20, 0x01000193) >>> 0;
  return { length: digest.length + 1, hash, last: element };
}

/** A list value is its elements separated by spaces (elements never contain one). */
export function parseList(value: string | undefined): string[] {
  return value === undefined || value === '' ? [] : value.split(' ');
}

export async function appendWorker(context: WorkerContext, options: AppendOptions): Promise<void> {
  const { history, client, prng } = context;
  let sequence = 0;
  await runWorker(context, async (process) => {
    const slot = prng.int(options.keyCount);
    const generation = options.generations.get(slot) ?? 0;
    const key = `${APPEND_PREFIX}${slot}.${generation}`;
    const f = prng.float() < 0.7 ? 'append' : 'read';
    const element = `${context.worker}.${process}.${sequence++}`;
    const input = f === 'append' ? { element } : {};
    const entry = history.invoke({ workload: 'append', process, worker: context.worker, node: context.node, f, key, input });
    let wrote = false;
    try {
      const read = await client.get(key);
      const kv = read.kvs[0];
      const before = parseList(kv?.value.toString());
      if (before.length >= APPEND_LIST_ELEMENTS_MAX && (options.generations.get(slot) ?? 0) === generation) {
        options.generations.set(slot, generation + 1);
      }
      if (f === 'read') {
        history.complete(entry, 'ok', { list: digestList(before), revision: read.header.revision });
      } else {
        const after = [...before, element];
        wrote = true;
        const result = await client
          .txn()
          .if(kv === undefined ? compare.missing(key) : compare.modRevision(key, '==', kv.modRevision))
          .then(op.put(key, after.join(' ')))
          .commit();
        const digest = digestList(before);
        if (result.succeeded) history.complete(entry, 'ok', { before: digest, after: extendDigest(digest, element), revision: result.header.revision });
        else history.complete(entry, 'fail', { before: digest }, 'conflict: the list changed since it was read');
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
  // One pass to group by key: filtering the whole history once per key took minutes on the
  // 450,000 operations of a 30-minute run.
  const opsByKey = new Map<string, HistoryOp[]>();
  for (const o of ops) {
    if (o.workload !== 'append') continue;
    const list = opsByKey.get(o.key);
    if (list) list.push(o);
    else opsByKey.set(o.key, [o]);
  }
  let elementsChecked = 0;
  let observationsChecked = 0;
  let unknownApplied = 0;
  for (const key of [...opsByKey.keys()].sort()) {
    const finalList = finalLists.get(key);
    const keyOps = opsByKey.get(key)!;
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
    details: { keys: opsByKey.size, elementsInFinalLists: elementsChecked, observationsChecked, unknownAppendsApplied: unknownApplied },
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
  const prefixHashes = [FNV_OFFSET_32];
  let running = digestList([]);
  for (const element of finalList) {
    running = extendDigest(running, element);
    prefixHashes.push(running.hash);
  }
  const observations: { op: HistoryOp; list: ListDigest; element?: string }[] = [];
  for (const o of ops) {
    if (o.status !== 'ok') continue;
    if (o.f === 'read') observations.push({ op: o, list: o.output!['list'] as ListDigest });
    else observations.push({ op: o, list: o.output!['after'] as ListDigest, element: o.input['element'] as string });
  }
  for (const { op: o, list, element } of observations) {
    if (list.length <= finalList.length && prefixHashes[list.length] === list.hash) continue;
    // An append whose element was lost is reported as a lost append, not a second anomaly.
    if (element !== undefined && !position.has(element)) continue;
    const writer = list.last === undefined ? undefined : appendOf.get(list.last);
    report({
      kind: 'order-violation',
      description:
        `${o.f} by process ${o.process} on ${o.node} observed a list of ${list.length} elements ending in ${list.last} that is not ` +
        `the first ${list.length} elements of the final list of ${key} (${finalList.length} elements; ${list.last} is at position ` +
        `${position.get(list.last ?? '') ?? 'nowhere'} there)`,
      opIds: [o.id, ...(writer && writer !== o ? [writer.id] : [])],
      culpritOpIds: [o.id],
    });
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
    const seen = o.f === 'read' ? (o.output!['list'] as ListDigest) : (o.output!['before'] as ListDigest);
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
