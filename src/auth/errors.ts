// The failures of authentication and authorization. Each is a LichenError whose code picks the
// HTTP status and whose details.etcdError names etcd's own error (gRPC code and exact message,
// in src/api/grpc/errors.ts), because etcd clients recognise these errors by their text.
import { ErrorCode, isLichenError, LichenError } from '../errors.js';

const AUTH_ERRORS = {
  rootUserNotExist: [ErrorCode.FailedPrecondition, 'root user does not exist'],
  rootRoleNotExist: [ErrorCode.FailedPrecondition, 'root user does not have root role'],
  userAlreadyExist: [ErrorCode.FailedPrecondition, 'user name already exists'],
  userEmpty: [ErrorCode.Unauthenticated, 'user name is empty'],
  userNotFound: [ErrorCode.NotFound, 'user name not found'],
  roleAlreadyExist: [ErrorCode.FailedPrecondition, 'role name already exists'],
  roleNotFound: [ErrorCode.NotFound, 'role name not found'],
  roleEmpty: [ErrorCode.InvalidArgument, 'role name is empty'],
  authFailed: [ErrorCode.Unauthenticated, 'authentication failed, invalid user ID or password'],
  noPasswordUser: [ErrorCode.Unauthenticated, 'authentication failed, password was given for no password user'],
  permissionDenied: [ErrorCode.PermissionDenied, 'permission denied'],
  roleNotGranted: [ErrorCode.FailedPrecondition, 'role is not granted to the user'],
  permissionNotGranted: [ErrorCode.FailedPrecondition, 'permission is not granted to the role'],
  authNotEnabled: [ErrorCode.FailedPrecondition, 'authentication is not enabled'],
  invalidAuthToken: [ErrorCode.Unauthenticated, 'invalid auth token'],
  invalidAuthMgmt: [ErrorCode.InvalidArgument, 'invalid auth management'],
  authOldRevision: [ErrorCode.Unauthenticated, 'revision of auth store is old'],
  verifyOnly: [ErrorCode.FailedPrecondition, 'token signing attempted with verify-only key (--auth-token has no priv-key)'],
} as const satisfies Record<string, readonly [ErrorCode, string]>;

export type AuthErrorName = keyof typeof AUTH_ERRORS;

export function authError(name: AuthErrorName, details: Record<string, unknown> = {}): LichenError {
  const [code, message] = AUTH_ERRORS[name];
  return new LichenError(code, message, { ...details, etcdError: name });
}

export function isAuthErrorOf(error: unknown, name: AuthErrorName): boolean {
  return isLichenError(error) && error.details.etcdError === name;
}
