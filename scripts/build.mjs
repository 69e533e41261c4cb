#!/usr/bin/env node
// Builds dist/ from src/ with tsc, and the dashboard (web/, checked by tsc, bundled into
// dist/dashboard by build-dashboard.mjs) (the `build` script). With --if-stale (the `prepare` script) it
// builds only when dist/ is missing or older than what it is built from.
//
// Why --if-stale: npm runs `prepare` on every `npm install`, and npm 11 also runs it the first
// time `npx lichen` is used in a checkout: npx sees that the project's own package.json has a
// `lichen` bin, links the project into its cache (libnpmexec, "self-execution of a local bin")
// and runs the link's `prepare`. A full tsc build there made the first `npx lichen` take 7.6 s
// where later ones take under 1 s.
//
// dist/ is up to date when its stamp (written after a successful build) records a start time
// later than every file and folder under src/, web/ and tsconfig.json (a folder's time changes when a
// file is added or removed), and the TypeScript version that built it is the installed one.
// Paths are relative to the working directory, the package root when npm runs a script.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const root = process.cwd();
const STAMP = join(root, 'dist', '.build-stamp');
const require = createRequire(join(root, 'package.json'));
const typescriptVersion = require('typescript/package.json').version;

/** The latest modification time (ms) of a file, or of a folder and everything under it. */
function newestChange(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const name of readdirSync(path)) newest = Math.max(newest, newestChange(join(path, name)));
  return newest;
}

function isUpToDate() {
  if (!existsSync(STAMP) || !existsSync(join(root, 'dist', 'cli', 'main.js'))) return false;
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return false;
  }
  if (stamp.typescript !== typescriptVersion || typeof stamp.startedAt !== 'number') return false;
  const sources = ['src', 'web', 'tsconfig.json', join('scripts', 'build-dashboard.mjs')];
  return Math.max(...sources.map((path) => newestChange(join(root, path)))) < stamp.startedAt;
}

function build() {
  // The start time, not the end: a source saved while tsc runs must make the next check build.
  const startedAt = Date.now();
  const steps = [
    [require.resolve('typescript/bin/tsc'), '-p', resolve(root, 'tsconfig.json')],
    [require.resolve('typescript/bin/tsc'), '-p', resolve(root, 'web', 'tsconfig.json')],
    [join(root, 'scripts', 'build-dashboard.mjs')],
  ];
  for (const args of steps) {
    const step = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (step.status !== 0) process.exit(step.status ?? 1);
  }
  chmodSync(join(root, 'dist', 'cli', 'main.js'), 0o755);
  writeFileSync(STAMP, JSON.stringify({ startedAt, typescript: typescriptVersion }) + '\n');
}

if (process.argv.includes('--if-stale') && isUpToDate()) {
  console.log('dist/ is up to date with src/ (npm run build rebuilds it anyway)');
} else {
  build();
}
