// The results of the client proposals a member applied most recently, whoever proposed them, so
// that a member whose own waiting proposals are covered by a snapshot it installs can answer them
// with their real results instead of leaving its clients to the request timeout.
//
// Why: a member that falls behind past the leader's compacted log catches up from a snapshot, and
// its own proposals committed meanwhile lie inside it: the member never applies those entries
// itself, so its applyEntry never answers them (etcd leaves such requests to time out with
// its ErrTimeout, "request timed out"; src/e2e/membership.test.ts's snapshot test hit it now and then).
// Every member records here the result of each client proposal it applies (every member computes
// the same result for the same entry); a snapshot sent to a peer carries the table as of the
// snapshot's index (snapshot-data.ts), and the member installing it answers its own proposals from
// it (Replica.installSnapshot).
//
// The table is bounded (proposalResultsMax results, proposalResultsBytesMax of their key-values,
// oldest first out) and lives in memory: a member that restarted lacks the results of what it
// applied before. So it says from which index on it is complete (`completeAfter`), and the
// installing member tells "not in the snapshot, still waiting" from "cannot say": see settle().
import type { ApplyResult } from '../auth/index.js';
import { ErrorCode, LichenError, assert } from '../errors.js';
import { proposalResultsBytesMax, proposalResultsMax } from '../limits.js';

/**
 * What a waiting proposal is answered with: an applied command's result, or a membership change's
 * (`undefined`: applied). `local`: applied, but its answer is the proposer's own state, which the
 * snapshot does not hold (an Authenticate's token, registered as the proposer applies it): unknown.
 */
export type ProposalOutcome = { command: ApplyResult } | { conf: LichenError | undefined } | { local: true };

interface Recorded {
  index: number;
  origin: number;
  sequence: number;
  outcome: ProposalOutcome;
  bytes: number;
}

/** The bytes a result is charged for beyond its key-values (its objects and numbers). */
const RESULT_OVERHEAD_BYTES = 64;

export class ProposalResults {
  private results: Recorded[] = [];
  /** The first result not yet dropped (results[head..] are live; compacted now and then). */
  private head = 0;
  private bytes = 0;

  /**
   * `completeAfter`: the table holds the result of every client proposal applied at an index above
   * it (and up to the last index recorded). A new process starts complete after what its engine
   * already held; a dropped result moves it up to that result's index.
   */
  constructor(private completeAfter: number) {}

  get size(): number {
    return this.results.length - this.head;
  }

  /** The result of the proposal (origin, sequence) applied at `index`; origin and sequence 0 are not client proposals. */
  record(index: number, origin: number, sequence: number, outcome: ProposalOutcome): void {
    if (sequence === 0) return;
    // Not the result's events: they hold the written values, which would stay in memory uncounted.
    if ('command' in outcome && 'response' in outcome.command && outcome.command.events.length > 0) {
      outcome = { command: { revision: outcome.command.revision, response: outcome.command.response, events: [] } };
    }
    const bytes = RESULT_OVERHEAD_BYTES + ('command' in outcome ? resultBytes(outcome.command) : 0);
    this.results.push({ index, origin, sequence, outcome, bytes });
    this.bytes += bytes;
    while (this.size > proposalResultsMax || (this.bytes > proposalResultsBytesMax && this.size > 1)) {
      const dropped = this.results[this.head++]!;
      this.bytes -= dropped.bytes;
      this.completeAfter = Math.max(this.completeAfter, dropped.index);
    }
    if (this.head > 1024 && this.head * 2 > this.results.length) {
      this.results = this.results.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The table as a snapshot at `index` carries it (results up to `index`), as JSON-safe values:
   * bytes as base64 and errors by code, message and details.
   */
  toJSON(index: number): ProposalResultsJson {
    const results: ProposalResultsJson['results'] = [];
    for (let i = this.head; i < this.results.length; i++) {
      const r = this.results[i]!;
      if (r.index > index) break;
      results.push([r.index, r.origin, r.sequence, encodeOutcome(r.outcome)]);
    }
    return { completeAfter: Math.min(this.completeAfter, index), results };
  }

  /** The table a snapshot carried (`json` undefined: one without results, complete after nothing). */
  static fromJSON(json: ProposalResultsJson | undefined, index: number): ProposalResults {
    const table = new ProposalResults(json?.completeAfter ?? index);
    for (const [at, origin, sequence, outcome] of json?.results ?? []) {
      assert(at <= index, `a snapshot at ${index} carries the result of entry ${at}`);
      table.record(at, origin, sequence, decodeOutcome(outcome));
    }
    return table;
  }

  /**
   * For a member installing a snapshot at `index` that carried this table: how each of its own
   * waiting proposals stands. `floor` is the member's applied index when it registered the
   * proposal: its entry, if any, lies above it (the leader appends new entries after everything
   * committed, and the member had applied no more than was committed). Found: the real outcome.
   * Not found, and the table is complete above the floor: not committed by `index`, still waiting.
   * Otherwise nobody can say here: the outcome is unknown.
   */
  settle(origin: number, sequence: number, floor: number, index: number): Exclude<ProposalOutcome, { local: true }> | 'waiting' | 'unknown' {
    if (floor >= index) return 'waiting';
    for (let i = this.results.length - 1; i >= this.head; i--) {
      const r = this.results[i]!;
      if (r.origin === origin && r.sequence === sequence) return 'local' in r.outcome ? 'unknown' : r.outcome;
    }
    return this.completeAfter <= floor ? 'waiting' : 'unknown';
  }
}

/** An error for a proposal whose outcome a snapshot hid (etcd's answer after its request timeout). */
export function outcomeUnknownError(index: number): LichenError {
  return new LichenError(ErrorCode.Timeout, `request timed out: its outcome is unknown (a snapshot at index ${index} may hold it, and its result was not kept)`, {
    etcdError: 'timeout',
  });
}

export interface ProposalResultsJson {
  completeAfter: number;
  /** [index, origin, sequence, outcome] */
  results: Array<[number, number, number, unknown]>;
}

/** The key and value bytes a result holds (a put's previous value, a txn's ranges). */
function resultBytes(result: ApplyResult): number {
  return 'response' in result ? valueBytes(result.response, 0) : 0;
}

function valueBytes(value: unknown, depth: number): number {
  if (value instanceof Uint8Array) return value.byteLength;
  if (typeof value !== 'object' || value === null || depth > 64) return 0;
  let total = 0;
  if (Array.isArray(value)) for (const item of value) total += valueBytes(item, depth + 1);
  else for (const key in value) total += valueBytes((value as Record<string, unknown>)[key], depth + 1);
  return total;
}

// Results hold numbers, booleans, strings, arrays, Uint8Arrays, plain objects and LichenErrors;
// `events` are left out (watchers of an installing member re-read history; see WatchHub.restored).
function encodeOutcome(outcome: ProposalOutcome): unknown {
  if ('local' in outcome) return { local: true };
  if ('conf' in outcome) return { conf: outcome.conf === undefined ? null : encodeValue(outcome.conf) };
  const result = outcome.command;
  if ('error' in result) return { revision: result.revision, error: encodeValue(result.error) };
  return { revision: result.revision, response: encodeValue(result.response) };
}

function decodeOutcome(json: unknown): ProposalOutcome {
  const o = json as { conf?: unknown; local?: true; revision: number; error?: unknown; response?: unknown };
  if (o.local === true) return { local: true };
  if ('conf' in o) return { conf: o.conf === null ? undefined : (decodeValue(o.conf) as LichenError) };
  if (o.error !== undefined) return { command: { revision: o.revision, error: decodeValue(o.error) as LichenError } };
  return { command: { revision: o.revision, response: decodeValue(o.response) as never, events: [] } };
}

function encodeValue(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof LichenError) return { $error: { code: value.code, message: value.message, details: encodeValue(value.details) } };
  if (Array.isArray(value)) return value.map(encodeValue);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const key in value) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = encodeValue(item);
    }
    return out;
  }
  assert(typeof value !== 'bigint' && typeof value !== 'function', `a proposal result holds a ${typeof value}`);
  return value;
}

function decodeValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeValue);
  if (typeof value !== 'object' || value === null) return value;
  const o = value as Record<string, unknown>;
  if (typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'base64'));
  if (o.$error !== undefined) {
    const e = o.$error as { code: LichenError['code']; message: string; details: unknown };
    return new LichenError(e.code, e.message, decodeValue(e.details) as LichenError['details']);
  }
  const out: Record<string, unknown> = {};
  for (const key in o) out[key] = decodeValue(o[key]);
  return out;
}
