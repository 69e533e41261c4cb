// The bytes inside a raft snapshot: the member table (as JSON) and the whole engine export.
//   u32 length of the JSON header | JSON header | engine export chunks, concatenated
// Engine export records are self-delimiting, so the concatenated chunks decode as one chunk, or,
// when the data is in a file, as pieces cut at record boundaries.
import { MemberTable } from './members.js';
import { assert } from '../errors.js';
import { wholeRecordsBytes } from '../engine/codec.js';
import { ConfChangeType, readSnapshotData, type NodeId, type Snapshot, type SnapshotData, type SnapshotFile } from '../raft/types.js';
import { encodeJson } from './members.js';

interface SnapshotHeader {
  version: 1;
  members: ReturnType<MemberTable['toJSON']>;
}

/** Bytes read from a snapshot file at a time while installing it. */
const FILE_READ_BYTES = 1024 * 1024;

export function encodeSnapshotData(members: MemberTable, engineChunks: Iterable<Uint8Array>): Uint8Array {
  const header: SnapshotHeader = { version: 1, members: members.toJSON() };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([length, json, ...engineChunks]);
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

/** The member table, and the engine export as chunks for the engine's import (read lazily from a file). */
export function decodeSnapshotData(data: SnapshotData): { members: MemberTable; engineChunks: Iterable<Uint8Array> } {
  const length = readSnapshotData(data, 0, 4);
  assert(length.length === 4, 'snapshot data is shorter than its header length');
  const jsonBytes = Buffer.from(length.buffer, length.byteOffset, 4).readUInt32BE(0);
  const json = readSnapshotData(data, 4, jsonBytes);
  assert(json.length === jsonBytes, 'snapshot data is shorter than its header');
  const header = JSON.parse(Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8')) as SnapshotHeader;
  assert(header.version === 1, `snapshot data version ${String(header.version)} is not 1`);
  const engineAt = 4 + jsonBytes;
  const engineChunks = data instanceof Uint8Array ? [data.subarray(engineAt)] : recordChunks(data, engineAt);
  return { members: MemberTable.fromJSON(header.members), engineChunks };
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
