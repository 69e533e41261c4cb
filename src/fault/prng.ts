// A small seeded PRNG (SplitMix32-style mixing over a 32-bit counter), so a check's fault schedule
// and every client's choice of operations follow from its seed. The interleaving of real
// processes still varies from run to run; the seed fixes what is attempted and when.
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Prng.pick from an empty list');
    return items[this.int(items.length)]!;
  }

  /** A new generator whose sequence depends on this seed and `salt` only. */
  fork(salt: number): Prng {
    return new Prng(Math.imul(this.state ^ 0x5bd1e995, 31) + salt * 0x27d4eb2d);
  }
}
