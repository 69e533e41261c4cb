import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine } from '../engine/index.js';
import { isLichenError } from '../errors.js';
import { MvccStore, type Command } from '../mvcc/index.js';
import { b } from '../mvcc/testkit.js';
import { applyCommand, type ApplyResult, type ReplicatedState } from './apply.js';
import type { AuthErrorName } from './errors.js';
import { AuthStore } from './store.js';

/** A replica's state over a memory engine, applying commands at increasing raft indexes. */
class Replica {
  index = 0;
  readonly engine = new MemoryEngine();
  readonly state: ReplicatedState = { mvcc: MvccStore.open(this.engine), auth: AuthStore.open(this.engine) };

  apply(command: Command): ApplyResult {
    return applyCommand(this.state, ++this.index, command);
  }

  ok(command: Command): void {
    const result = this.apply(command);
    if ('error' in result) throw result.error;
  }

  as(user: string, command: Command, revision = this.state.auth.revision): ApplyResult {
    return this.apply({ type: 'authorized', user, authRevision: revision, command: command as never });
  }
}

function failsWith(result: ApplyResult, name: AuthErrorName): void {
  assert.ok('error' in result, `expected ${name}, the command succeeded`);
  assert.ok(isLichenError(result.error), String(result.error));
  assert.equal(result.error.details.etcdError, name, result.error.message);
}

function succeeds(result: ApplyResult): void {
  if ('error' in result) assert.fail(`expected success, got ${result.error.message}`);
}

const put = (key: string, extra: object = {}): Command => ({ type: 'put', request: { key: b(key), value: b('v'), ...extra } });

/** root (with the root role), alice with role r1 = readwrite [/a/, /a0) + read /r, auth enabled. */
function setUp(): Replica {
  const replica = new Replica();
  replica.ok({ type: 'userAdd', name: 'root', passwordHash: 'h', noPassword: false });
  replica.ok({ type: 'userGrantRole', user: 'root', role: 'root' });
  replica.ok({ type: 'userAdd', name: 'alice', passwordHash: 'h', noPassword: false });
  replica.ok({ type: 'roleAdd', name: 'r1' });
  replica.ok({ type: 'roleGrantPermission', name: 'r1', permType: 2, key: b('/a/'), rangeEnd: b('/a0') });
  replica.ok({ type: 'roleGrantPermission', name: 'r1', permType: 0, key: b('/r'), rangeEnd: new Uint8Array() });
  replica.ok({ type: 'userGrantRole', user: 'alice', role: 'r1' });
  replica.ok({ type: 'authEnable' });
  return replica;
}

describe('AuthStore', () => {
  it('enables auth only with a root user that has the root role', () => {
    const replica = new Replica();
    failsWith(replica.apply({ type: 'authEnable' }), 'rootUserNotExist');
    replica.ok({ type: 'userAdd', name: 'root', passwordHash: 'h', noPassword: false });
    failsWith(replica.apply({ type: 'authEnable' }), 'rootRoleNotExist');
    // The root role need not exist as a role to be granted (etcdctl creates it, etcd does not ask).
    replica.ok({ type: 'userGrantRole', user: 'root', role: 'root' });
    const revision = replica.state.auth.revision;
    replica.ok({ type: 'authEnable' });
    assert.equal(replica.state.auth.enabled, true);
    assert.equal(replica.state.auth.revision, revision, 'enabling does not move the revision (etcd 3.4)');
  });

  it('refuses what etcd refuses, with etcd\'s errors', () => {
    const replica = setUp();
    const root = (command: Command): ApplyResult => replica.as('root', command);
    failsWith(root({ type: 'userAdd', name: '', passwordHash: 'h', noPassword: false }), 'userEmpty');
    failsWith(root({ type: 'userAdd', name: 'alice', passwordHash: 'h', noPassword: false }), 'userAlreadyExist');
    failsWith(root({ type: 'roleAdd', name: '' }), 'roleEmpty');
    failsWith(root({ type: 'roleAdd', name: 'r1' }), 'roleAlreadyExist');
    failsWith(root({ type: 'userGrantRole', user: 'nobody', role: 'r1' }), 'userNotFound');
    failsWith(root({ type: 'userGrantRole', user: 'alice', role: 'nope' }), 'roleNotFound');
    failsWith(root({ type: 'userRevokeRole', name: 'alice', role: 'root' }), 'roleNotGranted');
    failsWith(root({ type: 'roleRevokePermission', role: 'r1', key: b('/zzz'), rangeEnd: new Uint8Array() }), 'permissionNotGranted');
    failsWith(root({ type: 'userDelete', name: 'root' }), 'invalidAuthMgmt');
    failsWith(root({ type: 'userRevokeRole', name: 'root', role: 'root' }), 'invalidAuthMgmt');
    failsWith(root({ type: 'roleDelete', role: 'root' }), 'invalidAuthMgmt');
    failsWith(root({ type: 'userChangePassword', name: 'nobody', passwordHash: 'h' }), 'userNotFound');
  });

  it('lets only the root role change users and roles once auth is enabled', () => {
    const replica = setUp();
    failsWith(replica.apply({ type: 'roleAdd', name: 'x' }), 'userEmpty');
    failsWith(replica.as('alice', { type: 'roleAdd', name: 'x' }), 'permissionDenied');
    failsWith(replica.as('ghost', { type: 'roleAdd', name: 'x' }), 'userNotFound');
    failsWith(replica.as('alice', { type: 'authDisable' }), 'permissionDenied');
    succeeds(replica.as('root', { type: 'roleAdd', name: 'x' }));
  });

  it('moves the revision on every change except a repeated grant and enabling', () => {
    const replica = setUp();
    const before = replica.state.auth.revision;
    replica.ok({ type: 'authorized', user: 'root', authRevision: before, command: { type: 'userGrantRole', user: 'alice', role: 'r1' } });
    assert.equal(replica.state.auth.revision, before);
    succeeds(replica.as('root', { type: 'roleAdd', name: 'r2' }));
    assert.equal(replica.state.auth.revision, before + 1);
  });

  it('checks reads and writes against the merged permissions of the user\'s roles', () => {
    const replica = setUp();
    succeeds(replica.as('alice', put('/a/x')));
    failsWith(replica.as('alice', put('/b/x')), 'permissionDenied');
    failsWith(replica.as('alice', put('/r')), 'permissionDenied');
    failsWith(replica.as('alice', { type: 'deleteRange', request: { key: b('/a/'), rangeEnd: b('/b') } }), 'permissionDenied');
    succeeds(replica.as('alice', { type: 'deleteRange', request: { key: b('/a/'), rangeEnd: b('/a0') } }));
    failsWith(replica.apply(put('/a/x')), 'userEmpty');
    failsWith(replica.as('ghost', put('/a/x')), 'permissionDenied');
    succeeds(replica.as('root', put('/anything')));
  });

  it('sees a role\'s permissions change after a check was made with them (the derived intervals are rebuilt)', () => {
    const replica = setUp();
    succeeds(replica.as('alice', put('/a/x')));
    succeeds(replica.as('root', { type: 'roleGrantPermission', name: 'r1', permType: 1, key: b('/w'), rangeEnd: new Uint8Array() }));
    succeeds(replica.as('alice', put('/w')));
    succeeds(replica.as('root', { type: 'roleRevokePermission', role: 'r1', key: b('/a/'), rangeEnd: b('/a0') }));
    failsWith(replica.as('alice', put('/a/x')), 'permissionDenied');
    // A role deleted and added again under the same name starts empty, whatever was derived from the old one.
    succeeds(replica.as('root', { type: 'roleAdd', name: 'r2' }));
    succeeds(replica.as('root', { type: 'roleGrantPermission', name: 'r2', permType: 2, key: b('/c'), rangeEnd: new Uint8Array() }));
    succeeds(replica.as('root', { type: 'userGrantRole', user: 'alice', role: 'r2' }));
    succeeds(replica.as('alice', put('/c')));
    succeeds(replica.as('root', { type: 'roleDelete', role: 'r2' }));
    succeeds(replica.as('root', { type: 'roleAdd', name: 'r2' }));
    succeeds(replica.as('root', { type: 'userGrantRole', user: 'alice', role: 'r2' }));
    failsWith(replica.as('alice', put('/c')), 'permissionDenied');
  });

  it('answers each user with its own permissions when users alternate, and forgets them on a reload', () => {
    const replica = setUp();
    succeeds(replica.as('root', { type: 'userAdd', name: 'bob', passwordHash: 'h', noPassword: false }));
    succeeds(replica.as('root', { type: 'roleAdd', name: 'rb' }));
    succeeds(replica.as('root', { type: 'roleGrantPermission', name: 'rb', permType: 2, key: b('/b/'), rangeEnd: b('/b0') }));
    succeeds(replica.as('root', { type: 'userGrantRole', user: 'bob', role: 'rb' }));
    for (let i = 0; i < 3; i++) {
      succeeds(replica.as('alice', put('/a/x')));
      failsWith(replica.as('alice', put('/b/x')), 'permissionDenied');
      succeeds(replica.as('bob', put('/b/x')));
      failsWith(replica.as('bob', put('/a/x')), 'permissionDenied');
    }
    // A snapshot replaces the engine's auth state under the store: bob's role gone, same revision.
    const engineState = replica.state.auth.state();
    replica.state.auth.checkWrite({ user: 'bob', authRevision: engineState.revision }, b('/b/x'));
    const replaced = { ...engineState, users: engineState.users.map((u) => (u.name === 'bob' ? { ...u, roles: [] } : u)) };
    AuthStore.write(replica.engine, replaced);
    replica.state.auth.reload();
    assert.throws(() => replica.state.auth.checkWrite({ user: 'bob', authRevision: engineState.revision }, b('/b/x')), /permission denied/);
  });

  it('refuses a deleted user at once, and a revoked role at once, even to a caller at the current revision (as a simple token is)', () => {
    const replica = setUp();
    const info = (): { user: string; authRevision: number } => ({ user: 'alice', authRevision: replica.state.auth.revision });
    replica.state.auth.checkRead(info(), b('/a/x'));
    succeeds(replica.as('root', { type: 'userRevokeRole', name: 'alice', role: 'r1' }));
    assert.throws(() => replica.state.auth.checkRead(info(), b('/a/x')), /permission denied/);
    failsWith(replica.as('alice', put('/a/x')), 'permissionDenied');
    succeeds(replica.as('root', { type: 'userGrantRole', user: 'alice', role: 'r1' }));
    replica.state.auth.checkRead(info(), b('/a/x'));
    succeeds(replica.as('root', { type: 'userDelete', name: 'alice' }));
    assert.throws(() => replica.state.auth.checkRead(info(), b('/a/x')), /permission denied/);
    failsWith(replica.as('alice', put('/a/x')), 'permissionDenied');
  });

  it('checks a caller without a revision (a simple token, a certificate) at the current revision, and one with a revision against it', () => {
    const replica = setUp();
    const issuedAt = replica.state.auth.revision;
    replica.state.auth.checkRead({ user: 'alice' }, b('/a/x'));
    replica.state.auth.checkRead({ user: 'alice', authRevision: issuedAt }, b('/a/x'));
    succeeds(replica.as('root', { type: 'roleAdd', name: 'unrelated' }));
    replica.state.auth.checkRead({ user: 'alice' }, b('/a/x'));
    replica.state.auth.checkWrite({ user: 'alice' }, b('/a/x'));
    assert.throws(() => replica.state.auth.checkRead({ user: 'alice', authRevision: issuedAt }, b('/a/x')), /revision of auth store is old/);
    assert.throws(() => replica.state.auth.checkWrite({ user: 'alice' }, b('/b/x')), /permission denied/);
    assert.throws(() => replica.state.auth.checkRead({ user: '' }, b('/a/x')), /user name is empty/);
  });

  it('needs read permission too for a put or delete that returns the previous value', () => {
    const replica = setUp();
    replica.ok({ type: 'authorized', user: 'root', authRevision: replica.state.auth.revision, command: { type: 'roleGrantPermission', name: 'r1', permType: 1, key: b('/w'), rangeEnd: new Uint8Array() } });
    succeeds(replica.as('alice', put('/w')));
    failsWith(replica.as('alice', put('/w', { prevKv: true })), 'permissionDenied');
    failsWith(replica.as('alice', { type: 'deleteRange', request: { key: b('/w'), prevKv: true } }), 'permissionDenied');
  });

  it('refuses a request checked against an older auth revision ("revision of auth store is old")', () => {
    const replica = setUp();
    const old = replica.state.auth.revision;
    succeeds(replica.as('root', { type: 'roleAdd', name: 'r2' }));
    failsWith(replica.as('alice', put('/a/x'), old), 'authOldRevision');
    succeeds(replica.as('alice', put('/a/x')));
  });

  it('checks every compare and both branches of a txn, nested txns included', () => {
    const replica = setUp();
    const txn = (request: object): Command => ({ type: 'txn', request: { compare: [], success: [], failure: [], ...request } as never });
    succeeds(replica.as('alice', txn({ compare: [{ key: b('/r'), target: 0, result: 0, version: 0 }], success: [{ requestPut: { key: b('/a/1'), value: b('v') } }] })));
    failsWith(replica.as('alice', txn({ compare: [{ key: b('/b'), target: 0, result: 0, version: 0 }], success: [{ requestPut: { key: b('/a/1'), value: b('v') } }] })), 'permissionDenied');
    failsWith(replica.as('alice', txn({ success: [{ requestPut: { key: b('/a/1'), value: b('v') } }], failure: [{ requestRange: { key: b('/b') } }] })), 'permissionDenied');
    // etcd 3.4 does not look inside nested txns; Lichen does.
    const nested = txn({ success: [{ requestTxn: { compare: [], success: [{ requestPut: { key: b('/b/evil'), value: b('v') } }], failure: [] } }] });
    failsWith(replica.as('alice', nested), 'permissionDenied');
    assert.equal(replica.state.mvcc.range({ key: b('/b/evil') }).count, 0);
  });

  it('lets a lease be revoked, or a key attached to it, only by a user who may write all its keys', () => {
    const replica = setUp();
    const granted = replica.as('alice', { type: 'leaseGrant', request: { TTL: 60, ID: 5 } });
    succeeds(granted);
    succeeds(replica.as('alice', put('/a/1', { lease: 5 })));
    succeeds(replica.as('root', put('/b/1', { lease: 5 })));
    failsWith(replica.as('alice', put('/a/2', { lease: 5 })), 'permissionDenied');
    failsWith(replica.as('alice', { type: 'leaseRevoke', id: 5 }), 'permissionDenied');
    succeeds(replica.as('root', { type: 'leaseRevoke', id: 5 }));
  });

  it('passes MVCC commands that need no permission to the MVCC store, alarms among them, with or without a caller', () => {
    const replica = setUp();
    succeeds(replica.apply({ type: 'alarmActivate', memberId: 1, alarm: 1 }));
    assert.equal(replica.state.mvcc.alarms().length, 1);
    succeeds(replica.as('alice', { type: 'alarmDeactivate', memberId: 1, alarm: 1 }));
    assert.equal(replica.state.mvcc.alarms().length, 0);
    succeeds(replica.apply({ type: 'compact', request: { revision: 1 } }));
  });

  it('still records the raft index of a refused command, and changes nothing else', () => {
    const replica = setUp();
    const revision = replica.state.mvcc.currentRevision;
    failsWith(replica.as('alice', put('/b/x')), 'permissionDenied');
    assert.equal(replica.state.mvcc.appliedIndex, replica.index);
    assert.equal(replica.state.mvcc.currentRevision, revision);
  });

  it('takes a deleted role away from its users, so a new role of that name grants nothing', () => {
    const replica = setUp();
    succeeds(replica.as('root', { type: 'roleDelete', role: 'r1' }));
    assert.deepEqual(replica.state.auth.user('alice')!.roles, []);
    succeeds(replica.as('root', { type: 'roleAdd', name: 'r1' }));
    failsWith(replica.as('alice', put('/a/x')), 'permissionDenied');
  });

  it('keeps the state in the engine: a reopened or snapshot-restored store has the same users, roles and flags', () => {
    const replica = setUp();
    succeeds(replica.as('root', { type: 'userAdd', name: 'bob', passwordHash: '', noPassword: true }));
    const reopened = AuthStore.open(replica.engine);
    assert.equal(reopened.enabled, true);
    assert.equal(reopened.revision, replica.state.auth.revision);
    assert.deepEqual(reopened.userNames(), ['alice', 'bob', 'root']);
    assert.deepEqual(reopened.user('alice'), replica.state.auth.user('alice'));
    assert.deepEqual(reopened.role('r1'), replica.state.auth.role('r1'));
    assert.equal(reopened.user('bob')!.noPassword, true);

    const other = new Replica();
    other.state.mvcc.install(replica.state.mvcc.export());
    other.state.auth.reload();
    assert.deepEqual(other.state.auth.roleNames(), ['r1']);
    assert.doesNotThrow(() => other.state.auth.checkWrite({ user: 'alice', authRevision: other.state.auth.revision }, b('/a/x')));
  });

  it('drops every check while auth is disabled, and moves the revision on disabling', () => {
    const replica = setUp();
    const revision = replica.state.auth.revision;
    succeeds(replica.as('root', { type: 'authDisable' }));
    assert.equal(replica.state.auth.revision, revision + 1);
    succeeds(replica.apply(put('/b/x')));
    succeeds(replica.apply({ type: 'userDelete', name: 'root' }));
  });
});
