// Test support: one real etcd (Debian's etcd-server, v3.4) on loopback, free ports, a temporary
// data directory, stopped and removed by stop(). Tests that compare Lichen with etcd need it; CI
// installs it (.ci/run), and without it they fail saying so rather than pass without comparing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { request } from 'node:https';
import { request as plainRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureClusterTls, serveTlsFlags, type ClusterTls } from '../../tls/index.js';
import { freePort } from './process-cluster.js';

export interface EtcdProcess {
  /** host:port of the client URL (gRPC and the JSON gateway). */
  readonly client: string;
  readonly peer: string;
  readonly pid: number;
  readonly version: string;
  readonly dataDir: string;
  /** With `tls`: the CA and the client certificate (CN root) that reach it, as `lichen up --tls` makes them. */
  readonly tls?: ClusterTls;
  stop(): Promise<void>;
}

/** How long etcd may take to answer /health after it starts. */
const READY_TIMEOUT_MS = 30_000;

export function findEtcd(): string {
  const which = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' });
  const onPath = which.status === 0 ? which.stdout.trim() : '';
  if (onPath !== '') return onPath;
  if (existsSync('/usr/bin/etcd')) return '/usr/bin/etcd';
  throw new Error('etcd is not installed: this test compares Lichen with a real etcd 3.4 (Debian: apt-get install -y etcd-server; .ci/run does it)');
}

export async function startEtcd(): Promise<EtcdProcess> {
  const [member] = await startEtcdCluster(1);
  return member!;
}

/**
 * `size` etcd members on loopback forming one cluster (fsync on, etcd's default); each member's
 * stop() stops it, and the last one stopped removes the data directory. With `tls`, TLS with
 * client certificates on the client and peer ports, as Lichen's ProcessCluster `tls` sets up.
 */
export async function startEtcdCluster(size: number, options: { tls?: boolean } = {}): Promise<EtcdProcess[]> {
  const binary = findEtcd();
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0]?.replace('etcd Version: ', '').trim() ?? 'unknown';
  const dataDir = mkdtempSync(join(tmpdir(), 'lichen-etcd-'));
  const addresses: { name: string; client: string; peer: string }[] = [];
  for (let i = 0; i < size; i++) {
    addresses.push({ name: size === 1 ? 'golden' : `etcd${i + 1}`, client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}` });
  }
  const tls = options.tls ? await ensureClusterTls(dataDir, addresses.map((a) => ({ ...a, http: a.client }))) : undefined;
  const scheme = tls ? 'https' : 'http';
  const initialCluster = addresses.map((a) => `${a.name}=${scheme}://${a.peer}`).join(',');
  let running = size;
  const started = addresses.map(({ name, client, peer }) => {
    const log = openSync(join(dataDir, `${name}.log`), 'a');
    const child: ChildProcess = spawn(
      binary,
      [
        '--name', name,
        '--data-dir', join(dataDir, name),
        '--listen-client-urls', `${scheme}://${client}`,
        '--advertise-client-urls', `${scheme}://${client}`,
        '--listen-peer-urls', `${scheme}://${peer}`,
        '--initial-advertise-peer-urls', `${scheme}://${peer}`,
        '--initial-cluster', initialCluster,
        '--initial-cluster-token', `lichen-test-${process.pid}-${dataDir}`,
        '--log-level', 'warn',
        ...(tls ? serveTlsFlags(tls, name) : []),
      ],
      { stdio: ['ignore', log, log] },
    );
    closeSync(log);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let stopped = false;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      if (--running === 0) rmSync(dataDir, { recursive: true, force: true });
    };
    const member: EtcdProcess = { client, peer, pid: child.pid!, version, dataDir, ...(tls ? { tls } : {}), stop };
    return { member, child };
  });
  const members = started.map((s) => s.member);
  try {
    // An etcd member answers /health only once the cluster has a leader.
    await Promise.all(started.map(({ member, child }) => waitHealthy(member, child)));
  } catch (error) {
    await Promise.all(members.map((m) => m.stop()));
    throw error;
  }
  return members;
}

/** Polls GET /health (a bounded wait for a process to come up, not a delay). */
async function waitHealthy(member: EtcdProcess, child: ChildProcess): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd exited with status ${child.exitCode} before it was ready`);
    if (await healthy(member)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`etcd on ${member.client} was not healthy within ${READY_TIMEOUT_MS} ms`);
}

function healthy({ client, tls }: EtcdProcess): Promise<boolean> {
  return new Promise((resolve) => {
    const onResponse = (response: IncomingMessage): void => {
      response.resume();
      resolve(response.statusCode === 200);
    };
    const req = tls
      ? request(`https://${client}/health`, { ca: readFileSync(tls.caFile), cert: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) }, onResponse)
      : plainRequest(`http://${client}/health`, onResponse);
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
    req.end();
  });
}
