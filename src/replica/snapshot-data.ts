// The bytes inside a raft snapshot. Two kinds share one header:
//   u32 length of the JSON header | JSON header | engine export chunks, concatenated
// - version 1, a whole snapshot: the member table and the engine export. A snapshot sent to a peer
//   (and installed there), a new group's first snapshot and `lichen snapshot restore`'s are whole.
// - version 2, a reference: the member table only. A member's own snapshots are references: the
//   engine itself durably holds the state at or after the snapshot's index (the snapshot is taken
//   only after an engine sync), as etcd's bbolt backend with its consistent index does, so taking
//   one copies nothing. When raft sends a snapshot to a peer, a whole one is made then, from an
//   engine view of what the sender has applied (streamSnapshotData; see Snapshots.send).
// Engine export records are self-delimiting, so the concatenated chunks decode as one chunk, or,
// when the data is in a file, as pieces cut at record boundaries.
import { MemberTable } from './members.js';
import { assert } from '../errors.js';
import { wholeRecordsBytes } from '../engine/codec.js';
import { ConfChangeType, readSnapshotData, type NodeId, type Snapshot, type SnapshotData, type SnapshotFile } from '../raft/types.js';
import { encodeJson } from './members.js';
import type { ProposalResultsJson } from './proposal-results.js';

const WHOLE = 1;
const REFERENCE = 2;

interface SnapshotHeader {
  version: typeof WHOLE | typeof REFERENCE;
  members: ReturnType<MemberTable['toJSON']>;
  /** A whole snapshot sent to a peer: the recent proposals' results as of its index (see proposal-results.ts). */
  results?: ProposalResultsJson;
}

/** Bytes read from a snapshot file at a time while installing it. */
const FILE_READ_BYTES = 1024 * 1024;

function encodeHeader(version: SnapshotHeader['version'], members: MemberTable, results?: ProposalResultsJson): Buffer {
  const header: SnapshotHeader = { version, members: members.toJSON(), ...(results ? { results } : {}) };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([length, json]);
}

/** A whole snapshot's data, in memory (a new group's first snapshot: an empty or restored engine). */
export function encodeSnapshotData(members: MemberTable, engineChunks: Iterable<Uint8Array>): Uint8Array {
  return Buffer.concat([encodeHeader(WHOLE, members), ...engineChunks]);
}

/**
 * A whole snapshot's data as chunks: the header, then the engine's export as it is pulled (bounded
 * memory). Pulling the first chunk also pulls the export's first, so the member table and the
 * engine's view are taken at the same moment.
 */
export function* streamSnapshotData(members: MemberTable, engineChunks: Iterable<Uint8Array>, results?: ProposalResultsJson): Iterable<Uint8Array> {
  const engine = engineChunks[Symbol.iterator]();
  try {
    const first = engine.next();
    yield encodeHeader(WHOLE, members, results);
    for (let chunk = first; !chunk.done; chunk = engine.next()) yield chunk.value;
  } finally {
    engine.return?.();
  }
}

/** A reference snapshot's data: the member table, and no engine data (see the file comment). */
export function encodeSnapshotReference(members: MemberTable): Uint8Array {
  return encodeHeader(REFERENCE, members);
}

/** A member a new group starts with: its id in the group, its name and the peer address of its process. */
export interface GroupMember {
  id: NodeId;
  name: string;
  peerAddress: string;
}

/**
 * A new group's first snapshot (index 1, term 1, as every member of the group makes it alike):
 * `members` as its voters, and the state its machine starts with.
 */
export function firstSnapshot(members: readonly GroupMember[], engineChunks: Iterable<Uint8Array>): Snapshot & { data: Uint8Array } {
  const table = new MemberTable();
  for (const { id, name, peerAddress } of members) {
    table.applyConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: encodeJson({ name, peerAddress }) });
  }
  const voters = members.map((m) => m.id);
  return { metadata: { index: 1, term: 1, conf: { voters, learners: [] } }, data: encodeSnapshotData(table, engineChunks) };
}

/**
 * The member table, and the engine export as chunks for the engine's import (read lazily from a
 * file); `engineChunks` is undefined for a reference snapshot, whose data is the engine itself.
 * `results`: what a snapshot sent to a peer carries of the recent proposals' results.
 */
export function decodeSnapshotData(data: SnapshotData): {
  members: MemberTable;
  engineChunks: Iterable<Uint8Array> | undefined;
  results: ProposalResultsJson | undefined;
} {
  const length = readSnapshotData(data, 0, 4);
  assert(length.length === 4, 'snapshot data is shorter than its header length');
  const jsonBytes = Buffer.from(length.buffer, length.byteOffset, 4).readUInt32BE(0);
  const json = readSnapshotData(data, 4, jsonBytes);
  assert(json.length === jsonBytes, 'snapshot data is shorter than its header');
  const header = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8')) as SnapshotHeader;
  assert(header.version === WHOLE || header.version === REFERENCE, `snapshot data version ${String(header.version)} is not ${WHOLE} or ${REFERENCE}`);
  const members = MemberTable.fromJSON(header.members);
  const engineAt = 4 + jsonBytes;
  if (header.version === REFERENCE) {
    assert(data.byteLength === engineAt, 'a reference snapshot holds no engine data');
    return { members, engineChunks: undefined, results: header.results };
  }
  const engineChunks = data instanceof Uint8Array ? [data.subarray(engineAt)] : recordChunks(data, engineAt);
  return { members, engineChunks, results: header.results };
}

/** The engine export in a snapshot file, read a piece at a time and cut where records end. */
function* recordChunks(file: SnapshotFile, from: number): Iterable<Uint8Array> {
  let carried: Uint8Array = new Uint8Array(0);
  for (let at = from; at < file.byteLength; ) {
    const piece = file.read(at, FILE_READ_BYTES);
    at += piece.length;
    const bytes = carried.length > 0 ? Buffer.concat([carried, piece]) : piece;
    const whole = wholeRecordsBytes(bytes);
    if (whole > 0) yield bytes.subarray(0, whole);
    carried = bytes.subarray(whole);
  }
  assert(carried.length === 0, 'snapshot data ends inside an engine record');
}
