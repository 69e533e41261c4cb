// What `-w json` prints: the objects etcdctl 3.4 prints, so that scripts written for `etcdctl -w
// json` (jq filters on .header.revision, .kvs[0].mod_revision, .members[].ID) read Lichen's too.
// etcdctl runs Go's encoding/json over etcd's protobuf structs, which gives: the proto field
// names (snake_case for KV and headers, peerURLs and dbSize where the proto has them), zero values
// left out (omitempty: no `"more":false`, no `"lease":0`, no empty `kvs`), bytes in base64, and
// 64-bit integers as bare numbers (formatJson keeps bigint ids exact). A few commands print
// clientv3's own structs instead: the lease commands flatten the header into the object, and
// watch prints WatchResponse with Go's field names (Header, Events, CompactRevision).
// Measured against etcdctl 3.4.23 and etcd 3.4.23; src/e2e/cli-etcd.test.ts compares them.
import type { DeleteRangeResponse, Event, KeyValue, LeaseTimeToLiveResponse, RangeResponse, ResponseHeader, ResponseOp, TxnResponse } from '../mvcc/types.js';
import type { CliAlarm, CliMember, CliStatus, EndpointStatus, Exact, WithHeader } from './client-port.js';

type Json = Record<string, unknown>;
type Header = Exact<ResponseHeader> | undefined;

/** Go's omitempty: false, 0, 0n, "", empty bytes and empty lists are left out. */
function omitEmpty(fields: Json): Json {
  const out: Json = {};
  for (const [name, value] of Object.entries(fields)) {
    const empty =
      value === undefined ||
      value === false ||
      value === 0 ||
      value === 0n ||
      value === '' ||
      ((value instanceof Uint8Array || Array.isArray(value)) && value.length === 0);
    if (!empty) out[name] = value;
  }
  return out;
}

/** The header's fields, each left out when zero (a member list has no revision, for one). */
function headerFields(header: Header): Json {
  return omitEmpty({ cluster_id: header?.clusterId, member_id: header?.memberId, revision: header?.revision, raft_term: header?.raftTerm });
}

/** A response's header, left out when it has nothing (etcd 3.4 sends none with Alarm or MoveLeader). */
function headerJson(header: Header): Json | undefined {
  const fields = headerFields(header);
  return Object.keys(fields).length === 0 ? undefined : fields;
}

export function keyValueJson(kv: Exact<KeyValue>): Json {
  return omitEmpty({
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  });
}

export function rangeJson(r: WithHeader<Exact<RangeResponse>>): Json {
  return omitEmpty({ header: headerJson(r.header), kvs: r.kvs.map(keyValueJson), more: r.more, count: r.count });
}

export function putJson(r: WithHeader<{ prevKv?: Exact<KeyValue> }>): Json {
  return omitEmpty({ header: headerJson(r.header), prev_kv: r.prevKv && keyValueJson(r.prevKv) });
}

export function deleteJson(r: WithHeader<Exact<DeleteRangeResponse>>): Json {
  return omitEmpty({ header: headerJson(r.header), deleted: r.deleted, prev_kvs: r.prevKvs.map(keyValueJson) });
}

/** etcdctl prints each op as Go's oneof wrapper: {"Response":{"ResponsePut":{...}}}. */
export function txnJson(r: WithHeader<Exact<TxnResponse>>): Json {
  return omitEmpty({ header: headerJson(r.header), succeeded: r.succeeded, responses: r.responses.map(responseOpJson) });
}

function responseOpJson(op: Exact<ResponseOp>): Json {
  if ('responseRange' in op) return { Response: { ResponseRange: rangeJson(op.responseRange) } };
  if ('responsePut' in op) return { Response: { ResponsePut: putJson(op.responsePut) } };
  if ('responseDeleteRange' in op) return { Response: { ResponseDeleteRange: deleteJson(op.responseDeleteRange) } };
  return { Response: { ResponseTxn: txnJson(op.responseTxn) } };
}

/** One watch response as clientv3's WatchResponse (Go field names, no omitempty at the top). */
export function watchJson(header: Header, events: Exact<Event>[]): Json {
  return {
    Header: headerFields(header),
    Events: events.map((e) => omitEmpty({ type: e.type, kv: keyValueJson(e.kv), prev_kv: e.prevKv && keyValueJson(e.prevKv) })),
    CompactRevision: 0,
    Canceled: false,
    Created: false,
  };
}

/** clientv3's LeaseGrantResponse: the header flattened, then ID, TTL and Error (always there). */
export function leaseGrantJson(r: WithHeader<{ ID: bigint; TTL: number }>): Json {
  return { ...headerFields(r.header), ID: r.ID, TTL: r.TTL, Error: '' };
}

export function leaseKeepAliveJson(r: WithHeader<{ ID: bigint; TTL: number }>): Json {
  return { ...headerFields(r.header), ID: r.ID, TTL: r.TTL };
}

/** clientv3's LeaseTimeToLiveResponse: lower-case names, granted-ttl, keys null unless asked for. */
export function leaseTimeToLiveJson(r: WithHeader<Exact<LeaseTimeToLiveResponse>>, withKeys: boolean): Json {
  return { ...headerFields(r.header), id: r.ID, ttl: r.TTL, 'granted-ttl': r.grantedTTL, keys: withKeys ? r.keys : null };
}

export function leaseListJson(r: WithHeader<{ ids: bigint[] }>): Json {
  return { ...headerFields(r.header), leases: r.ids.map((id) => ({ id })) };
}

export function headerOnlyJson(r: { header?: Exact<ResponseHeader> }): Json {
  return omitEmpty({ header: headerJson(r.header) });
}

function memberJson(m: CliMember): Json {
  return omitEmpty({ ID: m.id, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner });
}

export function membersJson(r: WithHeader<{ member?: CliMember; members: CliMember[] }>): Json {
  return omitEmpty({ header: headerJson(r.header), member: r.member && memberJson(r.member), members: r.members.map(memberJson) });
}

function statusJson(s: CliStatus): Json {
  return omitEmpty({
    header: headerJson(s.header),
    version: s.version,
    dbSize: s.dbSize,
    leader: s.leader,
    raftIndex: s.raftIndex,
    raftTerm: s.raftTerm,
    raftAppliedIndex: s.raftAppliedIndex,
    errors: s.errors,
    dbSizeInUse: s.dbSizeInUse,
    isLearner: s.isLearner,
  });
}

/**
 * etcdctl endpoint status: one {Endpoint, Status} per endpoint that answered. One that did not is
 * left out by etcdctl (it logs the error); here it keeps its place with the error, so a script
 * sees every endpoint it asked for.
 */
export function statusesJson(statuses: readonly EndpointStatus[]): Json[] {
  return statuses.map(({ endpoint, status, error }) => (status ? { Endpoint: endpoint, Status: statusJson(status) } : { Endpoint: endpoint, Error: error ?? 'unknown error' }));
}

const ALARM_NUMBER: Record<string, number> = { NONE: 0, NOSPACE: 1, CORRUPT: 2 };

/** etcd's AlarmResponse: alarms as {memberID, alarm} with the alarm type's number, as Go prints an enum. */
export function alarmsJson(r: WithHeader<{ alarms: CliAlarm[] }>): Json {
  return omitEmpty({ header: headerJson(r.header), alarms: r.alarms.map((a) => omitEmpty({ memberID: a.memberId, alarm: ALARM_NUMBER[a.alarm] ?? 0 })) });
}
