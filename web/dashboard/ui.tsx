// Small pieces every view uses: an error box, a button that asks for confirmation, and a hook that
// runs a request and keeps its result or error for display.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api';

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const code = error instanceof ApiError ? error.code : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div class="banner error" role="alert">
      <strong>{code}</strong>: {message}
    </div>
  );
}

/** A button whose action runs only after a second click on "Confirm". */
export function ConfirmButton(props: { label: string; question: string; onConfirm: () => void; disabled?: boolean; danger?: boolean }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button class={props.danger ? 'danger' : ''} disabled={props.disabled} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <span class="confirm">
      {props.question}{' '}
      <button
        class="danger"
        onClick={() => {
          setAsking(false);
          props.onConfirm();
        }}
      >
        Confirm
      </button>{' '}
      <button onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}

export interface Loaded<T> {
  value: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` when `deps` change (and on reload()); the last result or error is kept. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [value, setValue] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(true);
  const [nonce, setNonce] = useState(0);
  useEffect(() => {
    let current = true;
    setLoading(true);
    load().then(
      (v) => current && (setValue(v), setError(undefined), setLoading(false)),
      (e: unknown) => current && (setError(e), setLoading(false)),
    );
    return () => void (current = false);
  }, [...deps, nonce]);
  return { value, error, loading, reload: useCallback(() => setNonce((n) => n + 1), []) };
}

/** The outcome of an operation the user started: shown under it until the next one. */
export function useAction(): [outcome: ComponentChildren, run: (what: string, action: () => Promise<unknown>) => Promise<void>] {
  const [outcome, setOutcome] = useState<ComponentChildren>(null);
  const run = useCallback(async (what: string, action: () => Promise<unknown>) => {
    setOutcome(<div class="banner info">{what}…</div>);
    try {
      const result = await action();
      setOutcome(
        <div class="banner ok" role="status">
          {what}: done{result !== undefined ? <pre>{JSON.stringify(result, null, 2)}</pre> : null}
        </div>,
      );
    } catch (error) {
      setOutcome(<ErrorBox error={error} />);
    }
  }, []);
  return [outcome, run];
}
