// The member table: who is in the cluster, their names and addresses. Raft knows members only
// by id; this table is what Cluster.MemberList shows and what the transport dials. It is rebuilt
// on restart from the latest snapshot plus the conf-change and attribute entries replayed after it,
// so it never needs a write of its own.
import { ConfChangeType, type ConfChange } from '../raft/index.js';
import { assert } from '../errors.js';
import { formatId } from '../ids.js';

export interface Member {
  id: number;
  name: string;
  /** host:port of the raft listener. */
  peerAddress: string;
  /** host:port of the gRPC listener; empty until the member publishes it. */
  clientAddress: string;
  /** host:port of the HTTP listener; empty until published or when disabled. */
  httpAddress: string;
  isLearner: boolean;
}

/** What a ConfChange's context carries. */
export interface MemberContext {
  name: string;
  peerAddress: string;
}

/** What a member publishes about itself once it runs (EnvelopeKind.MemberAttributes). */
export interface MemberAttributes {
  name: string;
  clientAddress: string;
  httpAddress: string;
}

export function encodeJson(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as T;
}

function hasPeerAddress(context: Uint8Array): boolean {
  if (context.length === 0) return false;
  const address = decodeJson<Partial<MemberContext>>(context).peerAddress;
  return typeof address === 'string' && address !== '';
}

export class MemberTable {
  private readonly members = new Map<number, Member>();
  /** Ids removed from the cluster: they may never rejoin under the same id (as in etcd). Created by the first removal. */
  private removed: Set<number> | undefined;

  static fromJSON(json: { members: Member[]; removed: number[] }): MemberTable {
    const table = new MemberTable();
    for (const m of json.members) table.members.set(m.id, { ...m });
    if (json.removed.length > 0) table.removed = new Set(json.removed);
    return table;
  }

  toJSON(): { members: Member[]; removed: number[] } {
    return { members: this.list(), removed: [...(this.removed ?? [])].sort((a, b) => a - b) };
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id);
  }

  get(id: number): Member | undefined {
    return this.members.get(id);
  }

  has(id: number): boolean {
    return this.members.has(id);
  }

  isRemoved(id: number): boolean {
    return this.removed?.has(id) ?? false;
  }

  byPeerAddress(address: string): Member | undefined {
    return this.list().find((m) => m.peerAddress === address);
  }

  /**
   * Why a committed conf change cannot take effect, or undefined when it can. A change is checked
   * when proposed, but another change may commit between that check and this one: a learner's
   * promotion can commit after its removal, an update after the member left. Every member decides
   * here from the same applied state, so all of them refuse the same changes (as etcd's
   * ValidateConfigurationChange does at apply).
   */
  refusal(cc: ConfChange): string | undefined {
    const existing = this.members.get(cc.nodeId);
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearner:
        if (this.removed?.has(cc.nodeId)) return `member ${formatId(cc.nodeId)} was removed, and a removed id never rejoins`;
        if (!existing && !hasPeerAddress(cc.context)) return `member ${formatId(cc.nodeId)} is not in the cluster`;
        return undefined;
      case ConfChangeType.RemoveNode:
      case ConfChangeType.UpdateNode:
        return existing ? undefined : `member ${formatId(cc.nodeId)} is not in the cluster`;
    }
  }

  /** Applies a committed conf change (refusal() said yes). Idempotent, because restarts replay entries. */
  applyConfChange(cc: ConfChange): void {
    const existing = this.members.get(cc.nodeId);
    switch (cc.type) {
      case ConfChangeType.AddNode:
      case ConfChangeType.AddLearner: {
        const isLearner = cc.type === ConfChangeType.AddLearner;
        if (existing) {
          // AddNode on a learner promotes it; the name and addresses stay.
          existing.isLearner = isLearner && existing.isLearner;
          return;
        }
        const context = decodeJson<MemberContext>(cc.context);
        this.members.set(cc.nodeId, {
          id: cc.nodeId,
          name: context.name,
          peerAddress: context.peerAddress,
          clientAddress: '',
          httpAddress: '',
          isLearner,
        });
        return;
      }
      case ConfChangeType.RemoveNode:
        this.members.delete(cc.nodeId);
        (this.removed ??= new Set()).add(cc.nodeId);
        return;
      case ConfChangeType.UpdateNode: {
        assert(existing !== undefined, `UpdateNode for unknown member ${cc.nodeId} was applied (refusal() says no)`);
        existing.peerAddress = decodeJson<MemberContext>(cc.context).peerAddress;
        return;
      }
    }
  }

  applyAttributes(id: number, attributes: MemberAttributes): void {
    const member = this.members.get(id);
    // A member removed before its publication committed has nothing left to update.
    if (!member) return;
    // A member added by MemberAdd has no name until it starts and says who it is.
    member.name = attributes.name;
    member.clientAddress = attributes.clientAddress;
    member.httpAddress = attributes.httpAddress;
  }
}
