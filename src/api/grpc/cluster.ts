// The Cluster service: member list, add, remove, update, promote.
import { unary, type HandlerContext, type Implementation } from './handler.js';
import { encodeHeader, encodeMember, toSafeUint, type WireLong } from './wire.js';
import { ErrorCode } from '../../errors.js';
import { etcdError } from './errors.js';

/** A member has a handful of URLs; the bound keeps a request from carrying thousands. */
export const PEER_URLS_MAX = 16;

export function clusterService(ctx: HandlerContext): Implementation {
  const { backend } = ctx;
  return {
    MemberList: unary<{ linearizable: boolean }>(ctx, async (w) => {
      const r = await backend.memberList(w.linearizable ?? false);
      return { header: encodeHeader(r.header), members: r.members.map(encodeMember) };
    }, { identify: false }),
    MemberAdd: unary<{ peerURLs: string[]; isLearner: boolean }>(ctx, async (w, caller) => {
      const r = await backend.memberAdd(checkPeerURLs(w.peerURLs), w.isLearner ?? false, caller);
      return { header: encodeHeader(r.header), member: encodeMember(r.member), members: r.members.map(encodeMember) };
    }),
    MemberRemove: unary<{ ID: WireLong }>(ctx, async (w, caller) => {
      const r = await backend.memberRemove(memberId(w.ID), caller);
      return { header: encodeHeader(r.header), members: r.members.map(encodeMember) };
    }),
    MemberUpdate: unary<{ ID: WireLong; peerURLs: string[] }>(ctx, async (w, caller) => {
      const r = await backend.memberUpdate(memberId(w.ID), checkPeerURLs(w.peerURLs), caller);
      return { header: encodeHeader(r.header), members: r.members.map(encodeMember) };
    }),
    MemberPromote: unary<{ ID: WireLong }>(ctx, async (w, caller) => {
      const r = await backend.memberPromote(memberId(w.ID), caller);
      return { header: encodeHeader(r.header), members: r.members.map(encodeMember) };
    }),
  };
}

/** Member ids are below 2^53 in Lichen, so a larger id names no member. */
function memberId(value: WireLong): number {
  try {
    return toSafeUint(value, 'ID');
  } catch {
    throw etcdError('memberNotFound', ErrorCode.MemberNotFound);
  }
}

function checkPeerURLs(urls: string[] | undefined): string[] {
  const list = urls ?? [];
  if (list.length === 0 || list.length > PEER_URLS_MAX) throw etcdError('memberBadURLs');
  for (const url of list) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw etcdError('memberBadURLs');
    }
    // etcd requires scheme://host:port; clients match the exact message, so no detail is added.
    if (!['http:', 'https:'].includes(parsed.protocol) || parsed.port === '') {
      throw etcdError('memberBadURLs');
    }
  }
  return list;
}
