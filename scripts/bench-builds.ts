// Two (or more) builds of Lichen against each other on the same machine at the same time: one
// 3-member cluster per build, all started at once, the load generator on etcd's Go client driving
// one cluster at a time, the builds alternated ABBA round by round, so drift in the machine's load
// falls on every build alike. The figure to read is the members' CPU time per request (all three
// members, from /proc, over exactly the tool's measured seconds): it depends much less than
// throughput on how crowded the cores are. Prints one JSON object; progress on stderr.
//
//   node --import tsx scripts/bench-builds.ts --bench /path/to/etcd-go-bench \
//     --trees <checkout A>,<checkout B> [--seconds 5] [--rounds 4] [--scenarios put-1,put-64,range-64]
//     [--engines lmdb,leveldb]   (each tree's --engine, in order; default lmdb for all)
//
// One checkout may be named twice with two engines (--trees .,. --engines lmdb,leveldb) to compare
// the storage engines on one build.
//
// Each tree is a checkout of Lichen with its own build (`npm run build` in it): its own
// src/server/testing/process-cluster.ts starts its own dist/cli/main.js. For example, to compare
// main with the commit before some change:
//   git clone -q . .tmp/old && git -C .tmp/old checkout <commit> && (cd .tmp/old && npm ci && npm run build)
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EngineKind } from '../src/engine/types.js';
import type { ProcessCluster } from '../src/server/testing/process-cluster.js';
import { BENCH_KEYS, median, runTool, SCENARIOS, ScriptFlags, WARMUP_SECONDS, type BenchTarget, type ScenarioName } from './go-bench.js';

interface Build {
  tree: string;
  engine: EngineKind;
  commit: string;
  /** How the output names it: the commit and the checkout (two checkouts of one commit may be compared). */
  label: string;
  target: BenchTarget;
  cluster: ProcessCluster;
}

interface Sample {
  round: number;
  /** The build's label. */
  build: string;
  scenario: ScenarioName;
  requestsPerSecond: number;
  p50Ms: number;
  serverCpuMicrosPerRequest: number;
  /** The same per member (leader or follower matters), in the order the cluster lists them. */
  memberCpuMicrosPerRequest: number[];
  errors: number;
}

async function startBuild(tree: string, engine: EngineKind): Promise<Build> {
  const root = resolve(tree);
  const module = (await import(pathToFileURL(`${root}/src/server/testing/process-cluster.ts`).href)) as typeof import('../src/server/testing/process-cluster.js');
  const cluster = await module.ProcessCluster.start({ nodes: 3, fromBuild: true, engine });
  const { execFileSync } = await import('node:child_process');
  const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  return { tree, engine, commit, label: `${commit} (${tree}, ${engine})`, cluster, target: { endpoints: cluster.members.map((m) => m.client), pids: cluster.members.map((m) => m.process!.pid!) } };
}

async function main(): Promise<void> {
  const args = new ScriptFlags(process.argv.slice(2), 'scripts/bench-builds.ts');
  const bench = args.bench();
  const trees = (args.get('trees') ?? '').split(',').filter(Boolean);
  if (trees.length < 2) throw new Error('--trees needs at least two checkouts, comma-separated');
  const seconds = args.number('seconds', 5);
  const rounds = args.number('rounds', 4);
  const scenarios = args.list<ScenarioName>('scenarios', 'put-1,put-64,range-64', Object.keys(SCENARIOS));
  const engines = args.list<EngineKind>('engines', trees.map(() => 'lmdb').join(','), ['lmdb', 'leveldb', 'memory']);
  if (engines.length !== trees.length) throw new Error('--engines needs one engine per tree');
  const loadBefore = loadavg().map((l) => Number(l.toFixed(2)));
  const builds: Build[] = [];
  try {
    for (const [i, tree] of trees.entries()) builds.push(await startBuild(tree, engines[i]!));
    for (const build of builds) {
      await runTool(bench, build.target, { op: 'load', clients: 64, conns: 8 }, 600);
      await runTool(bench, build.target, SCENARIOS['put-64'], WARMUP_SECONDS);
    }
    const samples: Sample[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? builds : [...builds].reverse();
      for (const scenario of scenarios) {
        for (const build of order) {
          const r = await runTool(bench, build.target, SCENARIOS[scenario], seconds);
          const perMember = r.memberCpuSeconds.map((seconds) => Math.round((seconds * 1e6) / Math.max(1, r.ok)));
          const cpu = perMember.reduce((a, b) => a + b, 0);
          samples.push({ round, build: build.label, scenario, requestsPerSecond: r.qps, p50Ms: r.p50ms, serverCpuMicrosPerRequest: cpu, memberCpuMicrosPerRequest: perMember, errors: r.errors });
          process.stderr.write(`round ${round} ${build.label} ${scenario.padEnd(9)} ${r.qps} req/s, p50 ${r.p50ms} ms, ${cpu} µs server CPU/req (${perMember.join(' + ')}), load ${loadavg()[0]!.toFixed(1)}\n`);
        }
      }
    }
    const summary: Record<string, Record<string, number>> = {};
    for (const scenario of scenarios) {
      const row: Record<string, number> = {};
      for (const build of builds) {
        const of = (pick: (s: Sample) => number): number => median(samples.filter((s) => s.scenario === scenario && s.build === build.label).map(pick));
        row[`${build.label} cpuMicrosPerRequest`] = of((s) => s.serverCpuMicrosPerRequest);
        row[`${build.label} requestsPerSecond`] = of((s) => s.requestsPerSecond);
        row[`${build.label} p50Ms`] = of((s) => s.p50Ms);
      }
      // Each later build against the first, round by round (the two ran minutes apart at most).
      for (const build of builds.slice(1)) {
        const ratios = (pick: (s: Sample) => number): number => {
          const perRound = Array.from({ length: rounds }, (_u, round) => {
            const of = (label: string): Sample => samples.find((s) => s.scenario === scenario && s.build === label && s.round === round)!;
            return pick(of(build.label)) / pick(of(builds[0]!.label));
          });
          return Number(((median(perRound) - 1) * 100).toFixed(1));
        };
        row[`${build.label} vs ${builds[0]!.label} pairedCpuPercent`] = ratios((s) => s.serverCpuMicrosPerRequest);
        row[`${build.label} vs ${builds[0]!.label} pairedThroughputPercent`] = ratios((s) => s.requestsPerSecond);
      }
      summary[scenario] = row;
    }
    console.log(
      JSON.stringify({
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavgBefore: loadBefore, loadavgAfter: loadavg().map((l) => Number(l.toFixed(2))), node: process.version },
        command: `node --import tsx scripts/bench-builds.ts ${process.argv.slice(2).join(' ')}`,
        builds: builds.map((b) => ({ tree: b.tree, engine: b.engine, commit: b.commit })),
        keys: BENCH_KEYS,
        summary,
        samples,
      }),
    );
  } finally {
    await Promise.all(builds.map((b) => b.cluster.stop()));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
