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

/**
 * etcd's named errors. A layer below the API says which one it means by name; the words etcd
 * clients match on live only in src/api (api/grpc/errors.ts has a row for every name).
 */
export const ETCD_ERROR_NAMES = [
  'emptyKey', 'keyNotFound', 'valueProvided', 'leaseProvided', 'ttlZero', 'tooManyOps', 'duplicateKey', 'invalidSortOption',
  'compacted', 'futureRevision', 'noSpace',
  'leaseNotFound', 'leaseExists', 'leaseTTLTooLarge',
  'memberExists', 'peerURLExists', 'memberNotEnoughStarted', 'memberBadURLs', 'memberNotFound', 'memberNotLearner', 'learnerNotReady', 'tooManyLearners',
  'requestTooLarge', 'tooManyRequests',
  'rootUserNotExist', 'rootRoleNotExist', 'userAlreadyExist', 'userEmpty', 'userNotFound', 'roleAlreadyExist', 'roleNotFound', 'roleEmpty',
  'authFailed', 'noPasswordUser', 'permissionDenied', 'roleNotGranted', 'permissionNotGranted', 'authNotEnabled', 'invalidAuthToken',
  'invalidAuthMgmt', 'authOldRevision', 'verifyOnly',
  'noLeader', 'notLeader', 'leaderChanged', 'stopped', 'timeout', 'timeoutDueToLeaderFail', 'unhealthy', 'corrupt',
  'notSupportedForLearner', 'badLeaderTransferee', 'timeoutLeaderTransfer',
  'electionNotLeader', 'electionNoLeader', 'lockSessionExpired', 'missingLeaderKey', 'lostWatcher',
] as const;
export type EtcdErrorName = (typeof ETCD_ERROR_NAMES)[number];

/** The facts an error may carry besides its code and message, each with its one meaning. */
export interface ErrorDetails {
  /** Which of etcd's errors this is; its wire text and gRPC code come from src/api. */
  etcdError?: EtcdErrorName;
  /** NotLeader, Unavailable: the leader this member knows of (0: none). */
  leaderId?: number;
  /** Compacted: the oldest revision still kept. */
  compactRevision?: number;
  /** FutureRevision: the newest revision there is. */
  currentRevision?: number;
  /** LeaseNotFound, LeaseExists: the lease asked about. */
  lease?: number;
  /** TooLarge: the limit that was passed. Overloaded: what is queued against its limit. */
  limitBytes?: number;
  uncommittedBytes?: number;
  /** MembershipRefused: the member the change was about, a change still pending, a learner behind. */
  nodeId?: number;
  pendingConfIndex?: number;
  learnerMatch?: number;
  leaderCommit?: number;
  /** Why, in a word, where the message alone would have to be parsed. */
  reason?: string;
  /** Raft log positions: an index asked for, the first still kept, the last there is, the commit and applied indexes. */
  index?: number;
  firstIndex?: number;
  lastIndex?: number;
  commit?: number;
  applied?: number;
  /** InvalidArgument: the request field at fault; a decoder's position in its input. */
  field?: string;
  offset?: number;
  /** Client side: the gRPC status the call ended with. */
  grpcCode?: number;
  /** Client side: the request may or may not have been applied. */
  outcomeUnknown?: boolean;
  /** Client side: no member of the cluster could be reached. */
  clusterUnavailable?: boolean;
}

export class LichenError extends Error {
  override readonly name = 'LichenError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
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

/**
 * A write to the data directory failed because its disk is full (ENOSPC). Thrown by the file layer
 * (src/wal/disk.ts) with the path it was writing. A member stops on it (fail-stop, as etcd does on
 * a failed WAL or backend write): raft must never acknowledge an entry or a vote that is not
 * durable, and after a failed write the page cache and the disk may disagree, so the member does
 * not retry either; restarted once space is freed, it repairs the torn WAL tail and catches up.
 */
export class DiskFullError extends Error {
  override readonly name = 'DiskFullError';
  /** Node's code for the condition, so callers that test `code === 'ENOSPC'` see it too. */
  readonly code = 'ENOSPC';
  constructor(
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`no space left on device: cannot write ${path}`, options);
  }
}

/** errno of ENOSPC on Linux: lmdb-js reports it as a number in `code`. */
const ENOSPC_ERRNO = 28;
/** lmdb's MDB_MAP_FULL: the environment's map is full (lmdb-js grows it, so only a full disk stops that). */
const MDB_MAP_FULL = -30792;

/**
 * Whether `error` says the disk under the data directory is full: our DiskFullError, Node's
 * ENOSPC (fs), lmdb-js's (`code` 28 or MDB_MAP_FULL, the message from mdb_strerror), or
 * classic-level's IO error, which carries the operating system's words only in its message.
 */
export function isDiskFull(error: unknown): boolean {
  if (error instanceof DiskFullError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (code === 'ENOSPC' || code === ENOSPC_ERRNO || code === MDB_MAP_FULL) return true;
  return /no space left on device|MDB_MAP_FULL/i.test(error.message);
}

/** The file a disk-full error names, when it names one (Node's fs errors carry `path` for path calls). */
export function diskFullPath(error: unknown): string | undefined {
  const path = (error as { path?: unknown } | null)?.path;
  return typeof path === 'string' ? path : undefined;
}
