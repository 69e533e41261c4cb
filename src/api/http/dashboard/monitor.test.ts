import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatId } from '../../../ids.js';
import { ClusterMonitor, type ClusterEvent } from './monitor.js';
import type { DashboardSource, MemberAddress, MemberFacts, MemberReport } from './report.js';

const NOW_MS = 1_000_000_000;

const id = (n: number): string => formatId(n);

function facts(n: number, role: MemberFacts['role'], appliedIndex: number, term = 3): MemberFacts {
  return { id: id(n), name: `m${n}`, role, term, leader: id(1), commitIndex: appliedIndex, appliedIndex, revision: 10, dbSize: 100, dbSizeInUse: 50, version: '3.5.0', errors: [] };
}

function report(member: MemberFacts, second: number, writes: number[]): MemberReport {
  const zeros = writes.map(() => 0);
  return {
    member,
    second,
    samples: { from: second - writes.length, reads: zeros, writes, readP50: zeros, readP99: zeros, writeP50: writes.map(() => 1), writeP99: writes.map(() => 2) },
    heat: [{ second: second - 1, cells: [['/a/b/', 0, writes.at(-1) ?? 0]], other: [0, 0] }],
  };
}

function setup() {
  const addresses: MemberAddress[] = [
    { id: id(1), name: 'm1', httpAddress: '127.0.0.1:1', isLearner: false },
    { id: id(2), name: 'm2', httpAddress: '127.0.0.1:2', isLearner: false },
    { id: id(3), name: 'm3', httpAddress: '127.0.0.1:3', isLearner: false },
  ];
  const peers = new Map<string, MemberReport | Error>();
  const asked: Array<{ address: string; since: number; authorization?: string }> = [];
  const source: DashboardSource = {
    memberId: id(1),
    members: () => addresses,
    access: () => ({ admin: true, mayRead: () => true }),
    report: async (since) => report(facts(1, 'leader', 100), NOW_MS / 1000, since === 0 ? [5, 6] : [7]),
  };
  const monitor = new ClusterMonitor({
    source,
    nowMs: () => NOW_MS,
    setTimer: () => ({ cancel: () => {} }),
    fetchReport: async (address, since, _heatSince, _timeoutMs, authorization) => {
      asked.push({ address, since, ...(authorization ? { authorization } : {}) });
      const answer = peers.get(address)!;
      if (answer instanceof Error) throw answer;
      return answer;
    },
  });
  return { monitor, peers, asked, addresses };
}

test('a round shows every member with its role and lag behind the leader, and a member that does not answer as down', async () => {
  const { monitor, peers } = setup();
  peers.set('127.0.0.1:2', report(facts(2, 'follower', 97), NOW_MS / 1000, [1, 2]));
  peers.set('127.0.0.1:3', Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } }));
  const event = await monitor.gather();
  assert.equal(event.leader, id(1));
  const view = Object.fromEntries(event.members.map((m) => [m.name, m]));
  assert.equal(view['m1']!.state, 'up');
  assert.equal(view['m1']!.lag, 0);
  assert.equal(view['m2']!.lag, 3);
  assert.equal(view['m3']!.state, 'down');
  assert.equal(view['m3']!.error, 'ECONNREFUSED');
  assert.equal(view['m3']!.lag, undefined);
  assert.deepEqual(event.samples[id(2)]!.writes, [1, 2]);
  assert.equal(event.heat.length, 2, 'one heat column from each member that answered');
});

test('later rounds ask each member only for what is new, and pages joining late get the whole history', async () => {
  const { monitor, peers, asked } = setup();
  peers.set('127.0.0.1:2', report(facts(2, 'follower', 100), NOW_MS / 1000, [1, 2]));
  peers.set('127.0.0.1:3', report(facts(3, 'follower', 100), NOW_MS / 1000, [3, 4]));
  await monitor.gather();
  asked.length = 0;
  peers.set('127.0.0.1:2', report(facts(2, 'follower', 100), NOW_MS / 1000 + 1, [9]));
  const tick = await monitor.gather();
  assert.deepEqual(asked.map((a) => a.since).sort(), [NOW_MS / 1000 - 1, NOW_MS / 1000 - 1]);
  assert.deepEqual(tick.samples[id(2)]!.writes, [9]);

  const received: Array<{ kind: string; event: ClusterEvent }> = [];
  monitor.subscribe((kind, event) => received.push({ kind, event }));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(received[0]!.kind, 'history');
  assert.deepEqual(received[0]!.event.samples[id(2)]!.writes, [1, 2, 9], 'the history holds every second received');
  monitor.close();
});

test('the leader is the one in the highest term when two members claim it', async () => {
  const { monitor, peers } = setup();
  peers.set('127.0.0.1:2', report(facts(2, 'leader', 100, 4), NOW_MS / 1000, [1]));
  peers.set('127.0.0.1:3', report(facts(3, 'follower', 100, 4), NOW_MS / 1000, [1]));
  const event = await monitor.gather();
  assert.equal(event.leader, id(2));
});

test('pages whose user may not see the heat get the events without it; the others are asked with a page that may', async () => {
  const { monitor, peers, asked } = setup();
  peers.set('127.0.0.1:2', report(facts(2, 'follower', 100), NOW_MS / 1000, [1]));
  peers.set('127.0.0.1:3', report(facts(3, 'follower', 100), NOW_MS / 1000, [1]));
  const received = new Map<string, ClusterEvent>();
  const rootMayRead = { value: true };
  monitor.subscribe((_kind, event) => received.set('root', event), { seesHeat: () => rootMayRead.value, authorization: 'root-token' });
  monitor.subscribe((_kind, _event, json) => received.set('alice', JSON.parse(json) as ClusterEvent), { seesHeat: () => false, authorization: 'alice-token' });
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual([received.get('alice')!.heat, received.get('alice')!.heatHidden], [[], true]);
  assert.deepEqual(received.get('alice')!.members.length, 3, 'everything else is the same');
  assert.equal(received.get('root')!.heat.length, 3);
  assert.equal(received.get('root')!.heatHidden, undefined);
  assert.deepEqual(new Set(asked.map((a) => a.authorization)), new Set(['root-token']), "the peers are asked with root's credentials, never alice's");

  rootMayRead.value = false; // root's role was revoked while its page is open
  asked.length = 0;
  await monitor.gather();
  assert.deepEqual(new Set(asked.map((a) => a.authorization)), new Set([undefined]));
  monitor.close();
});
