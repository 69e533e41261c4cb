// The leveldb engine's directory of its keys: every stored key, in byte order, with the size of
// its value, held in memory so that range() can walk keys synchronously (the LevelDB binding
// iterates only asynchronously; see leveldb.ts for why the engine is built this way).
//
// Keys are Latin-1 strings (one char per byte, so string order is byte order), kept in a sorted
// list of sorted chunks as the MVCC key index does (src/mvcc/keyindex.ts; both search with
// sorted-chunks.ts): an insert splices one chunk of at most CHUNK_KEYS_MAX keys. Snapshots are
// copy-on-write: a snapshot shares every chunk and freezes them all; the directory copies a frozen
// chunk the first time it changes it, so a snapshot costs one copy of the chunk list, and each
// chunk is copied at most once per snapshot.

import { chunkFor, lowerBound } from './sorted-chunks.js';
const CHUNK_KEYS_MAX = 1024;

interface Chunk {
  keys: string[];
  /** Value sizes in bytes, beside keys. */
  sizes: number[];
  /** The directory's generation when this chunk was made; older chunks are shared with snapshots. */
  generation: number;
}


/** A read-only, ordered list of keys (the directory itself, or a snapshot of it). */
export class KeyList {
  constructor(protected chunks: Chunk[]) {}


  has(key: string): boolean {
    const c = chunkFor(this.chunks, key);
    if (c < 0) return false;
    const keys = this.chunks[c]!.keys;
    return keys[lowerBound(keys, key)] === key;
  }

  /** Keys in [start, end) (end undefined: no bound), ascending or descending. */
  *keys(start: string, end: string | undefined, reverse: boolean): Iterable<string> {
    if (this.chunks.length === 0 || (end !== undefined && start >= end)) return;
    const chunks = this.chunks;
    if (!reverse) {
      for (let c = chunkFor(this.chunks, start), i = lowerBound(chunks[c]!.keys, start); c < chunks.length; c++, i = 0) {
        const keys = chunks[c]!.keys;
        for (; i < keys.length; i++) {
          if (end !== undefined && keys[i]! >= end) return;
          yield keys[i]!;
        }
      }
      return;
    }
    let c = end === undefined ? chunks.length - 1 : chunkFor(this.chunks, end);
    let i = end === undefined ? chunks[c]!.keys.length - 1 : lowerBound(chunks[c]!.keys, end) - 1;
    for (; c >= 0; c--, i = c >= 0 ? chunks[c]!.keys.length - 1 : 0) {
      const keys = chunks[c]!.keys;
      for (; i >= 0; i--) {
        if (keys[i]! < start) return;
        yield keys[i]!;
      }
    }
  }
}

export class KeyDirectory extends KeyList {
  private generation = 0;
  /** The bytes of every key and value held: the engine's data in use. */
  bytes = 0;

  constructor() {
    super([]);
  }

  /** Replaces the contents with keys already sorted and unique, and their value sizes. */
  load(keys: string[], sizes: number[]): void {
    this.chunks = [];
    this.bytes = 0;
    const step = CHUNK_KEYS_MAX / 2;
    for (let i = 0; i < keys.length; i += step) {
      this.chunks.push({ keys: keys.slice(i, i + step), sizes: sizes.slice(i, i + step), generation: this.generation });
    }
    for (let i = 0; i < keys.length; i++) this.bytes += keys[i]!.length + sizes[i]!;
  }

  /** A view of the keys as of now, unchanged by later sets and removes. */
  snapshot(): KeyList {
    this.generation++;
    return new KeyList(this.chunks.slice());
  }

  /** Records `key` with a value of `valueBytes`; returns the previous value's size, or -1 if it was absent. */
  set(key: string, valueBytes: number): number {
    if (this.chunks.length === 0) {
      this.chunks.push({ keys: [key], sizes: [valueBytes], generation: this.generation });
      this.bytes += key.length + valueBytes;
      return -1;
    }
    const c = chunkFor(this.chunks, key);
    const chunk = this.writable(c);
    const at = lowerBound(chunk.keys, key);
    if (chunk.keys[at] === key) {
      const previous = chunk.sizes[at]!;
      chunk.sizes[at] = valueBytes;
      this.bytes += valueBytes - previous;
      return previous;
    }
    chunk.keys.splice(at, 0, key);
    chunk.sizes.splice(at, 0, valueBytes);
    this.bytes += key.length + valueBytes;
    if (chunk.keys.length > CHUNK_KEYS_MAX) {
      const half = CHUNK_KEYS_MAX / 2;
      this.chunks.splice(c + 1, 0, { keys: chunk.keys.splice(half), sizes: chunk.sizes.splice(half), generation: this.generation });
    }
    return -1;
  }

  /** Forgets `key`; returns its value's size, or -1 if it was absent. */
  remove(key: string): number {
    const c = chunkFor(this.chunks, key);
    if (c < 0) return -1;
    const at = lowerBound(this.chunks[c]!.keys, key);
    if (this.chunks[c]!.keys[at] !== key) return -1;
    const chunk = this.writable(c);
    const [size] = chunk.sizes.splice(at, 1);
    chunk.keys.splice(at, 1);
    this.bytes -= key.length + size!;
    if (chunk.keys.length === 0) this.chunks.splice(c, 1);
    return size!;
  }

  /** Chunk `c`, copied first if a snapshot shares it. */
  private writable(c: number): Chunk {
    const chunk = this.chunks[c]!;
    if (chunk.generation === this.generation) return chunk;
    const copy = { keys: chunk.keys.slice(), sizes: chunk.sizes.slice(), generation: this.generation };
    this.chunks[c] = copy;
    return copy;
  }
}
