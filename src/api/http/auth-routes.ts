// Users, roles and key-range permissions over the HTTP API (the dashboard's Auth view uses them).
// Each route calls the backend's Auth service with the request's caller, so etcd's rules apply
// unchanged: everything needs the root role once auth is enabled, except that a user may read
// itself and its own roles; the refusals are etcd's errors as 401 / 403 / 409.
import type { KeyPermission } from '../backend.js';
import { bytesField, jsonString, parseJsonObject, prefixRange } from './codec.js';
import { invalidArgument } from './errors.js';
import type { Handler, PathRoute, Reply, RouteContext } from './route.js';

const ok = (json: unknown): Reply => ({ status: 200, json });

/** etcd's authpb.Permission.Type names, by number. */
const PERM_TYPES = ['READ', 'WRITE', 'READWRITE'] as const;

function nameOf(context: RouteContext, what: string): string {
  const name = Buffer.from(context.key ?? new Uint8Array()).toString('utf8');
  if (name === '') throw invalidArgument(`the ${what} name in the path must not be empty`);
  return name;
}

function permissionJson(perm: KeyPermission): object {
  return {
    permType: PERM_TYPES[perm.permType] ?? String(perm.permType),
    ...bytesField(perm.key, 'key', 'keyEncoding'),
    ...bytesField(perm.rangeEnd, 'rangeEnd', 'rangeEndEncoding'),
  };
}

/**
 * {"permType": "READ" | "WRITE" | "READWRITE", "key", "rangeEnd"? | "prefix"?: true}, keys as
 * UTF-8 text. No rangeEnd: the key alone; "\u0000": every key from `key` on (etcdctl --from-key).
 */
function permissionOf(json: unknown, withType: boolean): KeyPermission {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalidArgument('the permission must be a JSON object');
  const fields = json as Record<string, unknown>;
  const permType = withType ? PERM_TYPES.indexOf(fields['permType'] as (typeof PERM_TYPES)[number]) : 0;
  if (permType < 0) throw invalidArgument(`"permType" must be one of ${PERM_TYPES.join(', ')}`);
  const key = new Uint8Array(Buffer.from(jsonString(fields, 'key', true)!, 'utf8'));
  if (key.length === 0) throw invalidArgument('the permission\'s "key" must not be empty');
  const rangeEndText = jsonString(fields, 'rangeEnd', false);
  if (fields['prefix'] !== undefined && typeof fields['prefix'] !== 'boolean') throw invalidArgument('JSON field "prefix" must be true or false');
  if (fields['prefix'] === true && rangeEndText !== undefined) throw invalidArgument('give "prefix" or "rangeEnd", not both');
  const rangeEnd = fields['prefix'] === true ? prefixRange(key).rangeEnd : new Uint8Array(Buffer.from(rangeEndText ?? '', 'utf8'));
  return { permType, key, rangeEnd };
}

/** GET /v1/auth/status: whether auth is on, and who the caller is (the page shows its login from it). */
const statusRoute: Handler = async (context, deps) => {
  const caller = await context.caller();
  const status = await deps.backend.authStatus();
  let roles: string[] = [];
  if (caller && status.enabled) roles = (await deps.backend.userGet(caller.user, caller)).roles;
  return ok({ enabled: status.enabled, authRevision: status.authRevision, user: caller?.user ?? null, roles });
};

const enableRoute: Handler = async (context, deps) => ok({ header: (await deps.backend.authEnable(await context.caller())).header });
const disableRoute: Handler = async (context, deps) => ok({ header: (await deps.backend.authDisable(await context.caller())).header });

/** GET /v1/auth/users: every user with its roles (the root role only, as etcd's UserList). */
const usersRoute: Handler = async (context, deps) => {
  const caller = await context.caller();
  const { users } = await deps.backend.userList(caller);
  const described = await Promise.all(users.map(async (name) => ({ name, roles: (await deps.backend.userGet(name, caller)).roles })));
  return ok({ users: described });
};

/** POST /v1/auth/users {"name", "password"?}: no password makes a user that cannot log in (etcdctl --no-password). */
const userAddRoute: Handler = async (context, deps) => {
  const json = parseJsonObject(await context.body());
  const name = jsonString(json, 'name', true)!;
  const password = jsonString(json, 'password', false);
  await deps.backend.userAdd({ name, password: password ?? '', noPassword: password === undefined }, await context.caller());
  return ok({ name });
};

const userRoute: Handler = async (context, deps) => {
  const name = nameOf(context, 'user');
  return ok({ name, roles: (await deps.backend.userGet(name, await context.caller())).roles });
};

const userDeleteRoute: Handler = async (context, deps) => {
  await deps.backend.userDelete(nameOf(context, 'user'), await context.caller());
  return ok({});
};

/** POST /v1/auth/users/<name> with one of {"password"}, {"grantRole"}, {"revokeRole"}. */
const userChangeRoute: Handler = async (context, deps) => {
  const name = nameOf(context, 'user');
  const json = parseJsonObject(await context.body());
  const caller = await context.caller();
  const changes = ['password', 'grantRole', 'revokeRole'].filter((field) => json[field] !== undefined);
  if (changes.length !== 1) throw invalidArgument('give exactly one of "password", "grantRole", "revokeRole"');
  const value = jsonString(json, changes[0]!, true)!;
  if (changes[0] === 'password') await deps.backend.userChangePassword(name, value, caller);
  else if (changes[0] === 'grantRole') await deps.backend.userGrantRole(name, value, caller);
  else await deps.backend.userRevokeRole(name, value, caller);
  return ok({ name, roles: (await deps.backend.userGet(name, caller)).roles });
};

/** GET /v1/auth/roles: every role with its permissions (the root role only, as etcd's RoleList). */
const rolesRoute: Handler = async (context, deps) => {
  const caller = await context.caller();
  const { roles } = await deps.backend.roleList(caller);
  const described = await Promise.all(roles.map(async (name) => ({ name, permissions: (await deps.backend.roleGet(name, caller)).perm.map(permissionJson) })));
  return ok({ roles: described });
};

const roleAddRoute: Handler = async (context, deps) => {
  const name = jsonString(parseJsonObject(await context.body()), 'name', true)!;
  await deps.backend.roleAdd(name, await context.caller());
  return ok({ name });
};

const roleRoute: Handler = async (context, deps) => {
  const name = nameOf(context, 'role');
  return ok({ name, permissions: (await deps.backend.roleGet(name, await context.caller())).perm.map(permissionJson) });
};

const roleDeleteRoute: Handler = async (context, deps) => {
  await deps.backend.roleDelete(nameOf(context, 'role'), await context.caller());
  return ok({});
};

/** POST /v1/auth/roles/<name> with {"grant": permission} or {"revoke": {"key", "rangeEnd"? | "prefix"?}}. */
const roleChangeRoute: Handler = async (context, deps) => {
  const name = nameOf(context, 'role');
  const json = parseJsonObject(await context.body());
  const caller = await context.caller();
  if ((json['grant'] === undefined) === (json['revoke'] === undefined)) throw invalidArgument('give one of "grant", "revoke"');
  if (json['grant'] !== undefined) {
    await deps.backend.roleGrantPermission(name, permissionOf(json['grant'], true), caller);
  } else {
    const { key, rangeEnd } = permissionOf(json['revoke'], false);
    await deps.backend.roleRevokePermission(name, key, rangeEnd, caller);
  }
  return ok({ name, permissions: (await deps.backend.roleGet(name, caller)).perm.map(permissionJson) });
};

export const AUTH_ROUTES: readonly PathRoute[] = [
  { path: '/v1/auth/status', keyed: false, template: '/v1/auth/status', handlers: { GET: statusRoute } },
  { path: '/v1/auth/enable', keyed: false, template: '/v1/auth/enable', handlers: { POST: enableRoute } },
  { path: '/v1/auth/disable', keyed: false, template: '/v1/auth/disable', handlers: { POST: disableRoute } },
  { path: '/v1/auth/users', keyed: false, template: '/v1/auth/users', handlers: { GET: usersRoute, POST: userAddRoute } },
  { path: '/v1/auth/users/', keyed: true, template: '/v1/auth/users/:name', handlers: { GET: userRoute, DELETE: userDeleteRoute, POST: userChangeRoute } },
  { path: '/v1/auth/roles', keyed: false, template: '/v1/auth/roles', handlers: { GET: rolesRoute, POST: roleAddRoute } },
  { path: '/v1/auth/roles/', keyed: true, template: '/v1/auth/roles/:name', handlers: { GET: roleRoute, DELETE: roleDeleteRoute, POST: roleChangeRoute } },
];
