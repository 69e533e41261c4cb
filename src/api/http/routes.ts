// The routes of the HTTP/JSON API and their handlers. Each handler gets parsed input and returns
// a Reply; it reports failures by throwing LichenError, which server.ts maps through the one
// table in errors.ts. Routes are matched on the raw path (not a normalized URL) so that keys like
// "a/../b" reach the store unchanged.
import { ErrorCode, LichenError } from '../../errors.js';
import { formatId } from '../../ids.js';
import type { RangeRequest, ResponseHeader } from '../../mvcc/types.js';
import type { Caller, Member } from '../backend.js';
import { checkHealth } from '../health.js';
import {
  bytesField,
  describeKey,
  jsonLeaseId,
  jsonString,
  jsonValueBytes,
  keyValueJson,
  parseJsonObject,
  percentDecode,
  prefixRange,
  queryBoolean,
  queryInteger,
  queryLeaseId,
  type Query,
} from './codec.js';
import { invalidArgument, MethodNotAllowedError } from './errors.js';
import { DASHBOARD_ROUTES } from './dashboard/routes.js';
import type { Handler, PathRoute, Reply, RouteContext, RouteDeps } from './route.js';
import { AUTH_ROUTES } from './auth-routes.js';

interface Route {
  /** The label of lichen_http_request_seconds: the template, never the raw path. */
  template: string;
  handlers: Readonly<Record<string, Handler>>;
}

export const KV_PATH_PREFIX = '/v1/kv/';

const ok = (json: unknown): Reply => ({ status: 200, json });

// ---- input helpers ----

/** The "key" query parameter as bytes; missing or empty is a 400. */
function requiredQueryKey(query: Query): Uint8Array {
  const key = query.get('key');
  if (key === undefined) throw invalidArgument('missing query parameter "key"');
  if (key.length === 0) throw invalidArgument('query parameter "key" must not be empty');
  return key;
}

function readRequestFields(query: Query): Pick<RangeRequest, 'revision' | 'serializable'> {
  return { revision: queryInteger(query, 'rev', 0), serializable: queryBoolean(query, 'serializable') };
}

function notFound(key: Uint8Array): LichenError {
  return new LichenError(ErrorCode.NotFound, `key ${describeKey(key)} not found`);
}

// ---- KV handlers shared by the simple and the REST routes ----

async function getOne(deps: RouteDeps, key: Uint8Array, query: Query, caller: Caller | undefined): Promise<Reply> {
  const result = await deps.backend.range({ key, ...readRequestFields(query) }, caller);
  const kv = result.kvs[0];
  if (!kv) throw notFound(key);
  return ok({ ...keyValueJson(kv), revision: result.header.revision });
}

async function getPrefix(deps: RouteDeps, prefix: Uint8Array, query: Query, caller: Caller | undefined): Promise<Reply> {
  const requested = queryInteger(query, 'limit', 0);
  // 0 means "no limit" to etcd; here it means "our cap", so one request cannot build an
  // unbounded response, in keys or in bytes. "more" tells the client to continue from the last key.
  const limit = requested === 0 ? deps.rangeKeysMax : Math.min(requested, deps.rangeKeysMax);
  const result = await deps.backend.range({ ...prefixRange(prefix), limit, bytesMax: deps.responseBytesMax, ...readRequestFields(query) }, caller);
  return ok({
    kvs: result.kvs.map((kv) => keyValueJson(kv)),
    count: result.count,
    more: result.more,
    revision: result.header.revision,
  });
}

async function putValue(
  deps: RouteDeps,
  key: Uint8Array,
  value: Uint8Array,
  options: { lease?: number; prevKv?: boolean; caller: Caller | undefined },
): Promise<Reply> {
  const result = await deps.backend.put({ key, value, lease: options.lease ?? 0, prevKv: options.prevKv ?? false }, options.caller);
  return ok({
    ...bytesField(key, 'key', 'keyEncoding'),
    revision: result.header.revision,
    ...(result.prevKv ? { prevKv: keyValueJson(result.prevKv) } : {}),
  });
}

async function deleteKeys(deps: RouteDeps, key: Uint8Array, query: Query, caller: Caller | undefined): Promise<Reply> {
  const prevKv = queryBoolean(query, 'prevKv');
  const range = queryBoolean(query, 'prefix') ? prefixRange(key) : { key };
  const result = await deps.backend.deleteRange({ ...range, prevKv }, caller);
  return ok({
    deleted: result.deleted,
    revision: result.header.revision,
    ...(prevKv ? { prevKvs: result.prevKvs.map((kv) => keyValueJson(kv)) } : {}),
  });
}

// ---- simple routes ----

const getRoute: Handler = async (context, deps) => getOne(deps, requiredQueryKey(context.query), context.query, await context.caller());

/**
 * /set takes its fields from a JSON body {"key", "value", "encoding"?, "lease"?} when the request
 * has a body, otherwise from the query (?key=k&value=v&lease=<id>). Never from both: mixing them
 * would make it unclear which one wins.
 */
const setRoute: Handler = async (context, deps) => {
  const body = context.method === 'GET' ? new Uint8Array() : await context.body();
  if (body.length > 0) {
    const json = parseJsonObject(body);
    const key = jsonString(json, 'key', true)!;
    if (key === '') throw invalidArgument('JSON field "key" must not be empty');
    const value = jsonValueBytes(json, true)!;
    return putValue(deps, new Uint8Array(Buffer.from(key, 'utf8')), value, { lease: jsonLeaseId(json), caller: await context.caller() });
  }
  const key = requiredQueryKey(context.query);
  const value = context.query.get('value');
  if (value === undefined) throw invalidArgument('missing query parameter "value" (or send a JSON body {"key", "value"})');
  return putValue(deps, key, value, { lease: queryLeaseId(context.query), caller: await context.caller() });
};

const deleteRoute: Handler = async (context, deps) => deleteKeys(deps, requiredQueryKey(context.query), context.query, await context.caller());

// ---- REST routes ----

function restKey(context: RouteContext, allowEmpty: boolean): Uint8Array {
  const key = context.key!;
  if (key.length === 0 && !allowEmpty) {
    throw invalidArgument(`the key in ${KV_PATH_PREFIX}<key> must not be empty (GET or DELETE ${KV_PATH_PREFIX}?prefix=true covers all keys)`);
  }
  return key;
}

const restGet: Handler = async (context, deps) => {
  const caller = await context.caller();
  if (queryBoolean(context.query, 'prefix')) return getPrefix(deps, restKey(context, true), context.query, caller);
  return getOne(deps, restKey(context, false), context.query, caller);
};

/**
 * The body is the value's raw bytes, unless Content-Type is application/json: then it is
 * {"value", "encoding"?, "lease"?}. ?lease=<id> and ?prevKv=true work with either.
 */
const restPut: Handler = async (context, deps) => {
  const key = restKey(context, false);
  const body = await context.body();
  const prevKv = queryBoolean(context.query, 'prevKv');
  let lease = queryLeaseId(context.query);
  let value = body;
  if (context.contentType === 'application/json') {
    const json = parseJsonObject(body);
    value = jsonValueBytes(json, true)!;
    lease = jsonLeaseId(json) ?? lease;
  }
  return putValue(deps, key, value, { lease, prevKv, caller: await context.caller() });
};

const restDelete: Handler = async (context, deps) => {
  const prefix = queryBoolean(context.query, 'prefix');
  return deleteKeys(deps, restKey(context, prefix), context.query, await context.caller());
};

// ---- auth routes ----

/** {"name", "password"} → {"token"}: send the token as the Authorization header of later requests. */
const authenticateRoute: Handler = async (context, deps) => {
  const json = parseJsonObject(await context.body());
  const result = await deps.backend.authenticate(jsonString(json, 'name', true)!, jsonString(json, 'password', true)!);
  return ok({ token: result.token, revision: result.header.revision });
};

// ---- cluster routes ----
// Member and cluster ids are shown as the CLI and the logs show them (formatId: 16 hex digits).

function headerJson(header: ResponseHeader): object {
  return { ...header, clusterId: formatId(header.clusterId), memberId: formatId(header.memberId) };
}

function memberJson(member: Partial<Member> & { id: number }): object {
  return { ...member, id: formatId(member.id) };
}

const statusRoute: Handler = async (_context, deps) => {
  const { header, ...status } = await deps.backend.status();
  return ok({ header: headerJson(header), ...status, leader: formatId(status.leader) });
};

const membersRoute: Handler = async (context, deps) => {
  const result = await deps.backend.memberList(queryBoolean(context.query, 'linearizable'));
  return ok({ header: headerJson(result.header), members: result.members.map(memberJson) });
};

const leaderRoute: Handler = async (_context, deps) => {
  const leaderId = deps.backend.leaderId();
  if (leaderId === 0) throw new LichenError(ErrorCode.Unavailable, 'no leader is known');
  const { members, header } = await deps.backend.memberList(false);
  // The member list can lag the leader we heard from (a just-added member); the id is still true.
  const member: Partial<Member> & { id: number } = members.find((m) => m.id === leaderId) ?? { id: leaderId };
  return ok({ header: headerJson(header), leader: memberJson(member) });
};

/**
 * Like etcd's /health: healthy when a leader is known, no alarm is raised, and a linearizable
 * read completes within healthTimeoutMs. Answers {"health": "true"} or 503 {"health": "false",
 * "reason", "error"}.
 */
const healthRoute: Handler = async (_context, deps) => {
  const problem = await checkHealth(deps.backend, deps.healthTimeoutMs);
  if (!problem) return ok({ health: 'true' });
  return { status: 503, json: { health: 'false', reason: problem.reason, error: { code: problem.code, message: problem.reason } } };
};

const metricsRoute: Handler = async (_context, deps) => ({
  status: 200,
  text: await deps.registry.metrics(),
  contentType: deps.registry.contentType,
});

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ['/get', { template: '/get', handlers: { GET: getRoute } }],
  ['/set', { template: '/set', handlers: { GET: setRoute, PUT: setRoute, POST: setRoute } }],
  ['/delete', { template: '/delete', handlers: { DELETE: deleteRoute } }],
  ['/v1/status', { template: '/v1/status', handlers: { GET: statusRoute } }],
  ['/v1/members', { template: '/v1/members', handlers: { GET: membersRoute } }],
  ['/v1/leader', { template: '/v1/leader', handlers: { GET: leaderRoute } }],
  ['/v1/auth/authenticate', { template: '/v1/auth/authenticate', handlers: { POST: authenticateRoute } }],
  ['/health', { template: '/health', handlers: { GET: healthRoute } }],
  ['/metrics', { template: '/metrics', handlers: { GET: metricsRoute } }],
]);

// The dashboard's and the auth routes: exact paths join (or add methods to) the table above;
// keyed ones are matched by their prefix after /v1/kv/.
const PATH_ROUTES = [...DASHBOARD_ROUTES, ...AUTH_ROUTES];
for (const route of PATH_ROUTES.filter((r) => !r.keyed)) {
  const existing = ROUTES.get(route.path);
  (ROUTES as Map<string, Route>).set(route.path, { template: route.template, handlers: { ...existing?.handlers, ...route.handlers } });
}
const KEYED_ROUTES: readonly PathRoute[] = PATH_ROUTES.filter((r) => r.keyed);

const KV_ROUTE: Route = { template: `${KV_PATH_PREFIX}:key`, handlers: { GET: restGet, PUT: restPut, DELETE: restDelete } };

export const UNMATCHED_ROUTE = 'unmatched';

export interface RouteMatch {
  template: string;
  handler: Handler;
  key?: Uint8Array;
}

/** Finds the handler for a raw path (no query) and method; throws NotFound or MethodNotAllowed. */
export function matchRoute(path: string, method: string): RouteMatch {
  let route = ROUTES.get(path);
  let key: Uint8Array | undefined;
  if (!route && path.startsWith(KV_PATH_PREFIX)) {
    route = KV_ROUTE;
    key = percentDecode(path.slice(KV_PATH_PREFIX.length), false);
  }
  const keyed = route ? undefined : KEYED_ROUTES.find((r) => path.startsWith(r.path));
  if (keyed) {
    route = keyed;
    key = percentDecode(path.slice(keyed.path.length), false);
  }
  if (!route) throw new LichenError(ErrorCode.NotFound, `no route for ${method} ${path}`);
  const handler = route.handlers[method];
  if (!handler) throw new MethodNotAllowedError(method, Object.keys(route.handlers));
  return { template: route.template, handler, key };
}

/** The template label for a path, for metrics of requests that failed before matching. */
export function templateOf(path: string): string {
  return (
    ROUTES.get(path)?.template ??
    (path.startsWith(KV_PATH_PREFIX) ? KV_ROUTE.template : KEYED_ROUTES.find((r) => path.startsWith(r.path))?.template ?? UNMATCHED_ROUTE)
  );
}
