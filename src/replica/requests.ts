// Client requests waiting on raft: proposals waiting to be applied, and linearizable reads
// waiting for a ReadIndex round. Both are bounded and time out with a typed error, because a
// proposal lost in a leader change never reports back.
import { ErrorCode, LichenError, assert } from '../errors.js';

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
  registeredAtMs: number;
  deadlineMs: number;
  /** The member's applied index at registration: the proposal's entry, if any, lies above it. */
  floor: number;
}

/**
 * Proposals this node made, keyed by a per-node sequence carried in the entry envelope. A
 * proposal past its deadline fails on the next onTick(), as reads do (ReadRounds): a timer per
 * proposal (set, then cleared when it applied) was 3% of a member's CPU under 64 clients putting
 * (profiled 2026-12-07), and a timeout is a tick late at most.
 */
export class PendingProposals<T> {
  private sequence: number;
  /** In registration order, which is deadline order (one timeout for all, a monotonic clock). */
  private readonly waiting = new Map<number, Waiter<T>>();

  /**
   * `firstSequence`: where this process's sequence numbers start (default 1). An entry carries
   * its proposer's member id and sequence, and entries a member's previous process proposed may
   * commit after it restarted: starting each process at a random point keeps their sequences
   * from answering the new process's requests.
   */
  /** `now`: the clock deadlines and registration times are read from (see resolve). */
  constructor(private readonly options: { max: number; timeoutMs: number; now: () => number; firstSequence?: number }) {
    this.sequence = (options.firstSequence ?? 1) - 1;
  }

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Reserves a sequence number; the promise settles when the entry applies or on timeout.
   * `floor`: the member's applied index now (see waiting()).
   */
  register(floor = 0): { sequence: number; result: Promise<T> } {
    if (this.waiting.size >= this.options.max) {
      throw new LichenError(ErrorCode.Overloaded, `too many requests in flight (limit ${this.options.max})`);
    }
    const sequence = ++this.sequence;
    const registeredAtMs = this.options.now();
    const result = new Promise<T>((resolve, reject) => {
      this.waiting.set(sequence, { resolve, reject, registeredAtMs, deadlineMs: registeredAtMs + this.options.timeoutMs, floor });
    });
    return { sequence, result };
  }

  /** Settles the proposal; returns when it was registered (undefined: nobody waits for it any more). */
  resolve(sequence: number, value: T): number | undefined {
    const waiter = this.take(sequence);
    waiter?.resolve(value);
    return waiter?.registeredAtMs;
  }

  reject(sequence: number, error: Error): void {
    const waiter = this.take(sequence);
    waiter?.reject(error);
  }

  /** The proposals waiting now, each with the applied index it was registered at (its floor). */
  waitingNow(): Array<{ sequence: number; floor: number }> {
    return [...this.waiting].map(([sequence, waiter]) => ({ sequence, floor: waiter.floor }));
  }

  rejectAll(error: Error): void {
    for (const sequence of [...this.waiting.keys()]) this.reject(sequence, error);
  }

  /** Called every tick: fails the proposals whose deadline has passed. */
  onTick(): void {
    const now = this.options.now();
    for (const [sequence, waiter] of this.waiting) {
      if (waiter.deadlineMs > now) return;
      this.waiting.delete(sequence);
      waiter.reject(new LichenError(ErrorCode.Timeout, 'request timed out', { etcdError: 'timeout' }));
    }
  }

  private take(sequence: number): Waiter<T> | undefined {
    const waiter = this.waiting.get(sequence);
    if (!waiter) return undefined;
    this.waiting.delete(sequence);
    return waiter;
  }
}

/** A read waiting for a round: told when it may go, or why it may not. */
interface ReadWaiter {
  done: (error?: Error) => void;
  deadlineMs: number;
}

interface Round {
  id: number;
  waiters: ReadWaiter[];
  startedAtMs: number;
  /** Set when the leader confirmed the round: reads may go once applied reaches it. */
  readIndex?: number;
}

/** Bytes of a round's context: this incarnation's 8 random bytes, then the round id (u64). */
const ROUND_CONTEXT_BYTES = 16;

/**
 * Batched ReadIndex (Raft thesis §6.4). Reads that arrive while a round is in flight wait for the
 * next round, because the in-flight round's index may predate their arrival; one round then
 * serves all of them. A round the leader never answers (leader change, dropped message) is
 * re-issued after `retryMs` with a fresh id.
 *
 * A round's context starts with 64 random bits drawn once per process (`incarnation`): an answer
 * meant for a previous process of this member, still in flight when it restarted, must never
 * match a round of the new one, or it would release reads at an index older than their arrival.
 * Time is injected and read only on calls (onTick checks retries and deadlines), so the simulator
 * runs this class on its virtual clock.
 */
export class ReadRounds {
  private nextId = 1;
  private inFlight: Round | undefined;
  private queued: ReadWaiter[] = [];
  private readonly confirmed: Round[] = [];
  private readonly incarnation: Uint8Array;

  constructor(
    private readonly options: {
      max: number;
      timeoutMs: number;
      retryMs: number;
      now: () => number;
      /** 8 random bytes, drawn anew by every process (see the class comment). */
      incarnation: Uint8Array;
      /** Asks raft for a read index; the answer arrives through onReadState. */
      issue: (context: Uint8Array) => void;
      appliedIndex: () => number;
    },
  ) {
    assert(options.incarnation.length === 8, 'ReadRounds: the incarnation is 8 bytes');
    this.incarnation = Uint8Array.from(options.incarnation);
  }

  get size(): number {
    return this.queued.length + (this.inFlight?.waiters.length ?? 0) + this.confirmed.reduce((n, r) => n + r.waiters.length, 0);
  }

  /** Resolves when this node has applied everything committed before the call. */
  wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => this.waitFor((error) => (error ? reject(error) : resolve())));
  }

  /** wait() with a callback: called once, without an error when the read may go. */
  waitFor(done: (error?: Error) => void): void {
    if (this.size >= this.options.max) {
      done(new LichenError(ErrorCode.Overloaded, `too many reads in flight (limit ${this.options.max})`));
      return;
    }
    this.queued.push({ done, deadlineMs: this.options.now() + this.options.timeoutMs });
    this.maybeStartRound();
  }

  onReadState(context: Uint8Array, index: number): void {
    const round = this.inFlight;
    if (!round || this.roundIdOf(context) !== round.id) return;
    this.inFlight = undefined;
    round.readIndex = index;
    this.confirmed.push(round);
    this.onApplied(this.options.appliedIndex());
    this.maybeStartRound();
  }

  onApplied(applied: number): void {
    while (this.confirmed.length > 0 && this.confirmed[0]!.readIndex! <= applied) {
      for (const waiter of this.confirmed.shift()!.waiters) waiter.done();
    }
  }

  /** Called every tick: fails reads past their deadline and re-issues a round not answered in time. */
  onTick(): void {
    const now = this.options.now();
    this.expire(now);
    const round = this.inFlight;
    if (round && now - round.startedAtMs >= this.options.retryMs) {
      round.id = this.nextId++;
      round.startedAtMs = now;
      this.options.issue(this.encodeRoundId(round.id));
    }
  }

  /** Fails every waiting read (the member stops). */
  rejectAll(error: Error): void {
    const waiters = [...this.queued, ...(this.inFlight?.waiters ?? []), ...this.confirmed.flatMap((r) => r.waiters)];
    this.queued = [];
    this.inFlight = undefined;
    this.confirmed.length = 0;
    for (const waiter of waiters) waiter.done(error);
  }

  private maybeStartRound(): void {
    if (this.inFlight || this.queued.length === 0) return;
    const round: Round = { id: this.nextId++, waiters: this.queued, startedAtMs: this.options.now() };
    this.queued = [];
    this.inFlight = round;
    this.options.issue(this.encodeRoundId(round.id));
  }

  private expire(now: number): void {
    const expired: ReadWaiter[] = [];
    this.queued = dropExpired(this.queued, now, expired);
    if (this.inFlight) this.inFlight.waiters = dropExpired(this.inFlight.waiters, now, expired);
    for (const round of this.confirmed) round.waiters = dropExpired(round.waiters, now, expired);
    for (const waiter of expired) waiter.done(new LichenError(ErrorCode.Timeout, 'request timed out', { etcdError: 'timeout' }));
  }

  private encodeRoundId(id: number): Uint8Array {
    const out = Buffer.allocUnsafe(ROUND_CONTEXT_BYTES);
    out.set(this.incarnation, 0);
    out.writeBigUInt64BE(BigInt(id), 8);
    return out;
  }

  /** The round id a context names, or -1 when it is not one of this incarnation's. */
  private roundIdOf(context: Uint8Array): number {
    if (context.length !== ROUND_CONTEXT_BYTES) return -1;
    const bytes = Buffer.from(context.buffer, context.byteOffset, ROUND_CONTEXT_BYTES);
    if (!bytes.subarray(0, 8).equals(this.incarnation)) return -1;
    return Number(bytes.readBigUInt64BE(8));
  }
}

/** The waiters whose deadline has not passed; the others are added to `expired`. */
function dropExpired(waiters: ReadWaiter[], now: number, expired: ReadWaiter[]): ReadWaiter[] {
  if (waiters.every((waiter) => waiter.deadlineMs > now)) return waiters;
  const kept: ReadWaiter[] = [];
  for (const waiter of waiters) (waiter.deadlineMs > now ? kept : expired).push(waiter);
  return kept;
}
