// The cost of etcd authentication on put and range latency (issue 14): a 3-member cluster on
// loopback with 1,000 roles of 10 key ranges each, all granted to one non-root user, measured
// with auth off and with auth on (as that user, so every request's permission check searches the
// user's 10,000 merged intervals), alternated --rounds times in one run, off-on then on-off
// (ABBA), so drift in the machine's load falls on both sides alike. Prints one JSON object.
//
//   node --import tsx scripts/bench-auth.ts --bench /path/to/etcd-go-bench-tls \
//     [--seconds 5] [--rounds 2] [--warmup-rounds 0] [--systems lichen,etcd] [--modes off,user] [--scenarios put-1,put-64,range-1,range-64]
//     [--profile-dir <dir>] [--count-syscalls true]
//
// --bench: a load generator on etcd's Go client (clientv3) taking --endpoints --op --clients
// --conns --seconds --keys --user --password and printing one JSON line with p50ms (Lichen's
// tests do not use it; it is a local tool). --modes: off (auth disabled, no token), user (the
// non-root user with the 1,000 roles), root (the root user: a token lookup, no interval search).
// etcd is the same etcd 3.4 (/usr/bin/etcd) on the same setup, for its own cost of auth.
// --profile-dir: Lichen's members run with node --cpu-prof and write their profiles there.
// --count-syscalls true: the members' system calls and context switches per request (`perf stat`,
// counted rather than timed, so the machine's load moves them little). Lichen's rounds also read
// the members' /metrics over the tool's measured seconds: puts per WAL fsync, reads per read
// round, GC pauses and requests per young-generation collection (what the members batch and
// allocate per request), and the summary fits the cost at equal throughput (see
// costAtEqualThroughputPercent).
// Lichen's members run from the build (dist/, as users run them: `npm run build` first), not
// through tsx, whose compiled code costs more per request (a defineProperty per closure made).
//
// The benchmarked keys are k0000000..k0009999 (the tool's key names); role r's range j is
// [k, k "\xff") for the key number j*1000+r, so the 10,000 ranges stay disjoint after merging
// (touching ranges would merge into one and make the search trivial). Compare ratios from one
// run only: absolute figures move with the machine's load.
import { cpus, loadavg } from 'node:os';
import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../src/api/grpc/proto.js';
import { startEtcdCluster } from '../src/server/testing/etcd-process.js';
import {
  BENCH_KEYS as KEYS,
  median,
  runTool,
  SCENARIOS,
  ScriptFlags,
  startLichenCluster,
  WARMUP_SECONDS,
  type BenchTarget,
  type ScenarioName,
  type SyscallCounts,
} from './go-bench.js';

type System = 'lichen' | 'etcd';
type Mode = 'off' | 'user' | 'root';

const ROOT_PASSWORD = 'bench-root';
const USER = 'bench';
const USER_PASSWORD = 'bench-user';
/** Setup requests in flight at once (roles, permissions and grants are ~12,000 raft proposals). */
const SETUP_CONCURRENCY = 16;
/** Seconds of unmeasured ranges after each switch of auth mode. */
const SETTLE_SECONDS = 1;

interface Flags {
  bench: string;
  seconds: number;
  rounds: number;
  /** Whole rounds run first and not counted (see measure). */
  warmupRounds: number;
  roles: number;
  rangesPerRole: number;
  systems: System[];
  modes: Mode[];
  scenarios: ScenarioName[];
  /** Lichen members run with node --cpu-prof and write their profiles here when stopped. */
  profileDir: string | undefined;
  /** Count the members' system calls and context switches per request (perf stat). */
  countSyscalls: boolean;
}

function parseFlags(argv: string[]): Flags {
  const args = new ScriptFlags(argv, 'scripts/bench-auth.ts');
  const flags: Flags = {
    bench: args.bench(),
    seconds: args.number('seconds', 5),
    rounds: args.number('rounds', 2),
    warmupRounds: args.number('warmup-rounds', 0),
    roles: args.number('roles', 1000),
    rangesPerRole: args.number('ranges-per-role', 10),
    systems: args.list<System>('systems', 'lichen', ['lichen', 'etcd']),
    modes: args.list<Mode>('modes', 'off,user', ['off', 'user', 'root']),
    scenarios: args.list<ScenarioName>('scenarios', 'put-1,put-64,range-1,range-64', Object.keys(SCENARIOS)),
    profileDir: args.get('profile-dir'),
    countSyscalls: args.get('count-syscalls') === 'true',
  };
  if (!(flags.warmupRounds >= 0)) throw new Error('--warmup-rounds must be 0 or more');
  if (!(flags.seconds > 0) || !(flags.rounds >= 1) || !(flags.roles >= 1) || !(flags.rangesPerRole >= 1)) throw new Error('--seconds, --rounds, --roles and --ranges-per-role must be positive');
  if (flags.roles * flags.rangesPerRole > KEYS) throw new Error(`--roles × --ranges-per-role must be at most ${KEYS} (one range per benchmarked key)`);
  return flags;
}

// ------------------------------------------------------------------------------ the cluster

interface Target extends BenchTarget {
  system: System;
  version: string;
  authEnabled: boolean;
  stop(): Promise<void>;
}

async function startTarget(system: System, profileDir: string | undefined): Promise<Target> {
  if (system === 'etcd') {
    const members = await startEtcdCluster(3);
    return { system, version: `etcd ${members[0]!.version}`, endpoints: members.map((m) => m.client), pids: members.map((m) => m.pid), authEnabled: false, stop: async () => void (await Promise.all(members.map((m) => m.stop()))) };
  }
  const lichen = await startLichenCluster({ profileDir });
  return { ...lichen, system, authEnabled: false };
}

type Service = 'Auth' | 'KV';
const clients = new Map<string, Client>();

function call<T = unknown>(endpoint: string, service: Service, method: string, request: object, token?: string): Promise<T> {
  const id = `${endpoint} ${service}`;
  let client = clients.get(id);
  if (!client) {
    client = new (etcdClientConstructors()[service])(endpoint, credentials.createInsecure());
    clients.set(id, client);
  }
  const metadata = new Metadata({ waitForReady: true });
  if (token !== undefined) metadata.set('token', token);
  const methods = client as unknown as Record<string, Function>;
  return new Promise<T>((resolve, reject) =>
    methods[method]!.call(client, request, metadata, { deadline: Date.now() + 30_000 }, (error: ServiceError | null, response: T) => (error ? reject(error) : resolve(response))),
  );
}

/** How many times a setup call that timed out is sent again (etcd under load times some out). */
const SETUP_ATTEMPTS_MAX = 5;

/**
 * Runs the calls `SETUP_CONCURRENCY` at a time; a call that timed out is sent again, and then
 * "already exists" means its first attempt was applied (grants are idempotent in etcd and Lichen).
 */
async function inParallel(calls: readonly (() => Promise<unknown>)[]): Promise<void> {
  let next = 0;
  const attempt = async (run: () => Promise<unknown>): Promise<void> => {
    for (let i = 1; ; i++) {
      try {
        await run();
        return;
      } catch (error) {
        const message = (error as ServiceError).details ?? '';
        if (i > 1 && message.includes('already exists')) return;
        if (i >= SETUP_ATTEMPTS_MAX || !message.includes('timed out')) throw error;
      }
    }
  };
  const worker = async (): Promise<void> => {
    while (next < calls.length) await attempt(calls[next++]!);
  };
  await Promise.all(Array.from({ length: SETUP_CONCURRENCY }, worker));
}

const keyOf = (n: number): string => `k${String(n).padStart(7, '0')}`;
const roleOf = (r: number): string => `role${String(r).padStart(4, '0')}`;

/** Root, the roles with their ranges, the user holding them all; the benchmarked keys written once. Auth stays disabled. */
async function setUp(target: Target, flags: Flags): Promise<void> {
  const endpoint = target.endpoints[0]!;
  await call(endpoint, 'Auth', 'UserAdd', { name: 'root', password: ROOT_PASSWORD });
  await call(endpoint, 'Auth', 'UserGrantRole', { user: 'root', role: 'root' });
  await call(endpoint, 'Auth', 'UserAdd', { name: USER, password: USER_PASSWORD });
  const roles = Array.from({ length: flags.roles }, (_u, r) => r);
  await inParallel(roles.map((r) => () => call(endpoint, 'Auth', 'RoleAdd', { name: roleOf(r) })));
  await inParallel(
    roles.flatMap((r) =>
      Array.from({ length: flags.rangesPerRole }, (_u, j) => () => {
        const key = Buffer.from(keyOf(j * flags.roles + r), 'latin1');
        const rangeEnd = Buffer.concat([key, Buffer.of(0xff)]);
        return call(endpoint, 'Auth', 'RoleGrantPermission', { name: roleOf(r), perm: { permType: 2 /* READWRITE */, key, range_end: rangeEnd } });
      }),
    ),
  );
  await inParallel(roles.map((r) => () => call(endpoint, 'Auth', 'UserGrantRole', { user: USER, role: roleOf(r) })));
  const load = await runTool(flags.bench, target, { op: 'load', clients: 64, conns: 8 }, 600);
  // A key whose put timed out (etcd under load) is still read (as missing) and written below.
  if (load.ok !== KEYS) process.stderr.write(`${target.system}: ${KEYS - load.ok} of ${KEYS} keys not loaded (${load.firstErr})\n`);
}

/** Auth is disabled after setUp; each switch goes through here (etcd 3.4 has no AuthStatus to ask). */
async function setAuth(target: Target, enabled: boolean): Promise<void> {
  if (target.authEnabled === enabled) return;
  const endpoint = target.endpoints[0]!;
  if (enabled) {
    await call(endpoint, 'Auth', 'AuthEnable', {});
  } else {
    const { token } = await call<{ token: string }>(endpoint, 'Auth', 'Authenticate', { name: 'root', password: ROOT_PASSWORD });
    await call(endpoint, 'Auth', 'AuthDisable', {}, token);
  }
  target.authEnabled = enabled;
}

// ------------------------------------------------------------------------------ measuring

interface Sample {
  round: number;
  mode: Mode;
  scenario: ScenarioName;
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
  errors: number;
  /** CPU time all three members used per request (µs): the server's cost, whatever the load. */
  serverCpuMicrosPerRequest: number;
  /** The same for each member, in the order of --endpoints. */
  memberCpuMicrosPerRequest: number[];
  /** The tool's CPU time per request (µs): with a token, etcd's client does more per request. */
  toolCpuMicrosPerRequest: number;
  /** Lichen: requests per WAL fsync (per member) and linearizable reads per read round. */
  requestsPerFsync?: number;
  readsPerRound?: number;
  /** Lichen: the members' garbage collection pauses per request (µs, all three), and the part of them that was not young-generation collection. */
  gcMicrosPerRequest?: number;
  fullGcMicrosPerRequest?: number;
  /** Lichen: requests per young-generation collection of a member (a measure of the bytes each request allocates). */
  requestsPerScavenge?: number;
  /** With --count-syscalls: the members' system calls (all, and some by kind) and context switches per request (all three members). */
  syscallsPerRequest?: Record<keyof SyscallCounts, number>;
}

/** The tool's flags to log in as the mode's user. */
function loginOf(mode: Mode): string[] {
  if (mode === 'user') return ['--user', USER, '--password', USER_PASSWORD];
  if (mode === 'root') return ['--user', 'root', '--password', ROOT_PASSWORD];
  return [];
}

async function measure(target: Target, flags: Flags): Promise<Sample[]> {
  const samples: Sample[] = [];
  // Warm-up rounds (negative numbers) run like the others but are not counted: on a quiet machine
  // the first rounds after the set-up's 12,000 proposals ran at up to twice the later rounds'
  // CPU per request (2026-12-07T07:55Z), whichever mode they measured.
  for (let round = -flags.warmupRounds; round < flags.rounds; round++) {
    // ABBA: off-on, then on-off.
    const modes = round % 2 === 0 ? flags.modes : [...flags.modes].reverse();
    for (const mode of modes) {
      await setAuth(target, mode !== 'off');
      // Unmeasured: after any auth change each member derives the user's merged ranges on its
      // first check (7–17 ms for 10,000 ranges, see AuthStore.roleIntervals): a one-off, not the
      // cost per request this measures.
      await runTool(flags.bench, target, SCENARIOS['range-1'], SETTLE_SECONDS, loginOf(mode));
      for (const scenario of flags.scenarios) {
        const r = await runTool(flags.bench, target, SCENARIOS[scenario], flags.seconds, loginOf(mode));
        if (r.errors > 0) process.stderr.write(`${target.system} ${mode} ${scenario}: ${r.errors} errors, first: ${r.firstErr}\n`);
        const sample: Sample = {
          round,
          mode,
          scenario,
          p50Ms: r.p50ms,
          p99Ms: r.p99ms,
          requestsPerSecond: r.qps,
          errors: r.errors,
          serverCpuMicrosPerRequest: Math.round((r.memberCpuSeconds.reduce((a, b) => a + b, 0) * 1e6) / Math.max(1, r.ok)),
          memberCpuMicrosPerRequest: r.memberCpuSeconds.map((cpu) => Math.round((cpu * 1e6) / Math.max(1, r.ok))),
          toolCpuMicrosPerRequest: Math.round((r.toolCpuSeconds * 1e6) / Math.max(1, r.ok)),
        };
        if (r.rounds && SCENARIOS[scenario].op === 'put') sample.requestsPerFsync = Number(((r.rounds.requests * target.pids.length) / Math.max(1, r.rounds.fsyncs)).toFixed(2));
        if (r.rounds) {
          sample.gcMicrosPerRequest = Number(((r.rounds.gcSeconds * 1e6) / Math.max(1, r.rounds.requests)).toFixed(1));
          sample.fullGcMicrosPerRequest = Number(((r.rounds.fullGcSeconds * 1e6) / Math.max(1, r.rounds.requests)).toFixed(1));
          sample.requestsPerScavenge = Number(((r.rounds.requests * target.pids.length) / Math.max(1, r.rounds.scavenges)).toFixed(1));
        }
        if (r.rounds && SCENARIOS[scenario].op === 'range') sample.readsPerRound = Number((r.rounds.requests / Math.max(1, r.rounds.readRounds)).toFixed(2));
        if (r.syscalls) {
          const counts = r.syscalls;
          sample.syscallsPerRequest = Object.fromEntries(Object.entries(counts).map(([name, count]) => [name, Number((count / Math.max(1, r.ok)).toFixed(2))])) as Sample['syscallsPerRequest'];
        }
        const batching = sample.requestsPerFsync !== undefined ? `, ${sample.requestsPerFsync} puts/fsync` : sample.readsPerRound !== undefined ? `, ${sample.readsPerRound} reads/round` : '';
        process.stderr.write(`${target.system} round ${round} ${mode.padEnd(4)} ${scenario.padEnd(9)} p50 ${r.p50ms} ms, ${r.qps} req/s, ${sample.serverCpuMicrosPerRequest} µs server CPU/req (${sample.memberCpuMicrosPerRequest.join(' + ')}), ${sample.toolCpuMicrosPerRequest} µs tool CPU/req${batching}${sample.gcMicrosPerRequest !== undefined ? `, GC ${sample.gcMicrosPerRequest} µs/req (${sample.fullGcMicrosPerRequest} not young), ${sample.requestsPerScavenge} req/scavenge` : ''}${sample.syscallsPerRequest ? `, per request ${JSON.stringify(sample.syscallsPerRequest)}` : ''}\n`);
        if (flags.profileDir !== undefined) process.stderr.write(`profile window ${mode} ${scenario} ${r.windowMonotonicUs.join(' ')}\n`);
        if (round >= 0) samples.push(sample);
      }
    }
  }
  return samples;
}

/**
 * The median over the rounds of each round's own ratio (the mode against "off" in the same round,
 * measured minutes apart at most), in percent: the machine's load drifts between rounds, and a
 * ratio of medians mixes rounds measured at different loads.
 */
function pairedCostPercent(samples: Sample[], scenario: ScenarioName, mode: Mode, pick: (s: Sample) => number): number {
  return Number(((median(pairedRatios(samples, scenario, mode, pick)) - 1) * 100).toFixed(1));
}

/** Each round's ratio of the mode to "off" in that round. */
function pairedRatios(samples: Sample[], scenario: ScenarioName, mode: Mode, pick: (s: Sample) => number): number[] {
  const ratios: number[] = [];
  for (const withAuth of samples.filter((s) => s.scenario === scenario && s.mode === mode)) {
    const off = samples.find((s) => s.scenario === scenario && s.mode === 'off' && s.round === withAuth.round);
    if (off) ratios.push(pick(withAuth) / pick(off));
  }
  return ratios;
}

/**
 * The mode's cost at equal throughput, in percent of "off": a least-squares fit over the rounds of
 * both modes of cost per request = a + b / (requests per second) + c × (1 for the mode, 0 for
 * off), so c / (a + b / mean off throughput). The b term takes the members' fixed work per second
 * (ticks, heartbeats, timers: ~40 ms/s over three idle members) and batching, which both make a
 * slower round cost more per request whatever the mode; on a shared machine a round's throughput
 * moves with the other processes' load, so a plain ratio mixes the two.
 */
function costAtEqualThroughputPercent(samples: Sample[], scenario: ScenarioName, mode: Mode, pick: (s: Sample) => number): number | undefined {
  const rows = samples.filter((s) => s.scenario === scenario && (s.mode === mode || s.mode === 'off') && s.requestsPerSecond > 0);
  if (rows.length < 4 || !rows.some((s) => s.mode === 'off') || !rows.some((s) => s.mode === mode)) return undefined;
  const xs = rows.map((s) => [1, 1000 / s.requestsPerSecond, s.mode === mode ? 1 : 0]);
  const ys = rows.map(pick);
  // Normal equations (XᵀX) β = Xᵀy, solved by Gaussian elimination (3 unknowns).
  const m = [0, 1, 2].map((i) => [...[0, 1, 2].map((j) => xs.reduce((sum, x) => sum + x[i]! * x[j]!, 0)), xs.reduce((sum, x, k) => sum + x[i]! * ys[k]!, 0)]);
  for (let col = 0; col < 3; col++) {
    const pivot = m[col]![col]!;
    if (Math.abs(pivot) < 1e-9) return undefined;
    for (let row = 0; row < 3; row++) {
      if (row === col) continue;
      const factor = m[row]![col]! / pivot;
      for (let k = col; k < 4; k++) m[row]![k]! -= factor * m[col]![k]!;
    }
  }
  const [a, b, c] = [0, 1, 2].map((i) => m[i]![3]! / m[i]![i]!) as [number, number, number];
  const offThroughput = median(rows.filter((s) => s.mode === 'off').map((s) => s.requestsPerSecond));
  return Number(((c / (a + (b * 1000) / offThroughput)) * 100).toFixed(1));
}

/** Per scenario and mode, the median p50 over the rounds, and each auth mode's cost relative to "off" (also paired by round). */
function summarize(samples: Sample[], flags: Flags): Record<string, Record<string, number>> {
  const summary: Record<string, Record<string, number>> = {};
  for (const scenario of flags.scenarios) {
    const row: Record<string, number> = {};
    const of = (mode: Mode, pick: (s: Sample) => number): number => median(samples.filter((s) => s.scenario === scenario && s.mode === mode).map(pick));
    for (const mode of flags.modes) {
      row[`${mode}P50Ms`] = Number(of(mode, (s) => s.p50Ms).toFixed(3));
      row[`${mode}CpuMicrosPerRequest`] = of(mode, (s) => s.serverCpuMicrosPerRequest);
      row[`${mode}ToolCpuMicrosPerRequest`] = of(mode, (s) => s.toolCpuMicrosPerRequest);
      const batching = samples.find((s) => s.scenario === scenario)?.requestsPerFsync !== undefined ? 'requestsPerFsync' : 'readsPerRound';
      if (samples.some((s) => s.scenario === scenario && s[batching] !== undefined)) row[`${mode}${batching === 'requestsPerFsync' ? 'PutsPerFsync' : 'ReadsPerRound'}`] = of(mode, (s) => s[batching] ?? 0);
    }
    if (flags.modes.includes('off')) {
      for (const mode of flags.modes.filter((m) => m !== 'off')) {
        row[`${mode}P50CostPercent`] = Number(((of(mode, (s) => s.p50Ms) / of('off', (s) => s.p50Ms) - 1) * 100).toFixed(1));
        row[`${mode}CpuCostPercent`] = Number(((of(mode, (s) => s.serverCpuMicrosPerRequest) / of('off', (s) => s.serverCpuMicrosPerRequest) - 1) * 100).toFixed(1));
        row[`${mode}PairedCpuCostPercent`] = pairedCostPercent(samples, scenario, mode, (s) => s.serverCpuMicrosPerRequest);
        row[`${mode}PairedThroughputCostPercent`] = -pairedCostPercent(samples, scenario, mode, (s) => s.requestsPerSecond);
        row[`${mode}PairedP50CostPercent`] = pairedCostPercent(samples, scenario, mode, (s) => s.p50Ms);
        if (samples.some((s) => s.scenario === scenario && s.gcMicrosPerRequest !== undefined)) {
          row[`${mode}PairedGcCostPercent`] = pairedCostPercent(samples, scenario, mode, (s) => s.gcMicrosPerRequest ?? 0);
          for (const m of ['off', mode] as const) {
            row[`${m}GcMicrosPerRequest`] = of(m, (s) => s.gcMicrosPerRequest ?? 0);
            row[`${m}FullGcMicrosPerRequest`] = of(m, (s) => s.fullGcMicrosPerRequest ?? 0);
          }
          row[`${mode}PairedRequestsPerScavengeCostPercent`] = pairedCostPercent(samples, scenario, mode, (s) => s.requestsPerScavenge ?? 0);
        }
        const counted = samples.find((s) => s.scenario === scenario)?.syscallsPerRequest;
        for (const name of Object.keys(counted ?? {}) as (keyof SyscallCounts)[]) {
          row[`${mode}Paired${name[0]!.toUpperCase()}${name.slice(1)}PerRequestCostPercent`] = pairedCostPercent(samples, scenario, mode, (s) => s.syscallsPerRequest?.[name] ?? 0);
          for (const m of ['off', mode] as const) row[`${m}${name[0]!.toUpperCase()}${name.slice(1)}PerRequest`] = of(m, (s) => s.syscallsPerRequest?.[name] ?? 0);
        }
        const cpuRatios = pairedRatios(samples, scenario, mode, (s) => s.serverCpuMicrosPerRequest);
        row[`${mode}PairedCpuCostMinPercent`] = Number(((Math.min(...cpuRatios) - 1) * 100).toFixed(1));
        row[`${mode}PairedCpuCostMaxPercent`] = Number(((Math.max(...cpuRatios) - 1) * 100).toFixed(1));
        const atEqualThroughput = costAtEqualThroughputPercent(samples, scenario, mode, (s) => s.serverCpuMicrosPerRequest);
        if (atEqualThroughput !== undefined) row[`${mode}CpuCostAtEqualThroughputPercent`] = atEqualThroughput;
        const toolAtEqualThroughput = costAtEqualThroughputPercent(samples, scenario, mode, (s) => s.toolCpuMicrosPerRequest);
        if (toolAtEqualThroughput !== undefined) row[`${mode}ToolCpuCostAtEqualThroughputPercent`] = toolAtEqualThroughput;
      }
    }
    summary[scenario] = row;
  }
  return summary;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const systems: Record<string, unknown> = {};
  for (const system of flags.systems) {
    process.stderr.write(`starting a 3-member ${system} cluster, ${flags.roles} roles × ${flags.rangesPerRole} ranges…\n`);
    const target = await startTarget(system, flags.profileDir);
    target.countSyscalls = flags.countSyscalls;
    try {
      const setupStart = performance.now();
      await setUp(target, flags);
      process.stderr.write(`${system}: set up in ${((performance.now() - setupStart) / 1000).toFixed(1)} s\n`);
      await runTool(flags.bench, target, SCENARIOS['put-64'], WARMUP_SECONDS);
      const samples = await measure(target, flags);
      systems[system] = { version: target.version, summary: summarize(samples, flags), samples };
    } catch (error) {
      // The other system's figures are still worth printing.
      process.stderr.write(`${system}: ${error instanceof Error ? error.stack : String(error)}\n`);
      systems[system] = { version: target.version, error: error instanceof Error ? error.message : String(error) };
    } finally {
      for (const client of clients.values()) client.close();
      clients.clear();
      await target.stop();
    }
  }
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavgBefore: loadBefore, loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))), node: process.version },
      setup: { members: 3, roles: flags.roles, rangesPerRole: flags.rangesPerRole, keys: KEYS, user: USER, tokens: 'simple' },
      command: `node --import tsx scripts/bench-auth.ts ${process.argv.slice(2).join(' ')}`,
      tool: `${flags.bench} --endpoints <3 members> --op put|range --clients N --conns M --seconds ${flags.seconds} --keys ${KEYS} [--user ${USER} --password …]`,
      systems,
    }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
