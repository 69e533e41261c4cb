import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { choosePlan, planCluster, readClusterFile, type ClusterFile } from './up.js';

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
