export type { Engine, EngineKind, RangeOptions, ReadView, WriteOp } from './types.js';
export { MemoryEngine } from './memory.js';
export { exportChunks, decodeChunk, EXPORT_CHUNK_BYTES_DEFAULT } from './codec.js';
