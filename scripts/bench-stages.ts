// Where a write's latency goes, from the members' own per-stage histograms (/metrics): a 3-member
// Lichen cluster from the build, the load generator on etcd's Go client doing puts (one client by
// default: put-1, one write at a time), and each member's histograms read before and after the
// run. Prints one JSON object: per member and stage, the samples taken during the run, their mean
// and their median (interpolated within its histogram bucket), with the client's p50.
//
//   npm run build && node --import tsx scripts/bench-stages.ts --bench /path/to/etcd-go-bench \
//     [--seconds 10] [--scenario put-1]
//
// The stages (see README, "Metrics"): lichen_grpc_request_seconds (the member's whole answer to
// the client's Put), lichen_server_proposal_commit_duration_seconds (proposal to commit, seen by
// the member that took the request), lichen_disk_wal_fsync_duration_seconds (a Ready's WAL write
// and fdatasync), lichen_server_apply_duration_seconds and lichen_disk_backend_commit_duration_seconds
// (applying a Ready's entries, then the engine commit), lichen_network_peer_round_trip_time_seconds
// (a read round's heartbeat: only when linearizable reads run, so this script measures it with a
// range-1 run of a second after the puts).
import { loadavg } from 'node:os';
import { runTool, SCENARIOS, ScriptFlags, startLichenCluster, WARMUP_SECONDS, type ScenarioName } from './go-bench.js';

const STAGES = [
  'lichen_grpc_request_seconds',
  'lichen_server_proposal_commit_duration_seconds',
  'lichen_disk_wal_fsync_duration_seconds',
  'lichen_server_apply_duration_seconds',
  'lichen_disk_backend_commit_duration_seconds',
  'lichen_network_peer_round_trip_time_seconds',
] as const;
type Stage = (typeof STAGES)[number];

/** One histogram summed over its label sets (the gRPC one: only the Put calls): cumulative bucket counts, sum, count. */
interface Histogram {
  buckets: Map<number, number>;
  sum: number;
  count: number;
}

function parseHistograms(text: string): Map<Stage, Histogram> {
  const histograms = new Map<Stage, Histogram>(STAGES.map((s) => [s, { buckets: new Map(), sum: 0, count: 0 }]));
  for (const line of text.split('\n')) {
    const match = /^(\w+?)_(bucket|sum|count)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const [, name, part, labels = '', value] = match;
    const histogram = histograms.get(name as Stage);
    if (!histogram) continue;
    if (name === 'lichen_grpc_request_seconds' && !labels.includes('method="/etcdserverpb.KV/Put"')) continue;
    if (part === 'sum') histogram.sum += Number(value);
    else if (part === 'count') histogram.count += Number(value);
    else {
      const le = Number(/le="([^"]+)"/.exec(labels)![1]!.replace('+Inf', 'Infinity'));
      histogram.buckets.set(le, (histogram.buckets.get(le) ?? 0) + Number(value));
    }
  }
  return histograms;
}

/** What was observed between two scrapes: count, mean and median (linear within the bucket), in ms. */
function between(before: Histogram, after: Histogram): { samples: number; meanMs: number; p50Ms: number } {
  const samples = after.count - before.count;
  if (samples === 0) return { samples, meanMs: 0, p50Ms: 0 };
  const bounds = [...after.buckets.keys()].sort((a, b) => a - b);
  let previousBound = 0;
  let previousCount = 0;
  let p50 = 0;
  for (const bound of bounds) {
    const count = after.buckets.get(bound)! - (before.buckets.get(bound) ?? 0);
    if (count >= samples / 2) {
      p50 = bound === Infinity ? previousBound : previousBound + ((bound - previousBound) * (samples / 2 - previousCount)) / Math.max(1, count - previousCount);
      break;
    }
    previousBound = bound;
    previousCount = count;
  }
  const ms = (seconds: number): number => Number((seconds * 1000).toFixed(3));
  return { samples, meanMs: ms((after.sum - before.sum) / samples), p50Ms: ms(p50) };
}

async function scrape(http: string): Promise<Map<Stage, Histogram>> {
  return parseHistograms(await (await fetch(`http://${http}/metrics`)).text());
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-stages.ts');
  const bench = args.bench();
  const seconds = args.number('seconds', 10);
  const scenario = (args.get('scenario') ?? 'put-1') as ScenarioName;
  if (!(scenario in SCENARIOS)) throw new Error(`--scenario: one of ${Object.keys(SCENARIOS).join(', ')}`);
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const lichen = await startLichenCluster({});
  try {
    await runTool(bench, lichen, { op: 'load', clients: 64, conns: 8 }, 600);
    await runTool(bench, lichen, SCENARIOS['put-64'], WARMUP_SECONDS);
    const members = lichen.cluster.members;
    const before = await Promise.all(members.map((m) => scrape(m.http)));
    const result = await runTool(bench, lichen, SCENARIOS[scenario], seconds);
    const afterPuts = await Promise.all(members.map((m) => scrape(m.http)));
    await runTool(bench, lichen, SCENARIOS['range-1'], 1);
    const afterReads = await Promise.all(members.map((m) => scrape(m.http)));
    const stages = members.map((m, i) => ({
      member: m.name,
      ...Object.fromEntries(
        STAGES.map((stage) => [stage, stage === 'lichen_network_peer_round_trip_time_seconds' ? between(afterPuts[i]!.get(stage)!, afterReads[i]!.get(stage)!) : between(before[i]!.get(stage)!, afterPuts[i]!.get(stage)!)]),
      ),
    }));
    console.log(
      JSON.stringify({
        date: new Date().toISOString(),
        loadavgBefore: loadBefore,
        loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))),
        command: `node --import tsx scripts/bench-stages.ts ${process.argv.slice(2).join(' ')}`,
        client: { scenario, requestsPerSecond: result.qps, p50Ms: result.p50ms, p99Ms: result.p99ms, errors: result.errors },
        stages,
      }),
    );
  } finally {
    await lichen.stop();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
