// etcd's Auth service on one member, and the helpers the other services use to check a caller.
//
// Where each check happens, as in etcd (etcdserver/v3_server.go, apply_auth.go):
// - Changes (users, roles, enabling) are raft commands carrying the caller; every replica checks
//   the root role when it applies them, in log order (etcd's authApplierV3 and needAdminPermission).
//   This member does not check them against its own auth state first: it may not have applied
//   entries committed before the request (an "auth disable", a grant of the root role), which
//   etcd's check at apply sees. The one exception keeps a bcrypt hash (user add, password change)
//   from costing anything to a caller without the root role: that refusal is made only after a
//   ReadIndex, so it holds at a point inside the request (see checkAdminBeforeHashing).
// - Reads of the auth state (user and role lists and details) are linearizable reads, checked here.
// - Authenticate checks the password here, then replicates a command that issues the token on
//   every member at the same log position, if the auth state has not moved since the check.
import type { AuthBackend, Caller, Credentials, KeyPermission, WithHeader } from '../api/backend.js';
import {
  authError,
  checkPassword,
  hashPassword,
  isAuthErrorOf,
  type AuthenticateApplied,
  type AuthInfo,
  type TokenInfo,
} from '../auth/index.js';
import { ErrorCode, isLichenError, LichenError } from '../errors.js';
import { authenticateAttemptsMax } from '../limits.js';
import { PermissionType, type AuthCommand, type Command, type MvccCommand } from '../mvcc/index.js';
import type { ResponseHeader } from '../mvcc/types.js';
import type { NodeConfig } from './config.js';
import type { Applied, Replica } from '../replica/index.js';


/**
 * The caller a token stands for; throws for a token that is not valid. The token's own info is
 * the caller (its fields are a Caller's), so identifying a request allocates nothing.
 */
function callerOfToken(info: TokenInfo | undefined): Caller {
  if (!info) throw authError('invalidAuthToken');
  return info;
}

export class NodeAuthBackend implements AuthBackend {
  constructor(
    protected readonly node: Replica,
    protected readonly config: NodeConfig,
  ) {}

  header(revision?: number): ResponseHeader {
    return {
      clusterId: this.node.clusterId,
      memberId: this.node.memberId,
      revision: revision ?? this.node.store.currentRevision,
      raftTerm: this.node.raftTerm,
    };
  }

  identify(credentials: Credentials): Caller | undefined | Promise<Caller | undefined> {
    if (credentials.token !== undefined) {
      const info = this.node.tokens.verify(credentials.token);
      return info instanceof Promise ? info.then(callerOfToken) : callerOfToken(info);
    }
    // The TLS layer names a certificate only when it verified it (--client-cert-auth).
    if (credentials.commonName) return { user: credentials.commonName };
    return undefined;
  }

  async authEnable(caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'authEnable' }, caller);
  }

  async authDisable(caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'authDisable' }, caller);
  }

  async authStatus(): Promise<WithHeader<{ enabled: boolean; authRevision: number }>> {
    await this.node.linearizableBarrier();
    return { header: this.header(), enabled: this.node.auth.enabled, authRevision: this.node.auth.revision };
  }

  async authenticate(name: string, password: string): Promise<WithHeader<{ token: string }>> {
    await this.node.linearizableBarrier();
    for (let attempt = 1; ; attempt++) {
      const auth = this.node.auth;
      const checkedRevision = auth.revision;
      if (!auth.enabled) throw authError('authNotEnabled');
      const user = auth.user(name);
      if (!user) throw authError('authFailed');
      if (user.noPassword) throw authError('noPasswordUser');
      if (!(await checkPassword(password, user.passwordHash))) throw authError('authFailed');
      const tokenPrefix = this.node.tokens.newPrefix();
      let applied: Applied;
      try {
        applied = await this.node.propose({ type: 'authenticate', name, tokenPrefix, checkedRevision });
      } catch (error) {
        if (isAuthErrorOf(error, 'authOldRevision') && attempt < authenticateAttemptsMax) continue;
        throw error;
      }
      const { index, authRevision } = applied.response as AuthenticateApplied;
      return { header: this.header(), token: await this.node.tokens.issue(name, authRevision, tokenPrefix, index) };
    }
  }

  async userAdd(r: { name: string; password: string; noPassword: boolean }, caller?: Caller): Promise<WithHeader<object>> {
    let passwordHash = '';
    if (!r.noPassword) {
      await this.checkAdminBeforeHashing(caller);
      // An empty name fails at apply too, after the root role (checked just above): no hash for it.
      if (r.name === '') throw authError('userEmpty');
      passwordHash = await hashPassword(r.password, this.config.bcryptCost);
    }
    return this.proposeAdmin({ type: 'userAdd', name: r.name, passwordHash, noPassword: r.noPassword }, caller);
  }

  async userGet(name: string, caller?: Caller): Promise<WithHeader<{ roles: string[] }>> {
    await this.node.linearizableBarrier();
    // A user may read itself without the root role.
    if (caller?.user !== name) this.node.auth.checkAdmin(this.authInfo(caller));
    const user = this.node.auth.user(name);
    if (!user) throw authError('userNotFound');
    return { header: this.header(), roles: [...user.roles] };
  }

  async userList(caller?: Caller): Promise<WithHeader<{ users: string[] }>> {
    await this.node.linearizableBarrier();
    this.node.auth.checkAdmin(this.authInfo(caller));
    return { header: this.header(), users: this.node.auth.userNames() };
  }

  async userDelete(name: string, caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'userDelete', name }, caller);
  }

  async userChangePassword(name: string, password: string, caller?: Caller): Promise<WithHeader<object>> {
    // Whether the user exists is checked at apply: it may have been added by an entry not applied here yet.
    await this.checkAdminBeforeHashing(caller);
    const passwordHash = await hashPassword(password, this.config.bcryptCost);
    return this.proposeAdmin({ type: 'userChangePassword', name, passwordHash }, caller);
  }

  async userGrantRole(user: string, role: string, caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'userGrantRole', user, role }, caller);
  }

  async userRevokeRole(name: string, role: string, caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'userRevokeRole', name, role }, caller);
  }

  async roleAdd(name: string, caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'roleAdd', name }, caller);
  }

  async roleGet(role: string, caller?: Caller): Promise<WithHeader<{ perm: KeyPermission[] }>> {
    await this.node.linearizableBarrier();
    // A user may read the roles it has without the root role.
    if (!caller || !this.node.auth.hasRole(caller.user, role)) this.node.auth.checkAdmin(this.authInfo(caller));
    const found = this.node.auth.role(role);
    if (!found) throw authError('roleNotFound');
    return { header: this.header(), perm: found.permissions.map((p) => ({ ...p })) };
  }

  async roleList(caller?: Caller): Promise<WithHeader<{ roles: string[] }>> {
    await this.node.linearizableBarrier();
    this.node.auth.checkAdmin(this.authInfo(caller));
    return { header: this.header(), roles: this.node.auth.roleNames() };
  }

  async roleDelete(role: string, caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'roleDelete', role }, caller);
  }

  async roleGrantPermission(role: string, perm: KeyPermission, caller?: Caller): Promise<WithHeader<object>> {
    if (perm.permType !== PermissionType.READ && perm.permType !== PermissionType.WRITE && perm.permType !== PermissionType.READWRITE) {
      throw new LichenError(ErrorCode.InvalidArgument, `permission type ${perm.permType} is not READ (0), WRITE (1) or READWRITE (2)`);
    }
    return this.proposeAdmin({ type: 'roleGrantPermission', name: role, permType: perm.permType, key: perm.key, rangeEnd: perm.rangeEnd }, caller);
  }

  async roleRevokePermission(role: string, key: Uint8Array, rangeEnd: Uint8Array, caller?: Caller): Promise<WithHeader<object>> {
    return this.proposeAdmin({ type: 'roleRevokePermission', role, key, rangeEnd }, caller);
  }

  // ---- helpers for the other services ----

  /**
   * The caller as the auth checks see it: itself (a Caller is an AuthInfo; a simple token or a
   * certificate has no revision and stands for the current one), so a check allocates nothing.
   */
  protected authInfo(caller: Caller | undefined): AuthInfo | undefined {
    return caller;
  }

  /** Throws unless the caller has the root role (or auth is disabled). */
  protected checkAdmin(caller: Caller | undefined): void {
    this.node.auth.checkAdmin(this.authInfo(caller));
  }

  /**
   * Replicates a command with its caller, for every replica to check at apply. A put, delete or
   * write txn without any caller while auth is enabled is refused here, before it costs a log
   * entry (at apply it would fail the same way). "Enabled" is checked after a ReadIndex: this
   * member may not have applied an "auth disable" the client already saw acknowledged, and the
   * command's entry would follow it in the log, where etcd checks it and lets it through.
   */
  protected async proposeAs(command: MvccCommand | AuthCommand, caller: Caller | undefined): Promise<Applied> {
    const info = this.authInfo(caller);
    if (!info) {
      const needsUser = command.type === 'put' || command.type === 'deleteRange' || command.type === 'txn';
      if (needsUser && this.node.auth.enabled) {
        await this.node.linearizableBarrier();
        if (this.node.auth.enabled) throw authError('userEmpty');
      }
      return this.node.propose(command);
    }
    // The revision checked at apply: the token's, or for a simple token the one this member is at now.
    const authorized: Command = { type: 'authorized', user: info.user, authRevision: info.authRevision ?? this.node.auth.revision, command };
    return this.node.propose(authorized);
  }

  /** An auth change, checked (the root role, then its arguments) by every replica when it applies it. */
  private async proposeAdmin(command: AuthCommand, caller: Caller | undefined): Promise<WithHeader<object>> {
    await this.proposeAs(command, caller);
    return { header: this.header() };
  }

  /**
   * Refuses a caller without the root role before its password is hashed (etcd hashes first and
   * refuses at apply; a bcrypt hash per anonymous request is a cost worth not paying). A refusal
   * by this member's state alone could contradict the log (an "auth disable" committed but not
   * applied here), so it is confirmed after a ReadIndex: everything committed before the request
   * is then applied, and the refusal is the one the request's entry would meet at that point.
   */
  private async checkAdminBeforeHashing(caller: Caller | undefined): Promise<void> {
    const info = this.authInfo(caller);
    try {
      this.node.auth.checkAdmin(info);
      return;
    } catch (error) {
      if (!isLichenError(error)) throw error;
    }
    await this.node.linearizableBarrier();
    this.node.auth.checkAdmin(info);
  }
}
