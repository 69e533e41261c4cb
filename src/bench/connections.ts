// gRPC channels for the benchmark: a fixed set of KV clients created once, each on its own TCP
// connection, plus leader discovery through Maintenance.Status. Only the etcd v3 API is used, so
// the same code drives etcd and Lichen.
import { makeClientConstructor, Metadata, type ChannelCredentials, type Client, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { withFastKvCodec } from '../api/grpc/kv-codec.js';
import { etcdClientConstructors, serviceDefinition } from '../api/grpc/proto.js';
import { describeAttemptFailure, fromGrpcError } from '../client/errors.js';
import { channelCredentials, type ClientTls } from '../client/tls.js';

/** The largest response we accept; ranges in the benchmark return one key, so this is generous. */
const RECEIVE_MESSAGE_BYTES_MAX = 16 * 1024 * 1024;
const STATUS_TIMEOUT_MS = 3_000;

/**
 * grpc-js shares subchannels (and so TCP connections) between channels that have the same target
 * and options. A local subchannel pool per channel gives each one its own connection, which is
 * what --conns promises.
 */
export const CHANNEL_OPTIONS = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': RECEIVE_MESSAGE_BYTES_MAX,
  'grpc.keepalive_time_ms': 30_000,
};

type Callback<T> = (error: ServiceError | null, response: T) => void;
type UnaryMethod = (request: unknown, metadata: Metadata, options: { deadline: number }, callback: Callback<unknown>) => unknown;

/** One KV channel with its unary methods bound once (not per request). */
export interface KvChannel {
  endpoint: string;
  put(request: unknown, timeoutMs: number): Promise<unknown>;
  range(request: unknown, timeoutMs: number): Promise<unknown>;
  txn(request: unknown, timeoutMs: number): Promise<unknown>;
  close(): void;
}

function bindUnary(client: Client, method: string): (request: unknown, timeoutMs: number) => Promise<unknown> {
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  if (typeof fn !== 'function') throw new Error(`KV client has no method ${method}`);
  const bound = fn.bind(client);
  // One Metadata object for every call: grpc-js only reads it.
  const metadata = new Metadata();
  return (request, timeoutMs) =>
    new Promise((resolve, reject) => {
      bound(request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(error);
        else resolve(response);
      });
    });
}

let fastKvClient: ServiceClientConstructor | undefined;

/**
 * The KV client class with Lichen's own protobuf codec instead of protobufjs, so the benchmark
 * spends its CPU on requests rather than on encoding them (it often shares the machine with the
 * servers it measures). The codec is wire-exact, so etcd is driven the same way.
 */
function fastKvClientConstructor(): ServiceClientConstructor {
  fastKvClient ??= makeClientConstructor(withFastKvCodec(serviceDefinition('etcdserverpb.KV')), 'KV');
  return fastKvClient;
}

export function openKvChannel(endpoint: string, credentials: ChannelCredentials): KvChannel {
  const KV = fastKvClientConstructor();
  const client = new KV(endpoint, credentials, CHANNEL_OPTIONS);
  return {
    endpoint,
    put: bindUnary(client, 'Put'),
    range: bindUnary(client, 'Range'),
    txn: bindUnary(client, 'Txn'),
    close: () => client.close(),
  };
}

/** Opens `count` channels, spread over the endpoints round robin (channel i → endpoint i mod n); TLS when `tls` is given. */
export function openKvChannels(endpoints: readonly string[], count: number, tls?: ClientTls): KvChannel[] {
  const credentials = channelCredentials(tls);
  const channels: KvChannel[] = [];
  for (let i = 0; i < count; i++) channels.push(openKvChannel(endpoints[i % endpoints.length] as string, credentials));
  return channels;
}

export interface EndpointStatus {
  endpoint: string;
  /** The answering member's id (decimal string, as uint64 arrives). */
  memberId?: string;
  /** The leader the member knows of, "0" when none. */
  leaderId?: string;
  /** Why the endpoint did not answer, to follow its address: "refused the connection". */
  error?: string;
}

interface StatusResponse {
  header?: { member_id?: string };
  leader?: string;
}

/** Asks one endpoint for its status. Never throws: failures are reported in `error`. */
export async function endpointStatus(endpoint: string, timeoutMs = STATUS_TIMEOUT_MS, tls?: ClientTls): Promise<EndpointStatus> {
  const { Maintenance } = etcdClientConstructors();
  const client = new Maintenance(endpoint, channelCredentials(tls), { 'grpc.use_local_subchannel_pool': 1 });
  try {
    const status = await new Promise<StatusResponse>((resolve, reject) => {
      const call = (client as unknown as Record<string, UnaryMethod>)['Status'] as UnaryMethod;
      call.call(client, {}, new Metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(error);
        else resolve(response as StatusResponse);
      });
    });
    return { endpoint, memberId: String(status.header?.member_id ?? '0'), leaderId: String(status.leader ?? '0') };
  } catch (error) {
    return { endpoint, error: describeAttemptFailure(fromGrpcError(error), timeoutMs) };
  } finally {
    client.close();
  }
}

/**
 * The endpoint (from the given list) of the member that leads, or undefined when no endpoint
 * answered with a leader that is itself in the list. A member reports the leader's id; the
 * leader is the endpoint whose own member id equals it.
 */
export function pickLeader(statuses: readonly EndpointStatus[]): string | undefined {
  const leaderIds = new Set(statuses.filter((s) => s.leaderId !== undefined && s.leaderId !== '0').map((s) => s.leaderId));
  return statuses.find((s) => s.memberId !== undefined && leaderIds.has(s.memberId))?.endpoint;
}

export async function findLeaderEndpoint(endpoints: readonly string[], timeoutMs = STATUS_TIMEOUT_MS, tls?: ClientTls): Promise<{
  leader: string | undefined;
  statuses: EndpointStatus[];
}> {
  const statuses = await Promise.all(endpoints.map((e) => endpointStatus(e, timeoutMs, tls)));
  return { leader: pickLeader(statuses), statuses };
}
