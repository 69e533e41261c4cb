// The HTTP routes the dashboard uses (and anyone may: they are documented in ../README.md): the
// cluster event stream, a member's traffic report, key history, children of a key path, a watch
// as server-sent events, leases, and the operations (leader transfer, membership, compaction,
// snapshot). Handlers follow ../routes.ts: parsed input in, a Reply out, LichenError for failures.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { HASHED_LENGTH_UNIT, SHA256_BYTES } from '../../../backup/index.js';
import { ErrorCode, isLichenError, LichenError } from '../../../errors.js';
import { eventStreamsMax, historyVersionsMax, keyTreeReadsMax, keyTreeScanKeysMax, leasesDescribedMax } from '../../../limits.js';
import { EventType, type Event, type KeyValue } from '../../../mvcc/types.js';
import type { Member, ResponseHeader, SnapshotStream } from '../../backend.js';
import { formatId } from '../../../ids.js';
import {
  bytesField,
  jsonInteger,
  keyValueJson,
  parseJsonObject,
  parseLeaseId,
  parseNonNegativeInteger,
  prefixRange,
  queryBoolean,
  queryInteger,
} from '../codec.js';
import { invalidArgument } from '../errors.js';
import type { DashboardDeps, Handler, PathRoute, Reply, RouteContext, RouteDeps } from '../route.js';
import { openEventStream } from './events.js';

const ok = (json: unknown): Reply => ({ status: 200, json });

function dashboardOf(deps: RouteDeps): DashboardDeps {
  if (!deps.dashboard) throw new LichenError(ErrorCode.NotFound, 'the dashboard routes are not served here');
  return deps.dashboard;
}

/** An id as /v1 shows it (formatId: hexadecimal, zero padding allowed) back to a number. */
function parseId(text: string, what: string): number {
  const id = /^[0-9a-fA-F]{1,16}$/.test(text) ? parseInt(text, 16) : NaN;
  if (!Number.isSafeInteger(id)) throw invalidArgument(`${what} must be an id in hexadecimal below 2^53, got ${JSON.stringify(text)}`);
  return id;
}

function idOf(context: RouteContext, what: string): number {
  return parseId(Buffer.from(context.key ?? new Uint8Array()).toString('utf8'), what);
}

/** A lease id in the path: exactly 16 hex digits, as the KV routes take it (see parseLeaseId). */
function leaseIdOf(context: RouteContext): number {
  return parseLeaseId(Buffer.from(context.key ?? new Uint8Array()).toString('utf8'), 'the lease id');
}

/** A required JSON field holding an id in the /v1 form. */
function jsonId(json: Record<string, unknown>, name: string): number {
  const text = json[name];
  if (typeof text !== 'string') throw invalidArgument(`JSON field "${name}" must be an id in hexadecimal (a string)`);
  return parseId(text, `JSON field "${name}"`);
}

// As the /v1 cluster routes show them: member and cluster ids in formatId's form.
const headerJson = (header: ResponseHeader) => ({ ...header, clusterId: formatId(header.clusterId), memberId: formatId(header.memberId) });
const membersJson = (members: Member[]) => members.map((m) => ({ ...m, id: formatId(m.id) }));

function keyOf(context: RouteContext, allowEmpty = false): Uint8Array {
  const key = context.key ?? new Uint8Array();
  if (key.length === 0 && !allowEmpty) throw invalidArgument('the key in the path must not be empty');
  return key;
}

/** A byte string one past `key` in key order: the smallest key greater than it. */
function after(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

/** Reserves one of the eventStreamsMax streams; the release runs when the stream closes. */
function reserveStream(dashboard: DashboardDeps): () => void {
  if (dashboard.openStreams.count >= eventStreamsMax) {
    throw new LichenError(ErrorCode.Unavailable, `too many open event streams on this member (at most ${eventStreamsMax})`);
  }
  dashboard.openStreams.count++;
  let released = false;
  return () => {
    if (!released) dashboard.openStreams.count--;
    released = true;
  };
}

// ---- cluster and traffic ----

/** GET /v1/traffic?since=S&heatSince=H: this member's facts and traffic after those seconds. */
const trafficRoute: Handler = async (context, deps) => {
  const source = dashboardOf(deps).source;
  const since = queryInteger(context.query, 'since', 0);
  // The facts and rates need no permission: credentials that name nobody (a member's own TLS
  // certificate, an expired token) get them without the heat rather than a refusal.
  const caller = await context.caller().catch(() => undefined);
  const seesHeat = source.access(caller).admin;
  const report = await source.report(since, queryInteger(context.query, 'heatSince', since));
  return ok(seesHeat ? report : { ...report, heat: [], heatHidden: true });
};

/** GET /v1/events: server-sent events, a "history" event and then a "tick" every second. */
const eventsRoute: Handler = async (context, deps) => {
  const dashboard = dashboardOf(deps);
  const caller = await context.caller();
  const authorization = context.headers.authorization;
  const release = reserveStream(dashboard);
  return {
    status: 200,
    stream: (response: ServerResponse) => {
      let unsubscribe = (): void => {};
      const stream = openEventStream(response, () => {
        unsubscribe();
        release();
      });
      unsubscribe = dashboard.monitor.subscribe(
        (kind, event, json) => {
          stream.send(kind, json, String(event.second));
        },
        // Asked every round: auth may be enabled, or the caller's roles changed, while the page is open.
        { seesHeat: () => dashboard.source.access(caller).admin, authorization },
      );
    },
  };
};

// ---- keys ----

/**
 * GET /v1/history/<key>?limit=N&rev=R: the key's versions, newest first, from revision R (0: now)
 * back to its creation or the compaction, at most `limit` (historyVersionsMax). Each step is a
 * read of the key at the revision before the version found, so a request costs `limit` reads.
 * A deleted key shows the versions of the generation that ends at or before R.
 */
const historyRoute: Handler = async (context, deps) => {
  const key = keyOf(context);
  const limit = Math.min(queryInteger(context.query, 'limit', 20) || historyVersionsMax, historyVersionsMax);
  const caller = await context.caller();
  const start = await deps.backend.range({ key, revision: queryInteger(context.query, 'rev', 0) }, caller);
  const revision = start.header.revision;
  const versions: KeyValue[] = [];
  let next: KeyValue | undefined = start.kvs[0];
  let compacted = false;
  while (next && versions.length < limit) {
    versions.push(next);
    next = undefined;
    const before = versions.at(-1)!.modRevision - 1;
    if (before <= 0) break;
    try {
      next = (await deps.backend.range({ key, revision: before, serializable: true }, caller)).kvs[0];
    } catch (error) {
      if (!isLichenError(error, ErrorCode.Compacted)) throw error;
      compacted = true;
    }
  }
  return ok({
    revision,
    versions: versions.map((kv) => keyValueJson(kv)),
    // Older versions exist: ask again with rev = the last version's modRevision - 1.
    more: next !== undefined,
    compacted,
  });
};

const SLASH = 0x2f;

/**
 * GET /v1/children/<prefix>?after=<child>&limit=N: the next level of the key tree under
 * `prefix`, keys split on '/': each child is a name ending in '/' (a folder) or a whole key, in
 * key order after the child `after`. At most `limit` children (default 100) from at most
 * keyTreeReadsMax reads, each skipping the folders it has seen; `more` says there are more.
 */
const childrenRoute: Handler = async (context, deps) => {
  const prefix = keyOf(context, true);
  const limit = Math.min(queryInteger(context.query, 'limit', 100) || 100, keyTreeScanKeysMax);
  const afterChild = context.query.get('after');
  const { key: rangeStart, rangeEnd } = prefixRange(prefix);
  const toTheEnd = rangeEnd.length === 1 && rangeEnd[0] === 0;
  const children = new Map<string, { name: string; nameEncoding?: 'base64'; folder: boolean }>();
  let cursor = afterChild ? skipPast(concat(prefix, afterChild)) : rangeStart;
  let revision = 0;
  let more = false;
  const caller = await context.caller();
  for (let reads = 0; reads < keyTreeReadsMax; reads++) {
    if (!toTheEnd && Buffer.compare(cursor, rangeEnd) >= 0) break;
    const result = await deps.backend.range({ key: cursor, rangeEnd, limit: keyTreeScanKeysMax, keysOnly: true, revision, serializable: revision > 0 }, caller);
    revision = result.header.revision;
    let lastChild: Uint8Array | undefined;
    for (const kv of result.kvs) {
      const rest = kv.key.subarray(prefix.length);
      const slash = rest.indexOf(SLASH);
      const nameBytes = slash < 0 ? rest : rest.subarray(0, slash + 1);
      const id = Buffer.from(nameBytes).toString('latin1');
      if (!children.has(id)) {
        if (children.size >= limit) return ok({ revision, children: [...children.values()], more: true });
        children.set(id, { ...(bytesField(nameBytes, 'name', 'nameEncoding') as { name: string }), folder: slash >= 0 });
      }
      lastChild = concat(prefix, nameBytes);
    }
    more = result.more;
    if (!more || !lastChild) break;
    // Jump past the last child's keys (a folder's whole subtree) rather than reading them all.
    cursor = skipPast(lastChild);
  }
  return ok({ revision, children: [...children.values()], more });
};

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The first key after `child` and, when it is a folder (ends in '/'), after all its keys. */
function skipPast(child: Uint8Array): Uint8Array {
  return child.at(-1) === SLASH ? prefixRange(child).rangeEnd : after(child);
}

/**
 * GET /v1/keys/<prefix>?after=<key>&limit=N: a page of keys (no values) under `prefix`, in key
 * order, starting after `after`; `count` is every key under the prefix.
 */
const keysRoute: Handler = async (context, deps) => {
  const prefix = keyOf(context, true);
  const limit = Math.min(queryInteger(context.query, 'limit', 100) || 100, deps.rangeKeysMax);
  const { key, rangeEnd } = prefixRange(prefix);
  const afterKey = context.query.get('after');
  const caller = await context.caller();
  const result = await deps.backend.range({ key: afterKey ? after(afterKey) : key, rangeEnd, limit, keysOnly: true }, caller);
  const count = afterKey ? (await deps.backend.range({ key, rangeEnd, countOnly: true, revision: result.header.revision, serializable: true }, caller)).count : result.count;
  return ok({ revision: result.header.revision, kvs: result.kvs.map((kv) => keyValueJson(kv, { keysOnly: true })), count, more: result.more });
};

/**
 * GET /v1/watch/<key>[?prefix=true][&rev=R]: the key's (or prefix's) changes as server-sent
 * "events" events (a JSON array of {type, kv, prevKv}), each with the revision as its id, so a
 * reconnecting EventSource resumes after the last revision it saw (Last-Event-ID).
 */
const watchRoute: Handler = async (context, deps) => {
  const dashboard = dashboardOf(deps);
  const key = keyOf(context, queryBoolean(context.query, 'prefix'));
  const range = queryBoolean(context.query, 'prefix') ? prefixRange(key) : { key };
  const lastEventId = context.headers['last-event-id'];
  const resumeFrom = typeof lastEventId === 'string' && lastEventId !== '' ? parseNonNegativeInteger(lastEventId, 'Last-Event-ID') + 1 : 0;
  const startRevision = resumeFrom || queryInteger(context.query, 'rev', 0);
  const caller = await context.caller();
  // The watch checks read permission too, but inside the open stream; one key read first checks
  // it the same way and refuses with a status (401, 403) the page can show.
  await deps.backend.range({ ...range, limit: 1, keysOnly: true, serializable: true }, caller);
  const release = reserveStream(dashboard);
  return {
    status: 200,
    stream: (response: ServerResponse) => {
      let cancel = (): void => {};
      const stream = openEventStream(response, () => {
        cancel();
        release();
      });
      // "created" first: a watch from an old revision sends its catch-up events at once.
      stream.send('created', JSON.stringify({ revision: deps.backend.header().revision }));
      const handle = deps.backend.watch(
        { ...range, startRevision, prevKv: true },
        {
          // A page that reads slowly is sent the events later (the backend keeps them), not cut off.
          onEvents: (events: Event[], revision: number) =>
            stream.closed || (!stream.behind && stream.send('events', JSON.stringify(events.map(eventJson)), String(revision))),
          onProgress: () => {},
          onCompacted: (compactRevision: number) => {
            stream.send('compacted', JSON.stringify({ compactRevision }));
            stream.close();
          },
          onCanceled: (reason: string) => {
            stream.send('canceled', JSON.stringify({ reason }));
            stream.close();
          },
        },
        caller,
      );
      if (stream.closed) handle.cancel();
      else cancel = () => handle.cancel();
    },
  };
};

function eventJson(event: Event): unknown {
  return {
    type: event.type === EventType.PUT ? 'PUT' : 'DELETE',
    kv: keyValueJson(event.kv),
    ...(event.prevKv ? { prevKv: keyValueJson(event.prevKv) } : {}),
  };
}

// ---- leases ----

/**
 * GET /v1/leases?after=<id>&limit=N: lease ids in order with their remaining and granted TTL
 * (a page of at most leasesDescribedMax); `count` is every lease.
 */
const leasesRoute: Handler = async (context, deps) => {
  const limit = Math.min(queryInteger(context.query, 'limit', 100) || 100, leasesDescribedMax);
  const afterText = context.query.get('after');
  const afterId = afterText ? parseLeaseId(Buffer.from(afterText).toString('utf8'), 'query parameter "after"') : -1;
  const { ids, header } = await deps.backend.leaseLeases();
  const sorted = [...ids].sort((a, b) => a - b).filter((id) => id > afterId);
  const page = sorted.slice(0, limit);
  const leases = await Promise.all(
    page.map(async (id) => {
      const lease = await deps.backend.leaseTimeToLive(id, true);
      return { id: formatId(id), ttl: lease.TTL, grantedTTL: lease.grantedTTL, keys: lease.keys.length };
    }),
  );
  return ok({ revision: header.revision, count: ids.length, leases, more: sorted.length > page.length });
};

/** GET /v1/leases/<id>: the lease's TTLs and its keys; 404 when it does not exist. */
const leaseRoute: Handler = async (context, deps) => {
  const id = leaseIdOf(context);
  const lease = await deps.backend.leaseTimeToLive(id, true);
  if (lease.TTL === -1) throw new LichenError(ErrorCode.LeaseNotFound, 'etcdserver: requested lease not found');
  // etcd 3.4 lists a lease's keys to anyone; the page shows only those the caller may read.
  const access = dashboardOf(deps).source.access(await context.caller());
  const keys = lease.keys.filter((k) => access.mayRead(k));
  return ok({
    revision: lease.header.revision,
    id: formatId(id),
    ttl: lease.TTL,
    grantedTTL: lease.grantedTTL,
    keys: keys.map((k) => bytesField(k, 'key', 'keyEncoding')),
    hiddenKeys: lease.keys.length - keys.length,
  });
};

/** POST /v1/leases {"ttl"}: grants a lease of `ttl` seconds. */
const leaseGrantRoute: Handler = async (context, deps) => {
  const json = parseJsonObject(await context.body());
  const ttl = jsonInteger(json, 'ttl');
  if (ttl === undefined) throw invalidArgument('JSON field "ttl" is required');
  const result = await deps.backend.leaseGrant({ TTL: ttl, ID: 0 }, await context.caller());
  return ok({ revision: result.header.revision, id: formatId(result.ID), ttl: result.TTL });
};

/** DELETE /v1/leases/<id>: revokes the lease and deletes its keys. */
const leaseRevokeRoute: Handler = async (context, deps) => {
  const result = await deps.backend.leaseRevoke(leaseIdOf(context), await context.caller());
  return ok({ revision: result.header.revision });
};

// ---- operations ----

async function jsonBody(context: RouteContext): Promise<Record<string, unknown>> {
  return parseJsonObject(await context.body());
}

function requiredInteger(json: Record<string, unknown>, name: string): number {
  const value = jsonInteger(json, name);
  if (value === undefined) throw invalidArgument(`JSON field "${name}" is required`);
  return value;
}

/** POST /v1/leader {"id"}: hands leadership to the member (etcd's MoveLeader); answers once it leads. */
const moveLeaderRoute: Handler = async (context, deps) => {
  const result = await deps.backend.moveLeader(jsonId(await jsonBody(context), 'id'));
  return ok({ header: headerJson(result.header), leader: formatId(deps.backend.leaderId()) });
};

/** POST /v1/members {"peerURLs", "isLearner"?}: adds a member (start it with --join afterwards). */
const memberAddRoute: Handler = async (context, deps) => {
  const json = await jsonBody(context);
  const urls = json['peerURLs'];
  if (!Array.isArray(urls) || urls.length === 0 || !urls.every((u) => typeof u === 'string')) {
    throw invalidArgument('JSON field "peerURLs" must be a non-empty array of strings');
  }
  if (json['isLearner'] !== undefined && typeof json['isLearner'] !== 'boolean') throw invalidArgument('JSON field "isLearner" must be true or false');
  const result = await deps.backend.memberAdd(urls as string[], json['isLearner'] === true, await context.caller());
  return ok({ header: headerJson(result.header), member: membersJson([result.member])[0], members: membersJson(result.members) });
};

/** DELETE /v1/members/<id>: removes the member. */
const memberRemoveRoute: Handler = async (context, deps) => {
  const result = await deps.backend.memberRemove(idOf(context, 'the member id'), await context.caller());
  return ok({ header: headerJson(result.header), members: membersJson(result.members) });
};

/** POST /v1/members/<id>?promote: promotes a learner that has caught up to a voting member. */
const memberPromoteRoute: Handler = async (context, deps) => {
  if (!queryBoolean(context.query, 'promote')) throw invalidArgument('POST /v1/members/<id> needs ?promote (the only change it makes)');
  const result = await deps.backend.memberPromote(idOf(context, 'the member id'), await context.caller());
  return ok({ header: headerJson(result.header), members: membersJson(result.members) });
};

/** POST /v1/compact {"revision", "physical"?}: compacts the history before the revision. */
const compactRoute: Handler = async (context, deps) => {
  const json = await jsonBody(context);
  if (json['physical'] !== undefined && typeof json['physical'] !== 'boolean') throw invalidArgument('JSON field "physical" must be true or false');
  const result = await deps.backend.compact({ revision: requiredInteger(json, 'revision'), physical: json['physical'] === true }, await context.caller());
  return ok({ header: headerJson(result.header) });
};

/**
 * GET /v1/snapshot: the member's backend as `etcdctl snapshot save` writes it (etcd 3.4's bbolt
 * file and its SHA-256), so `etcdctl snapshot restore` and `lichen snapshot restore` take it.
 */
const snapshotRoute: Handler = async (context, deps) => {
  const snapshot = await deps.backend.snapshot(await context.caller());
  const paddedBytes = Math.ceil(snapshot.sizeBytes / HASHED_LENGTH_UNIT) * HASHED_LENGTH_UNIT;
  return {
    status: 200,
    contentType: 'application/octet-stream',
    headers: {
      'Content-Disposition': `attachment; filename="lichen-snapshot-${snapshot.header.revision}.db"`,
      'Content-Length': String(paddedBytes + SHA256_BYTES),
    },
    body: withHashTrailer(snapshot, paddedBytes),
  };
};

async function* withHashTrailer(snapshot: SnapshotStream, paddedBytes: number): AsyncIterable<Uint8Array> {
  const hash = createHash('sha256');
  let sent = 0;
  for await (const chunk of snapshot.chunks) {
    hash.update(chunk);
    sent += chunk.length;
    yield chunk;
  }
  if (sent !== snapshot.sizeBytes) throw new LichenError(ErrorCode.Internal, `snapshot has ${sent} bytes, announced ${snapshot.sizeBytes}`);
  const padding = new Uint8Array(paddedBytes - sent);
  hash.update(padding);
  yield padding;
  yield hash.digest();
}

// ---- the page ----

async function assetReply(context: RouteContext, deps: RouteDeps, name: string): Promise<Reply> {
  const asset = await dashboardOf(deps).assets.get(name);
  const headers: Record<string, string> = { ETag: asset.etag, 'Cache-Control': 'no-cache', Vary: 'Accept-Encoding' };
  if (context.headers['if-none-match'] === asset.etag) return { status: 304, headers, body: new Uint8Array() };
  const gzip = /\bgzip\b/.test(String(context.headers['accept-encoding'] ?? ''));
  if (gzip) headers['Content-Encoding'] = 'gzip';
  return { status: 200, contentType: asset.contentType, headers, body: gzip ? asset.gzipped : asset.body };
}

const pageRoute: Handler = (context, deps) => assetReply(context, deps, 'index.html');
const assetRoute: Handler = (context, deps) => assetReply(context, deps, Buffer.from(keyOf(context)).toString('utf8'));

export const DASHBOARD_ROUTES: readonly PathRoute[] = [
  { path: '/', keyed: false, template: '/', handlers: { GET: pageRoute } },
  { path: '/assets/', keyed: true, template: '/assets/:name', handlers: { GET: assetRoute } },
  { path: '/v1/events', keyed: false, template: '/v1/events', handlers: { GET: eventsRoute } },
  { path: '/v1/traffic', keyed: false, template: '/v1/traffic', handlers: { GET: trafficRoute } },
  { path: '/v1/history/', keyed: true, template: '/v1/history/:key', handlers: { GET: historyRoute } },
  { path: '/v1/children/', keyed: true, template: '/v1/children/:key', handlers: { GET: childrenRoute } },
  { path: '/v1/keys/', keyed: true, template: '/v1/keys/:key', handlers: { GET: keysRoute } },
  { path: '/v1/watch/', keyed: true, template: '/v1/watch/:key', handlers: { GET: watchRoute } },
  { path: '/v1/leases', keyed: false, template: '/v1/leases', handlers: { GET: leasesRoute, POST: leaseGrantRoute } },
  { path: '/v1/leases/', keyed: true, template: '/v1/leases/:id', handlers: { GET: leaseRoute, DELETE: leaseRevokeRoute } },
  { path: '/v1/members', keyed: false, template: '/v1/members', handlers: { POST: memberAddRoute } },
  { path: '/v1/members/', keyed: true, template: '/v1/members/:id', handlers: { DELETE: memberRemoveRoute, POST: memberPromoteRoute } },
  { path: '/v1/leader', keyed: false, template: '/v1/leader', handlers: { POST: moveLeaderRoute } },
  { path: '/v1/compact', keyed: false, template: '/v1/compact', handlers: { POST: compactRoute } },
  { path: '/v1/snapshot', keyed: false, template: '/v1/snapshot', handlers: { GET: snapshotRoute } },
];
