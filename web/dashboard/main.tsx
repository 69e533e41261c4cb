// The Lichen dashboard: one page served at / by every member, fed by that member's HTTP API and
// its event stream. Views: overview, key-space heatmap, keys, leases, operations, auth; a login
// first while auth is on.
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { connectCluster, reconnectCluster, useCluster } from './cluster';
import { Heatmap } from './heatmap';
import { Keys } from './keys';
import { Leases } from './leases';
import { Operations } from './operations';
import { Overview } from './overview';
import { Auth, Login } from './auth';
import { logOut, refreshSession, useSession } from './session';
import { ErrorBox } from './ui';

const VIEWS = { overview: Overview, heatmap: Heatmap, keys: Keys, leases: Leases, operations: Operations, auth: Auth } as const;
type ViewName = keyof typeof VIEWS;

function viewFromHash(): ViewName {
  const name = location.hash.slice(1);
  return name in VIEWS ? (name as ViewName) : 'overview';
}

function ConnectionBanner() {
  const state = useCluster();
  if (state.connection !== 'lost') return null;
  const others = state.members.filter((m) => m.state === 'up' && m.httpAddress && m.httpAddress !== location.host);
  return (
    <div class="banner error" role="alert">
      Lost the connection to {location.host} ({state.error})
      {state.heardAt ? `, last heard at ${new Date(state.heardAt).toLocaleTimeString()}` : ''}; retrying. <button onClick={reconnectCluster}>Retry now</button>
      {others.length > 0 && (
        <>
          {' '}
          Other members:{' '}
          {others.map((m) => (
            <a key={m.id} href={`${location.protocol}//${m.httpAddress}/${location.hash}`}>
              {m.name}{' '}
            </a>
          ))}
        </>
      )}
    </div>
  );
}

function App() {
  const [view, setView] = useState<ViewName>(viewFromHash());
  const session = useSession();
  useEffect(() => {
    void refreshSession();
    connectCluster();
    const onHash = (): void => setView(viewFromHash());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const View = VIEWS[view];
  return (
    <>
      <header>
        <span class="brand">Lichen</span>
        <nav>
          {(Object.keys(VIEWS) as ViewName[]).map((name) => (
            <a key={name} href={`#${name}`} class={name === view ? 'active' : ''}>
              {name[0]!.toUpperCase() + name.slice(1)}
            </a>
          ))}
        </nav>
        <span class="muted host">{location.host}</span>
        {session.user !== null && (
          <span class="session">
            <span data-testid="user">{session.user}</span> <button onClick={() => void logOut()}>Log out</button>
          </span>
        )}
      </header>
      <main>
        <ConnectionBanner />
        <ErrorBox error={session.error} />
        {session.loading ? (
          <div class="loading">loading…</div>
        ) : session.enabled && session.user === null ? (
          <Login />
        ) : (
          // A new login draws every view afresh, with what this user may see.
          <View key={session.user ?? ''} />
        )}
      </main>
    </>
  );
}

const root = document.getElementById('app')!;
// The "loading" text of index.html goes: Preact renders next to what it did not make.
root.textContent = '';
render(<App />, root);
