// npm run bench:compare [-- --duration 10 --scenarios put-64,range-s-64 --quick --go-client <binary>]
//
// The load comes from `lichen bench` (grpc-js, in this process) unless --go-client names a load
// generator on etcd's Go client (clientv3, the client etcdctl and Kubernetes use; e.g. one built
// from ../shared/tools/etcd-go-bench): grpc-js is slow enough to add the same latency to both
// systems and shrink every ratio, so comparisons that matter use the Go client. The tool takes
// --endpoints --op put|range|srange|load --clients --conns --seconds --keys and prints one JSON
// line; nothing in Lichen depends on it.
//
// Runs the same benchmark scenarios against a 3-member etcd cluster (when the `etcd` binary is
// installed; Debian: apt-get install -y etcd-server) and a 3-member Lichen cluster, one after the
// other on this machine, and writes bench-results/compare-<date>.json and .md with both results
// and the ratio Lichen/etcd per scenario. It installs nothing. Every process it starts listens on
// 127.0.0.1 only and is stopped at the end (also on failure or Ctrl-C).
//
// etcd members are started with:
//   --name <m>                          the member's name, used in --initial-cluster
//   --data-dir <tmp>/<m>                its WAL and bbolt database (fsync on, etcd's default)
//   --listen-client-urls http://127.0.0.1:<c>      where clients connect (gRPC and HTTP)
//   --advertise-client-urls http://127.0.0.1:<c>   what the member tells clients about itself
//   --listen-peer-urls http://127.0.0.1:<p>        where other members connect
//   --initial-advertise-peer-urls http://127.0.0.1:<p>
//   --initial-cluster m1=http://127.0.0.1:<p1>,m2=…,m3=…   the founding members
//   --initial-cluster-state new         bootstrap a new cluster
//   --initial-cluster-token <unique>    so members of an old run cannot join this one
// Lichen members are started with `lichen serve --name --data-dir --listen-client --listen-peer
// --listen-http --initial-cluster m1=127.0.0.1:<p1>,…` (fsync on by default as well).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  findLeaderEndpoint,
  formatSummary,
  runBench,
  runHttpPutBench,
  type BenchOptions,
  type BenchResult,
} from '../src/bench/index.js';
import { BENCH_KEYS, runTool, type Workload } from './go-bench.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MEMBERS = 3;
/** How long a cluster may take to elect a leader before we give up. */
const CLUSTER_READY_TIMEOUT_MS = 30_000;
/** A member that does not exit this long after SIGTERM is killed. */
const STOP_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------- flags

/**
 * Seconds of puts (16 clients, not measured) each cluster gets before its first scenario, so that
 * every scenario measures a server in its steady state. A fresh Node process spends its first
 * seconds compiling its hot paths (measured 2026-11-24 on a quiet machine: TurboFan's threads used
 * 18% of the leader's CPU 2–7 s after start, 2% at 20–25 s), and put-1, the first scenario, paid
 * for all of it: 660–720 req/s cold against 850–925 after 5 s of warm-up. Five seconds were not
 * enough under load: measured 2026-12-07 (put-64 in back-to-back 3–4 s runs from a cluster's
 * start, load 11–15), the members' threads other than the main one (TurboFan, concurrent marking,
 * fdatasync) took 43–48% of their CPU 8–15 s after start, 17–27% at 20–28 s and 11–15% from 40 s
 * on, and the members' CPU per put fell from 1,240–1,510 µs to 360–490 µs over the first 30–50 s;
 * `--duration 5 --scenarios put-1,put-64 --skip-etcd` gave 1,641 µs per put-64 with `--warmup 3`
 * and 426 µs with `--warmup 45`, put-1's p99 115 against 46 ms; `--scenarios put-64` 1,417 µs
 * with `--warmup 3` and 573 µs with `--warmup 40` (one run each, load 11–14). On a quiet machine
 * tier-up ends sooner (more puts per second), so the difference is smaller there. etcd, compiled
 * ahead of time, has nothing to warm up: the longer warm-up costs it time only.
 */
const DEFAULT_WARMUP_SECONDS = 40;
const WARMUP_CLIENTS = 16;

interface CompareFlags {
  durationSeconds: number;
  warmupSeconds: number;
  scenarios: string[] | undefined;
  outDir: string;
  etcdBinary: string;
  skipEtcd: boolean;
  skipLichen: boolean;
  verbose: boolean;
  /** The load generator on etcd's Go client; empty: lichen bench (grpc-js). */
  goClient: string;
  /** Lichen's storage engine (lichen serve --engine). */
  engine: 'lmdb' | 'leveldb';
  /** Lichen's members run with node --cpu-prof and write their profiles here when stopped; empty: no profiles. */
  profileDir: string;
}

const USAGE = `Usage: npm run bench:compare -- [flags]
  --duration <s>         seconds per scenario (default 10)
  --warmup <s>           seconds of unmeasured puts before the first scenario (default 40: a
                         fresh Node process needs 30-50 s of load to finish compiling; 0: none)
  --quick                1-second scenarios and warm-up (same as --duration 1 --warmup 1)
  --scenarios <a,b>      run only these scenarios (${'names below'})
  --out <dir>            where to write results (default bench-results)
  --etcd <path>          etcd binary (default: etcd on PATH, else /usr/bin/etcd)
  --skip-etcd            run Lichen only
  --skip-lichen          run etcd only
  --go-client <path>     drive both systems with this load generator on etcd's Go client instead
                         of lichen bench (grpc-js); scenarios it has no operation for still run on
                         lichen bench, and the report says which client made each row
  --engine <kind>        Lichen's storage engine, lmdb (default) or leveldb
  --profile-dir <dir>    Lichen's members run with node --cpu-prof and write their CPU profiles
                         there when stopped (one file per member, covering the whole run)
  --verbose              print each run's full summary
`;

function parseFlags(argv: string[]): CompareFlags {
  const flags: CompareFlags = {
    durationSeconds: 10,
    warmupSeconds: DEFAULT_WARMUP_SECONDS,
    scenarios: undefined,
    outDir: join(ROOT, 'bench-results'),
    etcdBinary: '',
    skipEtcd: false,
    skipLichen: false,
    verbose: false,
    goClient: '',
    engine: 'lmdb',
    profileDir: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${name} needs a value\n${USAGE}`);
      return v;
    };
    switch (name) {
      case '--duration': {
        const seconds = Number(value().replace(/s$/, ''));
        if (!(seconds > 0) || seconds > 3600) throw new Error(`--duration must be between 0 and 3600 seconds`);
        flags.durationSeconds = seconds;
        break;
      }
      case '--warmup': {
        const seconds = Number(value().replace(/s$/, ''));
        if (!(seconds >= 0) || seconds > 600) throw new Error(`--warmup must be between 0 and 600 seconds`);
        flags.warmupSeconds = seconds;
        break;
      }
      case '--quick':
        flags.durationSeconds = 1;
        flags.warmupSeconds = 1;
        break;
      case '--scenarios':
        flags.scenarios = value().split(',').map((s) => s.trim()).filter(Boolean);
        break;
      case '--out':
        flags.outDir = value();
        break;
      case '--etcd':
        flags.etcdBinary = value();
        break;
      case '--skip-etcd':
        flags.skipEtcd = true;
        break;
      case '--skip-lichen':
        flags.skipLichen = true;
        break;
      case '--verbose':
        flags.verbose = true;
        break;
      case '--engine': {
        const engine = value();
        if (engine !== 'lmdb' && engine !== 'leveldb') throw new Error(`--engine must be lmdb or leveldb`);
        flags.engine = engine;
        break;
      }
      case '--profile-dir':
        flags.profileDir = value();
        mkdirSync(flags.profileDir, { recursive: true });
        break;
      case '--go-client':
        flags.goClient = value();
        if (!existsSync(flags.goClient)) throw new Error(`--go-client: no such file: ${flags.goClient}`);
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE + scenarioHelp());
        process.exit(0);
        break;
      default:
        throw new Error(`unknown flag: ${arg}\n${USAGE}`);
    }
  }
  return flags;
}

// ---------------------------------------------------------------- scenarios

type System = 'etcd' | 'lichen';

interface Scenario {
  name: string;
  description: string;
  lichenOnly?: boolean;
  /** The gRPC benchmark's options, or undefined for the HTTP scenario. */
  grpc?: Omit<BenchOptions, 'endpoints' | 'durationMs' | 'requestTimeoutMs'>;
  http?: { connections: number; keySpaceSize: number };
  /**
   * The same load from the Go client (--go-client), which spreads requests over every endpoint
   * as clientv3 does (a follower forwards writes to the leader), over keys it loaded once.
   */
  go?: Workload;
  /**
   * The Go client's `load` (go.keys distinct keys, each put once, as fast as it goes): the row
   * adds the slowest request, and each member's RSS (now and peak) and data directory size after it.
   */
  load?: true;
  /** `etcdctl check perf --load=<size>` against the cluster (60 s): its throughput, slowest request and deviation. */
  checkPerf?: 'm' | 'l';
  /** Runs only when --scenarios names it (it takes minutes). */
  onlyWhenNamed?: true;
}

const WRITE_DEFAULTS = {
  keySizeBytes: 8,
  valueSizeBytes: 256,
  keySpaceSize: 100_000,
  sequentialKeys: false,
  consistency: 'l' as const,
  readRatio: 0.5,
  preload: false,
  rangeKeys: 1,
  watchers: 1,
  watchStreams: 1,
  leases: 1,
};
const READ_DEFAULTS = { ...WRITE_DEFAULTS, keySpaceSize: 1_000, preload: true, targetLeader: false };

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'put-1',
    description: 'put, 1 client, 1 conn, to the leader (latency of one write)',
    grpc: { ...WRITE_DEFAULTS, kind: 'put', clients: 1, conns: 1, targetLeader: true },
    go: { op: 'put', clients: 1, conns: 1 },
  },
  {
    name: 'put-64',
    description: 'put, 64 clients, 8 conns, to the leader',
    grpc: { ...WRITE_DEFAULTS, kind: 'put', clients: 64, conns: 8, targetLeader: true },
    go: { op: 'put', clients: 64, conns: 8 },
  },
  {
    name: 'range-l-64',
    description: 'linearizable range of 1 key, 64 clients, 8 conns, all members',
    grpc: { ...READ_DEFAULTS, kind: 'range', clients: 64, conns: 8, consistency: 'l' },
    go: { op: 'range', clients: 64, conns: 8 },
  },
  {
    name: 'range-s-64',
    description: 'serializable range of 1 key, 64 clients, 8 conns, all members',
    grpc: { ...READ_DEFAULTS, kind: 'range', clients: 64, conns: 8, consistency: 's' },
    go: { op: 'srange', clients: 64, conns: 8 },
  },
  {
    name: 'txn-64',
    description: 'txn (1 version compare + 1 put), 64 clients, 8 conns, to the leader',
    grpc: { ...WRITE_DEFAULTS, kind: 'txn', clients: 64, conns: 8, targetLeader: true },
  },
  {
    name: 'range-10000',
    description: 'linearizable range of 10,000 keys (256-byte values), 8 clients, 8 conns, all members',
    grpc: { ...READ_DEFAULTS, kind: 'range', clients: 8, conns: 8, keySpaceSize: 10_000, rangeKeys: 10_000 },
  },
  {
    name: 'txn-cas-64',
    description: 'compare-and-swap (read, then txn: put if the mod revision is unchanged) on 16 keys, 64 clients, 8 conns, all members',
    grpc: { ...WRITE_DEFAULTS, kind: 'txn-cas', clients: 64, conns: 8, keySpaceSize: 16, targetLeader: false },
  },
  {
    name: 'watch-1000',
    description: '1,000 watchers (10 streams) on the key space while 16 clients put 1,000 keys at 1,000 puts/s; events/s and delivery latency',
    grpc: { ...WRITE_DEFAULTS, kind: 'watch', clients: 16, conns: 4, keySpaceSize: 1_000, ratePerSecond: 1_000, watchers: 1_000, watchStreams: 10, targetLeader: false },
  },
  {
    name: 'lease-keepalive-10000',
    description: '10,000 leases kept alive round robin, 64 clients (one keep-alive stream each), 8 conns, all members',
    grpc: { ...WRITE_DEFAULTS, kind: 'lease-keepalive', clients: 64, conns: 8, leases: 10_000, targetLeader: false },
  },
  {
    name: 'load-1m',
    description: "1,000,000 keys of 256 B put once each, 64 Go clients, 8 conns, all members (needs --go-client); slowest request, RSS and data size per member after it",
    go: { op: 'load', clients: 64, conns: 8, keys: 1_000_000 },
    load: true,
    onlyWhenNamed: true,
  },
  {
    name: 'check-perf-m',
    description: 'etcdctl check perf --load=m (60 s of puts at etcd\'s medium load): throughput, slowest request, deviation, timeouts',
    checkPerf: 'm',
    onlyWhenNamed: true,
  },
  {
    name: 'check-perf-l',
    description: 'etcdctl check perf --load=l (60 s of puts at etcd\'s large load): throughput, slowest request, deviation, timeouts',
    checkPerf: 'l',
    onlyWhenNamed: true,
  },
  {
    name: 'http-put-64',
    description: 'PUT /v1/kv/<key> over HTTP, 64 keep-alive connections, to the leader (Lichen only)',
    lichenOnly: true,
    http: { connections: 64, keySpaceSize: 100_000 },
  },
];

const NAME_WIDTH = Math.max(...SCENARIOS.map((s) => s.name.length));

function scenarioHelp(): string {
  return `\nScenarios:\n${SCENARIOS.map((s) => `  ${s.name.padEnd(NAME_WIDTH)} ${s.description}`).join('\n')}\n`;
}

// ---------------------------------------------------------------- processes

const children = new Set<ChildProcess>();

function killAllChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\n${signal}: stopping the clusters\n`);
    killAllChildren();
    process.exit(130);
  });
}

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  // Bounded: the OS hands out distinct ephemeral ports; a repeat is rare.
  for (let attempt = 0; attempt < count * 10 && ports.size < count; attempt++) ports.add(await freePort());
  if (ports.size < count) throw new Error('could not find enough free ports');
  return [...ports];
}

function startProcess(command: string, args: string[], logPath: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const log = createWriteStream(logPath);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd: ROOT });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const outcome = await Promise.race([exited.then(() => 'exited'), sleep(STOP_TIMEOUT_MS).then(() => 'timeout')]);
  if (outcome === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

interface Cluster {
  system: System;
  clientEndpoints: string[];
  /** Lichen only: each member's HTTP listener, in the same order as clientEndpoints. */
  httpEndpoints: string[];
  members: ChildProcess[];
  dataDir: string;
  /** Each member's data directory, in the same order as members. */
  memberDataDirs: string[];
  version: string;
}

async function waitForLeader(cluster: Cluster): Promise<string> {
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    const exited = cluster.members.find((m) => m.exitCode !== null);
    if (exited) throw new Error(`${cluster.system} member exited with code ${exited.exitCode}; logs in ${cluster.dataDir}`);
    const { leader, statuses } = await findLeaderEndpoint(cluster.clientEndpoints, 1_000);
    if (leader !== undefined && statuses.every((s) => s.error === undefined)) return leader;
    last = statuses.map((s) => `${s.endpoint}: ${s.error ?? `leader ${s.leaderId}`}`).join('; ');
    await sleep(200);
  }
  throw new Error(`${cluster.system} cluster did not elect a leader within ${CLUSTER_READY_TIMEOUT_MS} ms (${last}); logs in ${cluster.dataDir}`);
}

function findEtcd(explicit: string): string | undefined {
  if (explicit !== '') return existsSync(explicit) ? explicit : undefined;
  const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const onPath = which.status === 0 ? which.stdout.trim() : '';
  if (onPath !== '') return onPath;
  return existsSync('/usr/bin/etcd') ? '/usr/bin/etcd' : undefined;
}

async function startEtcdCluster(binary: string): Promise<Cluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-etcd-'));
  const ports = await freePorts(MEMBERS * 2);
  const names = Array.from({ length: MEMBERS }, (_u, i) => `etcd${i + 1}`);
  const peerUrl = (i: number) => `http://127.0.0.1:${ports[MEMBERS + i]}`;
  const clientUrl = (i: number) => `http://127.0.0.1:${ports[i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerUrl(i)}`).join(',');
  // One token for all members: it seeds the cluster id, which must match between them.
  const clusterToken = `bench-${process.pid}-${Date.now()}`;
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? 'unknown';
  const members = names.map((name, i) =>
    startProcess(
      binary,
      [
        '--name', name,
        '--data-dir', join(dataDir, name),
        '--listen-client-urls', clientUrl(i),
        '--advertise-client-urls', clientUrl(i),
        '--listen-peer-urls', peerUrl(i),
        '--initial-advertise-peer-urls', peerUrl(i),
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', clusterToken,
        '--log-level', 'warn',
      ],
      join(dataDir, `${name}.log`),
    ),
  );
  return { system: 'etcd', clientEndpoints: names.map((_n, i) => `127.0.0.1:${ports[i]}`), httpEndpoints: [], members, dataDir, memberDataDirs: names.map((n) => join(dataDir, n)), version };
}

/** The newest modification time of any .ts file under a folder (bounded walk). */
function newestSourceMs(dir: string, depth = 0): number {
  if (depth > 6) return 0;
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    if (stat.isDirectory()) newest = Math.max(newest, newestSourceMs(path, depth + 1));
    else if (name.endsWith('.ts')) newest = Math.max(newest, stat.mtimeMs);
  }
  return newest;
}

/**
 * Prefers the compiled CLI when it is at least as new as the sources; otherwise runs the sources
 * through tsx (same code, transpiled once at start-up), so a stale dist/ is never measured.
 */
function lichenCommand(): { command: string; args: string[]; how: string } {
  const dist = join(ROOT, 'dist', 'cli', 'main.js');
  if (existsSync(dist) && statSync(dist).mtimeMs >= newestSourceMs(join(ROOT, 'src'))) {
    return { command: process.execPath, args: [dist], how: 'dist/cli/main.js' };
  }
  return { command: process.execPath, args: ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')], how: 'tsx src/cli/main.ts (dist/ missing or older than src/)' };
}

async function startLichenCluster(engine: CompareFlags['engine'], profileDir: string): Promise<Cluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-lichen-'));
  const ports = await freePorts(MEMBERS * 3);
  const names = Array.from({ length: MEMBERS }, (_u, i) => `lichen${i + 1}`);
  const clientAddress = (i: number) => `127.0.0.1:${ports[i]}`;
  const peerAddress = (i: number) => `127.0.0.1:${ports[MEMBERS + i]}`;
  const httpAddress = (i: number) => `127.0.0.1:${ports[2 * MEMBERS + i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peerAddress(i)}`).join(',');
  const { command, args: programArgs, how } = lichenCommand();
  const args = profileDir === '' ? programArgs : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, ...programArgs];
  const packageVersion = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const members = names.map((name, i) =>
    startProcess(
      command,
      [
        ...args,
        'serve',
        '--name', name,
        '--data-dir', join(dataDir, name),
        '--listen-client', clientAddress(i),
        '--listen-peer', peerAddress(i),
        '--listen-http', httpAddress(i),
        '--initial-cluster', initialCluster,
        '--engine', engine,
        '--log-level', 'warn',
      ],
      join(dataDir, `${name}.log`),
    ),
  );
  return {
    system: 'lichen',
    clientEndpoints: names.map((_n, i) => clientAddress(i)),
    httpEndpoints: names.map((_n, i) => httpAddress(i)),
    members,
    dataDir,
    memberDataDirs: names.map((n) => join(dataDir, n)),
    version: `lichen ${packageVersion} (${how}, --engine ${engine})`,
  };
}

/** Stops every member; the data (and the members' logs) are kept when the run went wrong. */
async function stopCluster(cluster: Cluster, keepData: boolean): Promise<void> {
  await Promise.all(cluster.members.map(stopProcess));
  if (keepData) process.stdout.write(`  ${cluster.system} data and logs kept in ${cluster.dataDir}\n`);
  else rmSync(cluster.dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------- running

/** What the report reads of one run, whichever client made it. */
type Measured = Pick<BenchResult, 'requests' | 'errors' | 'errorSamples' | 'throughputPerSecond' | 'watch' | 'cas'> & {
  latency: Pick<BenchResult['latency'], 'p50Ms' | 'p99Ms'> & { maxMs?: number };
  tool: Pick<BenchResult['tool'], 'cpuPercentOfOneCore'>;
  /**
   * After a load: each member's resident set (now, and its peak: VmRSS, VmHWM; now, the part that
   * is anonymous memory, the heap's, and the part that is mapped files, an engine's pages) and data
   * directory, in MiB.
   */
  members?: { rssMiB: number[]; peakRssMiB: number[]; anonMiB: number[]; fileMiB: number[]; dataMiB: number[]; heapUsedMiB?: number[] };
  /** etcdctl check perf: its verdict, latency deviation, and the requests that timed out. */
  checkPerf?: { passed: boolean; stddevMs: number; timeouts: number; output: string };
};

interface ScenarioOutcome {
  /** Which load generator ran it: the Go client, lichen bench (grpc-js, or HTTP for http-put), or etcdctl check perf. */
  client: 'go' | 'lichen bench' | 'etcdctl';
  result?: Measured;
  error?: string;
  /** CPU time the cluster's members used during the scenario (user + system), when known. */
  serverCpuSeconds?: number;
}

const CLOCK_TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

/**
 * CPU seconds (user + system) the processes have used so far, from /proc (Linux); undefined
 * elsewhere. The server-side cost of a request, unlike its latency, does not depend on how much
 * the benchmark client and the other members crowd the same cores.
 */
function cpuSecondsOf(children: readonly ChildProcess[]): number | undefined {
  try {
    let ticks = 0;
    for (const child of children) {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime and stime (fields 14 and 15 of stat)
    }
    return ticks / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Where the load comes from: lichen bench (grpc-js, in this process) or a Go client binary. */
type LoadClient = { kind: 'lichen-bench' } | { kind: 'go'; binary: string };

function targetOf(cluster: Cluster) {
  return { endpoints: cluster.clientEndpoints, pids: cluster.members.map((m) => m.pid!) };
}

/** The last Go client run's full output (the load row reads its slowest request). */
let lastToolRun: Awaited<ReturnType<typeof runTool>> | undefined;

async function runGoScenario(binary: string, cluster: Cluster, workload: Workload, durationMs: number): Promise<ScenarioOutcome> {
  const run = await runTool(binary, targetOf(cluster), workload, durationMs / 1000);
  lastToolRun = run;
  return {
    client: 'go',
    result: {
      requests: run.ok,
      errors: run.errors,
      errorSamples: run.errors > 0 ? [{ count: run.errors, message: run.firstErr }] : [],
      throughputPerSecond: run.qps,
      latency: { p50Ms: run.p50ms, p99Ms: run.p99ms },
      tool: { cpuPercentOfOneCore: (run.toolCpuSeconds / run.seconds) * 100 },
    },
    // Over exactly the seconds the tool measured (its connections' set-up is left out).
    serverCpuSeconds: run.memberCpuSeconds.reduce((sum, seconds) => sum + seconds, 0),
  };
}

async function runScenario(cluster: Cluster, scenario: Scenario, durationMs: number, verbose: boolean, client: LoadClient): Promise<ScenarioOutcome> {
  if (scenario.checkPerf !== undefined) return runCheckPerf(cluster, scenario.checkPerf);
  if (scenario.load) {
    if (client.kind !== 'go') return { client: 'lichen bench', error: `${scenario.name} needs --go-client (its load operation)` };
    return runLoad(client.binary, cluster, scenario.go!);
  }
  // A scenario the Go client has no operation for runs on lichen bench (the row says so).
  if (client.kind === 'go' && scenario.go !== undefined) {
    try {
      return await runGoScenario(client.binary, cluster, scenario.go, durationMs);
    } catch (error) {
      return { client: 'go', error: error instanceof Error ? error.message : String(error) };
    }
  }
  try {
    let result: BenchResult;
    // The preload runs first, on its own, so the members' CPU below is the measured phase's only.
    const preloaded = scenario.grpc?.preload ? await preload(cluster, scenario.grpc) : 0;
    let cpuBefore = cpuSecondsOf(cluster.members);
    let cpuAfter: number | undefined;
    if (scenario.grpc !== undefined) {
      // Over the measured requests only: lease-keepalive-10000 grants and revokes its 10,000 leases
      // through raft inside runBench, and counting them made the CPU per keep-alive a restatement
      // of its throughput (the rows of 2026-12-07 charged the members 2.8–3.5 CPU seconds per
      // measured second, on 2 cores; over the measured seconds alone they used 0.6–1.2).
      const onMeasured = (edge: 'start' | 'end'): void => {
        if (edge === 'start') cpuBefore = cpuSecondsOf(cluster.members);
        else cpuAfter = cpuSecondsOf(cluster.members);
      };
      result = await runBench({ ...scenario.grpc, preload: false, endpoints: cluster.clientEndpoints, durationMs, requestTimeoutMs: 10_000 }, { onMeasured });
      result.preloadedKeys = preloaded;
    } else if (scenario.http !== undefined) {
      const leader = await waitForLeader(cluster);
      const httpLeader = cluster.httpEndpoints[cluster.clientEndpoints.indexOf(leader)] as string;
      result = await runHttpPutBench({
        urls: [httpLeader],
        connections: scenario.http.connections,
        durationMs,
        keySizeBytes: 8,
        valueSizeBytes: 256,
        keySpaceSize: scenario.http.keySpaceSize,
        sequentialKeys: false,
        requestTimeoutMs: 10_000,
      });
    } else {
      throw new Error(`scenario ${scenario.name} has no workload`);
    }
    if (verbose) process.stdout.write(`\n${formatSummary(result)}\n`);
    cpuAfter ??= cpuSecondsOf(cluster.members);
    const serverCpuSeconds = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
    return { client: 'lichen bench', result, serverCpuSeconds };
  } catch (error) {
    return { client: 'lichen bench', error: error instanceof Error ? error.message : String(error) };
  }
}

/** Seconds the Go client's load may take at most (it stops once every key is written). */
const LOAD_SECONDS_MAX = 1800;

/** The Go client's load, then each member's memory and data directory size. */
async function runLoad(binary: string, cluster: Cluster, workload: Workload): Promise<ScenarioOutcome> {
  try {
    const outcome = await runGoScenario(binary, cluster, workload, LOAD_SECONDS_MAX * 1000);
    outcome.result!.latency.maxMs = lastToolRun?.maxms;
    const status = cluster.members.map((m) => readFileSync(`/proc/${m.pid}/status`, 'utf8'));
    const kib = (text: string, field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    outcome.result!.members = {
      rssMiB: status.map((text) => kib(text, 'VmRSS') / 1024),
      peakRssMiB: status.map((text) => kib(text, 'VmHWM') / 1024),
      anonMiB: status.map((text) => kib(text, 'RssAnon') / 1024),
      fileMiB: status.map((text) => kib(text, 'RssFile') / 1024),
      dataMiB: cluster.memberDataDirs.map((dir) => directoryBytes(dir) / 2 ** 20),
    };
    // Lichen's members say how much of it is V8's heap in use (the key index, the members' state).
    if (cluster.httpEndpoints.length > 0) outcome.result!.members.heapUsedMiB = await Promise.all(cluster.httpEndpoints.map(heapUsedMiB));
    return outcome;
  } catch (error) {
    return { client: 'go', error: error instanceof Error ? error.message : String(error) };
  }
}

/** V8's heap in use in a Lichen member (prom-client's nodejs_heap_size_used_bytes on /metrics), in MiB. */
async function heapUsedMiB(http: string): Promise<number> {
  const text = await (await fetch(`http://${http}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN) / 2 ** 20;
}

/** The bytes the files under `dir` take on disk (allocated blocks, as du counts: a preallocated WAL counts whole). */
function directoryBytes(dir: string, depth = 0): number {
  if (depth > 8) return 0;
  let bytes = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    bytes += stat.isDirectory() ? directoryBytes(path, depth + 1) : stat.blocks * 512;
  }
  return bytes;
}

/** How long etcdctl check perf may take (it runs 60 s, then deletes its keys). */
const CHECK_PERF_TIMEOUT_MS = 300_000;

/**
 * `etcdctl check perf --load=<size>`: etcd's own check (puts at a fixed rate for 60 s from its
 * clients, then PASS or FAIL on throughput, slowest request and deviation). Its output is parsed;
 * a request that failed ("request timed out") is counted.
 */
async function runCheckPerf(cluster: Cluster, load: 'm' | 'l'): Promise<ScenarioOutcome> {
  const etcdctl = findEtcdctl();
  if (etcdctl === undefined) return { client: 'etcdctl', error: 'etcdctl is not installed (Debian: apt-get install -y etcd-client)' };
  const cpuBefore = cpuSecondsOf(cluster.members);
  const startedMs = performance.now();
  const child = spawn(etcdctl, ['--endpoints', cluster.clientEndpoints.join(','), 'check', 'perf', `--load=${load}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: CHECK_PERF_TIMEOUT_MS,
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | string>((resolve) => child.once('close', (status, signal) => resolve(status ?? signal ?? 'unknown')));
  const seconds = (performance.now() - startedMs) / 1000;
  const cpuAfter = cpuSecondsOf(cluster.members);
  // The progress bar redraws with carriage returns; only the verdict lines matter.
  const verdicts = output.split(/[\r\n]+/).filter((line) => /^(PASS|FAIL)/.test(line.trim())).join('\n');
  const figure = (pattern: RegExp): number => Number(pattern.exec(output)?.[1] ?? NaN);
  // PASS: "Throughput is 150 writes/s"; FAIL: "Throughput too low: 537 writes/s" (and the same for the others).
  const throughput = figure(/Throughput (?:is|too low:) (\d+) writes\/s/);
  const slowestMs = figure(/Slowest request took (?:too long: )?([\d.]+)s/) * 1000;
  const stddevMs = figure(/Stddev (?:is|too high:) ([\d.]+)s/) * 1000;
  // A failed run lists its errors as "ERROR(etcdserver: request timed out) -> 8".
  const timeouts = [...output.matchAll(/ERROR\(([^)]*)\) -> (\d+)/g)].filter((m) => m[1]!.includes('request timed out')).reduce((sum, m) => sum + Number(m[2]), 0);
  if (Number.isNaN(throughput)) return { client: 'etcdctl', error: `etcdctl check perf --load=${load} exited ${code}: ${output.slice(-500)}` };
  return {
    client: 'etcdctl',
    result: {
      requests: Math.round(throughput * 60),
      errors: timeouts,
      errorSamples: timeouts > 0 ? [{ count: timeouts, message: 'request timed out' }] : [],
      throughputPerSecond: throughput,
      latency: { p50Ms: NaN, p99Ms: NaN, maxMs: slowestMs },
      tool: { cpuPercentOfOneCore: NaN },
      checkPerf: { passed: code === 0 && !/FAIL/.test(verdicts), stddevMs, timeouts, output: verdicts },
    },
    serverCpuSeconds: cpuBefore !== undefined && cpuAfter !== undefined ? ((cpuAfter - cpuBefore) * 60) / Math.max(60, seconds) : undefined,
  };
}

function findEtcdctl(): string | undefined {
  const which = spawnSync('sh', ['-c', 'command -v etcdctl'], { encoding: 'utf8' });
  const onPath = which.status === 0 ? which.stdout.trim() : '';
  if (onPath !== '') return onPath;
  return existsSync('/usr/bin/etcdctl') ? '/usr/bin/etcdctl' : undefined;
}

/** Writes every key of the scenario's key space once (64 clients, unmeasured), as runBench's preload does. */
async function preload(cluster: Cluster, grpc: NonNullable<Scenario['grpc']>): Promise<number> {
  const { keySpaceSize } = grpc;
  const clients = Math.min(64, keySpaceSize);
  const result = await runBench({
    ...WRITE_DEFAULTS,
    keySizeBytes: grpc.keySizeBytes,
    valueSizeBytes: grpc.valueSizeBytes,
    keySpaceSize,
    kind: 'put',
    targetLeader: false,
    clients,
    conns: Math.min(8, clients),
    sequentialKeys: true,
    preload: false,
    total: keySpaceSize,
    endpoints: cluster.clientEndpoints,
    requestTimeoutMs: 10_000,
  });
  if (result.errors > 0) throw new Error(`preload failed: ${result.errors} of ${keySpaceSize} puts failed (${result.errorSamples[0]?.message ?? 'unknown error'})`);
  return result.requests;
}

/**
 * Seconds of unmeasured lease keep-alives before the scenarios, when one of them keeps leases
 * alive: the puts of the warm-up never run a follower's forwarding of keep-alives to the leader
 * (its gRPC client, stream set-up, and their compilation). Measured 2026-12-07 (scratch probe: one
 * Lichen cluster, 40 s of puts, then lease-keepalive-10000 rounds of 5 s, node --cpu-prof, load
 * 7-16): the first round cost the members 119, 437 and 279 µs per keep-alive against 87-107,
 * 74-106 and 188-211 in the rounds after it, and one follower's gRPC client code took 63 µs per
 * keep-alive (all members' keep-alives counted) in the first round against 22 in the third.
 */
const LEASE_WARMUP_SECONDS = 5;
/** Leases the keep-alive warm-up grants (fewer than the scenario's: the grants are not what it warms). */
const LEASE_WARMUP_LEASES = 1_000;

/** Unmeasured keep-alives (see LEASE_WARMUP_SECONDS); only reported when they fail, like warmUp. */
async function warmUpLeases(cluster: Cluster, scenarios: readonly Scenario[]): Promise<void> {
  const lease = scenarios.find((s) => s.grpc?.kind === 'lease-keepalive')?.grpc;
  if (lease === undefined) return;
  try {
    const result = await runBench({ ...lease, leases: LEASE_WARMUP_LEASES, endpoints: cluster.clientEndpoints, durationMs: LEASE_WARMUP_SECONDS * 1000, requestTimeoutMs: 10_000 });
    process.stdout.write(`  warm-up: ${result.requests} lease keep-alives in ${LEASE_WARMUP_SECONDS} s over ${LEASE_WARMUP_LEASES} leases (not measured)\n`);
  } catch (error) {
    process.stdout.write(`  lease warm-up failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

/** Unmeasured puts; a failure here shows up again in the scenarios, so it is only reported. */
async function warmUp(cluster: Cluster, durationMs: number, client: LoadClient): Promise<void> {
  try {
    if (client.kind === 'go') {
      const run = await runTool(client.binary, targetOf(cluster), { op: 'put', clients: WARMUP_CLIENTS, conns: WARMUP_CLIENTS / 4 }, durationMs / 1000);
      process.stdout.write(`  warm-up: ${run.ok} puts in ${(durationMs / 1000).toFixed(0)} s, ${WARMUP_CLIENTS} Go clients (not measured)\n`);
      return;
    }
    const result = await runBench({
      ...WRITE_DEFAULTS,
      kind: 'put',
      clients: WARMUP_CLIENTS,
      conns: WARMUP_CLIENTS / 4,
      targetLeader: true,
      endpoints: cluster.clientEndpoints,
      durationMs,
      requestTimeoutMs: 10_000,
    });
    process.stdout.write(`  warm-up: ${result.requests} puts in ${(durationMs / 1000).toFixed(0)} s, ${WARMUP_CLIENTS} clients (not measured)\n`);
  } catch (error) {
    process.stdout.write(`  warm-up failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

function oneLine(system: System, scenario: Scenario, outcome: ScenarioOutcome): string {
  const name = scenario.name.padEnd(NAME_WIDTH);
  if (outcome.error !== undefined) return `  ${system.padEnd(6)} ${name} FAILED: ${outcome.error}`;
  const r = outcome.result!;
  const watch = r.watch ? `  ${r.watch.eventsPerSecond} events/s, delivery p99 ${r.watch.delivery.p99Ms.toFixed(2)} ms, ${r.watch.eventsReceived}/${r.watch.eventsExpected} events` : '';
  const cas = r.cas ? `  ${r.cas.committed} committed, ${r.cas.conflicts} lost a race` : '';
  return (
    `  ${system.padEnd(6)} ${name} ${r.throughputPerSecond.toFixed(0).padStart(7)} req/s  ` +
    `p50 ${r.latency.p50Ms.toFixed(2)} ms  p99 ${r.latency.p99Ms.toFixed(2)} ms  errors ${r.errors}  tool CPU ${r.tool.cpuPercentOfOneCore.toFixed(0)}%  ` +
    `server CPU ${serverMicrosPerRequest(outcome)} µs/req${watch}${cas}`
  );
}

/** The Go client reads keys it wrote once (k0000000..): a range of a missing key would cost less. */
async function loadKeysForGoReads(cluster: Cluster, scenarios: readonly Scenario[], client: LoadClient): Promise<void> {
  if (client.kind !== 'go' || !scenarios.some((s) => s.go?.op === 'range' || s.go?.op === 'srange')) return;
  const run = await runTool(client.binary, targetOf(cluster), { op: 'load', clients: 64, conns: 8 }, 600);
  process.stdout.write(`  loaded ${run.ok} of ${BENCH_KEYS} keys for the reads\n`);
}

async function runSystem(
  system: System,
  start: () => Promise<Cluster>,
  scenarios: readonly Scenario[],
  durationMs: number,
  warmupMs: number,
  verbose: boolean,
  client: LoadClient,
): Promise<{ version: string; outcomes: Record<string, ScenarioOutcome> }> {
  process.stdout.write(`\nStarting a ${MEMBERS}-member ${system} cluster…\n`);
  const cluster = await start();
  const outcomes: Record<string, ScenarioOutcome> = {};
  let failed = true;
  try {
    const leader = await waitForLeader(cluster);
    process.stdout.write(`  ${cluster.version}; leader at ${leader}\n`);
    if (warmupMs > 0) {
      await warmUp(cluster, warmupMs, client);
      await warmUpLeases(cluster, scenarios);
    }
    await loadKeysForGoReads(cluster, scenarios, client);
    for (const scenario of scenarios) {
      if (scenario.lichenOnly && system !== 'lichen') continue;
      const outcome = await runScenario(cluster, scenario, durationMs, verbose, client);
      outcomes[scenario.name] = outcome;
      process.stdout.write(oneLine(system, scenario, outcome) + '\n');
    }
    failed = Object.values(outcomes).some((o) => o.error !== undefined || (o.result?.errors ?? 0) > 0);
  } finally {
    await stopCluster(cluster, failed);
  }
  return { version: cluster.version, outcomes };
}

// ---------------------------------------------------------------- report

function machineInfo() {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.split(':').slice(1).join(':').trim();
  } catch {
    // Not Linux: keep what os.cpus() said.
  }
  const nproc = spawnSync('nproc', [], { encoding: 'utf8' });
  return {
    nproc: nproc.status === 0 ? Number(nproc.stdout.trim()) : cpus().length,
    cpuModel,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

interface SystemReport {
  ran: boolean;
  version?: string;
  note?: string;
  scenarios: Record<string, ScenarioOutcome>;
}

/** The members' CPU time per completed request, in µs (all members together). */
function serverMicrosPerRequest(outcome: ScenarioOutcome | undefined): string {
  const requests = outcome?.result?.requests ?? 0;
  if (outcome?.serverCpuSeconds === undefined || requests === 0) return '–';
  return ((outcome.serverCpuSeconds * 1e6) / requests).toFixed(0);
}

function ratio(lichen: number | undefined, etcd: number | undefined): string {
  if (lichen === undefined || etcd === undefined || etcd === 0) return '–';
  return `${(lichen / etcd).toFixed(2)}×`;
}

function cell(outcome: ScenarioOutcome | undefined, pick: (r: Measured) => number, digits: number): string {
  if (outcome === undefined) return '–';
  if (outcome.result === undefined) return 'failed';
  return pick(outcome.result).toFixed(digits);
}

/** The figures a watch or compare-and-swap row has beyond requests per second. */
function specialFigures(scenario: Scenario): Array<[string, (r: Measured | undefined) => number | undefined]> {
  if (scenario.grpc?.kind === 'watch') {
    return [
      ['events delivered/s', (r) => r?.watch?.eventsPerSecond],
      ['events received / expected', (r) => (r?.watch ? r.watch.eventsReceived / Math.max(1, r.watch.eventsExpected) : undefined)],
      ['delivery p50 ms', (r) => r?.watch?.delivery.p50Ms],
      ['delivery p99 ms', (r) => r?.watch?.delivery.p99Ms],
    ];
  }
  return [
    ['committed/s', (r) => (r?.cas ? (r.cas.committed / Math.max(1, r.requests)) * r.throughputPerSecond : undefined)],
    ['share that lost a race', (r) => (r?.cas ? r.cas.conflicts / Math.max(1, r.cas.committed + r.cas.conflicts) : undefined)],
  ];
}

/** The figures of a load or check perf row beyond requests per second (members: the largest of the three). */
function longRunFigures(scenario: Scenario): Array<[string, (r: Measured | undefined) => number | undefined]> {
  const largest = (values: number[] | undefined): number | undefined => (values === undefined ? undefined : Math.max(...values));
  const slowest: [string, (r: Measured | undefined) => number | undefined] = ['slowest request ms', (r) => r?.latency.maxMs];
  if (scenario.checkPerf) {
    return [slowest, ['latency deviation ms', (r) => r?.checkPerf?.stddevMs], ['requests timed out', (r) => r?.checkPerf?.timeouts], ['passed (1) / failed (0)', (r) => (r?.checkPerf ? Number(r.checkPerf.passed) : undefined)]];
  }
  return [
    slowest,
    ['RSS MiB after, largest member', (r) => largest(r?.members?.rssMiB)],
    ['peak RSS MiB, largest member', (r) => largest(r?.members?.peakRssMiB)],
    ['RSS anonymous MiB, largest member', (r) => largest(r?.members?.anonMiB)],
    ['RSS mapped files MiB, largest member', (r) => largest(r?.members?.fileMiB)],
    ['V8 heap in use MiB, largest member', (r) => largest(r?.members?.heapUsedMiB)],
    ['data directory MiB, largest member', (r) => largest(r?.members?.dataMiB)],
  ];
}

function goDescription(workload: Workload): string {
  return `${workload.op}, ${workload.clients} Go client${workload.clients === 1 ? '' : 's'}, ${workload.conns} conn${workload.conns === 1 ? '' : 's'}, all members`;
}

function markdownReport(report: {
  date: string;
  client: string;
  goClient: boolean;
  machine: ReturnType<typeof machineInfo>;
  durationSeconds: number;
  warmupSeconds: number;
  scenarios: readonly Scenario[];
  etcd: SystemReport;
  lichen: SystemReport;
}): string {
  const { machine, etcd, lichen } = report;
  const lines = [
    `# Lichen vs etcd — ${report.date}`,
    '',
    `Machine: ${machine.nproc} CPUs (${machine.cpuModel}), Node ${machine.node}, ${machine.platform}.`,
    `Each scenario ran ${report.durationSeconds} s against a 3-member cluster on loopback, after ${report.warmupSeconds} s of`,
    `unmeasured puts (${WARMUP_CLIENTS} clients), and ${LEASE_WARMUP_SECONDS} s of lease keep-alives when a scenario keeps leases alive,`,
    `so that no scenario pays for a cold start. Client: ${report.client}.`,
    'The benchmark process shares the same CPUs, so on a small machine it competes with the',
    'servers: see "tool CPU" (% of one core used by the benchmark itself). "Server CPU" is the CPU time',
    'all three members used per request (user + system, from /proc): the cost of a request that does',
    'not depend on how crowded the cores are.',
    '',
    `- etcd: ${etcd.ran ? etcd.version : `not run — ${etcd.note}`}`,
    `- Lichen: ${lichen.ran ? lichen.version : `not run — ${lichen.note}`}`,
    '',
    '| scenario | Lichen req/s | etcd req/s | Lichen/etcd | Lichen p50 / p99 ms | etcd p50 / p99 ms | p50 / p99 Lichen/etcd | tool CPU % (L / e) | server CPU µs/req (L / e) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const scenario of report.scenarios) {
    const l = lichen.scenarios[scenario.name];
    const e = etcd.scenarios[scenario.name];
    const throughput = (o: ScenarioOutcome | undefined) => o?.result?.throughputPerSecond;
    const p50 = (o: ScenarioOutcome | undefined) => o?.result?.latency.p50Ms;
    const p99 = (o: ScenarioOutcome | undefined) => o?.result?.latency.p99Ms;
    lines.push(
      `| ${scenario.name} | ${cell(l, (r) => r.throughputPerSecond, 0)} | ${scenario.lichenOnly ? 'n/a' : cell(e, (r) => r.throughputPerSecond, 0)} | ` +
        `${ratio(throughput(l), throughput(e))} | ${cell(l, (r) => r.latency.p50Ms, 2)} / ${cell(l, (r) => r.latency.p99Ms, 2)} | ` +
        `${scenario.lichenOnly ? 'n/a' : `${cell(e, (r) => r.latency.p50Ms, 2)} / ${cell(e, (r) => r.latency.p99Ms, 2)}`} | ` +
        `${scenario.lichenOnly ? 'n/a' : `${ratio(p50(l), p50(e))} / ${ratio(p99(l), p99(e))}`} | ` +
        `${cell(l, (r) => r.tool.cpuPercentOfOneCore, 0)} / ${scenario.lichenOnly ? 'n/a' : cell(e, (r) => r.tool.cpuPercentOfOneCore, 0)} | ` +
        `${serverMicrosPerRequest(l)} / ${scenario.lichenOnly ? 'n/a' : serverMicrosPerRequest(e)} |`,
    );
  }
  const long = report.scenarios.filter((s) => s.load || s.checkPerf);
  if (long.length > 0) {
    lines.push('', '| scenario | figure | Lichen | etcd | Lichen/etcd |', '|---|---|---:|---:|---:|');
    for (const scenario of long) {
      for (const [figure, pick] of longRunFigures(scenario)) {
        const l = pick(lichen.scenarios[scenario.name]?.result);
        const e = pick(etcd.scenarios[scenario.name]?.result);
        lines.push(`| ${scenario.name} | ${figure} | ${l?.toFixed(1) ?? '–'} | ${e?.toFixed(1) ?? '–'} | ${ratio(l, e)} |`);
      }
    }
  }
  const special = report.scenarios.filter((s) => s.grpc?.kind === 'watch' || s.grpc?.kind === 'txn-cas');
  if (special.length > 0) {
    lines.push('', '| scenario | figure | Lichen | etcd | Lichen/etcd |', '|---|---|---:|---:|---:|');
    for (const scenario of special) {
      for (const [figure, pick] of specialFigures(scenario)) {
        const l = pick(lichen.scenarios[scenario.name]?.result);
        const e = pick(etcd.scenarios[scenario.name]?.result);
        lines.push(`| ${scenario.name} | ${figure} | ${l?.toFixed(2) ?? '–'} | ${e?.toFixed(2) ?? '–'} | ${ratio(l, e)} |`);
      }
    }
  }
  lines.push('', 'Scenarios:', '');
  for (const scenario of report.scenarios) {
    const byGo = report.goClient && scenario.go !== undefined;
    const fallback = report.goClient && !byGo && !scenario.checkPerf ? ' (lichen bench, grpc-js: the Go client has no such operation)' : '';
    lines.push(`- **${scenario.name}**: ${byGo ? goDescription(scenario.go!) : scenario.description}${fallback}`);
  }
  const failures = [...Object.entries(lichen.scenarios).map(([n, o]) => ['Lichen', n, o] as const), ...Object.entries(etcd.scenarios).map(([n, o]) => ['etcd', n, o] as const)]
    .filter(([, , o]) => o.error !== undefined || (o.result?.errors ?? 0) > 0);
  if (failures.length > 0) {
    lines.push('', 'Failures and errors:', '');
    for (const [system, name, outcome] of failures) {
      const detail = outcome.error ?? outcome.result?.errorSamples.map((s) => `${s.count} × ${s.message}`).join('; ');
      lines.push(`- ${system} ${name}: ${detail}`);
    }
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const unknown = (flags.scenarios ?? []).filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`unknown scenario: ${unknown.join(', ')}${scenarioHelp()}`);
  const client: LoadClient = flags.goClient === '' ? { kind: 'lichen-bench' } : { kind: 'go', binary: flags.goClient };
  const scenarios = SCENARIOS.filter((s) => (flags.scenarios === undefined ? !s.onlyWhenNamed : flags.scenarios.includes(s.name)));
  const clientName = client.kind === 'go' ? `etcd's Go client (clientv3), ${client.binary}, requests spread over all members` : 'lichen bench (grpc-js)';
  const onGrpcJs = client.kind === 'go' ? scenarios.filter((s) => s.go === undefined && s.checkPerf === undefined).map((s) => s.name) : [];
  if (onGrpcJs.length > 0) process.stdout.write(`On lichen bench (grpc-js; the Go client has no such operation): ${onGrpcJs.join(', ')}\n`);
  const durationMs = flags.durationSeconds * 1000;
  const warmupMs = flags.warmupSeconds * 1000;
  const date = new Date();
  const machine = machineInfo();
  process.stdout.write(
    `bench:compare — ${date.toISOString()} — ${machine.nproc} CPUs (${machine.cpuModel}), Node ${machine.node}\n` +
      `Scenarios: ${scenarios.map((s) => s.name).join(', ')}; ${flags.durationSeconds} s each after ${flags.warmupSeconds} s of warm-up; client: ${clientName}\n`,
  );

  const etcd: SystemReport = { ran: false, scenarios: {} };
  const lichen: SystemReport = { ran: false, scenarios: {} };
  const etcdBinary = findEtcd(flags.etcdBinary);
  const etcdScenarios = scenarios.filter((s) => !s.lichenOnly);
  if (flags.skipEtcd) {
    etcd.note = 'skipped (--skip-etcd)';
  } else if (etcdBinary === undefined) {
    etcd.note = 'etcd is not installed (Debian: apt-get install -y etcd-server); Lichen ran alone';
    process.stdout.write(`\n${etcd.note}\n`);
  } else if (etcdScenarios.length === 0) {
    etcd.note = 'no selected scenario applies to etcd';
  } else {
    const run = await runSystem('etcd', () => startEtcdCluster(etcdBinary), etcdScenarios, durationMs, warmupMs, flags.verbose, client);
    Object.assign(etcd, { ran: true, version: run.version, scenarios: run.outcomes });
  }
  if (flags.skipLichen) {
    lichen.note = 'skipped (--skip-lichen)';
  } else {
    const run = await runSystem('lichen', () => startLichenCluster(flags.engine, flags.profileDir), scenarios, durationMs, warmupMs, flags.verbose, client);
    Object.assign(lichen, { ran: true, version: run.version, scenarios: run.outcomes });
  }

  const stamp = date.toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  mkdirSync(flags.outDir, { recursive: true });
  const jsonPath = join(flags.outDir, `compare-${stamp}.json`);
  const mdPath = join(flags.outDir, `compare-${stamp}.md`);
  const report = { date: date.toISOString(), client: clientName, goClient: client.kind === 'go', machine, durationSeconds: flags.durationSeconds, warmupSeconds: flags.warmupSeconds, scenarios, etcd, lichen };
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  const markdown = markdownReport(report);
  writeFileSync(mdPath, markdown);
  process.stdout.write(`\n${markdown}\nWrote ${jsonPath}\nWrote ${mdPath}\n`);
  const anyFailed = [...Object.values(etcd.scenarios), ...Object.values(lichen.scenarios)].some((o) => o.error !== undefined);
  process.exitCode = anyFailed ? 1 : 0;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:compare failed: ${error instanceof Error ? error.message : String(error)}\n`);
  killAllChildren();
  process.exit(1);
});
