// Client requests waiting on raft: proposals waiting to be applied, and linearizable reads
// waiting for a ReadIndex round. Both are bounded and time out with a typed error, because a
// proposal lost in a leader change never reports back.
import { ErrorCode, LichenError } from '../errors.js';

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** Proposals this node made, keyed by a per-node sequence carried in the entry envelope. */
export class PendingProposals<T> {
  private sequence = 0;
  private readonly waiting = new Map<number, Waiter<T>>();

  constructor(private readonly options: { max: number; timeoutMs: number }) {}

  get size(): number {
    return this.waiting.size;
  }

  /** Reserves a sequence number; the promise settles when the entry applies or on timeout. */
  register(): { sequence: number; result: Promise<T> } {
    if (this.waiting.size >= this.options.max) {
      throw new LichenError(ErrorCode.Overloaded, `too many requests in flight (limit ${this.options.max})`);
    }
    const sequence = ++this.sequence;
    const result = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(sequence);
        reject(new LichenError(ErrorCode.Timeout, 'etcdserver: request timed out'));
      }, this.options.timeoutMs);
      this.waiting.set(sequence, { resolve, reject, timer });
    });
    return { sequence, result };
  }

  resolve(sequence: number, value: T): void {
    const waiter = this.take(sequence);
    waiter?.resolve(value);
  }

  reject(sequence: number, error: Error): void {
    const waiter = this.take(sequence);
    waiter?.reject(error);
  }

  rejectAll(error: Error): void {
    for (const sequence of [...this.waiting.keys()]) this.reject(sequence, error);
  }

  private take(sequence: number): Waiter<T> | undefined {
    const waiter = this.waiting.get(sequence);
    if (!waiter) return undefined;
    clearTimeout(waiter.timer);
    this.waiting.delete(sequence);
    return waiter;
  }
}

interface Round {
  id: number;
  waiters: Waiter<void>[];
  startedAtMs: number;
  /** Set when the leader confirmed the round: reads may go once applied reaches it. */
  readIndex?: number;
}

/**
 * Batched ReadIndex (Raft thesis §6.4). Reads that arrive while a round is in flight wait for the
 * next round, because the in-flight round's index may predate their arrival; one round then
 * serves all of them. A round the leader never answers (leader change, dropped message) is
 * re-issued after `retryMs` with a fresh id.
 */
export class ReadRounds {
  /** Round ids start from the clock so that an answer meant for a previous process never matches. */
  private nextId: number;
  private inFlight: Round | undefined;
  private queued: Waiter<void>[] = [];
  private readonly confirmed: Round[] = [];

  constructor(
    private readonly options: {
      max: number;
      timeoutMs: number;
      retryMs: number;
      now: () => number;
      /** Asks raft for a read index; the answer arrives through onReadState. */
      issue: (context: Uint8Array) => void;
      appliedIndex: () => number;
    },
  ) {
    this.nextId = options.now() * 1000;
  }

  get size(): number {
    return this.queued.length + (this.inFlight?.waiters.length ?? 0) + this.confirmed.reduce((n, r) => n + r.waiters.length, 0);
  }

  /** Resolves when this node has applied everything committed before the call. */
  wait(): Promise<void> {
    if (this.size >= this.options.max) {
      return Promise.reject(new LichenError(ErrorCode.Overloaded, `too many reads in flight (limit ${this.options.max})`));
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter<void> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.forget(waiter);
          reject(new LichenError(ErrorCode.Timeout, 'etcdserver: request timed out'));
        }, this.options.timeoutMs),
      };
      this.queued.push(waiter);
      this.maybeStartRound();
    });
  }

  onReadState(context: Uint8Array, index: number): void {
    const round = this.inFlight;
    if (!round || decodeRoundId(context) !== round.id) return;
    this.inFlight = undefined;
    round.readIndex = index;
    this.confirmed.push(round);
    this.onApplied(this.options.appliedIndex());
    this.maybeStartRound();
  }

  onApplied(applied: number): void {
    while (this.confirmed.length > 0 && this.confirmed[0]!.readIndex! <= applied) {
      for (const waiter of this.confirmed.shift()!.waiters) {
        clearTimeout(waiter.timer);
        waiter.resolve();
      }
    }
  }

  /** Called every tick: re-issues a round the leader has not answered in time. */
  onTick(): void {
    const round = this.inFlight;
    if (round && this.options.now() - round.startedAtMs >= this.options.retryMs) {
      round.id = this.nextId++;
      round.startedAtMs = this.options.now();
      this.options.issue(encodeRoundId(round.id));
    }
  }

  private maybeStartRound(): void {
    if (this.inFlight || this.queued.length === 0) return;
    const round: Round = { id: this.nextId++, waiters: this.queued, startedAtMs: this.options.now() };
    this.queued = [];
    this.inFlight = round;
    this.options.issue(encodeRoundId(round.id));
  }

  private forget(waiter: Waiter<void>): void {
    const drop = (list: Waiter<void>[]): void => {
      const at = list.indexOf(waiter);
      if (at >= 0) list.splice(at, 1);
    };
    drop(this.queued);
    if (this.inFlight) drop(this.inFlight.waiters);
    for (const round of this.confirmed) drop(round.waiters);
  }
}

function encodeRoundId(id: number): Uint8Array {
  const out = Buffer.allocUnsafe(8);
  out.writeDoubleBE(id);
  return out;
}

function decodeRoundId(context: Uint8Array): number {
  if (context.length !== 8) return -1;
  return Buffer.from(context.buffer, context.byteOffset, 8).readDoubleBE(0);
}
