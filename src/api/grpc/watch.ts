// The Watch service: one bidirectional stream per client connection carrying many watchers.
//
// Order on the stream, as etcd guarantees it: a watcher's "created" response comes before any of
// its events; its events arrive in revision order; a compacted start revision is reported as one
// response with compact_revision set and canceled = true, right after "created".
//
// A client that reads slowly is not dropped: while its responses wait unsent, the watchers of its
// stream refuse new events, and the backend re-reads them from history once it reads again (as
// etcd's slow "victim" watchers catch up), so memory stays bounded and no event is lost. The
// stream lives until the client cancels it: a client that half-closes its side (as the JSON
// gateway does when a request body ends) keeps receiving events, as from etcd.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ErrorCode, isLichenError } from '../../errors.js';
import type { Caller, Credentials, WatchCreate, WatchHandle, WatchSink } from '../backend.js';
import { etcdError, grpcErrorFor, toServiceError } from './errors.js';
import type { ServerCall } from './http2-server.js';
import { checkRequestSize, checkRequireLeader, credentialsOf, type HandlerContext, type Implementation } from './handler.js';
import { encodeEvent, encodeHeader, toSafeInt, type WireHeader, type WireLong } from './wire.js';
import { EncodedWatchEvents, KV_MESSAGES, type WatchResponseOut } from './kv-codec.js';
import { partOf, type Event } from '../../mvcc/index.js';
import { watchRequestsQueuedMax, watchStreamBufferedBytesMax, watchStreamResponsesMax, watchersPerStreamMax } from '../../limits.js';


/** etcd's id for responses that belong to no single watcher (stream-wide progress). */
const NO_WATCH_ID = -1;
const FILTER_NOPUT = 0;
const FILTER_NODELETE = 1;

const CANCEL_REASON_DUPLICATE_ID = 'mvcc: duplicate watch ID provided on the WatchStream';
const CANCEL_REASON_TOO_MANY = `lichen: too many watchers on one stream (at most ${watchersPerStreamMax})`;

interface WireWatchCreate {
  key: Uint8Array;
  range_end: Uint8Array;
  start_revision: WireLong;
  progress_notify: boolean;
  filters: number[];
  prev_kv: boolean;
  watch_id: WireLong;
  fragment: boolean;
}

interface WireWatchRequest {
  request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  create_request?: WireWatchCreate;
  cancel_request?: { watch_id: WireLong };
  progress_request?: object;
}

/** What the stream writes (WATCH_RESPONSE in kv-codec.ts encodes it): the fields it sets, events already encoded. */
type WireWatchResponse = WatchResponseOut & { header: WireHeader; watch_id: number };

interface Watcher {
  id: number;
  handle?: WatchHandle;
  /** Until "created" is written, the watcher's output waits here (the backend may call the sink inside watch()). */
  early: WireWatchResponse[] | null;
  /** Set once the watcher ended (canceled by either side); later sink calls are dropped. */
  ended: boolean;
}

export function watchService(ctx: HandlerContext): Implementation {
  return {
    Watch: (call: ServerCall<WireWatchRequest, WireWatchResponse>) => new WatchStream(ctx, call).start(),
  };
}

class WatchStream {
  private readonly watchers = new Map<number, Watcher>();
  /** Watchers whose events this stream refused while its client was behind, oldest first: resumed as it drains. */
  private readonly turnedAway = new Set<Watcher>();
  /** The size of the last events response written: what a resumed watcher is expected to write. */
  private lastEventsBytes = 0;
  private resumeQueued = false;
  private nextWatchId = 0;
  private closed = false;
  /** A stream-wide progress request waiting for its watchers to report. */
  private progress: { waiting: Set<number>; revisionMin: number } | null = null;
  /** What the client presented when it opened the stream; checked again at each create (as etcd). */
  private readonly credentials: Credentials;
  /** Requests wait here, in order, while a create's credentials are checked (only when there are credentials). */
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private lastHeader: WireHeader | undefined;

  constructor(
    private readonly ctx: HandlerContext,
    private readonly call: ServerCall<WireWatchRequest, WireWatchResponse>,
  ) {
    this.credentials = credentialsOf(call);
  }

  start(): void {
    try {
      checkRequireLeader(this.ctx, this.call.metadata);
    } catch (error) {
      this.fail(error);
      return;
    }
    this.call.on('data', (request: WireWatchRequest) => this.onRequest(request));
    // No 'end' handler: etcd keeps a watch stream open after the client half-closes it.
    this.call.on('error', () => this.cancelAll());
    this.call.on('cancelled', () => this.cancelAll());
    this.call.on('drain', () => this.resumeTurnedAway());
  }

  /**
   * The client read what was waiting: watchers turned away catch up now, oldest first, as many as
   * the stream has room for by the last response's size. The others wait for the next turn of the
   * event loop, after the backend's catch-up step for these (see catchUpSoon in
   * src/server/watch.ts), or for the next drain if the stream is behind again by then. Resuming
   * them all at every drain had each step ask a stream's hundred watchers for room, and park
   * nearly all of them again, to serve a few.
   */
  private resumeTurnedAway(): void {
    if (this.closed) return;
    let room = watchStreamBufferedBytesMax - this.call.writableLength;
    for (const watcher of this.turnedAway) {
      if (room <= 0) break;
      this.turnedAway.delete(watcher);
      if (watcher.ended) continue;
      watcher.handle?.resume();
      room -= this.lastEventsBytes;
    }
    if (this.turnedAway.size === 0 || this.resumeQueued) return;
    this.resumeQueued = true;
    setImmediate(() => {
      this.resumeQueued = false;
      if (this.call.writableLength < watchStreamBufferedBytesMax) this.resumeTurnedAway();
    });
  }

  private onRequest(request: WireWatchRequest): void {
    if (this.closed) return;
    if (this.credentials.token === undefined && !this.credentials.commonName) return this.handle(request, undefined);
    if (++this.queued > watchRequestsQueuedMax) return this.fail(etcdError('tooManyRequests', ErrorCode.Overloaded));
    this.queue = this.queue.then(async () => {
      let caller: Caller | undefined;
      try {
        if (request.request_union === 'create_request') caller = await this.ctx.backend.identify(this.credentials);
      } catch (error) {
        this.refuse(cancelReason(error));
        return;
      } finally {
        this.queued--;
      }
      if (!this.closed) this.handle(request, caller);
    });
  }

  private handle(request: WireWatchRequest, caller: Caller | undefined): void {
    try {
      checkRequestSize(this.ctx, request);
      switch (request.request_union) {
        case 'create_request':
          return this.create(request.create_request!, caller);
        case 'cancel_request':
          return this.cancel(toSafeInt(request.cancel_request!.watch_id, 'watch_id'));
        case 'progress_request':
          return this.requestProgress();
        default:
          return; // An empty request: etcd ignores it too.
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private create(w: WireWatchCreate, caller: Caller | undefined): void {
    const requestedId = toSafeInt(w.watch_id, 'watch_id');
    if (this.watchers.size >= watchersPerStreamMax) return this.refuse(CANCEL_REASON_TOO_MANY);
    if (requestedId > 0 && this.watchers.has(requestedId)) return this.refuse(CANCEL_REASON_DUPLICATE_ID);
    const id = requestedId > 0 ? requestedId : this.allocateId();
    const filters = w.filters ?? [];
    const request: WatchCreate = {
      // etcd: an empty key means the smallest key, "\0".
      key: w.key && w.key.length > 0 ? w.key : new Uint8Array([0]),
      rangeEnd: w.range_end && w.range_end.length > 0 ? w.range_end : undefined,
      startRevision: Math.max(0, toSafeInt(w.start_revision, 'start_revision')),
      prevKv: w.prev_kv ?? false,
      noPut: filters.includes(FILTER_NOPUT),
      noDelete: filters.includes(FILTER_NODELETE),
      progressNotify: w.progress_notify ?? false,
    };
    const watcher: Watcher = { id, early: [], ended: false };
    this.watchers.set(id, watcher);
    try {
      watcher.handle = this.ctx.backend.watch(request, this.sinkFor(watcher), caller);
    } catch (error) {
      this.watchers.delete(id);
      if (isLichenError(error, ErrorCode.Compacted) && typeof error.details.compactRevision === 'number') {
        // Report it the way etcd does: created, then canceled with the compact revision.
        this.write({ header: this.header(), watch_id: id, created: true });
        this.write({ header: this.header(0), watch_id: id, canceled: true, compact_revision: error.details.compactRevision });
        return;
      }
      return this.refuse(cancelReason(error));
    }
    this.write({ header: this.header(), watch_id: id, created: true });
    const early = watcher.early ?? [];
    watcher.early = null;
    for (const response of early) this.write(response);
    // Turned away before "created" (its own bound, not the stream's): no drain may follow, so
    // unless the stream is behind now, it resumes here (the backend waits for that; see ready()).
    if (this.turnedAway.has(watcher) && this.call.writableLength < watchStreamBufferedBytesMax) this.resumeTurnedAway();
  }

  /** etcd's answer to a create it cannot honour: created and canceled at once, id -1. */
  private refuse(reason: string): void {
    this.write({ header: this.header(), watch_id: NO_WATCH_ID, created: true, canceled: true, cancel_reason: reason });
  }

  private allocateId(): number {
    // Bounded: at most watchersPerStreamMax ids are taken.
    while (this.watchers.has(this.nextWatchId)) this.nextWatchId++;
    return this.nextWatchId++;
  }

  private cancel(id: number): void {
    const watcher = this.watchers.get(id);
    // etcd sends nothing for an unknown id.
    if (!watcher) return;
    this.end(watcher);
    watcher.handle?.cancel();
    this.write({ header: this.header(), watch_id: id, canceled: true });
  }

  private sinkFor(watcher: Watcher): WatchSink {
    return {
      // A watcher found not ready, like one turned away, is resumed when the stream drains.
      ready: () => watcher.ended || !this.turnAwayIfBehind(watcher),
      onEvents: (events, revision) => {
        if (watcher.ended || events.length === 0) return true;
        // Not taken while the client is behind: the backend offers them again from history.
        if (this.turnAwayIfBehind(watcher)) return false;
        const encoded = encodedEventList(events);
        this.lastEventsBytes = encoded.bytes.length;
        this.emit(watcher, { header: this.header(revision), watch_id: watcher.id, events: encoded });
        return true;
      },
      onCompacted: (compactRevision) => {
        if (watcher.ended) return;
        // etcd's notice carries header revision 0 and no reason (clients derive it from compact_revision).
        this.emit(watcher, { header: this.header(0), watch_id: watcher.id, canceled: true, compact_revision: compactRevision });
        this.end(watcher);
      },
      onProgress: (revision) => {
        if (watcher.ended) return;
        if (this.progress?.waiting.has(watcher.id)) {
          this.progress.revisionMin = Math.min(this.progress.revisionMin, revision);
          this.progress.waiting.delete(watcher.id);
          this.finishProgressIfDone();
          return;
        }
        this.emit(watcher, { header: this.header(revision), watch_id: watcher.id });
      },
      onCanceled: (reason) => {
        if (watcher.ended) return;
        this.emit(watcher, { header: this.header(), watch_id: watcher.id, canceled: true, cancel_reason: reason });
        this.end(watcher);
      },
    };
  }

  /**
   * Whether the watcher's responses wait for the client beyond the stream's bound (or, before
   * "created", the watcher's own); if so the watcher is resumed on the next 'drain'.
   */
  private turnAwayIfBehind(watcher: Watcher): boolean {
    const behind = watcher.early === null ? this.call.writableLength >= watchStreamBufferedBytesMax : watcher.early.length >= watchStreamResponsesMax;
    if (behind) this.turnedAway.add(watcher);
    return behind;
  }

  private emit(watcher: Watcher, response: WireWatchResponse): void {
    if (watcher.early !== null) watcher.early.push(response);
    else this.write(response);
  }

  /** Marks a watcher ended and forgets it; a pending stream-wide progress stops waiting for it. */
  private end(watcher: Watcher): void {
    watcher.ended = true;
    this.watchers.delete(watcher.id);
    if (this.progress?.waiting.delete(watcher.id)) this.finishProgressIfDone();
  }

  /**
   * A stream-wide progress request: answered (watch_id -1) with a revision every watcher of the
   * stream has seen, so every later event on the stream is newer. With no watchers the current
   * revision is that answer.
   */
  private requestProgress(): void {
    if (this.progress !== null) return; // The pending answer will serve this request too.
    const live = [...this.watchers.values()].filter((w) => !w.ended && w.handle !== undefined);
    if (live.length === 0) {
      this.write({ header: this.header(), watch_id: NO_WATCH_ID });
      return;
    }
    this.progress = { waiting: new Set(live.map((w) => w.id)), revisionMin: Number.MAX_SAFE_INTEGER };
    for (const watcher of live) watcher.handle!.requestProgress();
  }

  private finishProgressIfDone(): void {
    const progress = this.progress;
    if (progress === null || progress.waiting.size > 0) return;
    this.progress = null;
    const revision = progress.revisionMin === Number.MAX_SAFE_INTEGER ? undefined : progress.revisionMin;
    this.write({ header: this.header(revision), watch_id: NO_WATCH_ID });
  }

  /**
   * The backend's header for `revision`, as the same object while it does not change: the
   * responses of a put to the stream's watchers all carry it, and the encoder sizes it once.
   */
  private header(revision?: number): WireHeader {
    const h = this.ctx.backend.header(revision);
    const last = this.lastHeader;
    if (last !== undefined && last.revision === h.revision && last.raft_term === h.raftTerm && last.member_id === h.memberId && last.cluster_id === h.clusterId) return last;
    return (this.lastHeader = encodeHeader(h));
  }

  private write(response: WireWatchResponse): void {
    if (!this.closed) this.call.write(response);
  }

  private cancelAll(): void {
    if (this.closed) return;
    this.closed = true;
    this.progress = null;
    for (const watcher of [...this.watchers.values()]) {
      watcher.ended = true;
      watcher.handle?.cancel();
    }
    this.watchers.clear();
  }

  private fail(error: unknown): void {
    this.cancelAll();
    this.call.destroy(toServiceError(error));
  }
}

/**
 * Each event's Event message, encoded once: the hub hands every watcher of an event the same
 * Event object (and the same copy without prevKv), so a fan-out to 1,000 watchers encodes it
 * once, not 1,000 times. Entries go with their events.
 */
const encodedEvents = new WeakMap<Event, Buffer>();

function encodedEvent(event: Event): Buffer {
  let encoded = encodedEvents.get(event);
  if (encoded === undefined) {
    encoded = KV_MESSAGES.Event.encode(encodeEvent(event) as never);
    encodedEvents.set(event, encoded);
  }
  return encoded;
}

/**
 * A list of events, encoded as a response's events field: the hub hands the watchers of one
 * shape the same list one after the other, for a put's events and for a catch-up step's (see
 * SharedSelections in src/mvcc/watch.ts), so the last list's encoded form is kept for the next
 * call, and each of those watchers' responses sends the same bytes. One entry, not a WeakMap by
 * list: an entry per list made the garbage collector's work grow with the fan-out.
 *
 * A watcher catching up gets a scan's selection or the part of it from its next revision on
 * (partOf): the selection is encoded once, and each part is sent as a view of those bytes. Each part
 * encoded on its own copied every event of it again, response after response, a tenth of a
 * member's busy time under watch-1000.
 */
let lastList: readonly Event[] | undefined;
let lastEncoded: EncodedWatchEvents | undefined;
/** The selections parts were cut from, encoded (an entry per scan and shape, gone with them). */
const encodedWholes = new WeakMap<readonly Event[], EncodedWatchEvents>();

function encodedEventList(events: readonly Event[]): EncodedWatchEvents {
  if (events === lastList && lastEncoded !== undefined) return lastEncoded;
  const part = partOf(events);
  let encoded: EncodedWatchEvents;
  if (part === undefined) {
    encoded = EncodedWatchEvents.encode(events.map(encodedEvent));
  } else {
    // The whole is encoded once, whichever of its parts comes first.
    let whole = encodedWholes.get(part.whole);
    if (whole === undefined) encodedWholes.set(part.whole, (whole = EncodedWatchEvents.encode(part.whole.map(encodedEvent))));
    encoded = whole.from(part.first);
  }
  lastList = events;
  lastEncoded = encoded;
  return encoded;
}

const GO_CODE_NAMES: Partial<Record<number, string>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'InvalidArgument',
  [GrpcStatus.PERMISSION_DENIED]: 'PermissionDenied',
  [GrpcStatus.UNAUTHENTICATED]: 'Unauthenticated',
};

/**
 * Why a create was refused. An auth failure reads as etcd writes it, the Go text of a gRPC status
 * ("rpc error: code = PermissionDenied desc = etcdserver: permission denied"); others as the message.
 */
function cancelReason(error: unknown): string {
  const { code, message } = grpcErrorFor(error);
  const auth = isLichenError(error) && (error.code === ErrorCode.Unauthenticated || error.code === ErrorCode.PermissionDenied);
  return auth ? `rpc error: code = ${GO_CODE_NAMES[code] ?? code} desc = ${message}` : message;
}
