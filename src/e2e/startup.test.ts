// `lichen serve` start-up failures, with real processes: every step fails fast with a message that
// says what to fix, leaves nothing half-made behind, and a signal stops a start-up that waits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { E2E_TEST_TIMEOUT_MS, freePort } from '../server/testing/process-cluster.js';

const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
/**
 * Far above what a failing start takes (1-3 s; up to 20 s on a machine shared by several test
 * suites); a start that hangs is killed at this bound and fails the test.
 */
const EXIT_WAIT_MS = 60_000;
/** Tests that run serve several times one after the other. */
const SEVERAL_STARTS_TIMEOUT_MS = 4 * EXIT_WAIT_MS;

interface Exit {
  code: number | null;
  signal: string | null;
  stderr: string;
  /** Whether the harness had to kill it at EXIT_WAIT_MS. */
  hung: boolean;
}

/** Runs `lichen serve` with these flags; `onLine` may act on its output (send a signal, say). */
function serve(flags: string[], onLine?: (line: string, pid: number) => void): Promise<Exit> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, EXIT_WAIT_MS);
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    const complete = stderr.length;
    stderr += chunk;
    for (const line of stderr.slice(complete).split('\n')) if (line) onLine?.(line, child.pid!);
  });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, hung });
    });
  });
}

async function ports(): Promise<{ client: string; peer: string; http: string }> {
  return { client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}`, http: `127.0.0.1:${await freePort()}` };
}

function listenFlags(p: { client: string; peer: string; http: string }): string[] {
  return ['--listen-client', p.client, '--listen-peer', p.peer, '--listen-http', p.http];
}

async function occupy(address: string): Promise<Server> {
  const server = createServer();
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  return server;
}

test('a --data-dir that cannot be created fails at once with a message naming it', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  // mkdir under /proc answers ENOENT, which made Node's recursive mkdir retry forever.
  const exit = await serve(['--name', 'n1', '--data-dir', `/proc/lichen-test-${process.pid}/n1`, ...listenFlags(await ports())]);
  assert.equal(exit.hung, false, `serve was still running after ${EXIT_WAIT_MS} ms`);
  assert.equal(exit.code, 1);
  assert.match(exit.stderr, /cannot create directory \/proc\/lichen-test-\d+\/n1/);
});

test('SIGTERM during start-up stops it (here: a join that waits for an unreachable member)', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'lichen-startup-'));
  try {
    const unreachable = `127.0.0.1:${await freePort()}`;
    let signalled = false;
    const flags = ['--name', 'n1', '--data-dir', join(root, 'n1'), ...listenFlags(await ports()), '--join', unreachable, '--request-timeout-ms', '600000'];
    const exit = await serve(flags, (line, pid) => {
      if (!signalled && line.includes('starting lichen node')) {
        signalled = true;
        process.kill(pid, 'SIGTERM');
      }
    });
    assert.ok(signalled);
    assert.equal(exit.hung, false, 'the first SIGTERM did not stop the start-up');
    assert.match(exit.stderr, /start-up interrupted/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a port that is taken fails before anything is written, naming the port and its role', { timeout: SEVERAL_STARTS_TIMEOUT_MS }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'lichen-startup-'));
  const addresses = await ports();
  try {
    for (const [flag, address] of [['--listen-client', addresses.client], ['--listen-http', addresses.http], ['--listen-peer', addresses.peer]] as const) {
      const taken = await occupy(address);
      try {
        const exit = await serve(['--name', 'n1', '--data-dir', join(root, 'n1'), ...listenFlags(addresses)]);
        assert.equal(exit.hung, false);
        assert.equal(exit.code, 1);
        assert.ok(exit.stderr.includes(`cannot listen on ${address} for ${flag}`), exit.stderr);
        assert.match(exit.stderr, /already in use/);
        const left = existsSync(join(root, 'n1')) ? readdirSync(join(root, 'n1')) : [];
        assert.deepEqual(left, [], `the failed start left ${left.join(', ')} in the data directory`);
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a data directory refuses an --initial-cluster that contradicts the membership it holds', { timeout: SEVERAL_STARTS_TIMEOUT_MS }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'lichen-startup-'));
  const addresses = await ports();
  const dataDir = join(root, 'n1');
  try {
    // A one-member cluster, started and stopped once.
    const first = await serve(['--name', 'n1', '--data-dir', dataDir, ...listenFlags(addresses)], (line, pid) => {
      if (line.includes('lichen node ready')) process.kill(pid, 'SIGTERM');
    });
    assert.equal(first.code, 0, first.stderr);
    // The same directory with a three-member --initial-cluster: refused, not a one-member leader.
    const three = `n1=${addresses.peer},n2=127.0.0.1:${await freePort()},n3=127.0.0.1:${await freePort()}`;
    const exit = await serve(['--name', 'n1', '--data-dir', dataDir, ...listenFlags(addresses), '--initial-cluster', three]);
    assert.equal(exit.hung, false, 'serve started on a data directory of another membership');
    assert.equal(exit.code, 1);
    assert.ok(exit.stderr.includes(`whose members are n1=${addresses.peer}`), exit.stderr);
    assert.ok(exit.stderr.includes(`--initial-cluster is ${three}`), exit.stderr);
    // Restarting with the membership it holds, or without the flag, works.
    for (const flags of [['--initial-cluster', `n1=${addresses.peer}`], []]) {
      const again = await serve(['--name', 'n1', '--data-dir', dataDir, ...listenFlags(addresses), ...flags], (line, pid) => {
        if (line.includes('lichen node ready')) process.kill(pid, 'SIGTERM');
      });
      assert.equal(again.code, 0, again.stderr);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
