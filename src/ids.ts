// How member, cluster and lease ids are shown to people: 16 zero-padded lowercase hex digits, as
// etcdctl prints lease ids (`lease 694d77aa9e38260f granted`), everywhere Lichen prints an id:
// logs, the CLI, the HTTP API's /v1 routes. (etcd's wire APIs keep their numbers.)
export function formatId(id: number | bigint): string {
  return id.toString(16).padStart(16, '0');
}
