// Reads a bbolt file: its meta, its top-level buckets and their pairs in key order, and bbolt's
// own integrity check (what `etcdctl snapshot status` runs before it reports). Pages are read
// with positioned reads as the walk reaches them, so memory is a few pages per tree level.
// Trailing bytes after the last page (etcd's snapshot hash) are ignored, as bbolt does.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  BUCKET_HEADER_BYTES,
  BUCKET_LEAF_FLAG,
  COUNT_OVERFLOW,
  ELEMENT_BYTES,
  PAGE_BYTES_DEFAULT,
  PAGE_HEADER_BYTES,
  PageFlag,
  formatError,
  pageType,
  readMetaPage,
  readPageHeader,
  toNumber,
  type Meta,
} from './format.js';

export interface BoltPair {
  key: Buffer;
  value: Buffer;
  /** Whether the value is a nested bucket (its header, not data). */
  isBucket: boolean;
}

/** A bucket's root: a page of the file, or the leaf page kept inline in its parent's value. */
type BucketRoot = { page: number } | { inline: Buffer };

/** Page sizes tried for the second meta when the first is damaged (bbolt probes the same way). */
const PROBED_PAGE_SIZES = [4096, 8192, 16384, 32768, 65536, 1024, 2048, 512];

export class BoltReader {
  readonly meta: Meta;
  private readonly fd: number;
  private readonly fileBytes: number;

  private constructor(path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.fileBytes = fstatSync(this.fd).size;
      this.meta = this.readMeta();
      if (this.fileBytes < this.meta.pageCount * this.meta.pageSize) {
        throw formatError(
          `the file is ${this.fileBytes} bytes, shorter than its ${this.meta.pageCount} pages of ${this.meta.pageSize} bytes (truncated?)`,
        );
      }
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
  }

  static open(path: string): BoltReader {
    return new BoltReader(path);
  }

  /** The database size as bbolt reports it (tx.Size): pages in use times the page size. */
  get sizeBytes(): number {
    return this.meta.pageCount * this.meta.pageSize;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The top-level buckets' names, in order. */
  *bucketNames(): Iterable<Buffer> {
    for (const pair of this.pairs({ page: this.meta.root })) {
      if (!pair.isBucket) throw formatError(`the root bucket holds a plain key ${JSON.stringify(pair.key.toString('latin1'))}`);
      yield pair.key;
    }
  }

  /** The pairs of a top-level bucket in key order (nested buckets come as isBucket pairs), or undefined if absent. */
  bucket(name: Uint8Array): Iterable<BoltPair> | undefined {
    for (const pair of this.pairs({ page: this.meta.root })) {
      const order = Buffer.compare(pair.key, name);
      if (order === 0) return pair.isBucket ? this.pairs(bucketRoot(pair.value)) : undefined;
      if (order > 0) return undefined;
    }
    return undefined;
  }

  /** Every pair under a bucket root, depth-first in key order. */
  private *pairs(root: BucketRoot): Iterable<BoltPair> {
    if ('inline' in root) {
      yield* leafPairs(root.inline, 'inline bucket');
      return;
    }
    yield* this.walk(root.page, 0);
  }

  private *walk(pgid: number, depth: number): Iterable<BoltPair> {
    // A sound tree is a few levels deep; a cycle in a damaged file must not recurse forever.
    if (depth > 64) throw formatError(`page ${pgid}: the tree is deeper than 64 levels (a cycle?)`);
    const page = this.readPage(pgid);
    const { flags, count } = readPageHeader(page);
    if (flags & PageFlag.LEAF) {
      yield* leafPairs(page, `page ${pgid}`);
    } else if (flags & PageFlag.BRANCH) {
      for (let i = 0; i < count; i++) {
        const element = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
        yield* this.walk(toNumber(page.readBigUInt64LE(element + 8), 'child page'), depth + 1);
      }
    } else {
      throw formatError(`page ${pgid}: invalid type: ${pageType(flags)}`);
    }
  }

  /** A page with its overflow pages, checked to be in the file and to name itself. */
  private readPage(pgid: number): Buffer {
    if (pgid >= this.meta.pageCount) throw formatError(`page ${pgid}: out of bounds: ${this.meta.pageCount}`);
    const head = this.readBytes(pgid * this.meta.pageSize, this.meta.pageSize);
    const header = readPageHeader(head);
    if (header.id !== pgid) throw formatError(`page ${pgid}: the page says it is page ${header.id}`);
    if (header.overflow === 0) return head;
    if (pgid + header.overflow >= this.meta.pageCount) {
      throw formatError(`page ${pgid}: ${header.overflow} overflow pages run past the end (${this.meta.pageCount} pages)`);
    }
    return this.readBytes(pgid * this.meta.pageSize, (header.overflow + 1) * this.meta.pageSize);
  }

  private readBytes(offset: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const n = readSync(this.fd, buffer, read, length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return read === length ? buffer : buffer.subarray(0, read);
  }

  private readMeta(): Meta {
    const first = readMetaPage(this.readBytes(0, PAGE_BYTES_DEFAULT));
    const pageSizes = typeof first === 'string' ? PROBED_PAGE_SIZES : [first.pageSize];
    let best = typeof first === 'string' ? undefined : first;
    for (const pageSize of pageSizes) {
      const second = readMetaPage(this.readBytes(pageSize, pageSize));
      if (typeof second === 'string' || second.pageSize !== pageSize) continue;
      if (best === undefined || second.txid > best.txid) best = second;
      break;
    }
    if (best === undefined) throw formatError(`not a bbolt file: ${typeof first === 'string' ? first : 'no valid meta page'}`);
    return best;
  }

  /**
   * bbolt's Tx.Check: every page below the high water mark is reachable exactly once or free,
   * every bucket page is a branch or leaf, and keys ascend. Returns the problems found, in
   * bbolt's words; an empty list means the file is sound.
   */
  check(): string[] {
    const problems: string[] = [];
    const { pageCount, freelist } = this.meta;
    const freed = new Uint8Array(pageCount);
    const reachable = new Uint8Array(pageCount);
    reachable[0] = reachable[1] = 1;
    if (freelist !== undefined) {
      const page = this.readPage(freelist);
      const header = readPageHeader(page);
      for (let i = 0; i <= header.overflow; i++) reachable[freelist + i] = 1;
      for (const id of freelistIds(page)) {
        if (id >= pageCount) problems.push(`page ${id}: freed page out of bounds: ${pageCount}`);
        else if (freed[id]) problems.push(`page ${id}: already freed`);
        else freed[id] = 1;
      }
    }
    this.checkTree({ page: this.meta.root }, reachable, freed, problems);
    // Without a stored freelist bbolt rebuilds one from the unreachable pages: none can be lost.
    if (freelist !== undefined) {
      for (let id = 0; id < pageCount; id++) if (!reachable[id] && !freed[id]) problems.push(`page ${id}: unreachable unfreed`);
    }
    return problems;
  }

  private checkTree(root: BucketRoot, reachable: Uint8Array, freed: Uint8Array, problems: string[]): void {
    const children: Buffer[] = [];
    let previous: Buffer | undefined;
    const visitLeaf = (page: Buffer, where: string): void => {
      for (const pair of leafPairs(page, where)) {
        if (previous !== undefined && Buffer.compare(previous, pair.key) >= 0) problems.push(`${where}: keys out of order`);
        previous = pair.key;
        if (pair.isBucket) children.push(pair.value);
      }
    };
    if ('inline' in root) {
      visitLeaf(root.inline, 'inline bucket');
    } else {
      const visit = (pgid: number, depth: number): void => {
        if (depth > 64) throw formatError(`page ${pgid}: the tree is deeper than 64 levels (a cycle?)`);
        const page = this.readPage(pgid);
        const { flags, count, overflow } = readPageHeader(page);
        let seen = false;
        for (let i = 0; i <= overflow; i++) {
          if (reachable[pgid + i]) {
            problems.push(`page ${pgid + i}: multiple references`);
            seen = true;
          }
          reachable[pgid + i] = 1;
        }
        // Walking a page twice would repeat its problems, and a cycle would never end.
        if (seen) return;
        if (freed[pgid]) problems.push(`page ${pgid}: reachable freed`);
        if (flags & PageFlag.LEAF) {
          visitLeaf(page, `page ${pgid}`);
        } else if (flags & PageFlag.BRANCH) {
          for (let i = 0; i < count; i++) visit(toNumber(page.readBigUInt64LE(PAGE_HEADER_BYTES + i * ELEMENT_BYTES + 8), 'child page'), depth + 1);
        } else {
          problems.push(`page ${pgid}: invalid type: ${pageType(flags)}`);
        }
      };
      visit(root.page, 0);
    }
    for (const header of children) this.checkTree(bucketRoot(header), reachable, freed, problems);
  }
}

function bucketRoot(header: Buffer): BucketRoot {
  if (header.length < BUCKET_HEADER_BYTES) throw formatError(`a bucket header of ${header.length} bytes (expected ${BUCKET_HEADER_BYTES})`);
  const root = toNumber(header.readBigUInt64LE(0), 'bucket root');
  return root === 0 ? { inline: header.subarray(BUCKET_HEADER_BYTES) } : { page: root };
}

function* leafPairs(page: Buffer, where: string): Iterable<BoltPair> {
  if (page.length < PAGE_HEADER_BYTES) throw formatError(`${where}: shorter than a page header`);
  const { flags, count } = readPageHeader(page);
  if (!(flags & PageFlag.LEAF)) throw formatError(`${where}: invalid type: ${pageType(flags)} (expected leaf)`);
  for (let i = 0; i < count; i++) {
    const element = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
    if (element + ELEMENT_BYTES > page.length) throw formatError(`${where}: element ${i} is past the page's end`);
    const start = element + page.readUInt32LE(element + 4);
    const keyBytes = page.readUInt32LE(element + 8);
    const valueBytes = page.readUInt32LE(element + 12);
    if (start + keyBytes + valueBytes > page.length) throw formatError(`${where}: element ${i} is past the page's end`);
    yield {
      key: page.subarray(start, start + keyBytes),
      value: page.subarray(start + keyBytes, start + keyBytes + valueBytes),
      isBucket: (page.readUInt32LE(element) & BUCKET_LEAF_FLAG) !== 0,
    };
  }
}

function* freelistIds(page: Buffer): Iterable<number> {
  let count = readPageHeader(page).count;
  let offset = PAGE_HEADER_BYTES;
  if (count === COUNT_OVERFLOW) {
    count = toNumber(page.readBigUInt64LE(offset), 'freelist count');
    offset += 8;
  }
  if (offset + count * 8 > page.length) throw formatError(`the freelist of ${count} pages is longer than its page`);
  for (let i = 0; i < count; i++) yield toNumber(page.readBigUInt64LE(offset + i * 8), 'free page');
}
