// Automatic compaction, as etcd's --auto-compaction-mode / --auto-compaction-retention do it
// (etcd 3.4 server/etcdserver/api/v3compactor). Every member runs a Compactor and feeds it the
// raft tick; only the leader compacts, so a cluster compacts once per due time, and a member that
// becomes leader carries on from what it recorded as a follower. Time is injected (`now`), so the
// schedule is tested without sleeping.
//
// periodic, retention P: every P/10 (at most 6 minutes) the compactor records the current
// revision, keeping the records of the last P. Once P has passed since it started (later: once
// min(P, 1 hour) has passed since the last compaction) the leader compacts at the oldest record,
// i.e. it keeps about P of history.
// revision, retention N: every 5 minutes the leader compacts at current revision - N, unless
// that is not positive or is where it compacted last time.
import { LichenError, isLichenError } from '../errors.js';
import { parseGoDurationMs } from './duration.js';

export type AutoCompactionMode = 'periodic' | 'revision';

const HOUR_MS = 60 * 60 * 1000;
/** etcd: periodic compaction looks at the clock every 1/10 of the period. */
const PERIODIC_SAMPLES_PER_PERIOD = 10;
/** etcd's revInterval: revision-mode compaction runs every 5 minutes. */
export const REVISION_MODE_INTERVAL_MS = 5 * 60 * 1000;

/**
 * etcd's parseCompactionRetention: an integer is hours (periodic) or revisions (revision); in
 * periodic mode a Go duration ("5m", "1h30m", "90s") works too. 0 disables auto compaction.
 * Returns milliseconds (periodic) or a revision count (revision).
 */
export function parseCompactionRetention(mode: AutoCompactionMode, text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const count = Number(trimmed);
    if (!Number.isSafeInteger(count)) throw new LichenError('InvalidArgument', `retention "${text}" is too large`);
    return mode === 'periodic' ? count * HOUR_MS : count;
  }
  if (mode === 'revision') {
    throw new LichenError('InvalidArgument', `retention "${text}" must be a number of revisions in revision mode`);
  }
  try {
    return parseGoDurationMs(trimmed);
  } catch {
    throw new LichenError('InvalidArgument', `retention "${text}" is neither a number of hours nor a duration like 5m or 1h30m`);
  }
}

export interface CompactorOptions {
  mode: AutoCompactionMode;
  /** Milliseconds (periodic) or revisions (revision); positive. */
  retention: number;
  /** Milliseconds on a monotonic clock. */
  now: () => number;
  /** This member's current revision. */
  currentRevision: () => number;
  /** Proposes a compaction at `revision`; resolves once applied. */
  compact: (revision: number) => Promise<void>;
  log: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
}

export class Compactor {
  private readonly mode: AutoCompactionMode;
  private readonly retention: number;
  /** When the next step is due. */
  private nextAt = 0;
  private inFlight = false;
  // periodic
  private readonly sampleMs: number;
  private readonly samplesKept: number;
  private readonly revisions: number[] = [];
  private lastSuccessAt: number;
  private intervalMs: number;
  // revision
  private lastCompacted = 0;

  constructor(private readonly options: CompactorOptions) {
    this.mode = options.mode;
    this.retention = options.retention;
    const start = options.now();
    this.lastSuccessAt = start;
    // The first compaction waits a whole retention; later ones come every min(retention, 1 h).
    this.intervalMs = this.retention;
    this.sampleMs = Math.min(this.retention, HOUR_MS) / PERIODIC_SAMPLES_PER_PERIOD;
    this.samplesKept = Math.floor(this.retention / this.sampleMs) + 1;
    if (this.mode === 'periodic') this.sample();
    else this.nextAt = start + REVISION_MODE_INTERVAL_MS;
  }

  /** Call on every raft tick; `leader` says whether this member leads now. */
  tick(leader: boolean): void {
    if (this.inFlight || this.options.now() < this.nextAt) return;
    if (this.mode === 'periodic') this.stepPeriodic(leader);
    else this.stepRevision(leader);
  }

  private stepPeriodic(leader: boolean): void {
    if (!leader || this.options.now() - this.lastSuccessAt < this.intervalMs) {
      this.sample();
      return;
    }
    this.intervalMs = Math.min(this.retention, HOUR_MS);
    const revision = this.revisions[0]!;
    void this.run(revision, () => (this.lastSuccessAt = this.options.now())).then(() => this.sample());
  }

  private stepRevision(leader: boolean): void {
    const revision = this.options.currentRevision() - this.retention;
    const scheduleNext = (): void => void (this.nextAt = this.options.now() + REVISION_MODE_INTERVAL_MS);
    if (!leader || revision <= 0 || revision === this.lastCompacted) return scheduleNext();
    void this.run(revision, () => (this.lastCompacted = revision)).then(scheduleNext);
  }

  /** Records the current revision and schedules the next periodic step. */
  private sample(): void {
    this.revisions.push(this.options.currentRevision());
    if (this.revisions.length > this.samplesKept) this.revisions.shift();
    this.nextAt = this.options.now() + this.sampleMs;
  }

  /** Compacts; a revision compacted already counts as done (etcd treats ErrCompacted so). Never rejects. */
  private async run(revision: number, onSuccess: () => void): Promise<void> {
    this.inFlight = true;
    try {
      await this.options.compact(revision);
      onSuccess();
      this.options.log('info', 'auto compaction done', { mode: this.mode, revision });
    } catch (error) {
      if (isLichenError(error, 'Compacted')) onSuccess();
      else this.options.log('warn', 'auto compaction failed; will retry', { mode: this.mode, revision, error: String(error) });
    } finally {
      this.inFlight = false;
    }
  }
}
