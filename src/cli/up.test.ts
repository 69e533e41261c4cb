import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adviceAfterExit, choosePlan, planCluster, readClusterFile, recordPid, type ClusterFile } from './up.js';
import { chooseLeader, UP_LEADER_POLL_MS, watchLeader, type LeaderView, type WatchedNode } from './up-leader.js';

test('node i listens on base+10i (client), +1 (peer) and +2 (http)', () => {
  assert.deepEqual(planCluster(3, 2379), [
    { name: 'node1', client: '127.0.0.1:2379', peer: '127.0.0.1:2380', http: '127.0.0.1:2381' },
    { name: 'node2', client: '127.0.0.1:2389', peer: '127.0.0.1:2390', http: '127.0.0.1:2391' },
    { name: 'node3', client: '127.0.0.1:2399', peer: '127.0.0.1:2400', http: '127.0.0.1:2401' },
  ]);
});

test('a new dir gets 3 nodes on port 2379 unless told otherwise', () => {
  assert.deepEqual(choosePlan({ nodeCount: undefined, basePort: undefined, existing: undefined }), planCluster(3, 2379));
  assert.deepEqual(choosePlan({ nodeCount: 5, basePort: 3000, existing: undefined }), planCluster(5, 3000));
});

test('a restart reuses the names and ports recorded in cluster.json unless --base-port moves them', () => {
  const existing: ClusterFile = {
    nodes: [
      { name: 'node1', client: '127.0.0.1:5000', peer: '127.0.0.1:5001', http: '127.0.0.1:5002', pid: 11 },
      { name: 'node2', client: '127.0.0.1:5010', peer: '127.0.0.1:5011', http: '127.0.0.1:5012', pid: 12 },
    ],
  };
  assert.deepEqual(choosePlan({ nodeCount: undefined, basePort: undefined, existing }), [
    { name: 'node1', client: '127.0.0.1:5000', peer: '127.0.0.1:5001', http: '127.0.0.1:5002' },
    { name: 'node2', client: '127.0.0.1:5010', peer: '127.0.0.1:5011', http: '127.0.0.1:5012' },
  ]);
  assert.deepEqual(choosePlan({ nodeCount: 2, basePort: 6000, existing }), planCluster(2, 6000));
  assert.throws(() => choosePlan({ nodeCount: 3, basePort: undefined, existing }), /--nodes 3 does not match the 2-node cluster recorded in cluster.json/);
});

test('cluster.json is read back, and a damaged one is a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-up-'));
  try {
    assert.equal(readClusterFile(dir), undefined);
    const file: ClusterFile = { nodes: [{ name: 'node1', client: 'h:1', peer: 'h:2', http: 'h:3', pid: null }] };
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify(file));
    assert.deepEqual(readClusterFile(dir), file);
    writeFileSync(join(dir, 'cluster.json'), '{"nodes": [{"name": 1}]}');
    assert.throws(() => readClusterFile(dir), /cluster.json does not describe a cluster/);
    writeFileSync(join(dir, 'cluster.json'), '{');
    assert.throws(() => readClusterFile(dir), /cluster.json is not valid JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a restarted node\'s pid is recorded in cluster.json, which keeps the rest (a TLS cluster stays one)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lichen-up-'));
  try {
    const node = (name: string, pid: number) => ({ name, client: 'h:1', peer: 'h:2', http: 'h:3', pid });
    writeFileSync(join(dir, 'cluster.json'), JSON.stringify({ nodes: [node('node1', 10), node('node2', 11)], tls: true }));
    recordPid(dir, 'node2', 12);
    assert.deepEqual(readClusterFile(dir), { nodes: [node('node1', 10), node('node2', 12)], tls: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const leaderOf = (name: string, term: number): LeaderView => ({ id: `00000000000000a${name.at(-1)}`, name, term, clientAddress: '' });
const running = (names: string[]) => planCluster(3, 2379).map((p) => ({ ...p, running: names.includes(p.name) }));

test('after a node exits: whether a leader is to be elected, and how to restart it', () => {
  const context = { leader: leaderOf('node1', 2), interactive: true, dir: '/d' };
  assert.deepEqual(adviceAfterExit('node1', running(['node2', 'node3']), context), [
    'node1 was the leader: the others elect a new one',
    'press r and Enter to restart node1',
  ]);
  assert.deepEqual(adviceAfterExit('node2', running(['node1', 'node3']), context), ['press r and Enter to restart node2']);
  assert.deepEqual(adviceAfterExit('node3', running(['node1']), { ...context, interactive: false }), [
    'only 1 of 3 nodes run: no leader can be elected until 2 run',
    'to restart node2, node3: a line "r" on the standard input of this lichen up, or stop it and run it again on /d',
  ]);
});

test('the leader is the one named in the highest term, unless its node has exited', () => {
  const nodes = running(['node2', 'node3']);
  assert.deepEqual(chooseLeader([leaderOf('node2', 3), undefined, leaderOf('node3', 2)], nodes), leaderOf('node2', 3));
  // The survivors still name the crashed leader until their election timeout: no leader yet.
  assert.equal(chooseLeader([leaderOf('node1', 2), leaderOf('node1', 2)], nodes), undefined);
  assert.equal(chooseLeader([undefined, undefined], nodes), undefined);
  // A node this `up` does not run (added by `up --add` elsewhere) counts as running.
  assert.deepEqual(chooseLeader([leaderOf('node4', 5)], nodes), leaderOf('node4', 5));
});

test('the leader watch reports the first leader, then only changes, and once that none was seen', async () => {
  let now = 0;
  const nodes: WatchedNode[] = running(['node1', 'node2', 'node3']);
  // What every running node answers, round by round; the last round repeats.
  const rounds: (LeaderView | undefined)[] = [undefined, undefined, leaderOf('node1', 2), leaderOf('node1', 2), leaderOf('node1', 2), leaderOf('node3', 3)];
  let round = 0;
  const printed: string[] = [];
  const stop = new AbortController();
  await watchLeader(
    {
      nodes: () => nodes,
      signal: stop.signal,
      waitMs: UP_LEADER_POLL_MS,
      onLeader: (view) => printed.push(`leader ${view.name} term ${view.term}`),
      onNoLeader: () => printed.push(`no leader at ${now} ms`),
    },
    {
      ask: async () => rounds[Math.min(round, rounds.length - 1)],
      now: () => now,
      sleep: async (ms) => {
        now += ms;
        round++;
        if (round === 4) nodes[0] = { ...nodes[0]!, running: false }; // node1 crashes; the others still name it
        if (round === 8) stop.abort();
      },
    },
  );
  assert.deepEqual(printed, [`no leader at ${UP_LEADER_POLL_MS} ms`, 'leader node1 term 2', 'leader node3 term 3']);
});
