// Operations: transfer leadership, add / remove / promote a member, compact, snapshot. Each asks
// for confirmation and shows what the cluster answered.
import { useState } from 'preact/hooks';
import { api, formatBytes } from './api';
import { memberName, useCluster } from './cluster';
import { ConfirmButton, useAction } from './ui';

export function Operations() {
  const state = useCluster();
  const [outcome, run] = useAction();
  const voters = state.members.filter((m) => !m.isLearner);
  const learners = state.members.filter((m) => m.isLearner);
  const [target, setTarget] = useState<string>();
  const [removeId, setRemoveId] = useState<string>();
  const [promoteId, setPromoteId] = useState<string>();
  const [peerUrl, setPeerUrl] = useState('');
  const [asLearner, setAsLearner] = useState(true);
  const leaderFacts = state.members.find((m) => m.id === state.leader)?.facts;
  const [revision, setRevision] = useState('');
  const transferTo = target ?? voters.find((m) => m.id !== state.leader)?.id;
  const removeTarget = removeId ?? state.members[0]?.id;
  const promoteTarget = promoteId ?? learners[0]?.id;
  const select = (value: string | undefined, set: (id: string) => void, members: typeof state.members) => (
    <select value={value} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
      {members.map((m) => (
        <option value={m.id} key={m.id}>
          {m.name || '(not started)'} {m.id}
        </option>
      ))}
    </select>
  );
  return (
    <section class="operations">
      {outcome}
      <div class="op">
        <h3>Transfer leadership</h3>
        <p class="muted">The leader is {memberName(state.members, state.leader)}.</p>
        {select(transferTo, setTarget, voters)}{' '}
        <ConfirmButton
          label="Transfer"
          disabled={transferTo === undefined || transferTo === state.leader}
          question={`Make ${memberName(state.members, transferTo)} the leader?`}
          onConfirm={() => void run('Transfer leadership', () => api('POST', '/v1/leader', { id: transferTo }))}
        />
      </div>
      <div class="op">
        <h3>Add a member</h3>
        <p class="muted">Then start it with --join (or LICHEN_JOIN) and its peer address.</p>
        <input class="mono" placeholder="http://127.0.0.1:2410" value={peerUrl} onInput={(e) => setPeerUrl((e.target as HTMLInputElement).value)} />{' '}
        <label>
          <input type="checkbox" checked={asLearner} onChange={(e) => setAsLearner((e.target as HTMLInputElement).checked)} /> as a learner
        </label>{' '}
        <ConfirmButton
          label="Add"
          disabled={peerUrl === ''}
          question={`Add a ${asLearner ? 'learner' : 'voting member'} at ${peerUrl}?`}
          onConfirm={() => void run('Add a member', () => api('POST', '/v1/members', { peerURLs: [peerUrl], isLearner: asLearner }))}
        />
      </div>
      <div class="op">
        <h3>Remove a member</h3>
        {select(removeTarget, setRemoveId, state.members)}{' '}
        <ConfirmButton
          label="Remove"
          danger
          disabled={removeTarget === undefined}
          question={`Remove ${memberName(state.members, removeTarget)} from the cluster for good?`}
          onConfirm={() => void run('Remove a member', () => api('DELETE', `/v1/members/${removeTarget}`))}
        />
      </div>
      <div class="op">
        <h3>Promote a learner</h3>
        {learners.length === 0 ? (
          <p class="muted">There is no learner.</p>
        ) : (
          <>
            {select(promoteTarget, setPromoteId, learners)}{' '}
            <ConfirmButton
              label="Promote"
              question={`Promote ${memberName(state.members, promoteTarget)} to a voting member?`}
              onConfirm={() => void run('Promote a learner', () => api('POST', `/v1/members/${promoteTarget}?promote`))}
            />
          </>
        )}
      </div>
      <div class="op">
        <h3>Compact</h3>
        <p class="muted">Drops every version older than the revision (the current one is {leaderFacts?.revision ?? 'unknown'}); watches and history reads before it fail afterwards.</p>
        <input class="short" placeholder={String(leaderFacts?.revision ?? '')} value={revision} onInput={(e) => setRevision((e.target as HTMLInputElement).value)} />{' '}
        <ConfirmButton
          label="Compact"
          danger
          question={`Compact the history before revision ${revision || leaderFacts?.revision}?`}
          onConfirm={() => void run('Compact', () => api('POST', '/v1/compact', { revision: Number(revision || leaderFacts?.revision) }))}
        />
      </div>
      <div class="op">
        <h3>Defragment</h3>
        <p class="muted">
          Nothing to do on Lichen: its storage (lmdb) reuses the pages a compaction frees, and the space quota counts pages in use. In use now:{' '}
          {state.members.map((m) => (m.facts ? `${m.name} ${formatBytes(m.facts.dbSizeInUse)} of ${formatBytes(m.facts.dbSize)}` : '')).filter(Boolean).join(', ')}.
        </p>
      </div>
      <div class="op">
        <h3>Snapshot</h3>
        <p class="muted">This member's data as `etcdctl snapshot save` writes it; restore it with `lichen snapshot restore` or `etcdctl snapshot restore`.</p>
        <a class="button" href="/v1/snapshot" download>
          Download a snapshot
        </a>
      </div>
    </section>
  );
}
