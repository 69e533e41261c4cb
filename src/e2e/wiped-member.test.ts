// A member whose data directory is deleted while it is down, with real processes: started again
// with the same flags it is refused (it would otherwise re-bootstrap under its old member id, vote
// with an empty log and serve "not found" for keys that exist), it says how to bring it back, and
// that remedy (remove it, then start it with --join on an empty directory) works, also for a
// member that joins after it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatId } from '../ids.js';
import { E2E_TEST_TIMEOUT_MS, ProcessCluster } from '../server/testing/process-cluster.js';

const MAIN = fileURLToPath(new URL('../cli/main.ts', import.meta.url));

/** Runs a `lichen ...` command line as a user types it. */
function lichen(commandLine: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const args = commandLine.split(/\s+/).slice(1);
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { timeout: 60_000, env: { ...process.env, LICHEN_ENDPOINTS: '' } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function eventually(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

test('a member restarted on a wiped data directory is refused with the remedy, and the remedy works', { timeout: 2 * E2E_TEST_TIMEOUT_MS }, async () => {
  const cluster = await ProcessCluster.start({ nodes: 3 });
  try {
    const [n1, , n3] = cluster.members;
    for (let i = 0; i < 20; i++) await cluster.call(n1!, 'KV', 'Put', { key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) });
    const oldId = formatId(Number((await cluster.call<{ header: { member_id: string } }>(n3!, 'Maintenance', 'Status', {})).header.member_id));

    await cluster.wipe(n3!);
    let removeCommand = '';
    await assert.rejects(cluster.launch(n3!), (error: Error) => {
      assert.match(error.message, /exited before it started \(code 1/);
      assert.match(error.message, /knows member \\?"n3\\?" \(([0-9a-f]+)\) by another data directory/);
      assert.match(error.message, /--join/);
      // The message spells out the remedy's first command; the test runs it as written.
      removeCommand = /run `(lichen member remove [0-9a-f]{16} --endpoints) <a running member's client address>`/.exec(error.message)?.[1] ?? '';
      assert.equal(removeCommand, `lichen member remove ${oldId} --endpoints`, error.message);
      return true;
    });
    // The members that know n3 logged why they refused it.
    const refusedBy = cluster.members.filter((m) => m.log.some((line) => line.includes('came back with another data directory')));
    assert.ok(refusedBy.length > 0, 'no member logged the refusal');
    // The cluster still serves, without n3. When n3 led, a put sent to n1 before it noticed is
    // forwarded to the dead leader and times out after 5 s ("request timed out"), as in etcd;
    // clients retry such a put, and so does this test.
    await eventually('the cluster serves a put without n3', async () => {
      await cluster.call(n1!, 'KV', 'Put', { key: Buffer.from('after-wipe'), value: Buffer.from('yes') });
      return true;
    });

    // The remedy, as the message and the README give it: remove the old member, empty the
    // directory, start it again with --join (LICHEN_JOIN here).
    const removed = await lichen(`${removeCommand} ${n1!.client}`);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, new RegExp(`Member ${oldId} removed`));
    rmSync(n3!.dataDir, { recursive: true, force: true });
    await cluster.join(n3!, n1!);
    await eventually('n3 is a voter again', async () => {
      const list = await cluster.call<{ members: { name: string; isLearner: boolean }[] }>(n1!, 'Cluster', 'MemberList', {});
      return list.members.some((m) => m.name === 'n3' && !m.isLearner);
    });
    await eventually('n3 serves every key', async () => {
      const { kvs } = await cluster.call<{ kvs: unknown[] }>(n3!, 'KV', 'Range', { key: Buffer.from('\0'), range_end: Buffer.from('\0'), serializable: true });
      return kvs.length === 21;
    });
    const newId = formatId(Number((await cluster.call<{ header: { member_id: string } }>(n3!, 'Maintenance', 'Status', {})).header.member_id));
    assert.notEqual(newId, oldId, 'it came back as a new member');

    // With the new n3 leading, a member that joins now is sent the cluster's first snapshot (its
    // only one so far), whose membership lacks the new n3: it must still reach its leader.
    const leader = await cluster.waitForLeader();
    if (leader !== n3) await cluster.call(leader, 'Maintenance', 'MoveLeader', { targetID: BigInt(`0x${newId}`).toString() });
    await eventually('n3 leads', async () => (await cluster.waitForLeader()) === n3);
    const n4 = await cluster.newJoiner('n4');
    await cluster.join(n4, n1!);
    await eventually('n4 is a voter', async () => {
      const list = await cluster.call<{ members: { name: string; isLearner: boolean }[] }>(n3!, 'Cluster', 'MemberList', {});
      return list.members.some((m) => m.name === 'n4' && !m.isLearner);
    });
    await eventually('n4 serves every key', async () => {
      const { kvs } = await cluster.call<{ kvs: unknown[] }>(n4, 'KV', 'Range', { key: Buffer.from('\0'), range_end: Buffer.from('\0'), serializable: true });
      return kvs.length === 21;
    });
  } finally {
    await cluster.stop();
  }
});
