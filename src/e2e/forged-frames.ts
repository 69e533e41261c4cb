// The forged-frame attack on the peer port, for the end-to-end tests (peer-security.test.ts without
// TLS, tls.test.ts with it). A process that learned the cluster id and the member ids from the
// client API (every response header and MemberList give them away) dials members' peer ports
// claiming another member's id and sends what that member would: a proposal to the leader, an
// append to a follower, a TimeoutNow. Nothing of it may be applied, and the members' hashes must
// stay equal.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import type { ProcessCluster, MemberProcess } from '../server/testing/process-cluster.js';
import { FrameKind, FrameReader, decodeHelloAck, encodeHello, encodeMessageFrame } from '../transport/frame.js';
import { metaGroupId } from '../ids.js';
import type { Entry, Message } from '../raft/types.js';
import { EnvelopeKind, encodeEnvelope } from '../replica/envelope.js';
import { encodeCommand } from '../mvcc/command.js';
import { parseHostPort } from '../address.js';

interface Target {
  member: MemberProcess;
  id: number;
  /** host:port of its peer listener, as MemberList tells it. */
  peer: string;
  term: number;
  commit: number;
}

/** What an outsider learns from the client API: the cluster id, and each member's id, peer address and raft position. */
async function reconnoitre(cluster: ProcessCluster): Promise<{ clusterId: number; leaderId: number; targets: Target[] }> {
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
  return encodeMessageFrame(metaGroupId, m);
}

/** How the attacker reaches a peer port: a socket, and the event after which it may write. */
export type Connect = (host: string, port: number) => { socket: net.Socket; ready: 'connect' | 'secureConnect' };

export const plainTcp: Connect = (host, port) => ({ socket: net.connect({ host, port }), ready: 'connect' });

export function overTls(options: tls.ConnectionOptions): Connect {
  return (host, port) => ({ socket: tls.connect({ host, port, rejectUnauthorized: false, ...options }), ready: 'secureConnect' });
}

/**
 * Dials a peer port, says Hello as `from`, and sends `messages` at once without waiting for the
 * acknowledgement (as a member would after it). Resolves, when the listener closes the connection
 * or after a bound, with whether the listener ever accepted the claim.
 */
async function forge(connect: Connect, peer: string, hello: { clusterId: number; from: number; to: number }, messages: Message[]): Promise<{ accepted: boolean }> {
  const { host, port } = parseHostPort(peer);
  const { socket, ready } = connect(host, port);
  socket.on('error', () => {});
  let accepted = false;
  const reader = new FrameReader(1 << 20);
  socket.on('data', (chunk: Buffer) =>
    reader.push(chunk, (frame) => {
      if (frame[0] === FrameKind.HelloAck && decodeHelloAck(frame.subarray(1)).status === 'accepted') accepted = true;
    }),
  );
  socket.on(ready, () => socket.write(Buffer.concat([encodeHello({ ...hello, dataDirId: new Uint8Array(8) }), ...messages.map(messageFrame)])));
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

async function getSerializable(cluster: ProcessCluster, member: MemberProcess, key: string): Promise<number> {
  const response = await cluster.call<{ count: string }>(member, 'KV', 'Range', {
    key: Buffer.from(key),
    range_end: Buffer.from(key.slice(0, -1) + String.fromCharCode(key.charCodeAt(key.length - 1) + 1)),
    serializable: true,
    count_only: true,
  });
  return Number(response.count);
}

/**
 * The attack: each way of connecting in `connects` sends a proposal to the leader (claiming a
 * follower's id, and a made-up one), an append to a follower (claiming the leader's), then a
 * TimeoutNow. None may be accepted, nothing forged applied, and the members' hashes stay equal.
 */
export async function replayForgedFrames(cluster: ProcessCluster, connects: Connect[]): Promise<void> {
  const { clusterId, leaderId, targets } = await reconnoitre(cluster);
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
  const forgeries = (connect: Connect): Promise<{ accepted: boolean }>[] => [
    // A proposal forwarded "from a follower", and one from a made-up member id.
    forge(connect, leader.peer, { clusterId, from: follower.id, to: leader.id }, [proposal(follower.id, 'forged/proposal')]),
    forge(connect, leader.peer, { clusterId, from: 42, to: leader.id }, [proposal(42, 'forged/made-up')]),
    // An append "from the leader" that a follower would take and commit.
    forge(connect, follower.peer, { clusterId, from: leader.id, to: follower.id }, [
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
  ];
  const attempts = await Promise.all(connects.flatMap(forgeries));
  // Then a TimeoutNow "from the leader", which would make a follower campaign at once (after the
  // others: a new leader could overwrite a forged entry before it commits).
  const timeoutNow: Message = { type: 'TimeoutNow', from: leader.id, to: other.id, term: other.term };
  for (const connect of connects) attempts.push(await forge(connect, other.peer, { clusterId, from: leader.id, to: other.id }, [timeoutNow]));
  assert.deepEqual(
    attempts.map((a) => a.accepted),
    attempts.map(() => false),
    'a forged claim was accepted',
  );

  // A real write after the attack: once every member has applied it, compare them.
  const written = await cluster.call<{ header: { revision: string } }>(leader.member, 'KV', 'Put', { key: Buffer.from('after'), value: Buffer.from('1') });
  const revision = Number(written.header.revision);
  for (const target of targets) {
    const deadline = Date.now() + 20_000;
    while ((await getSerializable(cluster, target.member, 'after')) === 0) {
      assert.ok(Date.now() < deadline, `${target.member.name} did not apply the real write within 20 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await getSerializable(cluster, target.member, 'forged/'), 0, `${target.member.name} applied a forged write`);
  }
  const hashes = await Promise.all(targets.map((t) => cluster.call<{ hash: string }>(t.member, 'Maintenance', 'HashKV', { revision })));
  assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `members disagree on HashKV at revision ${revision}`);
}

