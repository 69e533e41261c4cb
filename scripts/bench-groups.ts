// Many idle raft groups: three stores (src/store) in this process, over real loopback TCP, each
// hosting a replica of every group (in-memory storage under the real replica and MVCC). Measures,
// once every group has a leader and has quiesced: the CPU the process uses while idle (% of one
// core, and per store), the RSS each replica adds, and the latency of a write to a cold (quiet)
// group against a write to a warm one (the same group, just woken). Prints ONE JSON object.
//
//   npm run bench:groups -- --groups 10000    (default 10,000; --idle-seconds 10, --writes 200)
//   npm run bench:groups -- --groups 1000 --disk    (each store on its own data directory: one
//                                                    shared WAL, lmdb partitions, snapshot files)
//
// It runs the built code (dist/, which the npm script builds first), not the sources through
// tsx: tsx names every function it compiles with Object.defineProperty, which turns each closure
// into a dictionary-mode object and added 6 KiB of heap per replica (15 instead of 9 KiB, measured).
import { performance } from 'node:perf_hooks';
import type { NodeId } from '../src/raft/index.js';
import type { Replica } from '../src/replica/index.js';
import { createSilentLogger } from '../dist/log.js';
import { systemEnvironment } from '../dist/server/environment.js';
import { Store } from '../dist/store/index.js';
import { bootstrapMemoryStorage, testReplicaSettings } from '../dist/store/testing.js';
import { TcpTransport } from '../dist/transport/index.js';
import { ProcessStorage, firstSnapshot } from '../dist/replica/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const GROUPS = flag('groups', 10_000);
/** Real storage: each store's groups on a ProcessStorage (shared WAL, lmdb) in a temporary directory. */
const DISK = process.argv.includes('--disk');
const IDLE_SECONDS = flag('idle-seconds', 10);
const WRITES = flag('writes', 200);
const NODES: NodeId[] = [1, 2, 3];
const TICK_MS = 100;
const ELECTION_TICKS = 10;
/** Member ids: four per group, the node's number in the low bits (so member ids are not node ids). */
const memberOf = (node: NodeId, group: number): NodeId => group * 4 + node;
const nodeOf = (_group: number, member: NodeId): NodeId => member % 4;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10;

function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** A CPU profile of the idle phase (BENCH_GROUPS_PROFILE=<file>), for finding what idle groups still cost. */
async function startProfile(): Promise<{ stop(path: string): Promise<void> }> {
  const { Session } = await import('node:inspector/promises');
  const { writeFile } = await import('node:fs/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop(path) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(path, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/**
 * RSS once V8 has compacted the old space (what the replicas' live objects take): a full garbage
 * collection moves objects only off the pages it finds most fragmented, and opening thousands of
 * groups (elections, heartbeats) leaves the survivors spread thin over many pages; V8 compacts
 * them all under memory pressure, here on request.
 */
async function rssAfterCompaction(): Promise<number> {
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString('--compact-on-every-full-gc');
  collectGarbage();
  setFlagsFromString('--no-compact-on-every-full-gc');
  // The freed pages go back to the system from a background thread.
  await sleep(1000);
  return process.memoryUsage().rss;
}

/** A heap snapshot once every group is quiet (BENCH_GROUPS_HEAP=<file>), for finding what an idle replica holds. */
async function writeHeapSnapshot(path: string): Promise<void> {
  const { getHeapSnapshot } = await import('node:v8');
  const { createWriteStream } = await import('node:fs');
  const { pipeline } = await import('node:stream/promises');
  await pipeline(getHeapSnapshot(), createWriteStream(path));
}

async function main(): Promise<void> {
  const logger = createSilentLogger();
  // One set of settings per store, as a member gives all its groups (its config, logger, metrics).
  const settings = NODES.map((node) => testReplicaSettings(0, node, { tickMs: TICK_MS, electionTicks: ELECTION_TICKS }));
  const members = (group: number) => NODES.map((n) => ({ id: memberOf(n, group), name: `m${n}`, peerAddress: addresses[n - 1]! }));
  const dataDir = DISK ? await mkdtemp(join(tmpdir(), 'lichen-bench-groups-')) : '';
  const disks = DISK ? await Promise.all(NODES.map((node) => ProcessStorage.open({ dir: join(dataDir, `n${node}`), engine: 'lmdb' }))) : [];
  const stores = NODES.map(
    (node) =>
      new Store({
        nodeId: node,
        transport: (events) => new TcpTransport({ ...events, id: node, clusterId: 7, listen: { host: '127.0.0.1', port: 0 } }),
        openStorage: (group) =>
          DISK
            ? disks[node - 1]!.replicaStorage(group, (machine) => firstSnapshot(members(group), machine.export()))
            : bootstrapMemoryStorage(members(group)),
        replicaSettings: (group) => ({ ...settings[node - 1]!, memberId: memberOf(node, group) }),
        memberNode: nodeOf,
        environment: systemEnvironment,
        tickMs: TICK_MS,
        electionTicks: ELECTION_TICKS,
        logger,
      }),
  );
  const addresses: string[] = [];
  for (const store of stores) {
    const { port } = await store.start();
    addresses.push(`127.0.0.1:${port}`);
  }
  await sleep(500);
  collectGarbage();
  const before = process.memoryUsage();

  const openStarted = performance.now();
  for (let group = 1; group <= GROUPS; group++) {
    for (const store of stores) {
      const replica = await store.openGroup(group);
      replica.syncPeers();
      replica.start();
    }
    // Let the loops run now and then, so thousands of groups do not all campaign in one turn.
    if (group % 500 === 0) await sleep(10);
  }
  const openMs = performance.now() - openStarted;

  const replicas = (group: number): Replica[] => stores.map((store) => store.replica(group)!);
  const leaderOf = (group: number): Replica | undefined => replicas(group).find((r) => r.isLeader());
  const settleStarted = performance.now();
  let quiet = 0;
  for (;;) {
    quiet = 0;
    for (let group = 1; group <= GROUPS; group++) if (replicas(group).every((r) => r.quiesced)) quiet++;
    if (quiet === GROUPS || performance.now() - settleStarted > 600_000) break;
    await sleep(1000);
  }
  const settleMs = performance.now() - settleStarted;
  // The answers to the last quiesce heartbeats leave with the next beats.
  await sleep(3 * TICK_MS);

  const cpuBefore = process.cpuUsage();
  const ticksBefore = stores.map((store) => store.stats.replicaTicks);
  const wakesBefore = stores.map((store) => store.stats.livenessWakes);
  const idleStarted = performance.now();
  const profile = process.env.BENCH_GROUPS_PROFILE ? await startProfile() : undefined;
  await sleep(IDLE_SECONDS * 1000);
  if (profile) await profile.stop(process.env.BENCH_GROUPS_PROFILE!);
  const idleMs = performance.now() - idleStarted;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuPercentOfCore = ((cpu.user + cpu.system) / 1000 / idleMs) * 100;
  // What an idle process holds without being asked to collect: V8 collects (and compacts) on
  // its own once allocation stops (its memory reducer).
  const rssIdle = process.memoryUsage().rss;
  collectGarbage();
  const memory = process.memoryUsage();
  if (process.env.BENCH_GROUPS_HEAP) await writeHeapSnapshot(process.env.BENCH_GROUPS_HEAP);
  const compacted = await rssAfterCompaction();
  const replicaTicksWhileIdle = stores.reduce((sum, store, i) => sum + store.stats.replicaTicks - ticksBefore[i]!, 0);
  const livenessWakesWhileIdle = stores.reduce((sum, store, i) => sum + store.stats.livenessWakes - wakesBefore[i]!, 0);

  // Cold: a write to a quiet group. Warm: a second write to the same group right after (awake).
  const cold: number[] = [];
  const warm: number[] = [];
  /** Writes that failed (a leader that had just lost its role, say): counted, not timed. */
  let failedWrites = 0;
  const step = Math.max(1, Math.floor(GROUPS / WRITES));
  for (let i = 0, group = 1; i < WRITES && group <= GROUPS; i++, group += step) {
    const leader = leaderOf(group);
    if (!leader || !replicas(group).every((r) => r.quiesced)) continue;
    for (const sample of [cold, warm]) {
      const started = performance.now();
      try {
        await leader.propose({ type: 'put', request: { key: Buffer.from('k'), value: Buffer.from(String(i)) } });
        sample.push(performance.now() - started);
      } catch {
        failedWrites++;
        break;
      }
    }
    // A cold sample counts only with its warm twin, so both sets come from the same groups.
    if (cold.length > warm.length) cold.pop();
  }
  const percentile = (values: number[], p: number): number => {
    const sorted = [...values].sort((a, b) => a - b);
    return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 1000) / 1000;
  };

  const replicasHosted = GROUPS * NODES.length;
  const closeStart = performance.now();
  for (const store of stores) await store.close();
  for (const disk of disks) await disk.close();
  const closeMs = performance.now() - closeStart;
  console.log(
    JSON.stringify({
      groups: GROUPS,
      storage: DISK ? 'lmdb + shared WAL' : 'memory',
      stores: NODES.length,
      replicas: replicasHosted,
      tickMs: TICK_MS,
      openSeconds: Math.round(openMs / 100) / 10,
      settleSeconds: Math.round(settleMs / 100) / 10,
      quiescedGroups: quiet,
      idle: {
        seconds: Math.round(idleMs / 100) / 10,
        cpuPercentOfCore: Math.round(cpuPercentOfCore * 100) / 100,
        cpuPercentOfCorePerStore: Math.round((cpuPercentOfCore / NODES.length) * 100) / 100,
        replicaTicks: replicaTicksWhileIdle,
        livenessWakes: livenessWakesWhileIdle,
      },
      livenessWakesInAll: stores.reduce((sum, store) => sum + store.stats.livenessWakes, 0),
      memory: {
        rssMiB: mib(memory.rss),
        rssBeforeGroupsMiB: mib(before.rss),
        rssIdleKiBPerReplica: Math.round((rssIdle - before.rss) / replicasHosted / 102.4) / 10,
        rssKiBPerReplica: Math.round((memory.rss - before.rss) / replicasHosted / 102.4) / 10,
        rssCompactedKiBPerReplica: Math.round((compacted - before.rss) / replicasHosted / 102.4) / 10,
        heapKiBPerReplica: Math.round((memory.heapUsed - before.heapUsed) / replicasHosted / 102.4) / 10,
        externalKiBPerReplica: Math.round((memory.external - before.external) / replicasHosted / 102.4) / 10,
        gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
      },
      writes: {
        samples: cold.length,
        failed: failedWrites,
        coldP50Ms: percentile(cold, 50),
        coldP99Ms: percentile(cold, 99),
        warmP50Ms: percentile(warm, 50),
        warmP99Ms: percentile(warm, 99),
        coldOverWarmP99: Math.round((percentile(cold, 99) / percentile(warm, 99)) * 100) / 100,
      },
      closeSeconds: Math.round(closeMs / 100) / 10,
      node: process.version,
    }),
  );
  if (DISK) await rm(dataDir, { recursive: true, force: true });
}

await main();
