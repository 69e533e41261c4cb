// The Auth service: enabling auth, logging in (Authenticate), users, roles and permissions.
import type { KeyPermission } from '../backend.js';
import { unary, type HandlerContext, type Implementation } from './handler.js';
import { encodeHeader } from './wire.js';

interface WirePermission {
  permType: number;
  key: Uint8Array;
  range_end: Uint8Array;
}

export function authService(ctx: HandlerContext): Implementation {
  const { backend } = ctx;
  const done = (r: { header: Parameters<typeof encodeHeader>[0] }): object => ({ header: encodeHeader(r.header) });
  return {
    AuthEnable: unary<object>(ctx, async (_w, caller) => done(await backend.authEnable(caller))),
    AuthDisable: unary<object>(ctx, async (_w, caller) => done(await backend.authDisable(caller))),
    AuthStatus: unary<object>(ctx, async () => {
      const r = await backend.authStatus();
      return { header: encodeHeader(r.header), enabled: r.enabled, authRevision: r.authRevision };
    }),
    // The caller's own token is checked first (by unary), as etcd does: a stale token fails the login.
    Authenticate: unary<{ name: string; password: string }>(ctx, async (w) => {
      const r = await backend.authenticate(w.name ?? '', w.password ?? '');
      return { header: encodeHeader(r.header), token: r.token };
    }),
    // hashedPassword is etcd's internal field (the server fills it); a client's value is ignored.
    UserAdd: unary<{ name: string; password: string; options: { no_password: boolean } | null }>(ctx, async (w, caller) =>
      done(await backend.userAdd({ name: w.name ?? '', password: w.password ?? '', noPassword: w.options?.no_password === true }, caller)),
    ),
    UserGet: unary<{ name: string }>(ctx, async (w, caller) => {
      const r = await backend.userGet(w.name ?? '', caller);
      return { header: encodeHeader(r.header), roles: r.roles };
    }),
    UserList: unary<object>(ctx, async (_w, caller) => {
      const r = await backend.userList(caller);
      return { header: encodeHeader(r.header), users: r.users };
    }),
    UserDelete: unary<{ name: string }>(ctx, async (w, caller) => done(await backend.userDelete(w.name ?? '', caller))),
    UserChangePassword: unary<{ name: string; password: string }>(ctx, async (w, caller) =>
      done(await backend.userChangePassword(w.name ?? '', w.password ?? '', caller)),
    ),
    UserGrantRole: unary<{ user: string; role: string }>(ctx, async (w, caller) =>
      done(await backend.userGrantRole(w.user ?? '', w.role ?? '', caller)),
    ),
    UserRevokeRole: unary<{ name: string; role: string }>(ctx, async (w, caller) =>
      done(await backend.userRevokeRole(w.name ?? '', w.role ?? '', caller)),
    ),
    RoleAdd: unary<{ name: string }>(ctx, async (w, caller) => done(await backend.roleAdd(w.name ?? '', caller))),
    RoleGet: unary<{ role: string }>(ctx, async (w, caller) => {
      const r = await backend.roleGet(w.role ?? '', caller);
      return { header: encodeHeader(r.header), perm: r.perm.map((p) => ({ permType: p.permType, key: p.key, range_end: p.rangeEnd })) };
    }),
    RoleList: unary<object>(ctx, async (_w, caller) => {
      const r = await backend.roleList(caller);
      return { header: encodeHeader(r.header), roles: r.roles };
    }),
    RoleDelete: unary<{ role: string }>(ctx, async (w, caller) => done(await backend.roleDelete(w.role ?? '', caller))),
    RoleGrantPermission: unary<{ name: string; perm: WirePermission | null }>(ctx, async (w, caller) =>
      done(await backend.roleGrantPermission(w.name ?? '', permissionOf(w.perm), caller)),
    ),
    RoleRevokePermission: unary<{ role: string; key: Uint8Array; range_end: Uint8Array }>(ctx, async (w, caller) =>
      done(await backend.roleRevokePermission(w.role ?? '', bytes(w.key), bytes(w.range_end), caller)),
    ),
  };
}

function permissionOf(wire: WirePermission | null): KeyPermission {
  return { permType: wire?.permType ?? 0, key: bytes(wire?.key), rangeEnd: bytes(wire?.range_end) };
}

function bytes(value: Uint8Array | undefined): Uint8Array {
  return value ? new Uint8Array(value) : new Uint8Array(0);
}
