// The JSON gateway's throughput for `range`: wrk with 64 HTTP/1.1 keep-alive connections
// (POST /v3/kv/range of one small key, linearizable, as etcd3gw sends it) against a one-member
// etcd 3.4 and a one-member Lichen on loopback, one after the other, alternated --rounds times, in
// one run. Prints one JSON object: requests per second, latency percentiles and the server's CPU
// time per request (user + system, from /proc) for each round, and the Lichen/etcd ratio.
//
//   node --import tsx scripts/bench-gateway.ts [--seconds 10] [--rounds 3] [--connections 64]
//
// Needs wrk (Debian: apt-get install wrk) and etcd (apt-get install etcd-server). Compare ratios
// from one run only: absolute figures move with the machine's load.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEtcd } from '../src/server/testing/etcd-process.js';
import { ProcessCluster } from '../src/server/testing/process-cluster.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!);
const seconds = Number(args.get('seconds') ?? 10);
const rounds = Number(args.get('rounds') ?? 3);
const connections = Number(args.get('connections') ?? 64);
const threads = Math.max(1, Math.min(2, cpus().length));

interface Round {
  system: 'etcd' | 'lichen';
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  serverCpuMicrosPerRequest: number;
}

function post(address: string, path: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`http://${address}${path}`, { method: 'POST' }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU time of a process so far, in microseconds (utime + stime from /proc). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return (ticks / hz) * 1e6;
}

function milliseconds(text: string): number {
  const match = /([\d.]+)(us|ms|s)/.exec(text);
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

function runWrk(system: Round['system'], address: string, pid: number, script: string): Round {
  const before = cpuMicros(pid);
  const wrkArgs = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://${address}/v3/kv/range`];
  const out = spawnSync('wrk', wrkArgs, { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  const text = out.stdout;
  const requests = Number(/(\d+) requests in/.exec(text)?.[1]);
  const errors = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0) + Number(/Socket errors: .*?(\d+)/.exec(text)?.[1] ?? 0);
  return {
    system,
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]),
    p50Ms: milliseconds(/50%\s+(\S+)/.exec(text)?.[1] ?? ''),
    p99Ms: milliseconds(/99%\s+(\S+)/.exec(text)?.[1] ?? ''),
    errors,
    serverCpuMicrosPerRequest: Math.round((cpuMicros(pid) - before) / requests),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'bench-gateway-'));
const script = join(dir, 'range.lua');
writeFileSync(script, `wrk.method = "POST"\nwrk.body = '{"key":"Zm9v"}'\nwrk.headers["Content-Type"] = "application/json"\n`);
const etcd = await startEtcd();
const lichen = await ProcessCluster.start({ nodes: 1 });
try {
  const lichenMember = lichen.members[0]!;
  const targets = [
    { system: 'etcd' as const, address: etcd.client, pid: etcd.pid },
    { system: 'lichen' as const, address: lichenMember.client, pid: lichenMember.process!.pid! },
  ];
  for (const target of targets) await post(target.address, '/v3/kv/put', '{"key":"Zm9v","value":"YmFy"}');
  // Unmeasured: the first seconds of a fresh process (Node compiles its hot paths).
  for (const target of targets) spawnSync('wrk', ['-t1', '-c8', '-d3s', '-s', script, `http://${target.address}/v3/kv/range`]);
  const results: Round[] = [];
  for (let round = 0; round < rounds; round++) for (const target of targets) results.push(runWrk(target.system, target.address, target.pid, script));
  const mean = (system: Round['system']): number => {
    const mine = results.filter((r) => r.system === system);
    return mine.reduce((total, r) => total + r.requestsPerSecond, 0) / mine.length;
  };
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg().map((l) => Number(l.toFixed(2))), node: process.version },
      etcd: etcd.version,
      command: `wrk -t${threads} -c${connections} -d${seconds}s --latency -s range.lua http://<client>/v3/kv/range`,
      rounds: results,
      meanRequestsPerSecond: { etcd: Math.round(mean('etcd')), lichen: Math.round(mean('lichen')) },
      lichenOverEtcd: Number((mean('lichen') / mean('etcd')).toFixed(2)),
    }),
  );
} finally {
  await lichen.stop();
  await etcd.stop();
  rmSync(dir, { recursive: true, force: true });
}
