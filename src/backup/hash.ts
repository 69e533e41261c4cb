// etcd's two hashes of a backend, both CRC-32C (Castagnoli) over every bucket's name followed by
// its keys and values, in bbolt's order:
//   - the Hash RPC (mvcc/backend Hash with DefaultIgnores) leaves out meta/consistent_index,
//     which differs between members that hold the same data (each applies at its own pace);
//   - `etcdctl snapshot status` hashes everything, and also counts the keys and reads the
//     revision of the last pair of the key bucket.
// So a Hash answer and the status hash of a snapshot of the same data never match, in etcd as
// here: they differ by the consistent index's key and value.
import { BoltReader } from '../bbolt/index.js';
import { crc32cUpdate } from '../wal/index.js';
import { Bucket, META_CONSISTENT_INDEX, parseRevisionKey } from './layout.js';
import { renderBackend, type BackendSource, type BucketSink } from './render.js';

/** The Hash RPC's CRC-32C, fed by renderBackend. */
class BackendHasher implements BucketSink {
  private crc = 0;
  private inMeta = false;

  bucket(name: Uint8Array): void {
    this.crc = crc32cUpdate(this.crc, name);
    this.inMeta = Buffer.compare(name, Bucket.meta) === 0;
  }

  put(key: Uint8Array, value: Uint8Array): void {
    if (this.inMeta && Buffer.compare(key, META_CONSISTENT_INDEX) === 0) return;
    this.crc = crc32cUpdate(crc32cUpdate(this.crc, key), value);
  }

  get hash(): number {
    return this.crc;
  }
}

/** The Hash RPC's answer for a source (the caller closes its view). */
export async function backendHash(source: BackendSource, pause?: () => Promise<unknown>): Promise<number> {
  const hasher = new BackendHasher();
  await renderBackend(source, hasher, pause);
  return hasher.hash;
}

/** What `etcdctl snapshot status` reports (clientv3/snapshot Status). */
export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/**
 * Reads a snapshot file as etcdctl does: bbolt's integrity check first (its problems fail the
 * call), then the hash, the last revision of the key bucket, the number of pairs and the size.
 */
export function snapshotStatus(path: string): SnapshotStatus {
  const reader = BoltReader.open(path);
  try {
    const problems = reader.check();
    if (problems.length > 0) {
      throw new Error(`snapshot file integrity check failed. ${problems.length} errors found.\n${problems.join('\n')}`);
    }
    let crc = 0;
    let revision = 0;
    let totalKey = 0;
    for (const name of reader.bucketNames()) {
      crc = crc32cUpdate(crc, name);
      const isKeyBucket = Buffer.compare(name, Bucket.key) === 0;
      for (const pair of reader.bucket(name)!) {
        // bbolt's ForEach gives a nested bucket a nil value: only its name is hashed.
        crc = crc32cUpdate(crc, pair.key);
        if (!pair.isBucket) crc = crc32cUpdate(crc, pair.value);
        if (isKeyBucket) revision = parseRevisionKey(pair.key).main;
        totalKey++;
      }
    }
    return { hash: crc, revision, totalKey, totalSize: reader.sizeBytes };
  } finally {
    reader.close();
  }
}
