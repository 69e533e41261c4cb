// npm runs the `prepare` script on every `npm install`, and npm 11 runs it too the first time
// `npx lichen` is used in a checkout (see scripts/build.mjs). It must build dist/ when dist/ is
// missing or older than src/ or web/ (the dashboard), and leave an up-to-date dist/ alone. Runs the
// real package.json scripts through npm on a copy of the project with one source file and a
// one-file page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = new URL('..', import.meta.url).pathname;

function makeProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-prepare-'));
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const pkg = { name: 'prepare-fixture', version: '0.0.0', type: 'module', scripts: { build: scripts.build, prepare: scripts.prepare } };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg));
  copyFileSync(join(ROOT, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  mkdirSync(join(dir, 'scripts'));
  copyFileSync(join(ROOT, 'scripts', 'build.mjs'), join(dir, 'scripts', 'build.mjs'));
  copyFileSync(join(ROOT, 'scripts', 'build-dashboard.mjs'), join(dir, 'scripts', 'build-dashboard.mjs'));
  mkdirSync(join(dir, 'web', 'dashboard'), { recursive: true });
  copyFileSync(join(ROOT, 'web', 'tsconfig.json'), join(dir, 'web', 'tsconfig.json'));
  copyFileSync(join(ROOT, 'web', 'dashboard', 'index.html'), join(dir, 'web', 'dashboard', 'index.html'));
  writeFileSync(join(dir, 'web', 'dashboard', 'styles.css'), 'body { margin: 0; }\n');
  writeFileSync(join(dir, 'web', 'dashboard', 'main.tsx'), "import './styles.css';\nexport const page = 'first';\n");
  mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
  writeFileSync(join(dir, 'src', 'cli', 'main.ts'), 'export const version = 1;\n');
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

async function runPrepare(dir: string): Promise<void> {
  await promisify(execFile)('npm', ['run', 'prepare', '--silent'], { cwd: dir, timeout: 120_000 });
}

test('prepare builds a missing or stale dist/ and leaves an up-to-date one alone', { timeout: 300_000 }, async () => {
  const dir = makeProject();
  const output = join(dir, 'dist', 'cli', 'main.js');
  try {
    await runPrepare(dir);
    assert.match(readFileSync(output, 'utf8'), /version = 1/);
    assert.equal(statSync(output).mode & 0o111, 0o111, 'the bin is executable');
    const page = join(dir, 'dist', 'dashboard', 'app.js');
    assert.match(readFileSync(page, 'utf8'), /first/, 'the dashboard is built');
    const built = statSync(output).mtimeMs;

    await runPrepare(dir);
    assert.equal(statSync(output).mtimeMs, built, 'an up-to-date dist/ is not rebuilt');

    writeFileSync(join(dir, 'src', 'cli', 'main.ts'), 'export const version = 2;\n');
    await runPrepare(dir);
    assert.match(readFileSync(output, 'utf8'), /version = 2/, 'a changed source is rebuilt');

    writeFileSync(join(dir, 'src', 'added.ts'), 'export const added = true;\n');
    await runPrepare(dir);
    assert.match(readFileSync(join(dir, 'dist', 'added.js'), 'utf8'), /added = true/, 'a new source is built');

    writeFileSync(join(dir, 'web', 'dashboard', 'main.tsx'), "import './styles.css';\nexport const page = 'second';\n");
    await runPrepare(dir);
    assert.match(readFileSync(page, 'utf8'), /second/, 'a changed page is built again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
