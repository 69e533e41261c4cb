// Test support shared by the transport tests: a seeded PRNG, random messages of every variant, and
// a bounded wait for an event. Not part of the public surface.
import type { Entry, Message, MessageType, Snapshot } from '../raft/types.js';
import { MESSAGE_TYPE_CODES } from './codec.js';

export { seededRandom } from '../random.js';

export const ALL_MESSAGE_TYPES = Object.keys(MESSAGE_TYPE_CODES) as MessageType[];

export class MessageGenerator {
  constructor(readonly random: () => number) {}

  int(max: number): number {
    return Math.floor(this.random() * (max + 1));
  }

  /** Mostly small numbers, sometimes huge ones, so every varint length gets exercised. */
  number(): number {
    const pick = this.random();
    if (pick < 0.3) return this.int(127);
    if (pick < 0.6) return this.int(1_000_000);
    if (pick < 0.9) return this.int(2 ** 40);
    return Number.MAX_SAFE_INTEGER - this.int(1000);
  }

  bool(): boolean {
    return this.random() < 0.5;
  }

  bytes(maxLength: number): Uint8Array {
    const bytes = new Uint8Array(this.int(maxLength));
    for (let i = 0; i < bytes.length; i++) bytes[i] = this.int(255);
    return bytes;
  }

  entries(): Entry[] {
    return Array.from({ length: this.int(5) }, () => ({
      term: this.number(),
      index: this.number(),
      type: this.bool() ? 1 : 0,
      data: this.bytes(300),
    }));
  }

  ids(): number[] {
    return Array.from({ length: this.int(6) }, () => 1 + this.int(1000));
  }

  snapshot(): Snapshot {
    return {
      metadata: { index: this.number(), term: this.number(), conf: { voters: this.ids(), learners: this.ids() } },
      data: this.bytes(5000),
    };
  }

  message(type: MessageType): Message {
    const base = { from: 1 + this.int(1000), to: 1 + this.int(1000), term: this.number() };
    switch (type) {
      case 'Vote':
      case 'PreVote':
        return { ...base, type, lastLogIndex: this.number(), lastLogTerm: this.number(), transfer: this.bool() };
      case 'VoteResp':
      case 'PreVoteResp':
        return { ...base, type, reject: this.bool() };
      case 'App':
        return {
          ...base,
          type,
          prevLogIndex: this.number(),
          prevLogTerm: this.number(),
          entries: this.entries(),
          commit: this.number(),
        };
      case 'AppResp':
        return {
          ...base,
          type,
          reject: this.bool(),
          index: this.number(),
          rejectHint: this.number(),
          hintTerm: this.number(),
        };
      case 'Heartbeat': {
        const heartbeat: Message = { ...base, type, commit: this.number(), context: this.bytes(20) };
        if (this.random() < 0.5) heartbeat.quiesce = true;
        return heartbeat;
      }
      case 'HeartbeatResp':
      case 'ReadIndex':
        return { ...base, type, context: this.bytes(20) };
      case 'Snap':
        return { ...base, type, snapshot: this.snapshot() };
      case 'Prop':
        return { ...base, type, entries: this.entries() };
      case 'ReadIndexResp':
        return { ...base, type, index: this.number(), context: this.bytes(20) };
      case 'TimeoutNow':
        return { ...base, type };
      case 'TransferLeader':
        return { ...base, type, transferee: 1 + this.int(1000) };
    }
  }
}

/** Normalises byte fields to hex strings so deepEqual compares contents, not Buffer vs view. */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { hex: Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex') };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, plain(field)]));
  }
  return value;
}

/**
 * Resolves when `check` returns true, re-checking whenever `poke` is called; rejects after
 * `timeoutMs` so a broken test fails in bounded time instead of hanging.
 */
export class Waiter {
  #waiting: { check: () => boolean; resolve: () => void }[] = [];

  poke(): void {
    for (const waiting of [...this.#waiting]) {
      if (waiting.check()) {
        this.#waiting.splice(this.#waiting.indexOf(waiting), 1);
        waiting.resolve();
      }
    }
  }

  until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(entry), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const entry = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiting.push(entry);
    });
  }
}
