// Endpoints, connections and the retry policy of the client.
//
// Policy: a call goes to the current endpoint. If it fails in a way another member may not
// (UNAVAILABLE, "not leader", overloaded, timed out), the client moves to the next endpoint and
// tries again, until the retry budget is spent. Reads and other idempotent calls retry on all of
// those. Writes retry only when the server surely did not execute them (refused as "not leader",
// or no connection at all) unless the caller opts in with `retryWrites`: a write whose outcome is
// unknown (timed out, connection lost mid-call) is reported, never silently repeated.
//
// Auth (as etcd's clientv3): with `auth` set, the client logs in on first use and sends the token
// with every call; when a member answers that the token is invalid, expired, issued for an older
// auth state, or missing (auth was enabled since), it logs in again and repeats the call once.
// A cluster with auth disabled answers the login with "authentication is not enabled": the
// client then sends no token.
import { Metadata, type ChannelCredentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { ErrorCode, LichenError } from '../errors.js';
import { etcdClientConstructors } from '../api/grpc/proto.js';
import { describeAttemptFailure, formatDuration, fromGrpcError, needsNewToken, surelyNotExecuted, worthRetrying } from './errors.js';
import { channelCredentials, type ClientTls } from './tls.js';

export type ServiceKey = 'KV' | 'Watch' | 'Lease' | 'Cluster' | 'Maintenance' | 'Health' | 'Auth';

export interface ClientOptions {
  /** host:port of each member's client (gRPC) address. At least one; https:// turns TLS on. */
  endpoints: string[];
  /** TLS towards the members; also on, with the system's CAs, when an endpoint says https://. */
  tls?: ClientTls;
  /** Deadline of one attempt. Default 5000. */
  timeoutMs?: number;
  /** Total time a call may spend retrying across endpoints. Default 10000. */
  retryBudgetMs?: number;
  /** Retry writes even when their outcome is unknown (they may then apply twice). Default false. */
  retryWrites?: boolean;
  /** First pause between rounds over all endpoints; doubles up to retryBackoffMaxMs. Default 50. */
  retryBackoffMs?: number;
  retryBackoffMaxMs?: number;
  /** Log in as this user (etcd authentication). */
  auth?: { user: string; password: string };
  /** Injected clock and sleep, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const TIMEOUT_MS_DEFAULT = 5000;
export const RETRY_BUDGET_MS_DEFAULT = 10_000;
/** A bound on attempts per call, whatever the budget. */
export const ATTEMPTS_MAX = 64;

export interface CallOptions {
  /** Safe to send again after an unknown outcome (reads, deletes of nothing, status...). */
  idempotent: boolean;
  /** Override the client's retryWrites for this call. */
  retryWrites?: boolean;
  /** Send no token (the login itself). */
  anonymous?: boolean;
}

type Clients = Record<ServiceKey, Client>;

export class Transport {
  readonly endpoints: string[];
  readonly timeoutMs: number;
  readonly retryBudgetMs: number;
  private readonly retryWrites: boolean;
  private readonly backoffMs: number;
  private readonly backoffMaxMs: number;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  private readonly connections = new Map<string, Clients>();
  private readonly credentials: ChannelCredentials;
  private current = 0;
  private closed = false;
  private readonly auth: ClientOptions['auth'];
  /** The login in progress or done: resolves to the token (undefined when auth is disabled). */
  private login: Promise<string | undefined> | undefined;

  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) throw new LichenError(ErrorCode.InvalidArgument, 'at least one endpoint is required');
    this.endpoints = options.endpoints.map((e) => e.replace(/^https?:\/\//, ''));
    const https = options.endpoints.some((e) => e.startsWith('https://'));
    this.credentials = channelCredentials(options.tls ?? (https ? {} : undefined));
    this.timeoutMs = options.timeoutMs ?? TIMEOUT_MS_DEFAULT;
    this.retryBudgetMs = options.retryBudgetMs ?? RETRY_BUDGET_MS_DEFAULT;
    this.retryWrites = options.retryWrites ?? false;
    this.backoffMs = options.retryBackoffMs ?? 50;
    this.backoffMaxMs = options.retryBackoffMaxMs ?? 1000;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.auth = options.auth;
  }

  get currentEndpoint(): string {
    return this.endpoints[this.current]!;
  }

  /** Moves to the next endpoint (after a failure that another member may not have). */
  rotate(): void {
    this.current = (this.current + 1) % this.endpoints.length;
  }

  /** Prefer this endpoint from now on (e.g. the leader's). */
  prefer(endpoint: string): void {
    const index = this.endpoints.indexOf(endpoint);
    if (index >= 0) this.current = index;
  }

  clients(endpoint: string = this.currentEndpoint): Clients {
    if (this.closed) throw new LichenError(ErrorCode.Unavailable, 'the client is closed');
    let clients = this.connections.get(endpoint);
    if (!clients) {
      const constructors = etcdClientConstructors();
      const options = { 'grpc.max_receive_message_length': -1 };
      const kv = new constructors.KV(endpoint, this.credentials, options);
      // All services of one endpoint share one HTTP/2 channel.
      const shared = { ...options, channelOverride: kv.getChannel() };
      clients = {
        KV: kv,
        Watch: new constructors.Watch(endpoint, this.credentials, shared),
        Lease: new constructors.Lease(endpoint, this.credentials, shared),
        Cluster: new constructors.Cluster(endpoint, this.credentials, shared),
        Maintenance: new constructors.Maintenance(endpoint, this.credentials, shared),
        Health: new constructors.Health(endpoint, this.credentials, shared),
        Auth: new constructors.Auth(endpoint, this.credentials, shared),
      };
      this.connections.set(endpoint, clients);
    }
    return clients;
  }

  /** Metadata for a call or stream: the token, after logging in when none is held yet. */
  async metadata(): Promise<Metadata> {
    const metadata = new Metadata();
    if (!this.auth) return metadata;
    this.login ??= this.call<{ token: string }>('Auth', 'Authenticate', { name: this.auth.user, password: this.auth.password }, { idempotent: true, anonymous: true }).then(
      (response) => response.token,
      (error: LichenError) => {
        if (error.details.etcdError === 'authNotEnabled') return undefined;
        this.login = undefined;
        throw error;
      },
    );
    const token = await this.login;
    if (token !== undefined) metadata.set('token', token);
    return metadata;
  }

  /** Drops the token a member refused; the next call logs in again. */
  forgetToken(): void {
    this.login = undefined;
  }

  /** One attempt of a unary call on one endpoint. */
  async callOnce<T>(endpoint: string, service: ServiceKey, method: string, request: object, timeoutMs: number, anonymous = false): Promise<T> {
    const client = this.clients(endpoint)[service] as unknown as Record<string, Function>;
    const fn = client[method];
    if (typeof fn !== 'function') throw new LichenError(ErrorCode.Internal, `no method ${service}.${method}`);
    const metadata = anonymous ? new Metadata() : await this.metadata();
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, metadata, { deadline: Date.now() + timeoutMs }, (error: ServiceError | null, response: T) =>
        error ? reject(fromGrpcError(error)) : resolve(response),
      );
    });
  }

  /**
   * A unary call with endpoint failover and retries within the budget. When the budget is spent,
   * or a write's outcome is unknown because no answer came, the error says in one sentence which
   * endpoints were tried and why each failed, and carries `clusterUnavailable: true`.
   */
  async call<T>(service: ServiceKey, method: string, request: object, options: CallOptions): Promise<T> {
    const started = this.now();
    const deadline = started + this.retryBudgetMs;
    const retryUnknown = options.idempotent || (options.retryWrites ?? this.retryWrites);
    let backoff = this.backoffMs;
    let lastError: LichenError | undefined;
    const failures = new Map<string, string>();
    let loggedInAgain = false;
    for (let attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
      const remaining = deadline - this.now();
      if (remaining <= 0) break;
      const endpoint = this.currentEndpoint;
      const attemptMs = Math.min(this.timeoutMs, remaining);
      try {
        return await this.callOnce<T>(endpoint, service, method, request, attemptMs, options.anonymous);
      } catch (error) {
        const failure = fromGrpcError(error);
        lastError = failure;
        // A refused token means the request was not executed: log in again and repeat it once.
        if (this.auth && !options.anonymous && !loggedInAgain && needsNewToken(failure)) {
          loggedInAgain = true;
          this.forgetToken();
          continue;
        }
        if (!worthRetrying(failure)) throw failure;
        failures.set(endpoint, describeAttemptFailure(failure, attemptMs));
        if (!retryUnknown && !surelyNotExecuted(failure)) {
          const answered = failure.details.etcdError !== undefined;
          if (answered) throw new LichenError(failure.code, failure.message, { ...failure.details, outcomeUnknown: true });
          const sentence = `no answer within ${formatDuration(this.now() - started)}, so the write may or may not have been applied: ${this.describeFailures(failures)}`;
          throw new LichenError(failure.code, sentence, { ...failure.details, outcomeUnknown: true, clusterUnavailable: true });
        }
        this.rotate();
        // After a full round over the endpoints, pause before the next round.
        if ((attempt + 1) % this.endpoints.length === 0) {
          await this.sleep(Math.min(backoff, Math.max(0, deadline - this.now())));
          backoff = Math.min(backoff * 2, this.backoffMaxMs);
        }
      }
    }
    throw this.unreachable(started, failures, lastError);
  }

  /**
   * The error for a cluster no endpoint answered since `started`: one sentence naming every
   * endpoint and why it failed (`failures`, by endpoint; see describeAttemptFailure).
   */
  unreachable(started: number, failures: ReadonlyMap<string, string>, lastError?: LichenError): LichenError {
    const sentence = `cannot reach the cluster within ${formatDuration(this.now() - started)}: ${this.describeFailures(failures)}`;
    return new LichenError(lastError?.code ?? ErrorCode.Timeout, sentence, { ...lastError?.details, clusterUnavailable: true });
  }

  /** "a:2379 refused the connection; b:2379 was not tried", every endpoint in order. */
  private describeFailures(failures: ReadonlyMap<string, string>): string {
    return this.endpoints.map((endpoint) => `${endpoint} ${failures.get(endpoint) ?? 'was not tried'}`).join('; ');
  }

  close(): void {
    this.closed = true;
    for (const clients of this.connections.values()) {
      for (const client of Object.values(clients)) client.close();
    }
    this.connections.clear();
  }
}
