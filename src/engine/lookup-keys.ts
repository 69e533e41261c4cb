// Buffers for keys that are built only to be looked up. A get composes the stored form of its key
// (the group's prefix and the caller's key, then lmdb's own prefix); nothing keeps that buffer
// after the get returns (lmdb copies the key into its own, the overlay and the inner engine only
// read it), so the same buffer can serve every get of that length. A range of 10,000 keys reads
// 10,000 records, and each read made three such buffers before this.

/** Keys longer than this get a buffer of their own each time (revision keys are 13 to 18 bytes). */
const REUSED_KEY_BYTES_MAX = 64;

export class LookupKeys {
  private readonly byLength: Buffer[] = [];

  /** A buffer of exactly `length` bytes, valid until the next call for that length: fill it, look it up, drop it. */
  of(length: number): Buffer {
    if (length > REUSED_KEY_BYTES_MAX) return Buffer.allocUnsafe(length);
    return (this.byLength[length] ??= Buffer.allocUnsafeSlow(length));
  }
}
