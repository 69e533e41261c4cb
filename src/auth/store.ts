// AuthStore: etcd's users, roles and permissions, and whether authentication is enabled, as
// replicated state. It lives in the same engine as the MVCC data, under the key prefix 'a'
// (see mvcc/layout.ts), so raft snapshots carry it and one engine write records an auth change
// together with its raft index. Every replica applies the same commands in the same order and
// so holds the same auth state; permission checks made at apply are therefore deterministic.
//
// Semantics follow etcd 3.4 (server/auth/store.go): the root user and role, the auth revision
// (bumped by every change except enabling), which changes are refused while auth is enabled.
import type { Engine, WriteOp } from '../engine/types.js';
import { ByteReader, ByteWriter, asBuffer, keyString } from '../mvcc/bytes.js';
import type { AuthCommand, PermissionType } from '../mvcc/command.js';
import { decodeNumber, encodeNumber } from '../mvcc/layout.js';
import { authError } from './errors.js';
import { KeySet, intervalOf, type KeyInterval } from './key-set.js';

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

/** The engine key prefix of all auth state. */
export const PREFIX_AUTH = 0x61; // 'a'
const KIND_META = 0x6d; // 'm'
const KIND_USER = 0x75; // 'u'
const KIND_ROLE = 0x72; // 'r'
const RECORD_FORMAT = 1;
const META_ENABLED = authKey(KIND_META, 'enabled');
const META_REVISION = authKey(KIND_META, 'revision');
/** A new store is at revision 1 (as etcd's), so a request header's revision 0 means "no user". */
const INITIAL_REVISION = 1;

export interface Permission {
  permType: PermissionType;
  key: Uint8Array;
  /** Empty: the single key; [0]: every key from `key` on; else [key, rangeEnd). */
  rangeEnd: Uint8Array;
}

export interface User {
  name: string;
  /** bcrypt hash; empty for a user added with noPassword (it cannot authenticate with a password). */
  passwordHash: string;
  noPassword: boolean;
  /** Sorted. May name roles deleted since; those grant nothing. */
  roles: string[];
}

export interface Role {
  name: string;
  /** Sorted by key. */
  permissions: Permission[];
}

/** All auth state at one applied index: what a backup renders and a restore writes back. */
export interface AuthState {
  enabled: boolean;
  revision: number;
  /** Sorted by name. */
  users: User[];
  /** Sorted by name. */
  roles: Role[];
}

/** A store where auth was never touched: disabled, revision 1, nobody. */
export function initialAuthState(): AuthState {
  return { enabled: false, revision: INITIAL_REVISION, users: [], roles: [] };
}

/**
 * Who asks, as the checks see it: a user name and the auth revision its credentials stand for.
 * A request checked against a newer auth state than its revision fails with "revision of auth
 * store is old" (etcd's guard against a permission change between check and apply). No revision:
 * the current one (a simple token or a certificate checked now). The API layer's caller (a
 * token's stored info) and a replicated command's fields are AuthInfos as they are, so a check
 * allocates nothing.
 */
export interface AuthInfo {
  readonly user: string;
  readonly authRevision?: number;
}

/** The keys one user may read and write, merged over its roles (rebuilt when the revision moves). */
interface UserPermissions {
  root: boolean;
  read: KeySet;
  write: KeySet;
}

/** One role's permissions as the intervals a KeySet is built from (kept until the role changes). */
interface RoleIntervals {
  read: KeyInterval[];
  write: KeyInterval[];
}

function authKey(kind: number, name: string): Uint8Array {
  return Buffer.concat([Uint8Array.of(PREFIX_AUTH, kind), Buffer.from(name, 'utf8')]);
}

export class AuthStore {
  private users = new Map<string, User>();
  private roles = new Map<string, Role>();
  private enabledFlag = false;
  private currentRevision = INITIAL_REVISION;
  private permissionCache = new Map<string, UserPermissions>();
  /**
   * The last user checked and its permissions, looked at before permissionCache: a member's
   * requests mostly come from a few users, and a request's user name is a new string each time,
   * which a Map lookup hashes and then probes a table seldom in cache (1.4 µs per check in the
   * members' put-64 profiles, 2026-12-07); comparing a short string with this one is cheaper.
   */
  private lastUser: string | undefined;
  private lastPermissions: UserPermissions | undefined;
  /**
   * Every auth change empties permissionCache; rebuilding a user's sets from these, rather than
   * from the roles' key bytes, took the first check after a change for a user with 1,000 roles
   * of 10 ranges from 40–80 ms to 7–17 ms (2026-12-06, load 11–17), which each member spends
   * with its event loop held.
   */
  private roleIntervals = new Map<string, RoleIntervals>();

  private constructor(private readonly engine: Engine) {}

  static open(engine: Engine): AuthStore {
    const store = new AuthStore(engine);
    store.reload();
    return store;
  }

  /** Rebuilds the in-memory state from the engine (at open, and after a snapshot replaced it). */
  reload(): void {
    this.users.clear();
    this.roles.clear();
    this.roleIntervals.clear();
    this.forgetPermissions();
    this.enabledFlag = (this.engine.get(META_ENABLED)?.[0] ?? 0) === 1;
    this.currentRevision = decodeNumber(this.engine.get(META_REVISION), INITIAL_REVISION);
    for (const [key, value] of this.engine.range({ start: Uint8Array.of(PREFIX_AUTH, KIND_USER), end: Uint8Array.of(PREFIX_AUTH, KIND_USER + 1) })) {
      const user = decodeUser(asBuffer(key).toString('utf8', 2), value);
      this.users.set(user.name, user);
    }
    for (const [key, value] of this.engine.range({ start: Uint8Array.of(PREFIX_AUTH, KIND_ROLE), end: Uint8Array.of(PREFIX_AUTH, KIND_ROLE + 1) })) {
      const role = decodeRole(asBuffer(key).toString('utf8', 2), value);
      this.roles.set(role.name, role);
    }
  }

  /**
   * The whole state as plain data. Users and roles are replaced, never changed in place, so the
   * lists stay true to this moment while later commands apply.
   */
  state(): AuthState {
    const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    return {
      enabled: this.enabledFlag,
      revision: this.currentRevision,
      users: [...this.users.values()].sort(byName),
      roles: [...this.roles.values()].sort(byName),
    };
  }

  /** Writes `state` into an engine that holds no auth state yet (a restore), for open() to read. */
  static write(engine: Engine, state: AuthState): void {
    engine.write([
      { type: 'put', key: META_ENABLED, value: Uint8Array.of(state.enabled ? 1 : 0) },
      { type: 'put', key: META_REVISION, value: encodeNumber(state.revision) },
      ...state.users.map((user): WriteOp => ({ type: 'put', key: authKey(KIND_USER, user.name), value: encodeUser(user) })),
      ...state.roles.map((role): WriteOp => ({ type: 'put', key: authKey(KIND_ROLE, role.name), value: encodeRole(role) })),
    ]);
  }

  get enabled(): boolean {
    return this.enabledFlag;
  }

  get revision(): number {
    return this.currentRevision;
  }

  user(name: string): User | undefined {
    return this.users.get(name);
  }

  role(name: string): Role | undefined {
    return this.roles.get(name);
  }

  userNames(): string[] {
    return [...this.users.keys()].sort();
  }

  roleNames(): string[] {
    return [...this.roles.keys()].sort();
  }

  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) ?? false;
  }

  // ---------------------------------------------------------------------------------------------
  // Changes. Each validates first and throws before changing anything, then changes memory and
  // returns the engine writes that make the change durable (the caller writes them at once).

  execute(command: AuthCommand): WriteOp[] {
    switch (command.type) {
      case 'authEnable': return this.authEnable();
      case 'authDisable': return this.authDisable();
      case 'authenticate': return this.checkAuthenticate(command.name, command.checkedRevision);
      case 'userAdd': return this.userAdd(command.name, command.passwordHash, command.noPassword);
      case 'userDelete': return this.userDelete(command.name);
      case 'userChangePassword': return this.userChangePassword(command.name, command.passwordHash);
      case 'userGrantRole': return this.userGrantRole(command.user, command.role);
      case 'userRevokeRole': return this.userRevokeRole(command.name, command.role);
      case 'roleAdd': return this.roleAdd(command.name);
      case 'roleDelete': return this.roleDelete(command.role);
      case 'roleGrantPermission': return this.roleGrantPermission(command.name, { permType: command.permType, key: command.key, rangeEnd: command.rangeEnd });
      case 'roleRevokePermission': return this.roleRevokePermission(command.role, command.key, command.rangeEnd);
    }
  }

  private authEnable(): WriteOp[] {
    if (this.enabledFlag) return [];
    const root = this.users.get(ROOT_USER);
    if (!root) throw authError('rootUserNotExist');
    if (!root.roles.includes(ROOT_ROLE)) throw authError('rootRoleNotExist');
    this.enabledFlag = true;
    // etcd does not move the revision when enabling: no user or role changed.
    return [{ type: 'put', key: META_ENABLED, value: Uint8Array.of(1) }];
  }

  private authDisable(): WriteOp[] {
    if (!this.enabledFlag) return [];
    this.enabledFlag = false;
    return [{ type: 'put', key: META_ENABLED, value: Uint8Array.of(0) }, this.bumpRevision()];
  }

  /**
   * Authenticate changes nothing replicated; it fails on every replica alike when the user
   * cannot log in, or when the auth state moved since the proposer checked the password (the
   * proposer then checks again).
   */
  private checkAuthenticate(name: string, checkedRevision: number): WriteOp[] {
    if (!this.enabledFlag) throw authError('authNotEnabled');
    const user = this.users.get(name);
    if (!user) throw authError('authFailed');
    if (user.noPassword) throw authError('noPasswordUser');
    if (checkedRevision !== this.currentRevision) throw authError('authOldRevision');
    return [];
  }

  private userAdd(name: string, passwordHash: string, noPassword: boolean): WriteOp[] {
    if (name === '') throw authError('userEmpty');
    if (this.users.has(name)) throw authError('userAlreadyExist');
    return this.putUser({ name, passwordHash: noPassword ? '' : passwordHash, noPassword, roles: [] });
  }

  private userDelete(name: string): WriteOp[] {
    if (this.enabledFlag && name === ROOT_USER) throw authError('invalidAuthMgmt');
    if (!this.users.has(name)) throw authError('userNotFound');
    this.users.delete(name);
    return [{ type: 'del', key: authKey(KIND_USER, name) }, this.bumpRevision()];
  }

  private userChangePassword(name: string, passwordHash: string): WriteOp[] {
    // A user added with noPassword keeps that option (as in etcd): it still cannot log in with a password.
    return this.putUser({ ...this.requireUser(name), passwordHash });
  }

  private userGrantRole(name: string, role: string): WriteOp[] {
    const user = this.requireUser(name);
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw authError('roleNotFound');
    // Granting a role twice is a no-op that keeps the revision (as etcd).
    if (user.roles.includes(role)) return [];
    return this.putUser({ ...user, roles: [...user.roles, role].sort() });
  }

  private userRevokeRole(name: string, role: string): WriteOp[] {
    if (this.enabledFlag && name === ROOT_USER && role === ROOT_ROLE) throw authError('invalidAuthMgmt');
    const user = this.requireUser(name);
    if (!user.roles.includes(role)) throw authError('roleNotGranted');
    return this.putUser({ ...user, roles: user.roles.filter((r) => r !== role) });
  }

  private roleAdd(name: string): WriteOp[] {
    if (name === '') throw authError('roleEmpty');
    if (this.roles.has(name)) throw authError('roleAlreadyExist');
    return this.putRole({ name, permissions: [] });
  }

  private roleDelete(name: string): WriteOp[] {
    if (this.enabledFlag && name === ROOT_ROLE) throw authError('invalidAuthMgmt');
    if (!this.roles.has(name)) throw authError('roleNotFound');
    this.roles.delete(name);
    this.roleIntervals.delete(name);
    const ops: WriteOp[] = [{ type: 'del', key: authKey(KIND_ROLE, name) }];
    // etcd takes the role away from every user that has it, so a later role of the same name grants nothing.
    for (const user of [...this.users.values()]) {
      if (user.roles.includes(name)) ops.push(...this.putUser({ ...user, roles: user.roles.filter((r) => r !== name) }, false));
    }
    ops.push(this.bumpRevision());
    return ops;
  }

  private roleGrantPermission(name: string, permission: Permission): WriteOp[] {
    const role = this.requireRole(name);
    const same = (p: Permission): boolean => Buffer.compare(p.key, permission.key) === 0 && Buffer.compare(p.rangeEnd, permission.rangeEnd) === 0;
    const permissions = role.permissions.some(same)
      ? role.permissions.map((p) => (same(p) ? { ...p, permType: permission.permType } : p))
      : [...role.permissions, permission].sort((a, b) => Buffer.compare(a.key, b.key));
    return this.putRole({ name, permissions });
  }

  private roleRevokePermission(name: string, key: Uint8Array, rangeEnd: Uint8Array): WriteOp[] {
    const role = this.requireRole(name);
    const permissions = role.permissions.filter((p) => Buffer.compare(p.key, key) !== 0 || Buffer.compare(p.rangeEnd, rangeEnd) !== 0);
    if (permissions.length === role.permissions.length) throw authError('permissionNotGranted');
    return this.putRole({ name, permissions });
  }

  private requireUser(name: string): User {
    const user = this.users.get(name);
    if (!user) throw authError('userNotFound');
    return user;
  }

  private requireRole(name: string): Role {
    const role = this.roles.get(name);
    if (!role) throw authError('roleNotFound');
    return role;
  }

  private putUser(user: User, bump = true): WriteOp[] {
    this.users.set(user.name, user);
    const op: WriteOp = { type: 'put', key: authKey(KIND_USER, user.name), value: encodeUser(user) };
    return bump ? [op, this.bumpRevision()] : [op];
  }

  private putRole(role: Role): WriteOp[] {
    this.roles.set(role.name, role);
    this.roleIntervals.delete(role.name);
    return [{ type: 'put', key: authKey(KIND_ROLE, role.name), value: encodeRole(role) }, this.bumpRevision()];
  }

  private bumpRevision(): WriteOp {
    this.currentRevision++;
    this.forgetPermissions();
    return { type: 'put', key: META_REVISION, value: encodeNumber(this.currentRevision) };
  }

  // ---------------------------------------------------------------------------------------------
  // Checks (etcd's isOpPermitted and IsAdminPermitted). All pass while auth is disabled.

  /** Read permission on the key, or on every key of [key, rangeEnd). */
  checkRead(info: AuthInfo | undefined, key: Uint8Array, rangeEnd?: Uint8Array): void {
    this.checkKeys(info, 'read', key, rangeEnd);
  }

  /** Write permission on the key, or on every key of [key, rangeEnd). */
  checkWrite(info: AuthInfo | undefined, key: Uint8Array, rangeEnd?: Uint8Array): void {
    this.checkKeys(info, 'write', key, rangeEnd);
  }

  /** The root role: user and role management, enabling auth, member changes, snapshots, hashes. */
  checkAdmin(info: AuthInfo | undefined): void {
    if (!this.enabledFlag) return;
    if (!info || info.user === '') throw authError('userEmpty');
    const user = this.users.get(info.user);
    if (!user) throw authError('userNotFound');
    if (!user.roles.includes(ROOT_ROLE)) throw authError('permissionDenied');
  }

  private checkKeys(info: AuthInfo | undefined, access: 'read' | 'write', key: Uint8Array, rangeEnd: Uint8Array | undefined): void {
    if (!this.enabledFlag) return;
    if (!info || info.user === '') throw authError('userEmpty');
    if (info.authRevision !== undefined && info.authRevision < this.currentRevision) throw authError('authOldRevision');
    const permissions = this.permissionsOf(info.user);
    if (!permissions) throw authError('permissionDenied');
    if (permissions.root) return;
    const keys = permissions[access];
    // The request's own key bytes are compared with the packed set: nothing is allocated per check.
    const allowed = rangeEnd === undefined ? keys.hasKey(key) : keys.covers(key, rangeEnd);
    if (!allowed) throw authError('permissionDenied');
  }

  private forgetPermissions(): void {
    this.permissionCache.clear();
    this.lastUser = undefined;
    this.lastPermissions = undefined;
  }

  private permissionsOf(name: string): UserPermissions | undefined {
    if (name === this.lastUser) return this.lastPermissions;
    const permissions = this.permissionsOfUncached(name);
    if (permissions) {
      this.lastUser = name;
      this.lastPermissions = permissions;
    }
    return permissions;
  }

  private permissionsOfUncached(name: string): UserPermissions | undefined {
    const cached = this.permissionCache.get(name);
    if (cached) return cached;
    const user = this.users.get(name);
    if (!user) return undefined;
    const read: KeyInterval[] = [];
    const write: KeyInterval[] = [];
    for (const roleName of user.roles) {
      const intervals = this.intervalsOf(roleName);
      if (!intervals) continue;
      for (const interval of intervals.read) read.push(interval);
      for (const interval of intervals.write) write.push(interval);
    }
    const permissions = { root: user.roles.includes(ROOT_ROLE), read: KeySet.of(read), write: KeySet.of(write) };
    this.permissionCache.set(name, permissions);
    return permissions;
  }

  /** Undefined for a role deleted since it was granted (it grants nothing). */
  private intervalsOf(roleName: string): RoleIntervals | undefined {
    const cached = this.roleIntervals.get(roleName);
    if (cached) return cached;
    const role = this.roles.get(roleName);
    if (!role) return undefined;
    const intervals: RoleIntervals = { read: [], write: [] };
    for (const p of role.permissions) {
      const interval = intervalOf(keyString(p.key), keyString(p.rangeEnd));
      if (p.permType !== 1) intervals.read.push(interval);
      if (p.permType !== 0) intervals.write.push(interval);
    }
    this.roleIntervals.set(roleName, intervals);
    return intervals;
  }
}

function encodeUser(user: User): Uint8Array {
  const w = new ByteWriter().u8(RECORD_FORMAT).u8(user.noPassword ? 1 : 0).bytes(Buffer.from(user.passwordHash, 'utf8')).uvar(user.roles.length);
  for (const role of user.roles) w.bytes(Buffer.from(role, 'utf8'));
  return w.finish();
}

function decodeUser(name: string, bytes: Uint8Array): User {
  const r = new ByteReader(bytes, `auth user ${name}`);
  if (r.u8() !== RECORD_FORMAT) throw new Error(`auth user ${name}: unknown record format`);
  const noPassword = r.u8() === 1;
  const passwordHash = Buffer.from(r.bytes()).toString('utf8');
  const roles = Array.from({ length: r.uvar() }, () => Buffer.from(r.bytes()).toString('utf8'));
  return { name, passwordHash, noPassword, roles };
}

function encodeRole(role: Role): Uint8Array {
  const w = new ByteWriter().u8(RECORD_FORMAT).uvar(role.permissions.length);
  for (const p of role.permissions) w.u8(p.permType).bytes(p.key).bytes(p.rangeEnd);
  return w.finish();
}

function decodeRole(name: string, bytes: Uint8Array): Role {
  const r = new ByteReader(bytes, `auth role ${name}`);
  if (r.u8() !== RECORD_FORMAT) throw new Error(`auth role ${name}: unknown record format`);
  const permissions = Array.from({ length: r.uvar() }, () => ({ permType: r.u8() as PermissionType, key: r.bytes(), rangeEnd: r.bytes() }));
  return { name, permissions };
}
