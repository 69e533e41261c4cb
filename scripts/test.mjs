#!/usr/bin/env node
// Runs every *.test.ts file under src/ with node's own test runner (TypeScript through tsx).
// Node 20's `node --test` neither expands globs nor fails when it finds no file, so we list the
// files ourselves and fail loudly when there are none.
//
// Usage: node scripts/test.mjs [substring ...]   — only files whose path contains a substring.
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const root = new URL('..', import.meta.url).pathname;

function findTests(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (name.endsWith('.test.ts')) found.push(relative(root, path));
  }
  return found;
}

const filters = process.argv.slice(2);
const files = findTests(join(root, 'src'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files found${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}
const concurrency = Math.max(1, availableParallelism());
// A whole-suite run uses every core for minutes and its real-process tests have deadlines. Two at
// once on one machine (several checkouts, several people) starve each other into false timeouts,
// so whole-suite runs take turns in a first-come queue; filtered runs are small and go ahead.
const release = filters.length === 0 ? await takeMachineTurn() : () => undefined;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit' },
);
release();
process.exit(result.status ?? 1);

/**
 * Waits for this run's turn in the machine's queue of whole-suite runs and returns its release.
 * The queue is first come, first served (a ticket file named by the time it was taken): a plain
 * lock let runs that retried at the right moment go first, and one run once waited 67 minutes
 * while three others took the lock in turn. Tickets of dead processes are removed by the waiters.
 */
async function takeMachineTurn() {
  const queue = join(tmpdir(), 'lichen-npm-test.queue');
  mkdirSync(queue, { recursive: true });
  const ticket = `${String(Date.now()).padStart(15, '0')}-${process.pid}`;
  writeFileSync(join(queue, ticket), '');
  const release = () => rmSync(join(queue, ticket), { force: true });
  process.on('exit', release);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));
  let announced = false;
  for (;;) {
    const ahead = readdirSync(queue).filter((other) => other < ticket);
    const dead = ahead.filter((other) => !isAlive(Number(other.split('-')[1])));
    for (const other of dead) rmSync(join(queue, other), { force: true });
    if (dead.length === ahead.length) return release;
    if (!announced) console.error(`waiting for the whole-suite run(s) ahead of this one on this machine (queue ${queue})`);
    announced = true;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}
