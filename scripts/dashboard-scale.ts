// node --import tsx scripts/dashboard-scale.ts [--base-port 24200] [--keys 100000]
//
// Is the dashboard responsive with 100,000 keys? Starts `lichen up` (3 members, in a temporary
// folder, on 127.0.0.1), writes `--keys` keys (half in a tree /registry/<kind>/<namespace>/<name>,
// 10 x 10 x N, half flat under /events/, the worst case for one tree level), then times in
// chromium: the overview until the leader shows, the keys view until the tree's first level
// shows, opening folders down to a namespace, the flat folder of half the keys, the paged list
// with its count, and a prefix search. Prints one JSON object (milliseconds from the action to
// the page showing its answer, and the HTTP routes alone).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { LichenClient, op } from '../src/client/index.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function flag(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? process.argv[at + 1]! : fallback;
}

const basePort = Number(flag('base-port', '24200'));
const keys = Number(flag('keys', '100000'));
const endpoints = [0, 1, 2].map((i) => `127.0.0.1:${basePort + 10 * i}`);
const http = `127.0.0.1:${basePort + 2}`;
const KINDS = 10;
const NAMESPACES = 10;
const TXN_OPS = 100;

/** Key i of the tree half, or of the flat half. */
function keyOf(i: number): string {
  const half = Math.floor(keys / 2);
  if (i >= half) return `/events/${String(i - half).padStart(7, '0')}`;
  const perNamespace = Math.ceil(half / (KINDS * NAMESPACES));
  const kind = Math.floor(i / (NAMESPACES * perNamespace));
  const namespace = Math.floor(i / perNamespace) % NAMESPACES;
  return `/registry/kind-${kind}/ns-${namespace}/object-${String(i % perNamespace).padStart(5, '0')}`;
}

async function load(client: LichenClient): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < keys) {
      const from = next;
      next += TXN_OPS;
      const ops = [];
      for (let i = from; i < Math.min(from + TXN_OPS, keys); i++) ops.push(op.put(keyOf(i), JSON.stringify({ i, name: keyOf(i), spec: { replicas: i % 7 } })));
      await client.txn().then(...ops).commit();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return Math.round(performance.now() - started);
}

/** Milliseconds from running `action` until `expression` is true in the page. */
async function timed(page: Page, action: () => Promise<unknown>, expression: string): Promise<number> {
  const started = performance.now();
  await action();
  await page.waitForFunction(expression, undefined, { timeout: 60_000, polling: 'raf' });
  return Math.round(performance.now() - started);
}

async function routeMs(path: string): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  const response = await fetch(`http://${http}${path}`);
  const body = await response.arrayBuffer();
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return { ms: Math.round(performance.now() - started), bytes: body.byteLength };
}

const folderLink = (name: string) => `[...document.querySelectorAll('.browser .tree a.folder')].find((a) => a.textContent.endsWith(' ${name}'))`;
const clickFolder = (page: Page, name: string) => () => page.locator('.browser .tree a.folder', { hasText: name }).last().click();

const dir = mkdtempSync(join(tmpdir(), 'lichen-dashboard-scale-'));
const cluster = spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'up', '--nodes', '3', '--base-port', String(basePort), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const client = new LichenClient({ endpoints, timeoutMs: 30_000, retryBudgetMs: 60_000 });
try {
  await new Promise<void>((resolve, reject) => {
    let out = '';
    cluster.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (/^leader: /m.test(out)) resolve();
    });
    cluster.once('exit', (code) => reject(new Error(`lichen up exited (${code}): ${out}`)));
  });
  const loadMs = await load(client);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const base = `http://${http}/`;
  const ui = {
    overviewMs: await timed(page, () => page.goto(base), "!['', undefined, 'no leader'].includes(document.querySelector('[data-testid=leader]')?.textContent)"),
    keysViewTreeMs: await timed(page, () => page.goto(`${base}#keys`), `${folderLink('/')} !== undefined`),
    openRootMs: await timed(page, clickFolder(page, '/'), `${folderLink('registry/')} !== undefined && ${folderLink('events/')} !== undefined`),
    openRegistryMs: await timed(page, clickFolder(page, 'registry/'), `${folderLink('kind-9/')} !== undefined`),
    openKindMs: await timed(page, clickFolder(page, 'kind-0/'), `${folderLink('ns-9/')} !== undefined`),
    openNamespaceMs: await timed(page, clickFolder(page, 'ns-0/'), "document.querySelector('.browser .tree a[data-key=\"/registry/kind-0/ns-0/object-00000\"]') !== null"),
    openFlatFolderMs: await timed(page, clickFolder(page, 'events/'), "document.querySelector('.browser .tree a[data-key=\"/events/0000000\"]') !== null"),
    searchPrefixMs: await timed(
      page,
      async () => {
        await page.fill('input[name=search]', '/registry/kind-5/');
        await page.click('.browser form.toolbar button:has-text("Go")');
      },
      `${folderLink('ns-0/')} !== undefined`,
    ),
    listFirstPageMs: await timed(
      page,
      async () => {
        await page.fill('input[name=search]', '');
        await page.click('.browser form.toolbar button:has-text("Go")');
        await page.check('input[name=browse] >> nth=1');
      },
      "document.querySelectorAll('.keylist a').length > 0",
    ),
    openKeyMs: await timed(page, () => page.locator('.keylist a').first().click(), "document.querySelector('[data-testid=value]') !== null"),
  };
  const routes = {
    childrenOfRoot: await routeMs('/v1/children/'),
    childrenOfFlatFolder: await routeMs(`/v1/children/${encodeURIComponent('/events/')}`),
    childrenOfNamespace: await routeMs(`/v1/children/${encodeURIComponent('/registry/kind-0/ns-0/')}`),
    keysFirstPageWithCount: await routeMs('/v1/keys/?limit=50'),
    keysLaterPageWithCount: await routeMs(`/v1/keys/?limit=50&after=${encodeURIComponent('/events/0040000')}`),
  };
  const listCount = await page.locator('.browser').textContent();
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      keys,
      loadMs,
      ui,
      routes,
      listShowsCount: /100,000|100000/.test(listCount ?? ''),
      loadAverage1m: Number(loadavg()[0]!.toFixed(2)),
    }),
  );
} finally {
  client.close();
  await browser.close();
  cluster.kill('SIGTERM');
  await new Promise((resolve) => cluster.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}
