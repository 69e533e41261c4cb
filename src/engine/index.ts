export type { Engine, EngineKind, EngineSpace, RangeOptions, ReadView, WriteOp } from './types.js';
export { MemoryEngine } from './memory.js';
export { LmdbEngine } from './lmdb.js';
export type { LmdbEngineOptions } from './lmdb.js';
export { exportChunks, decodeChunk, EXPORT_CHUNK_BYTES_DEFAULT } from './codec.js';
import type { Engine, EngineKind } from './types.js';
import { MemoryEngine } from './memory.js';
import { LmdbEngine } from './lmdb.js';

/** Opens the engine a node is configured with; `dir` is where lmdb keeps its files (memory ignores it). */
export function openEngine(kind: EngineKind, dir: string): Engine {
  switch (kind) {
    case 'lmdb':
      return LmdbEngine.open({ dir });
    case 'memory':
      return new MemoryEngine();
  }
}
export { ScopedEngine, GROUP_PREFIX_BYTES, GROUP_ZERO, groupPrefix } from './scoped.js';
