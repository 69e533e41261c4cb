// `lichen up`: a local cluster in the foreground, one `lichen serve` child process per node.
//
// Ports: node i (counting from 0) listens on base+10*i (client, gRPC), base+10*i+1 (peer) and
// base+10*i+2 (HTTP). With the default base 2379: node1 2379/2380/2381, node2 2389/2390/2391,
// node3 2399/2400/2401. Data lives in <dir>/<name>, each node's log in <dir>/<name>.log, and
// <dir>/cluster.json records names, addresses and pids. Running `lichen up` again on the same
// dir reuses the names, ports and data (a different --base-port moves the ports).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { booleanFlag, integerFlag, stringFlag, UsageError, type ParsedArgs } from './args.js';
import { expectPositionals, whenAborted, type Command, type CommandContext } from './command.js';
import { formatTable } from './format.js';
import { LOG_LEVELS } from '../log.js';

export const UP_NODES_MAX = 9;
export const UP_BASE_PORT_DEFAULT = 2379;
export const UP_PORT_STRIDE = 10;
/** A child that has not exited this long after SIGTERM gets SIGKILL. */
export const UP_STOP_TIMEOUT_MS = 10_000;
/** How long `up` waits for a leader before saying it has not seen one yet. */
export const UP_LEADER_WAIT_MS = 60_000;
const LEADER_POLL_INTERVAL_MS = 200;
const LEADER_REQUEST_TIMEOUT_MS = 1_000;

export interface NodePlan {
  name: string;
  client: string;
  peer: string;
  http: string;
}

export interface ClusterFile {
  nodes: (NodePlan & { pid: number | null })[];
}

export const CLUSTER_FILE = 'cluster.json';

/** The names and addresses of an n-node local cluster from a base port (see the file comment). */
export function planCluster(nodeCount: number, basePort: number, host = '127.0.0.1'): NodePlan[] {
  const plans: NodePlan[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const port = basePort + UP_PORT_STRIDE * i;
    plans.push({ name: `node${i + 1}`, client: `${host}:${port}`, peer: `${host}:${port + 1}`, http: `${host}:${port + 2}` });
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

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

/** Resolves true when we could listen on the address (and closed it again). */
async function canListen(address: string): Promise<boolean> {
  const server = createServer();
  return new Promise((resolvePromise) => {
    server.once('error', () => resolvePromise(false));
    server.listen({ host: hostOf(address), port: portOf(address), exclusive: true }, () => {
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
  ].join('\n'),
  flags: [
    { name: 'nodes', type: 'integer', min: 1, valueName: 'n', description: 'Number of nodes, 1..9 (default: 3, or as in cluster.json)' },
    { name: 'base-port', type: 'integer', min: 1, valueName: 'port', description: `First port (default: ${UP_BASE_PORT_DEFAULT}, or as in cluster.json)` },
    { name: 'dir', type: 'string', valueName: 'path', description: 'Where data, logs and cluster.json go (default: ./data)' },
    { name: 'engine', type: 'string', choices: ['lmdb', 'memory'], valueName: 'lmdb|memory', description: 'Storage engine (default: lmdb)' },
    { name: 'log-level', type: 'string', choices: LOG_LEVELS, valueName: LOG_LEVELS.join('|'), description: 'Log level of the nodes (default: info)' },
    { name: 'quiet-leader', type: 'boolean', description: 'Do not wait for and print the leader' },
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
  mkdirSync(dir, { recursive: true });

  const initialCluster = plans.map((p) => `${p.name}=${p.peer}`).join(',');
  const nodes = plans.map((plan) => startChild(plan, { dir, initialCluster, args, context }));
  writeClusterFile(dir, { nodes: nodes.map((n) => ({ ...n.plan, pid: n.child.pid ?? null })) });
  printAddressTable(context, nodes, dir);

  let stopping = false;
  const allExited = Promise.all(nodes.map((n) => n.exited));
  for (const node of nodes) {
    node.exited.then(() => {
      if (!stopping) {
        const { exitCode, signalCode } = node.child;
        const how = signalCode !== null ? `signal ${signalCode}` : `code ${exitCode}`;
        context.stdout.write(`${node.plan.name} (pid ${node.child.pid}) exited unexpectedly with ${how}; see ${node.logPath}\n`);
      }
    }, () => undefined);
  }

  if (!booleanFlag(args, 'quiet-leader')) {
    void announceLeader(plans, context).catch(() => undefined);
  }

  const outcome = await Promise.race([
    whenAborted(context.signal).then(() => 'signal' as const),
    allExited.then(() => 'all-exited' as const),
  ]);
  stopping = true;
  if (outcome === 'all-exited') {
    context.stderr.write('every node has exited; stopping\n');
    return 1;
  }
  context.stdout.write('stopping the cluster...\n');
  await stopChildren(nodes, context.forceSignal);
  context.stdout.write('stopped\n');
  return 0;
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
  const basePort = portOf(first.client) - UP_PORT_STRIDE * (Number(/\d+$/.exec(first.name)?.[0] ?? 1) - 1);
  const slots = Math.max(...file.nodes.map((n) => (portOf(n.client) - basePort) / UP_PORT_STRIDE + 1)) + 1;
  if (slots > UP_NODES_MAX) throw new UsageError(`the cluster in ${dir} has used all ${UP_NODES_MAX} node slots`);
  const plan = planCluster(slots, basePort, hostOf(first.client)).at(-1)!;
  await checkPortsFree([plan], undefined);
  const join = file.nodes.filter((n) => n.pid !== null && isAlive(n.pid)).map((n) => n.client)[0] ?? first.client;
  // The node joins through LICHEN_JOIN, so a later plain `lichen up` restarts it like the others.
  const node = startChild(plan, {
    dir,
    initialCluster: [...file.nodes, plan].map((p) => `${p.name}=${p.peer}`).join(','),
    args,
    context: { ...context, env: { ...context.env, LICHEN_JOIN: join } },
  });
  writeClusterFile(dir, { nodes: [...file.nodes, { ...plan, pid: node.child.pid ?? null }] });
  printAddressTable(context, [node], dir);
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
  const client = await context.openClient({ endpoints: others, timeoutMs: 10_000 });
  try {
    const { members } = await client.memberList();
    const member = members.find((m) => m.name === name);
    if (member === undefined) {
      context.stderr.write(`${name} is not a member of the running cluster; removing it from ${CLUSTER_FILE} only\n`);
    } else {
      await client.memberRemove(member.id);
      context.stdout.write(`removed ${name} (member ${member.id.toString(16)}); it stops by itself\n`);
    }
  } finally {
    await client.close();
  }
  writeClusterFile(dir, { nodes: file.nodes.filter((n) => n.name !== name) });
  return 0;
}

interface StartChildOptions {
  dir: string;
  initialCluster: string;
  args: ParsedArgs;
  context: CommandContext;
}

function startChild(plan: NodePlan, options: StartChildOptions): RunningNode {
  const { dir, initialCluster, args, context } = options;
  const logPath = join(dir, `${plan.name}.log`);
  const serveArgs = [
    'serve',
    '--name', plan.name,
    '--data-dir', join(dir, plan.name),
    '--listen-client', plan.client,
    '--listen-peer', plan.peer,
    '--listen-http', plan.http,
    '--initial-cluster', initialCluster,
  ];
  const engine = stringFlag(args, 'engine');
  if (engine !== undefined) serveArgs.push('--engine', engine);
  const logLevel = stringFlag(args, 'log-level');
  if (logLevel !== undefined) serveArgs.push('--log-level', logLevel);

  // The log file is the child's stdout and stderr directly, so logging survives this process.
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...process.execArgv, context.selfPath, ...serveArgs], {
      env: context.env as NodeJS.ProcessEnv,
      stdio: ['ignore', logFd, logFd],
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

function printAddressTable(context: CommandContext, nodes: RunningNode[], dir: string): void {
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
      `try: LICHEN_ENDPOINTS=${endpoints} lichen put hello world`,
      '',
    ].join('\n'),
  );
}

/**
 * Polls each node's HTTP /v1/leader until one names a leader, then prints it. Bounded by
 * UP_LEADER_WAIT_MS and by the abort signal.
 */
async function announceLeader(plans: NodePlan[], context: CommandContext): Promise<void> {
  const deadline = Date.now() + UP_LEADER_WAIT_MS;
  while (Date.now() < deadline && !context.signal.aborted) {
    for (const plan of plans) {
      const leader = await askLeader(plan, context.signal);
      if (leader !== undefined) {
        const name = leader.name || plans.find((p) => p.client === leader.clientAddress)?.name || 'unknown';
        context.stdout.write(`leader: ${name} (member ${leader.id}${leader.term ? `, term ${leader.term}` : ''})\n`);
        return;
      }
    }
    await delay(LEADER_POLL_INTERVAL_MS, undefined, { signal: context.signal });
  }
  if (!context.signal.aborted) {
    context.stdout.write(`no leader after ${UP_LEADER_WAIT_MS / 1000}s; check the logs\n`);
  }
}

interface LeaderInfo {
  id: string;
  name: string;
  term: string;
  clientAddress: string;
}

async function askLeader(plan: NodePlan, signal: AbortSignal): Promise<LeaderInfo | undefined> {
  try {
    const response = await fetch(`http://${plan.http}/v1/leader`, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(LEADER_REQUEST_TIMEOUT_MS)]),
    });
    if (!response.ok) return undefined;
    const body = (await response.json()) as {
      header?: { raftTerm?: unknown };
      leader?: { id?: unknown; name?: unknown; clientURLs?: unknown };
    };
    const leader = body.leader;
    if (leader === undefined || leader.id === undefined || leader.id === 0 || leader.id === '0') return undefined;
    const id = typeof leader.id === 'number' ? leader.id.toString(16) : String(leader.id);
    const clientUrls = Array.isArray(leader.clientURLs) ? (leader.clientURLs as unknown[]) : [];
    return {
      id,
      name: typeof leader.name === 'string' ? leader.name : '',
      term: body.header?.raftTerm === undefined ? '' : String(body.header.raftTerm),
      clientAddress: String(clientUrls[0] ?? '').replace(/^[a-z]+:\/\//i, ''),
    };
  } catch {
    return undefined;
  }
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
