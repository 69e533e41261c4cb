// etcd's Election service (v3electionpb.Election): Campaign waits until the caller leads the named
// election; Proclaim changes the leader's value; Leader reads it; Observe streams every leader and
// value in order; Resign gives leadership up. The recipes are in concurrency.ts.
import { once } from 'node:events';
import { ErrorCode } from '../../errors.js';
import { etcdError, toServiceError } from './errors.js';
import type { ServerCall } from './http2-server.js';
import { callerOf, checkRequestSize, checkRequireLeader, signalOf, unary, type HandlerContext, type Implementation } from './handler.js';
import { campaign, leader, observe, proclaim, resign, type LeaderKey } from './concurrency.js';
import { encodeHeader, encodeKeyValue, toSafeInt, type WireBytes, type WireLong } from './wire.js';

interface WireLeaderKey {
  name: WireBytes;
  key: WireBytes;
  rev: WireLong;
  lease: WireLong;
}

export function electionService(ctx: HandlerContext): Implementation {
  const { backend } = ctx;
  return {
    Campaign: unary<{ name: WireBytes; lease: WireLong; value: WireBytes }>(ctx, async (w, caller, call) => {
      const lease = toSafeInt(w.lease, 'lease');
      const won = await campaign({ backend, caller, signal: signalOf(call) }, w.name, lease, w.value);
      const { name, key, rev } = won.leader;
      return { header: encodeHeader(won.header), leader: { name, key, rev, lease: won.leader.lease } };
    }, { unknownCode: true }),
    Proclaim: unary<{ leader: WireLeaderKey | null; value: WireBytes }>(ctx, async (w, caller) => {
      return { header: encodeHeader(await proclaim({ backend, caller }, leaderKeyOf(w.leader), w.value)) };
    }, { unknownCode: true }),
    Resign: unary<{ leader: WireLeaderKey | null }>(ctx, async (w, caller) => {
      return { header: encodeHeader(await resign({ backend, caller }, leaderKeyOf(w.leader))) };
    }, { unknownCode: true }),
    Leader: unary<{ name: WireBytes }>(ctx, async (w, caller) => {
      const found = await leader({ backend, caller }, w.name);
      return { header: encodeHeader(found.header), kv: encodeKeyValue(found.kv) };
    }, { unknownCode: true }),
    Observe: (call: ServerCall<{ name: WireBytes }, object>) => void observeStream(ctx, call),
  };
}

/**
 * Streams LeaderResponses until the client goes; a failed read or watch ends the stream with OK,
 * as in etcd. An invalid token ends it with the error (code Unknown), where etcd ends it with OK
 * too, which would tell the client nothing.
 */
async function observeStream(ctx: HandlerContext, call: ServerCall<{ name: WireBytes }, object>): Promise<void> {
  try {
    checkRequestSize(ctx, call.request);
    checkRequireLeader(ctx, call.metadata);
  } catch (error) {
    call.destroy(toServiceError(error));
    return;
  }
  try {
    const caller = await callerOf(ctx, call);
    const signal = signalOf(call);
    await observe({ backend: ctx.backend, caller, signal }, call.request.name, async (header, kv) => {
      // A reader that keeps up costs nothing; one that does not is waited for ('drain' comes on cancel too).
      if (!call.write({ header: encodeHeader(header), kv: encodeKeyValue(kv) })) await once(call, 'drain');
    });
    call.end();
  } catch (error) {
    call.destroy({ code: UNKNOWN, details: toServiceError(error).details });
  }
}

const UNKNOWN = 2;

/** The request's leader key; etcd refuses a request without one. */
function leaderKeyOf(wire: WireLeaderKey | null | undefined): LeaderKey {
  if (!wire) throw etcdError('missingLeaderKey', ErrorCode.InvalidArgument);
  return { name: wire.name, key: wire.key, rev: toSafeInt(wire.rev, 'rev'), lease: toSafeInt(wire.lease, 'lease') };
}
