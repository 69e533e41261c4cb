// One `lichen check` run: start a real cluster behind fault-injecting peer proxies, run the
// workloads' clients while the nemesis injects faults, heal, wait for recovery, read the final
// state, check the history and build the verdict. Every process and socket it opens is closed
// before it returns, also when something throws.
import { closeSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { LichenClient } from '../client/index.js';
import { createDirectory } from '../directories.js';
import { ProcessCluster } from '../server/testing/process-cluster.js';
import { APPEND_PREFIX, appendWorker, checkAppend, parseList } from './append.js';
import { History, type Workload } from './history.js';
import { Nemesis, type FaultKind, type PlannedFault } from './nemesis.js';
import { PeerNetwork } from './network.js';
import { Prng } from '../random.js';
import { checkRegister, registerWorker } from './register.js';
import { renderReport } from './report.js';
import { buildVerdict, type Anomaly, type Verdict, type WorkloadCheck } from './verdict.js';
import { WATCH_PREFIX, WatchRecorder, checkWatch, watchWriter, type FinalWatchState } from './watch.js';
import { openClient, type WorkerContext } from './worker.js';

export interface CheckRunOptions {
  nodes: number;
  durationMs: number;
  workloads: Workload[];
  faults: FaultKind[];
  seed: number;
  /** Client workers (spread over the workloads and members). */
  clients: number;
  /** Where verdict.json, report.html and the members' logs go; none: nothing is written. */
  outDir?: string;
  /** Start members with LICHEN_UNSAFE_READS_WITHOUT_READINDEX=1 (to show the check can fail). */
  unsafeReads?: boolean;
  /** Keys per workload (fewer keys: more contention, more chance to catch an anomaly). */
  keyCount?: number;
  quietMs?: [number, number];
  holdMs?: [number, number];
  /** A fixed fault schedule instead of a random one; the run lasts until its last fault is healed. */
  plan?: PlannedFault[];
  opDelayMs?: number;
  /** Bound on the wait for a leader and on the final reads after the heal. Default 30000. */
  recoveryTimeoutMs?: number;
  /** Wall-clock budget of the linearizability search. Default 60000. */
  checkTimeoutMs?: number;
  /** Progress lines for a human. */
  log?: (line: string) => void;
  /** Aborting ends the workload phase early (the run still heals, checks and reports). */
  signal?: AbortSignal;
  /** Recorded in the verdict so a reader can rerun it. */
  command?: string;
}

const UNSAFE_READS_ENV = 'LICHEN_UNSAFE_READS_WITHOUT_READINDEX';
/** Bound on waiting for workers to finish their last operation after the run ends. */
const WORKER_DRAIN_MS = 15_000;
const FINAL_READ_ATTEMPTS = 30;

export async function runCheck(options: CheckRunOptions): Promise<Verdict> {
  const log = options.log ?? (() => {});
  const history = new History();
  const errors: string[] = [];
  const clusterAnomalies: Anomaly[] = [];
  const prng = new Prng(options.seed);
  const keyCount = options.keyCount ?? 6;
  const network = new PeerNetwork();
  const clients: LichenClient[] = [];
  const watchers: WatchRecorder[] = [];
  let cluster: ProcessCluster | undefined;
  const runStarted = history.now();
  try {
    if (options.outDir) {
      createDirectory(options.outDir);
      // Member logs are appended to; a previous run's must not mix in.
      rmSync(join(options.outDir, 'logs'), { recursive: true, force: true });
    }
    log(`starting ${options.nodes} members (seed ${options.seed})`);
    cluster = await ProcessCluster.start({
      nodes: options.nodes,
      env: options.unsafeReads ? { [UNSAFE_READS_ENV]: '1' } : {},
      advertisePeer: (name, listenPeer) => network.addMember(name, listenPeer),
      ...(options.outDir ? { logDir: join(options.outDir, 'logs') } : {}),
    });
    const ids = await cluster.memberIds(cluster.members[0]!);
    for (const [id, name] of ids) network.setMemberId(name, Number(id));
    const endpoints = cluster.members.map((m) => m.client);

    // Watchers start before any write under the watched prefix.
    const contexts: { context: WorkerContext; workload: Workload }[] = [];
    if (options.workloads.includes('watch')) {
      const startRevision = (await withRetries(() => openOnce(endpoints, (c) => c.get(WATCH_PREFIX, { prefix: true })))).header.revision + 1;
      for (const member of cluster.members) {
        const preferred = [member.client, ...endpoints.filter((e) => e !== member.client)];
        const client = openClient(preferred);
        clients.push(client);
        watchers.push(new WatchRecorder(`watcher-${member.name}`, member.name, client, startRevision, history));
      }
      await withTimeout(Promise.all(watchers.map((w) => w.ready())), 20_000, 'watchers did not start');
    }

    let stopping = false;
    const workerCount = Math.max(options.clients, options.workloads.length);
    for (let i = 0; i < workerCount; i++) {
      // Each workload goes round the members on its own, starting at a different member, so
      // every workload has clients on several members whatever the counts are.
      const workloadIndex = i % options.workloads.length;
      const workload = options.workloads[workloadIndex]!;
      const member = cluster.members[(Math.floor(i / options.workloads.length) + workloadIndex) % cluster.members.length]!;
      const client = openClient([member.client]);
      clients.push(client);
      contexts.push({
        workload,
        context: {
          history,
          workload,
          worker: i,
          node: member.name,
          client,
          prng: prng.fork(1000 + i),
          stopping: () => stopping,
          opDelayMs: options.opDelayMs ?? 5,
        },
      });
    }
    const nemesis = new Nemesis(
      { cluster, network, history, prng: prng.fork(1), log, errors },
      {
        faults: options.faults,
        quietMs: options.quietMs ?? [1000, 3000],
        holdMs: options.holdMs ?? [2000, 5000],
        ...(options.plan ? { plan: options.plan } : {}),
      },
    );

    log(`running ${workerCount} clients on ${options.workloads.join(', ')} for ${(options.durationMs / 1000).toFixed(0)} s; faults: ${options.faults.join(', ') || 'none'}`);
    const generations = new Map<number, number>();
    const running = contexts.map(({ context, workload }) => {
      const work =
        workload === 'register'
          ? registerWorker(context, { keyCount })
          : workload === 'append'
            ? appendWorker(context, { keyCount: Math.max(1, Math.ceil(keyCount / 2)), generations })
            : watchWriter(context, { keyCount: Math.max(1, Math.ceil(keyCount / 2)) });
      return work.catch((error: unknown) => {
        errors.push(`worker ${context.worker} (${workload}) crashed: ${(error as Error)?.stack ?? String(error)}`);
      });
    });
    if (options.faults.length > 0) nemesis.start();
    await sleepUnlessAborted(options.durationMs, options.signal);
    // A fixed plan runs to its end even when restarts on a loaded machine make it outlast the
    // duration: the plan's faults are what the run promised to inject.
    if (options.plan && options.faults.length > 0) await untilAborted(nemesis.planDone(), options.signal);

    log('healing and stopping clients');
    stopping = true;
    await nemesis.stop();
    await withTimeout(Promise.all(running), WORKER_DRAIN_MS, 'workers did not finish their last operation').catch((error: Error) => {
      errors.push(error.message);
    });

    log('waiting for the cluster to recover');
    const recoveryMs = options.recoveryTimeoutMs ?? 30_000;
    try {
      await cluster.waitForLeader(recoveryMs, cluster.members);
    } catch (error) {
      clusterAnomalies.push({
        kind: 'no-recovery',
        workload: 'cluster',
        description: `after every fault was healed the cluster did not agree on a leader within ${recoveryMs} ms: ${(error as Error).message}`,
        opIds: [],
      });
    }

    const checks: WorkloadCheck[] = [];
    const finalClient = openClient(endpoints);
    clients.push(finalClient);
    if (options.workloads.includes('append')) {
      const finalLists = new Map<string, string[]>();
      const result = await withRetries(() => finalClient.get(APPEND_PREFIX, { prefix: true })).catch((error: Error) => {
        errors.push(`final read of the append keys failed: ${error.message}`);
        return undefined;
      });
      if (result) {
        for (const kv of result.kvs) finalLists.set(kv.key.toString(), parseList(kv.value.toString()));
        // A key nobody managed to append to is an empty list.
        for (const op of history.ops) if (op.workload === 'append' && !finalLists.has(op.key)) finalLists.set(op.key, []);
        checks.push(checkAppend(history.ops, finalLists));
      }
    }
    if (options.workloads.includes('watch')) {
      const result = await withRetries(() => finalClient.get(WATCH_PREFIX, { prefix: true })).catch((error: Error) => {
        errors.push(`final read of the watch keys failed: ${error.message}`);
        return undefined;
      });
      if (result) {
        const final: FinalWatchState = { latest: new Map(result.kvs.map((kv) => [kv.key.toString(), { value: kv.value.toString(), modRevision: kv.modRevision }])) };
        const target = Math.max(0, ...result.kvs.map((kv) => kv.modRevision));
        await waitUntil(() => watchers.every((w) => w.lastRevision >= target || w.error !== undefined), recoveryMs);
        checks.push(checkWatch(history.ops, watchers, final));
      }
    }
    clusterAnomalies.push(...(await compareReplicas(cluster, recoveryMs, errors)));
    for (const member of cluster.members) {
      if (member.troubles === undefined || member.troubles.length === 0) continue;
      clusterAnomalies.push({
        kind: 'member-error',
        workload: 'cluster',
        description: `${member.name} logged ${member.troubles.length} error(s) or crashed; first: ${member.troubles[0]!.slice(0, 600)}`,
        opIds: [],
        text: member.troubles.join('\n'),
      });
    }
    if (options.workloads.includes('register')) {
      log('checking linearizability of the register history');
      checks.push(checkRegister(history, { timeoutMs: options.checkTimeoutMs ?? 60_000 }));
    }

    const verdict = buildVerdict({
      history,
      checks,
      clusterAnomalies,
      errors,
      seed: options.seed,
      nodes: options.nodes,
      workloads: options.workloads,
      faultsRequested: options.faults,
      clients: workerCount,
      unsafeReads: options.unsafeReads ?? false,
      durationMs: Math.round(history.now() - runStarted),
      command: options.command ?? '',
    });
    if (options.outDir) {
      writeFileSync(join(options.outDir, 'verdict.json'), JSON.stringify(verdict, null, 2) + '\n');
      writeHistory(join(options.outDir, 'history.jsonl'), history);
      writeFileSync(join(options.outDir, 'report.html'), renderReport(verdict, history));
    }
    return verdict;
  } finally {
    for (const watcher of watchers) watcher.cancel();
    for (const client of clients) client.close();
    await cluster?.stop();
    await network.close();
  }
}

/**
 * After recovery every member must hold the same data: each one's HashKV at one revision that
 * all of them have applied must agree (a restarted member that lost or invented writes differs).
 */
async function compareReplicas(cluster: ProcessCluster, timeoutMs: number, errors: string[]): Promise<Anomaly[]> {
  const deadline = performance.now() + timeoutMs;
  const revisionOf = async (member: (typeof cluster.members)[number]): Promise<number> => {
    const response = await cluster.call<{ header: { revision: string } }>(member, 'KV', 'Range', { key: Buffer.from('\0'), serializable: true }, 2000);
    return Number(response.header.revision);
  };
  try {
    const leader = await cluster.waitForLeader(timeoutMs, cluster.members);
    const target = await revisionOf(leader);
    for (const member of cluster.members) {
      while ((await revisionOf(member).catch(() => 0)) < target) {
        if (performance.now() > deadline) {
          return [{ kind: 'replica-behind', workload: 'cluster', description: `${member.name} did not reach revision ${target} within ${timeoutMs} ms after the heal`, opIds: [] }];
        }
        await delay(100);
      }
    }
    const hashes = await Promise.all(
      cluster.members.map((m) => cluster.call<{ hash: number | string }>(m, 'Maintenance', 'HashKV', { revision: target }, 5000).then((r) => String(r.hash))),
    );
    if (new Set(hashes).size > 1) {
      return [{
        kind: 'replica-divergence',
        workload: 'cluster',
        description: `members disagree on HashKV at revision ${target}: ${cluster.members.map((m, i) => `${m.name}=${hashes[i]}`).join(', ')}`,
        opIds: [],
      }];
    }
  } catch (error) {
    errors.push(`replica comparison failed: ${(error as Error).message}`);
  }
  return [];
}

/** One JSON object per line (faults first, then operations): a long run's history is too big for one string. */
function writeHistory(path: string, history: History): void {
  const fd = openSync(path, 'w');
  try {
    for (const fault of history.faults) writeSync(fd, JSON.stringify({ fault }) + '\n');
    for (const op of history.ops) writeSync(fd, JSON.stringify({ op }) + '\n');
  } finally {
    closeSync(fd);
  }
}

async function openOnce<T>(endpoints: string[], use: (client: LichenClient) => Promise<T>): Promise<T> {
  const client = openClient(endpoints);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

async function withRetries<T>(attempt: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < FINAL_READ_ATTEMPTS; i++) {
    try {
      return await attempt();
    } catch (error) {
      lastError = error;
      await delay(500);
    }
  }
  throw lastError;
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await delay(100);
  }
  return true;
}

/** Resolves when `done` does or when the run is aborted, whichever comes first; leaves no listener behind. */
function untilAborted(done: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return done;
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = (): void => {
      signal.removeEventListener('abort', finish);
      resolve();
    };
    signal.addEventListener('abort', finish, { once: true });
    void done.then(finish, finish);
  });
}

function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const slept = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return untilAborted(slept, signal).finally(() => clearTimeout(timer));
}
