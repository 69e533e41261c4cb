// Applying a committed command to the replicated state (MVCC store and auth store), with etcd's
// apply-time authorization (etcdserver/apply_auth.go): every replica checks the request's user
// and auth revision against the same auth state at the same log position, so all of them accept
// or refuse it alike. A refused command changes nothing but the applied index.
import { isLichenError, LichenError } from '../errors.js';
import type { ApplyResponse, MvccStore } from '../mvcc/index.js';
import { isAuthCommand, type AuthCommand, type Command, type MvccCommand } from '../mvcc/command.js';
import type { Event, RequestOp, TxnRequest } from '../mvcc/types.js';
import type { AuthInfo, AuthStore } from './store.js';

/** What an applied Authenticate answers its proposer: its raft index and auth revision (a token names them). */
export interface AuthenticateApplied {
  index: number;
  authRevision: number;
}

export type AppliedResponse = ApplyResponse | AuthenticateApplied;

export type ApplyResult =
  | { revision: number; response: AppliedResponse; events: Event[] }
  | { revision: number; error: LichenError };

export interface ReplicatedState {
  mvcc: MvccStore;
  auth: AuthStore;
  /** Told of every auth command applied successfully (tokens are member-local state). */
  onAuthApplied?: (index: number, command: AuthCommand) => void;
}

export function applyCommand(state: ReplicatedState, index: number, command: Command): ApplyResult {
  // The authorized command's own user and authRevision fields are the check's AuthInfo.
  const info: AuthInfo | undefined = command.type === 'authorized' ? command : undefined;
  const inner = command.type === 'authorized' ? command.command : command;
  if (!isAuthCommand(inner)) {
    try {
      if (state.auth.enabled) authorizeMvcc(state, info, inner);
    } catch (error) {
      return refuse(state, index, error);
    }
    return state.mvcc.apply(index, inner);
  }
  let ops;
  try {
    // Authenticate is the one auth command anyone may send; the others need the root role.
    if (inner.type !== 'authenticate') state.auth.checkAdmin(info);
    ops = state.auth.execute(inner);
  } catch (error) {
    return refuse(state, index, error);
  }
  state.mvcc.applyBeside(index, ops);
  state.onAuthApplied?.(index, inner);
  const response: AppliedResponse = inner.type === 'authenticate' ? { index, authRevision: state.auth.revision } : {};
  return { revision: state.mvcc.currentRevision, response, events: [] };
}

function refuse(state: ReplicatedState, index: number, error: unknown): ApplyResult {
  // Validation throws only LichenErrors, before any change; anything else is a bug.
  if (!isLichenError(error)) throw error;
  state.mvcc.applyBeside(index, []);
  return { revision: state.mvcc.currentRevision, error };
}

/**
 * etcd's authApplierV3 checks, plus two it lacks in 3.4 (both only refuse more): ops of nested
 * txns are checked like top-level ones, and a txn put's prevKv and lease are checked like a
 * plain put's. Lease grants, compaction and alarms need no permission, as in etcd.
 */
type Stores = Pick<ReplicatedState, 'auth' | 'mvcc'>;

function authorizeMvcc(state: Stores, info: AuthInfo | undefined, command: MvccCommand): void {
  const { auth, mvcc } = state;
  switch (command.type) {
    case 'put':
      authorizePut(state, info, command.request.key, command.request.lease ?? 0, command.request.prevKv === true);
      return;
    case 'deleteRange':
      auth.checkWrite(info, command.request.key, command.request.rangeEnd);
      if (command.request.prevKv) auth.checkRead(info, command.request.key, command.request.rangeEnd);
      return;
    case 'txn':
      authorizeTxn(state, info, command.request);
      return;
    case 'leaseRevoke':
      // Revoking deletes the lease's keys: the caller must be able to write every one of them.
      for (const key of mvcc.lease(command.id)?.keys ?? []) auth.checkWrite(info, key);
      return;
    case 'compact': case 'leaseGrant': case 'noop': case 'alarmActivate': case 'alarmDeactivate':
      return;
  }
}

function authorizePut(state: Stores, info: AuthInfo | undefined, key: Uint8Array, lease: number, prevKv: boolean): void {
  state.auth.checkWrite(info, key);
  // A key attached to a lease whose other keys the caller cannot write would let it keep them
  // alive (or not): etcd refuses the put (checkLeasePuts).
  if (lease !== 0) for (const leased of state.mvcc.lease(lease)?.keys ?? []) state.auth.checkWrite(info, leased);
  if (prevKv) state.auth.checkRead(info, key);
}

/** Every compare and every op of both branches, whichever branch will run (etcd's checkTxnAuth). */
export function authorizeTxn(state: Stores, info: AuthInfo | undefined, txn: TxnRequest): void {
  for (const compare of txn.compare) state.auth.checkRead(info, compare.key, compare.rangeEnd);
  for (const op of [...txn.success, ...txn.failure]) authorizeOp(state, info, op);
}

function authorizeOp(state: Stores, info: AuthInfo | undefined, op: RequestOp): void {
  if ('requestRange' in op) {
    state.auth.checkRead(info, op.requestRange.key, op.requestRange.rangeEnd);
  } else if ('requestPut' in op) {
    authorizePut(state, info, op.requestPut.key, op.requestPut.lease ?? 0, op.requestPut.prevKv === true);
  } else if ('requestDeleteRange' in op) {
    const { key, rangeEnd, prevKv } = op.requestDeleteRange;
    state.auth.checkWrite(info, key, rangeEnd);
    if (prevKv) state.auth.checkRead(info, key, rangeEnd);
  } else {
    authorizeTxn(state, info, op.requestTxn);
  }
}
