// A real multi-process cluster on loopback for end-to-end tests and `lichen check`: each member
// is a separate `lichen serve` process with its own data directory and free ports. Every process
// it starts is stopped by stop(), also when a test fails. Fault injection uses kill/launch (crash
// and restart, optionally with extra environment such as a slow disk), pause/resume (SIGSTOP and
// SIGCONT) and advertisePeer (put a proxy in front of each member's peer listener).
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metadata, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../../api/grpc/proto.js';
import { channelCredentials } from '../../client/tls.js';
import { clusterClientTls, ensureClusterTls, serveTlsFlags, type ClusterTls } from '../../tls/index.js';
import type { EngineKind } from '../../engine/types.js';

/**
 * How to start `lichen serve`: from TypeScript through tsx when this file runs as TypeScript
 * (tests), from the compiled entry when it runs from dist/ (`lichen check` after a build) or
 * when asked to (`fromBuild`).
 */
const RUNNING_FROM_SOURCE = import.meta.url.endsWith('.ts');
const SOURCE_MAIN_ARGS = ['--import', 'tsx', fileURLToPath(new URL('../../cli/main.ts', import.meta.url))];
const BUILT_MAIN_ARGS = [fileURLToPath(new URL(RUNNING_FROM_SOURCE ? '../../../dist/cli/main.js' : '../../cli/main.js', import.meta.url))];

export interface MemberProcess {
  name: string;
  client: string;
  /** The peer address other members dial (the one in --initial-cluster). */
  peer: string;
  /** The address the member's peer listener binds; equals `peer` unless a proxy sits in between. */
  listenPeer: string;
  http: string;
  dataDir: string;
  process: ChildProcess | undefined;
  /** stderr lines, for diagnosing a failed test. */
  log: string[];
  /** True between pause() and resume(). */
  paused: boolean;
  /** Set once it joined with --join (a member's flags on a new data directory: --join, not --initial-cluster). */
  joined?: boolean;
  /**
   * Error-level log lines and exits nobody asked for (a crash), newest last, at most 100.
   * Created on the first trouble (members built by hand may leave it out).
   */
  troubles?: string[];
}

const TROUBLES_MAX = 100;
/** Processes the harness itself killed: their exit is not a crash. */
const killedByHarness = new WeakSet<ChildProcess>();

function noteTrouble(member: MemberProcess, text: string): void {
  const troubles = (member.troubles ??= []);
  troubles.push(text);
  if (troubles.length > TROUBLES_MAX) troubles.shift();
}

export interface ProcessClusterOptions {
  nodes: number;
  engine?: EngineKind;
  /** Extra environment for every member (e.g. LICHEN_UNSAFE_* fault switches). */
  env?: Record<string, string>;
  /** Extra flags for every member. */
  flags?: string[];
  /** Flags for node itself, before the script (e.g. --cpu-prof, which NODE_OPTIONS may not carry). */
  nodeFlags?: string[];
  /**
   * Run the members from the build (dist/cli/main.js, what users run) even when this file runs as
   * TypeScript. Benchmarks need it: tsx compiles with esbuild's keepNames, which adds a
   * defineProperty call to every closure created, a per-request cost the build does not have.
   */
  fromBuild?: boolean;
  /**
   * Chooses the peer address a member advertises, given the port its listener binds. Used to put
   * a fault-injecting proxy in front of each member. Default: the listener's own address.
   */
  advertisePeer?: (name: string, listenPeer: string) => Promise<string>;
  /** Also append every member's stderr to <logDir>/<name>.log. */
  logDir?: string;
  /** Bound on one member's start (until it logs "member started"). Default 30000. */
  launchTimeoutMs?: number;
  /** Runs once the members' names, addresses and data directories are chosen, before any starts (e.g. to restore a snapshot into them). */
  beforeLaunch?: (cluster: ProcessCluster) => Promise<void>;
  /**
   * TLS on every port with client certificates, as `lichen up --tls` makes it (a CA and
   * certificates under the cluster's root, see `tls`); the harness's own calls use the client one.
   */
  tls?: boolean;
}

/** Per-launch changes, e.g. a slow disk for one restart. */
export interface LaunchOptions {
  env?: Record<string, string>;
}

/** A real-process test that hangs fails after this long instead of stalling the suite. */
export const E2E_TEST_TIMEOUT_MS = 120_000;

/**
 * Ports for test members come from below Linux's ephemeral range (32768-60999): outgoing
 * connections take ephemeral ports, so a port the OS handed out for listening could be taken by
 * a client socket before the member binds it. Below the range only other listeners compete.
 */
const TEST_PORT_MIN = 20_000;
const TEST_PORT_MAX = 32_000;
const FREE_PORT_ATTEMPTS_MAX = 200;
const portsHandedOut = new Set<number>();

/** A port nobody listens on now, not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < FREE_PORT_ATTEMPTS_MAX; attempt++) {
    const port = TEST_PORT_MIN + Math.floor(Math.random() * (TEST_PORT_MAX - TEST_PORT_MIN));
    if (portsHandedOut.has(port) || !(await canListen(port))) continue;
    portsHandedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${TEST_PORT_MIN}..${TEST_PORT_MAX} after ${FREE_PORT_ATTEMPTS_MAX} attempts`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export class ProcessCluster {
  readonly members: MemberProcess[] = [];
  readonly root: string;
  /** The CA and certificates of a cluster started with `tls` (client.pem is the CLI's). */
  tls: ClusterTls | undefined;
  private credentials: ChannelCredentials = channelCredentials(undefined);
  private readonly clients = new Map<string, Record<string, Client>>();

  private constructor(private readonly options: ProcessClusterOptions) {
    this.root = mkdtempSync(join(tmpdir(), 'lichen-e2e-'));
  }

  /**
   * A client certificate from the CA of a cluster started with `tls`, with this common name (the
   * user it names when auth is on); its files go in the cluster's tls dir.
   */
  async issueClientCertificate(commonName: string): Promise<{ cert: string; key: string }> {
    if (!this.tls) throw new Error('the cluster was started without tls');
    // Loaded here, not at the top: the certificate library takes about a second to load.
    const { issueCertificate } = await import('../../tls/certs.js');
    const ca = { cert: readFileSync(join(this.tls.dir, 'ca.pem'), 'utf8'), key: readFileSync(join(this.tls.dir, 'ca-key.pem'), 'utf8') };
    const pair = await issueCertificate(ca, { commonName, hosts: [], usage: 'client', validDays: 1 });
    const cert = join(this.tls.dir, `user-${commonName}.pem`);
    const key = join(this.tls.dir, `user-${commonName}-key.pem`);
    writeFileSync(cert, pair.cert);
    writeFileSync(key, pair.key, { mode: 0o600 });
    return { cert, key };
  }

  static async start(options: ProcessClusterOptions): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(options);
    try {
      if (options.logDir) mkdirSync(options.logDir, { recursive: true });
      for (let i = 1; i <= options.nodes; i++) {
        const name = `n${i}`;
        const listenPeer = `127.0.0.1:${await freePort()}`;
        cluster.members.push({
          name,
          client: `127.0.0.1:${await freePort()}`,
          peer: options.advertisePeer ? await options.advertisePeer(name, listenPeer) : listenPeer,
          listenPeer,
          http: `127.0.0.1:${await freePort()}`,
          dataDir: join(cluster.root, name),
          process: undefined,
          log: [],
          paused: false,
          troubles: [],
        });
      }
      await options.beforeLaunch?.(cluster);
      if (options.tls) {
        cluster.tls = await ensureClusterTls(cluster.root, cluster.members);
        cluster.credentials = channelCredentials(clusterClientTls(cluster.root));
      }
      await Promise.all(cluster.members.map((m) => cluster.launch(m)));
      await cluster.waitForLeader();
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  get initialCluster(): string {
    return this.members.map((m) => `${m.name}=${m.peer}`).join(',');
  }

  /** Starts (or restarts) a member's process and resolves once it listens. */
  launch(member: MemberProcess, launchOptions: LaunchOptions = {}): Promise<void> {
    const args = [
      ...(this.options.nodeFlags ?? []),
      ...(RUNNING_FROM_SOURCE && !this.options.fromBuild ? SOURCE_MAIN_ARGS : BUILT_MAIN_ARGS), 'serve',
      '--name', member.name,
      '--data-dir', member.dataDir,
      '--listen-client', member.client,
      '--listen-peer', member.listenPeer,
      '--listen-http', member.http,
      // Only a new data directory takes --initial-cluster; an existing one knows its membership
      // (which members added or removed since may have changed).
      ...(existsSync(join(member.dataDir, 'member.json')) ? [] : ['--initial-cluster', this.initialCluster]),
      '--engine', this.options.engine ?? 'lmdb',
      ...(this.tls ? serveTlsFlags(this.tls, member.name) : []),
      ...(this.options.flags ?? []),
    ];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, ...this.options.env, ...launchOptions.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    member.process = child;
    member.paused = false;
    const logFile = this.options.logDir ? join(this.options.logDir, `${member.name}.log`) : undefined;
    const launchTimeoutMs = this.options.launchTimeoutMs ?? 30_000;
    return new Promise((resolve, reject) => {
      let buffered = '';
      const onExit = (code: number | null, signal: string | null): void => {
        clearTimeout(timer);
        if (member.process === child) member.process = undefined;
        reject(new Error(`${member.name} exited before it started (code ${code}, signal ${signal}):\n${member.log.slice(-20).join('\n')}`));
      };
      // A member that never reports in is killed, which rejects through onExit.
      const timer = setTimeout(() => {
        member.log.push(`(harness) no "member started" within ${launchTimeoutMs} ms; killing it`);
        child.kill('SIGKILL');
      }, launchTimeoutMs);
      child.once('exit', onExit);
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        buffered += text;
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        if (logFile && lines.length > 0) appendFileSync(logFile, lines.join('\n') + '\n');
        for (const line of lines) {
          member.log.push(line);
          if (member.log.length > 2000) member.log.shift();
          if (line.includes('"level":"error"')) noteTrouble(member, line);
          if (line.includes('"member started"')) {
            clearTimeout(timer);
            child.off('exit', onExit);
            child.once('exit', (code, signal) => {
              if (!killedByHarness.has(child)) noteTrouble(member, `${member.name} exited by itself (code ${code}, signal ${signal})`);
              if (member.process === child) member.process = undefined;
            });
            resolve();
          }
        }
      });
    });
  }

  /**
   * A new member, not started yet, that will join the running cluster (see join()). It listens
   * on its own peer port: a joiner cannot advertise a proxy address.
   */
  async newJoiner(name: string): Promise<MemberProcess> {
    const listenPeer = `127.0.0.1:${await freePort()}`;
    const member: MemberProcess = {
      name,
      client: `127.0.0.1:${await freePort()}`,
      peer: listenPeer,
      listenPeer,
      http: `127.0.0.1:${await freePort()}`,
      dataDir: join(this.root, name),
      process: undefined,
      log: [],
      paused: false,
    };
    if (this.tls) await ensureClusterTls(this.root, [member]);
    this.members.push(member);
    return member;
  }

  /** Starts a member from newJoiner() (or one whose data directory was wiped) with --join through `via` (as LICHEN_JOIN). */
  join(member: MemberProcess, via: MemberProcess): Promise<void> {
    member.joined = true;
    return this.launch(member, { env: { LICHEN_JOIN: via.client } });
  }

  /** SIGKILL, then delete the member's data directory, as an operator's `rm -rf` would. */
  async wipe(member: MemberProcess): Promise<void> {
    await this.kill(member);
    rmSync(member.dataDir, { recursive: true, force: true });
  }

  /** SIGKILL (or another signal) and wait until the process is gone. */
  async kill(member: MemberProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = member.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      member.process = undefined;
      return;
    }
    killedByHarness.add(child);
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
      // A stopped process only acts on SIGKILL; any other signal waits for SIGCONT.
      if (member.paused && signal !== 'SIGKILL') child.kill('SIGCONT');
    });
    member.process = undefined;
    member.paused = false;
    this.dropClients(member);
  }

  /** SIGSTOP: the process keeps its sockets but does nothing until resume(). */
  pause(member: MemberProcess): void {
    if (!member.process || member.paused) return;
    member.process.kill('SIGSTOP');
    member.paused = true;
  }

  /** SIGCONT after pause(). */
  resume(member: MemberProcess): void {
    if (!member.process || !member.paused) return;
    member.process.kill('SIGCONT');
    member.paused = false;
  }

  async stop(): Promise<void> {
    for (const clients of this.clients.values()) for (const c of Object.values(clients)) c.close();
    this.clients.clear();
    await Promise.all(this.members.map((m) => this.kill(m, 'SIGKILL')));
    rmSync(this.root, { recursive: true, force: true });
  }

  /** A unary etcd v3 call, e.g. call(m, 'KV', 'Put', { key, value }), with an auth token when given. */
  call<T = any>(
    member: MemberProcess,
    service: 'KV' | 'Lease' | 'Cluster' | 'Maintenance' | 'Auth',
    method: string,
    request: object,
    timeoutMs = 10_000,
    token?: string,
  ): Promise<T> {
    const client = this.client(member, service) as unknown as Record<string, Function>;
    // waitForReady: a member that was just (re)started may have refused an earlier connection;
    // the call waits for the channel to reconnect instead of failing at once.
    const metadata = new Metadata({ waitForReady: true });
    if (token !== undefined) metadata.set('token', token);
    return new Promise<T>((resolve, reject) => {
      client[method]!.call(client, request, metadata, { deadline: Date.now() + timeoutMs }, (error: ServiceError | null, response: T) =>
        error ? reject(error) : resolve(response),
      );
    });
  }

  /** Polls Status on the running members until they agree on one leader; returns it. */
  async waitForLeader(timeoutMs = 20_000, among = this.running()): Promise<MemberProcess> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const leaders = await Promise.all(
        among.map((m) => this.call<{ leader: string }>(m, 'Maintenance', 'Status', {}, 1000).then((s) => s.leader, () => '0')),
      );
      last = leaders.join(',');
      if (leaders[0] !== '0' && leaders.every((l) => l === leaders[0])) {
        // Survivors keep naming a killed leader until their election timeout: only a running
        // member counts.
        const name = (await this.memberIds(among[0]!)).get(leaders[0]!);
        const leader = among.find((m) => m.name === name);
        if (leader) return leader;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no agreed leader within ${timeoutMs} ms (last seen: ${last})`);
  }

  running(): MemberProcess[] {
    return this.members.filter((m) => m.process !== undefined);
  }

  /** Member names by member id (the id as the gRPC API's decimal text), as `member` knows them. */
  async memberIds(member: MemberProcess): Promise<Map<string, string>> {
    const list = await this.call<{ members: { ID: string; name: string }[] }>(member, 'Cluster', 'MemberList', {});
    return new Map(list.members.map((m) => [m.ID, m.name]));
  }

  private client(member: MemberProcess, service: string): Client {
    let clients = this.clients.get(member.name);
    if (!clients) {
      clients = {};
      this.clients.set(member.name, clients);
    }
    const constructors = etcdClientConstructors() as unknown as Record<string, new (address: string, creds: unknown, options: object) => Client>;
    // As etcd's clientv3, no limit on what a response may hold (grpc-js's default is 4 MiB).
    const options = { 'grpc.max_receive_message_length': -1 };
    clients[service] ??= new constructors[service]!(member.client, this.credentials, options);
    return clients[service]!;
  }

  private dropClients(member: MemberProcess): void {
    for (const client of Object.values(this.clients.get(member.name) ?? {})) client.close();
    this.clients.delete(member.name);
  }
}
