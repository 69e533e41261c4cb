// Lease keep-alives over the LeaseKeepAlive stream: one renewal (keepAliveOnce) or continuous
// renewal every interval until stopped or the lease is lost.
import { ErrorCode, LichenError } from '../errors.js';
import { describeAttemptFailure, fromGrpcError } from './errors.js';
import type { Transport } from './transport.js';
import { header, idToWire, num, type Header } from './types.js';

/** Renews a lease once; resolves with its new TTL in seconds (and the answer's header). LeaseNotFound when it is gone. */
export async function keepAliveOnce(transport: Transport, id: bigint): Promise<{ ttl: number; header: Header }> {
  const started = transport.now();
  const failures = new Map<string, string>();
  let lastError: LichenError | undefined;
  // One try per endpoint: a keep-alive is idempotent.
  for (let attempt = 0; attempt < transport.endpoints.length; attempt++) {
    const endpoint = transport.currentEndpoint;
    try {
      const renewed = await renewOnStream(transport, id);
      if (renewed.ttl <= 0) throw new LichenError(ErrorCode.LeaseNotFound, 'etcdserver: requested lease not found');
      return renewed;
    } catch (error) {
      lastError = fromGrpcError(error);
      if (lastError.code !== ErrorCode.Unavailable && lastError.code !== ErrorCode.Timeout) throw lastError;
      failures.set(endpoint, describeAttemptFailure(lastError, transport.timeoutMs));
      transport.rotate();
    }
  }
  throw transport.unreachable(started, failures, lastError);
}

function renewOnStream(transport: Transport, id: bigint): Promise<{ ttl: number; header: Header }> {
  return new Promise((resolve, reject) => {
    const call = (transport.clients().Lease as any).LeaseKeepAlive({ deadline: Date.now() + transport.timeoutMs });
    let settled = false;
    call.on('data', (m: any) => {
      if (settled) return;
      settled = true;
      call.end();
      call.cancel();
      resolve({ ttl: num(m.TTL), header: header(m.header) });
    });
    call.on('error', (error: unknown) => {
      if (!settled) {
        settled = true;
        reject(fromGrpcError(error));
      }
    });
    call.write({ ID: idToWire(id) });
  });
}

export interface KeepAliveOptions {
  /** Renewal period; default a third of the granted TTL (as etcd clients do), at least 500 ms. */
  intervalMs?: number;
  /** Called once when the lease turns out to be gone (expired or revoked). */
  onLost?: () => void;
  /** Called with each new TTL. */
  onRenewed?: (ttlSeconds: number) => void;
}

/** Continuous renewal. Transient failures move to the next endpoint and retry at the next tick. */
export class KeepAlive {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inFlight = false;
  /** The TTL from the last successful renewal (seconds); 0 before the first. */
  lastTtl = 0;
  renewals = 0;

  constructor(
    private readonly transport: Transport,
    readonly id: bigint,
    intervalMs: number,
    private readonly options: KeepAliveOptions,
  ) {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get running(): boolean {
    return !this.stopped;
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.inFlight) return;
    this.inFlight = true;
    try {
      const { ttl } = await keepAliveOnce(this.transport, this.id);
      if (this.stopped) return;
      this.lastTtl = ttl;
      this.renewals++;
      this.options.onRenewed?.(ttl);
    } catch (error) {
      if (error instanceof LichenError && error.code === ErrorCode.LeaseNotFound && !this.stopped) {
        this.stop();
        this.options.onLost?.();
      }
      // Other failures: try again at the next tick.
    } finally {
      this.inFlight = false;
    }
  }
}
