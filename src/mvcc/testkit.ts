// Test helpers for the MVCC tests: engine factories (every kind), a harness that numbers raft
// indexes, and short byte/KeyValue helpers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as engines from '../engine/index.js';
import type { Engine } from '../engine/types.js';
import type { MvccCommand as Command } from './command.js';
import { MvccStore, type ApplyResult, type MvccStoreOptions } from './store.js';
import type { KeyValue, PutRequest } from './types.js';
import { seededRandom } from '../random.js';

export interface EngineFactory {
  kind: engines.EngineKind;
  /** A fresh engine; call cleanup() when the test ends. */
  create(): Promise<{ engine: Engine; cleanup(): Promise<void> }>;
}

/** Every engine kind, each in a fresh temporary directory. */
export function engineFactories(): EngineFactory[] {
  return (['memory', 'lmdb', 'leveldb'] as const).map((kind) => ({
    kind,
    create: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lichen-mvcc-'));
      const engine = await engines.openEngine(kind, join(dir, 'data'));
      return {
        engine,
        cleanup: async () => {
          await engines.closeEngine(engine);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  }));
}

export const b = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));
export const s = (bytes: Uint8Array | undefined): string => (bytes === undefined ? '<none>' : Buffer.from(bytes).toString('latin1'));

/** "key=value@create/mod/v<version>[/l<lease>]" — compact and readable in assertion diffs. */
export function show(kv: KeyValue | undefined): string {
  if (kv === undefined) return '<none>';
  const lease = kv.lease !== 0 ? `/l${kv.lease}` : '';
  return `${s(kv.key)}=${s(kv.value)}@${kv.createRevision}/${kv.modRevision}/v${kv.version}${lease}`;
}

export class Harness {
  index = 0;
  constructor(public store: MvccStore, public readonly engine: Engine) {}

  static open(engine: Engine, options?: MvccStoreOptions): Harness {
    const store = MvccStore.open(engine, options);
    const harness = new Harness(store, engine);
    harness.index = store.appliedIndex;
    return harness;
  }

  apply(command: Command): ApplyResult {
    return this.store.apply(++this.index, command);
  }

  /** Applies and fails the test on an error result. */
  ok(command: Command): Extract<ApplyResult, { response: unknown }> {
    const result = this.apply(command);
    if ('error' in result) throw new Error(`unexpected apply error: ${result.error.code} ${result.error.message}`);
    return result;
  }

  put(key: string, value: string, extra: Partial<PutRequest> = {}): Extract<ApplyResult, { response: unknown }> {
    return this.ok({ type: 'put', request: { key: b(key), value: b(value), ...extra } });
  }

  del(key: string, rangeEnd?: string): Extract<ApplyResult, { response: unknown }> {
    return this.ok({ type: 'deleteRange', request: { key: b(key), rangeEnd: rangeEnd === undefined ? undefined : b(rangeEnd) } });
  }

  /** Every live key as show() strings, at a revision (0 = current). */
  all(revision = 0): string[] {
    return this.store.range({ key: Uint8Array.of(0), rangeEnd: Uint8Array.of(0), revision }).kvs.map(show);
  }
}


/** A random but valid command stream over a small key space (puts, deletes, txns, leases, compactions). */
export function randomCommands(seed: number, count: number): Command[] {
  const random = seededRandom(seed);
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
  const keys = ['a', 'b', 'c', 'd', 'e', 'f/1', 'f/2', 'g'];
  const commands: Command[] = [];
  let leaseId = 100;
  let compactAt = 0;
  for (let i = 0; i < count; i++) {
    const roll = random();
    if (roll < 0.45) {
      commands.push({ type: 'put', request: { key: b(pick(keys)), value: b(`v${i}`), prevKv: random() < 0.5 } });
    } else if (roll < 0.6) {
      const key = pick(keys);
      commands.push({ type: 'deleteRange', request: random() < 0.3 ? { key: b(key), rangeEnd: b('f0') } : { key: b(key) } });
    } else if (roll < 0.8) {
      const [k1, k2] = [pick(keys), pick(keys)];
      commands.push({
        type: 'txn',
        request: {
          compare: [{ key: b(k1), target: 1, result: 2, createRevision: Math.floor(random() * i) }],
          success: [{ requestPut: { key: b(k1), value: b(`t${i}`) } }, { requestRange: { key: b(k2) } }],
          failure: k1 === k2 ? [] : [{ requestDeleteRange: { key: b(k2) } }, { requestPut: { key: b(k1), value: b(`f${i}`) } }],
        },
      });
    } else if (roll < 0.88) {
      commands.push({ type: 'leaseGrant', request: { TTL: 10, ID: ++leaseId } });
      commands.push({ type: 'put', request: { key: b(pick(keys)), value: b(`l${i}`), lease: leaseId } });
    } else if (roll < 0.94) {
      commands.push({ type: 'leaseRevoke', id: 101 + Math.floor(random() * (leaseId - 100)) });
    } else {
      // May fail (Compacted/FutureRevision); failures must be deterministic too.
      compactAt += 1 + Math.floor(random() * 4);
      commands.push({ type: 'compact', request: { revision: compactAt } });
    }
  }
  return commands;
}
