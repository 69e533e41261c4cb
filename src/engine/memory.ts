// The in-memory engine: a sorted array of keys with a map of values. Used by tests and the
// simulator. Snapshots copy the key space, which is fine at test sizes.
import { decodeChunk, exportChunks } from './codec.js';
import type { Engine, EngineSpace, RangeOptions, ReadView, WriteOp } from './types.js';

const compare = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);
const hex = (key: Uint8Array): string => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');

/** Index of the first key >= key in a sorted array. */
function lowerBound(keys: Uint8Array[], key: Uint8Array): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(keys[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

class SortedMap implements ReadView {
  constructor(
    protected keys: Uint8Array[] = [],
    protected values = new Map<string, Uint8Array>(),
  ) {}

  get(key: Uint8Array): Uint8Array | undefined {
    return this.values.get(hex(key));
  }

  /** Stored values are never changed in place, so get's value is as good. */
  peek(key: Uint8Array): Uint8Array | undefined {
    return this.get(key);
  }

  *range({ start, end, reverse = false, limit }: RangeOptions): Iterable<[Uint8Array, Uint8Array]> {
    const from = lowerBound(this.keys, start);
    const to = end === undefined ? this.keys.length : lowerBound(this.keys, end);
    const max = limit ?? Infinity;
    let yielded = 0;
    for (let i = reverse ? to - 1 : from; reverse ? i >= from : i < to; i += reverse ? -1 : 1) {
      if (yielded++ >= max) return;
      const key = this.keys[i]!;
      yield [key, this.values.get(hex(key))!];
    }
  }

  close(): void {}
}

export class MemoryEngine extends SortedMap implements Engine {
  readonly kind = 'memory' as const;
  /** While a batch runs: each written key's value before the batch (undefined: absent). */
  private undo: Map<string, { key: Uint8Array; value: Uint8Array | undefined }> | undefined;
  /** The bytes of every key and value held, kept up to date by write() and import(). */
  private bytes = 0;

  batch<T>(fn: () => T): T {
    if (this.undo) return fn();
    const undo = (this.undo = new Map());
    try {
      return fn();
    } catch (error) {
      this.undo = undefined;
      for (const { key, value } of undo.values()) this.write([value === undefined ? { type: 'del', key } : { type: 'put', key, value }]);
      throw error;
    } finally {
      this.undo = undefined;
    }
  }

  write(ops: WriteOp[]): void {
    for (const op of ops) {
      const id = hex(op.key);
      const exists = this.values.has(id);
      if (this.undo && !this.undo.has(id)) this.undo.set(id, { key: Uint8Array.from(op.key), value: this.values.get(id) });
      if (exists) this.bytes -= op.key.length + this.values.get(id)!.length;
      if (op.type === 'put') {
        if (!exists) this.keys.splice(lowerBound(this.keys, op.key), 0, Uint8Array.from(op.key));
        this.values.set(id, Uint8Array.from(op.value));
        this.bytes += op.key.length + op.value.length;
      } else if (exists) {
        this.keys.splice(lowerBound(this.keys, op.key), 1);
        this.values.delete(id);
      }
    }
  }

  snapshot(): ReadView {
    return new SortedMap([...this.keys], new Map(this.values));
  }

  /** Every batch is "committed" as it ends: there is no storage to defer to. */
  get uncommittedOps(): number {
    return 0;
  }

  commit(): void {}

  async sync(): Promise<void> {}

  /** Nothing is allocated beyond the keys and values, so the size and the size in use agree. */
  space(): EngineSpace {
    return { sizeBytes: this.bytes, inUseBytes: this.bytes };
  }

  export(chunkBytes?: number): Iterable<Uint8Array> {
    return exportChunks(this.snapshot(), chunkBytes);
  }

  import(chunks: Iterable<Uint8Array>): void {
    const keys: Uint8Array[] = [];
    const values = new Map<string, Uint8Array>();
    let bytes = 0;
    for (const chunk of chunks) {
      for (const [key, value] of decodeChunk(chunk)) {
        keys.push(Uint8Array.from(key));
        values.set(hex(key), Uint8Array.from(value));
        bytes += key.length + value.length;
      }
    }
    this.bytes = bytes;
    keys.sort(compare);
    this.keys = keys;
    this.values = values;
  }
}
