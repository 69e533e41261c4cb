// The one seeded PRNG of the project, for the simulator, fault schedules, tests and tools, so a
// run replays from its seed: sfc32 (Chris Doty-Humphrey's small fast counter generator), seeded
// through splitmix32. Not for cryptography, nor for anything that must differ between processes
// (ids, tokens: those use node:crypto).

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 spreads a small integer seed over the 128-bit state, so seeds 1, 2, 3... give
    // unrelated streams.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    // Discard the first outputs: sfc32 mixes its state during the first few rounds.
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** A uniformly distributed 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** `count` random bytes. */
  bytes(count: number): Uint8Array {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = this.nextU32() & 0xff;
    return out;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    if (!(n >= 1)) throw new RangeError(`Prng.int needs n >= 1, got ${n}`);
    return Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi] (both included). */
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Prng.pick from an empty list');
    return items[this.int(items.length)]!;
  }

  /**
   * A new generator seeded from this one: an independent stream (for one node's raft, say).
   * Forks with different salts taken at the same point differ too.
   */
  fork(salt = 0): Prng {
    return new Prng((this.nextU32() ^ Math.imul(salt, 0x27d4eb2d)) >>> 0);
  }
}

/** A seeded source of floats in [0, 1), for code that takes randomness as a function. */
export function seededRandom(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.float();
}
