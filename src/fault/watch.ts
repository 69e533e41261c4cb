// The watch workload: writers put unique values under a prefix while one watcher per member
// watches the whole prefix from the revision the workload started at. A watcher's client lists
// every member, its own first, so when its member dies the watcher must resume elsewhere from its
// last revision + 1. Every watcher must see every committed change under the prefix exactly once,
// in revision order, with the key and value that was written.
import type { LichenClient, Watcher } from '../client/index.js';
import type { History, HistoryOp } from './history.js';
import type { Anomaly, WorkloadCheck } from './verdict.js';
import { failedOutcome, runWorker, type WorkerContext } from './worker.js';

export const WATCH_PREFIX = 'watch/';

export interface WatchOptions {
  keyCount: number;
}

export async function watchWriter(context: WorkerContext, options: WatchOptions): Promise<void> {
  const { history, client, prng } = context;
  let sequence = 0;
  await runWorker(context, async (process) => {
    const key = `${WATCH_PREFIX}${prng.int(options.keyCount)}`;
    const value = `${context.worker}.${process}.${sequence++}`;
    const entry = history.invoke({ workload: 'watch', process, worker: context.worker, node: context.node, f: 'watch-put', key, input: { value } });
    try {
      const result = await client.put(key, value);
      history.complete(entry, 'ok', { revision: result.header.revision });
    } catch (error) {
      const { status, message } = failedOutcome(error, true);
      history.complete(entry, status, undefined, message);
    }
    return entry.status as 'ok' | 'fail' | 'unknown';
  });
}

export interface SeenEvent {
  revision: number;
  key: string;
  value: string;
  type: 'put' | 'delete';
  atMs: number;
}

/** One watcher and everything it delivered. */
export class WatchRecorder {
  readonly events: SeenEvent[] = [];
  error: string | undefined;
  private readonly watcher: Watcher;

  constructor(
    readonly name: string,
    /** The member it prefers (first in its client's endpoint list). */
    readonly node: string,
    client: LichenClient,
    startRevision: number,
    history: History,
  ) {
    this.watcher = client.watch(WATCH_PREFIX, {
      prefix: true,
      startRevision,
      onEvents: (batch) => {
        const atMs = history.now();
        for (const event of batch.events) {
          this.events.push({ revision: event.kv.modRevision, key: event.kv.key.toString(), value: event.kv.value.toString(), type: event.type, atMs });
        }
      },
      onError: (error) => {
        this.error = `${error.code}: ${error.message}`;
      },
    });
  }

  ready(): Promise<void> {
    return this.watcher.ready();
  }

  /** How many times the watch stream was created (1 + resumptions). */
  get creations(): number {
    return this.watcher.creations;
  }

  get lastRevision(): number {
    return this.events.at(-1)?.revision ?? 0;
  }

  cancel(): void {
    this.watcher.cancel();
  }
}

export interface FinalWatchState {
  /** The latest value of every key under the prefix, with its mod revision. */
  latest: Map<string, { value: string; modRevision: number }>;
}

/** Anomalies of one kind reported at most this often per watcher. */
const ANOMALIES_PER_KIND_MAX = 5;

export function checkWatch(ops: readonly HistoryOp[], watchers: readonly WatchRecorder[], final: FinalWatchState): WorkloadCheck {
  const anomalies: Anomaly[] = [];
  const writes = ops.filter((o) => o.workload === 'watch');
  const writeOf = new Map<string, HistoryOp>();
  for (const o of writes) writeOf.set(`${o.key}=${o.input['value'] as string}`, o);

  // The truth: what each revision under the prefix holds, from acknowledged writes and from what
  // any watcher saw (a watcher may see a write whose client never learned the outcome).
  const truth = new Map<number, { key: string; value: string; from: string }>();
  for (const o of writes) {
    if (o.status === 'ok') truth.set(o.output!['revision'] as number, { key: o.key, value: o.input['value'] as string, from: `op ${o.id}` });
  }
  const reported = new Map<string, number>();
  const report = (watcher: string, anomaly: Anomaly): void => {
    const key = `${watcher}/${anomaly.kind}`;
    const seen = reported.get(key) ?? 0;
    reported.set(key, seen + 1);
    if (seen < ANOMALIES_PER_KIND_MAX) anomalies.push(anomaly);
  };
  for (const watcher of watchers) {
    for (const event of watcher.events) {
      const known = truth.get(event.revision);
      const write = writeOf.get(`${event.key}=${event.value}`);
      if (known === undefined) {
        truth.set(event.revision, { key: event.key, value: event.value, from: watcher.name });
      } else if (known.key !== event.key || known.value !== event.value) {
        report(watcher.name, {
          kind: 'watch-divergence',
          workload: 'watch',
          key: event.key,
          description:
            `${watcher.name} saw ${event.key}=${event.value} at revision ${event.revision}, but ${known.from} says ` +
            `revision ${event.revision} is ${known.key}=${known.value}`,
          opIds: write ? [write.id] : [],
        });
      }
      if (write === undefined) {
        report(watcher.name, {
          kind: 'watch-phantom',
          workload: 'watch',
          key: event.key,
          description: `${watcher.name} saw ${event.type} ${event.key}=${event.value} at revision ${event.revision}, which nobody wrote`,
          opIds: [],
        });
      } else if (write.status === 'fail') {
        report(watcher.name, {
          kind: 'failed-write-applied',
          workload: 'watch',
          key: event.key,
          description: `${watcher.name} saw ${event.key}=${event.value} at revision ${event.revision}, a write reported failed (${write.error})`,
          opIds: [write.id],
          culpritOpIds: [write.id],
        });
      }
    }
  }
  const revisions = [...truth.keys()].sort((a, b) => a - b);

  for (const watcher of watchers) {
    let previous = 0;
    const seen = new Set<number>();
    for (const event of watcher.events) {
      if (event.revision <= previous) {
        report(watcher.name, {
          kind: event.revision === previous || seen.has(event.revision) ? 'watch-duplicate' : 'watch-out-of-order',
          workload: 'watch',
          key: event.key,
          description: `${watcher.name} delivered revision ${event.revision} after revision ${previous}`,
          opIds: [],
        });
      }
      seen.add(event.revision);
      previous = Math.max(previous, event.revision);
    }
    // Every revision up to the last one it delivered must have been delivered: no gaps.
    for (const revision of revisions) {
      if (revision > previous) break;
      if (!seen.has(revision)) {
        const fact = truth.get(revision)!;
        const write = writeOf.get(`${fact.key}=${fact.value}`);
        report(watcher.name, {
          kind: 'watch-gap',
          workload: 'watch',
          key: fact.key,
          description: `${watcher.name} (prefers ${watcher.node}, ${watcher.creations} stream(s)) skipped revision ${revision} (${fact.key}=${fact.value}) and went on to ${previous}`,
          opIds: write ? [write.id] : [],
        });
      }
    }
    // After the heal every watcher must have caught up with the final state of every key.
    for (const [key, latest] of final.latest) {
      const last = findLast(watcher.events, (e) => e.key === key);
      if (last === undefined || last.revision !== latest.modRevision || last.value !== latest.value) {
        const write = writeOf.get(`${key}=${latest.value}`);
        report(watcher.name, {
          kind: 'watch-incomplete',
          workload: 'watch',
          key,
          description:
            `${watcher.name} (prefers ${watcher.node}) last saw ${key} ${last ? `=${last.value} at revision ${last.revision}` : 'never'}, ` +
            `but its final value is ${latest.value} at revision ${latest.modRevision}` + (watcher.error ? ` (watcher ended: ${watcher.error})` : ''),
          opIds: write ? [write.id] : [],
        });
      }
    }
  }
  for (const [key, count] of reported) {
    if (count > ANOMALIES_PER_KIND_MAX) {
      const [watcher, kind] = key.split('/') as [string, string];
      anomalies.push({ kind, workload: 'watch', description: `${count - ANOMALIES_PER_KIND_MAX} more ${kind} anomalies of ${watcher} not listed`, opIds: [] });
    }
  }
  return {
    workload: 'watch',
    result: anomalies.length === 0 ? 'valid' : 'invalid',
    details: {
      watchers: watchers.map((w) => ({ name: w.name, prefers: w.node, events: w.events.length, streams: w.creations, lastRevision: w.lastRevision, error: w.error })),
      revisionsKnown: revisions.length,
    },
    anomalies,
  };
}

function findLast<T>(items: readonly T[], test: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i]!)) return items[i];
  return undefined;
}
