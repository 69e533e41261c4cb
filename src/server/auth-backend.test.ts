// Where NodeAuthBackend checks an auth change: at apply, in log order, as etcd's authApplierV3
// does (IsAdminPermitted on the request header's user), never against this member's auth state
// at the moment the request arrives, which may lag entries already committed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyCommand, AuthStore, ROOT_ROLE, ROOT_USER, SimpleTokens, type ReplicatedState } from '../auth/index.js';
import { MemoryEngine } from '../engine/index.js';
import { isLichenError } from '../errors.js';
import { MvccStore, type Command } from '../mvcc/index.js';
import type { Caller } from '../api/backend.js';
import type { Replica } from '../replica/index.js';
import { NodeAuthBackend } from './auth-backend.js';
import { defaultNodeConfig } from './config.js';

/**
 * A member whose log holds entries that are committed but not applied here yet: a proposal is
 * appended after them and applied in log order with the real apply code, so the member's auth
 * state when a request arrives is older than the state its entry is checked against.
 */
class LaggingMember {
  private index = 0;
  private readonly pending: Command[] = [];
  readonly state: ReplicatedState;
  barriers = 0;

  constructor() {
    const engine = new MemoryEngine();
    this.state = { mvcc: MvccStore.open(engine), auth: AuthStore.open(engine) };
  }

  /** Applies at once (the member's past). */
  applied(command: Command): void {
    const result = applyCommand(this.state, ++this.index, command);
    if ('error' in result) throw result.error;
  }

  /** Committed, to be applied before anything proposed later. */
  committed(command: Command): void {
    this.pending.push(command);
  }

  /** The Replica surface NodeAuthBackend uses. */
  replica(): Replica {
    const member = {
      clusterId: 1,
      memberId: 1,
      raftTerm: 1,
      store: this.state.mvcc,
      auth: this.state.auth,
      tokens: new SimpleTokens({ ttlMs: 60_000, now: () => 0, timers: { setTimeout: () => undefined, clear: () => {} }, waitForApplied: async () => {} }),
      propose: async (command: Command) => {
        this.pending.push(command);
        let last;
        while (this.pending.length > 0) last = applyCommand(this.state, ++this.index, this.pending.shift()!);
        if ('error' in last!) throw last.error;
        return last;
      },
      linearizableBarrier: async () => {
        this.barriers++;
        while (this.pending.length > 0) applyCommand(this.state, ++this.index, this.pending.shift()!);
      },
    };
    return member as unknown as Replica;
  }
}

const asRoot = (command: Command): Command => ({ type: 'authorized', user: ROOT_USER, authRevision: undefined as never, command: command as never });

/** Root with the root role, alice without it, auth enabled: all applied. */
function memberWithAuth(): LaggingMember {
  const member = new LaggingMember();
  member.applied({ type: 'userAdd', name: ROOT_USER, passwordHash: 'x', noPassword: false });
  member.applied({ type: 'roleAdd', name: ROOT_ROLE });
  member.applied({ type: 'userGrantRole', user: ROOT_USER, role: ROOT_ROLE });
  member.applied({ type: 'userAdd', name: 'alice', passwordHash: 'x', noPassword: false });
  member.applied({ type: 'authEnable' });
  return member;
}

function backendOf(member: LaggingMember): NodeAuthBackend {
  return new NodeAuthBackend(member.replica(), defaultNodeConfig({ name: 'm1', dataDir: '/nonexistent', bcryptCost: 4 }));
}

async function failsWith(promise: Promise<unknown>, etcdError: string): Promise<void> {
  await assert.rejects(promise, (error) => isLichenError(error) && error.details.etcdError === etcdError);
}

describe('auth changes are checked at apply, in log order', () => {
  it('"auth enable" without a user, sent to a member that has not applied the committed "auth disable" yet, succeeds', async () => {
    const member = memberWithAuth();
    member.committed(asRoot({ type: 'authDisable' }));
    assert.equal(member.state.auth.enabled, true, 'the member still holds "enabled"');
    await backendOf(member).authEnable(undefined);
    assert.equal(member.state.auth.enabled, true);
    assert.ok(member.state.auth.revision > 1, 'the disable was applied before the enable');
  });

  it('every change without a user succeeds behind a committed "auth disable"', async () => {
    const member = memberWithAuth();
    member.committed(asRoot({ type: 'authDisable' }));
    const backend = backendOf(member);
    await backend.roleAdd('ops');
    member.committed(asRoot({ type: 'authEnable' }));
    member.committed(asRoot({ type: 'authDisable' }));
    await backend.userAdd({ name: 'bob', password: 'pw', noPassword: false });
    member.committed(asRoot({ type: 'authEnable' }));
    member.committed(asRoot({ type: 'authDisable' }));
    await backend.userGrantRole('bob', 'ops');
    member.committed(asRoot({ type: 'authEnable' }));
    member.committed(asRoot({ type: 'authDisable' }));
    await backend.userChangePassword('bob', 'pw2');
    assert.deepEqual(member.state.auth.user('bob')?.roles, ['ops']);
  });

  it('a user granted the root role by a committed entry may change the auth state at once', async () => {
    const member = memberWithAuth();
    member.committed(asRoot({ type: 'userGrantRole', user: 'alice', role: ROOT_ROLE }));
    const alice: Caller = { user: 'alice' };
    await backendOf(member).roleAdd('ops', alice);
    assert.ok(member.state.auth.role('ops'));
  });

  it('a change to a user added by a committed entry is not refused with "user name not found"', async () => {
    const member = memberWithAuth();
    member.committed(asRoot({ type: 'userAdd', name: 'carol', passwordHash: 'x', noPassword: false }));
    await backendOf(member).userChangePassword('carol', 'pw', { user: ROOT_USER });
  });

  it('refuses at apply with etcd\'s errors, in etcd\'s order (the root role first, then the arguments)', async () => {
    const member = memberWithAuth();
    const backend = backendOf(member);
    await failsWith(backend.authDisable(undefined), 'userEmpty');
    await failsWith(backend.roleAdd('ops', { user: 'alice' }), 'permissionDenied');
    await failsWith(backend.roleAdd('ops', { user: 'nobody' }), 'userNotFound');
    await failsWith(backend.userAdd({ name: '', password: 'pw', noPassword: false }, { user: 'alice' }), 'permissionDenied');
    await failsWith(backend.userAdd({ name: '', password: 'pw', noPassword: false }, { user: ROOT_USER }), 'userEmpty');
    await failsWith(backend.userAdd({ name: '', password: '', noPassword: true }, { user: 'alice' }), 'permissionDenied');
    await failsWith(backend.userAdd({ name: '', password: '', noPassword: true }, { user: ROOT_USER }), 'userEmpty');
    await failsWith(backend.userChangePassword('nobody', 'pw', { user: ROOT_USER }), 'userNotFound');
    assert.equal(member.state.auth.enabled, true);
  });

  it('refuses a password change for a caller without the root role before hashing, once a ReadIndex confirms it', async () => {
    const member = memberWithAuth();
    const backend = backendOf(member);
    await failsWith(backend.userChangePassword('alice', 'pw', { user: 'alice' }), 'permissionDenied');
    assert.equal(member.barriers, 1, 'the refusal waited for everything committed before it');
  });
});
