// Running the load generator on etcd's Go client (clientv3) against a 3-member cluster, for the
// benchmark scripts (bench-auth.ts, bench-tls.ts): one run of the tool, with the members' and
// the tool's own CPU time over exactly the seconds the tool measured. The tool takes --endpoints
// --op --clients --conns --seconds --keys (and --user --password, --cacert --cert --key) and
// prints one JSON line with p50ms; Lichen's tests do not use it (it is a local tool).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ProcessCluster } from '../src/server/testing/process-cluster.js';

/** The members the tool talks to: their client endpoints (the tool's --endpoints) and process ids. */
export interface BenchTarget {
  endpoints: string[];
  pids: number[];
  /** Lichen members' HTTP addresses (/metrics): runTool then counts their fsyncs and read rounds. */
  http?: string[];
  /** Count the members' system calls and context switches with `perf stat` while the tool runs. */
  countSyscalls?: boolean;
}

/**
 * A 3-member Lichen cluster from the build (dist/, as users run it: `npm run build` first; through
 * tsx every closure made costs a defineProperty, which is not what users run). With `profileDir`
 * the members run with node --cpu-prof and write their profiles there when stopped; `nodeFlags`
 * go to node before the program (V8's flags, say, to try a garbage collector setting).
 */
export async function startLichenCluster(options: { profileDir?: string; tls?: boolean; nodeFlags?: string[] }): Promise<BenchTarget & { cluster: ProcessCluster; version: string; stop(): Promise<void> }> {
  if (!existsSync(new URL('../dist/cli/main.js', import.meta.url))) throw new Error('no build in dist/: run npm run build first');
  const nodeFlags = [...(options.nodeFlags ?? []), ...(options.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`])];
  const cluster = await ProcessCluster.start({ nodes: 3, nodeFlags, fromBuild: true, tls: options.tls ?? false });
  const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return {
    cluster,
    version: `lichen ${version}`,
    endpoints: cluster.members.map((m) => (options.tls ? `https://${m.client}` : m.client)),
    pids: cluster.members.map((m) => m.process!.pid!),
    http: cluster.members.map((m) => m.http),
    stop: async () => {
      // SIGTERM first: a member writes its CPU profile when it exits by itself.
      await Promise.all(cluster.members.map((m) => cluster.kill(m, 'SIGTERM')));
      await cluster.stop();
    },
  };
}

export interface Workload {
  op: string;
  clients: number;
  conns: number;
  /** The tool's --keys (default BENCH_KEYS): the key space, or for `load` the keys it writes once each. */
  keys?: number;
}

/** The benchmarked keys are k0000000..k0009999 (the tool's names); a set-up loads them once. */
export const BENCH_KEYS = 10_000;

/** The load shapes the scripts measure: the tool's op, clients, and connections they share. */
export const SCENARIOS = {
  'put-1': { op: 'put', clients: 1, conns: 1 },
  'put-64': { op: 'put', clients: 64, conns: 8 },
  'range-1': { op: 'range', clients: 1, conns: 1 },
  'range-64': { op: 'range', clients: 64, conns: 8 },
  'srange-64': { op: 'srange', clients: 64, conns: 8 },
} as const;
export type ScenarioName = keyof typeof SCENARIOS;

/** Seconds of unmeasured puts on a cluster before the first round (a fresh Node process compiles its hot paths). */
export const WARMUP_SECONDS = 5;

export interface ToolResult {
  ok: number;
  errors: number;
  qps: number;
  seconds: number;
  p50ms: number;
  p99ms: number;
  /** The slowest request (the longest stall a client saw). */
  maxms: number;
  firstErr: string;
  /**
   * CPU seconds (user + system) each member used while the tool measured: its last `seconds`
   * before it exited, less the first CPU_WINDOW_SKIP_MS, scaled back to the whole `seconds`. Not
   * before nor at the start: each of the tool's connections logs in first, and a login costs a
   * bcrypt check (0.1–0.2 s of CPU), which would otherwise count as the requests' cost.
   */
  memberCpuSeconds: number[];
  /** The same for the tool itself, which shares the machine's cores with the members. */
  toolCpuSeconds: number;
  /** When the tool measured, in µs of CLOCK_MONOTONIC: the clock of node --cpu-prof's timestamps. */
  windowMonotonicUs: [number, number];
  /**
   * Lichen only (a target with `http`): the members' batching while the tool measured, and the
   * tool's requests over the same time (the counters are read every ROUND_COUNTS_INTERVAL_MS, from
   * the first reading after the tool's logins, which are raft entries of their own).
   */
  rounds?: RoundCounts & { requests: number };
  /** With BenchTarget.countSyscalls: the members' system calls (all, and some by kind) and context switches while the tool measured. */
  syscalls?: SyscallCounts;
}

/** How often the members' fsync and read round counters are read while the tool runs. */
const ROUND_COUNTS_INTERVAL_MS = 250;

/**
 * How the members batched the requests: WAL fsyncs summed over the members (each fsync covers
 * the entries of one raft Ready), and the read rounds the leader ran (linearizable reads share a
 * round; counted by its heartbeats' round trips, one per peer and round, over the peers).
 */
export interface RoundCounts {
  fsyncs: number;
  readRounds: number;
  /** The members' garbage collection pauses (prom-client's nodejs_gc_duration_seconds), summed. */
  gcSeconds: number;
  /** The members' young-generation collections: each comes when the new space is full, so they count allocation. */
  scavenges: number;
  /** The part of gcSeconds that was not young-generation collection (mark-compact, incremental marking, weak callbacks). */
  fullGcSeconds: number;
}

async function scrapeRoundCounts(http: readonly string[]): Promise<RoundCounts> {
  let fsyncs = 0;
  let roundTrips = 0;
  let gcSeconds = 0;
  let scavenges = 0;
  let fullGcSeconds = 0;
  for (const address of http) {
    const text = await (await fetch(`http://${address}/metrics`)).text();
    for (const line of text.split('\n')) {
      const match = /^(lichen_disk_wal_fsync_duration_seconds_count|lichen_network_peer_round_trip_time_seconds_count|nodejs_gc_duration_seconds_sum|nodejs_gc_duration_seconds_count)(?:\{([^}]*)\})? (\S+)$/.exec(line);
      const value = Number(match?.[3]);
      if (match?.[1] === 'lichen_disk_wal_fsync_duration_seconds_count') fsyncs += value;
      else if (match?.[1] === 'nodejs_gc_duration_seconds_sum') {
        gcSeconds += value;
        if (!match[2]?.includes('kind="minor"')) fullGcSeconds += value;
      }
      else if (match?.[1] === 'nodejs_gc_duration_seconds_count') {
        if (match[2]?.includes('kind="minor"')) scavenges += value;
      } else if (match) roundTrips += value;
    }
  }
  return { fsyncs, readRounds: roundTrips / Math.max(1, http.length - 1), gcSeconds, fullGcSeconds, scavenges };
}

/** How often the members' CPU time is read while the tool runs. */
const CPU_SAMPLE_INTERVAL_MS = 50;
/**
 * The start of the tool's measured seconds left out of the CPU count. The tool logs in right
 * before it starts measuring (each login costs the member a bcrypt check, 110–190 ms of CPU on a
 * worker thread) and opens its connections; the window used to start at the last CPU sample
 * before the tool's start, so the end of that work fell into it. Measured 2026-12-06 at load ~15
 * with a login: the members' CPU per request over the window without its first 0.3 s was 0–7%
 * lower than over the whole window (put-1, range-1, put-64, two runs each).
 */
const CPU_WINDOW_SKIP_MS = 250;

/** Runs the tool once; `extraArgs` are e.g. --user/--password or --cacert/--cert/--key. */
export async function runTool(bench: string, target: BenchTarget, workload: Workload, seconds: number, extraArgs: readonly string[] = []): Promise<ToolResult> {
  const args = ['--endpoints', target.endpoints.join(','), '--op', workload.op, '--clients', String(workload.clients), '--conns', String(workload.conns), '--seconds', String(seconds), '--keys', String(workload.keys ?? BENCH_KEYS), ...extraArgs];
  const countReadings: { atMs: number; counts: RoundCounts }[] = [];
  const readCounts = async (): Promise<void> => {
    if (target.http === undefined) return;
    const atMs = performance.now();
    countReadings.push({ atMs, counts: await scrapeRoundCounts(target.http) });
  };
  const counter = setInterval(() => void readCounts().catch(() => undefined), ROUND_COUNTS_INTERVAL_MS);
  const perf = target.countSyscalls ? countSyscalls(target.pids) : undefined;
  const child = spawn(bench, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: (seconds + 120) * 1000 });
  const samples: { atMs: number; cpu: number[]; toolCpu: number }[] = [];
  const sample = (): void => {
    let toolCpu = samples[samples.length - 1]?.toolCpu ?? 0;
    try {
      toolCpu = cpuSeconds([child.pid!]);
    } catch {
      // The tool has exited: its last reading stands.
    }
    samples.push({ atMs: performance.now(), cpu: target.pids.map((pid) => cpuSeconds([pid])), toolCpu });
  };
  sample();
  const timer = setInterval(sample, CPU_SAMPLE_INTERVAL_MS);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | string>((resolve) => child.once('close', (status, signal) => resolve(status ?? signal ?? 'unknown')));
  clearInterval(timer);
  sample();
  const endUs = Number(process.hrtime.bigint() / 1000n);
  clearInterval(counter);
  await readCounts();
  const perfOutput = await perf?.stop();
  if (code !== 0) throw new Error(`${bench} failed (${code}): ${stderr.slice(-2000)}`);
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as Omit<ToolResult, 'memberCpuSeconds' | 'toolCpuSeconds' | 'windowMonotonicUs' | 'rounds'>;
  const end = samples[samples.length - 1]!;
  const startMs = end.atMs - result.seconds * 1000 + CPU_WINDOW_SKIP_MS;
  const start = samples.find((s) => s.atMs >= startMs) ?? samples[0]!;
  // The requests are spread evenly enough over the tool's seconds for the CPU of part of them to stand for all.
  const scale = (result.seconds * 1000) / Math.max(1, end.atMs - start.atMs);
  return {
    ...result,
    memberCpuSeconds: end.cpu.map((cpu, i) => (cpu - start.cpu[i]!) * scale),
    toolCpuSeconds: (end.toolCpu - start.toolCpu) * scale,
    windowMonotonicUs: [endUs - Math.round(result.seconds * 1e6) + CPU_WINDOW_SKIP_MS * 1000, endUs],
    rounds: roundsOver(countReadings, end.atMs - result.seconds * 1000, result.ok + result.errors, result.seconds),
    syscalls: perfOutput?.over(startMs, end.atMs, result.seconds * 1000),
  };
}

/** The members' system calls by kind (perf's tracepoint names), and their context switches. */
const SYSCALL_EVENTS = {
  syscalls: 'raw_syscalls:sys_enter',
  reads: 'syscalls:sys_enter_read',
  writes: 'syscalls:sys_enter_write',
  writevs: 'syscalls:sys_enter_writev',
  epollWaits: 'syscalls:sys_enter_epoll_wait',
  futexes: 'syscalls:sys_enter_futex',
  contextSwitches: 'context-switches',
} as const;
export type SyscallCounts = Record<keyof typeof SYSCALL_EVENTS, number>;

/** How often `perf stat` reports its counts while the tool runs. */
const SYSCALL_COUNT_INTERVAL_MS = 100;

/**
 * `perf stat` on the processes (tracepoint and software counters: this VM has no hardware ones)
 * until stop(); over() then sums the intervals inside a window (the tool's logins and connections
 * come before it), scaled to the window's length like the CPU time. Work counted rather than
 * timed: a request that makes the members read, write, poll or wake more often shows here
 * whatever the machine's load.
 */
function countSyscalls(pids: readonly number[]): { stop(): Promise<{ over(fromMs: number, toMs: number, scaleToMs: number): SyscallCounts }> } {
  const startedMs = performance.now();
  const args = ['stat', '-I', String(SYSCALL_COUNT_INTERVAL_MS), '-x', ',', '-e', Object.values(SYSCALL_EVENTS).join(','), '-p', pids.join(',')];
  const perf = spawn('perf', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  perf.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => perf.once('close', () => resolve()));
  return {
    stop: async () => {
      perf.kill('SIGINT');
      await exited;
      return {
        over: (fromMs, toMs, scaleToMs) => {
          const names = new Map(Object.entries(SYSCALL_EVENTS).map(([name, event]) => [event as string, name as keyof SyscallCounts]));
          const totals = Object.fromEntries(Object.keys(SYSCALL_EVENTS).map((name) => [name, 0])) as SyscallCounts;
          const intervals = new Set<number>();
          for (const line of output.split('\n')) {
            const [at, value, , event] = line.trim().split(',');
            const endMs = startedMs + Number(at) * 1000;
            const name = names.get(event ?? '');
            if (name === undefined || endMs - SYSCALL_COUNT_INTERVAL_MS < fromMs || endMs > toMs || !/^\d+$/.test(value ?? '')) continue;
            intervals.add(endMs);
            totals[name] += Number(value);
          }
          const scale = scaleToMs / Math.max(1, intervals.size * SYSCALL_COUNT_INTERVAL_MS);
          for (const name of Object.keys(totals) as (keyof SyscallCounts)[]) totals[name] = Math.round(totals[name] * scale);
          return totals;
        },
      };
    },
  };
}

/** The counters from the first reading inside the tool's window to the last, with the requests of that span (spread evenly). */
function roundsOver(readings: { atMs: number; counts: RoundCounts }[], windowStartMs: number, requests: number, seconds: number): ToolResult['rounds'] {
  // A reading still in flight when the tool ended may land after the last one.
  const sorted = [...readings].sort((a, b) => a.atMs - b.atMs);
  const last = sorted[sorted.length - 1];
  const first = sorted.find((r) => r.atMs >= windowStartMs);
  if (last === undefined || first === undefined || first === last) return undefined;
  return {
    fsyncs: last.counts.fsyncs - first.counts.fsyncs,
    readRounds: last.counts.readRounds - first.counts.readRounds,
    gcSeconds: last.counts.gcSeconds - first.counts.gcSeconds,
    scavenges: last.counts.scavenges - first.counts.scavenges,
    fullGcSeconds: last.counts.fullGcSeconds - first.counts.fullGcSeconds,
    requests: Math.round((requests * Math.min(1, (last.atMs - first.atMs) / (seconds * 1000)))),
  };
}

const CLOCK_TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system) the processes used so far, from /proc. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** A script's `--name value` flags: values by name, comma lists checked against what is allowed. */
export class ScriptFlags {
  private readonly values = new Map<string, string>();

  constructor(argv: readonly string[], script: string) {
    for (let i = 0; i < argv.length; i += 2) {
      const name = argv[i]!;
      if (!name.startsWith('--') || argv[i + 1] === undefined) throw new Error(`usage: see the comment at the top of ${script} (bad argument ${name})`);
      this.values.set(name.slice(2), argv[i + 1]!);
    }
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  number(name: string, fallback: number): number {
    return Number(this.values.get(name) ?? fallback);
  }

  list<T extends string>(name: string, fallback: string, allowed: readonly string[]): T[] {
    const values = (this.values.get(name) ?? fallback).split(',').filter(Boolean);
    for (const v of values) if (!allowed.includes(v)) throw new Error(`--${name}: "${v}" is not one of ${allowed.join(', ')}`);
    return values as T[];
  }

  /** --bench, the path of the load generator (required). */
  bench(): string {
    const bench = this.values.get('bench');
    if (!bench) throw new Error('--bench <path of the etcd Go client load generator> is required');
    return bench;
  }
}
