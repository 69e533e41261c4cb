// The two benchmarks that live on gRPC streams, in the spirit of etcd's `benchmark watch-latency`
// and `benchmark lease-keepalive`:
// - watch: W watchers on the whole key space, spread over S Watch streams, while the clients put
//   (at --rate when given). It measures what watchers see: events delivered per second and the
//   delay from a put's send to each watcher's receipt of its event.
// - lease-keepalive: L leases granted first, then kept alive round robin, one keep-alive in flight
//   per client on its own LeaseKeepAlive stream; the leases are revoked at the end.
import { performance } from 'node:perf_hooks';
import type { ClientDuplexStream, Client } from '@grpc/grpc-js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import { fastLeaseClientConstructor } from '../api/grpc/kv-codec.js';
import { channelCredentials } from '../client/tls.js';
import { ErrorCode, LichenError } from '../errors.js';
import { CHANNEL_OPTIONS, type KvChannel } from './connections.js';
import { driveLoad, type LoadOutcome, type LoadSpec } from './driver.js';
import { LatencyHistogram } from './histogram.js';
import { randomKeyPicker, rangeOfKeys } from './keys.js';
import type { BenchOptions } from './options.js';
import { summarizeLatency, type WatchFigures } from './report.js';

/** How long watchers may take to be created, and events to arrive after the last put. */
export const WATCH_SETTLE_MS = 30_000;
/** The drain ends early when no event arrived for this long. */
const WATCH_QUIET_MS = 2_000;
/** The TTL of the benchmark's leases: long enough that none expires between two keep-alives. */
export const BENCH_LEASE_TTL_SECONDS = 300;


type Duplex = ClientDuplexStream<object, Record<string, any>>;

function openStreamClients(service: 'Watch' | 'Lease', endpoints: readonly string[], count: number, options: BenchOptions): Client[] {
  // Keep-alives through Lichen's codec, as KV requests are (see connections.ts): the tool shares
  // the machine with the servers it measures.
  const Ctor = service === 'Lease' ? fastLeaseClientConstructor() : etcdClientConstructors()[service];
  const credentials = channelCredentials(options.tls);
  return Array.from({ length: count }, (_u, i) => new Ctor(endpoints[i % endpoints.length] as string, credentials, CHANNEL_OPTIONS));
}

function openDuplex(client: Client, method: string): Duplex {
  return (client as unknown as Record<string, () => Duplex>)[method]!.call(client);
}

/**
 * Matches watch events to the puts that caused them by revision: an event may arrive before its
 * put's response, so receipts wait for the send time they belong to.
 */
class DeliveryClock {
  readonly delivery = new LatencyHistogram();
  received = 0;
  lastReceiptMs = 0;
  private readonly sentAt = new Map<number, { sentMs: number; receipts: number }>();
  private readonly early = new Map<number, number[]>();

  constructor(private readonly watchers: number) {}

  putAcknowledged(revision: number, sentMs: number): void {
    const early = this.early.get(revision) ?? [];
    this.early.delete(revision);
    for (const receivedMs of early) this.delivery.record((receivedMs - sentMs) * 1000);
    if (early.length < this.watchers) this.sentAt.set(revision, { sentMs, receipts: early.length });
  }

  eventReceived(revision: number, receivedMs: number): void {
    this.received++;
    this.lastReceiptMs = receivedMs;
    const put = this.sentAt.get(revision);
    if (put === undefined) {
      const waiting = this.early.get(revision);
      if (waiting) waiting.push(receivedMs);
      else this.early.set(revision, [receivedMs]);
      return;
    }
    this.delivery.record((receivedMs - put.sentMs) * 1000);
    // Every watcher has it: forget the put, so memory stays bounded by the puts in flight.
    if (++put.receipts === this.watchers) this.sentAt.delete(revision);
  }
}

/** Creates the watchers and resolves once every one is confirmed (or fails with the server's reason). */
function createWatchers(streams: Duplex[], options: BenchOptions, clock: DeliveryClock): Promise<void> {
  const range = rangeOfKeys(0, options.keySpaceSize, options.keySpaceSize, options.keySizeBytes);
  return new Promise((resolve, reject) => {
    let created = 0;
    const timer = setTimeout(() => reject(new LichenError(ErrorCode.Timeout, `only ${created} of ${options.watchers} watchers were created within ${WATCH_SETTLE_MS} ms`)), WATCH_SETTLE_MS);
    for (const stream of streams) {
      stream.on('data', (response: Record<string, any>) => {
        if (response['created'] && ++created === options.watchers) {
          clearTimeout(timer);
          resolve();
        }
        if (response['canceled']) {
          clearTimeout(timer);
          reject(new LichenError(ErrorCode.Unavailable, `a watcher was canceled: ${String(response['cancel_reason'] || 'no reason given')}`));
        }
        const events = response['events'] as Array<{ kv: { mod_revision: string } }> | undefined;
        if (events && events.length > 0) {
          const now = performance.now();
          for (const event of events) clock.eventReceived(Number(event.kv.mod_revision), now);
        }
      });
      stream.on('error', (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
    }
    for (let i = 0; i < options.watchers; i++) {
      streams[i % streams.length]!.write({ create_request: { ...range, start_revision: 0 } });
    }
  });
}

/** Waits until every expected event arrived, none arrived for WATCH_QUIET_MS, or WATCH_SETTLE_MS passed. */
async function drain(clock: DeliveryClock, expected: () => number): Promise<void> {
  const deadline = performance.now() + WATCH_SETTLE_MS;
  while (clock.received < expected() && performance.now() < deadline) {
    const before = clock.received;
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (clock.received === before && performance.now() - clock.lastReceiptMs > WATCH_QUIET_MS) return;
  }
}

export async function runWatchBench(
  options: BenchOptions,
  kv: KvChannel[],
  targets: readonly string[],
  common: Omit<LoadSpec, 'operations' | 'pickOperation' | 'issue'>,
  value: Buffer,
): Promise<{ outcome: LoadOutcome; watch: WatchFigures }> {
  const clients = openStreamClients('Watch', targets, Math.min(options.conns, options.watchStreams), options);
  const streams = Array.from({ length: options.watchStreams }, (_u, s) => openDuplex(clients[s % clients.length]!, 'Watch'));
  const clock = new DeliveryClock(options.watchers);
  try {
    await createWatchers(streams, options, clock);
    const picker = randomKeyPicker(options.keySpaceSize, options.keySizeBytes);
    let acknowledged = 0;
    const firstSendMs = performance.now();
    const outcome = await driveLoad({
      ...common,
      operations: ['put'],
      pickOperation: () => 0,
      issue: async (worker) => {
        const sentMs = performance.now();
        const response = (await kv[worker % kv.length]!.put({ key: picker.next(), value }, options.requestTimeoutMs)) as { header: { revision: string } };
        acknowledged++;
        clock.putAcknowledged(Number(response.header.revision), sentMs);
      },
    });
    await drain(clock, () => acknowledged * options.watchers);
    const seconds = Math.max(0.001, (Math.max(clock.lastReceiptMs, firstSendMs) - firstSendMs) / 1000);
    return {
      outcome,
      watch: {
        watchers: options.watchers,
        streams: options.watchStreams,
        eventsExpected: acknowledged * options.watchers,
        eventsReceived: clock.received,
        eventsPerSecond: Math.round(clock.received / seconds),
        delivery: summarizeLatency(clock.delivery),
      },
    };
  } finally {
    for (const stream of streams) stream.cancel();
    for (const client of clients) client.close();
  }
}

/** One keep-alive stream used as request/response: one keep-alive in flight at a time. */
class KeepAliveStream {
  private readonly stream: Duplex;
  private waiting: { resolve: (ttl: number) => void; reject: (error: Error) => void } | undefined;

  constructor(client: Client) {
    this.stream = openDuplex(client, 'LeaseKeepAlive');
    this.stream.on('data', (response: Record<string, any>) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.resolve(Number(response['TTL']));
    });
    this.stream.on('error', (error: Error) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.reject(error);
    });
  }

  keepAlive(id: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new LichenError(ErrorCode.Timeout, `no keep-alive response within ${timeoutMs} ms`)), timeoutMs);
      this.waiting = {
        resolve: (ttl) => {
          clearTimeout(timer);
          // etcd answers a keep-alive of an unknown or expired lease with TTL 0.
          if (ttl > 0) resolve();
          else reject(new LichenError(ErrorCode.LeaseNotFound, `lease ${id} is gone (keep-alive answered TTL ${ttl})`));
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.stream.write({ ID: id });
    });
  }

  close(): void {
    this.stream.cancel();
  }
}

type UnaryLease = (request: object, options: { deadline: number }, callback: (error: Error | null, response: Record<string, any>) => void) => void;

function leaseUnary(client: Client, method: 'LeaseGrant' | 'LeaseRevoke', request: object, timeoutMs: number): Promise<Record<string, any>> {
  const fn = (client as unknown as Record<string, UnaryLease>)[method]!;
  return new Promise((resolve, reject) =>
    fn.call(client, request, { deadline: Date.now() + timeoutMs }, (error, response) => (error ? reject(error) : resolve(response))),
  );
}

export async function runLeaseKeepAliveBench(
  options: BenchOptions,
  targets: readonly string[],
  common: Omit<LoadSpec, 'operations' | 'pickOperation' | 'issue'>,
): Promise<{ outcome: LoadOutcome; granted: number }> {
  const clients = openStreamClients('Lease', targets, options.conns, options);
  const clientOf = (worker: number): Client => clients[worker % clients.length]!;
  const ids: string[] = [];
  const streams: KeepAliveStream[] = [];
  // Granting and revoking: every lease once, all clients, unmeasured.
  const unmeasured = {
    kind: common.kind,
    phase: 'preload' as const,
    workers: Math.min(options.clients, options.leases),
    total: options.leases,
    operations: ['lease'],
    ...(common.signal ? { signal: common.signal } : {}),
  };
  try {
    const grants = await driveLoad({
      ...unmeasured,
      pickOperation: () => 0,
      issue: async (worker) => ids.push(String((await leaseUnary(clientOf(worker), 'LeaseGrant', { TTL: BENCH_LEASE_TTL_SECONDS, ID: 0 }, options.requestTimeoutMs))['ID'])),
    });
    if (grants.errors > 0) {
      throw new LichenError(ErrorCode.Unavailable, `granting the leases failed: ${grants.errors} of ${options.leases} grants failed (${grants.errorSamples[0]?.message ?? 'unknown error'})`);
    }
    for (let w = 0; w < options.clients; w++) streams.push(new KeepAliveStream(clientOf(w)));
    let next = 0;
    const outcome = await driveLoad({
      ...common,
      operations: ['keepalive'],
      pickOperation: () => 0,
      issue: (worker) => streams[worker]!.keepAlive(ids[next++ % ids.length]!, options.requestTimeoutMs),
    });
    // Leave the cluster as it was: the leases go now, not in BENCH_LEASE_TTL_SECONDS.
    let revoked = 0;
    await driveLoad({ ...unmeasured, pickOperation: () => 0, issue: (worker) => leaseUnary(clientOf(worker), 'LeaseRevoke', { ID: ids[revoked++]! }, options.requestTimeoutMs) });
    return { outcome, granted: ids.length };
  } finally {
    for (const stream of streams) stream.close();
    for (const client of clients) client.close();
  }
}
