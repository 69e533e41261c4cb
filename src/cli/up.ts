// `lichen up`: a local cluster in the foreground, one `lichen serve` child process per node.
//
// Ports: node i (counting from 0) listens on base+10*i (client, gRPC), base+10*i+1 (peer) and
// base+10*i+2 (HTTP). With the default base 2379: node1 2379/2380/2381, node2 2389/2390/2391,
// node3 2399/2400/2401. Data lives in <dir>/<name>, each node's log in <dir>/<name>.log, and
// <dir>/cluster.json records names, addresses and pids. Running `lichen up` again on the same
// dir reuses the names, ports and data (a different --base-port moves the ports). With --tls,
// every port serves TLS and wants client certificates, made under <dir>/tls (see
// tls/local-cluster.ts); the cluster keeps TLS on later runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { booleanFlag, integerFlag, stringFlag, UsageError, type ParsedArgs } from './args.js';
import { expectPositionals, whenAborted, type Command, type CommandContext } from './command.js';
import { formatTable } from './format.js';
import { formatId } from '../ids.js';
import { LOG_LEVELS } from '../log.js';
import { leaderWatchIo, watchLeader, type LeaderView } from './up-leader.js';
import { clientTlsHints, clusterClientTls, ensureClusterTls, serveTlsFlags, type ClusterTls } from '../tls/index.js';
import { createDirectory } from '../directories.js';
import { formatHostPort, parseHostPort } from '../address.js';
import { majorityOf } from '../raft/index.js';

export const UP_NODES_MAX = 9;
export const UP_BASE_PORT_DEFAULT = 2379;
export const UP_PORT_STRIDE = 10;
/** A child that has not exited this long after SIGTERM gets SIGKILL. */
export const UP_STOP_TIMEOUT_MS = 10_000;
/** How long `up` waits for a leader before saying it has not seen one yet. */
export const UP_LEADER_WAIT_MS = 60_000;

export interface NodePlan {
  name: string;
  client: string;
  peer: string;
  http: string;
}

export interface ClusterFile {
  nodes: (NodePlan & { pid: number | null })[];
  /** Started with --tls: certificates in <dir>/tls, TLS on every port. */
  tls?: boolean;
}

export const CLUSTER_FILE = 'cluster.json';

/** The names and addresses of an n-node local cluster from a base port (see the file comment). */
export function planCluster(nodeCount: number, basePort: number, host = '127.0.0.1'): NodePlan[] {
  const plans: NodePlan[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const port = basePort + UP_PORT_STRIDE * i;
    plans.push({ name: `node${i + 1}`, client: formatHostPort({ host, port }), peer: formatHostPort({ host, port: port + 1 }), http: formatHostPort({ host, port: port + 2 }) });
  }
  return plans;
}

export interface UpOptions {
  nodeCount: number | undefined;
  basePort: number | undefined;
  existing: ClusterFile | undefined;
}

/** Reuses a previous cluster.json unless a different size or base port is asked for. */
export function choosePlan(options: UpOptions): NodePlan[] {
  const { existing } = options;
  if (existing !== undefined && existing.nodes.length > 0) {
    if (options.nodeCount !== undefined && options.nodeCount !== existing.nodes.length) {
      throw new UsageError(
        `--nodes ${options.nodeCount} does not match the ${existing.nodes.length}-node cluster recorded in ${CLUSTER_FILE}; ` +
          'use another --dir (or delete the old one) to start a different cluster',
      );
    }
    if (options.basePort === undefined) {
      return existing.nodes.map(({ name, client, peer, http }) => ({ name, client, peer, http }));
    }
    return planCluster(existing.nodes.length, options.basePort);
  }
  return planCluster(options.nodeCount ?? 3, options.basePort ?? UP_BASE_PORT_DEFAULT);
}

export function readClusterFile(dir: string): ClusterFile | undefined {
  const path = join(dir, CLUSTER_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`${path} is not valid JSON (${(error as Error).message}); delete it or use another --dir`);
  }
  const nodes = (parsed as { nodes?: unknown }).nodes;
  const valid =
    Array.isArray(nodes) &&
    nodes.length <= UP_NODES_MAX &&
    nodes.every(
      (n: unknown) =>
        n !== null &&
        typeof n === 'object' &&
        ['name', 'client', 'peer', 'http'].every((k) => typeof (n as Record<string, unknown>)[k] === 'string'),
    );
  if (!valid) throw new UsageError(`${path} does not describe a cluster; delete it or use another --dir`);
  return parsed as ClusterFile;
}

function writeClusterFile(dir: string, file: ClusterFile): void {
  // Write then rename, so a reader never sees half a file.
  const path = join(dir, CLUSTER_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(file, null, 2) + '\n');
  renameSync(`${path}.tmp`, path);
}

/** Resolves true when we could listen on the address (and closed it again). */
async function canListen(address: string): Promise<boolean> {
  const server = createServer();
  return new Promise((resolvePromise) => {
    server.once('error', () => resolvePromise(false));
    server.listen({ ...parseHostPort(address), exclusive: true }, () => {
      server.close(() => resolvePromise(true));
    });
  });
}

async function checkPortsFree(plans: NodePlan[], previous: ClusterFile | undefined): Promise<void> {
  const busy: string[] = [];
  for (const plan of plans) {
    for (const kind of ['client', 'peer', 'http'] as const) {
      if (!(await canListen(plan[kind]))) busy.push(`${plan[kind]} (${plan.name} ${kind})`);
    }
  }
  if (busy.length === 0) return;
  const alive = (previous?.nodes ?? []).map((n) => n.pid).filter((pid): pid is number => pid !== null && isAlive(pid));
  const hint =
    alive.length > 0
      ? `a previous 'lichen up' seems to be running still (pids ${alive.join(', ')}); stop it first`
      : 'choose other ports with --base-port';
  // Not a usage error: the call was right, the machine is not ready for it (exit 1).
  throw new Error(`port${busy.length > 1 ? 's' : ''} already in use: ${busy.join(', ')}; ${hint}`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface RunningNode {
  plan: NodePlan;
  child: ChildProcess;
  logPath: string;
  exited: Promise<void>;
  exitedAlready: boolean;
  /** It stopped because it was removed from the cluster (`up --remove`): not to be restarted. */
  removed?: boolean;
}

export const upCommand: Command = {
  name: 'up',
  usage: '[--nodes N] [--base-port P] [--dir ./data] | --add | --remove <name>',
  summary: 'Run a local N-node cluster in the foreground (Ctrl-C stops it)',
  details: [
    'Node i (from 0) listens on P+10*i (client gRPC), P+10*i+1 (peer), P+10*i+2 (HTTP);',
    'with the default P=2379: node1 2379/2380/2381, node2 2389/2390/2391, node3 2399/2400/2401.',
    'Data goes to <dir>/<name>, logs to <dir>/<name>.log; <dir>/cluster.json lists the nodes.',
    'Running it again on the same --dir restarts the same cluster with its data.',
    '',
    'While the cluster runs, from another terminal on the same --dir:',
    '  lichen up --add            start one more node (the next name and ports) that joins the',
    '                             cluster as a learner and is promoted once caught up; it runs in',
    '                             this terminal until Ctrl-C and is restarted by later `lichen up`s',
    '  lichen up --remove node2   remove that member from the cluster (it stops by itself) and',
    '                             from cluster.json',
    '',
    'It reports the leader, each new one, and a node that exits on its own; then r and Enter',
    '(typed here, or a line "r" on its standard input) restarts the nodes that have exited.',
  ].join('\n'),
  flags: [
    { name: 'nodes', type: 'integer', min: 1, valueName: 'n', description: 'Number of nodes, 1..9 (default: 3, or as in cluster.json)' },
    { name: 'base-port', type: 'integer', min: 1, valueName: 'port', description: `First port (default: ${UP_BASE_PORT_DEFAULT}, or as in cluster.json)` },
    { name: 'dir', type: 'string', valueName: 'path', description: 'Where data, logs and cluster.json go (default: ./data)' },
    { name: 'engine', type: 'string', choices: ['lmdb', 'leveldb', 'memory'], valueName: 'lmdb|leveldb|memory', description: 'Storage engine (default: lmdb)' },
    { name: 'log-level', type: 'string', choices: LOG_LEVELS, valueName: LOG_LEVELS.join('|'), description: 'Log level of the nodes (default: info)' },
    { name: 'quiet-leader', type: 'boolean', description: 'Do not wait for and print the leader' },
    {
      name: 'tls',
      type: 'boolean',
      description: 'TLS on every port with client certificates: makes a CA and certificates in <dir>/tls and prints the etcdctl flags (kept on later runs)',
    },
    { name: 'add', type: 'boolean', description: 'Add one node to the running cluster of --dir (see above)' },
    { name: 'remove', type: 'string', valueName: 'name', description: 'Remove the named node from the running cluster of --dir' },
  ],
  processOnly: true,
  run: runUp,
};

async function runUp(args: ParsedArgs, context: CommandContext): Promise<number> {
  expectPositionals(args, upCommand, 0);
  const remove = stringFlag(args, 'remove');
  if (booleanFlag(args, 'add') && remove !== undefined) throw new UsageError('--add and --remove cannot be used together');
  if (booleanFlag(args, 'add')) return runAddNode(args, context);
  if (remove !== undefined) return runRemoveNode(remove, args, context);
  const nodeCount = integerFlag(args, 'nodes');
  if (nodeCount !== undefined && nodeCount > UP_NODES_MAX) {
    throw new UsageError(`invalid value for --nodes: ${nodeCount} (at most ${UP_NODES_MAX})`);
  }
  const basePort = integerFlag(args, 'base-port');
  if (basePort !== undefined && basePort + UP_PORT_STRIDE * ((nodeCount ?? 3) - 1) + 2 > 65_535) {
    throw new UsageError(`invalid value for --base-port: ${basePort} (the last node's ports would pass 65535)`);
  }
  const dir = resolve(stringFlag(args, 'dir') ?? 'data');
  const existing = readClusterFile(dir);
  const plans = choosePlan({ nodeCount, basePort, existing });
  await checkPortsFree(plans, existing);
  createDirectory(dir);
  const tls = booleanFlag(args, 'tls') || existing?.tls === true ? await ensureClusterTls(dir, plans) : undefined;

  const initialCluster = plans.map((p) => `${p.name}=${p.peer}`).join(',');
  const startOptions: StartChildOptions = { dir, initialCluster, args, context, tls };
  const nodes = plans.map((plan) => startChild(plan, startOptions));
  writeClusterFile(dir, { nodes: nodes.map((n) => ({ ...n.plan, pid: n.child.pid ?? null })), ...(tls ? { tls: true } : {}) });
  printAddressTable(context, nodes, dir, tls);

  const outcome = await superviseCluster(nodes, startOptions);
  if (outcome === 'all-exited') {
    context.stderr.write('every node has exited; stopping\n');
    return 1;
  }
  context.stdout.write('stopping the cluster...\n');
  await stopChildren(nodes, context.forceSignal);
  context.stdout.write('stopped\n');
  return 0;
}

/**
 * While the cluster runs: reports each node that exits and the leader (the first, then every
 * change), and restarts the nodes that have exited when a line "r" is read from stdin. Resolves
 * on Ctrl-C (the signal) or when every node has exited. A restarted node replaces its entry in
 * `nodes`, so the caller stops what runs now.
 */
async function superviseCluster(nodes: RunningNode[], start: StartChildOptions): Promise<'signal' | 'all-exited'> {
  const { dir, args, context } = start;
  let stopping = false;
  let leader: LeaderView | undefined;
  let everyNodeExited!: () => void;
  const allExited = new Promise<void>((resolveAll) => (everyNodeExited = resolveAll));
  const print = (line: string) => context.stdout.write(`${line}\n`);
  const exitedNodes = () => nodes.filter((n) => n.exitedAlready && n.removed !== true);
  // Read only while a node is down: reading a terminal from the background stops the process.
  const commands = readLines(context.stdin, (line) => {
    if (line.trim() === '' || stopping) return;
    if (line.trim() !== 'r') return print(`unknown command ${JSON.stringify(line.trim())}: r restarts the nodes that have exited`);
    const down = exitedNodes();
    if (down.length === 0) return print('every node runs: nothing to restart');
    for (const node of down) {
      const fresh = startChild(node.plan, start);
      nodes[nodes.indexOf(node)] = fresh;
      watchExit(fresh);
      recordPid(dir, node.plan.name, fresh.child.pid ?? null);
      print(`restarted ${node.plan.name} (pid ${fresh.child.pid ?? '-'})`);
    }
    commands.pause();
  });
  const watchExit = (node: RunningNode) => {
    void node.exited.then(() => {
      if (stopping) return;
      node.removed = wasRemoved(join(dir, node.plan.name));
      print(describeExit(node));
      if (nodes.every((n) => n.exitedAlready)) return everyNodeExited();
      if (node.removed) return;
      const members = nodes.filter((n) => n.removed !== true).map((n) => ({ ...n.plan, running: !n.exitedAlready }));
      for (const line of adviceAfterExit(node.plan.name, members, { leader, interactive: context.interactive, dir })) print(line);
      commands.resume();
    });
  };
  nodes.forEach(watchExit);

  const supervising = new AbortController();
  if (!booleanFlag(args, 'quiet-leader')) {
    void watchLeader({
      nodes: () => nodes.map((n) => ({ ...n.plan, running: !n.exitedAlready })),
      signal: AbortSignal.any([context.signal, supervising.signal]),
      waitMs: UP_LEADER_WAIT_MS,
      onLeader: (view) => {
        leader = view;
        const name = view.name || nodes.find((n) => n.plan.client === view.clientAddress)?.plan.name || 'unknown';
        print(`leader: ${name} (member ${view.id}, term ${view.term})`);
      },
      onNoLeader: () => print(`no leader after ${UP_LEADER_WAIT_MS / 1000}s; check the logs`),
    }, leaderWatchIo(start.tls && clusterClientTls(dir)));
  }

  const outcome = await Promise.race([
    whenAborted(context.signal).then(() => 'signal' as const),
    allExited.then(() => 'all-exited' as const),
  ]);
  stopping = true;
  supervising.abort();
  commands.close();
  return outcome;
}

function describeExit(node: RunningNode): string {
  if (node.removed === true) return `${node.plan.name} was removed from the cluster and has stopped`;
  const { exitCode, signalCode } = node.child;
  const how = signalCode !== null ? `signal ${signalCode}` : `code ${exitCode}`;
  return `${node.plan.name} (pid ${node.child.pid}) exited unexpectedly with ${how}; see ${node.logPath}`;
}

/**
 * What a node's exit means for the cluster (no majority left, or a new leader to be elected) and
 * how to restart the nodes that are down. `members` are the cluster's nodes, `exited` among them.
 */
export function adviceAfterExit(
  exited: string,
  members: readonly (NodePlan & { running: boolean })[],
  context: { leader: LeaderView | undefined; interactive: boolean; dir: string },
): string[] {
  const lines: string[] = [];
  const running = members.filter((n) => n.running).length;
  const majority = majorityOf(members.length);
  const { leader } = context;
  const ledBy = (n: NodePlan) => leader !== undefined && (n.name === leader.name || n.client === leader.clientAddress);
  if (running < majority) {
    lines.push(`only ${running} of ${members.length} nodes run: no leader can be elected until ${majority} run`);
  } else if (members.some((n) => n.name === exited && ledBy(n))) {
    lines.push(`${exited} was the leader: the others elect a new one`);
  }
  const down = members.filter((n) => !n.running).map((n) => n.name).join(', ');
  lines.push(
    context.interactive
      ? `press r and Enter to restart ${down}`
      : `to restart ${down}: a line "r" on the standard input of this lichen up, or stop it and run it again on ${context.dir}`,
  );
  return lines;
}

/** Whether the node's data directory says it was removed from its cluster (src/server/state.ts). */
function wasRemoved(dataDir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dataDir, 'member.json'), 'utf8')) as { removed?: unknown }).removed === true;
  } catch {
    return false;
  }
}

/** Updates one node's pid in cluster.json, which `up --add/--remove` may have changed meanwhile. */
export function recordPid(dir: string, name: string, pid: number | null): void {
  const file = readClusterFile(dir);
  if (file === undefined || !file.nodes.some((n) => n.name === name)) return;
  writeClusterFile(dir, { ...file, nodes: file.nodes.map((n) => (n.name === name ? { ...n, pid } : n)) });
}

/**
 * Calls onLine for each line read from `input` while resumed; starts paused. Errors (a terminal
 * that went away) end the reading quietly.
 */
function readLines(input: Readable, onLine: (line: string) => void): { resume(): void; pause(): void; close(): void } {
  let pending = '';
  let listening = false;
  const onData = (chunk: Buffer | string) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line.replace(/\r$/, ''));
  };
  const ignore = () => undefined;
  return {
    resume() {
      if (!listening) {
        listening = true;
        input.on('data', onData);
        input.on('error', ignore);
      }
      input.resume();
    },
    pause() {
      if (listening) input.pause();
    },
    close() {
      if (!listening) return;
      input.off('data', onData);
      input.off('error', ignore);
      input.pause();
    },
  };
}

/** The cluster.json of a cluster that `up --add/--remove` changes; it must exist. */
function requireClusterFile(args: ParsedArgs): { dir: string; file: ClusterFile } {
  const dir = resolve(stringFlag(args, 'dir') ?? 'data');
  const file = readClusterFile(dir);
  if (file === undefined || file.nodes.length === 0) {
    throw new UsageError(`no cluster in ${dir} (${CLUSTER_FILE} is missing): start one with \`lichen up\` first`);
  }
  return { dir, file };
}

/** `up --add`: one more node, joining through the existing ones, in this terminal's foreground. */
async function runAddNode(args: ParsedArgs, context: CommandContext): Promise<number> {
  const { dir, file } = requireClusterFile(args);
  const first = file.nodes[0]!;
  // The slot after the highest one in use: a removed node's name, ports and data are not reused.
  const basePort = parseHostPort(first.client).port - UP_PORT_STRIDE * (Number(/\d+$/.exec(first.name)?.[0] ?? 1) - 1);
  const slots = Math.max(...file.nodes.map((n) => (parseHostPort(n.client).port - basePort) / UP_PORT_STRIDE + 1)) + 1;
  if (slots > UP_NODES_MAX) throw new UsageError(`the cluster in ${dir} has used all ${UP_NODES_MAX} node slots`);
  const plan = planCluster(slots, basePort, parseHostPort(first.client).host).at(-1)!;
  await checkPortsFree([plan], undefined);
  const join = file.nodes.filter((n) => n.pid !== null && isAlive(n.pid)).map((n) => n.client)[0] ?? first.client;
  const tls = file.tls === true ? await ensureClusterTls(dir, [plan]) : undefined;
  // The node joins through LICHEN_JOIN, so a later plain `lichen up` restarts it like the others.
  const node = startChild(plan, {
    dir,
    initialCluster: [...file.nodes, plan].map((p) => `${p.name}=${p.peer}`).join(','),
    args,
    context: { ...context, env: { ...context.env, LICHEN_JOIN: join } },
    tls,
  });
  writeClusterFile(dir, { ...file, nodes: [...file.nodes, { ...plan, pid: node.child.pid ?? null }] });
  printAddressTable(context, [node], dir, tls);
  context.stdout.write(`${plan.name} joins through ${join}; it is promoted to a voter once it has caught up\n`);
  const outcome = await Promise.race([
    whenAborted(context.signal).then(() => 'signal' as const),
    node.exited.then(() => 'exited' as const),
  ]);
  if (outcome === 'exited') {
    context.stderr.write(`${plan.name} exited; see ${node.logPath}\n`);
    return 1;
  }
  await stopChildren([node], context.forceSignal);
  context.stdout.write('stopped\n');
  return 0;
}

/** `up --remove <name>`: takes the member out of the cluster and out of cluster.json. */
async function runRemoveNode(name: string, args: ParsedArgs, context: CommandContext): Promise<number> {
  const { dir, file } = requireClusterFile(args);
  if (!file.nodes.some((n) => n.name === name)) {
    throw new UsageError(`no node named "${name}" in ${join(dir, CLUSTER_FILE)} (nodes: ${file.nodes.map((n) => n.name).join(', ')})`);
  }
  const others = file.nodes.filter((n) => n.name !== name).map((n) => n.client);
  const client = await context.openClient({ endpoints: others, timeoutMs: 10_000, tls: file.tls === true ? clusterClientTls(dir) : undefined });
  try {
    const { members } = await client.memberList();
    const member = members.find((m) => m.name === name);
    if (member === undefined) {
      context.stderr.write(`${name} is not a member of the running cluster; removing it from ${CLUSTER_FILE} only\n`);
    } else {
      await client.memberRemove(member.id);
      context.stdout.write(`removed ${name} (member ${formatId(member.id)}); it stops by itself\n`);
    }
  } finally {
    await client.close();
  }
  writeClusterFile(dir, { ...file, nodes: file.nodes.filter((n) => n.name !== name) });
  return 0;
}

interface StartChildOptions {
  dir: string;
  initialCluster: string;
  args: ParsedArgs;
  context: CommandContext;
  tls: ClusterTls | undefined;
}

function startChild(plan: NodePlan, options: StartChildOptions): RunningNode {
  const { dir, initialCluster, args, context, tls } = options;
  const logPath = join(dir, `${plan.name}.log`);
  const serveArgs = [
    'serve',
    '--name', plan.name,
    '--data-dir', join(dir, plan.name),
    '--listen-client', plan.client,
    '--listen-peer', plan.peer,
    '--listen-http', plan.http,
  ];
  // Only a new data directory takes --initial-cluster: an existing one knows its membership,
  // which may have changed since (up --add, up --remove) in ways this node may not have seen.
  if (!existsSync(join(dir, plan.name, 'member.json'))) serveArgs.push('--initial-cluster', initialCluster);
  const engine = stringFlag(args, 'engine');
  if (engine !== undefined) serveArgs.push('--engine', engine);
  const logLevel = stringFlag(args, 'log-level');
  if (logLevel !== undefined) serveArgs.push('--log-level', logLevel);
  if (tls !== undefined) serveArgs.push(...serveTlsFlags(tls, plan.name));

  // The log file is the child's stdout and stderr directly, so logging survives this process.
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...process.execArgv, context.selfPath, ...serveArgs], {
      env: context.env as NodeJS.ProcessEnv,
      // The IPC channel is how a node notices that `up` is gone, however `up` ended (see main.ts).
      stdio: ['ignore', logFd, logFd, 'ipc'],
      // Its own process group: a Ctrl-C in the terminal reaches `up` only, which stops the
      // children in order instead of every process racing to shut down at once.
      detached: true,
    });
  } finally {
    closeSync(logFd);
  }
  const node: RunningNode = { plan, child, logPath, exited: Promise.resolve(), exitedAlready: false };
  node.exited = new Promise<void>((resolveExit) => {
    child.once('exit', () => {
      node.exitedAlready = true;
      resolveExit();
    });
    child.once('error', (error) => {
      context.stderr.write(`${plan.name}: could not start: ${error.message}\n`);
      node.exitedAlready = true;
      resolveExit();
    });
  });
  return node;
}

function printAddressTable(context: CommandContext, nodes: RunningNode[], dir: string, tls: ClusterTls | undefined): void {
  const rows = [
    ['NAME', 'CLIENT', 'PEER', 'HTTP', 'PID', 'LOG'],
    ...nodes.map((n) => [n.plan.name, n.plan.client, n.plan.peer, n.plan.http, String(n.child.pid ?? '-'), n.logPath]),
  ];
  const endpoints = nodes.map((n) => n.plan.client).join(',');
  context.stdout.write(
    [
      `starting ${nodes.length} node${nodes.length === 1 ? '' : 's'} (data in ${dir})`,
      ...formatTable(rows),
      `endpoints: ${endpoints}`,
      ...(tls === undefined
        ? [`try: LICHEN_ENDPOINTS=${endpoints} lichen put hello world`]
        : [`TLS on every port, client certificates required (certificates in ${tls.dir}); try:`, ...clientTlsHints(tls, endpoints)]),
      `dashboard: ${tls === undefined ? 'http' : 'https'}://${nodes[0]!.plan.http}/`,
      '',
    ].join('\n'),
  );
}

/**
 * SIGTERM to every child, then SIGKILL to those still running after UP_STOP_TIMEOUT_MS (or at
 * once when the user presses Ctrl-C a second time).
 */
async function stopChildren(nodes: readonly RunningNode[], force: AbortSignal): Promise<void> {
  for (const node of nodes) {
    if (!node.exitedAlready) node.child.kill('SIGTERM');
  }
  const allExited = Promise.all(nodes.map((n) => n.exited));
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout('timeout'), UP_STOP_TIMEOUT_MS);
  });
  const forced = whenAborted(force).then(() => 'forced' as const);
  const outcome = await Promise.race([allExited.then(() => 'done' as const), timedOut, forced]);
  clearTimeout(timer);
  if (outcome !== 'done') {
    for (const node of nodes) {
      if (!node.exitedAlready) node.child.kill('SIGKILL');
    }
    await allExited;
  }
}
