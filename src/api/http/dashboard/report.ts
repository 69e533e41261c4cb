// What one member says about itself to the dashboard (GET /v1/traffic), and how a member finds
// the others' HTTP APIs. Member ids are text, 16 hex digits (formatId), as in the rest of /v1.
import type { HeatColumn, TrafficSamples } from '../../../traffic/index.js';
import type { Caller } from '../../backend.js';

export type MemberRole = 'leader' | 'follower' | 'candidate' | 'precandidate' | 'learner';

/** A member's raft and storage facts, read locally (no raft round), as of `second`. */
export interface MemberFacts {
  id: string;
  name: string;
  role: MemberRole;
  term: number;
  /** The member it believes leads; all zeros when it knows none. */
  leader: string;
  commitIndex: number;
  appliedIndex: number;
  revision: number;
  dbSize: number;
  dbSizeInUse: number;
  version: string;
  /** Raised alarms and other problems, human readable; empty when healthy. */
  errors: string[];
}

/** GET /v1/traffic?since=S: the member's facts and its traffic in the closed seconds after S. */
export interface MemberReport {
  member: MemberFacts;
  /** The member's current Unix second: samples and heat columns stop before it. */
  second: number;
  samples: TrafficSamples;
  /** Empty, with heatHidden, for a caller who may not see key names across the key space. */
  heat: HeatColumn[];
  heatHidden?: boolean;
}

/** A member as the dashboard reaches it. */
export interface MemberAddress {
  id: string;
  name: string;
  /** host:port of its HTTP API; empty when it has none or has not published it yet. */
  httpAddress: string;
  isLearner: boolean;
}

/** What the serving member offers the dashboard routes. */
export interface DashboardSource {
  memberId: string;
  /** This member's report (the same answer GET /v1/traffic gives). */
  report(since: number, heatSince: number): Promise<MemberReport>;
  /** Every member of the cluster, this one included. */
  members(): MemberAddress[];
  /** What the caller may see, by the auth state as it is now (everything while auth is disabled). */
  access(caller: Caller | undefined): Access;
}

export interface Access {
  /**
   * The root role: the traffic heat (key prefixes across the whole key space) is for it alone,
   * as the other views of every key (a snapshot, HashKV) are.
   */
  admin: boolean;
  /** Read permission on the key (a lease's keys are listed only where the caller may read them). */
  mayRead(key: Uint8Array): boolean;
}
