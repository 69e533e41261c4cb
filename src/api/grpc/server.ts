// Starts the client port of a member: the etcd v3 gRPC API over an EtcdBackend, served by our
// gRPC-over-HTTP/2 server (http2-server.ts says why it is not grpc-js's), and on the same port,
// told apart by the first bytes of each connection (h2/sniff.ts), etcd's HTTP/1.1 JSON gateway
// (gateway/server.ts), which runs the same service handlers.
import { status } from '@grpc/grpc-js';
import { errorCodeName } from './h2/frames.js';
import {
  grpcConcurrentStreamsMax,
  grpcConnectionBufferedBytesMax,
  grpcConnectionIdleMsMax,
  grpcConnectionReservedBytesMax,
  grpcConnectionsMax,
  grpcControlFramesUnwrittenMax,
  grpcWorkResetsMax,
  grpcWorkResetsWindowMs,
  grpcHandshakeMsMax,
  grpcPingAckDelayMsMax,
  grpcRequestOverheadBytes,
  grpcStreamWindowBytesMax,
  grpcUnreadResponseBytesMax,
  requestBytesMaxDefault,
} from '../../limits.js';
import type { Registry, RequestHistogram } from '../../metrics.js';
import { ETCD_API_VERSION, type EtcdBackend } from '../backend.js';
import { HEALTH_TIMEOUT_MS_DEFAULT } from '../http/server.js';
import { Gateway } from './gateway/server.js';
import { RequestSizes, type HandlerContext, type Implementation } from './handler.js';
import { GrpcRouter, listenHttp2Grpc } from './http2-server.js';
import type { H2ServerOptions, H2Tls } from './h2/server.js';
import { clusterService } from './cluster.js';
import { kvService } from './kv.js';
import { leaseService } from './lease.js';
import { authService } from './auth.js';
import { electionService } from './election.js';
import { lockService } from './lock.js';
import { healthService, maintenanceService } from './maintenance.js';
import { servedServiceDefinition } from './kv-codec.js';
import type { ServiceName } from './proto.js';
import { watchService } from './watch.js';


/** How long close() lets calls finish before cutting them off. */
export const CLOSE_GRACE_MS = 1000;

/** The HTTP/2 limits (src/limits.ts) for a member whose gRPC messages may be `messageBytesMax` long. */
export function grpcServerLimits(messageBytesMax: number): H2ServerOptions {
  return {
    connectionsMax: grpcConnectionsMax,
    limits: {
      streamsMax: grpcConcurrentStreamsMax,
      streamWindowBytes: grpcStreamWindowBytesMax,
      bufferedBytesMax: grpcConnectionBufferedBytesMax,
      reservedBytesMax: grpcConnectionReservedBytesMax(messageBytesMax),
      handshakeTimeoutMs: grpcHandshakeMsMax,
      idleTimeoutMs: grpcConnectionIdleMsMax,
      pingAckDelayMs: grpcPingAckDelayMsMax,
      workResetsMax: grpcWorkResetsMax,
      workResetsWindowMs: grpcWorkResetsWindowMs,
      controlFramesUnwrittenMax: grpcControlFramesUnwrittenMax,
      unreadResponseBytesMax: grpcUnreadResponseBytesMax,
    },
  };
}

export interface GrpcServerOptions {
  backend: EtcdBackend;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  maxRequestBytes?: number;
  /** Serve TLS (ALPN h2) instead of cleartext HTTP/2. */
  tls?: H2Tls;
  /** Where unary call latencies go, by full method name and status code name. */
  requestSeconds?: RequestHistogram<'method' | 'code'>;
  /** Client connections ended with an HTTP/2 error code, by the code's name. */
  connectionErrors?: { inc(labels: { code: string }): void };
  /** What the gateway's GET /metrics renders (404 without it). */
  registry?: Registry;
}

export interface GrpcServerHandle {
  port: number;
  /** Stops accepting calls; open ones (watch streams included) are cut off after graceMs. */
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServerHandle> {
  const maxRequestBytes = options.maxRequestBytes ?? requestBytesMaxDefault;
  const sizes = new RequestSizes(maxRequestBytes);
  const ctx: HandlerContext = { backend: options.backend, maxRequestBytes, sizeOf: (m) => sizes.sizeOf(m) };
  const messageBytesMax = maxRequestBytes + grpcRequestOverheadBytes;
  const router = new GrpcRouter({
    receiveMessageBytesMax: messageBytesMax,
    onUnaryDone: options.requestSeconds
      ? (path, code, seconds) => options.requestSeconds!.observe({ method: path, code: status[code] ?? String(code) }, seconds)
      : undefined,
  });
  const services: [ServiceName, Implementation][] = [
    ['etcdserverpb.KV', kvService(ctx)],
    ['etcdserverpb.Watch', watchService(ctx)],
    ['etcdserverpb.Lease', leaseService(ctx)],
    ['etcdserverpb.Cluster', clusterService(ctx)],
    ['etcdserverpb.Maintenance', maintenanceService(ctx)],
    ['etcdserverpb.Auth', authService(ctx)],
    ['v3lockpb.Lock', lockService(ctx)],
    ['v3electionpb.Election', electionService(ctx)],
    ['grpc.health.v1.Health', healthService(ctx)],
  ];
  for (const [name, implementation] of services) router.addService(sizes.instrument(servedServiceDefinition(name)), implementation);
  const gateway = new Gateway({
    router,
    backend: options.backend,
    registry: options.registry,
    version: ETCD_API_VERSION,
    healthTimeoutMs: HEALTH_TIMEOUT_MS_DEFAULT,
  });
  const server = await listenHttp2Grpc(router, options.host ?? '127.0.0.1', options.port, {
    ...grpcServerLimits(messageBytesMax),
    http1: (socket, client) => gateway.accept(socket, client),
    tls: options.tls,
    onConnectionError: options.connectionErrors ? (code) => options.connectionErrors!.inc({ code: errorCodeName(code) }) : undefined,
  });
  return {
    port: server.port,
    close: async (graceMs = CLOSE_GRACE_MS) => {
      await Promise.all([server.close(graceMs), gateway.close(graceMs)]);
    },
  };
}
