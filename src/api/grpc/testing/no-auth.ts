// Test support: the Auth part of a test backend without an auth store. Auth stays disabled,
// nobody is identified, a token is never valid (as in etcd with auth disabled), and user and role
// management is refused. Tests of auth itself run against a real member (src/server/testing).
import { authError } from '../../../auth/errors.js';
import { ErrorCode, LichenError } from '../../../errors.js';
import type { AuthBackend, Caller, Credentials, KeyPermission, ResponseHeader, WithHeader } from '../../backend.js';

export abstract class NoAuthBackend implements AuthBackend {
  abstract header(revision?: number): ResponseHeader;

  async identify(credentials: Credentials): Promise<Caller | undefined> {
    if (credentials.token !== undefined) throw authError('invalidAuthToken');
    return undefined;
  }

  async authStatus(): Promise<WithHeader<{ enabled: boolean; authRevision: number }>> {
    return { header: this.header(), enabled: false, authRevision: 1 };
  }

  async authenticate(): Promise<WithHeader<{ token: string }>> {
    throw authError('authNotEnabled');
  }

  async defragment(): Promise<WithHeader<object>> {
    return { header: this.header() };
  }

  authEnable = refuse;
  authDisable = refuse;
  userAdd = refuse;
  userGet = refuse as (name: string) => Promise<WithHeader<{ roles: string[] }>>;
  userList = refuse as () => Promise<WithHeader<{ users: string[] }>>;
  userDelete = refuse;
  userChangePassword = refuse;
  userGrantRole = refuse;
  userRevokeRole = refuse;
  roleAdd = refuse;
  roleGet = refuse as (role: string) => Promise<WithHeader<{ perm: KeyPermission[] }>>;
  roleList = refuse as () => Promise<WithHeader<{ roles: string[] }>>;
  roleDelete = refuse;
  roleGrantPermission = refuse;
  roleRevokePermission = refuse;
}

async function refuse(): Promise<never> {
  throw new LichenError(ErrorCode.Internal, 'this test backend has no auth store');
}
