// Adapts the Lichen client SDK (src/client) to the CliClient view the commands use. The SDK is
// imported lazily: `lichen help` and usage errors should not pay for loading gRPC.
import { ErrorCode, isLichenError } from '../errors.js';
import { EventType, type Event, type RangeRequest, type ResponseOp, type TxnRequest, type TxnResponse } from '../mvcc/types.js';
import type { LichenClient, OpResult, TxnResult } from '../client/index.js';
import type { CliClient, CliWatchCreate, CliWatchSink, ClientOptions, EndpointStatus, Exact } from './client-port.js';

export async function openSdkClient(options: ClientOptions): Promise<CliClient> {
  const sdk = await import('../client/index.js');
  // --timeout bounds the whole command: attempts on every endpoint and the pauses between them.
  const client = new sdk.LichenClient({ endpoints: options.endpoints, timeoutMs: options.timeoutMs, retryBudgetMs: options.timeoutMs, auth: options.auth, tls: options.tls });
  const describe = (error: unknown) => sdk.describeAttemptFailure(sdk.fromGrpcError(error), options.timeoutMs);
  return new SdkCliClient(client, options.endpoints, describe);
}

type CompareWire = Parameters<ReturnType<LichenClient['txn']>['if']>[number];
type OpWire = Parameters<ReturnType<LichenClient['txn']>['then']>[number];

const COMPARE_FIELD = ['version', 'create_revision', 'mod_revision', 'value', 'lease'] as const;

/** The SDK's txn builder takes wire-shaped compares and ops; build them from the store's types. */
function compareToWire(compare: Exact<TxnRequest>['compare'][number]): CompareWire {
  const operand = [compare.version, compare.createRevision, compare.modRevision, compare.value, compare.lease][compare.target];
  const wire: Record<string, unknown> = {
    key: Buffer.from(compare.key),
    target: compare.target,
    result: compare.result,
    [COMPARE_FIELD[compare.target]]: compare.target === 3 ? Buffer.from(compare.value ?? new Uint8Array()) : String(operand ?? 0),
  };
  if (compare.rangeEnd !== undefined) wire.range_end = Buffer.from(compare.rangeEnd);
  return { wire };
}

function opToWire(op: Exact<TxnRequest>['success'][number]): OpWire {
  if ('requestRange' in op) {
    const r = op.requestRange;
    return {
      writes: false,
      wire: {
        request_range: {
          key: Buffer.from(r.key),
          range_end: r.rangeEnd === undefined ? undefined : Buffer.from(r.rangeEnd),
          limit: r.limit ?? 0,
          revision: r.revision ?? 0,
          keys_only: r.keysOnly ?? false,
          count_only: r.countOnly ?? false,
        },
      },
    };
  }
  if ('requestPut' in op) {
    const r = op.requestPut;
    return {
      writes: true,
      wire: {
        request_put: { key: Buffer.from(r.key), value: Buffer.from(r.value ?? new Uint8Array()), lease: String(r.lease ?? 0), prev_kv: r.prevKv ?? false },
      },
    };
  }
  if ('requestDeleteRange' in op) {
    const r = op.requestDeleteRange;
    return {
      writes: true,
      wire: {
        request_delete_range: {
          key: Buffer.from(r.key),
          range_end: r.rangeEnd === undefined ? undefined : Buffer.from(r.rangeEnd),
          prev_kv: r.prevKv ?? false,
        },
      },
    };
  }
  const nested = op.requestTxn;
  const writes = [...nested.success, ...nested.failure].some((o) => opToWire(o).writes);
  return {
    writes,
    wire: {
      request_txn: {
        compare: nested.compare.map((c) => compareToWire(c).wire),
        success: nested.success.map((o) => opToWire(o).wire),
        failure: nested.failure.map((o) => opToWire(o).wire),
      },
    },
  };
}

function txnFromSdk(result: TxnResult): Exact<TxnResponse> & { header: TxnResult['header'] } {
  return { header: result.header, succeeded: result.succeeded, responses: result.results.map(opFromSdk) };
}

function opFromSdk(result: OpResult): Exact<ResponseOp> {
  switch (result.type) {
    case 'range':
      return { responseRange: result.range };
    case 'put':
      return { responsePut: result.put };
    case 'delete':
      return { responseDeleteRange: result.delete };
    case 'txn':
      return { responseTxn: txnFromSdk(result.txn) };
  }
}

const SORT_TARGETS = ['key', 'version', 'create', 'mod', 'value'] as const;

class SdkCliClient implements CliClient {
  constructor(
    private readonly client: LichenClient,
    private readonly endpoints: readonly string[],
    /** Why a call to one endpoint failed, as a phrase ("refused the connection"). */
    private readonly describeFailure: (error: unknown) => string,
  ) {}

  range(r: RangeRequest) {
    return this.client.get(Buffer.from(r.key), {
      ...(r.rangeEnd === undefined ? {} : { rangeEnd: Buffer.from(r.rangeEnd) }),
      revision: r.revision ?? 0,
      limit: r.limit ?? 0,
      serializable: r.serializable ?? false,
      keysOnly: r.keysOnly ?? false,
      countOnly: r.countOnly ?? false,
      ...(r.sortOrder ? { sort: { target: SORT_TARGETS[r.sortTarget ?? 0], order: r.sortOrder === 2 ? 'descend' : 'ascend' } as const } : {}),
    });
  }

  put(r: Parameters<CliClient['put']>[0]) {
    return this.client.put(Buffer.from(r.key), Buffer.from(r.value ?? new Uint8Array()), { lease: r.lease ?? 0, prevKv: r.prevKv ?? false });
  }

  deleteRange(r: Parameters<CliClient['deleteRange']>[0]) {
    return this.client.delete(Buffer.from(r.key), {
      ...(r.rangeEnd === undefined ? {} : { rangeEnd: Buffer.from(r.rangeEnd) }),
      prevKv: r.prevKv ?? false,
    });
  }

  async txn(r: Exact<TxnRequest>) {
    const result = await this.client
      .txn()
      .if(...r.compare.map(compareToWire))
      .then(...r.success.map(opToWire))
      .else(...r.failure.map(opToWire))
      .commit();
    return txnFromSdk(result);
  }

  async compact(r: { revision: number; physical?: boolean }) {
    return { header: await this.client.compact(r.revision, { physical: r.physical ?? false }) };
  }

  async watch(r: CliWatchCreate, sink: CliWatchSink) {
    const watcher = this.client.watch(Buffer.from(r.key), {
      ...(r.rangeEnd === undefined ? {} : { rangeEnd: Buffer.from(r.rangeEnd) }),
      ...(r.startRevision ? { startRevision: r.startRevision } : {}),
      prevKv: r.prevKv ?? false,
      onEvents: (batch) => {
        const events: Exact<Event>[] = batch.events.map((e) => ({
          type: e.type === 'put' ? EventType.PUT : EventType.DELETE,
          kv: e.kv,
          ...(e.prevKv ? { prevKv: e.prevKv } : {}),
        }));
        if (events.length > 0) sink.onEvents(events, batch.revision, batch.header);
      },
      onError: (error) => sink.onEnd(error),
    });
    return { cancel: () => watcher.cancel() };
  }

  async leaseGrant(ttlSeconds: number) {
    const r = await this.client.leaseGrant(ttlSeconds);
    return { header: r.header, ID: r.id, TTL: r.ttl };
  }

  async leaseRevoke(id: bigint) {
    return { header: await this.client.leaseRevoke(id) };
  }

  async leaseKeepAliveOnce(id: bigint) {
    try {
      const renewed = await this.client.leaseKeepAliveOnce(id);
      return { header: renewed.header, ID: id, TTL: renewed.ttl };
    } catch (error) {
      // A lease that is gone is an answer, not a failure: the command reports it as expired.
      if (isLichenError(error, ErrorCode.LeaseNotFound)) return { ID: id, TTL: 0 };
      throw error;
    }
  }

  async leaseTimeToLive(id: bigint, keys: boolean) {
    const r = await this.client.leaseTimeToLive(id, { keys });
    return { header: r.header, ID: r.id, TTL: r.ttl, grantedTTL: r.grantedTtl, keys: r.keys };
  }

  async leaseLeases() {
    return this.client.leases();
  }

  async memberList() {
    return this.client.memberList();
  }

  memberAdd(peerURLs: string[], isLearner: boolean) {
    return this.client.memberAdd(peerURLs, { isLearner });
  }

  async memberRemove(id: bigint) {
    return this.client.memberRemove(id);
  }

  async memberUpdate(id: bigint, peerURLs: string[]) {
    return this.client.memberUpdate(id, peerURLs);
  }

  async memberPromote(id: bigint) {
    return this.client.memberPromote(id);
  }

  async statusAll(): Promise<EndpointStatus[]> {
    return Promise.all(
      this.endpoints.map(async (endpoint) => {
        try {
          return { endpoint, status: await this.client.status(endpoint) };
        } catch (error) {
          return { endpoint, error: this.describeFailure(error) };
        }
      }),
    );
  }

  snapshot(signal: AbortSignal): AsyncIterable<Uint8Array> {
    return this.client.snapshot({ signal });
  }

  async moveLeader(targetId: bigint) {
    return { header: await this.client.moveLeader(targetId) };
  }

  async alarmList() {
    return this.client.alarmList();
  }

  async alarmDisarm() {
    return this.client.alarmDisarm();
  }

  async close() {
    this.client.close();
  }
}
