// Batched ReadIndex (thesis §6.4). A linearizable read needs the leader to (1) record its commit
// index, (2) confirm it is still the leader by hearing from a quorum after the read arrived, and
// (3) wait until that index is applied. Step 2 costs a heartbeat round, so we share rounds: every
// read that arrives before a round's heartbeats leave the node (before the next ready()) joins that
// round, and one quorum of answers confirms all of them.
//
// A round's acknowledgement also confirms every earlier round, because it proves leadership at a
// later moment. A read must never join a round whose heartbeats were already handed out: answers to
// them would prove leadership only for a moment before the read arrived.

import type { NodeId } from './types.js';

export interface PendingRead {
  index: number;
  context: Uint8Array;
  /** Who asked: this node (answer as a ReadState) or a follower (answer with ReadIndexResp). */
  from: NodeId;
}

interface Round {
  seq: number;
  /** False once the round's heartbeats were handed out in a Ready; no read may join it after. */
  open: boolean;
  acks: Set<NodeId>;
  reads: PendingRead[];
}

/** Encodes a round number as the heartbeat context (8 bytes, big endian). */
export function encodeRoundContext(seq: number): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, seq);
  return bytes;
}

export function decodeRoundContext(context: Uint8Array): number | undefined {
  if (context.length !== 8) return undefined;
  const seq = new DataView(context.buffer, context.byteOffset, 8).getFloat64(0);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
}

export class ReadOnlyQueue {
  private rounds: Round[] = [];
  private nextSeq = 1;
  private pendingCount = 0;

  constructor(readonly maxPendingReads: number) {}

  get size(): number {
    return this.pendingCount;
  }

  isFull(): boolean {
    return this.pendingCount >= this.maxPendingReads;
  }

  /** Adds a read; returns the round sequence number and whether a new round started (send heartbeats). */
  add(read: PendingRead): { seq: number; newRound: boolean } {
    const last = this.rounds[this.rounds.length - 1];
    this.pendingCount++;
    if (last && last.open) {
      last.reads.push(read);
      return { seq: last.seq, newRound: false };
    }
    const round: Round = { seq: this.nextSeq++, open: true, acks: new Set(), reads: [read] };
    this.rounds.push(round);
    return { seq: round.seq, newRound: true };
  }

  /** Called when messages are handed out: the open round is now in flight. */
  seal(): void {
    for (const r of this.rounds) r.open = false;
  }

  /** The newest round, whose number periodic heartbeats carry so lost heartbeats are retried. */
  lastSeq(): number | undefined {
    return this.rounds[this.rounds.length - 1]?.seq;
  }

  /**
   * Records `from`'s answer to round `seq` and returns the reads now confirmed, oldest first.
   * `hasQuorum` decides whether a set of acknowledgements (plus the leader) is a quorum.
   */
  ack(seq: number, from: NodeId, hasQuorum: (acks: Set<NodeId>) => boolean): PendingRead[] {
    let confirmedUpTo = -1;
    for (let i = 0; i < this.rounds.length; i++) {
      const round = this.rounds[i]!;
      if (round.seq > seq) break;
      round.acks.add(from);
      if (hasQuorum(round.acks)) confirmedUpTo = i;
    }
    return this.release(confirmedUpTo);
  }

  /** Releases every round if a quorum is just the leader (single voter); used right after add(). */
  releaseAll(): PendingRead[] {
    return this.release(this.rounds.length - 1);
  }

  private release(upTo: number): PendingRead[] {
    if (upTo < 0) return [];
    const done = this.rounds.splice(0, upTo + 1);
    const reads = done.flatMap((r) => r.reads);
    this.pendingCount -= reads.length;
    return reads;
  }

  clear(): void {
    this.rounds = [];
    this.pendingCount = 0;
  }
}
