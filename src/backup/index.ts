// Backups in etcd 3.4's file format: Lichen's state rendered as etcd's bbolt backend (the
// Snapshot and Hash RPCs, `lichen snapshot save`), the status etcdctl reports for such a file,
// and such a file, from Lichen or from etcd, read back as Lichen's state (`lichen snapshot
// restore`). The bbolt format itself is src/bbolt; Lichen's own state, src/mvcc.
import { BoltWriter, type BoltFileSummary } from '../bbolt/index.js';
import { renderBackend, type BackendSource } from './render.js';

export { renderBackend, type BackendSource, type BucketSink } from './render.js';
export { backendHash, snapshotStatus, type SnapshotStatus } from './hash.js';
export { readEtcdBackend, type EtcdBackendContents } from './read.js';
export { checkSnapshotHash, HASHED_LENGTH_UNIT, SHA256_BYTES, type SnapshotHash } from './trailer.js';

/** Renders the source into a new bbolt file at `path` (replacing any file there). */
export async function writeBackendFile(source: BackendSource, path: string, pause?: () => Promise<unknown>): Promise<BoltFileSummary> {
  const writer = BoltWriter.create(path);
  try {
    await renderBackend(source, writer, pause);
    return writer.finish();
  } finally {
    writer.close();
  }
}
