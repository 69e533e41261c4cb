// The last original member of a cluster whose other members were all replaced (removed, then
// added again as new members at the same addresses), wiped and started again with its original
// --initial-cluster: no peer can compare its data directory, since every listed id now answers
// "not the member you want" (or "you are not a member"). It must stop with the remedy rather than
// wait forever (found by `lichen check --nodes 5 ... --faults ...,wipe --seed 1606`).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WIPED_MEMBER_REFUSAL } from '../fault/nemesis.js';
import { formatId } from './ids.js';
import { startTestCluster, startTestMember, type TestMember } from './testing/in-process.js';

const TICK_MS = 20;

async function eventually(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a member whose --initial-cluster lists only replaced members', () => {
  let members: TestMember[] = [];
  after(async () => {
    await Promise.all(members.map((m) => m.close()));
  });

  it('stops at start-up with the remedy instead of waiting forever, and the cluster serves without it', { timeout: 90_000 }, async () => {
    members = await startTestCluster(3, { tickMs: TICK_MS });
    const initialCluster = members.map((m) => {
      const self = m.node.node.members.find((x) => x.id === m.node.memberId)!;
      return { name: self.name, peerAddress: self.peerAddress };
    });
    const last = members[2]!;
    const voters = async (): Promise<string[]> => {
      const list = await last.call<{ members: { name: string; isLearner: boolean }[] }>('Cluster', 'MemberList', {});
      return list.members.filter((m) => !m.isLearner).map((m) => m.name);
    };
    // Replace m1 and m2 one after the other: remove, then join again at the same peer address.
    for (const [index, spec] of initialCluster.slice(0, 2).entries()) {
      const old = members[index]!;
      // A removal may time out while a leader is elected (the removed member may be the leader).
      await eventually(`${spec.name} is removed`, async () => {
        await last.call('Cluster', 'MemberRemove', { ID: String(old.node.memberId) }).catch(() => undefined);
        const list = await last.call<{ members: { ID: string }[] }>('Cluster', 'MemberList', {});
        return !list.members.some((m) => m.ID === String(old.node.memberId));
      });
      await old.close();
      const replacement = await startTestMember({ name: spec.name, listenPeer: spec.peerAddress, join: last.node.addresses.client, tickMs: TICK_MS });
      members[index] = replacement;
      await eventually(`${spec.name} is a voter again`, async () => (await voters()).filter((name) => name === spec.name).length === 1 && (await voters()).length === 3);
    }

    // m3 loses its data directory and starts again with the flags of its first start.
    const oldId = last.node.memberId;
    members = members.filter((m) => m !== last);
    await last.close();
    const dataDir = mkdtempSync(join(tmpdir(), 'lichen-member-'));
    after(() => rmSync(dataDir, { recursive: true, force: true }));
    const started = startTestMember({ name: 'm3', dataDir, listenPeer: initialCluster[2]!.peerAddress, initialCluster, tickMs: TICK_MS });
    await assert.rejects(started, (error: Error) => {
      assert.match(error.message, /cannot start: members of its --initial-cluster refused it \(m\d at /);
      for (const spec of initialCluster.slice(0, 2)) assert.ok(error.message.includes(`${spec.name} at ${spec.peerAddress}: the dialer wants another member`), error.message);
      assert.match(error.message, new RegExp(`lichen member remove ${formatId(oldId)}`));
      assert.match(error.message, /--join/);
      assert.match(error.message, WIPED_MEMBER_REFUSAL, 'lichen check takes it for the refusal of a wiped member');
      for (const m of members) assert.doesNotMatch(error.message, new RegExp(formatId(m.node.memberId)), 'a refusal names no id of the cluster it protects');
      return true;
    });
    // The cluster still serves without it, once it has elected a leader in m3's place.
    await eventually('the others serve a write', async () => Boolean(await members[0]!.call('KV', 'Put', { key: Buffer.from('after'), value: Buffer.from('yes') })));
  });
});
