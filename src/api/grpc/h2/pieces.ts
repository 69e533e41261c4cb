// Memory for large responses, lent to the encoder and given back by the connection once the
// socket has written it, so that the next response writes into the same memory.
//
// Why: a range of 10,000 keys is a 2.8 MB response, encoded into 64 KiB pieces. Allocated for each
// response and dropped after it, those ArrayBuffers are V8 external memory, and their churn is
// what started a member's full collections under range-10000: 2-4 mark-compacts per member in 6 s,
// 60-150 ms each, with a JS heap of only 25-30 MB (PerformanceObserver 'gc' in the members,
// 2026-12-07). Pieces written and given back cost no collection at all.
//
// The contract: a lent piece (or one subarray of it) is handed to one H2Stream once; the
// connection gives its memory back when the socket's write of its last byte completes. A piece
// that is never written (a reset stream, an encoding that failed, a closed connection) is simply
// not given back: the garbage collector takes it, as it took every piece before.

import { grpcResponsePiecesKeptMax } from '../../../limits.js';

/** The size of a lent piece. */
export const RESPONSE_PIECE_BYTES = 64 * 1024;

const free: ArrayBuffer[] = [];
/** The memory of the pieces lent and not given back yet. */
const lent = new WeakSet<ArrayBuffer>();

/** A piece of RESPONSE_PIECE_BYTES, its contents undefined, to be given back by the connection that writes it. */
export function lendPiece(): Buffer {
  const memory = free.pop() ?? Buffer.allocUnsafeSlow(RESPONSE_PIECE_BYTES).buffer;
  lent.add(memory);
  return Buffer.from(memory, 0, RESPONSE_PIECE_BYTES);
}

/** Whether `bytes` lie in a lent piece (so the connection gives it back once written). */
export function isLent(bytes: Uint8Array): boolean {
  return lent.has(bytes.buffer as ArrayBuffer);
}

/** The socket wrote the last byte of this lent memory: it may be lent again. */
export function giveBack(memory: ArrayBuffer): void {
  if (!lent.delete(memory)) return;
  // Beyond the bound, a piece given back is left to the garbage collector.
  if (free.length < grpcResponsePiecesKeptMax) free.push(memory);
}

/** Pieces waiting to be lent again (for tests). */
export function freePieces(): number {
  return free.length;
}
