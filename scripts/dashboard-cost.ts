// node --import tsx scripts/dashboard-cost.ts --bench <etcd-go-bench> [--base-port 26100]
//     [--rounds 3] [--seconds 10] [--tabs 5] [--mode browser|streams]
//
// What the dashboard costs the cluster: put-64 throughput (etcd's Go client, 64 clients, measured
// by the load generator given with --bench, which prints one JSON line per run) on a 3-member
// cluster with and without `--tabs` dashboards open on one member, alternated ABBA within one run
// so that drift on a shared machine cancels out. `--mode browser` opens real chromium tabs on the
// overview (the browser then shares this machine's cores with the cluster, so it is a worst
// case); `--mode streams` opens the same number of event streams without a browser, the cost on
// the server alone. Prints one JSON object. Starts `lichen up` in a temporary folder on 127.0.0.1
// and stops it at the end. Nothing in the product or its tests depends on the load generator.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function flag(name: string, fallback?: string): string {
  const at = process.argv.indexOf(`--${name}`);
  const value = at >= 0 ? process.argv[at + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
}

const bench = flag('bench');
const basePort = Number(flag('base-port', '26100'));
const rounds = Number(flag('rounds', '3'));
const seconds = Number(flag('seconds', '10'));
const tabs = Number(flag('tabs', '5'));
const mode = flag('mode', 'browser') as 'browser' | 'streams';
const endpoints = [0, 1, 2].map((i) => `127.0.0.1:${basePort + 10 * i}`).join(',');
const dashboard = `http://127.0.0.1:${basePort + 2}/`;

function putThroughput(): { requestsPerSecond: number; raw: unknown } {
  const run = spawnSync(bench, ['--endpoints', endpoints, '--op', 'put', '--clients', '64', '--conns', '8', '--seconds', String(seconds), '--vsize', '256'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the load generator failed: ${run.stderr}`);
  const line = run.stdout.trim().split('\n').at(-1)!;
  const raw = JSON.parse(line) as Record<string, unknown>;
  const rate = ['throughput', 'ops_per_sec', 'requestsPerSecond', 'rps', 'qps'].map((k) => raw[k]).find((v) => typeof v === 'number');
  if (typeof rate !== 'number') throw new Error(`no throughput field in ${line}`);
  return { requestsPerSecond: rate, raw };
}

interface OpenTabs {
  close(): Promise<void>;
}

async function openTabs(browser: Browser | undefined): Promise<OpenTabs> {
  if (browser) {
    const pages: Page[] = [];
    for (let i = 0; i < tabs; i++) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(dashboard);
      await page.waitForFunction("!['', undefined, 'no leader'].includes(document.querySelector('[data-testid=leader]')?.textContent)", undefined, { timeout: 60_000 });
      pages.push(page);
    }
    return { close: async () => void (await Promise.all(pages.map((p) => p.close()))) };
  }
  const controllers = await Promise.all(
    Array.from({ length: tabs }, async () => {
      const controller = new AbortController();
      const response = await fetch(`${dashboard}v1/events`, { signal: controller.signal });
      // Read (and drop) everything, as a page would.
      void response.body!.pipeTo(new WritableStream()).catch(() => {});
      return controller;
    }),
  );
  return { close: async () => controllers.forEach((c) => c.abort()) };
}

const dir = mkdtempSync(join(tmpdir(), 'lichen-dashboard-cost-'));
const cluster = spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'up', '--nodes', '3', '--base-port', String(basePort), '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
let browser: Browser | undefined;
try {
  await new Promise<void>((resolve, reject) => {
    let out = '';
    cluster.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (/^leader: /m.test(out)) resolve();
    });
    cluster.once('exit', (code) => reject(new Error(`lichen up exited (${code}): ${out}`)));
  });
  if (mode === 'browser') {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }
  putThroughput(); // warm-up, not counted
  const without: number[] = [];
  const withTabs: number[] = [];
  const load: number[] = [loadavg()[0]!];
  for (let round = 0; round < rounds; round++) {
    // ABBA: without, with, with, without, …
    for (const open of round % 2 === 0 ? [false, true] : [true, false]) {
      const opened = open ? await openTabs(browser) : undefined;
      const { requestsPerSecond } = putThroughput();
      await opened?.close();
      (open ? withTabs : without).push(requestsPerSecond);
      load.push(loadavg()[0]!);
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const total = (values: number[]) => values.reduce((a, b) => a + b, 0);
  console.log(
    JSON.stringify({
      date: new Date().toISOString(),
      mode,
      tabs,
      seconds,
      rounds,
      putRequestsPerSecond: { without, with: withTabs },
      ratioOfMeans: Number((total(withTabs) / total(without)).toFixed(3)),
      ratioOfMedians: Number((median(withTabs) / median(without)).toFixed(3)),
      loadAverage1m: load.map((l) => Number(l.toFixed(2))),
    }),
  );
} finally {
  await browser?.close();
  cluster.kill('SIGTERM');
  await new Promise((resolve) => cluster.once('exit', resolve));
  rmSync(dir, { recursive: true, force: true });
}
