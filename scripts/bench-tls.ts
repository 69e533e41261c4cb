// The cost of TLS on throughput (issue 14): two 3-member clusters on loopback side by side, one
// plain and one with TLS and client certificates on the client and peer ports (as `lichen up
// --tls` sets them up), driven by etcd's Go client with and without --cacert --cert --key, the
// two alternated --rounds times in one run, plain-TLS then TLS-plain (ABBA), so drift in the
// machine's load falls on both sides alike. etcd 3.4 the same way, for its own cost of TLS.
// Prints one JSON object; progress on stderr.
//
//   node --import tsx scripts/bench-tls.ts --bench /path/to/etcd-go-bench-tls \
//     [--seconds 5] [--rounds 4] [--systems lichen,etcd] [--scenarios put-64,range-64] [--profile-dir <dir>]
//
// Lichen's members run from the build (dist/: `npm run build` first). --profile-dir: they run
// with node --cpu-prof and write their profiles there; stderr prints each run's measured window
// in CLOCK_MONOTONIC µs to cut the profiles with. Compare ratios from one run only.
import { cpus, loadavg } from 'node:os';
import { startEtcdCluster } from '../src/server/testing/etcd-process.js';
import type { ClusterTls } from '../src/tls/index.js';
import { median, runTool, SCENARIOS, ScriptFlags, startLichenCluster, WARMUP_SECONDS, type BenchTarget, type ScenarioName } from './go-bench.js';

type System = 'lichen' | 'etcd';
type Side = 'plain' | 'tls';

interface Flags {
  bench: string;
  seconds: number;
  rounds: number;
  systems: System[];
  scenarios: ScenarioName[];
  profileDir: string | undefined;
}

function parseFlags(argv: string[]): Flags {
  const args = new ScriptFlags(argv, 'scripts/bench-tls.ts');
  const flags: Flags = {
    bench: args.bench(),
    seconds: args.number('seconds', 5),
    rounds: args.number('rounds', 4),
    systems: args.list<System>('systems', 'lichen,etcd', ['lichen', 'etcd']),
    scenarios: args.list<ScenarioName>('scenarios', 'put-64,range-64', Object.keys(SCENARIOS)),
    profileDir: args.get('profile-dir'),
  };
  if (!(flags.seconds > 0) || !(flags.rounds >= 1)) throw new Error('--seconds and --rounds must be positive');
  return flags;
}

interface Cluster extends BenchTarget {
  /** The tool's TLS flags for this cluster (none for the plain one). */
  toolArgs: string[];
  version: string;
  stop(): Promise<void>;
}

const tlsArgs = (tls: ClusterTls): string[] => ['--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile];

async function startCluster(system: System, side: Side, profileDir: string | undefined): Promise<Cluster> {
  const tls = side === 'tls';
  if (system === 'etcd') {
    const members = await startEtcdCluster(3, { tls });
    return {
      endpoints: members.map((m) => (tls ? `https://${m.client}` : m.client)),
      pids: members.map((m) => m.pid),
      toolArgs: members[0]!.tls ? tlsArgs(members[0]!.tls) : [],
      version: `etcd ${members[0]!.version}`,
      stop: async () => void (await Promise.all(members.map((m) => m.stop()))),
    };
  }
  const lichen = await startLichenCluster({ profileDir, tls });
  return { ...lichen, toolArgs: lichen.cluster.tls ? tlsArgs(lichen.cluster.tls) : [] };
}

interface Sample {
  round: number;
  side: Side;
  scenario: ScenarioName;
  requestsPerSecond: number;
  p50Ms: number;
  errors: number;
  /** CPU time all three members used per request (µs). */
  serverCpuMicrosPerRequest: number;
  /** The tool's CPU time per request (µs): it shares the machine's cores, and pays for TLS too. */
  toolCpuMicrosPerRequest: number;
}

async function measure(system: System, clusters: Record<Side, Cluster>, flags: Flags): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let round = 0; round < flags.rounds; round++) {
    for (const scenario of flags.scenarios) {
      // ABBA: plain-TLS, then TLS-plain.
      const sides: Side[] = round % 2 === 0 ? ['plain', 'tls'] : ['tls', 'plain'];
      for (const side of sides) {
        const cluster = clusters[side];
        const r = await runTool(flags.bench, cluster, SCENARIOS[scenario], flags.seconds, cluster.toolArgs);
        if (r.errors > 0) process.stderr.write(`${system} ${side} ${scenario}: ${r.errors} errors, first: ${r.firstErr}\n`);
        const sample: Sample = {
          round,
          side,
          scenario,
          requestsPerSecond: r.qps,
          p50Ms: r.p50ms,
          errors: r.errors,
          serverCpuMicrosPerRequest: Math.round((r.memberCpuSeconds.reduce((a, b) => a + b, 0) * 1e6) / Math.max(1, r.ok)),
          toolCpuMicrosPerRequest: Math.round((r.toolCpuSeconds * 1e6) / Math.max(1, r.ok)),
        };
        process.stderr.write(`${system} round ${round} ${side.padEnd(5)} ${scenario.padEnd(8)} ${r.qps} req/s, p50 ${r.p50ms} ms, ${sample.serverCpuMicrosPerRequest} µs server CPU/req, ${sample.toolCpuMicrosPerRequest} µs tool CPU/req\n`);
        if (flags.profileDir !== undefined) process.stderr.write(`profile window ${side} ${scenario} ${r.windowMonotonicUs.join(' ')}\n`);
        samples.push(sample);
      }
    }
  }
  return samples;
}

/** Per scenario: median req/s, p50 and CPU per side, the median of the rounds' TLS/plain req/s ratios, and the ratio of all requests. */
function summarize(samples: Sample[], flags: Flags): Record<string, Record<string, number | number[]>> {
  const summary: Record<string, Record<string, number | number[]>> = {};
  for (const scenario of flags.scenarios) {
    const of = (side: Side): Sample[] => samples.filter((s) => s.scenario === scenario && s.side === side);
    const ratios = of('tls').map((t) => t.requestsPerSecond / of('plain').find((p) => p.round === t.round)!.requestsPerSecond);
    const total = (side: Side): number => of(side).reduce((sum, s) => sum + s.requestsPerSecond, 0);
    const row: Record<string, number | number[]> = {};
    for (const side of ['plain', 'tls'] as const) {
      row[`${side}RequestsPerSecond`] = median(of(side).map((s) => s.requestsPerSecond));
      row[`${side}P50Ms`] = median(of(side).map((s) => s.p50Ms));
      row[`${side}CpuMicrosPerRequest`] = median(of(side).map((s) => s.serverCpuMicrosPerRequest));
      row[`${side}ToolCpuMicrosPerRequest`] = median(of(side).map((s) => s.toolCpuMicrosPerRequest));
    }
    row['tlsToPlainPerRound'] = ratios.map((r) => Number(r.toFixed(2)));
    row['tlsToPlainMedian'] = Number(median(ratios).toFixed(3));
    row['tlsToPlainAllRequests'] = Number((total('tls') / total('plain')).toFixed(3));
    summary[scenario] = row;
  }
  return summary;
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const systems: Record<string, unknown> = {};
  for (const system of flags.systems) {
    process.stderr.write(`starting two 3-member ${system} clusters, plain and TLS…\n`);
    const started: Cluster[] = [];
    try {
      const clusters = { plain: await startCluster(system, 'plain', flags.profileDir), tls: undefined as unknown as Cluster };
      started.push(clusters.plain);
      clusters.tls = await startCluster(system, 'tls', flags.profileDir);
      started.push(clusters.tls);
      for (const cluster of started) {
        await runTool(flags.bench, cluster, { op: 'load', clients: 64, conns: 8 }, 600, cluster.toolArgs);
        await runTool(flags.bench, cluster, SCENARIOS['put-64'], WARMUP_SECONDS, cluster.toolArgs);
      }
      const samples = await measure(system, clusters, flags);
      systems[system] = { version: clusters.plain.version, summary: summarize(samples, flags), samples };
    } catch (error) {
      // The other system's figures are still worth printing.
      process.stderr.write(`${system}: ${error instanceof Error ? error.stack : String(error)}\n`);
      systems[system] = { error: error instanceof Error ? error.message : String(error) };
    } finally {
      await Promise.all(started.map((c) => c.stop()));
    }
  }
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavgBefore: loadBefore, loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))), node: process.version },
      command: `node --import tsx scripts/bench-tls.ts ${process.argv.slice(2).join(' ')}`,
      tool: `${flags.bench} --endpoints <3 members> --op put|range --clients N --conns M --seconds ${flags.seconds} --keys 10000 [--cacert --cert --key]`,
      setup: 'two 3-member clusters at once; TLS side: client and peer TLS with client certificates (--client-cert-auth, --peer-client-cert-auth); 10,000 keys loaded first',
      systems,
    }),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
