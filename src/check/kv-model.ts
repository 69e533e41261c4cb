// The sequential specification of a key-value map of registers, partitioned by key: operations on
// different keys never constrain each other, so each key is checked on its own.

import type { Model, Operation, Partition } from './types.js';

export type KvInput =
  | { kind: 'get'; key: string }
  | { kind: 'put'; key: string; value: string }
  | { kind: 'delete'; key: string }
  /** Compare-and-swap: writes `value` when the current value equals `expected` (undefined = absent). */
  | { kind: 'cas'; key: string; expected: string | undefined; value: string };

/** get answers `value` (undefined = absent); cas answers `ok`; put and delete answer nothing. */
export type KvOutput = { value?: string | undefined; ok?: boolean };

export type KvOperation = Operation<KvInput, KvOutput>;

/**
 * The state of one key's partition: its value, or null when absent. (Not undefined: a step returns
 * undefined to say "illegal".)
 */
type KeyState = string | null;

export const kvModel: Model<KeyState, KvInput, KvOutput> = {
  init: () => null,

  step(state, input, output, outcomeKnown) {
    switch (input.kind) {
      case 'get':
        if (!outcomeKnown) return state;
        return (output?.value ?? null) === state ? state : undefined;
      case 'put':
        return input.value;
      case 'delete':
        return null;
      case 'cas': {
        const swaps = state === (input.expected ?? null);
        if (outcomeKnown && output?.ok !== swaps) return undefined;
        return swaps ? input.value : state;
      }
    }
  },

  // A leading marker keeps "absent" distinct from every string value.
  stateKey: (state) => (state === null ? '-' : '+' + state),

  partition(ops) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of ops) {
      let list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, (list = []));
      list.push(op);
    }
    const partitions: Partition<KvInput, KvOutput>[] = [];
    for (const [key, list] of byKey) partitions.push({ key, ops: list });
    return partitions;
  },

  describe(input, output, outcomeKnown) {
    const show = (v: string | undefined) => (v === undefined ? '<absent>' : JSON.stringify(v));
    const result = (text: string) => (outcomeKnown ? text : '? (outcome unknown)');
    switch (input.kind) {
      case 'get':
        return `get(${input.key}) -> ${result(show(output?.value))}`;
      case 'put':
        return `put(${input.key}, ${show(input.value)}) -> ${result('done')}`;
      case 'delete':
        return `delete(${input.key}) -> ${result('done')}`;
      case 'cas':
        return `cas(${input.key}, ${show(input.expected)} => ${show(input.value)}) -> ${result(String(output?.ok))}`;
    }
  },
};
