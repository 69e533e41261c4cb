// node --import tsx scripts/snapshot-check.ts [--keys 200000 --value-bytes 256 --rounds 3]
//
// Snapshots of a large store, Lichen against etcd: starts a one-member Lichen (dist/ when built,
// else the sources through tsx) and a one-member etcd (`etcd` from PATH), loads the same --keys
// keys of --value-bytes into each (txns of 128 puts, 8 in flight), then --rounds times, one after
// the other, times `etcdctl snapshot save` against each while sampling the Lichen member's
// anonymous resident memory every 20 ms. Checks each Lichen snapshot with `etcdctl snapshot status`.
// Prints one JSON object: the save times of both (compare ratios from the same run only), the
// file sizes, and Lichen's anonymous RSS before and at most during each save. Every process listens on
// 127.0.0.1 only and is stopped at the end (also on failure or Ctrl-C).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { openKvChannel } from '../src/bench/connections.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;
const PUTS_PER_TXN = 128;
const IN_FLIGHT = 8;
const RSS_SAMPLE_MS = 20;

function parseFlags(argv: string[]): { keys: number; valueBytes: number; rounds: number } {
  const flags = { keys: 200_000, valueBytes: 256, rounds: 3 };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const value = Number(argv[++i]);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} needs a positive integer`);
    if (name === '--keys') flags.keys = value;
    else if (name === '--value-bytes') flags.valueBytes = value;
    else if (name === '--rounds') flags.rounds = value;
    else throw new Error(`unknown flag ${name}`);
  }
  return flags;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Anonymous resident memory (heap, stacks; /proc RssAnon) in MiB. VmRSS would also count the
 * engine's memory-mapped file pages, which a full read of the store maps in as it goes.
 */
function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('RssAnon:')) ?? '';
  return Math.round(Number(/(\d+) kB/.exec(line)?.[1] ?? NaN) / 1024);
}

function etcdctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('etcdctl', args, { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 1 << 20 }, (error, stdout, stderr) =>
      error ? reject(new Error(`etcdctl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    );
  });
}

async function waitReady(endpoint: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await etcdctl([`--endpoints=${endpoint}`, 'endpoint', 'health']);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

async function load(endpoint: string, keys: number, valueBytes: number): Promise<number> {
  const channel = openKvChannel(endpoint);
  const value = Buffer.alloc(valueBytes, 0x61);
  const txns = Math.ceil(keys / PUTS_PER_TXN);
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < txns) {
      const first = next++ * PUTS_PER_TXN;
      const success = [];
      for (let k = first; k < Math.min(first + PUTS_PER_TXN, keys); k++) {
        success.push({ request_put: { key: Buffer.from(`key/${String(k).padStart(8, '0')}`), value } });
      }
      await channel.txn({ compare: [], success, failure: [] }, REQUEST_TIMEOUT_MS);
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    channel.close();
  }
  return Math.round((performance.now() - started) / 100) / 10;
}

/** Times one `etcdctl snapshot save`; samples `pid`'s RSS meanwhile when given. */
async function timeSave(endpoint: string, file: string, pid?: number): Promise<{ seconds: number; rssPeakMiB?: number }> {
  rmSync(file, { force: true });
  let rssPeakMiB = pid === undefined ? undefined : rssMiB(pid);
  const sampler = pid === undefined ? undefined : setInterval(() => (rssPeakMiB = Math.max(rssPeakMiB!, rssMiB(pid))), RSS_SAMPLE_MS);
  const started = performance.now();
  try {
    await etcdctl([`--endpoints=${endpoint}`, '--command-timeout=600s', 'snapshot', 'save', file]);
  } finally {
    clearInterval(sampler);
  }
  return { seconds: Math.round((performance.now() - started) / 10) / 100, rssPeakMiB };
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'lichen-snapshot-check-'));
  const [lichenClient, lichenPeer, etcdClient, etcdPeer] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const lichenEndpoint = `127.0.0.1:${lichenClient}`;
  const etcdEndpoint = `127.0.0.1:${etcdClient}`;
  const lichenMain = existsSync(join(ROOT, 'dist', 'cli', 'main.js')) ? [join(ROOT, 'dist', 'cli', 'main.js')] : ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
  const processes: ChildProcess[] = [
    spawn(process.execPath, [...lichenMain, 'serve', '--name', 'l1', '--data-dir', join(dir, 'lichen'), '--listen-client', lichenEndpoint,
      '--listen-peer', `127.0.0.1:${lichenPeer}`, '--listen-http', 'none', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT }),
    spawn('etcd', ['--name', 'e1', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', `http://${etcdEndpoint}`, '--advertise-client-urls', `http://${etcdEndpoint}`,
      '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster', `e1=http://127.0.0.1:${etcdPeer}`, '--quota-backend-bytes', String(8 * 1024 ** 3)], { stdio: 'ignore' }),
  ];
  const stop = (): void => {
    for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    await Promise.all([waitReady(lichenEndpoint), waitReady(etcdEndpoint)]);
    const lichenPid = processes[0]!.pid!;
    const loadSeconds = { lichen: await load(lichenEndpoint, flags.keys, flags.valueBytes), etcd: await load(etcdEndpoint, flags.keys, flags.valueBytes) };
    await sleep(2000);
    const lichenFile = join(dir, 'lichen.db');
    const etcdFile = join(dir, 'etcd.db');
    const rounds = [];
    for (let round = 0; round < flags.rounds; round++) {
      const rssBeforeMiB = rssMiB(lichenPid);
      const lichen = await timeSave(lichenEndpoint, lichenFile, lichenPid);
      const status = JSON.parse(await etcdctl(['snapshot', 'status', lichenFile, '-w', 'json'])) as { totalKey: number };
      const etcd = await timeSave(etcdEndpoint, etcdFile);
      rounds.push({ lichenSeconds: lichen.seconds, etcdSeconds: etcd.seconds, ratio: Math.round((lichen.seconds / etcd.seconds) * 100) / 100,
        lichenAnonRssBeforeMiB: rssBeforeMiB, lichenAnonRssPeakDuringSaveMiB: lichen.rssPeakMiB, lichenFilePairs: status.totalKey });
    }
    process.stdout.write(JSON.stringify({
      keys: flags.keys, valueBytes: flags.valueBytes, loadSeconds,
      fileMiB: { lichen: Math.round(statSync(lichenFile).size / 1024 / 1024), etcd: Math.round(statSync(etcdFile).size / 1024 / 1024) },
      rounds,
    }, null, 2) + '\n');
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`snapshot-check failed: ${String((error as Error)?.stack ?? error)}\n`);
  process.exitCode = 1;
});
