// etcd's corruption checks: the decision rules (server/etcdserver/corrupt.go), then the whole
// path on a real 3-member cluster whose follower's data is changed behind raft's back.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { decodeRecord, encodeRecord, revisionKey } from '../mvcc/layout.js';
import type { KvStateMachine } from '../replica/index.js';
import { findCorruptMember, inconsistentPeers, type MemberHash } from './corruption.js';
import { startTestCluster, startTestMember, type TestMember } from './testing/in-process.js';

const leader: MemberHash = { memberId: 1, hash: 0xabc, revision: 100, compactRevision: 10 };
const peer = (memberId: number, change: Partial<MemberHash> = {}): MemberHash => ({ ...leader, memberId, ...change });

describe('corruption check decisions (etcd checkHashKV / CheckInitialHashKV)', () => {
  it('finds nothing when every peer agrees, lags, or could not answer', () => {
    assert.equal(findCorruptMember(leader, leader, [peer(2), peer(3, { revision: 90 }), { memberId: 4, error: 'future revision' }]), undefined);
  });

  it('blames the leader when its own hash changed while its revisions did not', () => {
    assert.equal(findCorruptMember(leader, { ...leader, hash: 0xdef }, [peer(2)]), 1);
    assert.equal(findCorruptMember(leader, { ...leader, hash: 0xdef, revision: 101 }, [peer(2)]), undefined, 'a new write changes the hash');
  });

  it('blames a peer ahead of the leader, one that compacted further, or one that hashed the same history differently', () => {
    assert.equal(findCorruptMember(leader, leader, [peer(2), peer(3, { revision: 101 })]), 3);
    assert.equal(findCorruptMember(leader, leader, [peer(2, { compactRevision: 11, hash: 1 })]), 2);
    assert.equal(findCorruptMember(leader, leader, [peer(2, { hash: 0xdef })]), 2);
    assert.equal(findCorruptMember(leader, leader, [peer(2, { hash: 0xdef, compactRevision: 5 })]), undefined, 'other compactions hash other records');
  });

  it('at start-up, names the peers that differ at the same compact revision', () => {
    const differing = peer(2, { hash: 7 });
    assert.deepEqual(inconsistentPeers(leader, [differing, peer(3), peer(4, { hash: 8, compactRevision: 3 }), { memberId: 5, error: 'down' }]), [differing]);
  });
});

describe('corruption checks on a 3-member cluster', () => {
  let members: TestMember[] = [];
  after(async () => {
    await Promise.all(members.map((m) => m.close()));
  });
  const b = (s: string): Buffer => Buffer.from(s);

  it('the leader raises CORRUPT for a follower whose data differs, writes stop, and the member cannot restart with the initial check', { timeout: 60_000 }, async () => {
    members = await startTestCluster(3, { tickMs: 20, experimentalCorruptCheckTimeMs: 100 });
    const first = await members[0]!.call('KV', 'Put', { key: b('k'), value: b('original') });
    await members[0]!.call('KV', 'Put', { key: b('other'), value: b('x') });
    for (const m of members) await m.call('KV', 'Range', { key: b('k') }); // each has applied both
    const restart = async (member: TestMember): Promise<TestMember> => {
      const self = member.node.node.members.find((m) => m.id === member.node.memberId)!;
      members = members.filter((m) => m !== member);
      await member.close({ keepData: true });
      const restarted = await startTestMember({
        name: self.name, listenPeer: self.peerAddress, dataDir: member.dataDir, tickMs: 20, experimentalInitialCorruptCheck: true,
      });
      members.push(restarted);
      return restarted;
    };
    // While the members agree, a member restarts with the initial check.
    const healthy = await restart(members.find((m) => !m.node.node.isLeader())!);
    assert.deepEqual((await healthy.call('KV', 'Range', { key: b('k') })).kvs[0].value, b('original'));
    const follower = members.find((m) => !m.node.node.isLeader() && m !== healthy)!;
    const followerId = String(follower.node.memberId);

    // Change the follower's stored record of the first put, as a disk fault or a bug would.
    const engine = (follower.node.node.machine as KvStateMachine).engine;
    const key = revisionKey(Number(first.header.revision), 0);
    engine.write([{ type: 'put', key, value: encodeRecord({ ...decodeRecord(engine.get(key)!), value: b('tampered') }) }]);

    const deadline = Date.now() + 10_000;
    let alarms: { memberID: string; alarm: number }[] = [];
    while (alarms.length === 0) {
      assert.ok(Date.now() < deadline, 'no CORRUPT alarm within 10 s');
      alarms = (await members[0]!.call('Maintenance', 'Alarm', { action: 'GET' })).alarms;
    }
    assert.deepEqual(alarms, [{ memberID: followerId, alarm: 2 /* CORRUPT */ }]);
    await assert.rejects(members[0]!.call('KV', 'Put', { key: b('k'), value: b('new') }), (error: ServiceError) => {
      assert.equal(error.code, status.DATA_LOSS);
      assert.equal(error.details, 'etcdserver: corrupt cluster');
      return true;
    });
    assert.equal((await members[0]!.call('KV', 'Range', { key: b('other') })).kvs.length, 1, 'reads are still served');

    // --experimental-initial-corrupt-check: the tampered member refuses to start (as would any
    // member whose peers include it, since etcd's check counts every mismatching peer).
    await assert.rejects(restart(follower), new RegExp(`^LichenError: ${follower.node.memberId.toString(16)} found data inconsistency with peers$`));
  });
});
