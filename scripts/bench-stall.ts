// node --import tsx scripts/bench-stall.ts --workload check-perf-m|check-perf-l|load-1m
//     [--go-client <etcd-go-bench>] [--profile-dir <dir>] [--sample-ms 500] [--warmup 5]
//     [--keys 1000000] [--stretch-ms 50] [--node-flags=<flags for the members' node>] [--window-s 55] [--out <file.json>]
//
// Finds what stalls Lichen's members under a long load: starts a 3-member cluster from the build
// (dist/: `npm run build` first), runs the load (etcdctl check perf, or the Go client's `load` of
// --keys keys), and meanwhile reads each member's /metrics every --sample-ms: the longest
// event-loop delay since the last reading (prom-client's nodejs_eventloop_lag_max_seconds, which
// it resets on each reading), the garbage collections by kind, the WAL fsyncs, engine commits and
// applies (the largest histogram bucket each reached in the interval), and leader changes. It
// prints the readings where some member's event loop was held longer than --stretch-ms.
//
// --profile-dir: the members also run with node --cpu-prof; after the load the script reads each
// member's profile and lists its longest busy stretches (consecutive samples with the main thread
// never idle, i.e. the loop did not wait for I/O once) with the functions that took their time,
// so a stall can be named. Its summary goes to stdout and, with --out, everything to a JSON file.
//
// Over the first --window-s seconds of the load (default 55: inside check perf's 60 s of puts,
// before its final Delete) it also reads each member's kernel counters (/proc: CPU and its system
// part, read and write calls, voluntary and involuntary context switches) and GC time, per put at
// etcdctl's writes/s, and the distributions of WAL fsyncs, proposal to apply on the proposing
// member, Put requests, applies and engine commits (how many, and how many over 25/50/100/250 ms):
// figures that survive a crowded machine better than one run's slowest request. Each member's role
// (leader or follower, at the window's end) is printed with them, and the share of proposals over
// 50 ms on the followers against the leader's (a follower's puts take one more hop).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { runTool, startLichenCluster } from './go-bench.js';

const { values: args } = parseArgs({
  options: {
    workload: { type: 'string', default: 'check-perf-m' },
    'go-client': { type: 'string', default: '/work/wt-tools/etcd-go-bench' },
    'profile-dir': { type: 'string' },
    'node-flags': { type: 'string', default: '' },
    'sample-ms': { type: 'string', default: '500' },
    warmup: { type: 'string', default: '5' },
    keys: { type: 'string', default: '1000000' },
    'stretch-ms': { type: 'string', default: '50' },
    'window-s': { type: 'string', default: '55' },
    out: { type: 'string' },
  },
});
const sampleMs = Number(args['sample-ms']);
const stretchMs = Number(args['stretch-ms']);

/** One member's counters at one reading (histograms as cumulative bucket counts by upper bound). */
interface Reading {
  lagMaxSeconds: number;
  gc: Record<string, { count: number; sum: number }>;
  histograms: Record<string, Map<number, number>>;
  leaderChanges: number;
  heapUsedMiB: number;
  isLeader: boolean;
}

const HISTOGRAMS = {
  fsync: 'lichen_disk_wal_fsync_duration_seconds',
  commit: 'lichen_disk_backend_commit_duration_seconds',
  apply: 'lichen_server_apply_duration_seconds',
  gcMajor: 'nodejs_gc_duration_seconds',
  proposal: 'lichen_server_proposal_commit_duration_seconds',
  put: 'lichen_grpc_request_seconds',
} as const;

async function read(http: string): Promise<Reading> {
  const text = await (await fetch(`http://${http}/metrics`)).text();
  const reading: Reading = { lagMaxSeconds: NaN, gc: {}, histograms: {}, leaderChanges: 0, heapUsedMiB: NaN, isLeader: false };
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const [, name, labels = '', raw] = match;
    const value = Number(raw);
    if (name === 'nodejs_eventloop_lag_max_seconds') reading.lagMaxSeconds = value;
    else if (name === 'nodejs_heap_size_used_bytes') reading.heapUsedMiB = value / 2 ** 20;
    else if (name === 'lichen_raft_leader_changes_total') reading.leaderChanges = value;
    else if (name === 'lichen_server_is_leader') reading.isLeader = value === 1;
    else if (name === 'nodejs_gc_duration_seconds_sum' || name === 'nodejs_gc_duration_seconds_count') {
      const kind = /kind="([^"]+)"/.exec(labels)?.[1] ?? '?';
      const entry = (reading.gc[kind] ??= { count: 0, sum: 0 });
      if (name.endsWith('_sum')) entry.sum = value;
      else entry.count = value;
    }
    for (const [short, metric] of Object.entries(HISTOGRAMS)) {
      if (name !== `${metric}_bucket`) continue;
      // The GC histogram is per kind: only the collections that are not scavenges count as major.
      if (short === 'gcMajor' && labels.includes('kind="minor"')) continue;
      // Requests: only the puts (check perf's load), by the full method name.
      if (short === 'put' && !labels.includes('KV/Put"')) continue;
      const le = /le="([^"]+)"/.exec(labels)?.[1];
      const bound = le === '+Inf' ? Infinity : Number(le);
      const buckets = (reading.histograms[short] ??= new Map());
      buckets.set(bound, (buckets.get(bound) ?? 0) + value);
    }
  }
  return reading;
}

/** The upper bound of the largest bucket that gained an observation between two readings (0: none). */
function largestBucket(before: Map<number, number> | undefined, after: Map<number, number> | undefined): number {
  if (!after) return 0;
  const bounds = [...after.keys()].sort((a, b) => a - b);
  let largest = 0;
  let previousDelta = 0;
  for (const bound of bounds) {
    const delta = (after.get(bound) ?? 0) - (before?.get(bound) ?? 0);
    if (delta > previousDelta) largest = bound;
    previousDelta = delta;
  }
  return largest;
}

interface Interval {
  atMs: number;
  member: number;
  lagMaxMs: number;
  fsyncMaxMs: number;
  commitMaxMs: number;
  applyMaxMs: number;
  gcMaxMs: number;
  gcMs: Record<string, number>;
  leaderChanges: number;
  heapUsedMiB: number;
}

function interval(atMs: number, member: number, before: Reading, after: Reading): Interval {
  const gcMs: Record<string, number> = {};
  for (const [kind, { sum }] of Object.entries(after.gc)) {
    const ms = (sum - (before.gc[kind]?.sum ?? 0)) * 1000;
    if (ms > 0) gcMs[kind] = Math.round(ms * 10) / 10;
  }
  const ms = (short: keyof typeof HISTOGRAMS) => largestBucket(before.histograms[short], after.histograms[short]) * 1000;
  return {
    atMs,
    member,
    lagMaxMs: Math.round(after.lagMaxSeconds * 1000),
    fsyncMaxMs: ms('fsync'),
    commitMaxMs: ms('commit'),
    applyMaxMs: ms('apply'),
    gcMaxMs: ms('gcMajor'),
    gcMs,
    leaderChanges: after.leaderChanges - before.leaderChanges,
    heapUsedMiB: Math.round(after.heapUsedMiB),
  };
}

/**
 * A histogram's observations between two readings: how many, and how many above 25, 50, 100 and
 * 250 ms (by bucket bounds: the count at or below the largest bound not above each threshold).
 */
function distribution(before: Map<number, number> | undefined, after: Map<number, number> | undefined): string {
  if (!after) return '-';
  const delta = (bound: number) => (after.get(bound) ?? 0) - (before?.get(bound) ?? 0);
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = delta(Infinity);
  const above = (seconds: number) => total - delta(bounds.filter((b) => b <= seconds).pop() ?? 0);
  return `n ${total}, >25ms ${above(0.025)}, >50ms ${above(0.05)}, >100ms ${above(0.1)}, >250ms ${above(0.25)}, max ≤${largestBucket(before, after) * 1000} ms`;
}

// ---------------------------------------------------------------- CPU profiles

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface Stretch {
  startUs: number;
  ms: number;
  /** Self time by function, largest first (ms). */
  self: Array<[string, number]>;
  /** Time by function anywhere on the stack, largest first (ms): what the stretch was doing. */
  inclusive: Array<[string, number]>;
}

const frameName = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(src|dist|node_modules)\//, '$1/');
  return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
};

/** The longest runs of samples where the main thread was never idle. */
function busyStretches(profile: CpuProfile, minMs: number): Stretch[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const stretches: Stretch[] = [];
  let start = -1;
  let timeUs = profile.startTime;
  const times: number[] = [];
  for (let i = 0; i < profile.samples.length; i++) {
    timeUs += profile.timeDeltas[i] ?? 0;
    times.push(timeUs);
  }
  const close = (end: number) => {
    const ms = (times[end - 1]! - times[start]!) / 1000;
    if (ms < minMs) return;
    const self = new Map<string, number>();
    const inclusive = new Map<string, number>();
    for (let i = start; i < end; i++) {
      const weightMs = ((profile.timeDeltas[i + 1] ?? 1000) as number) / 1000;
      let node = byId.get(profile.samples[i]!)!;
      self.set(frameName(node), (self.get(frameName(node)) ?? 0) + weightMs);
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        node = byId.get(id)!;
        const name = frameName(node);
        if (seen.has(name)) continue;
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + weightMs);
      }
    }
    const top = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([n, v]) => [n, Math.round(v)] as [string, number]);
    stretches.push({ startUs: times[start]!, ms: Math.round(ms), self: top(self), inclusive: top(inclusive) });
  };
  for (let i = 0; i < profile.samples.length; i++) {
    const idle = byId.get(profile.samples[i]!)!.callFrame.functionName === '(idle)';
    if (!idle && start < 0) start = i;
    if (idle && start >= 0) {
      close(i);
      start = -1;
    }
  }
  if (start >= 0) close(profile.samples.length);
  return stretches.sort((a, b) => b.ms - a.ms).slice(0, 8);
}

// ---------------------------------------------------------------- the process's own counters

/** What the kernel counts for one member: CPU, system calls that read and write, context switches. */
interface ProcCounters {
  cpuMs: number;
  /** Of cpuMs, the kernel's part (system calls: sockets, the WAL, the engine's writes). */
  sysMs: number;
  syscr: number;
  syscw: number;
  voluntary: number;
  involuntary: number;
  gcMs: number;
}

function procCounters(pid: number, reading: Reading | undefined): ProcCounters {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const num = (text: string, name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1] ?? NaN);
  return {
    // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second).
    cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
    sysMs: Number(fields[12]) * 10,
    syscr: num(io, 'syscr'),
    syscw: num(io, 'syscw'),
    voluntary: num(status, 'voluntary_ctxt_switches'),
    involuntary: num(status, 'nonvoluntary_ctxt_switches'),
    gcMs: reading ? Object.values(reading.gc).reduce((sum, g) => sum + g.sum * 1000, 0) : NaN,
  };
}

// ---------------------------------------------------------------- the run

async function runWorkload(endpoints: string[], pids: number[]): Promise<string> {
  const workload = args.workload!;
  if (workload.startsWith('check-perf-')) {
    const load = workload.slice('check-perf-'.length);
    const child = spawn('etcdctl', ['--endpoints', endpoints.join(','), 'check', 'perf', `--load=${load}`], { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await new Promise((resolve) => child.once('close', resolve));
    const verdicts = output.split(/[\r\n]+/).filter((l) => /PASS|FAIL|ERROR|Slowest|Stddev|Throughput/.test(l));
    // No verdict: etcdctl failed (its last words say why).
    return verdicts.length > 0 ? verdicts.join('\n') : `etcdctl printed no verdict: ${output.slice(-300)}`;
  }
  if (workload === 'load-1m') {
    const run = await runTool(args['go-client']!, { endpoints, pids }, { op: 'load', clients: 64, conns: 8, keys: Number(args.keys) }, 1800);
    return `load: ${run.ok} ok, ${run.errors} errors, ${run.qps.toFixed(0)} puts/s, p50 ${run.p50ms} p99 ${run.p99ms} slowest ${run.maxms} ms`;
  }
  throw new Error(`unknown --workload ${workload}`);
}

const profileDir = args['profile-dir'];
if (profileDir) mkdirSync(profileDir, { recursive: true });
const target = await startLichenCluster({ profileDir, nodeFlags: args['node-flags']!.split(' ').filter(Boolean) });
const startedAt = new Date().toISOString();
const timeline: Interval[] = [];
let verdict = '';
let windowCounters: ProcCounters[] = [];
let windowDistributions: Array<Record<string, string>> = [];
try {
  const warmupSeconds = Number(args.warmup);
  if (warmupSeconds > 0) await runTool(args['go-client']!, target, { op: 'put', clients: 16, conns: 4 }, warmupSeconds);
  const last = await Promise.all(target.http!.map(read));
  const t0 = performance.now();
  let running = true;
  const sampler = (async () => {
    while (running) {
      await sleep(sampleMs);
      // A member too busy to answer (or gone) is read again next time; its interval then spans both.
      const now = await Promise.all(target.http!.map((http) => read(http).catch(() => undefined)));
      const atMs = Math.round(performance.now() - t0);
      now.forEach((reading, member) => {
        if (reading === undefined) return;
        timeline.push(interval(atMs, member, last[member]!, reading));
        last[member] = reading;
      });
    }
  })();
  const loadBefore = loadavg()[0]!.toFixed(1);
  // The kernel's counters over a window inside check perf's 60 s of puts (its final Delete after).
  const windowS = Number(args['window-s']);
  const countersBefore = target.pids.map((pid, m) => procCounters(pid, last[m]));
  const readingsBefore = [...last];
  const windowDone = sleep(windowS * 1000).then(async () => {
    const readings = await Promise.all(target.http!.map((http) => read(http).catch(() => undefined)));
    windowCounters = target.pids.map((pid, m) => {
      const after = procCounters(pid, readings[m]);
      const before = countersBefore[m]!;
      return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof ProcCounters]])) as unknown as ProcCounters;
    });
    windowDistributions = readings.map((after, m) => {
      const before = readingsBefore[m]!;
      const shapes = Object.fromEntries((['fsync', 'proposal', 'put', 'apply', 'commit'] as const).map((short) => [short, distribution(before.histograms[short], after?.histograms[short])]));
      return { role: after === undefined ? '?' : after.isLeader ? 'leader' : 'follower', ...shapes };
    });
  });
  verdict = await runWorkload(target.endpoints, target.pids);
  await windowDone;
  running = false;
  await sampler;
  verdict += `\nload average ${loadBefore} before, ${loadavg()[0]!.toFixed(1)} after; started ${startedAt}`;
} finally {
  await target.stop();
}

process.stdout.write(`${args.workload}: ${verdict}\n\n`);
const worst = (key: keyof Interval) => Math.max(...timeline.map((i) => i[key] as number));
process.stdout.write(`longest event-loop delay per member: ${[0, 1, 2].map((m) => Math.max(...timeline.filter((i) => i.member === m).map((i) => i.lagMaxMs))).join(' / ')} ms; ` +
  `largest bucket of fsync ${worst('fsyncMaxMs')} ms, engine commit ${worst('commitMaxMs')} ms, apply ${worst('applyMaxMs')} ms, major GC ${worst('gcMaxMs')} ms; leader changes ${timeline.reduce((s, i) => s + i.leaderChanges, 0)}\n`);
for (const i of timeline.filter((x) => x.lagMaxMs >= stretchMs || x.leaderChanges > 0)) {
  process.stdout.write(`  t=${(i.atMs / 1000).toFixed(1)}s m${i.member + 1} loop ${i.lagMaxMs} ms, fsync ≤${i.fsyncMaxMs} commit ≤${i.commitMaxMs} apply ≤${i.applyMaxMs} majorGC ≤${i.gcMaxMs} ms, gc ${JSON.stringify(i.gcMs)}, heap ${i.heapUsedMiB} MiB${i.leaderChanges ? `, LEADER CHANGES ${i.leaderChanges}` : ''}\n`);
}

const writesPerSecond = Number(/(\d+) writes\/s/.exec(verdict)?.[1] ?? NaN);
process.stdout.write(`\nfirst ${args['window-s']} s of the load, per member (per put at ${writesPerSecond} writes/s): ` +
  windowCounters.map((c) => Object.entries(c).map(([k, v]) => `${k} ${v} (${(v / (writesPerSecond * Number(args['window-s']))).toFixed(3)})`).join(', ')).join('\n  ') + '\n');
windowDistributions.forEach((d, m) => process.stdout.write(`  m${m + 1}: ${Object.entries(d).map(([k, v]) => `${k}: ${v}`).join('\n      ')}\n`));
// A proposal's way to apply on the member that proposed it: a follower's puts go through the leader.
const slowProposals = (role: string) => {
  const counts = windowDistributions.filter((d) => d.role === role).map((d) => /^n (\d+), >25ms \d+, >50ms (\d+)/.exec(d.proposal ?? '')?.slice(1).map(Number) ?? [0, 0]);
  const n = counts.reduce((sum, [total]) => sum + total!, 0);
  const slow = counts.reduce((sum, [, over]) => sum + over!, 0);
  return { n, slow, share: slow / n };
};
const [followers, leader] = [slowProposals('follower'), slowProposals('leader')];
process.stdout.write(`proposals over 50 ms: followers ${followers.slow} of ${followers.n} (${(followers.share * 100).toFixed(1)}%), ` +
  `leader ${leader.slow} of ${leader.n} (${(leader.share * 100).toFixed(1)}%): ${(followers.share / leader.share).toFixed(2)}x\n`);

const profiles: Record<string, Stretch[]> = {};
if (profileDir) {
  for (const file of readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))) {
    const stretches = busyStretches(JSON.parse(readFileSync(join(profileDir, file), 'utf8')) as CpuProfile, stretchMs);
    profiles[file] = stretches;
    process.stdout.write(`\n${file}: longest busy stretches ${stretches.map((s) => s.ms).join(', ')} ms\n`);
    for (const s of stretches.slice(0, 3)) {
      process.stdout.write(`  ${s.ms} ms: self ${s.self.slice(0, 8).map(([n, v]) => `${n} ${v}`).join('; ')}\n`);
      process.stdout.write(`    on stack: ${s.inclusive.slice(0, 14).map(([n, v]) => `${n} ${v}`).join('; ')}\n`);
    }
  }
}
if (args.out) writeFileSync(args.out, JSON.stringify({ workload: args.workload, verdict, windowCounters, windowDistributions, timeline, profiles }, null, 1));
