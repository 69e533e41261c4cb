// What a replica needs from the world besides its peers and its disk: time and randomness. A
// process passes the real ones (src/server/environment.ts); tests and the simulator pass virtual
// ones, so a run replays exactly. Nothing in src/replica reads a clock, sets a timer or draws a
// random number any other way.

export interface Clock {
  /** Milliseconds on a monotonic clock (performance.now() in a process): deadlines and intervals. */
  monotonicMs(): number;
  /** Milliseconds since the Unix epoch (Date.now() in a process): lease grants, token expiry. */
  wallMs(): number;
}

/** A timer set by Timers (opaque: only the Timers that set it knows what it is). */
export type TimerHandle = { readonly brand: 'TimerHandle' };

export interface Timers {
  setTimeout(run: () => void, ms: number): TimerHandle;
  setInterval(run: () => void, ms: number): TimerHandle;
  /** Cancels a timeout or an interval; undefined and timers that already ran are fine. */
  clear(handle: TimerHandle | undefined): void;
  /** Resolves once the I/O waiting now has had its turn (setImmediate in a process). */
  nextTurn(): Promise<void>;
}

export interface Randomness {
  /** A number in [0, 1). */
  float(): number;
  bytes(length: number): Uint8Array;
}

export interface Environment {
  clock: Clock;
  timers: Timers;
  random: Randomness;
}
