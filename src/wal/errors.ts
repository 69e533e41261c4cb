// Damage found on disk. Unlike a torn tail (an unacknowledged write cut short by a crash, which is
// repaired), this means bytes that were once acknowledged are unreadable, so the WAL refuses to
// open rather than silently dropping data: an operator must look (or rebuild the member from its
// peers).

export class WalCorruptError extends Error {
  override readonly name = 'WalCorruptError';

  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`wal corrupt: ${file} at byte offset ${offset}: ${reason}`);
  }
}
