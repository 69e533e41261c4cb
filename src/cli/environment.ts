// The LICHEN_* environment variables Lichen reads. A variable with the prefix that is none of
// them is most likely a typo (LICHEN_ENDPOINT for LICHEN_ENDPOINTS): unknown flags are refused,
// so an unknown variable is at least named in a warning instead of being silently ignored.
import { TLS_FLAG_ENV } from './client-commands.js';
import { SERVE_OPTIONS, UNSAFE_ENV } from './serve-config.js';

/** Read by the client commands, the shell and the benchmark (client-commands.ts, shell.ts), besides the TLS ones. */
const CLIENT_VARIABLES = ['LICHEN_ENDPOINTS', 'LICHEN_TIMEOUT', 'LICHEN_HISTORY_FILE'];

export function knownEnvironmentVariables(): Set<string> {
  return new Set([
    ...SERVE_OPTIONS.map((option) => option.env),
    'LICHEN_CONFIG',
    ...Object.values(UNSAFE_ENV),
    ...CLIENT_VARIABLES,
    ...Object.values(TLS_FLAG_ENV),
  ]);
}

/** One warning line per LICHEN_* variable that Lichen does not read, in name order. */
export function unknownVariableWarnings(env: Record<string, string | undefined>): string[] {
  const known = knownEnvironmentVariables();
  return Object.keys(env)
    .filter((name) => name.startsWith('LICHEN_') && !known.has(name))
    .sort()
    .map((name) => `lichen: warning: ignoring ${name}: Lichen reads no such variable (see the README's configuration section)`);
}
