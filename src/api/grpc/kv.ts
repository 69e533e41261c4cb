// The KV service: Range, Put, DeleteRange, Txn, Compact.
import { ErrorCode, LichenError } from '../../errors.js';
import { unary, type HandlerContext, type Implementation } from './handler.js';
import { RangeResponseWriter } from './kv-codec.js';
import {
  decodeDeleteRangeRequest,
  decodePutRequest,
  decodeRangeRequest,
  decodeTxnRequest,
  encodeDeleteRangeResponse,
  encodeHeader,
  encodePutResponse,
  encodeTxnResponse,
  toSafeInt,
  type WireDeleteRangeRequest,
  type WireLong,
  type WirePutRequest,
  type WireRangeRequest,
  type WireTxnRequest,
} from './wire.js';

export function kvService(ctx: HandlerContext): Implementation {
  const { backend } = ctx;
  return {
    Range: unary<WireRangeRequest>(ctx, async (w, caller) => {
      // The key-values are encoded as the store reads them (see RangeResponseWriter); a backend
      // that answers with them instead gets them encoded here.
      const writer = new RangeResponseWriter();
      const response = await backend.range(decodeRangeRequest(w), caller, writer);
      for (const kv of response.kvs) writer.addKeyValue(kv);
      return writer.finish(encodeHeader(response.header), response.more, response.count);
    }),
    Put: unary<WirePutRequest>(ctx, async (w, caller) => {
      const response = await backend.put(decodePutRequest(w), caller);
      return encodePutResponse(response, encodeHeader(response.header));
    }),
    DeleteRange: unary<WireDeleteRangeRequest>(ctx, async (w, caller) => {
      const response = await backend.deleteRange(decodeDeleteRangeRequest(w), caller);
      return encodeDeleteRangeResponse(response, encodeHeader(response.header));
    }),
    Txn: unary<WireTxnRequest>(ctx, async (w, caller) => {
      const response = await backend.txn(decodeTxnRequest(w), caller);
      return encodeTxnResponse(response, encodeHeader(response.header));
    }),
    Compact: unary<{ revision: WireLong; physical: boolean }>(ctx, async (w, caller) => {
      const revision = toSafeInt(w.revision, 'revision');
      if (revision <= 0) {
        // etcd compacting at <= 0 reports the revision as already compacted.
        throw new LichenError(ErrorCode.Compacted, 'compaction revision must be positive');
      }
      const response = await backend.compact({ revision, physical: w.physical ?? false }, caller);
      return { header: encodeHeader(response.header) };
    }),
  };
}
