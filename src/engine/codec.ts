// The export format shared by every engine, so a snapshot taken from lmdb installs into memory
// and back. A chunk is a sequence of records: u32 key length, key, u32 value length, value
// (big-endian). A record never spans two chunks.
import type { ReadView } from './types.js';

export const EXPORT_CHUNK_BYTES_DEFAULT = 1 << 20;

export function* exportChunks(view: ReadView, chunkBytes = EXPORT_CHUNK_BYTES_DEFAULT): Iterable<Uint8Array> {
  let parts: Uint8Array[] = [];
  let size = 0;
  for (const [key, value] of view.range({ start: new Uint8Array(0) })) {
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(key.length);
    const valueHeader = Buffer.allocUnsafe(4);
    valueHeader.writeUInt32BE(value.length);
    parts.push(header, key, valueHeader, value);
    size += 8 + key.length + value.length;
    if (size >= chunkBytes) {
      yield Buffer.concat(parts);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts);
}

/** exportChunks of a view opened when the first chunk is pulled, and closed after the last one. */
export function* exportView(open: () => ReadView, chunkBytes?: number): Iterable<Uint8Array> {
  const view = open();
  try {
    yield* exportChunks(view, chunkBytes);
  } finally {
    view.close();
  }
}

export function* decodeChunk(chunk: Uint8Array): Iterable<[Uint8Array, Uint8Array]> {
  const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let offset = 0;
  const take = (): Uint8Array => {
    if (offset + 4 > buf.length) throw new Error(`engine export: truncated record at byte ${offset}`);
    const length = buf.readUInt32BE(offset);
    offset += 4;
    if (offset + length > buf.length) throw new Error(`engine export: truncated record at byte ${offset}`);
    const bytes = buf.subarray(offset, offset + length);
    offset += length;
    return bytes;
  };
  while (offset < buf.length) {
    const key = take();
    yield [key, take()];
  }
}

/** How many leading bytes of `bytes` are whole records (a chunk may be cut there and decoded). */
export function wholeRecordsBytes(bytes: Uint8Array): number {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = 0;
  for (;;) {
    if (end + 4 > view.length) return end;
    const valueAt = end + 4 + view.readUInt32BE(end);
    if (valueAt + 4 > view.length) return end;
    const next = valueAt + 4 + view.readUInt32BE(valueAt);
    if (next > view.length) return end;
    end = next;
  }
}
