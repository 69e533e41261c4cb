// A three-member group of real replicas in one process: in-memory WALs that lose unflushed
// writes in a crash, the in-memory transport, the memory engine under the real MVCC and auth
// stores, and one virtual clock. Time moves only when a test advances it; nothing sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine } from '../engine/index.js';
import { createSilentLogger } from '../log.js';
import { Counter, Histogram } from '../metrics.js';
import { ConfChangeType, MemoryStorage, type Snapshot } from '../raft/index.js';
import { MemoryNetwork, MemoryTransport } from '../transport/index.js';
import { MemberTable, encodeJson, type Member } from './members.js';
import { MemoryLog, MemorySnapshots, TEST_REPLICA_CONFIG } from './memory-storage.js';
import { recoverStorage } from './recovery.js';
import { Replica, type ReplicaOptions } from './replica.js';
import type { ReplicaConfig } from './types.js';
import { decodeSnapshotData, encodeSnapshotData } from './snapshot-data.js';
import { KvStateMachine } from './state-machine.js';
import type { ReplicaStorage } from './storage.js';
import { VirtualEnvironment } from './virtual-environment.js';
import { formatId } from '../ids.js';
import { DiskFullError, ErrorCode, isDiskFull, isLichenError } from '../errors.js';

const TICK_MS = 100;
const CLUSTER_ID = 7;

// The commit a leader holds back for followers (2 ms) is on here: its flush timer is exercised too.
const CONFIG: ReplicaConfig = { ...TEST_REPLICA_CONFIG, tickMs: TICK_MS, followerCommitDelayMs: 2 };

const bytes = (text: string): Uint8Array => Buffer.from(text);
const peerAddress = (id: number): string => `member-${id}:1`;

/**
 * A member's engine: the memory engine, whose writes survive a crash only once it synced (as an
 * engine file after power loss). A test may hold its syncs back, as a slow disk would.
 */
class DiskEngine extends MemoryEngine {
  /** The engine's export as of its last sync. */
  private durable: Uint8Array[] = [];
  private held: Array<() => void> | undefined;
  syncs = 0;
  /** Set: every write transaction throws it (lmdb-js on a full disk); the memory engine commits as a batch ends. */
  commitError: Error | undefined;

  override batch<T>(fn: () => T): T {
    if (this.commitError) throw this.commitError;
    return super.batch(fn);
  }

  override sync(): Promise<void> {
    const image = [...this.export()];
    return new Promise((resolve) => {
      const done = (): void => {
        this.durable = image;
        this.syncs++;
        resolve();
      };
      if (this.held) this.held.push(done);
      else done();
    });
  }

  holdSyncs(): void {
    this.held ??= [];
  }

  releaseSyncs(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const done of held) done();
  }

  /** Loses what was written since the last sync; syncs in flight never complete. */
  crash(): void {
    this.held = undefined;
    this.import(this.durable);
  }
}

/** One member's disk: what survives when its process crashes. */
interface Disk {
  wal: MemoryLog;
  snapshots: MemorySnapshots;
  engine: DiskEngine;
}

class Group {
  readonly environment = new VirtualEnvironment(1);
  readonly network = new MemoryNetwork();
  readonly disks = new Map<number, Disk>();
  readonly replicas = new Map<number, Replica>();
  /** Each member's metrics, as its replica records them. */
  readonly metrics = new Map<number, ReplicaOptions['metrics']>();
  private readonly transports = new Map<number, MemoryTransport>();

  constructor(
    private readonly config: Partial<ReplicaConfig> = {},
    private readonly options: Pick<ReplicaOptions, 'memberNoSpace'> = {},
  ) {}

  /** Creates members `ids` as a new cluster (the first snapshot holds the membership) and starts them. */
  static async bootstrap(ids: number[], config: Partial<ReplicaConfig> = {}, options: Pick<ReplicaOptions, 'memberNoSpace'> = {}): Promise<Group> {
    const group = new Group(config, options);
    const members = new MemberTable();
    for (const id of ids) {
      members.applyConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: encodeJson({ name: `m${id}`, peerAddress: peerAddress(id) }) });
    }
    for (const id of ids) {
      const disk: Disk = { wal: new MemoryLog(), snapshots: new MemorySnapshots(), engine: new DiskEngine() };
      const first: Snapshot = { metadata: { index: 1, term: 1, conf: { voters: ids, learners: [] } }, data: encodeSnapshotData(members, disk.engine.export()) };
      await disk.snapshots.save(first);
      await disk.wal.saveSnapshotMarker(first.metadata);
      await disk.wal.save({ hardState: { term: 1, vote: 0, commit: 1 }, entries: [] });
      group.disks.set(id, disk);
      await group.start(id);
    }
    return group;
  }

  /** Starts member `id` from what its disk holds (as a process restarting on its data directory). */
  async start(id: number, joined?: { catchUpIndex: number; members: Member[] }): Promise<Replica> {
    const disk = this.disks.get(id)!;
    const machine = new KvStateMachine(disk.engine);
    const log = disk.wal.recover();
    const storage: ReplicaStorage = disk.snapshots.latest
      ? recoverStorage({ wal: disk.wal, snapshots: disk.snapshots, machine, snapshot: disk.snapshots.latest, log })
      : joinerStorage(disk, machine, joined!.members);
    let replica: Replica | undefined;
    const histogram = (name: string, labelNames: string[] = []): Histogram => new Histogram({ name, help: 'test', labelNames, registers: [] });
    const metrics: ReplicaOptions['metrics'] = {
      walFsyncSeconds: histogram('wal_fsync_seconds'),
      raftLeaderChangesTotal: new Counter({ name: 'leader_changes', help: 'test', registers: [] }),
      raftProposalsTotal: new Counter({ name: 'proposals', help: 'test', labelNames: ['result'], registers: [] }),
      applySeconds: histogram('apply_seconds'),
      backendCommitSeconds: histogram('backend_commit_seconds'),
      proposalCommitSeconds: histogram('proposal_commit_seconds'),
      peerRoundTripSeconds: histogram('peer_round_trip_seconds', ['To']) as Histogram<'To'>,
    };
    this.metrics.set(id, metrics);
    const transport = new MemoryTransport({
      network: this.network,
      id,
      clusterId: CLUSTER_ID,
      listen: { host: `member-${id}`, port: 1 },
      onMessage: (m) => replica?.receive(m),
      onUnreachable: (peer) => replica?.reportUnreachable(peer),
      onSnapshotSent: (peer, ok) => replica?.reportSnapshot(peer, ok),
    });
    replica = new Replica({
      memberId: id,
      clusterId: CLUSTER_ID,
      storage,
      joined,
      config: { ...CONFIG, ...this.config, name: `m${id}` },
      logger: createSilentLogger(),
      metrics,
      publicAddresses: { client: `client-${id}`, http: '' },
      peers: transport,
      askMembership: async (client) => {
        const other = [...this.replicas.values()].find((r) => r.member(r.memberId)?.clientAddress === client);
        if (!other) throw new Error(`nobody answers at ${client}`);
        return { appliedIndex: other.appliedIndex, memberIds: other.members.map((m) => m.id) };
      },
      environment: this.environment,
      lostDataRemedy: 'Remove it and add it again.',
      ...this.options,
    });
    replica.syncPeers();
    await transport.start();
    replica.start();
    this.replicas.set(id, replica);
    this.transports.set(id, transport);
    return replica;
  }

  /** Adds member `id` to the disks with nothing on them (a new machine that joins). */
  addDisk(id: number): void {
    this.disks.set(id, { wal: new MemoryLog(), snapshots: new MemorySnapshots(), engine: new DiskEngine() });
  }

  /** The process of member `id` dies: its loop and network go, and its disk keeps only what was flushed. */
  crash(id: number): void {
    void this.replicas.get(id)!.stop();
    void this.transports.get(id)!.close();
    this.replicas.delete(id);
    this.transports.delete(id);
    this.disks.get(id)!.wal.crash();
    this.disks.get(id)!.engine.crash();
  }

  replica(id: number): Replica {
    const replica = this.replicas.get(id);
    assert.ok(replica, `member ${id} runs`);
    return replica;
  }

  leader(): Replica | undefined {
    return [...this.replicas.values()].find((r) => r.isLeader());
  }

  /** Moves virtual time a tick at a time, letting messages and Readies run in between. */
  async run(ms: number): Promise<void> {
    for (let elapsed = 0; elapsed < ms; elapsed += TICK_MS) {
      this.environment.advance(TICK_MS);
      await settle();
    }
  }

  /** Runs until `done` holds; fails after `withinMs` of virtual time. */
  async until(done: () => boolean, withinMs: number, what: string): Promise<void> {
    for (let elapsed = 0; !done(); elapsed += TICK_MS) {
      assert.ok(elapsed < withinMs, `${what}: not within ${withinMs} ms of virtual time`);
      await this.run(TICK_MS);
    }
  }

  /** Runs the group while `work` is pending (a proposal, a read, a transfer) and returns its result. */
  async drive<T>(work: Promise<T>, withinMs = 10_000): Promise<T> {
    let settled = false;
    const watched = work.finally(() => (settled = true));
    watched.catch(() => undefined);
    await this.until(() => settled, withinMs, 'the request');
    return watched;
  }

  async elect(): Promise<Replica> {
    await this.until(() => this.leader() !== undefined, 10_000, 'a leader');
    return this.leader()!;
  }

  async stop(): Promise<void> {
    for (const id of [...this.replicas.keys()]) {
      await this.replicas.get(id)!.close();
      await this.transports.get(id)!.close();
    }
  }
}

/** A member that joined: an empty log, and the members it was told of, until a snapshot comes. */
function joinerStorage(disk: Disk, machine: KvStateMachine, members: Member[]): ReplicaStorage {
  return {
    wal: disk.wal,
    snapshots: disk.snapshots,
    raftLog: new MemoryStorage(),
    machine,
    members: MemberTable.fromJSON({ members, removed: [] }),
    snapshotIndex: 0,
  };
}

/** Lets delivered messages and the loops' Readies run (the in-memory network delivers on the next turn). */
async function settle(): Promise<void> {
  for (let turn = 0; turn < 8; turn++) await new Promise((resolve) => setImmediate(resolve));
}

function valueAt(replica: Replica, key: string): string | undefined {
  const kv = replica.store.range({ key: bytes(key) }).kvs[0];
  return kv && Buffer.from(kv.value).toString();
}

test('three replicas elect a leader; a write commits on all of them and a linearizable read on a follower sees it', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  const result = await group.drive(leader.propose({ type: 'put', request: { key: bytes('k'), value: bytes('v1') } }));
  assert.ok(result.revision > 1);
  const follower = [...group.replicas.values()].find((r) => r !== leader)!;
  await group.drive(follower.linearizableBarrier());
  assert.equal(valueAt(follower, 'k'), 'v1');
  for (const replica of group.replicas.values()) assert.equal(replica.leaderId, leader.memberId);
  await group.stop();
});

test('the per-stage histograms see a write (fsync, apply, engine commit, proposal to commit) and a read round (each peer\'s round trip)', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  const follower = [...group.replicas.values()].find((r) => r !== leader)!;
  const before = await group.metrics.get(follower.memberId)!.proposalCommitSeconds!.get();
  // The leader's appends are lost for 300 ms of virtual time: the follower's proposal waits that long for its commit.
  group.network.setFilter((m) => m.type !== 'App');
  const proposed = follower.propose({ type: 'put', request: { key: bytes('k'), value: bytes('v1') } });
  await group.run(300);
  group.network.setFilter(null);
  await group.drive(proposed);
  await group.drive(leader.linearizableBarrier());
  const count = async (histogram: Histogram<string> | undefined, labels: Record<string, string> = {}): Promise<number> =>
    (await histogram!.get()).values.find((v) => v.metricName?.endsWith('_count') && Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? 0;
  const sum = async (histogram: Histogram<string> | undefined): Promise<number> => (await histogram!.get()).values.find((v) => v.metricName?.endsWith('_sum'))!.value;
  const mine = group.metrics.get(follower.memberId)!;
  assert.equal(await count(mine.proposalCommitSeconds) - (before.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0), 1, 'the follower\'s own proposal');
  assert.ok((await sum(mine.proposalCommitSeconds)) >= 0.3, 'its way to commit took the virtual time the appends were lost for');
  for (const replica of group.replicas.values()) {
    const metrics = group.metrics.get(replica.memberId)!;
    assert.ok((await count(metrics.walFsyncSeconds)) >= 1, `member ${replica.memberId} flushed its WAL`);
    assert.ok((await count(metrics.applySeconds)) >= 1, `member ${replica.memberId} applied`);
    assert.ok((await count(metrics.backendCommitSeconds)) >= 1, `member ${replica.memberId} committed its engine`);
  }
  for (const peer of group.replicas.values()) {
    if (peer === leader) continue;
    assert.ok((await count(group.metrics.get(leader.memberId)!.peerRoundTripSeconds, { To: formatId(peer.memberId) })) >= 1, `the leader timed a round trip to ${peer.memberId}`);
  }
  await group.stop();
});

/** An engine that counts its writes as waiting for a commit, as lmdb and leveldb keep them. */
class DeferringEngine extends DiskEngine {
  waiting = 0;
  commits = 0;

  override get uncommittedOps(): number {
    return this.waiting;
  }

  override write(ops: Parameters<MemoryEngine['write']>[0]): void {
    super.write(ops);
    this.waiting += ops.length;
  }

  override commit(): void {
    if (this.waiting > 0) this.commits++;
    this.waiting = 0;
  }
}

test('applied writes wait in the engine until the next tick commits them, and the commit is timed', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const engines = new Map([...group.replicas.keys()].map((id) => [id, new DeferringEngine()]));
  // The members restart at once on engines that defer commits (their state comes back from their WALs).
  for (const [id, engine] of engines) {
    group.crash(id);
    group.disks.get(id)!.engine = engine;
    await group.start(id);
  }
  const newLeader = await group.elect();
  await group.drive(newLeader.propose({ type: 'put', request: { key: bytes('k'), value: bytes('v1') } }));
  const engine = engines.get(newLeader.memberId)!;
  assert.ok(engine.uncommittedOps > 0, 'the apply left its writes waiting');
  const commitsBefore = engine.commits;
  const timed = async () => (await group.metrics.get(newLeader.memberId)!.backendCommitSeconds!.get()).values.find((v) => v.metricName?.endsWith('_count'))!.value;
  const timedBefore = await timed();
  await group.run(TICK_MS);
  assert.equal(engine.uncommittedOps, 0);
  assert.ok(engine.commits > commitsBefore, 'a tick committed them');
  assert.ok((await timed()) > timedBefore, 'backend_commit_duration_seconds saw the commit');
  await group.stop();
});

test("a group whose NOSPACE alarm is the member's refuses writes past the quota, raises the alarm there, and takes a write as soon as compaction frees space, before a tick measures it", async () => {
  const raised: string[] = [];
  let alarmRaised = false;
  const memberNoSpace = { raised: () => alarmRaised, raise: () => void raised.push('NOSPACE') };
  const group = await Group.bootstrap([1], { quotaBackendBytes: 64 * 1024 }, { memberNoSpace });
  const leader = await group.elect();
  const put = { type: 'put' as const, request: { key: bytes('k'), value: new Uint8Array(8 * 1024) } };
  // History of one key fills the quota (the memory engine counts the bytes it holds).
  let writes = 0;
  while (leader.quotaAdmits(put)) {
    await group.drive(leader.propose(put));
    assert.ok(++writes < 100, 'the quota admitted everything');
  }
  await assert.rejects(leader.propose(put), (error: unknown) => isLichenError(error, ErrorCode.NoSpace));
  assert.deepEqual(raised, ['NOSPACE'], 'the alarm is raised where the member keeps it');
  assert.deepEqual(leader.store.alarms(), [], 'and not in this group');
  alarmRaised = true;
  await assert.rejects(leader.propose({ ...put, request: { key: bytes('small'), value: bytes('1') } }), (error: unknown) => isLichenError(error, ErrorCode.NoSpace));
  // Compaction frees the history. It commits without time moving (one member), so no tick
  // measures the space before the next write.
  const compacted = leader.propose({ type: 'compact', request: { revision: leader.store.currentRevision } });
  await settle();
  await compacted;
  alarmRaised = false;
  await group.drive(leader.propose(put));
  assert.deepEqual(raised, ['NOSPACE']);
  await group.stop();
});

test('a member cut off while the log was compacted catches up from a snapshot the leader sends', async () => {
  const group = await Group.bootstrap([1, 2, 3], { snapshotEntries: 20, snapshotCatchUpEntries: 5 });
  const leader = await group.elect();
  const lagging = [1, 2, 3].find((id) => id !== leader.memberId)!;
  group.network.isolate(lagging);
  for (let i = 0; i < 40; i++) await group.drive(leader.propose({ type: 'put', request: { key: bytes(`k${i}`), value: bytes(`v${i}`) } }));
  await group.until(() => (group.disks.get(leader.memberId)!.snapshots.latest?.metadata.index ?? 0) > 20, 5_000, 'the leader takes a snapshot');
  assert.equal(group.disks.get(lagging)!.snapshots.latest?.metadata.index, 1, 'the lagging member has only the first snapshot');
  group.network.heal();
  await group.until(() => group.replica(lagging).appliedIndex >= leader.appliedIndex, 10_000, 'the lagging member catches up');
  const received = group.disks.get(lagging)!.snapshots.latest!;
  assert.ok(received.metadata.index > 20, `a snapshot from the leader was installed (index ${received.metadata.index})`);
  assert.equal(valueAt(group.replica(lagging), 'k39'), 'v39');
  assert.equal(valueAt(group.replica(lagging), 'k0'), 'v0', 'entries only the snapshot carries are there too');
  assert.notEqual(decodeSnapshotData(received.data).engineChunks, undefined, 'the snapshot sent carries the engine data');
  // The lagging member restarts from the snapshot it received, its engine as synced (or not).
  group.crash(lagging);
  const restarted = await group.start(lagging);
  await group.until(() => valueAt(restarted, 'k39') === 'v39', 10_000, 'the restarted member has every write');
  assert.equal(valueAt(restarted, 'k0'), 'v0');
  await group.stop();
});

test("a member's own snapshot copies nothing: it waits for the engine's sync, names the engine's state, and the data is written only for a peer that needs it", async () => {
  const group = await Group.bootstrap([1, 2, 3], { snapshotEntries: 20, snapshotCatchUpEntries: 5 });
  const leader = await group.elect();
  const disk = group.disks.get(leader.memberId)!;
  const lagging = [1, 2, 3].find((id) => id !== leader.memberId)!;
  group.network.isolate(lagging);
  disk.engine.holdSyncs();
  for (let i = 0; i < 30; i++) await group.drive(leader.propose({ type: 'put', request: { key: bytes(`k${i}`), value: bytes(`v${i}`) } }));
  await group.run(5 * TICK_MS);
  assert.equal(disk.snapshots.latest!.metadata.index, 1, 'no snapshot before the engine made durable what it would name');
  // A crash now loses the engine's writes since its last sync: the log still has every entry.
  group.crash(leader.memberId);
  const restarted = await group.start(leader.memberId);
  await group.until(() => valueAt(restarted, 'k29') === 'v29', 10_000, 'the restarted member replays its log into the engine');
  assert.equal(valueAt(restarted, 'k0'), 'v0');

  const leaderNow = await group.elect();
  const leaderDisk = group.disks.get(leaderNow.memberId)!;
  for (let i = 30; i < 60; i++) await group.drive(leaderNow.propose({ type: 'put', request: { key: bytes(`k${i}`), value: bytes(`v${i}`) } }));
  await group.until(() => (leaderDisk.snapshots.latest?.metadata.index ?? 0) > 20, 5_000, 'the leader takes a snapshot');
  const own = leaderDisk.snapshots.latest!;
  assert.equal(decodeSnapshotData(own.data).engineChunks, undefined, 'its own snapshot holds no copy of the store');
  assert.ok(own.data.byteLength < 1024, `its own snapshot is the member table only (${own.data.byteLength} bytes)`);
  assert.equal(leaderDisk.snapshots.spools.count, 0, 'nothing written for peers while none needs a snapshot');

  group.network.heal();
  await group.until(() => group.replica(lagging).appliedIndex >= leaderNow.appliedIndex, 10_000, 'the lagging member catches up');
  assert.ok(leaderDisk.snapshots.spools.count >= 1, 'the engine data was written for the lagging member');
  assert.equal(valueAt(group.replica(lagging), 'k0'), 'v0');
  assert.equal(valueAt(group.replica(lagging), 'k59'), 'v59');
  // A restart of the leader starts from its reference snapshot and the engine it names.
  group.crash(leaderNow.memberId);
  const again = await group.start(leaderNow.memberId);
  await group.until(() => valueAt(again, 'k59') === 'v59', 10_000, 'the restarted member has every write');
  await group.stop();
});

test('a member added as a learner gets the state from a snapshot, promotes itself, and a removed member stops', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  await group.drive(leader.propose({ type: 'put', request: { key: bytes('before'), value: bytes('join') } }));
  await group.drive(leader.proposeConfChange(ConfChangeType.AddLearner, 4, { name: 'm4', peerAddress: peerAddress(4) }));
  group.addDisk(4);
  const joiner = await group.start(4, { catchUpIndex: leader.raftStatus().commit, members: leader.members });
  await group.until(() => leader.raftStatus().conf.voters.includes(4), 10_000, 'the learner promotes itself');
  assert.equal(joiner.isLearner, false);
  assert.equal(valueAt(joiner, 'before'), 'join');
  assert.ok(group.disks.get(4)!.snapshots.latest, 'the joiner started from a snapshot');

  const removed = [1, 2, 3].find((id) => id !== leader.memberId)!;
  await group.drive(leader.proposeConfChange(ConfChangeType.RemoveNode, removed));
  const halt = await group.drive(group.replica(removed).halted);
  assert.equal(halt.removed, true);
  assert.deepEqual(leader.raftStatus().conf.voters.sort(), [1, 2, 3, 4].filter((id) => id !== removed));
  assert.ok(leader.removedMemberIds.includes(removed));
  await group.stop();
});

test('a member removed while cut off, which never sees its removal, learns it by asking the others once it hears no leader', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  await group.until(() => leader.members.every((m) => m.clientAddress !== ''), 5_000, 'every member publishes its addresses');
  const removed = group.replica([1, 2, 3].find((id) => id !== leader.memberId)!);
  let halt: { removed: boolean; reason: string } | undefined;
  void removed.halted.then((value) => (halt = value));
  group.network.isolate(removed.memberId);
  await group.drive(leader.proposeConfChange(ConfChangeType.RemoveNode, removed.memberId));
  group.network.heal();
  await group.run(2_000);
  assert.equal(halt, undefined, 'not before it has heard no leader for three election timeouts');
  await group.until(() => halt !== undefined, 10_000, 'the removed member learns it');
  assert.equal(halt!.removed, true);
  assert.ok(removed.appliedIndex < leader.appliedIndex, 'it never applied its removal');
  await group.stop();
});

test('leadership moves to the member it is handed to', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  const target = [1, 2, 3].find((id) => id !== leader.memberId)!;
  await group.drive(leader.transferLeadership(target));
  assert.equal(group.replica(target).isLeader(), true);
  assert.equal(leader.isLeader(), false);
  await group.drive(group.replica(target).propose({ type: 'put', request: { key: bytes('after'), value: bytes('transfer') } }));
  await group.stop();
});

test('a lease expires on virtual time: the leader revokes it and its keys go', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  const granted = await group.drive(leader.propose({ type: 'leaseGrant', request: { TTL: 5 } }));
  const id = (granted.response as { ID: number }).ID;
  await group.drive(leader.propose({ type: 'put', request: { key: bytes('leased'), value: bytes('x'), lease: id } }));
  await group.run(4_000);
  assert.equal(valueAt(leader, 'leased'), 'x', 'not before its TTL');
  await group.until(() => valueAt(leader, 'leased') === undefined, 3_000, 'the lease is revoked');
  for (const replica of group.replicas.values()) {
    await group.until(() => replica.store.lease(id) === undefined, 2_000, `member ${replica.memberId} applies the revocation`);
  }
  await group.stop();
});

test('a new leader restarts every lease clock at a full TTL: it cannot know when the old one last heard a keep-alive', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  const granted = await group.drive(leader.propose({ type: 'leaseGrant', request: { TTL: 5 } }));
  const id = (granted.response as { ID: number }).ID;
  await group.drive(leader.propose({ type: 'put', request: { key: bytes('leased'), value: bytes('x'), lease: id } }));
  await group.run(3_000);
  const next = group.replica([1, 2, 3].find((member) => member !== leader.memberId)!);
  await group.drive(leader.transferLeadership(next.memberId));
  await group.run(4_000);
  assert.equal(valueAt(next, 'leased'), 'x', 'over 5 s since the grant, but under 5 s since the new leader took over');
  await group.until(() => valueAt(next, 'leased') === undefined, 2_000, 'the new leader revokes the lease');
  await group.stop();
});

test('a follower that crashes before its write is flushed loses that write, never acknowledged it, and catches up after a restart', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  await group.drive(leader.propose({ type: 'put', request: { key: bytes('k'), value: bytes('v1') } }));
  const slow = [1, 2, 3].find((id) => id !== leader.memberId)!;
  await group.until(() => group.replica(slow).appliedIndex === leader.appliedIndex, 2_000, 'the follower applies the first write');
  const durableBefore = group.disks.get(slow)!.wal.recover().entries.at(-1)!.index;

  group.disks.get(slow)!.wal.holdFlushes();
  const write = await group.drive(leader.propose({ type: 'put', request: { key: bytes('k'), value: bytes('v2') } }));
  const index = leader.appliedIndex;
  assert.ok(index > durableBefore);
  assert.ok((leader.raftStatus().progress!.get(slow)!.match ?? 0) < index, 'no acknowledgement before the flush');

  group.crash(slow);
  assert.ok(group.disks.get(slow)!.wal.recover().entries.at(-1)!.index < index, 'the unflushed entries are gone');
  const restarted = await group.start(slow);
  await group.until(() => restarted.appliedIndex >= index, 5_000, 'the restarted member catches up');
  assert.equal(valueAt(restarted, 'k'), 'v2');
  assert.equal(restarted.store.currentRevision, write.revision);
  await group.stop();
});

test("a follower's proposal reaches the leader and commits while the follower's own fsync is still in flight", async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  await group.drive(leader.propose({ type: 'put', request: { key: bytes('a'), value: bytes('1') } }));
  const slow = [1, 2, 3].find((id) => id !== leader.memberId)!;
  await group.until(() => group.replica(slow).appliedIndex === leader.appliedIndex, 2_000, 'the follower applies the first write');

  // The follower's loop waits for a flush of the leader's next entry, which never completes here.
  const disk = group.disks.get(slow)!.wal;
  disk.holdFlushes();
  const flushesBefore = disk.flushes;
  await group.drive(leader.propose({ type: 'put', request: { key: bytes('b'), value: bytes('2') } }));
  await group.run(TICK_MS);
  assert.equal(disk.flushes, flushesBefore, "the follower's flush is held");

  // Its own client's write does not wait for that flush to reach the leader: the leader and the
  // other follower commit it (before: it sat in the follower's inbox until the flush completed).
  const write = group.replica(slow).propose({ type: 'put', request: { key: bytes('c'), value: bytes('3') } });
  write.catch(() => undefined);
  await group.until(() => valueAt(leader, 'c') === '3', 2_000, "the leader applies the follower's proposal");
  assert.equal(valueAt(group.replica(slow), 'c'), undefined, 'the follower has not applied it yet');

  // The follower answers its client once it has flushed and applied the entry.
  disk.releaseFlushes();
  const applied = await group.drive(write);
  assert.equal(valueAt(group.replica(slow), 'c'), '3');
  assert.equal(applied.revision, group.replica(slow).store.currentRevision);
  await group.stop();
});

test("a membership change refused while another one is still in the leader's write in flight is the caller's to see (not an assertion)", async () => {
  // The leader's loop steps the second change while the first one's entry is being written: the
  // core refuses it with the first one's index, which its persisted raft storage does not hold
  // yet. Reading it there failed an assertion, answered as INTERNAL (src/e2e/membership.test.ts).
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  const wal = group.disks.get(leader.memberId)!.wal;
  wal.holdFlushes();
  const first = leader.proposeConfChange(ConfChangeType.AddLearner, 4, { name: 'm4', peerAddress: peerAddress(4) });
  first.catch(() => undefined);
  await group.run(TICK_MS);
  const second = leader.proposeConfChange(ConfChangeType.AddLearner, 5, { name: 'm5', peerAddress: peerAddress(5) });
  second.catch(() => undefined);
  await group.run(TICK_MS);
  await assert.rejects(second, (error: unknown) => isLichenError(error, ErrorCode.MembershipRefused) && error.details.reason === 'changePending');
  wal.releaseFlushes();
  await group.drive(first);
  assert.ok(leader.members.some((m) => m.id === 4));
  await group.stop();
});

test("a member's own proposal that the snapshot it installs covers is answered at once, with its real result", async () => {
  // The follower's proposal reaches the leader and commits, but nothing comes back to the
  // follower; the leader then compacts its log past it, so the follower catches up from a
  // snapshot and never applies that entry itself. Before, its client waited for the request
  // timeout (src/e2e/membership.test.ts's snapshot test failed so now and then).
  const group = await Group.bootstrap([1, 2, 3], { snapshotEntries: 20, snapshotCatchUpEntries: 5 });
  const leader = await group.elect();
  const [follower, other] = [1, 2, 3].filter((id) => id !== leader.memberId);
  group.network.cut(leader.memberId, follower!);
  group.network.cut(other!, follower!);
  let answer: { revision: number } | Error | undefined;
  group.replica(follower!).propose({ type: 'put', request: { key: bytes('mine'), value: bytes('covered'), prevKv: true } }).then(
    (result) => (answer = result),
    (error: Error) => (answer = error),
  );
  await group.until(() => valueAt(leader, 'mine') !== undefined, 5_000, 'the leader applies the proposal');
  for (let i = 0; i < 40; i++) await group.drive(leader.propose({ type: 'put', request: { key: bytes(`k${i}`), value: bytes(`v${i}`) } }));
  const leaderDisk = group.disks.get(leader.memberId)!;
  await group.until(() => (leaderDisk.snapshots.latest?.metadata.index ?? 0) > 20, 5_000, 'the leader takes a snapshot');
  const startedMs = group.environment.clock.monotonicMs();
  group.network.heal();
  const lagging = group.replica(follower!);
  await group.until(() => answer !== undefined, 2 * TICK_MS * CONFIG.electionTicks, 'the proposal is answered');
  assert.ok(answer !== undefined && !(answer instanceof Error), `the proposal failed: ${String(answer)}`);
  assert.ok(group.environment.clock.monotonicMs() - startedMs < CONFIG.requestTimeoutMs, 'answered before the request timeout');
  assert.ok(group.disks.get(follower!)!.snapshots.latest!.metadata.index > 20, 'the follower installed a snapshot');
  const stored = lagging.store.range({ key: bytes('mine') }).kvs[0]!;
  assert.equal(answer.revision, stored.modRevision, 'the answer is the result of applying the proposal');
  await group.stop();
});

test("a proposal of a member's previous process that commits after its restart answers no request of the new process", async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  const [follower, other] = [1, 2, 3].filter((id) => id !== leader.memberId);
  // The follower's proposal reaches the leader, but nothing comes back to the follower.
  group.network.cut(leader.memberId, follower!);
  group.network.cut(other!, follower!);
  void group.replica(follower!).propose({ type: 'put', request: { key: bytes('old'), value: bytes('from the old process') } }).catch(() => undefined);
  await group.until(() => valueAt(leader, 'old') !== undefined, 5_000, 'the leader applies the old proposal');
  group.crash(follower!);
  group.network.heal();
  const restarted = await group.start(follower!);
  // The new process's first request; the old proposal commits on it meanwhile.
  const result = await group.drive(restarted.propose({ type: 'put', request: { key: bytes('new'), value: bytes('from the new process') } }));
  const stored = restarted.store.range({ key: bytes('new') }).kvs[0]!;
  assert.equal(result.revision, stored.modRevision, 'the answer is the one of this request, not of the old process\'s');
  await group.stop();
});

test('a member that just joined and hears no leader does not take a lagging member for proof that it was removed', async () => {
  const group = await Group.bootstrap([1, 2, 3]);
  const leader = await group.elect();
  await group.until(() => leader.members.every((m) => m.clientAddress !== ''), 5_000, 'every member publishes its addresses');
  const lagging = [1, 2, 3].find((id) => id !== leader.memberId)!;
  group.network.isolate(lagging);
  await group.drive(leader.proposeConfChange(ConfChangeType.AddLearner, 4, { name: 'm4', peerAddress: peerAddress(4) }));
  group.addDisk(4);
  group.network.isolate(4);
  const joiner = await group.start(4, { catchUpIndex: leader.raftStatus().commit, members: leader.members });
  let halt: { removed: boolean; reason: string } | undefined;
  void joiner.halted.then((value) => (halt = value));
  // The joiner hears no leader, asks the others; the lagging member has not applied its addition.
  await group.run(6_000);
  assert.ok(group.replica(lagging).appliedIndex < leader.raftStatus().commit, 'the lagging member has not applied the addition');
  assert.equal(halt, undefined, `the joiner stopped: ${halt?.reason}`);
  group.network.heal();
  await group.until(() => joiner.appliedIndex >= leader.appliedIndex, 10_000, 'the joiner catches up');
  await group.stop();
});

/** What lmdb-js throws on a full disk (code: errno 28, message from mdb_strerror) and when its map is full. */
const LMDB_FULL_ERRORS = [
  Object.assign(new Error('No space left on device'), { code: 28 }),
  Object.assign(new Error('MDB_MAP_FULL: Environment mapsize limit reached'), { code: -30792 }),
];

for (const [where, fill] of [
  ...LMDB_FULL_ERRORS.map((error) => [`its engine commit (lmdb: ${error.message})`, (disk: Disk) => (disk.engine.commitError = error)] as const),
  ['its WAL flush', (disk: Disk) => disk.wal.failFlushes(new DiskFullError('/data/log/0000000000000001.wal'))] as const,
]) {
  test(`a follower whose disk fills at ${where} stops without acknowledging, the other two keep serving, and once space is freed it restarts, catches up and agrees`, async () => {
    const group = await Group.bootstrap([1, 2, 3]);
    const leader = await group.elect();
    await group.drive(leader.propose({ type: 'put', request: { key: bytes('k'), value: bytes('v1') } }));
    const full = [1, 2, 3].find((id) => id !== leader.memberId)!;
    await group.until(() => group.replica(full).appliedIndex === leader.appliedIndex, 2_000, 'the follower applies the first write');
    const disk = group.disks.get(full)!;
    const durableBefore = disk.wal.recover().entries.at(-1)!.index;
    const halted = group.replica(full).halted;

    fill(disk);
    const write = await group.drive(leader.propose({ type: 'put', request: { key: bytes('k'), value: bytes('v2') } }));
    for (let i = 0; i < 5; i++) await group.drive(leader.propose({ type: 'put', request: { key: bytes(`more-${i}`), value: bytes('x') } }));
    await group.until(() => group.replica(full).stopped, 2_000, 'the member with the full disk stops');
    const halt = await halted;
    assert.equal(halt.removed, false);
    assert.ok(isDiskFull(halt.error), `stopped for the full disk: ${String(halt.error)}`);
    if (where === 'its WAL flush') {
      // Nothing it could not make durable was acknowledged: the leader never counted it past its last flush.
      assert.equal(leader.raftStatus().progress!.get(full)!.match, durableBefore);
    }

    // Space is freed; the member restarts from what its disk kept.
    group.crash(full);
    disk.engine.commitError = undefined;
    disk.wal.failFlushes(undefined);
    const restarted = await group.start(full);
    await group.until(() => restarted.appliedIndex >= leader.appliedIndex, 5_000, 'the restarted member catches up');
    assert.equal(valueAt(restarted, 'k'), 'v2');
    assert.equal(restarted.store.currentRevision, leader.store.currentRevision);
    assert.ok(write.revision <= restarted.store.currentRevision);
    await group.stop();
  });
}
