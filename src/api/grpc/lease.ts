// The Lease service: grant, revoke, the keep-alive stream, time-to-live, and listing.
import { ErrorCode, isLichenError } from '../../errors.js';
import { toServiceError } from './errors.js';
import type { ServerCall } from './http2-server.js';
import { checkRequestSize, checkRequireLeader, unary, type HandlerContext, type Implementation } from './handler.js';
import { leaseTtlSecondsMax } from '../../limits.js';
import { encodeHeader, toSafeInt, type WireLong } from './wire.js';
import { etcdError } from './errors.js';

/** Keep-alive requests of one stream waiting for their answer; beyond it the stream fails. */
export const KEEPALIVE_PENDING_MAX = 1024;

export function leaseService(ctx: HandlerContext): Implementation {
  const { backend } = ctx;
  return {
    LeaseGrant: unary<{ TTL: WireLong; ID: WireLong }>(ctx, async (w, caller) => {
      const TTL = toSafeInt(w.TTL, 'TTL');
      const ID = toSafeInt(w.ID, 'ID');
      if (TTL > leaseTtlSecondsMax) throw etcdError('leaseTTLTooLarge', ErrorCode.InvalidArgument);
      const response = await backend.leaseGrant({ TTL, ID }, caller);
      return { header: encodeHeader(response.header), ID: response.ID, TTL: response.TTL, error: '' };
    }),
    LeaseRevoke: unary<{ ID: WireLong }>(ctx, async (w, caller) => {
      const response = await backend.leaseRevoke(toSafeInt(w.ID, 'ID'), caller);
      return { header: encodeHeader(response.header) };
    }),
    LeaseTimeToLive: unary<{ ID: WireLong; keys: boolean }>(ctx, async (w) => {
      const id = toSafeInt(w.ID, 'ID');
      try {
        const r = await backend.leaseTimeToLive(id, w.keys ?? false);
        return { header: encodeHeader(r.header), ID: r.ID, TTL: r.TTL, grantedTTL: r.grantedTTL, keys: r.keys };
      } catch (error) {
        // etcd answers a missing lease with TTL -1 rather than an error.
        if (!isLichenError(error, ErrorCode.LeaseNotFound)) throw error;
        return { header: encodeHeader(backend.header()), ID: id, TTL: -1, grantedTTL: 0, keys: [] };
      }
    }, { identify: false }),
    LeaseLeases: unary<object>(ctx, async () => {
      const response = await backend.leaseLeases();
      return { header: encodeHeader(response.header), leases: response.ids.map((ID) => ({ ID })) };
    }, { identify: false }),
    LeaseKeepAlive: (call: ServerCall<{ ID: WireLong }, object>) => keepAliveStream(ctx, call),
  };
}

/**
 * Answers keep-alive requests in the order they arrive. A lease that does not exist gets TTL 0
 * (etcd's answer, which clients read as "expired"), not a stream error. Each renewal starts when
 * its request arrives, so a follower's renewals forwarded to the leader overlap instead of
 * waiting one round trip each (a client keeping many leases alive on one stream, as clientv3
 * does, would otherwise get one renewal per round trip); the answers still go out in order.
 */
function keepAliveStream(ctx: HandlerContext, call: ServerCall<{ ID: WireLong }, object>): void {
  let chain: Promise<void> = Promise.resolve();
  let pending = 0;
  let failed = false;

  const fail = (error: unknown): void => {
    if (failed) return;
    failed = true;
    call.destroy(toServiceError(error));
  };

  const renew = async (id: number): Promise<{ reply: object } | { error: unknown }> => {
    try {
      const r = await ctx.backend.leaseKeepAlive(id);
      return { reply: { header: encodeHeader(r.header), ID: id, TTL: r.TTL } };
    } catch (error) {
      if (!isLichenError(error, ErrorCode.LeaseNotFound)) return { error };
      return { reply: { header: encodeHeader(ctx.backend.header()), ID: id, TTL: 0 } };
    }
  };

  try {
    checkRequireLeader(ctx, call.metadata);
  } catch (error) {
    return fail(error);
  }
  call.on('data', (request: { ID: WireLong }) => {
    if (failed) return;
    let id: number;
    try {
      checkRequestSize(ctx, request);
      id = toSafeInt(request.ID, 'ID');
    } catch (error) {
      return fail(error);
    }
    if (++pending > KEEPALIVE_PENDING_MAX) return fail(etcdError('tooManyRequests', ErrorCode.Overloaded));
    const renewal = renew(id);
    chain = chain
      .then(async () => {
        const answer = await renewal;
        if (failed) return;
        if ('error' in answer) fail(answer.error);
        else call.write(answer.reply);
      })
      .finally(() => void pending--);
  });
  call.on('end', () => {
    void chain.then(() => {
      if (!failed) call.end();
    });
  });
  call.on('error', () => {
    failed = true;
  });
}
