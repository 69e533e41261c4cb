// The SHA-256 trailer of a snapshot. etcd's Snapshot RPC sends the backend file and then the
// SHA-256 of everything before it; `etcdctl snapshot save` keeps both, and `etcdctl snapshot
// restore` tells a snapshot with a hash from a bare bbolt file (a copy of a data directory's db)
// by the length alone: whole 512-byte units plus 32 bytes means a trailing hash.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

export const SHA256_BYTES = 32;
export const HASHED_LENGTH_UNIT = 512;

export type SnapshotHash = { kind: 'none' } | { kind: 'ok' } | { kind: 'mismatch'; expected: string; actual: string };

/** Whether the file ends with a SHA-256 and whether it matches the bytes before it (streamed). */
export async function checkSnapshotHash(path: string): Promise<SnapshotHash> {
  const size = (await stat(path)).size;
  if (size % HASHED_LENGTH_UNIT !== SHA256_BYTES) return { kind: 'none' };
  const hash = createHash('sha256');
  let tail = Buffer.alloc(0);
  for await (const chunk of createReadStream(path)) {
    // Hash all but the last 32 bytes seen so far, wherever the chunks split.
    const buffered = Buffer.concat([tail, chunk as Buffer]);
    hash.update(buffered.subarray(0, buffered.length - SHA256_BYTES));
    tail = buffered.subarray(buffered.length - SHA256_BYTES);
  }
  const actual = hash.digest();
  return actual.equals(tail) ? { kind: 'ok' } : { kind: 'mismatch', expected: tail.toString('hex'), actual: actual.toString('hex') };
}
