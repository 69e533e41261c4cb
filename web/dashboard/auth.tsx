// The login (shown while auth is on and nobody is logged in) and the Auth view: users with their
// roles, roles with their key-range permissions, both edited; enabling and disabling auth. The
// member decides what the user may do (the root role for all of it, once auth is on); a refusal
// is shown where the answer would have been.
import { useState } from 'preact/hooks';
import { api } from './api';
import { logIn, refreshSession, useSession } from './session';
import { ConfirmButton, ErrorBox, useAction, useLoad } from './ui';

export function Login() {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    try {
      await logIn(name, password);
      setError(undefined);
    } catch (e) {
      setError(e);
    }
    setBusy(false);
  };
  return (
    <form class="login op" onSubmit={(e) => void submit(e)}>
      <h3>Log in</h3>
      <p class="muted">Authentication is enabled on this cluster: log in as one of its users (etcdctl's users and passwords).</p>
      <label>
        User <input name="user" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} autoComplete="username" />
      </label>
      <label>
        Password <input name="password" type="password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} autoComplete="current-password" />
      </label>
      <button class="primary" type="submit" disabled={busy || name === ''}>
        Log in
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

interface UserRow {
  name: string;
  roles: string[];
}

interface PermissionRow {
  permType: 'READ' | 'WRITE' | 'READWRITE';
  key: string;
  keyEncoding?: 'base64';
  rangeEnd: string;
  rangeEndEncoding?: 'base64';
}

interface RoleRow {
  name: string;
  permissions: PermissionRow[];
}

/** The range as etcdctl's role get shows it: a key, a prefix, [key, end) or a key and every one after. */
export function describeRange(p: PermissionRow): string {
  if (p.rangeEnd === '') return p.key;
  if (p.rangeEnd === '\u0000') return `${p.key} and every key after it`;
  if (p.key !== '' && p.rangeEnd === p.key.slice(0, -1) + String.fromCharCode(p.key.charCodeAt(p.key.length - 1) + 1)) return `${p.key}* (prefix)`;
  return `[${p.key}, ${p.rangeEnd})`;
}

type RangeKind = 'key' | 'prefix' | 'range' | 'from';

function Users({ roles, run }: { roles: string[]; run: ReturnType<typeof useAction>[1] }) {
  const users = useLoad(() => api<{ users: UserRow[] }>('GET', '/v1/auth/users'), []);
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [grant, setGrant] = useState<Record<string, string>>({});
  // The tables show the outcome; the banner says only that it was done.
  const act = (what: string, action: () => Promise<unknown>) => void run(what, () => action().then(() => undefined)).then(users.reload);
  return (
    <div class="op">
      <h3>Users</h3>
      <ErrorBox error={users.error} />
      <table>
        <thead>
          <tr>
            <th>user</th>
            <th>roles</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(users.value?.users ?? []).map((user) => (
            <tr key={user.name} data-user={user.name}>
              <td class="mono">{user.name}</td>
              <td>
                {user.roles.map((role) => (
                  <span class="badge" key={role}>
                    {role}{' '}
                    <button class="link" title={`revoke ${role}`} onClick={() => act(`Revoke ${role} from ${user.name}`, () => api('POST', `/v1/auth/users/${encodeURIComponent(user.name)}`, { revokeRole: role }))}>
                      ×
                    </button>
                  </span>
                ))}{' '}
                <select value={grant[user.name] ?? ''} onChange={(e) => setGrant({ ...grant, [user.name]: (e.target as HTMLSelectElement).value })}>
                  <option value="">grant a role…</option>
                  {roles.filter((r) => !user.roles.includes(r)).map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>{' '}
                <button disabled={!grant[user.name]} onClick={() => act(`Grant ${grant[user.name]} to ${user.name}`, () => api('POST', `/v1/auth/users/${encodeURIComponent(user.name)}`, { grantRole: grant[user.name] }))}>
                  Grant
                </button>
              </td>
              <td>
                <ConfirmButton label="Delete" danger question={`Delete the user ${user.name}?`} onConfirm={() => act(`Delete ${user.name}`, () => api('DELETE', `/v1/auth/users/${encodeURIComponent(user.name)}`))} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="toolbar">
        <input placeholder="new user" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <input placeholder="password" type="password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        <button disabled={name === ''} onClick={() => act(`Add ${name}`, () => api('POST', '/v1/auth/users', password ? { name, password } : { name }))}>
          Add user
        </button>
      </div>
    </div>
  );
}

function Roles({ list, run }: { list: ReturnType<typeof useLoad<{ roles: RoleRow[] }>>; run: ReturnType<typeof useAction>[1] }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState('');
  const [permType, setPermType] = useState<PermissionRow['permType']>('READ');
  const [kind, setKind] = useState<RangeKind>('prefix');
  const [key, setKey] = useState('');
  const [end, setEnd] = useState('');
  const act = (what: string, action: () => Promise<unknown>) => void run(what, () => action().then(() => undefined)).then(list.reload);
  const roles = list.value?.roles ?? [];
  const target = role || roles[0]?.name || '';
  const grant = { permType, key, ...(kind === 'prefix' ? { prefix: true } : kind === 'range' ? { rangeEnd: end } : kind === 'from' ? { rangeEnd: '\u0000' } : {}) };
  return (
    <div class="op">
      <h3>Roles and permissions</h3>
      <ErrorBox error={list.error} />
      <table>
        <thead>
          <tr>
            <th>role</th>
            <th>permissions</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {roles.map((r) => (
            <tr key={r.name} data-role-name={r.name}>
              <td class="mono">{r.name}</td>
              <td>
                {r.name === 'root' && <div class="muted">every key, and the cluster's administration</div>}
                {r.permissions.map((p) => (
                  <div key={`${p.key}\u0000${p.rangeEnd}`} class="mono">
                    {p.permType} {describeRange(p)}{' '}
                    <button class="link" title="revoke" onClick={() => act(`Revoke ${describeRange(p)} from ${r.name}`, () => api('POST', `/v1/auth/roles/${encodeURIComponent(r.name)}`, { revoke: { key: p.key, rangeEnd: p.rangeEnd } }))}>
                      ×
                    </button>
                  </div>
                ))}
              </td>
              <td>
                <ConfirmButton label="Delete" danger question={`Delete the role ${r.name}?`} onConfirm={() => act(`Delete ${r.name}`, () => api('DELETE', `/v1/auth/roles/${encodeURIComponent(r.name)}`))} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="toolbar">
        <input placeholder="new role" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <button disabled={name === ''} onClick={() => act(`Add ${name}`, () => api('POST', '/v1/auth/roles', { name }))}>
          Add role
        </button>
      </div>
      <div class="toolbar grant">
        Grant{' '}
        <select value={permType} onChange={(e) => setPermType((e.target as HTMLSelectElement).value as PermissionRow['permType'])}>
          <option>READ</option>
          <option>WRITE</option>
          <option>READWRITE</option>
        </select>
        on
        <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as RangeKind)}>
          <option value="key">the key</option>
          <option value="prefix">the prefix</option>
          <option value="range">the range from</option>
          <option value="from">every key from</option>
        </select>
        <input placeholder="key" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
        {kind === 'range' && <input placeholder="end (exclusive)" value={end} onInput={(e) => setEnd((e.target as HTMLInputElement).value)} />}
        to
        <select value={target} onChange={(e) => setRole((e.target as HTMLSelectElement).value)}>
          {roles.map((r) => (
            <option key={r.name}>{r.name}</option>
          ))}
        </select>
        <button disabled={key === '' || target === ''} onClick={() => act(`Grant ${permType} to ${target}`, () => api('POST', `/v1/auth/roles/${encodeURIComponent(target)}`, { grant }))}>
          Grant
        </button>
      </div>
    </div>
  );
}

export function Auth() {
  const session = useSession();
  const [outcome, run] = useAction();
  const roles = useLoad(() => api<{ roles: RoleRow[] }>('GET', '/v1/auth/roles'), [session.user, session.enabled]);
  const switchAuth = (on: boolean) => void run(on ? 'Enable auth' : 'Disable auth', () => api('POST', on ? '/v1/auth/enable' : '/v1/auth/disable').then(() => undefined)).then(refreshSession);
  return (
    <section class="auth">
      <div class="summary">
        <div class="stat">
          <span class="label">Authentication</span>
          <span class="value" data-testid="auth-enabled">{session.enabled ? 'enabled' : 'disabled'}</span>
        </div>
        <div class="stat">
          <span class="label">Logged in as</span>
          <span class="value">{session.user ?? (session.enabled ? 'nobody' : '(auth is off)')}</span>
          {session.roles.length > 0 && <span class="muted"> roles: {session.roles.join(', ')}</span>}
        </div>
        <div class="stat">
          {session.enabled ? (
            <ConfirmButton label="Disable auth" danger question="Disable authentication? Every client may then read and write every key." onConfirm={() => switchAuth(false)} />
          ) : (
            <ConfirmButton label="Enable auth" question="Enable authentication? It needs a user root with the role root; every client must then log in." onConfirm={() => switchAuth(true)} />
          )}
        </div>
      </div>
      {outcome}
      <div class="operations">
        <Users roles={(roles.value?.roles ?? []).map((r) => r.name)} run={run} />
        <Roles list={roles} run={run} />
      </div>
    </section>
  );
}
