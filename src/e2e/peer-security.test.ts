// End-to-end: the forged-frame attack on the peer port. A process that learned the cluster id and
// the member ids from the client API (every response header and MemberList give them away) dials
// members' peer ports claiming another member's id and sends what that member would: a proposal
// to the leader, an append to a follower, a TimeoutNow. Nothing of it may be applied, and the
// members' hashes must stay equal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster, type MemberProcess } from '../server/testing/process-cluster.js';
import { encodeMessage } from '../transport/codec.js';
import { FRAME_HEADER_BYTES, FrameKind, FrameReader, decodeHelloAck, encodeHello, writeFrameHeader } from '../transport/frame.js';
import type { Entry, Message } from '../raft/types.js';
import { EnvelopeKind, encodeEnvelope } from '../server/envelope.js';
import { encodeCommand } from '../mvcc/command.js';

let cluster: ProcessCluster;

before(async () => {
  cluster = await ProcessCluster.start({ nodes: 3 });
});

after(async () => {
  await cluster?.stop();
});

interface Target {
  member: MemberProcess;
  id: number;
  /** host:port of its peer listener, as MemberList tells it. */
  peer: string;
  term: number;
  commit: number;
}

/** What an outsider learns from the client API: the cluster id, and each member's id, peer address and raft position. */
async function reconnoitre(): Promise<{ clusterId: number; leaderId: number; targets: Target[] }> {
  const list = await cluster.call<{ header: { cluster_id: string }; members: { ID: string; name: string; peerURLs: string[] }[] }>(
    cluster.members[0]!,
    'Cluster',
    'MemberList',
    {},
  );
  const targets: Target[] = [];
  let leaderId = 0;
  for (const wire of list.members) {
    const member = cluster.members.find((m) => m.name === wire.name)!;
    const status = await cluster.call<{ leader: string; raftTerm: string; raftIndex: string }>(member, 'Maintenance', 'Status', {});
    leaderId = Number(status.leader);
    const peer = wire.peerURLs[0]!.replace(/^[a-z]+:\/\//, '');
    targets.push({ member, id: Number(wire.ID), peer, term: Number(status.raftTerm), commit: Number(status.raftIndex) });
  }
  return { clusterId: Number(list.header.cluster_id), leaderId, targets };
}

function forgedPut(key: string): Uint8Array {
  const body = encodeCommand({ type: 'put', request: { key: Buffer.from(key), value: Buffer.from('forged') } });
  return encodeEnvelope({ kind: EnvelopeKind.Mvcc, origin: 0, sequence: 0, body });
}

function messageFrame(m: Message): Buffer {
  return writeFrameHeader(encodeMessage(m, FRAME_HEADER_BYTES), FrameKind.Message);
}

/**
 * Dials a peer port, says Hello as `from`, and sends `messages` at once without waiting for the
 * acknowledgement (as a member would after it). Resolves, when the listener closes the connection
 * or after a bound, with whether the listener ever accepted the claim.
 */
async function forge(peer: string, hello: { clusterId: number; from: number; to: number }, messages: Message[]): Promise<{ accepted: boolean }> {
  const at = peer.lastIndexOf(':');
  const socket = net.connect({ host: peer.slice(0, at), port: Number(peer.slice(at + 1)) });
  socket.on('error', () => {});
  let accepted = false;
  const reader = new FrameReader(1 << 20);
  socket.on('data', (chunk: Buffer) =>
    reader.push(chunk, (frame) => {
      if (frame[0] === FrameKind.HelloAck && decodeHelloAck(frame.subarray(1)).accepted) accepted = true;
    }),
  );
  socket.on('connect', () => socket.write(Buffer.concat([encodeHello(hello), ...messages.map(messageFrame)])));
  await new Promise<void>((resolve) => {
    // A listener that accepted keeps the connection open: three seconds are plenty on loopback.
    const timer = setTimeout(resolve, 3000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  socket.destroy();
  return { accepted };
}

async function getSerializable(member: MemberProcess, key: string): Promise<number> {
  const response = await cluster.call<{ count: string }>(member, 'KV', 'Range', {
    key: Buffer.from(key),
    range_end: Buffer.from(key.slice(0, -1) + String.fromCharCode(key.charCodeAt(key.length - 1) + 1)),
    serializable: true,
    count_only: true,
  });
  return Number(response.count);
}

test('forged proposals, appends and TimeoutNow from a process that knows the ids are not applied', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
  const { clusterId, leaderId, targets } = await reconnoitre();
  const leader = targets.find((t) => t.id === leaderId)!;
  const [follower, other] = targets.filter((t) => t.id !== leaderId) as [Target, Target];
  const proposal = (from: number, key: string): Message => ({
    type: 'Prop',
    from,
    to: leader.id,
    term: 0,
    entries: [{ term: 0, index: 0, type: 0, data: forgedPut(key) }],
  });
  const entry: Entry = { term: follower.term, index: follower.commit + 1, type: 0, data: forgedPut('forged/append') };
  const attempts = await Promise.all([
    // A proposal forwarded "from a follower", and one from a made-up member id.
    forge(leader.peer, { clusterId, from: follower.id, to: leader.id }, [proposal(follower.id, 'forged/proposal')]),
    forge(leader.peer, { clusterId, from: 42, to: leader.id }, [proposal(42, 'forged/made-up')]),
    // An append "from the leader" that a follower would take and commit.
    forge(follower.peer, { clusterId, from: leader.id, to: follower.id }, [
      {
        type: 'App',
        from: leader.id,
        to: follower.id,
        term: follower.term,
        prevLogIndex: follower.commit,
        prevLogTerm: follower.term,
        entries: [entry],
        commit: entry.index,
      },
    ]),
  ]);
  // Then a TimeoutNow "from the leader", which would make a follower campaign at once (after the
  // others: a new leader could overwrite a forged entry before it commits).
  attempts.push(await forge(other.peer, { clusterId, from: leader.id, to: other.id }, [{ type: 'TimeoutNow', from: leader.id, to: other.id, term: other.term }]));
  assert.deepEqual(attempts.map((a) => a.accepted), [false, false, false, false], 'a forged claim was accepted');

  // A real write after the attack: once every member has applied it, compare them.
  const written = await cluster.call<{ header: { revision: string } }>(leader.member, 'KV', 'Put', { key: Buffer.from('after'), value: Buffer.from('1') });
  const revision = Number(written.header.revision);
  for (const target of targets) {
    const deadline = Date.now() + 20_000;
    while ((await getSerializable(target.member, 'after')) === 0) {
      assert.ok(Date.now() < deadline, `${target.member.name} did not apply the real write within 20 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await getSerializable(target.member, 'forged/'), 0, `${target.member.name} applied a forged write`);
  }
  const hashes = await Promise.all(targets.map((t) => cluster.call<{ hash: string }>(t.member, 'Maintenance', 'HashKV', { revision })));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `members disagree on HashKV at revision ${revision}`);
});
