// The one table that turns Lichen's expected failures into gRPC statuses. etcd clients (clientv3,
// the etcd3 npm package, etcdctl) recognise errors by their exact message text, so the messages
// below are etcd's own (etcd-io/etcd api/v3rpc/rpctypes/error.go), word for word.
//
// A LichenError that names one of etcd's errors (details.etcdError, a key of ETCD_ERRORS) gets
// that row; otherwise its code picks the row. Layers below the API never write etcd's words:
// they name the error, and its text lives here only.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { AuthErrorName } from '../../auth/errors.js';
import { ErrorCode, isLichenError, LichenError, type EtcdErrorName } from '../../errors.js';
import type { StatusError } from './http2-server.js';

export interface GrpcErrorRow {
  code: GrpcStatus;
  message: string;
}

/** etcd's named server errors: gRPC status code and exact message. */
export const ETCD_ERRORS = {
  emptyKey: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: key is not provided' },
  keyNotFound: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: key not found' },
  valueProvided: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: value is provided' },
  leaseProvided: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: lease is provided' },
  ttlZero: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: ttl is 0' },
  tooManyOps: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: too many operations in txn request' },
  duplicateKey: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: duplicate key given in txn request' },
  invalidSortOption: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: invalid sort option' },
  compacted: { code: GrpcStatus.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision has been compacted' },
  futureRevision: { code: GrpcStatus.OUT_OF_RANGE, message: 'etcdserver: mvcc: required revision is a future revision' },
  noSpace: { code: GrpcStatus.RESOURCE_EXHAUSTED, message: 'etcdserver: mvcc: database space exceeded' },

  leaseNotFound: { code: GrpcStatus.NOT_FOUND, message: 'etcdserver: requested lease not found' },
  leaseExists: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: lease already exists' },
  leaseTTLTooLarge: { code: GrpcStatus.OUT_OF_RANGE, message: 'etcdserver: too large lease TTL' },

  memberExists: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: member ID already exist' },
  peerURLExists: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: Peer URLs already exists' },
  memberNotEnoughStarted: {
    code: GrpcStatus.FAILED_PRECONDITION,
    message: 'etcdserver: re-configuration failed due to not enough started members',
  },
  memberBadURLs: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: given member URLs are invalid' },
  memberNotFound: { code: GrpcStatus.NOT_FOUND, message: 'etcdserver: member not found' },
  memberNotLearner: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: can only promote a learner member' },
  learnerNotReady: {
    code: GrpcStatus.FAILED_PRECONDITION,
    message: 'etcdserver: can only promote a learner member which is in sync with leader',
  },
  tooManyLearners: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: too many learner members in cluster' },

  requestTooLarge: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: request is too large' },
  tooManyRequests: { code: GrpcStatus.RESOURCE_EXHAUSTED, message: 'etcdserver: too many requests' },

  rootUserNotExist: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: root user does not exist' },
  rootRoleNotExist: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: root user does not have root role' },
  userAlreadyExist: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: user name already exists' },
  userEmpty: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: user name is empty' },
  userNotFound: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: user name not found' },
  roleAlreadyExist: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: role name already exists' },
  roleNotFound: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: role name not found' },
  roleEmpty: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: role name is empty' },
  authFailed: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: authentication failed, invalid user ID or password' },
  // Not one of etcd's rpctypes errors: etcd 3.4 sends its auth package's text with code Unknown.
  noPasswordUser: { code: GrpcStatus.UNKNOWN, message: 'auth: authentication failed, password was given for no password user' },
  permissionDenied: { code: GrpcStatus.PERMISSION_DENIED, message: 'etcdserver: permission denied' },
  roleNotGranted: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: role is not granted to the user' },
  permissionNotGranted: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: permission is not granted to the role' },
  authNotEnabled: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: authentication is not enabled' },
  invalidAuthToken: { code: GrpcStatus.UNAUTHENTICATED, message: 'etcdserver: invalid auth token' },
  invalidAuthMgmt: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: invalid auth management' },
  authOldRevision: { code: GrpcStatus.INVALID_ARGUMENT, message: 'etcdserver: revision of auth store is old' },
  verifyOnly: { code: GrpcStatus.UNKNOWN, message: 'auth: token signing attempted with verify-only key' },

  noLeader: { code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: no leader' },
  notLeader: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: not leader' },
  leaderChanged: { code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: leader changed' },
  stopped: { code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: server stopped' },
  timeout: { code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: request timed out' },
  timeoutDueToLeaderFail: {
    code: GrpcStatus.UNAVAILABLE,
    message: 'etcdserver: request timed out, possibly due to previous leader failure',
  },
  unhealthy: { code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: unhealthy cluster' },
  corrupt: { code: GrpcStatus.DATA_LOSS, message: 'etcdserver: corrupt cluster' },
  notSupportedForLearner: { code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: rpc not supported for learner' },
  badLeaderTransferee: { code: GrpcStatus.FAILED_PRECONDITION, message: 'etcdserver: bad leader transferee' },
  timeoutLeaderTransfer: { code: GrpcStatus.UNAVAILABLE, message: 'etcdserver: request timed out, leader transfer took too long' },

  // The Lock and Election services answer with their Go packages' texts (client/v3/concurrency,
  // v3election), which gRPC sends with code Unknown.
  electionNotLeader: { code: GrpcStatus.UNKNOWN, message: 'election: not leader' },
  electionNoLeader: { code: GrpcStatus.UNKNOWN, message: 'election: no leader' },
  lockSessionExpired: { code: GrpcStatus.UNKNOWN, message: 'mutex: session is expired' },
  missingLeaderKey: { code: GrpcStatus.UNKNOWN, message: '"leader" field must be provided' },
  // concurrency's waitDelete, when the watch on the key ahead ends without its delete (compaction).
  lostWatcher: { code: GrpcStatus.UNKNOWN, message: 'lost watcher waiting for delete' },
} as const satisfies Record<EtcdErrorName, GrpcErrorRow>;

// Every error src/auth throws names a row of the table above (checked when compiling).
const AUTH_ERROR_ROWS: Record<AuthErrorName, GrpcErrorRow> = ETCD_ERRORS;
void AUTH_ERROR_ROWS;

/**
 * Lichen error code → gRPC status. `message: null` passes the LichenError's own message through
 * (prefixed "etcdserver: " when it lacks it) because the code covers many distinct situations.
 */
export const GRPC_ERROR_TABLE: Record<ErrorCode, { code: GrpcStatus; message: string | null }> = {
  [ErrorCode.InvalidArgument]: { code: GrpcStatus.INVALID_ARGUMENT, message: null },
  [ErrorCode.TooLarge]: ETCD_ERRORS.requestTooLarge,
  [ErrorCode.Compacted]: ETCD_ERRORS.compacted,
  [ErrorCode.FutureRevision]: ETCD_ERRORS.futureRevision,
  [ErrorCode.NotLeader]: ETCD_ERRORS.notLeader,
  // Unavailable has several causes (no leader, stopped, removed member): keep the thrower's text.
  [ErrorCode.Unavailable]: { code: GrpcStatus.UNAVAILABLE, message: null },
  [ErrorCode.Timeout]: ETCD_ERRORS.timeout,
  [ErrorCode.Overloaded]: ETCD_ERRORS.tooManyRequests,
  [ErrorCode.LeaseNotFound]: ETCD_ERRORS.leaseNotFound,
  [ErrorCode.LeaseExists]: ETCD_ERRORS.leaseExists,
  [ErrorCode.MemberNotFound]: ETCD_ERRORS.memberNotFound,
  [ErrorCode.MemberExists]: ETCD_ERRORS.peerURLExists,
  // Refusals differ (quorum, learner behind, a change pending): the thrower's text says which.
  [ErrorCode.MembershipRefused]: { code: GrpcStatus.FAILED_PRECONDITION, message: null },
  [ErrorCode.DuplicateKey]: ETCD_ERRORS.duplicateKey,
  [ErrorCode.NotFound]: { code: GrpcStatus.NOT_FOUND, message: null },
  [ErrorCode.NoSpace]: ETCD_ERRORS.noSpace,
  [ErrorCode.Corrupt]: ETCD_ERRORS.corrupt,
  [ErrorCode.Internal]: { code: GrpcStatus.INTERNAL, message: null },
  // src/auth names etcd's error for each of these (details.etcdError), which wins over this row.
  [ErrorCode.Unauthenticated]: { code: GrpcStatus.UNAUTHENTICATED, message: null },
  [ErrorCode.PermissionDenied]: ETCD_ERRORS.permissionDenied,
  [ErrorCode.FailedPrecondition]: { code: GrpcStatus.FAILED_PRECONDITION, message: null },
  [ErrorCode.DataLoss]: { code: GrpcStatus.DATA_LOSS, message: null },
};

/** The gRPC code and message for any thrown value. Non-Lichen errors are internal errors. */
export function grpcErrorFor(error: unknown): GrpcErrorRow {
  if (!isLichenError(error)) {
    const text = error instanceof Error ? error.message : String(error);
    return { code: GrpcStatus.INTERNAL, message: `lichen: internal error: ${text}` };
  }
  const named = error.details.etcdError;
  if (named !== undefined) return ETCD_ERRORS[named];
  const row = GRPC_ERROR_TABLE[error.code];
  if (row.message !== null) return { code: row.code, message: row.message };
  const own = error.message.startsWith('etcdserver: ') ? error.message : `etcdserver: ${error.message}`;
  return { code: row.code, message: own };
}

/** The status a failed call ends with (see http2-server.ts). */
export function toServiceError(error: unknown): StatusError {
  const { code, message } = grpcErrorFor(error);
  // The leader hint lets Lichen's own client go straight to the leader.
  if (isLichenError(error, ErrorCode.NotLeader) && typeof error.details.leaderId === 'number') {
    return { code, details: message, metadata: { 'lichen-leader-id': String(error.details.leaderId) } };
  }
  return { code, details: message };
}

/** A LichenError that maps to one of etcd's named errors. */
export function etcdError(name: EtcdErrorName, code: ErrorCode = ErrorCode.InvalidArgument): LichenError {
  return new LichenError(code, ETCD_ERRORS[name].message, { etcdError: name });
}
