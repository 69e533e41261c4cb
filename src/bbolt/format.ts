// The on-disk format of go.etcd.io/bbolt (version 2), the B+tree file etcd keeps its backend in.
// Everything is little-endian (bbolt writes its structs in the machine's order; etcd runs on
// little-endian machines, and so do we).
//
// A file is a sequence of pages of one size (the meta says which, 4096 on Linux). Every page
// starts with a 16-byte header: id u64, flags u16, count u16, overflow u32. A node larger than
// one page takes 1 + overflow consecutive pages, with one header.
//   - pages 0 and 1: meta pages (two, so a writer can alternate; the valid one with the higher
//     txid wins). The meta: magic u32, version u32, pageSize u32, flags u32, root bucket (root
//     pgid u64, sequence u64), freelist pgid u64, pgid u64 (high water mark: the page count),
//     txid u64, checksum u64 (FNV-1a 64 of the 56 bytes before it).
//   - branch pages: count elements of 16 bytes (pos u32, ksize u32, pgid u64), then the keys;
//     pos is counted from the element's own first byte. Each element's key is its child's
//     smallest key.
//   - leaf pages: count elements of 16 bytes (flags u32, pos u32, ksize u32, vsize u32), then
//     key and value bytes; flag 1 marks a value that is a nested bucket.
//   - a freelist page: count page ids (u64); a count of 0xFFFF means the real count is the first
//     u64 and the ids follow it.
// A bucket is a B+tree; its value in the parent is a 16-byte header (root pgid, sequence). Root 0
// means an inline bucket: its only leaf page follows the header inside the value.
// The root bucket (the meta's) holds the top-level buckets, each a leaf element with flag 1.

import { ErrorCode, LichenError } from '../errors.js';

export const MAGIC = 0xed0cdaed;
export const VERSION = 2;
/** os.Getpagesize() on Linux, what etcd's bbolt files use. */
export const PAGE_BYTES_DEFAULT = 4096;

export const PAGE_HEADER_BYTES = 16;
export const ELEMENT_BYTES = 16;
export const BUCKET_HEADER_BYTES = 16;
const META_CHECKSUM_OFFSET = 56;
const META_BYTES = 64;

export const PageFlag = { BRANCH: 0x01, LEAF: 0x02, META: 0x04, FREELIST: 0x10 } as const;
export const BUCKET_LEAF_FLAG = 0x01;
/** bbolt's pgidNoFreelist: the freelist is not stored and must be rebuilt by scanning. */
export const NO_FREELIST = 0xffff_ffff_ffff_ffffn;
/** A page's count field is 16 bits; a larger freelist stores its count in its first id slot. */
export const COUNT_OVERFLOW = 0xffff;

export interface PageHeader {
  id: number;
  flags: number;
  count: number;
  overflow: number;
}

export function writePageHeader(page: Buffer, header: PageHeader): void {
  page.writeBigUInt64LE(BigInt(header.id), 0);
  page.writeUInt16LE(header.flags, 8);
  page.writeUInt16LE(header.count, 10);
  page.writeUInt32LE(header.overflow, 12);
}

export function readPageHeader(page: Buffer): PageHeader {
  return {
    id: toNumber(page.readBigUInt64LE(0), 'page id'),
    flags: page.readUInt16LE(8),
    count: page.readUInt16LE(10),
    overflow: page.readUInt32LE(12),
  };
}

export function pageType(flags: number): string {
  if (flags & PageFlag.BRANCH) return 'branch';
  if (flags & PageFlag.LEAF) return 'leaf';
  if (flags & PageFlag.META) return 'meta';
  if (flags & PageFlag.FREELIST) return 'freelist';
  return `unknown<${flags.toString(16).padStart(2, '0')}>`;
}

export interface Meta {
  pageSize: number;
  flags: number;
  /** The root bucket's root page. */
  root: number;
  /** The freelist page, or undefined when the file does not store one (NO_FREELIST). */
  freelist: number | undefined;
  /** The number of pages in use: every page id is below it. */
  pageCount: number;
  txid: number;
}

/** Writes a meta page (header and meta, checksummed) into `page`, which is pageSize long. */
export function writeMetaPage(page: Buffer, id: number, meta: Meta): void {
  page.fill(0);
  writePageHeader(page, { id, flags: PageFlag.META, count: 0, overflow: 0 });
  const m = page.subarray(PAGE_HEADER_BYTES, PAGE_HEADER_BYTES + META_BYTES);
  m.writeUInt32LE(MAGIC, 0);
  m.writeUInt32LE(VERSION, 4);
  m.writeUInt32LE(meta.pageSize, 8);
  m.writeUInt32LE(meta.flags, 12);
  m.writeBigUInt64LE(BigInt(meta.root), 16);
  m.writeBigUInt64LE(0n, 24); // the root bucket's sequence
  m.writeBigUInt64LE(meta.freelist === undefined ? NO_FREELIST : BigInt(meta.freelist), 32);
  m.writeBigUInt64LE(BigInt(meta.pageCount), 40);
  m.writeBigUInt64LE(BigInt(meta.txid), 48);
  m.writeBigUInt64LE(fnv1a64(m.subarray(0, META_CHECKSUM_OFFSET)), META_CHECKSUM_OFFSET);
}

/** The meta in a meta page, or why it is not a valid one (bbolt's own three checks). */
export function readMetaPage(page: Buffer): Meta | string {
  if (page.length < PAGE_HEADER_BYTES + META_BYTES) return 'the file is shorter than a meta page';
  const m = page.subarray(PAGE_HEADER_BYTES, PAGE_HEADER_BYTES + META_BYTES);
  if (m.readUInt32LE(0) !== MAGIC) return 'invalid database (no bbolt magic number)';
  if (m.readUInt32LE(4) !== VERSION) return `version mismatch (bbolt format ${m.readUInt32LE(4)}, expected ${VERSION})`;
  if (m.readBigUInt64LE(META_CHECKSUM_OFFSET) !== fnv1a64(m.subarray(0, META_CHECKSUM_OFFSET))) return 'checksum error';
  const freelist = m.readBigUInt64LE(32);
  return {
    pageSize: m.readUInt32LE(8),
    flags: m.readUInt32LE(12),
    root: toNumber(m.readBigUInt64LE(16), 'root page'),
    freelist: freelist === NO_FREELIST ? undefined : toNumber(freelist, 'freelist page'),
    pageCount: toNumber(m.readBigUInt64LE(40), 'page count'),
    txid: toNumber(m.readBigUInt64LE(48), 'txid'),
  };
}

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;

/** FNV-1a, 64 bits (Go's hash/fnv New64a): the meta page checksum. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let hash = FNV64_OFFSET;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * FNV64_PRIME) & MASK_64;
  return hash;
}

export function toNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(`${what} ${value} is out of range`);
  return Number(value);
}

/** A file that is not a bbolt file, or a damaged one: bad input, not a bug of ours. */
export function formatError(message: string): LichenError {
  return new LichenError(ErrorCode.InvalidArgument, `bbolt: ${message}`);
}
