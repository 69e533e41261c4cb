// Membership changes: one server at a time (thesis §4.1), not joint consensus (§4.3 / paper §6).
//
// Why single-server changes. Adding or removing one voter changes the majority by at most one
// member, so any majority of the old configuration and any majority of the new one share at least
// one server: two leaders can never be elected for the same term by disjoint quorums, whatever mix
// of old and new configurations the servers use while the change propagates. That makes one change
// a single log entry with no intermediate state, which is far less code (no joint quorum, no
// auto-leave, no second entry) and therefore fewer places to get wrong. The price: a change that
// swaps several members is a sequence of steps, and while a change is in flight a cluster of 2 can
// lose availability if the member being added is down (the same is true of joint consensus for the
// new majority). Lichen's operations (add a member, remove a member, promote a learner) are all
// single-member, so joint consensus buys us nothing.
//
// The safety conditions we enforce, and where:
// - Only one change may be unapplied at a time: the leader refuses a proposal while
//   pendingConfIndex > applied (Raft.proposeConfChange).
// - A change takes effect when the application applies its committed entry (RawNode.applyConfChange),
//   on every node. Taking effect on apply rather than on append is etcd's choice; it is safe together
//   with the rule that a node must apply every committed change before it campaigns.
// - A new leader must commit an entry of its own term before it accepts a change (Ongaro's fix for
//   the bug in single-server changes, raft-dev 2015): becomeLeader sets pendingConfIndex to the index
//   of its no-op, so the first change is refused until that no-op is applied (hence committed).
// - Learners receive the log but never count for elections or commit; adding a member as a learner
//   first and promoting it once caught up avoids the availability gap of adding an empty voter.

import { LichenError, assert } from '../errors.js';
import { ConfChangeType, type ConfChange, type ConfState, type NodeId } from './types.js';

/** The membership after applying `cc` to `conf` (pure). Changes that make no sense are no-ops. */
export function applyChangeToConf(conf: ConfState, cc: ConfChange): ConfState {
  const voters = new Set(conf.voters);
  const learners = new Set(conf.learners);
  switch (cc.type) {
    case ConfChangeType.AddNode:
      // Adding a learner as a voter promotes it.
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case ConfChangeType.AddLearner:
      // A voter is never demoted by AddLearner (refused at proposal time; a no-op if it slips through).
      if (!voters.has(cc.nodeId)) learners.add(cc.nodeId);
      break;
    case ConfChangeType.RemoveNode:
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
    case ConfChangeType.UpdateNode:
      break;
    default: {
      const never: never = cc.type;
      throw new Error(`unknown conf change type ${String(never)}`);
    }
  }
  const sort = (s: Set<NodeId>) => [...s].sort((a, b) => a - b);
  return { voters: sort(voters), learners: sort(learners) };
}

/**
 * Checks a proposed change against the current membership; throws MembershipRefused for changes
 * that would be meaningless or leave the group without voters.
 */
export function validateConfChange(conf: ConfState, cc: ConfChange): void {
  assert(Number.isSafeInteger(cc.nodeId) && cc.nodeId > 0, `conf change node id ${cc.nodeId} is invalid`);
  const isVoter = conf.voters.includes(cc.nodeId);
  const isLearner = conf.learners.includes(cc.nodeId);
  const refuse = (why: string) => {
    throw new LichenError('MembershipRefused', why, { nodeId: cc.nodeId });
  };
  switch (cc.type) {
    case ConfChangeType.AddNode:
      if (isVoter) refuse(`member ${cc.nodeId} is already a voter`);
      break;
    case ConfChangeType.AddLearner:
      if (isVoter) refuse(`member ${cc.nodeId} is a voter; demotion is not supported`);
      if (isLearner) refuse(`member ${cc.nodeId} is already a learner`);
      break;
    case ConfChangeType.RemoveNode:
      if (!isVoter && !isLearner) refuse(`member ${cc.nodeId} is not a member`);
      if (isVoter && conf.voters.length === 1) refuse(`cannot remove the last voter ${cc.nodeId}`);
      break;
    case ConfChangeType.UpdateNode:
      if (!isVoter && !isLearner) refuse(`member ${cc.nodeId} is not a member`);
      break;
    default: {
      const never: never = cc.type;
      throw new LichenError('InvalidArgument', `unknown conf change type ${String(never)}`);
    }
  }
}

const CONF_CHANGE_VERSION = 1;
const CONF_CHANGE_HEADER_BYTES = 1 + 1 + 8;

/** Encodes a ConfChange as an entry payload: version, type, node id (float64), context bytes. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(CONF_CHANGE_HEADER_BYTES + cc.context.length);
  const view = new DataView(out.buffer);
  view.setUint8(0, CONF_CHANGE_VERSION);
  view.setUint8(1, cc.type);
  view.setFloat64(2, cc.nodeId);
  out.set(cc.context, CONF_CHANGE_HEADER_BYTES);
  return out;
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  if (bytes.length < CONF_CHANGE_HEADER_BYTES) {
    throw new LichenError('InvalidArgument', `conf change payload too short (${bytes.length} bytes)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== CONF_CHANGE_VERSION) {
    throw new LichenError('InvalidArgument', `unknown conf change encoding version ${version}`);
  }
  const type = view.getUint8(1);
  if (type > ConfChangeType.UpdateNode) throw new LichenError('InvalidArgument', `unknown conf change type ${type}`);
  const nodeId = view.getFloat64(2);
  if (!Number.isSafeInteger(nodeId) || nodeId <= 0) {
    throw new LichenError('InvalidArgument', `conf change node id ${nodeId} is invalid`);
  }
  return { type: type as ConfChangeType, nodeId, context: bytes.slice(CONF_CHANGE_HEADER_BYTES) };
}
