// A clock, timers and randomness that move only when told: tests drive a replica's timeouts by
// advancing virtual time, never by sleeping, and a seed fixes every random draw.
import { Prng } from '../random.js';
import type { Clock, Environment, Randomness, TimerHandle, Timers } from './environment.js';

interface VirtualTimer {
  at: number;
  /** Set for an interval: its period. */
  everyMs: number | undefined;
  run: () => void;
}

export class VirtualEnvironment implements Environment {
  private nowMs = 0;
  private nextId = 1;
  private readonly pending = new Map<number, VirtualTimer>();
  readonly clock: Clock;
  readonly timers: Timers;
  readonly random: Randomness;

  /** `wallStartMs`: what the wall clock reads at virtual time zero. */
  constructor(seed: number, wallStartMs = 1_700_000_000_000) {
    const prng = new Prng(seed);
    this.clock = { monotonicMs: () => this.nowMs, wallMs: () => wallStartMs + this.nowMs };
    this.random = { float: () => prng.float(), bytes: (length) => prng.bytes(length) };
    this.timers = {
      setTimeout: (run, ms) => this.add(run, ms, undefined),
      setInterval: (run, ms) => this.add(run, ms, Math.max(1, ms)),
      clear: (handle) => void this.pending.delete(handle as unknown as number),
      nextTurn: () => Promise.resolve(),
    };
  }

  /** Timers set and not yet run or cleared. */
  get timersPending(): number {
    return this.pending.size;
  }

  /** Moves time forward by `ms`, running every timer that falls due, in time order. */
  advance(ms: number): void {
    const end = this.nowMs + ms;
    for (;;) {
      let dueId: number | undefined;
      let due: VirtualTimer | undefined;
      for (const [id, timer] of this.pending) {
        if (timer.at <= end && (due === undefined || timer.at < due.at)) [dueId, due] = [id, timer];
      }
      if (due === undefined || dueId === undefined) break;
      this.nowMs = due.at;
      if (due.everyMs === undefined) this.pending.delete(dueId);
      else due.at += due.everyMs;
      due.run();
    }
    this.nowMs = end;
  }

  /**
   * The process stalls for `ms` (a long garbage collection, a starved machine): the clock moves on
   * and nothing runs; then, like Node's timers, each timer that fell due fires once (an interval
   * does not make up the periods it missed), in time order.
   */
  pause(ms: number): void {
    this.nowMs += ms;
    for (const timer of this.pending.values()) {
      if (timer.at < this.nowMs) timer.at = this.nowMs;
    }
    this.advance(0);
  }

  private add(run: () => void, ms: number, everyMs: number | undefined): TimerHandle {
    const id = this.nextId++;
    this.pending.set(id, { at: this.nowMs + Math.max(0, ms), everyMs, run });
    return id as unknown as TimerHandle;
  }
}
