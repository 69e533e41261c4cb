// Writes a bbolt file front to back from sorted input, in memory bounded by a few pages per tree
// level: top-level buckets in ascending name order, keys in ascending order within each.
//
// Each bucket's B+tree is built bottom-up. Leaf pages are filled in key order and written as soon
// as the next pair would not fit; each written page hands its first key and page id to the level
// above, which fills branch pages the same way. When a bucket ends, each level's last page is
// written and the single page left at the top is the root. A pair larger than a page gets a page
// of its own that overflows into the following pages, as bbolt does. The root bucket (one leaf
// element per bucket) is built the same way after the last bucket, then an empty freelist page,
// then both meta pages at the front of the file. Pages are written in id order, so the file
// grows sequentially and is exactly pageCount pages long.
//
// Every bucket gets a page of its own (bbolt would keep a small bucket inline in its parent's
// leaf); both are valid bbolt files and read the same.
import { closeSync, openSync, writeSync } from 'node:fs';
import { assert } from '../errors.js';
import { bboltKeyBytesMax, bboltValueBytesMax } from '../limits.js';
import {
  BUCKET_HEADER_BYTES,
  BUCKET_LEAF_FLAG,
  COUNT_OVERFLOW,
  ELEMENT_BYTES,
  PAGE_BYTES_DEFAULT,
  PAGE_HEADER_BYTES,
  PageFlag,
  formatError,
  writeMetaPage,
  writePageHeader,
} from './format.js';

/** Written pages are collected up to this size, then written with one call. */
const WRITE_BATCH_BYTES = 1 << 20;

interface LeafEntry {
  flags: number;
  key: Uint8Array;
  value: Uint8Array;
}

interface BranchEntry {
  key: Uint8Array;
  pgid: number;
}

/** The page being filled at one level of a tree: leaves at level 0, branches above. */
class PendingNode {
  readonly leaves: LeafEntry[] = [];
  readonly branches: BranchEntry[] = [];
  bytes = PAGE_HEADER_BYTES;

  constructor(readonly isLeaf: boolean) {}

  get count(): number {
    return this.isLeaf ? this.leaves.length : this.branches.length;
  }

  get firstKey(): Uint8Array {
    return this.isLeaf ? this.leaves[0]!.key : this.branches[0]!.key;
  }
}

/** One B+tree under construction. */
class TreeBuilder {
  private readonly levels: PendingNode[] = [new PendingNode(true)];
  /** Whether a level has written a page already (then its last page is not the root). */
  private readonly flushed: boolean[] = [false];
  private lastKey: Uint8Array | undefined;

  constructor(private readonly file: BoltWriter) {}

  put(entry: LeafEntry): void {
    assert(this.lastKey === undefined || Buffer.compare(this.lastKey, entry.key) < 0, 'bbolt writer: keys must be added in strictly ascending order');
    this.lastKey = entry.key;
    this.add(0, ELEMENT_BYTES + entry.key.length + entry.value.length, entry);
  }

  private add(level: number, bytes: number, entry: LeafEntry | BranchEntry): void {
    const node = this.levels[level]!;
    if (node.count > 0 && (node.bytes + bytes > this.file.pageSize || node.count === COUNT_OVERFLOW)) this.flush(level);
    const target = this.levels[level]!;
    if (target.isLeaf) target.leaves.push(entry as LeafEntry);
    else target.branches.push(entry as BranchEntry);
    target.bytes += bytes;
  }

  /** Writes the level's page and hands its first key to the level above. */
  private flush(level: number): void {
    const node = this.levels[level]!;
    const pgid = this.file.writeNode(node);
    this.flushed[level] = true;
    this.levels[level] = new PendingNode(node.isLeaf);
    if (this.levels[level + 1] === undefined) {
      this.levels.push(new PendingNode(false));
      this.flushed.push(false);
    }
    const key = node.firstKey;
    this.add(level + 1, ELEMENT_BYTES + key.length, { key, pgid });
  }

  /** Writes what is left, bottom-up, and returns the root page id. */
  finish(): number {
    for (let level = 0; ; level++) {
      const isTop = level === this.levels.length - 1;
      if (isTop && !this.flushed[level]) return this.file.writeNode(this.levels[level]!);
      this.flush(level);
    }
  }
}

export interface BoltWriterOptions {
  pageSize?: number;
}

export interface BoltFileSummary {
  pageSize: number;
  pageCount: number;
  sizeBytes: number;
}

export class BoltWriter {
  readonly pageSize: number;
  private readonly fd: number;
  private nextPage = 2; // pages 0 and 1 are the metas, written last
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private readonly rootTree: TreeBuilder;
  private bucketTree: TreeBuilder | undefined;
  private bucketName: Uint8Array | undefined;
  private lastBucketName: Uint8Array | undefined;
  private done = false;

  private constructor(path: string, options: BoltWriterOptions) {
    this.pageSize = options.pageSize ?? PAGE_BYTES_DEFAULT;
    assert(this.pageSize >= 512 && this.pageSize % 512 === 0, `bbolt page size ${this.pageSize}`);
    this.fd = openSync(path, 'w', 0o600);
    this.rootTree = new TreeBuilder(this);
  }

  /** Creates (or truncates) the file at `path`. */
  static create(path: string, options: BoltWriterOptions = {}): BoltWriter {
    return new BoltWriter(path, options);
  }

  /** Bytes of pages written so far (the file's size once finished, less the last pages). */
  get bytesWritten(): number {
    return this.nextPage * this.pageSize;
  }

  /** Starts the next top-level bucket; names must ascend. Ends the previous bucket. */
  bucket(name: Uint8Array): void {
    this.checkOpen();
    this.endBucket();
    if (name.length === 0) throw formatError('a bucket name must not be empty');
    assert(
      this.lastBucketName === undefined || Buffer.compare(this.lastBucketName, name) < 0,
      'bbolt writer: buckets must be added in strictly ascending name order',
    );
    this.bucketName = this.lastBucketName = Uint8Array.from(name);
    this.bucketTree = new TreeBuilder(this);
  }

  /** Adds a pair to the current bucket; keys must ascend. The bytes are not copied. */
  put(key: Uint8Array, value: Uint8Array): void {
    this.checkOpen();
    assert(this.bucketTree !== undefined, 'bbolt writer: put() before bucket()');
    if (key.length === 0) throw formatError('a key must not be empty');
    if (key.length > bboltKeyBytesMax) throw formatError(`a key of ${key.length} bytes is over bbolt's ${bboltKeyBytesMax}`);
    if (value.length > bboltValueBytesMax) throw formatError(`a value of ${value.length} bytes is over bbolt's ${bboltValueBytesMax}`);
    this.bucketTree.put({ flags: 0, key, value });
  }

  /** Writes the rest of the file and closes it. */
  finish(): BoltFileSummary {
    this.checkOpen();
    try {
      this.endBucket();
      const root = this.rootTree.finish();
      const freelist = this.writeFreelist();
      this.writeBatch();
      const pageCount = this.nextPage;
      const metas = Buffer.alloc(2 * this.pageSize);
      for (const id of [0, 1]) {
        const page = metas.subarray(id * this.pageSize, (id + 1) * this.pageSize);
        // bbolt's init gives meta page i txid i; the higher one is current. Both describe the
        // same tree, so either is a valid starting point.
        writeMetaPage(page, id, { pageSize: this.pageSize, flags: 0, root, freelist, pageCount, txid: id });
      }
      writeSync(this.fd, metas, 0, metas.length, 0);
      return { pageSize: this.pageSize, pageCount, sizeBytes: pageCount * this.pageSize };
    } finally {
      this.close();
    }
  }

  /** Closes the file without finishing it (the caller deletes it). Idempotent. */
  close(): void {
    if (this.done) return;
    this.done = true;
    closeSync(this.fd);
  }

  /** Serializes one node into its page(s), queues them for writing, returns the first page id. */
  writeNode(node: PendingNode): number {
    const pages = Math.ceil(node.bytes / this.pageSize);
    const buffer = Buffer.alloc(pages * this.pageSize);
    const id = this.nextPage;
    writePageHeader(buffer, {
      id,
      flags: node.isLeaf ? PageFlag.LEAF : PageFlag.BRANCH,
      count: node.count,
      overflow: pages - 1,
    });
    let data = PAGE_HEADER_BYTES + node.count * ELEMENT_BYTES;
    for (let i = 0; i < node.count; i++) {
      const element = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
      if (node.isLeaf) {
        const { flags, key, value } = node.leaves[i]!;
        buffer.writeUInt32LE(flags, element);
        buffer.writeUInt32LE(data - element, element + 4);
        buffer.writeUInt32LE(key.length, element + 8);
        buffer.writeUInt32LE(value.length, element + 12);
        buffer.set(key, data);
        buffer.set(value, data + key.length);
        data += key.length + value.length;
      } else {
        const { key, pgid } = node.branches[i]!;
        buffer.writeUInt32LE(data - element, element);
        buffer.writeUInt32LE(key.length, element + 4);
        buffer.writeBigUInt64LE(BigInt(pgid), element + 8);
        buffer.set(key, data);
        data += key.length;
      }
    }
    this.queue(buffer, pages);
    return id;
  }

  private endBucket(): void {
    if (this.bucketTree === undefined) return;
    const header = Buffer.alloc(BUCKET_HEADER_BYTES); // root pgid, then sequence 0
    header.writeBigUInt64LE(BigInt(this.bucketTree.finish()), 0);
    this.rootTree.put({ flags: BUCKET_LEAF_FLAG, key: this.bucketName!, value: header });
    this.bucketTree = undefined;
  }

  private writeFreelist(): number {
    const page = Buffer.alloc(this.pageSize);
    const id = this.nextPage;
    writePageHeader(page, { id, flags: PageFlag.FREELIST, count: 0, overflow: 0 });
    this.queue(page, 1);
    return id;
  }

  private queue(buffer: Buffer, pages: number): void {
    this.nextPage += pages;
    this.batch.push(buffer);
    this.batchBytes += buffer.length;
    if (this.batchBytes >= WRITE_BATCH_BYTES) this.writeBatch();
  }

  private writeBatch(): void {
    if (this.batch.length === 0) return;
    const bytes = Buffer.concat(this.batch, this.batchBytes);
    const offset = this.nextPage * this.pageSize - bytes.length;
    for (let written = 0; written < bytes.length; ) {
      written += writeSync(this.fd, bytes, written, bytes.length - written, offset + written);
    }
    this.batch = [];
    this.batchBytes = 0;
  }

  private checkOpen(): void {
    assert(!this.done, 'bbolt writer: used after finish() or close()');
  }
}
