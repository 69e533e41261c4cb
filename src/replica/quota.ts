// The space quota (etcd's --quota-backend-bytes, server/etcdserver/quota.go): a write that adds
// data is admitted only while the engine's data in use plus what the write costs stays below the
// quota. Costs are etcd's estimates; requests that add nothing (ranges, deletes, compaction) cost
// 0 and always pass, so an operator can always free space.
import type { Command, RequestOp, TxnRequest } from '../mvcc/index.js';

/** etcd's kvOverhead: the estimated cost of a key's metadata. */
const KV_OVERHEAD_BYTES = 256;
/** etcd's leaseOverhead: the estimated cost of storing a lease. */
const LEASE_OVERHEAD_BYTES = 64;

/** What a command would add, in etcd's estimate; 0 for commands that add nothing. */
export function quotaCost(command: Command): number {
  switch (command.type) {
    case 'put':
      return KV_OVERHEAD_BYTES + command.request.key.length + (command.request.value?.length ?? 0);
    case 'txn':
      return txnCost(command.request, 0);
    case 'leaseGrant':
      return LEASE_OVERHEAD_BYTES;
    default:
      return 0;
  }
}

/** The costlier branch's puts (etcd counts only top-level puts; nested ones count here too). */
function txnCost(txn: TxnRequest, depth: number): number {
  // Decoded txns are depth-bounded at the API edge; this bound keeps the recursion finite regardless.
  if (depth > 64) return 0;
  const branchCost = (ops: RequestOp[]): number =>
    ops.reduce((sum, op) => {
      if ('requestPut' in op) return sum + quotaCost({ type: 'put', request: op.requestPut });
      if ('requestTxn' in op) return sum + txnCost(op.requestTxn, depth + 1);
      return sum;
    }, 0);
  return Math.max(branchCost(txn.success), branchCost(txn.failure));
}

/** Whether the quota admits a command (a negative quota is no quota). */
export function quotaAdmits(quotaBytes: number, inUseBytes: number, command: Command): boolean {
  const cost = quotaCost(command);
  return cost === 0 || quotaBytes < 0 || inUseBytes + cost < quotaBytes;
}
