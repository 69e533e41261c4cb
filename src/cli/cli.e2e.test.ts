// End to end: `lichen up --nodes 3` as a real process tree, client commands through the real
// CLI, a clean SIGTERM shutdown, and a restart that keeps the data. Every wait is bounded and
// driven by output (the "leader:" line, process exits), never by sleeping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAlive, type ClusterFile } from './up.js';

const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');
/** Bounds on each wait; far above what the steps take on the 2-core machine. */
const LEADER_WAIT_MS = 45_000;
const EXIT_WAIT_MS = 30_000;
const COMMAND_TIMEOUT_MS = 30_000;

function canListen(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The lowest port the kernel hands out to outgoing connections and `listen(0)`. Base ports are
 * chosen below it: a port in that range that is free when checked can be taken by any
 * concurrent test's connection before `lichen up` binds it (a CI run failed so on port 38350).
 */
function ephemeralPortLow(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

/** A base port whose 4-node block (base .. base+32, room for `--add`) is free right now, below the ephemeral range; bounded attempts. */
async function freeBasePort(): Promise<number> {
  const blocks = Math.floor((ephemeralPortLow() - 10_000 - 40) / 40);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * blocks) * 40;
    const ports = [0, 1, 2, 3].flatMap((i) => [0, 1, 2].map((k) => base + 10 * i + k));
    let free = true;
    for (const port of ports) {
      if (!(await canListen(port))) {
        free = false;
        break;
      }
    }
    if (free) return base;
  }
  throw new Error('no free block of ports found');
}

/**
 * `input`: `up` reads its standard input from a pipe the test writes (else it reads nothing).
 * `ownGroup`: `up` leads a process group of its own, as a shell's job does (so a test may signal the group).
 */
function startUp(
  dir: string,
  extraArgs: string[],
  options: { input?: boolean; ownGroup?: boolean } = {},
): { child: ChildProcess; output: () => string; waitForLine: (prefix: string, occurrence?: number) => Promise<string> } {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, 'up', '--dir', join(dir, 'data'), ...extraArgs], {
    cwd: dir,
    stdio: [options.input === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    env: { ...process.env, LICHEN_ENDPOINTS: '' },
    detached: options.ownGroup === true,
  });
  let stdout = '';
  let stderr = '';
  const waiters: { find: () => string | undefined; resolve: (line: string) => void }[] = [];
  /** The occurrence-th complete line (the last piece may still be growing) that starts with prefix. */
  const findLine = (prefix: string, occurrence: number) =>
    stdout
      .split('\n')
      .slice(0, -1)
      .filter((l) => l.startsWith(prefix))[occurrence - 1];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const waiter of [...waiters]) {
      const line = waiter.find();
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const output = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
  const waitForLine = (prefix: string, occurrence = 1) =>
    new Promise<string>((resolve, reject) => {
      const existing = findLine(prefix, occurrence);
      if (existing !== undefined) return resolve(existing);
      const timer = setTimeout(() => reject(new Error(`no "${prefix}" line (#${occurrence}) within ${LEADER_WAIT_MS} ms\n${output()}`)), LEADER_WAIT_MS);
      const onExit = () => reject(new Error(`lichen up exited before printing "${prefix}" (#${occurrence})\n${output()}`));
      child.once('exit', onExit);
      waiters.push({
        find: () => findLine(prefix, occurrence),
        resolve: (line) => {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve(line);
        },
      });
    });
  return { child, output, waitForLine };
}

function waitForExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${EXIT_WAIT_MS} ms`)), EXIT_WAIT_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function lichen(dir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', TSX, MAIN, ...args],
      { cwd: dir, timeout: COMMAND_TIMEOUT_MS, env: { ...process.env, LICHEN_ENDPOINTS: '' } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The last lines of a member's log under <dir>/data, for failure messages. */
function logTail(dir: string, name: string, lines = 40): string {
  const path = join(dir, 'data', `${name}.log`);
  if (!existsSync(path)) return `(no ${name}.log)`;
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

function readCluster(dir: string): ClusterFile {
  return JSON.parse(readFileSync(join(dir, 'data', 'cluster.json'), 'utf8')) as ClusterFile;
}

/** Kills whatever a failed run left behind: the up process and every node it recorded. */
function killEverything(dir: string, child: ChildProcess | undefined): void {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (!existsSync(join(dir, 'data', 'cluster.json'))) return;
  for (const node of readCluster(dir).nodes) {
    if (node.pid !== null && isAlive(node.pid)) process.kill(node.pid, 'SIGKILL');
  }
}

test('lichen up runs a 3-node cluster that serves the CLI, stops cleanly on SIGTERM and restarts with its data', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-e2e-'));
  const base = await freeBasePort();
  const endpoints = [0, 1, 2].map((i) => `127.0.0.1:${base + 10 * i}`).join(',');
  let up: ReturnType<typeof startUp> | undefined;
  try {
    up = startUp(dir, ['--nodes', '3', '--base-port', String(base), '--engine', 'memory']);
    const leaderLine = await up.waitForLine('leader: ');
    const [, leaderName, leaderId] = /^leader: (node[123]) \(member ([0-9a-f]{16}),/.exec(leaderLine) ?? assert.fail(leaderLine);
    // The node's own log names it by the same 16 hex digits.
    assert.match(readFileSync(join(dir, 'data', `${leaderName}.log`), 'utf8'), new RegExp(`"msg":"lichen node ready","memberId":"${leaderId}"`));
    assert.match(up.output(), new RegExp(`node2 +127\\.0\\.0\\.1:${base + 10} +127\\.0\\.0\\.1:${base + 11} +127\\.0\\.0\\.1:${base + 12}`));

    const cluster = readCluster(dir);
    assert.deepEqual(
      cluster.nodes.map((n) => [n.name, n.client, n.peer, n.http]),
      [0, 1, 2].map((i) => [`node${i + 1}`, `127.0.0.1:${base + 10 * i}`, `127.0.0.1:${base + 10 * i + 1}`, `127.0.0.1:${base + 10 * i + 2}`]),
    );
    assert.ok(cluster.nodes.every((n) => typeof n.pid === 'number' && isAlive(n.pid)));

    assert.deepEqual(await lichen(dir, ['put', 'user:1', 'Alice', '--endpoints', endpoints]), { code: 0, stdout: 'OK\n', stderr: '' });
    assert.deepEqual(await lichen(dir, ['get', 'user:1', '--endpoints', endpoints]), { code: 0, stdout: 'user:1\nAlice\n', stderr: '' });
    const status = await lichen(dir, ['status', '--endpoints', endpoints]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.stdout.trim().split('\n').length, 4, 'a header and one row per endpoint');
    assert.equal((status.stdout.match(/ true /g) ?? []).length, 1, 'exactly one endpoint is the leader');

    up.child.kill('SIGTERM');
    assert.equal(await waitForExit(up.child), 0, up.output());
    assert.match(up.output(), /stopping the cluster\.\.\.\nstopped\n/);
    assert.doesNotMatch(up.output(), /exited unexpectedly/);
    for (const node of cluster.nodes) {
      assert.equal(isAlive(node.pid as number), false, `${node.name} (pid ${node.pid}) is gone`);
      assert.match(readFileSync(join(dir, 'data', `${node.name}.log`), 'utf8'), /"msg":"stopped"/, `${node.name} closed cleanly`);
    }
  } finally {
    killEverything(dir, up?.child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lichen up restarts a stopped cluster from cluster.json with the same ports and data', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-e2e-'));
  const base = await freeBasePort();
  const endpoints = [0, 1, 2].map((i) => `127.0.0.1:${base + 10 * i}`).join(',');
  let up: ReturnType<typeof startUp> | undefined;
  try {
    up = startUp(dir, ['--base-port', String(base)]);
    await up.waitForLine('leader: ');
    assert.equal((await lichen(dir, ['put', 'kept', 'across-restart', '--endpoints', endpoints])).code, 0);
    up.child.kill('SIGTERM');
    assert.equal(await waitForExit(up.child), 0, up.output());

    // No --nodes or --base-port: both come from cluster.json.
    up = startUp(dir, []);
    await up.waitForLine('leader: ');
    assert.match(up.output(), new RegExp(`node1 +127\\.0\\.0\\.1:${base} `));
    const got = await lichen(dir, ['get', 'kept', '--endpoints', endpoints]);
    assert.deepEqual(got, { code: 0, stdout: 'kept\nacross-restart\n', stderr: '' });

    const busy = await lichen(dir, ['up', '--dir', join(dir, 'data')]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /ports already in use: .*a previous 'lichen up' seems to be running still/);

    up.child.kill('SIGTERM');
    assert.equal(await waitForExit(up.child), 0, up.output());
    for (const node of readCluster(dir).nodes) assert.equal(isAlive(node.pid as number), false);
  } finally {
    killEverything(dir, up?.child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lichen up --tls: TLS on every port; --add joins one more node to the running cluster, and --remove takes one out', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-e2e-'));
  const base = await freeBasePort();
  const endpoints = [0, 2].map((i) => `127.0.0.1:${base + 10 * i}`).join(',');
  const tlsDir = join(dir, 'data', 'tls');
  const client = ['--cacert', join(tlsDir, 'ca.pem'), '--cert', join(tlsDir, 'client.pem'), '--key', join(tlsDir, 'client-key.pem')];
  let up: ReturnType<typeof startUp> | undefined;
  let add: ReturnType<typeof startUp> | undefined;
  try {
    up = startUp(dir, ['--nodes', '3', '--base-port', String(base), '--tls']);
    await up.waitForLine('leader: ');
    // It prints how to connect; without a client certificate nothing gets through.
    assert.match(up.output(), new RegExp(`etcdctl --endpoints=https://127\\.0\\.0\\.1:${base},.* --cacert=${tlsDir}/ca\\.pem --cert=${tlsDir}/client\\.pem --key=${tlsDir}/client-key\\.pem`));
    assert.deepEqual(await lichen(dir, ['put', 'over', 'tls', '--endpoints', endpoints, ...client]), { code: 0, stdout: 'OK\n', stderr: '' });
    const refused = await lichen(dir, ['get', 'over', '--endpoints', endpoints, '--cacert', join(tlsDir, 'ca.pem'), '--timeout', '2s']);
    assert.notEqual(refused.code, 0, refused.stdout);
    add = startUp(dir, ['--add']);
    assert.match(await add.waitForLine('node4 joins through'), new RegExp(`^node4 joins through 127\\.0\\.0\\.1:${base}`));
    assert.deepEqual(readCluster(dir).nodes.map((n) => n.name), ['node1', 'node2', 'node3', 'node4']);
    // The joiner becomes a voter once it has caught up: member list shows it as not a learner.
    const deadline = Date.now() + LEADER_WAIT_MS;
    let members = '';
    while (!/, started, node4, .*, false\n/.test(members)) {
      // The data directory is removed below, so a failure carries what node4 and `up --add` said.
      assert.ok(Date.now() < deadline, `node4 was not promoted: ${members}\n${add.output()}\n${logTail(dir, 'node4')}`);
      members = (await lichen(dir, ['member', 'list', '--endpoints', endpoints, ...client])).stdout;
    }

    const removed = await lichen(dir, ['up', '--remove', 'node2', '--dir', join(dir, 'data')]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, /^removed node2 \(member [0-9a-f]{16}\); it stops by itself\n$/);
    assert.deepEqual(readCluster(dir).nodes.map((n) => n.name), ['node1', 'node3', 'node4']);
    // Not a crash: `up` neither calls it one nor offers to restart it.
    await up.waitForLine('node2 was removed from the cluster and has stopped');
    assert.doesNotMatch(up.output(), /node2 .*exited unexpectedly|to restart/);
    assert.doesNotMatch((await lichen(dir, ['member', 'list', '--endpoints', endpoints, ...client])).stdout, /node2/);
    assert.deepEqual(await lichen(dir, ['put', 'after', 'removal', '--endpoints', endpoints, ...client]), { code: 0, stdout: 'OK\n', stderr: '' });

    add.child.kill('SIGTERM');
    assert.equal(await waitForExit(add.child), 0, add.output());
    up.child.kill('SIGTERM');
    await waitForExit(up.child);
  } finally {
    killEverything(dir, add?.child);
    killEverything(dir, up?.child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lichen up reports a crashed leader and the new one, and restarts the node on "r"', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-e2e-'));
  const base = await freeBasePort();
  const endpoints = [0, 1, 2].map((i) => `127.0.0.1:${base + 10 * i}`).join(',');
  let up: ReturnType<typeof startUp> | undefined;
  try {
    up = startUp(dir, ['--nodes', '3', '--base-port', String(base), '--engine', 'memory'], { input: true });
    const crashed = /^leader: (node\d)/.exec(await up.waitForLine('leader: '))![1]!;
    const pid = readCluster(dir).nodes.find((n) => n.name === crashed)!.pid as number;
    process.kill(pid, 'SIGKILL');

    assert.match(await up.waitForLine(`${crashed} (pid`), new RegExp(`^${crashed} \\(pid ${pid}\\) exited unexpectedly with signal SIGKILL; see `));
    await up.waitForLine(`${crashed} was the leader: the others elect a new one`);
    assert.equal(await up.waitForLine('to restart '), `to restart ${crashed}: a line "r" on the standard input of this lichen up, or stop it and run it again on ${join(dir, 'data')}`);
    const next = await up.waitForLine('leader: ', 2);
    assert.match(next, /^leader: node\d \(member [0-9a-f]{16}, term \d+\)$/);
    assert.notEqual(/^leader: (node\d)/.exec(next)![1], crashed, up.output());
    assert.deepEqual(await lichen(dir, ['put', 'while', 'down', '--endpoints', endpoints]), { code: 0, stdout: 'OK\n', stderr: '' });

    up.child.stdin!.write('r\n');
    const restarted = Number(/^restarted node\d \(pid (\d+)\)$/.exec(await up.waitForLine(`restarted ${crashed}`))![1]);
    assert.ok(isAlive(restarted));
    assert.equal(readCluster(dir).nodes.find((n) => n.name === crashed)!.pid, restarted);
    // The restarted node catches up and serves the write it missed.
    const own = readCluster(dir).nodes.find((n) => n.name === crashed)!.client;
    const deadline = Date.now() + LEADER_WAIT_MS;
    let got = await lichen(dir, ['get', 'while', '--endpoints', own]);
    while (got.stdout !== 'while\ndown\n') {
      assert.ok(Date.now() < deadline, `${crashed} did not serve again: ${JSON.stringify(got)}\n${up.output()}\n${logTail(dir, crashed)}`);
      got = await lichen(dir, ['get', 'while', '--endpoints', own]);
    }

    up.child.kill('SIGTERM');
    assert.equal(await waitForExit(up.child), 0, up.output());
    for (const node of readCluster(dir).nodes) assert.equal(isAlive(node.pid as number), false, `${node.name} is gone`);
  } finally {
    killEverything(dir, up?.child);
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Resolves once none of the pids is alive; rejects after EXIT_WAIT_MS naming the survivors. */
async function allGone(pids: number[], what: string): Promise<void> {
  const deadline = Date.now() + EXIT_WAIT_MS;
  while (pids.some((pid) => isAlive(pid))) {
    if (Date.now() > deadline) throw new Error(`${what}: nodes ${pids.filter((pid) => isAlive(pid)).join(', ')} still run ${EXIT_WAIT_MS} ms later`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('nodes started by lichen up end with it: closing its terminal (SIGHUP to the group) or SIGKILL of up', { timeout: 360_000 }, async () => {
  for (const how of ['SIGHUP', 'SIGKILL'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'lichen-e2e-'));
    let up: ReturnType<typeof startUp> | undefined;
    try {
      const base = await freeBasePort();
      up = startUp(dir, ['--nodes', '3', '--base-port', String(base), '--engine', 'memory'], { ownGroup: true });
      await up.waitForLine('leader: ');
      const pids = readCluster(dir).nodes.map((n) => n.pid as number);
      assert.ok(pids.every((pid) => isAlive(pid)));
      // A closing terminal sends SIGHUP to its foreground process group (npm, sh and `up`; each
      // node leads a group of its own). SIGKILL stands for every end `up` cannot act on.
      if (how === 'SIGHUP') process.kill(-up.child.pid!, 'SIGHUP');
      else up.child.kill('SIGKILL');
      await waitForExit(up.child);
      await allGone(pids, `after ${how} of lichen up`);
    } finally {
      killEverything(dir, up?.child);
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
