// How member, cluster and lease ids are shown to people: 16 zero-padded lowercase hex digits, as
// etcdctl prints lease ids (`lease 694d77aa9e38260f granted`), everywhere Lichen prints an id:
// logs, the CLI, the HTTP API's /v1 routes. (etcd's wire APIs keep their numbers.)
export function formatId(id: number | bigint): string {
  return id.toString(16).padStart(16, '0');
}

/**
 * A raft group's id: a positive 32-bit integer. A process (a store, src/store) hosts one replica
 * per group it takes part in; peer frames name the group each message belongs to.
 */
export type GroupId = number;

/** The cluster's one group today (its members are the cluster's members). */
export const metaGroupId: GroupId = 1;

/** Whether `value` can be a group id (what a frame from a peer must carry). */
export function isGroupId(value: number): value is GroupId {
  return Number.isInteger(value) && value > 0 && value <= 0xffff_ffff;
}
