// Keys: browse by prefix as a tree (split on '/') or a paged list, view a value (text, JSON pretty
// printed, hex for binary), its history with a diff between two versions, edit, delete, attach a
// lease, and a live watch tail of a prefix.
import { diffLines } from 'diff';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, bytesOf, NO_ID, keyPath, type KeyValue, type WatchEvent } from './api';
import { openStream } from './stream';
import { ConfirmButton, ErrorBox, useLoad } from './ui';

interface Child {
  name: string;
  nameEncoding?: 'base64';
  folder: boolean;
}

function textOf(kv: KeyValue): { text: string; binary: boolean } {
  if (kv.encoding !== 'base64') return { text: kv.value ?? '', binary: false };
  return { text: hex(bytesOf(kv.value, 'base64')), binary: true };
}

function hex(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = [...bytes.subarray(offset, offset + 16)];
    const ascii = row.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${offset.toString(16).padStart(8, '0')}  ${row.map((b) => b.toString(16).padStart(2, '0')).join(' ').padEnd(48)}  ${ascii}`);
  }
  return lines.join('\n');
}

/** The value as shown: JSON pretty printed when it parses as an object or array, else as it is. */
function shown(kv: KeyValue): { text: string; format: 'json' | 'text' | 'hex' } {
  const { text, binary } = textOf(kv);
  if (binary) return { text, format: 'hex' };
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return { text: JSON.stringify(JSON.parse(trimmed), null, 2), format: 'json' };
    } catch {
      // Not JSON after all: shown as text.
    }
  }
  return { text, format: 'text' };
}

// ---- browsing ----

function TreeFolder({ prefix, onSelect, selected }: { prefix: string; onSelect: (key: string) => void; selected?: string }) {
  const [children, setChildren] = useState<Child[]>([]);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<unknown>();
  const [open, setOpen] = useState<Set<string>>(new Set());
  const load = async (after?: string): Promise<void> => {
    try {
      const page = await api<{ children: Child[]; more: boolean }>('GET', `/v1/children/${keyPath(prefix)}?limit=100${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      setChildren((c) => (after ? [...c, ...page.children] : page.children));
      setMore(page.more);
      setError(undefined);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => void load(), [prefix]);
  return (
    <ul class="tree">
      <ErrorBox error={error} />
      {children.map((child) => {
        const full = prefix + child.name;
        if (!child.folder) {
          return (
            <li key={full} class={selected === full ? 'selected' : ''}>
              <a href="#" data-key={full} onClick={(e) => (e.preventDefault(), onSelect(full))}>
                {child.name}
              </a>
            </li>
          );
        }
        const isOpen = open.has(full);
        return (
          <li key={full}>
            <a
              href="#"
              class="folder"
              onClick={(e) => {
                e.preventDefault();
                const next = new Set(open);
                if (isOpen) next.delete(full);
                else next.add(full);
                setOpen(next);
              }}
            >
              {isOpen ? '▾' : '▸'} {child.name}
            </a>
            {isOpen && <TreeFolder prefix={full} onSelect={onSelect} selected={selected} />}
          </li>
        );
      })}
      {more && (
        <li>
          <button class="link" onClick={() => void load(children.at(-1)?.name)}>
            more…
          </button>
        </li>
      )}
      {children.length === 0 && !error && <li class="muted">(empty)</li>}
    </ul>
  );
}

function KeyList({ prefix, onSelect, selected }: { prefix: string; onSelect: (key: string) => void; selected?: string }) {
  const [pages, setPages] = useState<string[]>(['']);
  const page = useLoad(
    () => api<{ kvs: KeyValue[]; count: number; more: boolean }>('GET', `/v1/keys/${keyPath(prefix)}?limit=50${pages.at(-1) ? `&after=${encodeURIComponent(pages.at(-1)!)}` : ''}`),
    [prefix, pages.length],
  );
  useEffect(() => setPages(['']), [prefix]);
  const kvs = page.value?.kvs ?? [];
  return (
    <div>
      <ErrorBox error={page.error} />
      <p class="muted">
        {page.value ? `${page.value.count} keys under "${prefix}" · page ${pages.length}` : 'loading…'}
      </p>
      <table class="keylist">
        <tbody>
          {kvs.map((kv) => (
            <tr key={kv.key} class={selected === kv.key ? 'selected' : ''}>
              <td>
                <a href="#" data-key={kv.key} onClick={(e) => (e.preventDefault(), onSelect(kv.key))}>
                  {kv.keyEncoding === 'base64' ? `base64:${kv.key}` : kv.key}
                </a>
              </td>
              <td class="num muted">v{kv.version}</td>
              <td class="num muted">rev {kv.modRevision}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <button disabled={pages.length === 1} onClick={() => setPages(pages.slice(0, -1))}>
        ← previous
      </button>{' '}
      <button disabled={!page.value?.more} onClick={() => setPages([...pages, kvs.at(-1)!.key])}>
        next →
      </button>
    </div>
  );
}

// ---- one key ----

function History({ keyName, version }: { keyName: string; version: number }) {
  const history = useLoad(() => api<{ versions: KeyValue[]; more: boolean; compacted: boolean }>('GET', `/v1/history/${keyPath(keyName)}?limit=50`), [keyName, version]);
  const versions = history.value?.versions ?? [];
  const [pair, setPair] = useState<[number, number]>([1, 0]);
  useEffect(() => setPair([1, 0]), [keyName, version]);
  const older = versions[pair[0]];
  const newer = versions[pair[1]];
  return (
    <div class="history">
      <h3>History</h3>
      <ErrorBox error={history.error} />
      <table>
        <thead>
          <tr>
            <th>old</th>
            <th>new</th>
            <th class="num">version</th>
            <th class="num">revision</th>
            <th>value</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((kv, i) => (
            <tr key={kv.modRevision} data-revision={kv.modRevision}>
              <td>
                <input type="radio" name="older" checked={pair[0] === i} onChange={() => setPair([i, pair[1]])} />
              </td>
              <td>
                <input type="radio" name="newer" checked={pair[1] === i} onChange={() => setPair([pair[0], i])} />
              </td>
              <td class="num">{kv.version}</td>
              <td class="num">{kv.modRevision}</td>
              <td class="mono clip">{textOf(kv).text.slice(0, 80)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {history.value?.more && <p class="muted">Older versions exist (showing the newest {versions.length}).</p>}
      {history.value?.compacted && <p class="muted">Versions before the compacted revision are gone.</p>}
      {older && newer && older !== newer && (
        <div class="diff" data-testid="diff">
          <p class="muted">
            Changes from revision {older.modRevision} to revision {newer.modRevision}:
          </p>
          <pre>
            {diffLines(shown(older).text, shown(newer).text).map((part, i) => (
              <span key={i} class={part.added ? 'added' : part.removed ? 'removed' : ''}>
                {part.value
                  .replace(/\n$/, '')
                  .split('\n')
                  .map((line) => `${part.added ? '+ ' : part.removed ? '- ' : '  '}${line}\n`)
                  .join('')}
              </span>
            ))}
          </pre>
        </div>
      )}
    </div>
  );
}

function KeyDetail({ keyName, onDeleted }: { keyName: string; onDeleted: () => void }) {
  const loaded = useLoad(() => api<KeyValue & { revision: number }>('GET', `/v1/kv/${keyPath(keyName)}`), [keyName]);
  const [editing, setEditing] = useState<string | undefined>();
  const [lease, setLease] = useState('');
  const [error, setError] = useState<unknown>();
  const [mode, setMode] = useState<'auto' | 'text' | 'hex'>('auto');
  const kv = loaded.value;
  useEffect(() => {
    setEditing(undefined);
    setError(undefined);
    setLease(kv && kv.lease !== NO_ID ? kv.lease : '');
  }, [keyName, kv?.modRevision]);

  const save = async (value: string): Promise<void> => {
    try {
      // The member checks the id (16 hex digits, as the Leases view shows it) and says what is wrong.
      await api('PUT', `/v1/kv/${keyPath(keyName)}`, { value, lease: lease.trim() || NO_ID });
      setEditing(undefined);
      loaded.reload();
    } catch (e) {
      setError(e);
    }
  };
  if (loaded.error instanceof ApiError && loaded.error.code === 'NotFound') {
    return (
      <div class="detail">
        <h2 class="mono">{keyName}</h2>
        <p class="muted">This key does not exist (it may have been deleted).</p>
      </div>
    );
  }
  if (!kv) return <div class="detail">{loaded.error ? <ErrorBox error={loaded.error} /> : <p class="muted">loading…</p>}</div>;
  const view = shown(kv);
  const text = mode === 'hex' ? hex(bytesOf(kv.value, kv.encoding)) : mode === 'text' ? textOf(kv).text : view.text;
  return (
    <div class="detail">
      <h2 class="mono" data-testid="key-name">
        {keyName}
      </h2>
      <p class="muted">
        version {kv.version} · created at revision {kv.createRevision} · modified at revision {kv.modRevision} · lease {kv.lease !== NO_ID ? kv.lease : 'none'} ·{' '}
        {bytesOf(kv.value, kv.encoding).length} bytes · shown as {mode === 'auto' ? view.format : mode}{' '}
        <select value={mode} onChange={(e) => setMode((e.target as HTMLSelectElement).value as typeof mode)}>
          <option value="auto">auto</option>
          <option value="text">text</option>
          <option value="hex">hex</option>
        </select>
      </p>
      <ErrorBox error={error} />
      {editing === undefined ? (
        <pre class="value" data-testid="value">
          {text}
        </pre>
      ) : (
        <textarea class="value" data-testid="editor" value={editing} onInput={(e) => setEditing((e.target as HTMLTextAreaElement).value)} />
      )}
      <div class="toolbar">
        {editing === undefined ? (
          <button disabled={view.format === 'hex'} title={view.format === 'hex' ? 'binary values are not edited here' : ''} onClick={() => setEditing(textOf(kv).text)}>
            Edit
          </button>
        ) : (
          <>
            <button class="primary" onClick={() => void save(editing)}>
              Save
            </button>
            <button onClick={() => setEditing(undefined)}>Cancel</button>
          </>
        )}
        <label>
          lease <input class="mono short" placeholder="none" value={lease} onInput={(e) => setLease((e.target as HTMLInputElement).value)} />
        </label>
        <button disabled={view.format === 'hex'} onClick={() => void save(editing ?? textOf(kv).text)}>
          Set lease
        </button>
        <ConfirmButton
          label="Delete"
          danger
          question={`Delete ${keyName}?`}
          onConfirm={() =>
            void api('DELETE', `/v1/kv/${keyPath(keyName)}`).then(
              () => onDeleted(),
              (e: unknown) => setError(e),
            )
          }
        />
      </div>
      <History keyName={keyName} version={kv.modRevision} />
    </div>
  );
}

function NewKey({ onCreated }: { onCreated: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [error, setError] = useState<unknown>();
  return (
    <form
      class="newkey"
      onSubmit={(e) => {
        e.preventDefault();
        api('PUT', `/v1/kv/${keyPath(key)}`, { value }).then(
          () => (setError(undefined), onCreated(key)),
          (err: unknown) => setError(err),
        );
      }}
    >
      <input name="key" placeholder="new key" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} required />
      <input name="value" placeholder="value" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
      <button class="primary" type="submit">
        Create
      </button>
      <ErrorBox error={error} />
    </form>
  );
}

// ---- watch tail ----

const TAIL_EVENTS_MAX = 200;

function WatchTail({ initialPrefix }: { initialPrefix: string }) {
  const [prefix, setPrefix] = useState(initialPrefix);
  const [watching, setWatching] = useState<string | undefined>();
  const [events, setEvents] = useState<Array<WatchEvent & { at: number }>>([]);
  const [status, setStatus] = useState('');
  useEffect(() => {
    if (watching === undefined) return;
    setStatus(`watching "${watching}"…`);
    const stream = openStream(`/v1/watch/${keyPath(watching)}?prefix=true`, {
      onEvent: (event, data) => {
        if (event === 'created') setStatus(`watching "${watching}"`);
        else if (event === 'events') {
          const batch = JSON.parse(data) as WatchEvent[];
          setEvents((old) => [...batch.reverse().map((ev) => ({ ...ev, at: Date.now() })), ...old].slice(0, TAIL_EVENTS_MAX));
        } else if (event === 'canceled') setStatus(`canceled: ${(JSON.parse(data) as { reason: string }).reason}`);
        else if (event === 'compacted') setStatus('the watch fell behind the compaction');
      },
      onError: (message) => setStatus(`watching "${watching}": ${message}; reconnecting…`),
    });
    return () => stream.close();
  }, [watching]);
  return (
    <section class="tail">
      <h3>Watch tail</h3>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setEvents([]);
          setWatching(watching === undefined ? prefix : undefined);
        }}
      >
        <input name="watch-prefix" class="mono" placeholder="prefix (empty: every key)" value={prefix} disabled={watching !== undefined} onInput={(e) => setPrefix((e.target as HTMLInputElement).value)} />
        <button type="submit">{watching === undefined ? 'Start' : 'Stop'}</button>
        <span class="muted">{status}</span>
      </form>
      <table class="events" data-testid="watch-events">
        <tbody>
          {events.map((ev) => (
            <tr key={`${ev.kv.modRevision}-${ev.kv.key}`} class={ev.type === 'DELETE' ? 'removed' : ''}>
              <td class="muted">{new Date(ev.at).toLocaleTimeString()}</td>
              <td>{ev.type}</td>
              <td class="mono">{ev.kv.key}</td>
              <td class="num">rev {ev.kv.modRevision}</td>
              <td class="mono clip">{ev.type === 'PUT' ? textOf(ev.kv).text.slice(0, 80) : ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

// ---- the view ----

export function Keys() {
  const [prefix, setPrefix] = useState('');
  const [search, setSearch] = useState('');
  const [mode, setMode] = useState<'tree' | 'list'>('tree');
  const [selected, setSelected] = useState<string>();
  const [generation, setGeneration] = useState(0);
  return (
    <section>
      <div class="keys">
        <div class="browser">
          <form
            class="toolbar"
            onSubmit={(e) => {
              e.preventDefault();
              setPrefix(search);
            }}
          >
            <input name="search" class="mono" placeholder="search by prefix" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
            <button type="submit">Go</button>
            <label>
              <input type="radio" name="browse" checked={mode === 'tree'} onChange={() => setMode('tree')} /> tree
            </label>
            <label>
              <input type="radio" name="browse" checked={mode === 'list'} onChange={() => setMode('list')} /> list
            </label>
          </form>
          <NewKey
            onCreated={(key) => {
              setSelected(key);
              setGeneration((g) => g + 1);
            }}
          />
          {mode === 'tree' ? (
            <TreeFolder key={`${prefix}#${generation}`} prefix={prefix} onSelect={setSelected} selected={selected} />
          ) : (
            <KeyList key={`${prefix}#${generation}`} prefix={prefix} onSelect={setSelected} selected={selected} />
          )}
        </div>
        <div class="pane">
          {selected === undefined ? (
            <p class="muted">Choose a key to see its value and history.</p>
          ) : (
            <KeyDetail
              keyName={selected}
              onDeleted={() => {
                setSelected(undefined);
                setGeneration((g) => g + 1);
              }}
            />
          )}
        </div>
      </div>
      <WatchTail initialPrefix={prefix} />
    </section>
  );
}
