// Member and cluster ids. etcd derives them by hashing; so do we, so that every member of a new
// cluster computes the same ids without talking. Ids are kept below 2^53 so they survive
// JavaScript numbers and JSON (etcd's are full uint64; clients treat them as opaque).
import type { PeerSpec } from './config.js';

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;
const MASK_53 = (1n << 53n) - 1n;

/** FNV-1a over UTF-8 text, reduced to a positive safe integer. */
export function hashToId(text: string): number {
  let hash = FNV_OFFSET;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash = ((hash ^ BigInt(byte)) * FNV_PRIME) & MASK_64;
  }
  const id = Number(hash & MASK_53);
  return id === 0 ? 1 : id;
}

export function memberIdOf(peer: PeerSpec, clusterToken: string): number {
  return hashToId(`member\0${peer.name}\0${peer.peerAddress}\0${clusterToken}`);
}

export function clusterIdOf(initialCluster: PeerSpec[], clusterToken: string): number {
  const members = initialCluster.map((p) => `${p.name}=${p.peerAddress}`).sort();
  return hashToId(`cluster\0${members.join(',')}\0${clusterToken}`);
}

export { formatId } from '../ids.js';
