// The paths of etcd's JSON gateway and the gRPC method each one calls: etcd 3.4's google.api.http
// bindings (every one is POST with the whole body as the request), checked against etcd 3.4.23.
// Two paths etcd added in 3.5 are served too, because Lichen serves their methods:
// /v3/maintenance/hashkv and /v3/auth/status (etcd 3.4 answers 404 for both). Message names are
// in the service's package (etcdserverpb, v3lockpb, v3electionpb).
import type { ServiceName } from '../proto.js';

export type CallKind = 'unary' | 'server-stream' | 'bidi-stream';

export interface GatewayRoute {
  /** The gRPC path of the method: "/etcdserverpb.KV/Range". */
  grpcPath: string;
  service: ServiceName;
  /** The protobuf message names of the request and the response. */
  requestType: string;
  responseType: string;
  kind: CallKind;
}

type Binding = [path: string, service: ServiceName, method: string, request: string, response: string, kind?: CallKind];

const BINDINGS: Binding[] = [
  ['/v3/kv/range', 'etcdserverpb.KV', 'Range', 'RangeRequest', 'RangeResponse'],
  ['/v3/kv/put', 'etcdserverpb.KV', 'Put', 'PutRequest', 'PutResponse'],
  ['/v3/kv/deleterange', 'etcdserverpb.KV', 'DeleteRange', 'DeleteRangeRequest', 'DeleteRangeResponse'],
  ['/v3/kv/txn', 'etcdserverpb.KV', 'Txn', 'TxnRequest', 'TxnResponse'],
  ['/v3/kv/compaction', 'etcdserverpb.KV', 'Compact', 'CompactionRequest', 'CompactionResponse'],

  ['/v3/watch', 'etcdserverpb.Watch', 'Watch', 'WatchRequest', 'WatchResponse', 'bidi-stream'],

  ['/v3/lease/grant', 'etcdserverpb.Lease', 'LeaseGrant', 'LeaseGrantRequest', 'LeaseGrantResponse'],
  ['/v3/lease/revoke', 'etcdserverpb.Lease', 'LeaseRevoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse'],
  ['/v3/kv/lease/revoke', 'etcdserverpb.Lease', 'LeaseRevoke', 'LeaseRevokeRequest', 'LeaseRevokeResponse'],
  ['/v3/lease/keepalive', 'etcdserverpb.Lease', 'LeaseKeepAlive', 'LeaseKeepAliveRequest', 'LeaseKeepAliveResponse', 'bidi-stream'],
  ['/v3/lease/timetolive', 'etcdserverpb.Lease', 'LeaseTimeToLive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse'],
  ['/v3/kv/lease/timetolive', 'etcdserverpb.Lease', 'LeaseTimeToLive', 'LeaseTimeToLiveRequest', 'LeaseTimeToLiveResponse'],
  ['/v3/lease/leases', 'etcdserverpb.Lease', 'LeaseLeases', 'LeaseLeasesRequest', 'LeaseLeasesResponse'],
  ['/v3/kv/lease/leases', 'etcdserverpb.Lease', 'LeaseLeases', 'LeaseLeasesRequest', 'LeaseLeasesResponse'],

  ['/v3/cluster/member/add', 'etcdserverpb.Cluster', 'MemberAdd', 'MemberAddRequest', 'MemberAddResponse'],
  ['/v3/cluster/member/remove', 'etcdserverpb.Cluster', 'MemberRemove', 'MemberRemoveRequest', 'MemberRemoveResponse'],
  ['/v3/cluster/member/update', 'etcdserverpb.Cluster', 'MemberUpdate', 'MemberUpdateRequest', 'MemberUpdateResponse'],
  ['/v3/cluster/member/list', 'etcdserverpb.Cluster', 'MemberList', 'MemberListRequest', 'MemberListResponse'],
  ['/v3/cluster/member/promote', 'etcdserverpb.Cluster', 'MemberPromote', 'MemberPromoteRequest', 'MemberPromoteResponse'],

  ['/v3/maintenance/alarm', 'etcdserverpb.Maintenance', 'Alarm', 'AlarmRequest', 'AlarmResponse'],
  ['/v3/maintenance/status', 'etcdserverpb.Maintenance', 'Status', 'StatusRequest', 'StatusResponse'],
  ['/v3/maintenance/defragment', 'etcdserverpb.Maintenance', 'Defragment', 'DefragmentRequest', 'DefragmentResponse'],
  ['/v3/maintenance/hash', 'etcdserverpb.Maintenance', 'Hash', 'HashRequest', 'HashResponse'],
  ['/v3/maintenance/hashkv', 'etcdserverpb.Maintenance', 'HashKV', 'HashKVRequest', 'HashKVResponse'],
  ['/v3/maintenance/snapshot', 'etcdserverpb.Maintenance', 'Snapshot', 'SnapshotRequest', 'SnapshotResponse', 'server-stream'],
  ['/v3/maintenance/transfer-leadership', 'etcdserverpb.Maintenance', 'MoveLeader', 'MoveLeaderRequest', 'MoveLeaderResponse'],

  ['/v3/auth/enable', 'etcdserverpb.Auth', 'AuthEnable', 'AuthEnableRequest', 'AuthEnableResponse'],
  ['/v3/auth/disable', 'etcdserverpb.Auth', 'AuthDisable', 'AuthDisableRequest', 'AuthDisableResponse'],
  ['/v3/auth/status', 'etcdserverpb.Auth', 'AuthStatus', 'AuthStatusRequest', 'AuthStatusResponse'],
  ['/v3/auth/authenticate', 'etcdserverpb.Auth', 'Authenticate', 'AuthenticateRequest', 'AuthenticateResponse'],
  ['/v3/auth/user/add', 'etcdserverpb.Auth', 'UserAdd', 'AuthUserAddRequest', 'AuthUserAddResponse'],
  ['/v3/auth/user/get', 'etcdserverpb.Auth', 'UserGet', 'AuthUserGetRequest', 'AuthUserGetResponse'],
  ['/v3/auth/user/list', 'etcdserverpb.Auth', 'UserList', 'AuthUserListRequest', 'AuthUserListResponse'],
  ['/v3/auth/user/delete', 'etcdserverpb.Auth', 'UserDelete', 'AuthUserDeleteRequest', 'AuthUserDeleteResponse'],
  ['/v3/auth/user/changepw', 'etcdserverpb.Auth', 'UserChangePassword', 'AuthUserChangePasswordRequest', 'AuthUserChangePasswordResponse'],
  ['/v3/auth/user/grant', 'etcdserverpb.Auth', 'UserGrantRole', 'AuthUserGrantRoleRequest', 'AuthUserGrantRoleResponse'],
  ['/v3/auth/user/revoke', 'etcdserverpb.Auth', 'UserRevokeRole', 'AuthUserRevokeRoleRequest', 'AuthUserRevokeRoleResponse'],
  ['/v3/auth/role/add', 'etcdserverpb.Auth', 'RoleAdd', 'AuthRoleAddRequest', 'AuthRoleAddResponse'],
  ['/v3/auth/role/get', 'etcdserverpb.Auth', 'RoleGet', 'AuthRoleGetRequest', 'AuthRoleGetResponse'],
  ['/v3/auth/role/list', 'etcdserverpb.Auth', 'RoleList', 'AuthRoleListRequest', 'AuthRoleListResponse'],
  ['/v3/auth/role/delete', 'etcdserverpb.Auth', 'RoleDelete', 'AuthRoleDeleteRequest', 'AuthRoleDeleteResponse'],
  ['/v3/auth/role/grant', 'etcdserverpb.Auth', 'RoleGrantPermission', 'AuthRoleGrantPermissionRequest', 'AuthRoleGrantPermissionResponse'],
  ['/v3/auth/role/revoke', 'etcdserverpb.Auth', 'RoleRevokePermission', 'AuthRoleRevokePermissionRequest', 'AuthRoleRevokePermissionResponse'],

  ['/v3/lock/lock', 'v3lockpb.Lock', 'Lock', 'LockRequest', 'LockResponse'],
  ['/v3/lock/unlock', 'v3lockpb.Lock', 'Unlock', 'UnlockRequest', 'UnlockResponse'],

  ['/v3/election/campaign', 'v3electionpb.Election', 'Campaign', 'CampaignRequest', 'CampaignResponse'],
  ['/v3/election/proclaim', 'v3electionpb.Election', 'Proclaim', 'ProclaimRequest', 'ProclaimResponse'],
  ['/v3/election/leader', 'v3electionpb.Election', 'Leader', 'LeaderRequest', 'LeaderResponse'],
  ['/v3/election/observe', 'v3electionpb.Election', 'Observe', 'LeaderRequest', 'LeaderResponse', 'server-stream'],
  ['/v3/election/resign', 'v3electionpb.Election', 'Resign', 'ResignRequest', 'ResignResponse'],
];

/** Every gateway path under /v3/ and what it calls. */
export const GATEWAY_ROUTES: ReadonlyMap<string, GatewayRoute> = new Map(
  BINDINGS.map(([path, service, method, request, response, kind = 'unary']) => [
    path,
    { grpcPath: `/${service}/${method}`, service, requestType: `${packageOf(service)}.${request}`, responseType: `${packageOf(service)}.${response}`, kind },
  ]),
);

function packageOf(service: ServiceName): string {
  return service.slice(0, service.lastIndexOf('.'));
}

/** Older clients (etcd 3.3's paths) use /v3beta/; etcd 3.4 rewrites it to /v3/. */
export const V3BETA_PREFIX = '/v3beta/';
export const V3_PREFIX = '/v3/';
