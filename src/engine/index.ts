export type { BatchOptions, Engine, EngineKind, EngineSpace, RangeOptions, ReadView, WriteOp } from './types.js';
export { MemoryEngine } from './memory.js';
export { LmdbEngine } from './lmdb.js';
export type { LmdbEngineOptions } from './lmdb.js';
export { LevelEngine } from './leveldb.js';
export type { LevelEngineOptions } from './leveldb.js';
export { exportChunks, decodeChunk, EXPORT_CHUNK_BYTES_DEFAULT } from './codec.js';
import { ErrorCode, LichenError } from '../errors.js';
import type { Engine, EngineKind } from './types.js';
import { MemoryEngine } from './memory.js';
import { LmdbEngine, holdsLmdb } from './lmdb.js';
import { LevelEngine, holdsLevelDb } from './leveldb.js';

/**
 * Opens the engine a node is configured with; `dir` is where lmdb or leveldb keeps its files
 * (memory ignores it). A directory written by the other on-disk engine is refused, not misread.
 */
export async function openEngine(kind: EngineKind, dir: string): Promise<Engine> {
  switch (kind) {
    case 'lmdb':
      if (holdsLevelDb(dir)) throw foreignEngineError(dir, 'leveldb', kind);
      return LmdbEngine.open({ dir });
    case 'leveldb':
      if (holdsLmdb(dir)) throw foreignEngineError(dir, 'lmdb', kind);
      return LevelEngine.open({ dir });
    case 'memory':
      return new MemoryEngine();
  }
}

function foreignEngineError(dir: string, found: EngineKind, configured: EngineKind): LichenError {
  return new LichenError(
    ErrorCode.InvalidArgument,
    `engine directory ${dir} holds a ${found} engine's data, but this process runs --engine ${configured}: start it with --engine ${found}`,
  );
}

/** Closes an engine, waiting for its files to close (lmdb, leveldb) and its writes to be flushed (leveldb). */
export async function closeEngine(engine: Engine): Promise<void> {
  if (engine instanceof LmdbEngine || engine instanceof LevelEngine) await engine.closeAsync();
  else engine.close();
}
export { ScopedEngine, GROUP_PREFIX_BYTES, GROUP_ZERO, groupPrefix } from './scoped.js';
