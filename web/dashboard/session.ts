// Who is logged in: GET /v1/auth/status says whether auth is on and whose token the page sends.
// With auth on and no user, the page shows the login; a refused token logs the page out.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, setToken, whenTokenRefused } from './api';
import { reconnectCluster } from './cluster';

export interface Session {
  /** Until the first answer. */
  loading: boolean;
  /** Why the status could not be read. */
  error?: unknown;
  enabled: boolean;
  /** null: anonymous. */
  user: string | null;
  roles: string[];
}

let session: Session = { loading: true, enabled: false, user: null, roles: [] };
const listeners = new Set<(s: Session) => void>();

function publish(next: Session): void {
  session = next;
  for (const listener of listeners) listener(session);
}

export async function refreshSession(): Promise<void> {
  try {
    const status = await api<{ enabled: boolean; user: string | null; roles: string[] }>('GET', '/v1/auth/status');
    publish({ loading: false, enabled: status.enabled, user: status.user, roles: status.roles });
  } catch (error) {
    // A token from before a restart (simple tokens live in memory): forget it and ask again.
    if (error instanceof ApiError && error.status === 401) return logOut();
    publish({ ...session, loading: false, error });
  }
}

/** Logs in; the event stream opens again with the token, so it sends what this user may see. */
export async function logIn(name: string, password: string): Promise<void> {
  const { token } = await api<{ token: string }>('POST', '/v1/auth/authenticate', { name, password });
  setToken(token);
  await refreshSession();
  reconnectCluster();
}

export function logOut(): Promise<void> {
  setToken(undefined);
  reconnectCluster();
  return refreshSession();
}

whenTokenRefused(() => void logOut());

export function useSession(): Session {
  const [current, setCurrent] = useState(session);
  useEffect(() => {
    listeners.add(setCurrent);
    setCurrent(session);
    return () => void listeners.delete(setCurrent);
  }, []);
  return current;
}
