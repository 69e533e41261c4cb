// etcd's Lock service (v3lockpb.Lock): Lock waits until the caller holds the named lock and
// answers the key that stands for holding it; Unlock deletes that key. The recipe is in
// concurrency.ts.
import { signalOf, unary, type HandlerContext, type Implementation } from './handler.js';
import { lock, unlock } from './concurrency.js';
import { encodeHeader, toSafeInt, type WireBytes, type WireLong } from './wire.js';

export function lockService(ctx: HandlerContext): Implementation {
  const { backend } = ctx;
  return {
    Lock: unary<{ name: WireBytes; lease: WireLong }>(ctx, async (w, caller, call) => {
      const lease = toSafeInt(w.lease, 'lease');
      const held = await lock({ backend, caller, signal: signalOf(call) }, w.name, lease);
      return { header: encodeHeader(held.header), key: held.key };
    }, { unknownCode: true }),
    Unlock: unary<{ key: WireBytes }>(ctx, async (w, caller) => {
      return { header: encodeHeader(await unlock({ backend, caller }, w.key)) };
    }, { unknownCode: true }),
  };
}
