// A watcher that survives endpoint failures: it remembers the revision after the last one it
// delivered and, when its stream breaks, re-creates the watch there on the next endpoint, so the
// consumer sees every event exactly once and in order. A compacted resume point ends the watcher
// with a Compacted error (the events in between are gone; the caller must re-read). A watch no
// endpoint confirms within the client's retry budget, or that loses every endpoint for
// WATCH_RECONNECTS_MAX reconnects in a row, ends with the client's "cannot reach the cluster"
// sentence.
import { Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { ErrorCode, LichenError } from '../errors.js';
import { describeAttemptFailure, fromGrpcError, needsNewToken, refusalOf } from './errors.js';
import type { Transport } from './transport.js';
import { header, prefixEnd, toBuffer, num, watchEvent, type Bytes, type Header, type WatchEvent } from './types.js';

export interface WatchOptions {
  /** Watch [key, rangeEnd). */
  rangeEnd?: Bytes;
  /** Watch every key starting with key. */
  prefix?: boolean;
  /** First revision to deliver (inclusive); default: changes after now. */
  startRevision?: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
  progressNotify?: boolean;
  /** Deliver batches to this callback instead of the async iterator. */
  onEvents?: (batch: WatchBatch) => void;
  /** Called once when the watcher ends with an error (with onEvents; iterators get it thrown). */
  onError?: (error: LichenError) => void;
}

export interface WatchBatch {
  /** The revision the batch brings the watcher to. */
  revision: number;
  /** The header of the watch response that brought the batch. */
  header: Header;
  events: WatchEvent[];
}

/** Batches buffered for a slow iterator before the stream is paused (backpressure to the server). */
export const WATCH_BUFFER_BATCHES_MAX = 1024;
/** Consecutive failed reconnects before the watcher gives up. */
export const WATCH_RECONNECTS_MAX = 100;

type WatchCall = ClientDuplexStream<object, any>;

export class Watcher implements AsyncIterable<WatchBatch> {
  /** The next revision we want from the server: one past the last delivered or known-complete revision. */
  private nextRevision: number;
  private call: WatchCall | undefined;
  private readonly buffer: WatchBatch[] = [];
  private waiter: ((result: IteratorResult<WatchBatch>) => void) | undefined;
  private waiterReject: ((error: unknown) => void) | undefined;
  private failure: LichenError | undefined;
  private ended = false;
  private failedReconnects = 0;
  /** Since when the watch has had no confirmed stream (its creation, or the first failed reconnect in a row). */
  private failingSince: number;
  /** Why each endpoint failed since then. */
  private readonly failures = new Map<string, string>();
  private endpoint: string;
  private readonly createdWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private everCreated = false;
  /** How many times the watch was (re)created on a stream; tests and metrics read it. */
  creations = 0;

  constructor(
    private readonly transport: Transport,
    private readonly key: Buffer,
    private readonly options: WatchOptions,
  ) {
    this.nextRevision = options.startRevision ?? 0;
    this.failingSince = transport.now();
    this.endpoint = transport.currentEndpoint;
    this.connect();
  }

  /** The revision of the last batch or progress notice seen. */
  get revision(): number {
    return Math.max(0, this.nextRevision - 1);
  }

  /** Resolves once the server confirmed the watch (the first time). */
  ready(): Promise<void> {
    if (this.everCreated) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.createdWaiters.push({ resolve, reject }));
  }

  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.call?.cancel();
    this.call = undefined;
    this.waiter?.({ value: undefined, done: true });
    this.waiter = undefined;
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return {
      next: () => {
        const batch = this.buffer.shift();
        if (batch) {
          if (this.buffer.length < WATCH_BUFFER_BATCHES_MAX / 2) this.call?.resume();
          return Promise.resolve({ value: batch, done: false });
        }
        if (this.failure) return Promise.reject(this.failure);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = resolve;
          this.waiterReject = reject;
        });
      },
      return: () => {
        this.cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private connect(): void {
    if (this.ended) return;
    // The token (when the client logs in) travels in the stream's metadata.
    this.transport.metadata().then(
      (metadata) => this.open(metadata),
      (error: unknown) => this.fail(fromGrpcError(error)),
    );
  }

  private open(metadata: Metadata): void {
    if (this.ended) return;
    let call: WatchCall;
    try {
      metadata.set('hasleader', 'true');
      this.endpoint = this.transport.currentEndpoint;
      call = (this.transport.clients(this.endpoint).Watch as any).Watch(metadata) as WatchCall;
    } catch (error) {
      return this.fail(fromGrpcError(error));
    }
    this.call = call;
    const filters = [...(this.options.noPut ? [0] : []), ...(this.options.noDelete ? [1] : [])];
    const rangeEnd = this.options.prefix ? prefixEnd(this.key) : this.options.rangeEnd;
    call.write({
      create_request: {
        key: this.key,
        range_end: rangeEnd === undefined ? undefined : toBuffer(rangeEnd),
        start_revision: this.nextRevision,
        prev_kv: this.options.prevKv ?? false,
        filters,
        progress_notify: this.options.progressNotify ?? false,
      },
    });
    call.on('data', (message: any) => {
      if (call === this.call) this.onMessage(message);
    });
    call.on('error', (error: unknown) => {
      if (call === this.call) this.reconnect(fromGrpcError(error));
    });
    call.on('end', () => {
      if (call === this.call) this.reconnect(new LichenError(ErrorCode.Unavailable, 'watch stream ended'));
    });
  }

  private onMessage(m: any): void {
    const revision = num(m.header?.revision);
    if (m.created) {
      if (m.canceled) {
        const refusal = refusalOf(m.cancel_reason || 'watch refused');
        if (needsNewToken(refusal) && this.failedReconnects === 0) {
          // The stream's token was refused: log in again and open a new stream (once in a row).
          this.transport.forgetToken();
          return this.reconnect(refusal);
        }
        return this.fail(refusal);
      }
      this.creations++;
      this.failedReconnects = 0;
      this.failures.clear();
      // With no start revision the watch starts after the server's current revision.
      if (this.nextRevision === 0) this.nextRevision = revision + 1;
      this.everCreated = true;
      for (const w of this.createdWaiters.splice(0)) w.resolve();
      return;
    }
    if (m.canceled) {
      const compactRevision = num(m.compact_revision);
      if (compactRevision > 0) {
        return this.fail(
          new LichenError(ErrorCode.Compacted, 'etcdserver: mvcc: required revision has been compacted', { compactRevision }),
        );
      }
      // Canceled by the server (e.g. we read too slowly): resume where we were.
      return this.reconnect(new LichenError(ErrorCode.Unavailable, m.cancel_reason || 'watch canceled by the server'));
    }
    const events: WatchEvent[] = (m.events ?? []).map(watchEvent);
    if (events.length === 0) {
      // A progress notice: everything up to `revision` has been seen.
      this.nextRevision = Math.max(this.nextRevision, revision + 1);
      return;
    }
    const last = events[events.length - 1]!.kv.modRevision;
    this.nextRevision = Math.max(this.nextRevision, last + 1);
    this.deliver({ revision: Math.max(revision, last), header: header(m.header), events });
  }

  private deliver(batch: WatchBatch): void {
    if (this.options.onEvents) {
      this.options.onEvents(batch);
      return;
    }
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter({ value: batch, done: false });
      return;
    }
    this.buffer.push(batch);
    if (this.buffer.length >= WATCH_BUFFER_BATCHES_MAX) this.call?.pause();
  }

  private reconnect(cause: LichenError): void {
    if (this.ended) return;
    this.call?.cancel();
    this.call = undefined;
    if (this.failedReconnects++ === 0 && this.everCreated) this.failingSince = this.transport.now();
    this.failures.set(this.endpoint, describeAttemptFailure(cause, this.transport.timeoutMs));
    const neverConfirmed = !this.everCreated && this.transport.now() - this.failingSince >= this.transport.retryBudgetMs;
    if (neverConfirmed || this.failedReconnects > WATCH_RECONNECTS_MAX) {
      return this.fail(this.transport.unreachable(this.failingSince, this.failures, cause));
    }
    this.transport.rotate();
    const backoffMs = this.failedReconnects === 1 ? 0 : Math.min(1000, 25 * 2 ** Math.min(this.failedReconnects - 1, 6));
    // Never confirmed: the last try comes when the budget runs out, not after it.
    const budgetLeftMs = this.everCreated ? Infinity : this.failingSince + this.transport.retryBudgetMs - this.transport.now();
    void this.transport.sleep(Math.min(backoffMs, budgetLeftMs)).then(() => this.connect());
  }

  private fail(error: LichenError): void {
    if (this.ended) return;
    this.failure = error;
    this.ended = true;
    this.call?.cancel();
    this.call = undefined;
    for (const w of this.createdWaiters.splice(0)) w.reject(error);
    this.options.onError?.(error);
    this.waiterReject?.(error);
    this.waiter = undefined;
    this.waiterReject = undefined;
  }
}
