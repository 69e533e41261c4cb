// etcd's server-side locks and elections (the v3lock and v3election services): the recipes of
// etcd's client/v3/concurrency package, run here on the member's own backend as the caller, so
// every step is an ordinary KV request with the caller's permissions, exactly as etcd runs them
// through its in-process client.
//
// A lock or an election named N is the keys under "N/": each contender puts "N/<lease id in hex>"
// attached to its lease, and the contender whose key has the lowest create revision holds it.
// A waiting contender watches the key just ahead of it until that key is deleted (unlock,
// resignation, or its lease ending), so waking is one watch event, not a poll.
import { ErrorCode, LichenError } from '../../errors.js';
import { prefixRangeEnd as prefixEnd } from '../../mvcc/key-range.js';
import { CompareResult, CompareTarget, EventType, SortOrder, SortTarget } from '../../mvcc/types.js';
import type { KeyValue, RangeRequest, RangeResponse, ResponseHeader, TxnResponse } from '../../mvcc/types.js';
import type { Caller, EtcdBackend, WithHeader } from '../backend.js';
import { etcdError } from './errors.js';

/** The TTL, in seconds, of the lease a lock or campaign without one gets (concurrency's session default). */
export const SESSION_TTL_SECONDS = 60;

/** Who asks, on which member, and until when: the call's end aborts `signal`. */
export interface RecipeContext {
  backend: EtcdBackend;
  caller: Caller | undefined;
  signal: AbortSignal;
}

/** A held leadership: the election's name, the leader's key, its create revision and lease. */
export interface LeaderKey {
  name: Uint8Array;
  key: Uint8Array;
  rev: number;
  lease: number;
}

// ---- Lock ------------------------------------------------------------------------------------

/** Waits until the caller holds lock `name`, and answers the key that stands for holding it. */
export async function lock(ctx: RecipeContext, name: Uint8Array, lease: number): Promise<{ header: ResponseHeader; key: Uint8Array }> {
  const leaseId = await sessionLease(ctx, lease);
  const prefix = withSlash(name);
  const key = contenderKey(prefix, leaseId);
  const { backend, caller } = ctx;
  // Join the queue (or find our key from an earlier Lock with the same lease) and read the holder.
  const joined = await backend.txn(
    {
      compare: [{ result: CompareResult.EQUAL, target: CompareTarget.CREATE, key, createRevision: 0 }],
      success: [{ requestPut: { key, value: new Uint8Array(), lease: leaseId } }, { requestRange: firstCreated(prefix) }],
      failure: [{ requestRange: { key } }, { requestRange: firstCreated(prefix) }],
    },
    caller,
  );
  const myRevision = joined.succeeded ? joined.header.revision : rangeOf(joined, 0).kvs[0]!.createRevision;
  const holder = rangeOf(joined, 1).kvs[0];
  if (holder === undefined || holder.createRevision === myRevision) return { header: joined.header, key };
  try {
    await waitDeletes(ctx, prefix, myRevision - 1);
  } catch (error) {
    // Leave the queue, or the next contender would wait for a holder that never comes.
    await backend.deleteRange({ key }, caller).catch(() => undefined);
    throw error;
  }
  // Our lease may have ended while we waited: then our key went with it and we hold nothing.
  const mine = await backend.range({ key }, caller);
  if (mine.kvs.length === 0) throw etcdError('lockSessionExpired', ErrorCode.FailedPrecondition);
  return { header: mine.header, key };
}

export async function unlock(ctx: Omit<RecipeContext, 'signal'>, key: Uint8Array): Promise<ResponseHeader> {
  return (await ctx.backend.deleteRange({ key }, ctx.caller)).header;
}

// ---- Election --------------------------------------------------------------------------------

/** Waits until the caller leads election `name`, proclaiming `value`. */
export async function campaign(ctx: RecipeContext, name: Uint8Array, lease: number, value: Uint8Array): Promise<{ header: ResponseHeader; leader: LeaderKey }> {
  const leaseId = await sessionLease(ctx, lease);
  const prefix = withSlash(name);
  const key = contenderKey(prefix, leaseId);
  const joined = await ctx.backend.txn(
    {
      compare: [{ result: CompareResult.EQUAL, target: CompareTarget.CREATE, key, createRevision: 0 }],
      success: [{ requestPut: { key, value, lease: leaseId } }],
      failure: [{ requestRange: { key } }],
    },
    ctx.caller,
  );
  const leader: LeaderKey = { name, key, rev: joined.header.revision, lease: leaseId };
  if (!joined.succeeded) {
    // A campaign with the same lease again: keep the place, update the value if it changed.
    const existing = rangeOf(joined, 0).kvs[0]!;
    leader.rev = existing.createRevision;
    if (!sameBytes(existing.value, value)) {
      try {
        await proclaim(ctx, leader, value);
      } catch (error) {
        await resign(ctx, leader).catch(() => undefined);
        throw error;
      }
    }
  }
  try {
    await waitDeletes(ctx, prefix, leader.rev - 1);
  } catch (error) {
    // Only a campaign its caller gave up on withdraws; one that lost its watch keeps its key.
    if (ctx.signal.aborted) await resign(ctx, leader).catch(() => undefined);
    throw error;
  }
  return { header: joined.header, leader };
}

/** Sets the leader's value, if `leader` still leads (its key has the same create revision). */
export async function proclaim(ctx: Omit<RecipeContext, 'signal'>, leader: LeaderKey, value: Uint8Array): Promise<ResponseHeader> {
  const updated = await ctx.backend.txn(
    {
      compare: [stillLeads(leader)],
      success: [{ requestPut: { key: leader.key, value, lease: leader.lease } }],
      failure: [],
    },
    ctx.caller,
  );
  if (!updated.succeeded) throw etcdError('electionNotLeader', ErrorCode.FailedPrecondition);
  return updated.header;
}

/** Gives up leadership (deletes the leader's key) if `leader` still leads; otherwise changes nothing. */
export async function resign(ctx: Omit<RecipeContext, 'signal'>, leader: LeaderKey): Promise<ResponseHeader> {
  const resigned = await ctx.backend.txn(
    { compare: [stillLeads(leader)], success: [{ requestDeleteRange: { key: leader.key } }], failure: [] },
    ctx.caller,
  );
  return resigned.header;
}

/** The current leader's key and value. */
export async function leader(ctx: Omit<RecipeContext, 'signal'>, name: Uint8Array): Promise<{ header: ResponseHeader; kv: KeyValue }> {
  const found = await ctx.backend.range(firstCreated(withSlash(name)), ctx.caller);
  const kv = found.kvs[0];
  if (kv === undefined) throw etcdError('electionNoLeader', ErrorCode.NotFound);
  return { header: found.header, kv };
}

/**
 * Tells `emit` the election's leader and every value it proclaims, then the next leader's, and so
 * on, until the call ends (resolves) or a read or watch fails (resolves too: etcd ends the stream
 * without an error then). While there is no leader it waits for the first contender's key. The
 * next change is read only after `emit` settles, so a slow reader holds back nothing but itself.
 */
export async function observe(
  ctx: RecipeContext,
  name: Uint8Array,
  emit: (header: ResponseHeader, kv: KeyValue) => Promise<void> | void,
): Promise<void> {
  const prefix = withSlash(name);
  const { backend, caller, signal } = ctx;
  while (!signal.aborted) {
    let found: WithHeader<RangeResponse>;
    try {
      found = await backend.range(firstCreated(prefix), caller);
    } catch {
      return;
    }
    let current = found.kvs[0];
    let header = found.header;
    if (current === undefined) {
      const put = await nextEvent(ctx, { key: prefix, rangeEnd: prefixEnd(prefix), startRevision: found.header.revision }, (e) => e.type === EventType.PUT);
      if (put === undefined) return;
      current = put.kv;
      header = backend.header(current.modRevision);
    }
    await emit(header, current);
    // Every value the leader proclaims, until its key goes.
    let from = header.revision + 1;
    for (;;) {
      const change = await nextEvent(ctx, { key: current.key, startRevision: from }, () => true);
      if (change === undefined) return;
      if (change.type === EventType.DELETE) break;
      await emit(backend.header(change.revision), change.kv);
      from = change.kv.modRevision + 1;
    }
  }
}

// ---- shared steps ----------------------------------------------------------------------------

/** The caller's lease, or a new one of SESSION_TTL_SECONDS when it gave none (as etcd's session does). */
async function sessionLease(ctx: RecipeContext, lease: number): Promise<number> {
  if (lease !== 0) return lease;
  return (await ctx.backend.leaseGrant({ TTL: SESSION_TTL_SECONDS, ID: 0 }, ctx.caller)).ID;
}

/** Waits until no key under `prefix` created at or before `maxCreateRevision` remains. */
async function waitDeletes(ctx: RecipeContext, prefix: Uint8Array, maxCreateRevision: number): Promise<void> {
  for (;;) {
    const ahead = await ctx.backend.range({ ...lastCreated(prefix), maxCreateRevision }, ctx.caller);
    const last = ahead.kvs[0];
    if (last === undefined) return;
    const deleted = await nextEvent(ctx, { key: last.key, startRevision: ahead.header.revision }, (e) => e.type === EventType.DELETE);
    if (deleted === undefined) throw ctx.signal.aborted ? callEnded() : lostWatch();
  }
}

interface MatchedEvent {
  type: EventType;
  kv: KeyValue;
  /** The store revision the event's batch brought the watcher to. */
  revision: number;
}

/**
 * The first event from `startRevision` on that `wanted` accepts; undefined when the call ends or
 * the watch does (compaction, shutdown) first.
 */
function nextEvent(
  ctx: RecipeContext,
  range: { key: Uint8Array; rangeEnd?: Uint8Array; startRevision: number },
  wanted: (event: { type: EventType }) => boolean,
): Promise<MatchedEvent | undefined> {
  const { signal } = ctx;
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (event: MatchedEvent | undefined): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      handle.cancel();
      resolve(event);
    };
    const onAbort = (): void => finish(undefined);
    const handle = ctx.backend.watch(
      range,
      {
        onEvents: (events, revision) => {
          const event = events.find(wanted);
          if (event) finish({ type: event.type, kv: event.kv, revision });
          return true;
        },
        onCompacted: () => finish(undefined),
        onProgress: () => undefined,
        onCanceled: () => finish(undefined),
      },
      ctx.caller,
    );
    signal.addEventListener('abort', onAbort);
  });
}

function rangeOf(response: TxnResponse, index: number): RangeResponse {
  const op = response.responses[index];
  if (op === undefined || !('responseRange' in op)) throw new LichenError(ErrorCode.Internal, `txn answered no range at ${index}`);
  return op.responseRange;
}

function firstCreated(prefix: Uint8Array): RangeRequest {
  return { key: prefix, rangeEnd: prefixEnd(prefix), sortTarget: SortTarget.CREATE, sortOrder: SortOrder.ASCEND, limit: 1 };
}

function lastCreated(prefix: Uint8Array): RangeRequest {
  return { key: prefix, rangeEnd: prefixEnd(prefix), sortTarget: SortTarget.CREATE, sortOrder: SortOrder.DESCEND, limit: 1 };
}

function stillLeads(leader: LeaderKey) {
  return { result: CompareResult.EQUAL, target: CompareTarget.CREATE, key: leader.key, createRevision: leader.rev };
}

function withSlash(name: Uint8Array): Uint8Array {
  return Buffer.concat([name, SLASH]);
}

/** "<prefix><lease id in lower-case hex>", as Go's fmt "%x" writes an int64. */
function contenderKey(prefix: Uint8Array, lease: number): Uint8Array {
  const hex = lease < 0 ? `-${(-lease).toString(16)}` : lease.toString(16);
  return Buffer.concat([prefix, Buffer.from(hex)]);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function callEnded(): LichenError {
  return new LichenError(ErrorCode.Unavailable, 'the call ended while waiting');
}

function lostWatch(): LichenError {
  return etcdError('lostWatcher', ErrorCode.Unavailable);
}

const SLASH = Buffer.from('/');
