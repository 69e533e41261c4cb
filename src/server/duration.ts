// Go's duration syntax (time.ParseDuration), which etcd's duration flags take: one or more
// decimal numbers, each with a unit, e.g. "300ms", "1.5h", "2h45m". Returns milliseconds.
import { LichenError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
const WHOLE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;

export function parseGoDurationMs(text: string): number {
  const trimmed = text.trim();
  // Go accepts a bare "0" as the zero duration.
  if (trimmed === '0') return 0;
  if (!WHOLE.test(trimmed)) throw new LichenError('InvalidArgument', `"${text}" is not a duration like 300ms, 5m or 1h30m`);
  let ms = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) ms += Number(amount) * UNIT_MS[unit!]!;
  return ms;
}
