// The member health check both client APIs answer /health with (etcd's checks): a leader is
// known, no alarm is raised, and a linearizable read completes in time.
import { formatId } from '../ids.js';
import { ErrorCode, isLichenError, LichenError } from '../errors.js';
import { AlarmAction, AlarmType, type AlarmMember, type EtcdBackend } from './backend.js';

export interface HealthProblem {
  code: ErrorCode;
  reason: string;
}

/**
 * Undefined when healthy, else what is wrong. Never rejects. `serializable` (etcd's
 * /health?serializable=true) reads locally instead of through the leader.
 */
export async function checkHealth(backend: EtcdBackend, timeoutMs: number, options: { serializable?: boolean } = {}): Promise<HealthProblem | undefined> {
  if (backend.leaderId() === 0) return { code: ErrorCode.Unavailable, reason: 'no leader is known' };
  try {
    const check = async (): Promise<string | undefined> => {
      const { alarms } = await backend.alarm({ action: AlarmAction.GET, memberId: 0, alarm: AlarmType.NONE });
      if (alarms.length > 0) return `alarm raised: ${alarms.map(describeAlarm).join(', ')}`;
      try {
        await backend.range({ key: new Uint8Array(Buffer.from('health')), countOnly: true, serializable: options.serializable === true });
      } catch (error) {
        // With auth enabled this anonymous read is refused, but only after its ReadIndex round
        // succeeded: the member is healthy (etcd's /health reasons the same way).
        if (!isLichenError(error, ErrorCode.Unauthenticated) && !isLichenError(error, ErrorCode.PermissionDenied)) throw error;
      }
      return undefined;
    };
    const problem = await withTimeout(check(), timeoutMs, 'the health check (alarms and a read)');
    return problem === undefined ? undefined : { code: ErrorCode.Unavailable, reason: problem };
  } catch (error) {
    const code = error instanceof LichenError ? error.code : ErrorCode.Internal;
    const message = error instanceof LichenError ? error.message : 'internal error';
    return { code, reason: `health check failed: ${message}` };
  }
}

function describeAlarm(alarm: AlarmMember): string {
  const name = Object.entries(AlarmType).find(([, value]) => value === alarm.alarm)?.[0] ?? String(alarm.alarm);
  return `${name} on member ${formatId(alarm.memberId)}`;
}

/** Resolves with `promise`, or rejects with Timeout after `timeoutMs`. */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LichenError(ErrorCode.Timeout, `${what} did not complete within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
