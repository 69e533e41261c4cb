// Starts the etcd v3 gRPC API over an EtcdBackend.
import { Server, ServerCredentials, status, type ServiceDefinition, type ServiceError, type sendUnaryData } from '@grpc/grpc-js';
import type { Histogram } from '../../metrics.js';
import type { EtcdBackend } from '../backend.js';
import { RequestSizes, type HandlerContext, type Implementation } from './handler.js';
import { clusterService } from './cluster.js';
import { kvService } from './kv.js';
import { leaseService } from './lease.js';
import { authService, healthService, maintenanceService } from './maintenance.js';
import { servedServiceDefinition } from './kv-codec.js';
import type { ServiceName } from './proto.js';
import { watchService } from './watch.js';

/** etcd's default --max-request-bytes. */
export const MAX_REQUEST_BYTES_DEFAULT = 1.5 * 1024 * 1024;
/**
 * etcd lets gRPC receive messages this much larger than --max-request-bytes, so an oversized
 * request reaches the server and gets etcd's own "request is too large" error rather than a
 * transport-level RESOURCE_EXHAUSTED.
 */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** How long close() lets calls finish before cutting them off. */
export const CLOSE_GRACE_MS = 1000;

export interface GrpcServerOptions {
  backend: EtcdBackend;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  maxRequestBytes?: number;
  /** Where unary call latencies go, by full method name and status code name. */
  requestSeconds?: Histogram<'method' | 'code'>;
}

export interface GrpcServerHandle {
  port: number;
  /** Stops accepting calls; open ones (watch streams included) are cut off after graceMs. */
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<GrpcServerHandle> {
  const maxRequestBytes = options.maxRequestBytes ?? MAX_REQUEST_BYTES_DEFAULT;
  const sizes = new RequestSizes();
  const ctx: HandlerContext = { backend: options.backend, maxRequestBytes, sizeOf: (m) => sizes.sizeOf(m) };
  const server = new Server({
    'grpc.max_receive_message_length': maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': -1,
  });
  const services: [ServiceName, Implementation][] = [
    ['etcdserverpb.KV', kvService(ctx)],
    ['etcdserverpb.Watch', watchService(ctx)],
    ['etcdserverpb.Lease', leaseService(ctx)],
    ['etcdserverpb.Cluster', clusterService(ctx)],
    ['etcdserverpb.Maintenance', maintenanceService(ctx)],
    ['etcdserverpb.Auth', authService(ctx)],
    ['grpc.health.v1.Health', healthService(ctx)],
  ];
  for (const [name, implementation] of services) {
    const definition = servedServiceDefinition(name);
    const timed = options.requestSeconds ? timeUnaryCalls(definition, implementation, options.requestSeconds) : implementation;
    server.addService(sizes.instrument(definition), timed);
  }
  const host = options.host ?? '127.0.0.1';
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port}`, ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  return {
    port,
    close: (graceMs = CLOSE_GRACE_MS) =>
      new Promise<void>((resolve) => {
        // Streams (watch, keep-alive) never end on their own: give unary calls a moment, then force.
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/** Wraps every unary method of a service so its latency and outcome are recorded. */
function timeUnaryCalls(definition: ServiceDefinition, implementation: Implementation, histogram: Histogram<'method' | 'code'>): Implementation {
  const timed: Implementation = { ...implementation };
  for (const [name, method] of Object.entries(definition)) {
    const handler = implementation[name];
    if (method.requestStream || method.responseStream || typeof handler !== 'function') continue;
    const unary = handler as (call: unknown, callback: sendUnaryData<unknown>) => void;
    timed[name] = (call: unknown, callback: sendUnaryData<unknown>) => {
      const started = performance.now();
      unary(call, (error: Partial<ServiceError> | null, response?: unknown) => {
        const code = status[error?.code ?? status.OK] ?? String(error?.code);
        histogram.observe((performance.now() - started) / 1000, { method: method.path, code });
        callback(error, response);
      });
    };
  }
  return timed;
}
