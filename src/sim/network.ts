// The virtual network: every message gets a delivery time drawn from the seeded PRNG, so messages
// are delayed, reordered (a later message may draw a shorter delay), dropped and duplicated.
// Partitions split the nodes into groups; a message between groups is lost at delivery time, so a
// partition also eats what was already in flight, as a real one would.

import type { GroupId } from '../ids.js';
import type { Message, NodeId } from '../raft/types.js';
import type { GroupMessage } from '../transport/index.js';
import { assert } from '../errors.js';
import type { Prng } from '../random.js';

export interface NetworkFaults {
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message (not a proposal) is delivered twice (the copy with its own delay). */
  duplicateRate: number;
  /** Normal one-way delay range in time units (both ends included). */
  delayMin: number;
  delayMax: number;
  /** Probability that a message is held back much longer (delayMax..slowDelayMax): reordering. */
  slowRate: number;
  slowDelayMax: number;
}

/**
 * What travels between two processes: one raft message of a group, or a Beat (a store's per-tick
 * frame to a peer process: the heartbeats of its quiet-capable groups, or nothing but "alive").
 */
export type Packet = { from: NodeId; to: NodeId; group: GroupId; message: Message } | { from: NodeId; to: NodeId; beat: GroupMessage[] };

interface InFlight {
  deliverAt: number;
  /** Send order, so that equal delivery times keep a deterministic order. */
  seq: number;
  packet: Packet;
}

/** The most messages the network holds at once; a run that exceeds it has a runaway sender. */
export const IN_FLIGHT_MAX = 200_000;

export class Network {
  private queue: InFlight[] = [];
  private seq = 0;
  /** partitionOf.get(id) is the group of a node; nodes not listed are in group 0. */
  private partitionOf = new Map<NodeId, number>();
  sent = 0;
  delivered = 0;
  dropped = 0;
  duplicated = 0;

  constructor(
    private readonly random: Prng,
    public faults: NetworkFaults,
  ) {}

  /** Queues a packet; returns false when the network lost it on the spot. */
  send(packet: Packet, now: number): boolean {
    this.sent++;
    if (this.random.chance(this.faults.dropRate)) {
      this.dropped++;
      return false;
    }
    this.enqueue(packet, now);
    // Never a proposal: raft tolerates any other message twice, but appends a forwarded proposal
    // each time it arrives, and a write must apply once. The real transport cannot duplicate one
    // (a message leaves its queue once written to the connection, src/transport/tcp.ts); the
    // copies here stand for raft's contract with the network, not for what TCP does.
    if (this.random.chance(this.faults.duplicateRate) && !('message' in packet && packet.message.type === 'Prop')) {
      this.duplicated++;
      this.enqueue(packet, now);
    }
    return true;
  }

  private enqueue(packet: Packet, now: number): void {
    assert(this.queue.length < IN_FLIGHT_MAX, `network holds more than ${IN_FLIGHT_MAX} messages`);
    const slow = this.random.chance(this.faults.slowRate);
    const delay = slow
      ? this.random.between(this.faults.delayMax, this.faults.slowDelayMax)
      : this.random.between(this.faults.delayMin, this.faults.delayMax);
    const item: InFlight = { deliverAt: now + delay, seq: this.seq++, packet };
    // Insert in (deliverAt, seq) order. Most messages land near the end, so search from there.
    let i = this.queue.length;
    while (i > 0 && this.queue[i - 1]!.deliverAt > item.deliverAt) i--;
    this.queue.splice(i, 0, item);
  }

  /**
   * Removes and returns the messages due at or before `now`, in delivery order. Messages that cross
   * a partition are returned in `lost` instead (the caller tells the sender about lost snapshots).
   */
  takeDue(now: number): { deliver: Packet[]; lost: Packet[] } {
    let count = 0;
    while (count < this.queue.length && this.queue[count]!.deliverAt <= now) count++;
    const due = this.queue.splice(0, count);
    const deliver: Packet[] = [];
    const lost: Packet[] = [];
    for (const item of due) {
      if (this.connected(item.packet.from, item.packet.to)) deliver.push(item.packet);
      else lost.push(item.packet);
    }
    this.delivered += deliver.length;
    this.dropped += lost.length;
    return { deliver, lost };
  }

  connected(a: NodeId, b: NodeId): boolean {
    return (this.partitionOf.get(a) ?? 0) === (this.partitionOf.get(b) ?? 0);
  }

  /** Splits the cluster: each listed group gets its own partition; unlisted nodes stay in group 0. */
  partition(groups: NodeId[][]): void {
    this.partitionOf.clear();
    groups.forEach((group, i) => {
      for (const id of group) this.partitionOf.set(id, i + 1);
    });
  }

  heal(): void {
    this.partitionOf.clear();
  }

  isPartitioned(): boolean {
    return this.partitionOf.size > 0;
  }

  inFlight(): number {
    return this.queue.length;
  }
}
