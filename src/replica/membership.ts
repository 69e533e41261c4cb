// What a replica does on its own about the group's membership: keep its peer links equal to the
// members, publish its client addresses, promote itself once a learner has caught up, and find
// out that it was removed when nobody tells it.
import type { Logger } from '../log.js';
import type { Clock } from './environment.js';
import type { Member, MemberAttributes, MemberTable } from './members.js';
import type { MembershipView, PeerLinks, ReplicaConfig } from './types.js';

/** Election timeouts without a leader before a member asks the others whether it was removed. */
const MEMBERSHIP_PROBE_ELECTIONS = 3;

export interface MembershipContext {
  memberId: number;
  config: Pick<ReplicaConfig, 'name' | 'electionTicks' | 'tickMs' | 'requestTimeoutMs'>;
  clock: Clock;
  logger: Logger;
  peers: PeerLinks;
  /** The client and HTTP addresses this member publishes. */
  publicAddresses: { client: string; http: string };
  askMembership: (clientAddress: string) => Promise<MembershipView>;
  /** Set when this member joined a running cluster (see syncPeers and maybePromoteSelf). */
  joined: { catchUpIndex: number; members: Member[] } | undefined;
  /** The member table now (a snapshot replaces it). */
  members(): MemberTable;
  applied(): number;
  /** The leader known now, 0 when none. */
  leader(): number;
  isLearner(): boolean;
  /** Whether this member knows it was removed, or failed. */
  halted(): boolean;
  /** Proposes this member's promotion to a voter; resolves once applied. */
  promoteSelf(): Promise<void>;
  /** Proposes this member's attributes, with no client waiting. */
  publish(attributes: MemberAttributes): void;
  /** This member learned it was removed. */
  onRemoved(how: string): void;
}

export class Membership {
  /** The peers the links dial, kept equal to the other members (syncPeers). */
  private knownPeers = new Set<number>();
  private publishedAttributes = false;
  private publishAttemptAtMs = -Infinity;
  /** A member that joined with --join promotes itself once it has caught up; this guards that. */
  private promotingSelf = false;
  /** Since when no leader is known, and whether a membership probe is out (maybeProbeMembership). */
  private leaderlessSinceMs: number;
  private probingMembership = false;

  constructor(private readonly context: MembershipContext) {
    this.leaderlessSinceMs = context.clock.monotonicMs();
  }

  /** Whether a duty here waits for ticks: publishing this member's addresses, or a joined learner's promotion. */
  get needsTicks(): boolean {
    return !this.publishedAttributes || (this.context.joined !== undefined && this.context.isLearner());
  }

  /** Called every tick. */
  tick(): void {
    if (!this.publishedAttributes && this.context.leader() !== 0) this.publishAttributes();
    this.maybePromoteSelf();
    this.maybeProbeMembership();
  }

  /**
   * Makes the peer links dial exactly the current members (other than this one). A member that
   * joined also keeps the members it was told of at its join until it has applied that far: the
   * leader may send it an older snapshot (the first one, say), whose membership lacks members
   * added since, the leader itself among them; dropping them would leave it unable to answer the
   * leader (or accept its connection), so it could never apply the changes that add them back.
   */
  syncPeers(): void {
    const { memberId, joined, peers } = this.context;
    const members = this.context.members();
    const current = new Set<number>();
    const catchingUp = joined !== undefined && this.context.applied() < joined.catchUpIndex ? joined.members : [];
    for (const member of [...members.list(), ...catchingUp]) {
      if (member.id === memberId || current.has(member.id) || members.isRemoved(member.id)) continue;
      current.add(member.id);
      peers.updatePeer(member.id, member.peerAddress);
    }
    for (const id of this.knownPeers) if (!current.has(id)) peers.removePeer(id);
    this.knownPeers = current;
  }

  private publishAttributes(): void {
    const { memberId, publicAddresses, config } = this.context;
    const self = this.context.members().get(memberId);
    if (!self) return;
    if (self.clientAddress === publicAddresses.client && self.httpAddress === publicAddresses.http) {
      this.publishedAttributes = true;
      return;
    }
    const now = this.context.clock.monotonicMs();
    if (now - this.publishAttemptAtMs < config.requestTimeoutMs) return;
    this.publishAttemptAtMs = now;
    this.context.publish({ name: config.name, clientAddress: publicAddresses.client, httpAddress: publicAddresses.http });
  }

  /**
   * A member that joined as a learner asks to become a voter once it has applied everything
   * that was committed when it joined (the threshold is documented in the README): from then on
   * it is as up to date as any follower, so adding it cannot stall commits.
   */
  private maybePromoteSelf(): void {
    const { joined, logger } = this.context;
    if (!joined || this.promotingSelf || !this.context.isLearner() || this.context.leader() === 0) return;
    if (this.context.applied() < joined.catchUpIndex) return;
    this.promotingSelf = true;
    this.context
      .promoteSelf()
      .then(() => logger.info('promoted this learner to a voting member', { applied: this.context.applied() }))
      .catch((error: unknown) => logger.warn('self-promotion did not complete; will retry', { error: String(error) }))
      .finally(() => (this.promotingSelf = false));
  }

  /**
   * A follower that is removed may never see its removal commit: the leader stops replicating to
   * it as soon as the change applies there. It then hears no leader and campaigns in vain. So a
   * member without a leader for several election timeouts asks the others whether it is still a
   * member, and trusts an answer only from a member that has applied at least as much of the log
   * as itself and at least up to its addition (so that member has seen this member's addition too).
   */
  private maybeProbeMembership(): void {
    const { memberId, config } = this.context;
    const now = this.context.clock.monotonicMs();
    if (this.context.leader() !== 0 || this.context.halted()) {
      this.leaderlessSinceMs = now;
      return;
    }
    const patienceMs = MEMBERSHIP_PROBE_ELECTIONS * config.electionTicks * config.tickMs;
    if (now - this.leaderlessSinceMs < patienceMs || this.probingMembership) return;
    this.probingMembership = true;
    this.leaderlessSinceMs = now;
    const others = this.context.members().list().filter((m) => m.id !== memberId && m.clientAddress !== '');
    // A member that joined was added at or below catchUpIndex: a member that has not applied that
    // far may simply not know of the addition yet (seen in the simulator: a joiner stopped as removed).
    const addedBy = this.context.joined?.catchUpIndex ?? 0;
    void Promise.allSettled(others.map((m) => this.context.askMembership(m.clientAddress)))
      .then((answers) => {
        for (const answer of answers) {
          if (answer.status !== 'fulfilled' || answer.value.appliedIndex < Math.max(addedBy, this.context.applied())) continue;
          if (!answer.value.memberIds.includes(memberId) && !this.context.halted()) {
            this.context.onRemoved('another member reports that this member was removed');
          }
        }
      })
      .finally(() => (this.probingMembership = false));
  }
}
