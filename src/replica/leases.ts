// The lease clocks of one replica. Only the leader runs them (as in etcd): it revokes a lease
// through raft once its TTL has passed without a keep-alive, and a new leader restarts every
// clock at a full TTL, since it cannot know when the old leader last heard a keep-alive.
import { Lessor, type MvccCommand } from '../mvcc/index.js';
import type { Clock } from './environment.js';

/** Expired leases revoked per tick, so a mass expiry does not flood the log. */
const LEASE_REVOKES_PER_TICK = 64;

export interface LeaseClocksContext {
  clock: Clock;
  /** The leases the state machine holds at start. */
  leases: Iterable<{ ID: number; grantedTTL: number }>;
  /** The shortest TTL granted, in seconds (etcd: 1.5 election timeouts, rounded up). */
  minTtlSeconds: number;
  /** How long a lease handed out for revocation waits before it is handed out again. */
  revokeRetryMs: number;
  /** Proposes the revocation of an expired lease, with no client waiting. */
  revoke(id: number): void;
}

export class LeaseClocks {
  readonly lessor: Lessor;

  constructor(private readonly context: LeaseClocksContext) {
    this.lessor = new Lessor({ minTtlSeconds: context.minTtlSeconds, revokeRetryMs: context.revokeRetryMs });
    for (const lease of context.leases) this.lessor.grant(lease.ID, lease.grantedTTL, context.clock.wallMs());
  }

  /** This replica became leader (true) or stopped being one (false). */
  onLeadership(leads: boolean): void {
    if (leads) this.lessor.promote(this.context.clock.wallMs());
    else this.lessor.demote();
  }

  /** A lease command was applied. */
  onApplied(command: MvccCommand, response: unknown): void {
    if (command.type === 'leaseGrant') {
      const granted = response as { ID: number; TTL: number };
      this.lessor.grant(granted.ID, granted.TTL, this.context.clock.wallMs());
    } else if (command.type === 'leaseRevoke') {
      this.lessor.revoke(command.id);
    }
  }

  /** Called every tick on the leader. */
  revokeExpired(): void {
    // The lessor hands out each expired lease once per retry period, so a lost revoke repeats.
    for (const id of this.lessor.expired(this.context.clock.wallMs(), LEASE_REVOKES_PER_TICK)) this.context.revoke(id);
  }
}
