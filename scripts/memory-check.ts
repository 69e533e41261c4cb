// node --import tsx scripts/memory-check.ts [--keys 1000000 --value-bytes 256 --puts-per-txn 128 --in-flight 8]
//
// Starts a 3-member Lichen cluster on loopback (dist/ when built, else the sources through tsx),
// loads --keys distinct keys of --value-bytes each through the leader with Txn requests of
// --puts-per-txn puts (--in-flight of them at a time), then prints one JSON object with every
// member's resident set size (RSS, from /proc/<pid>/status: VmRSS now and VmHWM, the peak), the
// data directory sizes and the load rate. Every process it starts listens on 127.0.0.1 only and is
// stopped at the end (also on failure or Ctrl-C).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { findLeaderEndpoint } from '../src/bench/index.js';
import { openKvChannel } from '../src/bench/connections.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const MEMBERS = 3;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Attempts per txn; a member may time a request out while it writes a large snapshot. */
const RETRIES_MAX = 5;
/** A progress line (keys loaded, RSS per member) on stderr every this many keys. */
const PROGRESS_KEYS = 51_200;

interface Flags {
  keys: number;
  valueBytes: number;
  putsPerTxn: number;
  inFlight: number;
  keepData: boolean;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { keys: 1_000_000, valueBytes: 256, putsPerTxn: 128, inFlight: 8, keepData: false };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i];
    const number = (): number => {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} needs a positive integer`);
      return value;
    };
    if (name === '--keys') flags.keys = number();
    else if (name === '--value-bytes') flags.valueBytes = number();
    else if (name === '--puts-per-txn') flags.putsPerTxn = Math.min(number(), 128); // etcd's --max-txn-ops
    else if (name === '--in-flight') flags.inFlight = number();
    else if (name === '--keep-data') flags.keepData = true;
    else throw new Error(`unknown flag ${name}`);
  }
  return flags;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function lichenCommand(): string[] {
  const dist = join(ROOT, 'dist', 'cli', 'main.js');
  return existsSync(dist) ? [dist] : ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
}

/** VmRSS and VmHWM of a process in MiB, from /proc (Linux). */
function residentMiB(pid: number): { rssMiB: number; peakRssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(/\s(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(name)) ?? '')?.[1] ?? NaN) / 1024;
  return { rssMiB: Math.round(field('VmRSS:')), peakRssMiB: Math.round(field('VmHWM:')) };
}

function directoryMiB(dir: string): number {
  let bytes = 0;
  const walk = (path: string): void => {
    for (const name of readdirSync(path)) {
      const child = join(path, name);
      const stat = statSync(child);
      if (stat.isDirectory()) walk(child);
      else bytes += stat.blocks * 512; // allocated bytes (LMDB files are sparse)
    }
  };
  walk(dir);
  return Math.round(bytes / 1024 / 1024);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const dataDir = mkdtempSync(join(tmpdir(), 'lichen-memory-'));
  const names = Array.from({ length: MEMBERS }, (_u, i) => `m${i + 1}`);
  const ports = await Promise.all(Array.from({ length: MEMBERS * 2 }, freePort));
  const client = (i: number): string => `127.0.0.1:${ports[i]}`;
  const peer = (i: number): string => `127.0.0.1:${ports[MEMBERS + i]}`;
  const initialCluster = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  const members: ChildProcess[] = names.map((name, i) =>
    spawn(
      process.execPath,
      [...lichenCommand(), 'serve', '--name', name, '--data-dir', join(dataDir, name), '--listen-client', client(i),
        '--listen-peer', peer(i), '--listen-http', 'none', '--initial-cluster', initialCluster, '--log-level', 'warn'],
      { stdio: ['ignore', 'ignore', 'inherit'], cwd: ROOT },
    ),
  );
  const stop = (): void => {
    for (const member of members) if (member.exitCode === null) member.kill('SIGTERM');
  };
  process.once('SIGINT', () => {
    stop();
    process.exit(130);
  });
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let leader: string | undefined;
    while (leader === undefined) {
      if (Date.now() > deadline) throw new Error('no leader within 30 s');
      leader = (await findLeaderEndpoint(names.map((_n, i) => client(i))).catch(() => undefined))?.leader;
      if (leader === undefined) await sleep(200);
    }
    const before = members.map((m) => residentMiB(m.pid!));
    const channel = openKvChannel(leader);
    const value = Buffer.alloc(flags.valueBytes, 0x61);
    const txns = Math.ceil(flags.keys / flags.putsPerTxn);
    let next = 0;
    let retries = 0;
    const started = performance.now();
    // Each worker sends its next txn when the previous one is answered: at most inFlight at once.
    const worker = async (): Promise<void> => {
      while (next < txns) {
        const first = next++ * flags.putsPerTxn;
        if (first > 0 && first % PROGRESS_KEYS === 0) {
          const rss = members.map((m) => residentMiB(m.pid!).rssMiB).join('/');
          process.stderr.write(`loaded ${first} keys in ${((performance.now() - started) / 1000).toFixed(0)} s; RSS MiB ${rss}\n`);
        }
        const last = Math.min(first + flags.putsPerTxn, flags.keys);
        const success = [];
        for (let k = first; k < last; k++) success.push({ request_put: { key: Buffer.from(`key/${String(k).padStart(8, '0')}`), value } });
        // A put is idempotent here (same key, same value), so a timed-out txn is simply sent again.
        for (let attempt = 1; ; attempt++) {
          try {
            await channel.txn({ compare: [], success, failure: [] }, REQUEST_TIMEOUT_MS);
            break;
          } catch (error) {
            if (attempt >= RETRIES_MAX) throw error;
            retries++;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: flags.inFlight }, worker));
    const loadSeconds = (performance.now() - started) / 1000;
    channel.close();
    // Let followers apply the tail and the garbage collector settle before reading RSS.
    await sleep(3000);
    const report = {
      keys: flags.keys,
      valueBytes: flags.valueBytes,
      putsPerTxn: flags.putsPerTxn,
      loadSeconds: Math.round(loadSeconds * 10) / 10,
      keysPerSecond: Math.round(flags.keys / loadSeconds),
      retriedTxns: retries,
      members: names.map((name, i) => ({
        name,
        leader: client(i) === leader,
        idleBeforeLoad: before[i],
        ...residentMiB(members[i]!.pid!),
        dataDirMiB: directoryMiB(join(dataDir, name)),
      })),
    };
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  } finally {
    stop();
    await sleep(1000);
    if (flags.keepData) process.stderr.write(`data kept in ${dataDir}\n`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`memory-check failed: ${String((error as Error)?.stack ?? error)}\n`);
  process.exitCode = 1;
});
