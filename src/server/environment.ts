// The real clock, timers and randomness a member process gives its replica (src/replica/environment.ts).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Environment, TimerHandle } from '../replica/index.js';

export const systemEnvironment: Environment = {
  clock: {
    monotonicMs: () => performance.now(),
    wallMs: () => Date.now(),
  },
  timers: {
    setTimeout: (run, ms) => setTimeout(run, ms) as unknown as TimerHandle,
    setInterval: (run, ms) => setInterval(run, ms) as unknown as TimerHandle,
    // Node's clearTimeout clears intervals too.
    clear: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout | undefined),
    nextTurn: () => new Promise((resolve) => setImmediate(resolve)),
  },
  random: {
    float: () => Math.random(),
    bytes: (length) => randomBytes(length),
  },
};
