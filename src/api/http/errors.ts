// The one table that maps error codes to HTTP statuses, and the JSON shape of every error
// response: {"error": {"code", "message", "details"?}}. Handlers throw LichenError (or the
// HTTP-only MethodNotAllowed below); the server turns whatever was thrown into a response here.
import { ErrorCode, isLichenError, LichenError, type ErrorDetails } from '../../errors.js';
import { formatId } from '../../ids.js';

/** Codes that exist only at the HTTP layer (routing), besides every LichenError code. */
export const HttpOnlyCode = {
  /** The route exists but not for this method; the response carries an Allow header. */
  MethodNotAllowed: 'MethodNotAllowed',
} as const;
export type HttpErrorCode = ErrorCode | (typeof HttpOnlyCode)[keyof typeof HttpOnlyCode];

/**
 * Status per code. Choices worth explaining:
 * - Compacted is 410 Gone: the revision existed but its history is gone for good.
 * - FutureRevision is 400: the client asked for a revision that does not exist yet.
 * - NotLeader is 503 (with details.leaderId): the HTTP API does not redirect; retry elsewhere.
 * - Overloaded is 429 with Retry-After, so clients back off instead of hammering a full queue.
 * - Conflicts with existing state (LeaseExists, MemberExists, MembershipRefused, and
 *   FailedPrecondition: a user or role that exists, a role not granted, auth not enabled) are 409.
 * - NoSpace is 507 Insufficient Storage: the space quota is used up until an operator frees it.
 * - Unauthenticated (no, wrong or expired credentials) is 401; PermissionDenied is 403.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<HttpErrorCode, number>> = {
  InvalidArgument: 400,
  TooLarge: 413,
  Compacted: 410,
  FutureRevision: 400,
  NotLeader: 503,
  Unavailable: 503,
  Timeout: 504,
  Overloaded: 429,
  LeaseNotFound: 404,
  LeaseExists: 409,
  MemberNotFound: 404,
  MemberExists: 409,
  MembershipRefused: 409,
  DuplicateKey: 400,
  NotFound: 404,
  NoSpace: 507,
  Corrupt: 500,
  Internal: 500,
  Unauthenticated: 401,
  PermissionDenied: 403,
  FailedPrecondition: 409,
  DataLoss: 500,
  MethodNotAllowed: 405,
};

/** Seconds a client should wait before retrying an Overloaded or Unavailable request. */
export const RETRY_AFTER_SECONDS = 1;

/** Thrown by the router when the path exists but the method does not. */
export class MethodNotAllowedError extends Error {
  readonly code = HttpOnlyCode.MethodNotAllowed;
  constructor(
    readonly method: string,
    readonly allowed: readonly string[],
  ) {
    super(`method ${method} is not allowed here; allowed: ${allowed.join(', ')}`);
  }
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: HttpErrorCode; message: string; details?: Record<string, unknown> } };
}

/**
 * The response for anything a handler threw. Errors that are not ours (bugs, or a backend that
 * threw a plain Error) become 500 Internal without their message, which may hold internals;
 * the caller logs them. `internal` tells the caller whether it should log.
 */
export function errorResponse(error: unknown): ErrorResponse & { internal: boolean } {
  if (error instanceof MethodNotAllowedError) {
    return {
      status: HTTP_STATUS_BY_CODE.MethodNotAllowed,
      headers: { Allow: error.allowed.join(', ') },
      body: { error: { code: error.code, message: error.message } },
      internal: false,
    };
  }
  if (isLichenError(error)) {
    const headers: Record<string, string> = {};
    if (error.code === ErrorCode.Overloaded || error.code === ErrorCode.Unavailable || error.code === ErrorCode.NotLeader) {
      headers['Retry-After'] = String(RETRY_AFTER_SECONDS);
    }
    const details = jsonDetails(error.details);
    return {
      status: HTTP_STATUS_BY_CODE[error.code] ?? 500,
      headers,
      body: { error: { code: error.code, message: error.message, ...(details ? { details } : {}) } },
      internal: error.code === ErrorCode.Internal,
    };
  }
  return {
    status: 500,
    headers: {},
    body: { error: { code: ErrorCode.Internal, message: 'internal error' } },
    internal: true,
  };
}

/** The details that hold a lease or member id: shown as formatId shows ids everywhere else. */
const ID_DETAILS: ReadonlySet<string> = new Set(['lease', 'leaderId', 'nodeId']);

/** The details as JSON, ids as formatId shows them, or undefined when there are none. */
function jsonDetails(details: ErrorDetails): Record<string, unknown> | undefined {
  const entries = Object.entries(details).flatMap(([name, value]): Array<[string, unknown]> => {
    // etcd's error name picks the gRPC text; the HTTP API has its own codes.
    if (value === undefined || name === 'etcdError') return [];
    return [[name, ID_DETAILS.has(name) && typeof value === 'number' ? formatId(value) : value]];
  });
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
}

/** Shorthand for the 400s the request parsers raise. */
export function invalidArgument(message: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, message);
}
