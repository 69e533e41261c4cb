// The Lichen dashboard: one page served at / by every member, fed by that member's HTTP API and
// its event stream. Views: overview, key-space heatmap, keys, leases, operations.
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

const VIEWS = { overview: Overview, heatmap: Heatmap, keys: Keys, leases: Leases, operations: Operations } as const;
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
  useEffect(() => {
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
      </header>
      <main>
        <ConnectionBanner />
        <View />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
