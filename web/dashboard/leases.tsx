// Leases: the list with a TTL counting down, each lease's keys, grant and revoke.
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { ConfirmButton, ErrorBox, useAction, useLoad } from './ui';

interface LeaseRow {
  /** 16 hex digits, as etcdctl shows lease ids. */
  id: string;
  ttl: number;
  grantedTTL: number;
  keys: number;
}

/** Re-reads the list this often; between reads the TTLs count down on the page. */
const REFRESH_MS = 5000;

function LeaseKeys({ id }: { id: string }) {
  const lease = useLoad(() => api<{ keys: { key: string; keyEncoding?: string }[]; hiddenKeys: number }>('GET', `/v1/leases/${id}`), [id]);
  if (lease.error) return <ErrorBox error={lease.error} />;
  const keys = lease.value?.keys ?? [];
  const hidden = lease.value?.hiddenKeys ?? 0;
  return (
    <div class="mono lease-keys">
      {lease.value ? (keys.length === 0 && hidden === 0 ? <span class="muted">no keys</span> : keys.map((k) => <div key={k.key}>{k.key}</div>)) : 'loading…'}
      {hidden > 0 && <div class="muted">and {hidden} keys you may not read</div>}
    </div>
  );
}

export function Leases() {
  const [page, setPage] = useState(0);
  const list = useLoad(async () => ({ at: Date.now(), ...(await api<{ leases: LeaseRow[]; count: number; more: boolean }>('GET', '/v1/leases?limit=100')) }), [page]);
  const [now, setNow] = useState(Date.now());
  const [open, setOpen] = useState<string>();
  const [ttl, setTtl] = useState('60');
  const [outcome, run] = useAction();
  useEffect(() => {
    const countdown = setInterval(() => setNow(Date.now()), 1000);
    const refresh = setInterval(() => setPage((p) => p + 1), REFRESH_MS);
    return () => (clearInterval(countdown), clearInterval(refresh));
  }, []);
  const elapsed = list.value ? Math.floor((now - list.value.at) / 1000) : 0;
  return (
    <section>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          void run('Grant a lease', () => api('POST', '/v1/leases', { ttl: Number(ttl) })).then(() => setPage((p) => p + 1));
        }}
      >
        <label>
          TTL (seconds) <input name="ttl" class="short" value={ttl} onInput={(e) => setTtl((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Grant lease</button>
        <span class="muted">{list.value ? `${list.value.count} leases${list.value.more ? ' (showing the first 100)' : ''}` : ''}</span>
      </form>
      {outcome}
      <ErrorBox error={list.error} />
      <table class="leases">
        <thead>
          <tr>
            <th>Lease</th>
            <th class="num">TTL left</th>
            <th class="num">Granted TTL</th>
            <th class="num">Keys</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(list.value?.leases ?? []).map((lease) => (
            <Fragment key={lease.id}>
              <tr data-lease={lease.id}>
                <td class="mono">
                  <a href="#" onClick={(e) => (e.preventDefault(), setOpen(open === lease.id ? undefined : lease.id))}>
                    {open === lease.id ? '▾' : '▸'} {lease.id}
                  </a>
                </td>
                <td class="num">{Math.max(0, lease.ttl - elapsed)} s</td>
                <td class="num">{lease.grantedTTL} s</td>
                <td class="num">{lease.keys}</td>
                <td>
                  <ConfirmButton
                    label="Revoke"
                    danger
                    question={`Revoke ${lease.id} and delete its ${lease.keys} keys?`}
                    onConfirm={() => void run(`Revoke lease ${lease.id}`, () => api('DELETE', `/v1/leases/${lease.id}`)).then(() => setPage((p) => p + 1))}
                  />
                </td>
              </tr>
              {open === lease.id && (
                <tr>
                  <td colSpan={5}>
                    <LeaseKeys id={lease.id} />
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
        </tbody>
      </table>
    </section>
  );
}
