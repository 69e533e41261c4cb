// One small seeded PRNG for tests, tools and fault schedules, so a run replays from its seed.
// (The raft core keeps its own copy in its test kit: src/raft imports nothing outside itself.)

/** mulberry32: uniform numbers in [0, 1) from a 32-bit seed. Not for cryptography. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
