// Overview: the members (role, term, applied index, lag, size, health, version), the leader, the
// alarms, and the last hour of request rates and latencies.
import { formatBytes, NO_ID, type MemberView, type TrafficSamples } from './api';
import { Chart, color, type ChartSeries } from './chart';
import { useState } from 'preact/hooks';
import { memberName, SAMPLE_SECONDS, useCluster, type ClusterState } from './cluster';

const WINDOWS = { '5 min': 300, '15 min': 900, '1 hour': SAMPLE_SECONDS } as const;
type WindowName = keyof typeof WINDOWS;

/** The window's seconds as x values, and each member's samples aligned on them (null where it has none). */
function aligned(state: ClusterState, seconds: number, field: keyof Omit<TrafficSamples, 'from'>, zeroIsGap: boolean): { times: number[]; byMember: Map<string, (number | null)[]> } {
  const end = state.second;
  const start = end - seconds;
  const times: number[] = [];
  for (let t = start; t < end; t++) times.push(t);
  const byMember = new Map<string, (number | null)[]>();
  for (const [id, samples] of state.samples) {
    const values = times.map((t) => {
      const i = t - samples.from;
      const value = i >= 0 && i < samples.reads.length ? samples[field][i]! : null;
      return zeroIsGap && value === 0 ? null : value;
    });
    byMember.set(id, values);
  }
  return { times, byMember };
}

function sum(series: (number | null)[][], length: number): (number | null)[] {
  const out: (number | null)[] = new Array(length).fill(null);
  for (const values of series) values.forEach((v, i) => v !== null && (out[i] = (out[i] ?? 0) + v));
  return out;
}

function MemberRow({ member, leader }: { member: MemberView; leader: string }) {
  const facts = member.facts;
  const down = member.state !== 'up';
  return (
    <tr class={down ? 'down' : member.id === leader ? 'leader' : ''} data-member={member.name}>
      <td>
        <strong>{member.name || '(not started)'}</strong>
        <div class="muted mono">{member.id}</div>
      </td>
      <td>
        <span class={`badge role-${down ? 'down' : (facts?.role ?? 'unknown')}`} data-role>
          {down ? 'down' : (facts?.role ?? 'unknown')}
        </span>
      </td>
      <td title={member.error}>{down ? <span class="error-text">{member.error ?? member.state}</span> : 'healthy'}</td>
      <td class="num">{facts?.term ?? '–'}</td>
      <td class="num">{facts?.appliedIndex ?? '–'}</td>
      <td class="num">{member.lag ?? '–'}</td>
      <td class="num">{facts ? `${formatBytes(facts.dbSizeInUse)} / ${formatBytes(facts.dbSize)}` : '–'}</td>
      <td>{facts?.version ?? '–'}</td>
      <td class="mono">{member.httpAddress ? <a href={`${location.protocol}//${member.httpAddress}/`}>{member.httpAddress}</a> : '–'}</td>
    </tr>
  );
}

export function Overview() {
  const state = useCluster();
  const [windowName, setWindowName] = useState<WindowName>('15 min');
  const seconds = WINDOWS[windowName];
  const alarms = [...new Set(state.members.flatMap((m) => (m.state === 'up' ? (m.facts?.errors ?? []) : [])))];
  const leaderFacts = state.members.find((m) => m.id === state.leader)?.facts;
  const writes = aligned(state, seconds, 'writes', false);
  const reads = aligned(state, seconds, 'reads', false);
  const ids = [...state.samples.keys()];
  const length = writes.times.length;
  const rateSeries: ChartSeries[] = [
    { label: 'writes/s', values: sum([...writes.byMember.values()], length), color: color(0) },
    { label: 'reads/s', values: sum([...reads.byMember.values()], length), color: color(1) },
  ];
  const latencySeries = (p50: 'writeP50' | 'readP50', p99: 'writeP99' | 'readP99'): ChartSeries[] => {
    const a = aligned(state, seconds, p50, true);
    const b = aligned(state, seconds, p99, true);
    return ids.flatMap((id, i) => [
      { label: `${memberName(state.members, id)} p50`, values: a.byMember.get(id)!, color: color(i), dash: [4, 3] },
      { label: `${memberName(state.members, id)} p99`, values: b.byMember.get(id)!, color: color(i) },
    ]);
  };
  return (
    <section>
      <div class="summary">
        <div class="stat">
          <span class="label">Leader</span>
          <span class="value" data-testid="leader">{state.leader !== NO_ID ? memberName(state.members, state.leader) : 'no leader'}</span>
        </div>
        <div class="stat">
          <span class="label">Term</span>
          <span class="value">{leaderFacts?.term ?? '–'}</span>
        </div>
        <div class="stat">
          <span class="label">Revision</span>
          <span class="value">{leaderFacts?.revision ?? '–'}</span>
        </div>
        <div class="stat">
          <span class="label">Members up</span>
          <span class="value">
            {state.members.filter((m) => m.state === 'up').length} / {state.members.length}
          </span>
        </div>
      </div>
      {state.leader === NO_ID && state.connection === 'open' && <div class="banner error">No leader: the cluster cannot serve writes or linearizable reads until one is elected.</div>}
      {alarms.map((alarm) => (
        <div class="banner error" key={alarm}>
          Alarm: {alarm}
        </div>
      ))}
      <table class="members">
        <thead>
          <tr>
            <th>Member</th>
            <th>Role</th>
            <th>Health</th>
            <th class="num">Term</th>
            <th class="num">Applied</th>
            <th class="num">Lag</th>
            <th class="num">DB in use / size</th>
            <th>Version</th>
            <th>HTTP</th>
          </tr>
        </thead>
        <tbody>
          {state.members.map((m) => (
            <MemberRow member={m} leader={state.leader} key={m.id} />
          ))}
        </tbody>
      </table>
      <div class="toolbar">
        <span class="muted">Charts: the last</span>
        {(Object.keys(WINDOWS) as WindowName[]).map((name) => (
          <label key={name}>
            <input type="radio" name="window" checked={name === windowName} onChange={() => setWindowName(name)} /> {name}
          </label>
        ))}
      </div>
      <div class="charts">
        <Chart title="Requests per second (all members)" unit="req/s" times={writes.times} series={rateSeries} />
        <Chart title="Write latency (ms, p50 dashed, p99 solid)" unit="ms" times={writes.times} series={latencySeries('writeP50', 'writeP99')} />
        <Chart title="Read latency (ms, p50 dashed, p99 solid)" unit="ms" times={writes.times} series={latencySeries('readP50', 'readP99')} />
      </div>
    </section>
  );
}
