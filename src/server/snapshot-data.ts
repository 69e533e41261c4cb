// The bytes inside a raft snapshot: the member table (as JSON) and the whole engine export.
//   u32 length of the JSON header | JSON header | engine export chunks, concatenated
// Engine export records are self-delimiting, so the concatenated chunks decode as one chunk.
import { MemberTable } from './members.js';
import { assert } from '../errors.js';

interface SnapshotHeader {
  version: 1;
  members: ReturnType<MemberTable['toJSON']>;
}

export function encodeSnapshotData(members: MemberTable, engineChunks: Iterable<Uint8Array>): Uint8Array {
  const header: SnapshotHeader = { version: 1, members: members.toJSON() };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([length, json, ...engineChunks]);
}

export function decodeSnapshotData(data: Uint8Array): { members: MemberTable; engineData: Uint8Array } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  assert(buf.length >= 4, 'snapshot data is shorter than its header length');
  const jsonBytes = buf.readUInt32BE(0);
  assert(buf.length >= 4 + jsonBytes, 'snapshot data is shorter than its header');
  const header = JSON.parse(buf.subarray(4, 4 + jsonBytes).toString('utf8')) as SnapshotHeader;
  assert(header.version === 1, `snapshot data version ${String(header.version)} is not 1`);
  return { members: MemberTable.fromJSON(header.members), engineData: buf.subarray(4 + jsonBytes) };
}
