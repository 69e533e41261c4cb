// Expected failures, as opposed to broken invariants (which are asserts that crash). Every layer
// throws LichenError with a stable code; the API layers map codes to gRPC codes and HTTP statuses
// in one table each (src/api/grpc/errors.ts, src/api/http/errors.ts).

export const ErrorCode = {
  /** Bad input: malformed, out of range, or contradictory. */
  InvalidArgument: 'InvalidArgument',
  /** A request, key or value is over a named limit. */
  TooLarge: 'TooLarge',
  /** The requested revision was compacted away. */
  Compacted: 'Compacted',
  /** The requested revision is newer than the store's current revision. */
  FutureRevision: 'FutureRevision',
  /** This node is not the leader and cannot forward (carries the leader hint when known). */
  NotLeader: 'NotLeader',
  /** No leader is known, or a quorum is unreachable: try again later. */
  Unavailable: 'Unavailable',
  /** A proposal or read did not complete in time; its outcome is unknown. */
  Timeout: 'Timeout',
  /** Too many requests in flight: a bounded queue is full. */
  Overloaded: 'Overloaded',
  /** The lease does not exist (never granted, revoked, or expired). */
  LeaseNotFound: 'LeaseNotFound',
  /** A lease with this id exists already. */
  LeaseExists: 'LeaseExists',
  /** The member does not exist. */
  MemberNotFound: 'MemberNotFound',
  /** A member with this id or address exists already. */
  MemberExists: 'MemberExists',
  /** A membership change is refused (would lose quorum, learner behind, one pending). */
  MembershipRefused: 'MembershipRefused',
  /** A txn writes one key twice. */
  DuplicateKey: 'DuplicateKey',
  /** Unknown resource (HTTP route, watch id). */
  NotFound: 'NotFound',
  /** The space quota is used up (the NOSPACE alarm is raised): writes that add data are refused. */
  NoSpace: 'NoSpace',
  /** The CORRUPT alarm is raised: a member's data differs from the others', writes are refused. */
  Corrupt: 'Corrupt',
  /** Something failed that the caller cannot fix; details in the message. */
  Internal: 'Internal',
  /** No valid credentials: none given while auth is enabled, a wrong password, an invalid or expired token. */
  Unauthenticated: 'Unauthenticated',
  /** The caller is known but may not do this (a key outside its roles' permissions, an admin call by a non-root user). */
  PermissionDenied: 'PermissionDenied',
  /** The request does not fit the current state: a user or role exists already, a role is not granted, auth is off. */
  FailedPrecondition: 'FailedPrecondition',
  /**
   * This member lost data it had promised to keep (raft log entries it acknowledged, or its whole
   * data directory): it must stop rather than vote, serve or accept writes.
   */
  DataLoss: 'DataLoss',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class LichenError extends Error {
  override readonly name = 'LichenError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra facts for the caller, e.g. { leaderId } for NotLeader, { compactRevision } for Compacted. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function isLichenError(error: unknown, code?: ErrorCode): error is LichenError {
  return error instanceof LichenError && (code === undefined || error.code === code);
}

/** An invariant check that stays on in production: a failure means a bug, so we crash. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}
