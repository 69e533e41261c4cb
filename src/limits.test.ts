// The limits' relations hold, and the wire formats they describe really fit them: the largest
// entry and the fullest batch of tiny entries, encoded as the transport encodes them, fit a frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLichenError } from './errors.js';
import {
  checkLimits,
  peerFrameBytesMax,
  peerFrameHeaderBytes,
  peerSnapshotBytesMax,
  peerSnapshotBytesMaxFor,
  quotaBackendBytesDefault,
  raftAppendBatchBytesMax,
  raftEntryBytesMax,
  raftMessageBytesMax,
  requestBytesMax,
  requestBytesMaxDefault,
} from './limits.js';
import { EntryType, type Entry, type Message } from './raft/types.js';
import { entryBytes, limitBytes } from './raft/storage.js';
import { encodeMessage } from './transport/codec.js';
import { FRAME_HEADER_BYTES } from './transport/frame.js';
import { decodeEnvelope, encodeEnvelope, EnvelopeKind } from './replica/envelope.js';

/** The largest number any varint field may carry, so every field takes its most bytes. */
const HUGE = Number.MAX_SAFE_INTEGER;

function append(entries: Entry[]): Message {
  return { type: 'App', from: HUGE, to: HUGE, term: HUGE, prevLogIndex: HUGE, prevLogTerm: HUGE, commit: HUGE, entries };
}

function frameBytes(m: Message): number {
  return encodeMessage(m, FRAME_HEADER_BYTES).length;
}

test('checkLimits accepts every --max-request-bytes up to requestBytesMax and names the flag beyond it', () => {
  checkLimits({ maxRequestBytes: requestBytesMaxDefault });
  checkLimits({ maxRequestBytes: requestBytesMax });
  assert.throws(
    () => checkLimits({ maxRequestBytes: requestBytesMax + 1 }),
    (error) => isLichenError(error, 'InvalidArgument') && /--max-request-bytes \(67108865\) must be between 1 and 67108864/.test(error.message),
  );
});

test('the frame header in limits.ts is the transport frame header', () => {
  assert.equal(FRAME_HEADER_BYTES, peerFrameHeaderBytes);
});

test('the largest request, wrapped in its proposal envelope, fits one raft entry', () => {
  const envelope = encodeEnvelope({ kind: EnvelopeKind.Mvcc, origin: HUGE, sequence: HUGE, body: new Uint8Array(requestBytesMax) });
  assert.ok(envelope.length <= raftEntryBytesMax, `${envelope.length} > ${raftEntryBytesMax}`);
  assert.equal(decodeEnvelope(envelope).body.length, requestBytesMax);
});

test('an append carrying one entry of raftEntryBytesMax fits a peer frame', () => {
  const entry: Entry = { term: HUGE, index: HUGE, type: EntryType.Normal, data: new Uint8Array(raftEntryBytesMax) };
  const bytes = frameBytes(append([entry]));
  assert.ok(bytes - peerFrameHeaderBytes <= raftMessageBytesMax, `message of ${bytes} bytes`);
  assert.ok(bytes <= peerFrameBytesMax, `frame of ${bytes} > ${peerFrameBytesMax}`);
});

test('the fullest batch the raft core puts in one append, even of empty entries, fits a peer frame', () => {
  for (const dataBytes of [0, 1, 100, 4096]) {
    const count = Math.ceil((2 * raftAppendBatchBytesMax) / entryBytes({ data: new Uint8Array(dataBytes) }));
    const entries: Entry[] = Array.from({ length: count }, () => ({ term: HUGE, index: HUGE, type: EntryType.Normal, data: new Uint8Array(dataBytes) }));
    const batch = limitBytes(entries, raftAppendBatchBytesMax);
    assert.ok(batch.length > 1 && batch.length < entries.length);
    const bytes = frameBytes(append(batch));
    assert.ok(bytes <= peerFrameBytesMax, `${batch.length} entries of ${dataBytes} bytes: frame of ${bytes}`);
    // The core's accounting bounds the encoding: each entry counts for at least what it takes.
    const counted = batch.reduce((total, e) => total + entryBytes(e), 0);
    assert.ok(bytes - peerFrameHeaderBytes - counted <= raftMessageBytesMax - raftAppendBatchBytesMax);
  }
});

test('a member receives every snapshot its quota lets a peer build (a fixed 1 GiB refused one holding 1.5 GiB under the 2 GiB default)', () => {
  const GiB = 1024 ** 3;
  assert.ok(peerSnapshotBytesMax >= 2 * quotaBackendBytesDefault);
  for (const quota of [1024 * 1024, quotaBackendBytesDefault, 8 * GiB]) assert.ok(peerSnapshotBytesMaxFor(quota) >= 2 * quota);
  assert.equal(peerSnapshotBytesMaxFor(-1), Number.MAX_SAFE_INTEGER, 'no quota, no cap');
});
