// Turns a gRPC failure into a LichenError with a stable code, recognising etcd's error texts.
import { status, type ServiceError } from '@grpc/grpc-js';
import { ErrorCode, LichenError, type ErrorDetails, type EtcdErrorName } from '../errors.js';
import { ETCD_ERRORS } from '../api/grpc/errors.js';

const CODE_BY_ETCD_ERROR: Partial<Record<EtcdErrorName, ErrorCode>> = {
  compacted: ErrorCode.Compacted,
  futureRevision: ErrorCode.FutureRevision,
  leaseNotFound: ErrorCode.LeaseNotFound,
  leaseExists: ErrorCode.LeaseExists,
  memberNotFound: ErrorCode.MemberNotFound,
  memberExists: ErrorCode.MemberExists,
  peerURLExists: ErrorCode.MemberExists,
  memberNotEnoughStarted: ErrorCode.MembershipRefused,
  memberNotLearner: ErrorCode.MembershipRefused,
  learnerNotReady: ErrorCode.MembershipRefused,
  tooManyLearners: ErrorCode.MembershipRefused,
  badLeaderTransferee: ErrorCode.MembershipRefused,
  duplicateKey: ErrorCode.DuplicateKey,
  requestTooLarge: ErrorCode.TooLarge,
  tooManyRequests: ErrorCode.Overloaded,
  noLeader: ErrorCode.Unavailable,
  leaderChanged: ErrorCode.Unavailable,
  stopped: ErrorCode.Unavailable,
  unhealthy: ErrorCode.Unavailable,
  notSupportedForLearner: ErrorCode.Unavailable,
  notLeader: ErrorCode.NotLeader,
  timeout: ErrorCode.Timeout,
  timeoutDueToLeaderFail: ErrorCode.Timeout,
  permissionDenied: ErrorCode.PermissionDenied,
  invalidAuthToken: ErrorCode.Unauthenticated,
  authFailed: ErrorCode.Unauthenticated,
  userEmpty: ErrorCode.Unauthenticated,
  authOldRevision: ErrorCode.Unauthenticated,
  authNotEnabled: ErrorCode.FailedPrecondition,
};

const NAME_BY_MESSAGE = new Map<string, EtcdErrorName>(
  (Object.entries(ETCD_ERRORS) as [EtcdErrorName, { message: string }][]).map(([name, row]) => [row.message, name]),
);

const CODE_BY_GRPC_STATUS: Partial<Record<status, ErrorCode>> = {
  [status.INVALID_ARGUMENT]: ErrorCode.InvalidArgument,
  [status.OUT_OF_RANGE]: ErrorCode.InvalidArgument,
  [status.NOT_FOUND]: ErrorCode.NotFound,
  [status.UNAVAILABLE]: ErrorCode.Unavailable,
  [status.DEADLINE_EXCEEDED]: ErrorCode.Timeout,
  [status.RESOURCE_EXHAUSTED]: ErrorCode.Overloaded,
};

export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number';
}

/** A LichenError for a failed call; details keep the gRPC code, etcd's error name and the leader hint. */
export function fromGrpcError(error: unknown): LichenError {
  if (error instanceof LichenError) return error;
  if (!isServiceError(error)) {
    return new LichenError(ErrorCode.Internal, error instanceof Error ? error.message : String(error));
  }
  const message = error.details || error.message;
  const etcdError = NAME_BY_MESSAGE.get(message);
  const code = (etcdError && CODE_BY_ETCD_ERROR[etcdError]) ?? CODE_BY_GRPC_STATUS[error.code] ?? ErrorCode.Internal;
  const details: ErrorDetails = { grpcCode: error.code };
  if (etcdError) details.etcdError = etcdError;
  const leader = error.metadata?.get('lichen-leader-id')[0];
  if (leader !== undefined) details.leaderId = Number(leader);
  return new LichenError(code, message, details);
}

/** A watch the server refused: its cancel reason (for auth, etcd writes "rpc error: code = … desc = …") as an error. */
export function refusalOf(reason: string): LichenError {
  const message = /^rpc error: code = \w+ desc = (.*)$/s.exec(reason)?.[1] ?? reason;
  const etcdError = NAME_BY_MESSAGE.get(message);
  const code = (etcdError && CODE_BY_ETCD_ERROR[etcdError]) ?? ErrorCode.InvalidArgument;
  return new LichenError(code, message, etcdError ? { etcdError } : {});
}

/**
 * True when the server certainly did not execute the request, so even a write may be sent again:
 * it was refused before any work (not leader), or the connection never got established.
 */
export function surelyNotExecuted(error: LichenError): boolean {
  if (error.details.etcdError === 'notLeader') return true;
  if (error.details.etcdError !== undefined) return false;
  if (error.details.grpcCode === status.DEADLINE_EXCEEDED) return neverConnected(error);
  if (error.details.grpcCode !== status.UNAVAILABLE) return false;
  return /No connection established|ECONNREFUSED|Name resolution failed|connection refused/i.test(error.message);
}

/** A deadline that passed while grpc-js still had no connection to send the call on. */
function neverConnected(error: LichenError): boolean {
  return error.details.grpcCode === status.DEADLINE_EXCEEDED && error.message.includes('Waiting for LB pick');
}

/** "750ms", "1.5s", "5s": a duration as a person would say it. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${Number((ms / 1000).toFixed(1))}s`;
}

/**
 * Why one attempt on one endpoint failed, as the rest of a sentence that starts with the
 * endpoint: "refused the connection", "gave no answer within 5s". grpc-js's own texts (name
 * resolution, LB pick, the channel's last error) are library internals a user cannot act on.
 */
export function describeAttemptFailure(error: LichenError, attemptMs: number): string {
  if (error.details.etcdError !== undefined) return `answered "${error.message}"`;
  if (error.details.grpcCode === undefined) return `failed (${error.message})`;
  if (neverConnected(error)) return `could not be connected to within ${formatDuration(attemptMs)}`;
  if (error.details.grpcCode === status.DEADLINE_EXCEEDED) return `gave no answer within ${formatDuration(attemptMs)}`;
  const text = error.message;
  if (/ECONNREFUSED|connection refused/i.test(text)) return 'refused the connection';
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/i.test(text)) return 'is a host name that does not resolve';
  if (/EHOSTUNREACH|ENETUNREACH/i.test(text)) return 'is unreachable (no route to the host)';
  if (/ETIMEDOUT/i.test(text)) return 'did not accept the connection in time';
  if (/ECONNRESET|Connection dropped|socket hang up|closed/i.test(text)) return 'dropped the connection';
  if (error.details.grpcCode === status.UNAVAILABLE) return 'could not be reached';
  return `failed (${text.split(/[.,\n]/)[0]})`;
}

/**
 * True when a member refused the request's token (invalid, expired, issued for an older auth
 * state) or found none while auth is enabled: a new login may let it through (clientv3's rule).
 */
export function needsNewToken(error: LichenError): boolean {
  const name = error.details.etcdError;
  return name === 'invalidAuthToken' || name === 'authOldRevision' || name === 'userEmpty';
}

/** True when another endpoint (or the same one later) may well answer differently. */
export function worthRetrying(error: LichenError): boolean {
  return (
    error.code === ErrorCode.Unavailable ||
    error.code === ErrorCode.NotLeader ||
    error.code === ErrorCode.Timeout ||
    error.code === ErrorCode.Overloaded
  );
}
