// Authentication and authorization as etcd does them: users, roles and key-range permissions
// replicated through raft (store.ts, apply.ts), tokens (tokens.ts), bcrypt passwords (password.ts).
export { AuthStore, initialAuthState, ROOT_USER, ROOT_ROLE, PREFIX_AUTH, type AuthInfo, type AuthState, type User, type Role, type Permission } from './store.js';
export { applyCommand, authorizeTxn, type ApplyResult, type AppliedResponse, type AuthenticateApplied, type ReplicatedState } from './apply.js';
export { authError, isAuthErrorOf, type AuthErrorName } from './errors.js';
export { KeySet, intervalOf, type KeyInterval } from './key-set.js';
export {
  SimpleTokens,
  createTokenProvider,
  JwtTokens,
  parseAuthTokenSpec,
  loadJwtKeys,
  parseGoDurationMs,
  AUTH_TOKEN_TTL_SECONDS_DEFAULT,
  SIMPLE_TOKEN_CLOCK_RESOLUTION_MS,
  type TokenProvider,
  type TokenTimers,
  type TokenInfo,
  type AuthTokenSpec,
} from './tokens.js';
export { hashPassword, checkPassword, BCRYPT_COST_MIN, BCRYPT_COST_MAX, BCRYPT_COST_DEFAULT } from './password.js';
