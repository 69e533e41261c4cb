// Codec micro-benchmark: protobufjs (through proto-loader, as grpc-js used it) against Lichen's
// hand-written KV codec (src/api/grpc/kv-codec.ts), on the messages a KV request handles.
// Prints ONE JSON object: operations per second of each, and ours / protobufjs, measured in the
// same run. Nothing here gates CI.
//
//   node --import tsx scripts/bench-codec.ts           (about 10 s)
//   node --import tsx scripts/bench-codec.ts --quick   (about 1 s, a smoke run)
import type { ServiceDefinition } from '@grpc/grpc-js';
import { KV_MESSAGES } from '../src/api/grpc/kv-codec.js';
import { etcdPackageDefinition } from '../src/api/grpc/proto.js';

const quick = process.argv.includes('--quick');
const PHASE_MS = quick ? 50 : 400;
const WARMUP_MS = quick ? 20 : 150;
const KEY_BYTES = 8;
const VALUE_BYTES = 256;
/** Operations between clock reads, so reading the clock does not dominate fast operations. */
const CLOCK_EVERY = 256;

const kv = etcdPackageDefinition()['etcdserverpb.KV'] as unknown as ServiceDefinition;

// Keeps results reachable so the engine cannot drop the work that produced them.
let sink = 0;

/** Runs `op` for about `ms`; returns operations per second. */
function rate(ms: number, op: () => unknown): number {
  const started = performance.now();
  let ops = 0;
  let elapsed = 0;
  // Bounded by time; the iteration cap guards against a clock that does not advance.
  while (ops < 1e9) {
    for (let i = 0; i < CLOCK_EVERY; i++) {
      const result = op() as { length?: number } | null;
      sink += result === null ? 0 : 1;
    }
    ops += CLOCK_EVERY;
    elapsed = performance.now() - started;
    if (elapsed >= ms) break;
  }
  return (ops * 1000) / elapsed;
}

function compare(protobufjs: () => unknown, ours: () => unknown): { protobufjs: number; lichen: number; ratio: number } {
  rate(WARMUP_MS, protobufjs);
  rate(WARMUP_MS, ours);
  const theirs = rate(PHASE_MS, protobufjs);
  const mine = rate(PHASE_MS, ours);
  return { protobufjs: Math.round(theirs), lichen: Math.round(mine), ratio: Math.round((mine / theirs) * 100) / 100 };
}

const key = Buffer.alloc(KEY_BYTES, 0x6b);
const value = Buffer.alloc(VALUE_BYTES, 0x76);
// Shapes as the handlers (wire.ts) produce them: int64 as numbers.
const header = { cluster_id: 1_234_567_890_123, member_id: 3, revision: 1_000_042, raft_term: 7 };
const keyValue = { key, create_revision: 1_000_001, mod_revision: 1_000_042, version: 12, value, lease: 0 };

const putRequestBytes = kv['Put']!.requestSerialize({ key, value });
const putResponse = { header };
const rangeRequestBytes = kv['Range']!.requestSerialize({ key, serializable: true });
const rangeResponse = { header, kvs: [keyValue], more: false, count: 1 };
// Like the bench tool's txn: a compare on the key's version, then three operations.
const txnRequest = {
  compare: [{ result: 3, target: 0, key, version: -1 }],
  success: [{ request_put: { key, value } }, { request_range: { key } }, { request_delete_range: { key: Buffer.from('other') } }],
  failure: [],
};
const txnRequestBytes = kv['Txn']!.requestSerialize(txnRequest);
const txnResponse = {
  header,
  succeeded: true,
  responses: [{ response_put: { header } }, { response_range: rangeResponse }, { response_delete_range: { header, deleted: 1 } }],
};
const txnResponseBytes = kv['Txn']!.responseSerialize(txnResponse);

const results = {
  settings: { keyBytes: KEY_BYTES, valueBytes: VALUE_BYTES, phaseMs: PHASE_MS, node: process.version },
  decodePutRequest: compare(
    () => kv['Put']!.requestDeserialize(putRequestBytes),
    () => KV_MESSAGES.PutRequest.decode(putRequestBytes),
  ),
  encodePutResponse: compare(
    () => kv['Put']!.responseSerialize(putResponse),
    () => KV_MESSAGES.PutResponse.encode(putResponse),
  ),
  decodeRangeRequest: compare(
    () => kv['Range']!.requestDeserialize(rangeRequestBytes),
    () => KV_MESSAGES.RangeRequest.decode(rangeRequestBytes),
  ),
  encodeRangeResponse1Kv: compare(
    () => kv['Range']!.responseSerialize(rangeResponse),
    () => KV_MESSAGES.RangeResponse.encode(rangeResponse),
  ),
  encodeTxnRequest3Ops: compare(
    () => kv['Txn']!.requestSerialize(txnRequest),
    () => KV_MESSAGES.TxnRequest.encode(txnRequest),
  ),
  decodeTxnRequest3Ops: compare(
    () => kv['Txn']!.requestDeserialize(txnRequestBytes),
    () => KV_MESSAGES.TxnRequest.decode(txnRequestBytes),
  ),
  encodeTxnResponse3Ops: compare(
    () => kv['Txn']!.responseSerialize(txnResponse),
    () => KV_MESSAGES.TxnResponse.encode(txnResponse),
  ),
  decodeTxnResponse3Ops: compare(
    () => kv['Txn']!.responseDeserialize(txnResponseBytes),
    () => KV_MESSAGES.TxnResponse.decode(txnResponseBytes),
  ),
};
if (sink < 0) console.error('unreachable');
console.log(JSON.stringify(results, null, 2));
