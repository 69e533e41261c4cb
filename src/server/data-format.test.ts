// Data directories across releases (README, "Upgrades"). A directory written by lichen 0.1 is kept
// in testdata/data-dir-0.1 (see its README): the current code starts on a copy of it and serves
// its data. A directory of a newer or unknown format is refused with the way forward, before
// anything in it is touched.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LichenClient } from '../client/index.js';
import { createSilentLogger } from '../log.js';
import { defaultNodeConfig } from './config.js';
import { startNode } from './index.js';
import { DATA_DIR_FORMAT, openNodeState } from './state.js';
import { upgradeFormat1 } from './upgrade.js';

const FIXTURE = new URL('./testdata/data-dir-0.1', import.meta.url).pathname;
/** What the fixture's README says was written into it. */
const FIXTURE_LEASE = 0x0e0ec6582531c1;
/** Three members' directories written by lichen 0.1, after snapshots were taken (see its README). */
const CLUSTER_FIXTURE = new URL('./testdata/data-dir-0.1-3', import.meta.url).pathname;
const CLUSTER_FIXTURE_LEASE = 0x037020b19fea7c;
/** The keys under /fixture/ the cluster fixture holds, as key=value@modRevision/vVersion/lLease. */
const CLUSTER_FIXTURE_KEYS = [
  '/fixture/a=alpha2@4/v2/l0',
  '/fixture/after-snap=z@18/v1/l0',
  '/fixture/b=beta@3/v1/l0',
  `/fixture/leased=held@5/v1/l${CLUSTER_FIXTURE_LEASE}`,
  ...Array.from({ length: 11 }, (_, i) => `/fixture/n${i + 1}=v${i + 1}@${6 + i}/v1/l0`).sort(),
].sort();

let dir: string;
beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'lichen-format-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the 0.1 fixture (starting a member writes to its directory). */
function fixtureCopy(): string {
  const dataDir = join(dir, 'n1');
  cpSync(FIXTURE, dataDir, { recursive: true, filter: (path) => !path.endsWith('README.md') });
  return dataDir;
}

function config(dataDir: string, name = 'n1') {
  return defaultNodeConfig({
    name,
    dataDir,
    listenClient: '127.0.0.1:0',
    listenPeer: '127.0.0.1:0',
    listenHttp: '',
    tickMs: 10,
    logLevel: 'error',
  });
}

function writeIdentity(dataDir: string, change: (identity: Record<string, unknown>) => void): void {
  const path = join(dataDir, 'member.json');
  const identity = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  change(identity);
  writeFileSync(path, JSON.stringify(identity));
}

function snapshotOf(dataDir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dataDir, { recursive: true }) as string[]) {
    try {
      files[name] = readFileSync(join(dataDir, name)).toString('hex');
    } catch {
      files[name] = 'directory';
    }
  }
  return files;
}

describe('data directory formats', () => {
  it('a data directory written by lichen 0.1 starts and serves its keys, lease and user', async () => {
    const dataDir = fixtureCopy();
    const node = await startNode(config(dataDir), createSilentLogger());
    const client = new LichenClient({ endpoints: [node.addresses.client], timeoutMs: 10_000 });
    try {
      const { kvs } = await client.get('/fixture/', { prefix: true });
      const found = kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}/v${kv.version}/l${kv.lease}`);
      assert.deepEqual(found, ['/fixture/a=alpha2@4/v2/l0', '/fixture/b=beta@3/v1/l0', `/fixture/leased=held@5/v1/l${FIXTURE_LEASE}`]);
      assert.deepEqual((await client.leases()).ids, [BigInt(FIXTURE_LEASE)]);
      assert.deepEqual(node.node.auth.userNames(), ['fixture-user']);
      assert.ok(node.node.auth.hasRole('fixture-user', 'fixture-role'));
      // It takes writes, and they survive a restart like any others.
      await client.put('/fixture/c', 'gamma');
    } finally {
      client.close();
      await node.close();
    }
    const again = await startNode(config(dataDir), createSilentLogger());
    const reader = new LichenClient({ endpoints: [again.addresses.client], timeoutMs: 10_000 });
    try {
      assert.equal((await reader.getValue('/fixture/c'))?.toString(), 'gamma');
      assert.equal(JSON.parse(readFileSync(join(dataDir, 'member.json'), 'utf8')).version, DATA_DIR_FORMAT);
    } finally {
      reader.close();
      await again.close();
    }
  });

  it('the directories of a 3-member lichen 0.1 cluster with snapshots taken open with their keys, lease, user and log', async () => {
    for (const name of ['n1', 'n2', 'n3']) {
      const dataDir = join(dir, name);
      cpSync(join(CLUSTER_FIXTURE, name), dataDir, { recursive: true });
      const state = await openNodeState(config(dataDir, name), createSilentLogger());
      try {
        const { machine, raftLog, snapshotIndex } = state.storage;
        const { kvs } = machine.mvcc.range({ key: Buffer.from('/fixture/'), rangeEnd: Buffer.from('/fixture0') });
        const found = kvs.map((kv) => `${Buffer.from(kv.key)}=${Buffer.from(kv.value)}@${kv.modRevision}/v${kv.version}/l${kv.lease}`);
        assert.deepEqual(found.sort(), CLUSTER_FIXTURE_KEYS, name);
        assert.equal(machine.mvcc.currentRevision, 19, name);
        assert.deepEqual(machine.mvcc.leases().map((l) => l.ID), [CLUSTER_FIXTURE_LEASE], name);
        assert.deepEqual(machine.auth.userNames(), ['fixture-user'], name);
        assert.ok(machine.auth.hasRole('fixture-user', 'fixture-role'), name);
        assert.ok(snapshotIndex > 1, `${name}: a snapshot was taken (snapshot index ${snapshotIndex})`);
        assert.equal(raftLog.lastIndex(), 28, name);
        assert.equal(state.storage.members.list().length, 3, name);
      } finally {
        await state.disk.close();
      }
    }
  });

  it('a member of the 3-member lichen 0.1 cluster started alone serves its keys to serializable reads', async () => {
    const dataDir = join(dir, 'n2');
    cpSync(join(CLUSTER_FIXTURE, 'n2'), dataDir, { recursive: true });
    const node = await startNode(config(dataDir, 'n2'), createSilentLogger());
    const client = new LichenClient({ endpoints: [node.addresses.client], timeoutMs: 10_000 });
    try {
      const { kvs } = await client.get('/fixture/', { prefix: true, serializable: true });
      const found = kvs.map((kv) => `${kv.key}=${kv.value}@${kv.modRevision}/v${kv.version}/l${kv.lease}`);
      assert.deepEqual(found.sort(), CLUSTER_FIXTURE_KEYS);
    } finally {
      client.close();
      await node.close();
    }
  });

  it('the upgrade to format 2 leaves lichen 0.1 files untouched until member.json says so; one cut short is done again on the next start', async () => {
    const dataDir = join(dir, 'n3');
    cpSync(join(CLUSTER_FIXTURE, 'n3'), dataDir, { recursive: true });
    const format1 = (): Record<string, string> => {
      const files = snapshotOf(dataDir);
      return Object.fromEntries(Object.entries(files).filter(([name]) => name === 'member.json' || /^(wal|snap)\//.test(name)));
    };
    const before = format1();
    // Everything before member.json is written, then a crash; and a leftover of an earlier attempt.
    await upgradeFormat1(dataDir, 'lmdb', createSilentLogger(), async () => undefined);
    mkdirSync(join(dataDir, 'log.tmp'));
    writeFileSync(join(dataDir, 'log.tmp', '0000000000000001.wal'), 'half-written');
    assert.deepEqual(format1(), before, 'member.json, wal/ and snap/ are as lichen 0.1 left them');
    assert.ok(readdirSync(join(dataDir, 'snapshots', '00000001')).length === 3);

    const state = await openNodeState(config(dataDir, 'n3'), createSilentLogger());
    try {
      const { kvs } = state.storage.machine.mvcc.range({ key: Buffer.from('/fixture/'), rangeEnd: Buffer.from('/fixture0') });
      assert.equal(kvs.length, CLUSTER_FIXTURE_KEYS.length);
      assert.equal(state.storage.raftLog.lastIndex(), 28);
    } finally {
      await state.disk.close();
    }
    assert.equal(JSON.parse(readFileSync(join(dataDir, 'member.json'), 'utf8')).version, DATA_DIR_FORMAT);
    assert.deepEqual(readdirSync(dataDir).sort(), ['engine', 'log', 'member.json', 'snapshots'], 'lichen 0.1 files go once the upgrade is recorded');
  });

  it('a member.json without a format is a lichen 0.1 directory: it opens, and the format is recorded', async () => {
    const dataDir = fixtureCopy();
    writeIdentity(dataDir, (identity) => delete identity['version']);
    const state = await openNodeState(config(dataDir), createSilentLogger());
    try {
      assert.equal(state.identity.memberId, 786863484097363);
    } finally {
      await state.disk.close();
    }
    assert.equal(JSON.parse(readFileSync(join(dataDir, 'member.json'), 'utf8')).version, DATA_DIR_FORMAT);
    assert.deepEqual(readdirSync(dataDir).filter((name) => name.endsWith('.tmp')), [], 'no temporary file is left behind');
  });

  it('a format-2 directory (its snapshots all whole) is recorded as format 3 and serves its keys', async () => {
    const dataDir = fixtureCopy();
    const upgraded = await startNode(config(dataDir), createSilentLogger());
    await upgraded.close();
    writeIdentity(dataDir, (identity) => (identity['version'] = 2));
    const node = await startNode(config(dataDir), createSilentLogger());
    const client = new LichenClient({ endpoints: [node.addresses.client], timeoutMs: 10_000 });
    try {
      assert.equal((await client.getValue('/fixture/a'))?.toString(), 'alpha2');
      assert.equal(JSON.parse(readFileSync(join(dataDir, 'member.json'), 'utf8')).version, 3);
    } finally {
      client.close();
      await node.close();
    }
  });

  it('a directory of a newer format is refused, untouched, with the way forward', async () => {
    const dataDir = fixtureCopy();
    writeIdentity(dataDir, (identity) => (identity['version'] = DATA_DIR_FORMAT + 1));
    const before = snapshotOf(dataDir);
    await assert.rejects(
      openNodeState(config(dataDir), createSilentLogger()),
      (error: Error) =>
        error.message.includes(`has format ${DATA_DIR_FORMAT + 1}, written by a newer lichen; this lichen reads format ${DATA_DIR_FORMAT}`) &&
        error.message.includes('Start it with the lichen release that wrote it (or a newer one)'),
    );
    assert.deepEqual(snapshotOf(dataDir), before);
  });

  it('a directory of an unknown format is refused, untouched', async () => {
    const dataDir = fixtureCopy();
    for (const version of ['1', 0, -3, 1.5, null]) {
      writeIdentity(dataDir, (identity) => (identity['version'] = version));
      const before = snapshotOf(dataDir);
      await assert.rejects(openNodeState(config(dataDir), createSilentLogger()), new RegExp(`names an unknown format ${JSON.stringify(version)?.replace('.', '\\.')} in`));
      assert.deepEqual(snapshotOf(dataDir), before, `format ${JSON.stringify(version)}`);
    }
    // Lichen's files without member.json: not written by lichen, or damaged.
    const bare = join(dir, 'bare');
    mkdirSync(join(bare, 'wal'), { recursive: true });
    await assert.rejects(openNodeState(config(bare), createSilentLogger()), /holds wal\/ but no member\.json, so its format is unknown/);
    assert.deepEqual(readdirSync(bare), ['wal']);
  });
});
