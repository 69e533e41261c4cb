// The shapes every HTTP route shares: what a handler gets (RouteContext, RouteDeps) and returns
// (Reply), and a route keyed by path. Kept apart from the route tables so that they can import
// each other's types without a cycle.
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Registry } from '../../metrics.js';
import type { Caller, EtcdBackend } from '../backend.js';
import type { DashboardAssets } from './dashboard/assets.js';
import type { ClusterMonitor } from './dashboard/monitor.js';
import type { DashboardSource } from './dashboard/report.js';
import type { Query } from './codec.js';

export interface RouteContext {
  method: string;
  query: Query;
  /** The content type without parameters, lower case ('' when absent). */
  contentType: string;
  /** Reads the whole body (at most maxRequestBytes, else TooLarge). */
  body(): Promise<Uint8Array>;
  /** Path parameters: the decoded key of /v1/kv/<key>. */
  key?: Uint8Array;
  /**
   * Who sends the request, from its Authorization header (a token from /v1/auth/authenticate)
   * or its verified TLS client certificate; undefined when anonymous. Rejects an invalid token.
   */
  caller(): Promise<Caller | undefined>;
  /** The request's headers (names in lower case). */
  headers: IncomingHttpHeaders;
}

export interface Reply {
  status: number;
  /** Sent as JSON unless `text` is given. */
  json?: unknown;
  text?: string;
  /** Raw bytes (the dashboard's files, a snapshot), sent as they are. */
  body?: Uint8Array | AsyncIterable<Uint8Array>;
  contentType?: string;
  headers?: Record<string, string>;
  /** A long-lived answer (server-sent events): takes over the response instead of a body. */
  stream?: (response: ServerResponse) => void;
}

export interface RouteDeps {
  backend: EtcdBackend;
  registry: Registry;
  /** Bound on the linearizable read /health makes. */
  healthTimeoutMs: number;
  /** A prefix GET returns at most this many keys (with "more": true when cut short). */
  rangeKeysMax: number;
  /** ... and stops once its keys and values pass this many bytes (at least one key; "more": true). */
  responseBytesMax: number;
  /** The dashboard's page, event stream and cluster view; absent on a bare API server. */
  dashboard?: DashboardDeps;
}

export type Handler = (context: RouteContext, deps: RouteDeps) => Promise<Reply>;

/** What the dashboard routes need besides the backend. */
export interface DashboardDeps {
  source: DashboardSource;
  monitor: ClusterMonitor;
  assets: DashboardAssets;
  /** Open event streams (cluster and watch), bounded by eventStreamsMax. */
  openStreams: { count: number };
}

export interface PathRoute {
  /** The exact path, or the part before the key when `keyed`. */
  path: string;
  /** The rest of the path after `path` is a percent-encoded key or id (context.key). */
  keyed: boolean;
  template: string;
  handlers: Readonly<Record<string, Handler>>;
}
