// The dashboard in a real browser (Debian's chromium driven by playwright-core) against a real
// 3-process cluster: the leader is shown, a key created in the page appears in a watch tail, an
// edit shows in the key's history with a diff, and killing the leader process shows the new
// leader within seconds; with auth on, a login, refusals shown, and users and roles edited.
// Screenshots of each view go to a temporary folder, or to the folder in
// LICHEN_SCREENSHOTS_DIR (`LICHEN_SCREENSHOTS_DIR=docs/dashboard node scripts/test.mjs
// e2e/dashboard` refreshes the README's pictures).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, type MemberProcess } from '../server/testing/process-cluster.js';

const CHROMIUM = '/usr/bin/chromium';
/** Flags that work as root in a sandbox without network (see the README's dashboard section). */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Waits in the page are bounded by this; a loaded machine gets slow, not stuck. */
const WAIT_MS = 30_000;

let cluster: ProcessCluster;
/** Kept so that after() closes the browser even when the cluster failed to start first: a live chromium would keep this file's process from ever ending. */
let launching: Promise<Browser> | undefined;
let browser: Browser;
let page: Page;
let served: MemberProcess;
const screenshots = process.env['LICHEN_SCREENSHOTS_DIR'] ? resolve(process.env['LICHEN_SCREENSHOTS_DIR']) : mkdtempSync(join(tmpdir(), 'lichen-dashboard-'));

before(async () => {
  mkdirSync(screenshots, { recursive: true });
  launching = chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  [cluster, browser] = await Promise.all([ProcessCluster.start({ nodes: 3 }), launching]);
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(WAIT_MS);
});

after(async () => {
  await launching?.then(
    (launched) => launched.close(),
    () => undefined,
  );
  await cluster?.stop();
  if (!process.env['LICHEN_SCREENSHOTS_DIR']) rmSync(screenshots, { recursive: true, force: true });
});

const shoot = (name: string) => page.screenshot({ path: join(screenshots, `${name}.png`) });

/**
 * Waits until a JavaScript expression is true in the page. The expression is text: this file is
 * compiled for Node, where the page's `document` has no type.
 */
const until = (expression: string) => page.waitForFunction(expression);
/** `[data-testid=leader]`'s text, as an expression. */
const LEADER_TEXT = "document.querySelector('[data-testid=leader]')?.textContent";

async function textOf(selector: string): Promise<string> {
  return (await page.locator(selector).first().textContent()) ?? '';
}

/** Some writes and reads on a few prefixes through the HTTP API, so the charts and the heatmap have something to show. */
async function traffic(member: MemberProcess, requests: number): Promise<void> {
  const prefixes = ['/registry/pods/default/web-', '/registry/services/default/api-', '/config/app/', '/locks/job-'];
  for (let i = 0; i < requests; i++) {
    // One key in four is the same hot one: it stands out in the heatmap.
    const key = i % 4 === 0 ? '/registry/pods/default/web-0' : `${prefixes[i % prefixes.length]}${i % 25}`;
    const path = `http://${member.http}/v1/kv/${encodeURIComponent(key)}`;
    const response = i % 3 === 0 ? await fetch(path) : await fetch(path, { method: 'PUT', body: `value ${i}` });
    await response.arrayBuffer();
  }
}

test('the overview of a follower shows the leader and every member up', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const leader = await cluster.waitForLeader();
  // A follower serves the page, so it stays up when the leader is killed below.
  served = cluster.members.find((m) => m !== leader)!;
  await traffic(served, 200);
  await page.goto(`http://${served.http}/`);
  await until(`${LEADER_TEXT} === ${JSON.stringify(leader.name)}`);
  await until("document.querySelectorAll('tr[data-member] [data-role]').length === 3");
  const roles = await page.locator('tr[data-member] [data-role]').allTextContents();
  assert.deepEqual(roles.sort(), ['follower', 'follower', 'leader']);
  await until("document.querySelectorAll('.chart canvas').length >= 3");
  await shoot('overview');
});

test('a key created in the page appears in the watch tail; an edit shows in its history with a diff', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await page.goto(`http://${served.http}/#keys`);
  await page.fill('input[name=watch-prefix]', '/dash/');
  await page.click('form.toolbar button:has-text("Start")');
  await until(`document.querySelector('.tail .muted')?.textContent === 'watching "/dash/"'`);

  await page.fill('input[name=key]', '/dash/greeting');
  await page.fill('input[name=value]', '{"text":"hello","n":1}');
  await page.click('form.newkey button[type=submit]');
  await until("[...document.querySelectorAll('[data-testid=watch-events] tr')].some((row) => row.textContent.includes('/dash/greeting'))");
  assert.match(await textOf('[data-testid=watch-events] tr'), /PUT\/dash\/greeting/);
  // The new key is selected and its JSON value pretty printed.
  await until(`document.querySelector('[data-testid=value]')?.textContent.includes('"text": "hello"')`);

  await page.click('.detail button:has-text("Edit")');
  await page.fill('[data-testid=editor]', '{"text":"hello, world","n":1}');
  await page.click('.detail button:has-text("Save")');
  await until("document.querySelectorAll('.history tr[data-revision]').length === 2");
  await until(`document.querySelector('[data-testid=diff]')?.textContent.includes('+   "text": "hello, world"')`);
  const diff = await textOf('[data-testid=diff] pre');
  assert.match(diff, /- {3}"text": "hello",/);
  assert.match(diff, /\+ {3}"text": "hello, world",/);
  await until("document.querySelectorAll('[data-testid=watch-events] tr').length === 2");
  await shoot('keys');
});

test('the heatmap, leases and operations views render', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await traffic(served, 200);
  await page.goto(`http://${served.http}/#heatmap`);
  await page.waitForSelector('[data-testid=heatmap]');
  await until("document.querySelector('[data-testid=heat-hover]')?.textContent.includes('rows')");
  await shoot('heatmap');

  await page.goto(`http://${served.http}/#leases`);
  await page.fill('input[name=ttl]', '600');
  await page.click('button:has-text("Grant lease")');
  const leaseId = await (await page.waitForSelector('tr[data-lease]')).getAttribute('data-lease');
  await (await fetch(`http://${served.http}/v1/kv/%2Flocks%2Fleader?lease=${leaseId}`, { method: 'PUT', body: 'n1' })).arrayBuffer();
  await page.click('tr[data-lease] a');
  await until("document.querySelector('.lease-keys')?.textContent === '/locks/leader'");
  await shoot('leases');

  await page.goto(`http://${served.http}/#operations`);
  await until("document.querySelectorAll('.operations select option').length >= 3");
  await page.click('.op:has-text("Compact") button:has-text("Compact")');
  await page.click('.op:has-text("Compact") button:has-text("Confirm")');
  await page.waitForSelector('.operations .banner.ok');
  assert.match(await textOf('.operations .banner.ok'), /Compact: done/);
  await shoot('operations');
});

test('killing the leader process shows it down and the new leader within seconds', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const leader = await cluster.waitForLeader();
  await page.goto(`http://${served.http}/`);
  await until(`${LEADER_TEXT} === ${JSON.stringify(leader.name)}`);
  const killedAt = Date.now();
  await cluster.kill(leader);
  await until(`document.querySelector('tr[data-member="${leader.name}"] [data-role]')?.textContent === 'down'`);
  const downAfterMs = Date.now() - killedAt;
  await until(`![undefined, 'no leader', ${JSON.stringify(leader.name)}].includes(${LEADER_TEXT})`);
  const newLeaderAfterMs = Date.now() - killedAt;
  const newLeader = await cluster.waitForLeader(20_000, cluster.running());
  assert.equal(await textOf('[data-testid=leader]'), newLeader.name);
  await shoot('failover');
  // The budget is seconds (an election timeout plus one round of the page's stream); it is logged
  // rather than asserted tightly, because a loaded CI machine stretches both.
  console.log(JSON.stringify({ dashboard: { downAfterMs, newLeaderAfterMs } }));
  assert.ok(newLeaderAfterMs < 20_000, `the new leader showed after ${newLeaderAfterMs} ms`);
});

/** A request to the served member's HTTP API that must succeed. */
async function http(method: string, path: string, body?: unknown, token?: string): Promise<any> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  if (token) headers['authorization'] = token;
  const response = await fetch(`http://${served.http}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  assert.ok(response.ok, `${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function logInAs(name: string, password: string): Promise<void> {
  await page.waitForSelector('form.login');
  await page.fill('form.login input[name=user]', name);
  await page.fill('form.login input[name=password]', password);
  await page.click('form.login button[type=submit]');
  await until(`document.querySelector('[data-testid=user]')?.textContent === ${JSON.stringify(name)}`);
}

test('with auth on: a login; a user without root sees refusals, not keys; root edits users, roles and permissions', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  await http('POST', '/v1/auth/users', { name: 'root', password: 'rootpw' });
  await http('POST', '/v1/auth/roles', { name: 'root' });
  await http('POST', '/v1/auth/users/root', { grantRole: 'root' });
  await http('POST', '/v1/auth/users', { name: 'alice', password: 'alicepw' });
  await http('POST', '/v1/auth/roles', { name: 'app' });
  await http('POST', '/v1/auth/roles/app', { grant: { permType: 'READWRITE', key: '/dash/', prefix: true } });
  await http('POST', '/v1/auth/users/alice', { grantRole: 'app' });
  await http('POST', '/v1/auth/enable');

  await page.goto(`http://${served.http}/#keys`);
  await page.reload();
  await logInAs('alice', 'alicepw');
  // The tree starts at the whole key space, which alice may not read: the member's refusal is shown.
  await until("[...document.querySelectorAll('.banner.error')].some((b) => b.textContent.includes('permission denied'))");
  await page.fill('input[name=search]', '/dash/');
  await page.click('.browser form.toolbar button:has-text("Go")');
  await until("[...document.querySelectorAll('.browser a')].some((a) => a.textContent.includes('greeting'))");
  await page.goto(`http://${served.http}/#heatmap`);
  await page.waitForSelector('[data-testid=heat-hidden]');

  await page.click('header button:has-text("Log out")');
  await logInAs('root', 'rootpw');
  await page.goto(`http://${served.http}/#auth`);
  await until("document.querySelector('tr[data-user=alice]')?.textContent.includes('app')");
  await page.selectOption('.grant select >> nth=0', 'READ');
  await page.selectOption('.grant select >> nth=1', 'prefix');
  await page.fill('.grant input[placeholder=key]', '/config/');
  await page.selectOption('.grant select >> nth=2', 'app');
  await page.click('.grant button:has-text("Grant")');
  await until("document.querySelector('tr[data-role-name=app]')?.textContent.includes('READ /config/* (prefix)')");
  const role = await http('GET', '/v1/auth/roles/app', undefined, (await http('POST', '/v1/auth/authenticate', { name: 'root', password: 'rootpw' })).token);
  assert.deepEqual(role.permissions.map((p: { permType: string; key: string }) => `${p.permType} ${p.key}`), ['READ /config/', 'READWRITE /dash/']);
  await shoot('auth');
});
