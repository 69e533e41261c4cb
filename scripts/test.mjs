#!/usr/bin/env node
// Runs every *.test.ts file under src/ with node's own test runner (TypeScript through tsx).
// Node 20's `node --test` neither expands globs nor fails when it finds no file, so we list the
// files ourselves and fail loudly when there are none.
//
// Usage: node scripts/test.mjs [substring ...]   — only files whose path contains a substring.
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
// so whole-suite runs take turns through a lock directory; filtered runs are small and go ahead.
const release = filters.length === 0 ? await takeMachineTurn() : () => undefined;
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files],
  { cwd: root, stdio: 'inherit' },
);
release();
process.exit(result.status ?? 1);

/** Waits until no other whole-suite run holds the machine's lock, takes it, returns its release. */
async function takeMachineTurn() {
  const lock = join(tmpdir(), 'lichen-npm-test.lock');
  const owner = join(lock, 'pid');
  let announced = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(owner, String(process.pid));
      const release = () => rmSync(lock, { recursive: true, force: true });
      process.on('exit', release);
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));
      return release;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSafe(owner));
    if (holder > 0 && !isAlive(holder)) {
      rmSync(lock, { recursive: true, force: true });
      continue;
    }
    if (!announced) console.error(`waiting for another whole-suite run on this machine (pid ${holder || '?'}, lock ${lock})`);
    announced = true;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function readFileSafe(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
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
