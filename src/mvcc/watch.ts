// WatchHub: delivers MVCC events to watchers, modelled on etcd's watchableStore.
//
// A watcher is "synced" when it has been sent everything up to the hub's revision: live events
// from notify() go straight to its sink. A watcher starting in the past is "unsynced": it catches
// up from the store's history (scanEvents) in bounded batches, driven by syncUnsynced(), and then
// becomes synced. Sinks have bounded buffers: send() returns false when full, and the watcher
// then drops back to unsynced at the first revision it did not take, to be re-read from history
// later, so the hub never buffers without bound and a watcher sees every event exactly once, in
// revision order. A watcher whose next revision was compacted away gets a compacted notice and is
// cancelled (as etcd does).
//
// Batches hold whole revisions: one revision's events are never split across two messages, so a
// batch may exceed batchEventsMax when a single revision is larger (e.g. a big delete).
import { LichenError, assert } from '../errors.js';
import { keyString } from './bytes.js';
import type { MvccStore } from './store.js';
import { EventType, type Event } from './types.js';
import { watchBatchEventsMax, watchSyncWatchersMax, watchersMax } from '../limits.js';

/**
 * An event without its prevKv, made once per event: every watcher that did not ask for prevKv gets
 * the same object, so the API layer can encode it once for all of them.
 */
const strippedEvents = new WeakMap<Event, Event>();

function withoutPrevKv(event: Event): Event {
  let stripped = strippedEvents.get(event);
  if (stripped === undefined) {
    stripped = { type: event.type, kv: event.kv };
    strippedEvents.set(event, stripped);
  }
  return stripped;
}

/** Key "\0" with range end "\0": every key (etcd's meaning; no key is empty). */
const EVERY_KEY = new Uint8Array([0]);

export interface WatchRequest {
  key: Uint8Array;
  rangeEnd?: Uint8Array;
  /** 0 or absent: from the next revision (only future events). */
  startRevision?: number;
  prevKv?: boolean;
  noPut?: boolean;
  noDelete?: boolean;
}

export type WatchMessage =
  | { type: 'events'; watchId: number; revision: number; events: Event[] }
  | { type: 'compacted'; watchId: number; compactRevision: number }
  | { type: 'progress'; watchId: number; revision: number };

export interface WatchSink {
  /** Takes the message, or returns false (message NOT taken) when the sink's bounded buffer is full. */
  send(message: WatchMessage): boolean;
  /**
   * False while send() would refuse events (its buffer is full): a catch-up step then passes the
   * watcher by without selecting events for it. Absent: always ready.
   *
   * A sink that has ready() promises to call the watcher's resume() once it can take events again
   * after ready() said false or send() refused events; the hub parks the watcher until then and
   * no catch-up step looks at it. A sink without ready() is offered events again at every step.
   */
  ready?(): boolean;
}

export interface Watcher {
  readonly id: number;
  /** True while live events go straight to the sink. */
  readonly synced: boolean;
  readonly cancelled: boolean;
  cancel(): void;
  /** The sink can take events again (see WatchSink.ready): a parked watcher catches up at the next step. */
  resume(): void;
}

export interface WatchHubOptions {
  /** Events per catch-up batch (whole revisions; see the header comment). */
  batchEventsMax?: number;
  /** Unsynced watchers advanced per syncUnsynced() call. */
  syncWatchersMax?: number;
  /** Upper bound on live watchers. */
  watchersMax?: number;
  /** Told when a watcher starts to catch up from history (its owner must call syncUnsynced). */
  onUnsynced?: () => void;
}

/**
 * Everything but the next revision that decides what a watcher is sent: its keys, its filters,
 * prevKv. Watchers of one fan-out share one Shape (the hub keeps one per distinct request), so a
 * put's events are matched and filtered once per shape, not once per watcher: 1,000 watchers on
 * one prefix each matched and filtered every event of every put, and notify() was the largest
 * share of the CPU a put cost under that fan-out.
 */
class Shape {
  readonly single: boolean;
  readonly start: string;
  readonly end: string | undefined;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  /** The synced watchers of this shape: the ones notify() delivers to. */
  readonly synced = new Set<WatcherState>();
  /** Live watchers of this shape, synced or not: the hub forgets the shape when none is left. */
  watchers = 0;

  constructor(
    readonly name: string,
    request: WatchRequest,
  ) {
    this.start = keyString(request.key);
    const rangeEnd = request.rangeEnd;
    this.single = rangeEnd === undefined || rangeEnd.length === 0;
    this.end = this.single || (rangeEnd!.length === 1 && rangeEnd![0] === 0) ? undefined : keyString(rangeEnd!);
    this.noPut = request.noPut === true;
    this.noDelete = request.noDelete === true;
    this.prevKv = request.prevKv === true;
  }

  /** The name that identifies a shape (two requests with the same name select the same events). */
  static nameOf(request: WatchRequest): string {
    const rangeEnd = request.rangeEnd;
    const single = rangeEnd === undefined || rangeEnd.length === 0;
    const end = single || (rangeEnd!.length === 1 && rangeEnd![0] === 0) ? null : keyString(rangeEnd!);
    return JSON.stringify([keyString(request.key), end, single, request.noPut === true, request.noDelete === true, request.prevKv === true]);
  }

  matches(key: string): boolean {
    if (this.single) return key === this.start;
    return key >= this.start && (this.end === undefined || key < this.end);
  }

  /**
   * Filters events for this shape (from `fromRevision` on, type filters, prevKv stripping); with
   * `keys` (each event's key as a string, computed once for a whole group of watchers), by key as well.
   */
  select(events: readonly Event[], keys: readonly string[] | undefined, fromRevision: number): Event[] {
    const out: Event[] = [];
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!;
      if (event.kv.modRevision < fromRevision) continue;
      if (event.type === EventType.PUT ? this.noPut : this.noDelete) continue;
      if (keys !== undefined && !this.matches(keys[i]!)) continue;
      out.push(this.prevKv || event.prevKv === undefined ? event : withoutPrevKv(event));
    }
    return out;
  }
}

class WatcherState implements Watcher {
  synced = false;
  cancelled = false;
  /** Unsynced: the next revision to read from history. Synced: events below it are skipped. */
  nextRevision: number;

  constructor(
    readonly id: number,
    readonly request: WatchRequest,
    readonly sink: WatchSink,
    readonly shape: Shape,
    private readonly hub: WatchHub,
  ) {
    this.nextRevision = request.startRevision ?? 0;
  }

  cancel(): void {
    this.hub.remove(this);
  }

  resume(): void {
    this.hub.resume(this);
  }
}

/** The selections of catch-up scans (each its own whole, from 0) and the parts cut from them. */
const parts = new WeakMap<readonly Event[], { whole: readonly Event[]; first: number }>();

/**
 * Whether `events` (a list the hub sent) is a catch-up selection or the part of one from index
 * `first` on: an encoder that encodes the whole once sends each part as a view of it (see
 * src/api/grpc/watch.ts). Undefined for a put's events.
 */
export function partOf(events: readonly Event[]): { whole: readonly Event[]; first: number } | undefined {
  return parts.get(events);
}

/**
 * The selections of one batch of events (a catch-up scan, or a put's events), shared by the
 * watchers of one shape: each shape's selection is made once over the whole batch, and a watcher
 * gets the part from its next revision on, the same array for every watcher at the same point
 * (partOf says which selection a part was cut from). Sinks must not change what they are sent,
 * and the gRPC API encodes a shared list once (see src/api/grpc/watch.ts). A fan-out of 1,000
 * watchers on one prefix selected the same events 1,000 times per catch-up step (half of a
 * member's CPU under watch-1000) and per put.
 */
class SharedSelections {
  /**
   * Each shape's selection, and the last part cut from it (watchers at the same point follow one
   * another); a catch-up scan keeps its selections while steps reuse it, and each watcher takes a
   * part of a scan once, so a cache of every part would grow with the watchers behind.
   */
  private readonly byShape = new Map<Shape, { all: Event[]; first: number; part: Event[] }>();

  constructor(
    private readonly events: readonly Event[],
    private readonly keys: readonly string[] | undefined,
    /** A catch-up scan's: its selections and their parts are told by partOf. */
    private readonly fromHistory: boolean,
  ) {}

  of(watcher: WatcherState): Event[] {
    let shape = this.byShape.get(watcher.shape);
    if (shape === undefined) {
      const all = watcher.shape.select(this.events, this.keys, 0);
      shape = { all, first: 0, part: all };
      this.byShape.set(watcher.shape, shape);
      if (this.fromHistory) parts.set(all, { whole: all, first: 0 });
    }
    const all = shape.all;
    const first = firstAtOrAfter(all, watcher.nextRevision);
    if (first === 0) return all;
    if (first !== shape.first) {
      shape.first = first;
      shape.part = all.slice(first);
      if (this.fromHistory) parts.set(shape.part, { whole: all, first });
    }
    return shape.part;
  }
}

/** The index of the first event (in revision order) at or after `revision`; events.length when none. */
function firstAtOrAfter(events: readonly Event[], revision: number): number {
  let lo = 0;
  let hi = events.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (events[mid]!.kv.modRevision < revision) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * History of every key read for a catch-up step: the events, each event's key as a string, where
 * the next step starts, and the shapes' selections of it (kept with the scan while later steps
 * reuse it, so their lists, and the encodings the API keeps of them, are made once).
 */
interface HistoryScan {
  events: Event[];
  keys: string[];
  nextRevision: number;
  selections: SharedSelections;
}

/** A hub's watchers: synced and unsynced, their shapes, and the shapes with synced watchers indexed for notify(). */
class WatcherSets {
  readonly synced = new Set<WatcherState>();
  /** Unsynced watchers a catch-up step looks at, oldest first. */
  readonly unsynced = new Set<WatcherState>();
  /**
   * Unsynced watchers whose sinks are full, waiting for their resume() (see WatchSink.ready). A
   * step looked at every unsynced watcher, asking each sink whether it had room: under watch-1000
   * (1,000 watchers behind grpc-js clients, each stream's drain starting a step) that asking was
   * a fifth of a member's busy time, nearly every answer "full".
   */
  readonly parked = new Set<WatcherState>();
  /** Every live watcher's shape, by name. */
  readonly shapes = new Map<string, Shape>();
  /** Single-key shapes with synced watchers, by key, so notify() costs per event, not per shape. */
  readonly byKey = new Map<string, Set<Shape>>();
  /** Range shapes with synced watchers. */
  readonly rangeShapes = new Set<Shape>();
}

export class WatchHub {
  private revision: number;
  private nextId = 1;
  /** Created with the first watcher: a process hosting thousands of groups pays for every empty Set. */
  private sets: WatcherSets | undefined;
  private readonly batchEventsMax: number;
  private readonly syncWatchersMax: number;
  private readonly watchersMax: number;
  private readonly onUnsynced: () => void;
  /**
   * The last catch-up scan of every key, reused while a later step starts inside it: watchers of
   * one fan-out lag at about the same revisions, and each step can advance only those whose
   * clients have room, so without it the same history was read again step after step. History
   * never changes below the hub's revision; a compaction leaves every event a watcher still
   * needs (watchers below it are cancelled first), and restored() drops it.
   */
  private lastScan: (HistoryScan & { fromRevision: number; prevKv: boolean }) | undefined;

  constructor(private readonly store: MvccStore, options: WatchHubOptions = {}) {
    this.revision = store.currentRevision;
    this.batchEventsMax = options.batchEventsMax ?? watchBatchEventsMax;
    this.syncWatchersMax = options.syncWatchersMax ?? watchSyncWatchersMax;
    this.watchersMax = options.watchersMax ?? watchersMax;
    this.onUnsynced = options.onUnsynced ?? (() => {});
    // From now on put events carry prevKv only while a watcher asks for it (see notify).
    store.countPrevKvWatchers(0);
  }

  /** The newest revision the hub has been told about. */
  get currentRevision(): number {
    return this.revision;
  }

  get watcherCount(): number {
    return this.sets === undefined ? 0 : this.sets.synced.size + this.sets.unsynced.size + this.sets.parked.size;
  }

  /** Watchers not synced: catching up, or parked until their sinks resume them. */
  get unsyncedCount(): number {
    return this.sets === undefined ? 0 : this.sets.unsynced.size + this.sets.parked.size;
  }

  private get w(): WatcherSets {
    return (this.sets ??= new WatcherSets());
  }

  create(request: WatchRequest, sink: WatchSink): Watcher {
    if (this.watcherCount >= this.watchersMax) {
      throw new LichenError('Overloaded', `watch: too many watchers (${this.watchersMax})`);
    }
    const watcher = new WatcherState(this.nextId++, request, sink, this.shapeOf(request), this);
    watcher.shape.watchers++;
    if (request.prevKv) this.store.countPrevKvWatchers(1);
    const start = request.startRevision ?? 0;
    if (start > 0 && start <= this.revision) {
      this.w.unsynced.add(watcher);
      this.onUnsynced();
      this.catchUp([watcher]);
    } else {
      this.makeSynced(watcher);
    }
    return watcher;
  }

  /** @internal Called by Watcher.cancel(). */
  remove(watcher: WatcherState): void {
    if (watcher.cancelled) return;
    watcher.cancelled = true;
    if (watcher.request.prevKv) this.store.countPrevKvWatchers(-1);
    this.w.unsynced.delete(watcher);
    this.w.parked.delete(watcher);
    this.unlinkSynced(watcher);
    if (--watcher.shape.watchers === 0) this.w.shapes.delete(watcher.shape.name);
  }

  /** @internal Called by Watcher.resume(): a parked watcher is looked at again from the next step on. */
  resume(watcher: WatcherState): void {
    if (!this.sets?.parked.delete(watcher)) return;
    this.sets.unsynced.add(watcher);
    this.onUnsynced();
  }

  /** An unsynced watcher whose sink is full waits for its resume() (see WatchSink.ready). */
  private park(watcher: WatcherState): void {
    this.w.unsynced.delete(watcher);
    this.w.parked.add(watcher);
  }

  /** The shape of a new watcher's request: the one its fan-out already has, or a new one. */
  private shapeOf(request: WatchRequest): Shape {
    const name = Shape.nameOf(request);
    let shape = this.w.shapes.get(name);
    if (shape === undefined) this.w.shapes.set(name, (shape = new Shape(name, request)));
    return shape;
  }

  private makeSynced(watcher: WatcherState): void {
    this.w.unsynced.delete(watcher);
    watcher.synced = true;
    this.w.synced.add(watcher);
    const shape = watcher.shape;
    shape.synced.add(watcher);
    if (shape.synced.size > 1) return;
    // The shape's first synced watcher: notify() looks at the shape from now on.
    if (shape.single) {
      let set = this.w.byKey.get(shape.start);
      if (set === undefined) this.w.byKey.set(shape.start, (set = new Set()));
      set.add(shape);
    } else {
      this.w.rangeShapes.add(shape);
    }
  }

  private unlinkSynced(watcher: WatcherState): void {
    if (!watcher.synced) return;
    watcher.synced = false;
    this.w.synced.delete(watcher);
    const shape = watcher.shape;
    shape.synced.delete(watcher);
    if (shape.synced.size > 0) return;
    if (shape.single) {
      const set = this.w.byKey.get(shape.start);
      set?.delete(shape);
      if (set?.size === 0) this.w.byKey.delete(shape.start);
    } else {
      this.w.rangeShapes.delete(shape);
    }
  }

  private makeUnsynced(watcher: WatcherState, nextRevision: number): void {
    this.unlinkSynced(watcher);
    watcher.nextRevision = nextRevision;
    this.w.unsynced.add(watcher);
    this.onUnsynced();
  }

  /** A synced watcher whose sink refused a put's events: it catches up from them once its sink has room. */
  private fallBehind(watcher: WatcherState, nextRevision: number): void {
    if (watcher.sink.ready === undefined) return this.makeUnsynced(watcher, nextRevision);
    this.unlinkSynced(watcher);
    watcher.nextRevision = nextRevision;
    this.w.parked.add(watcher);
  }

  /**
   * Delivers the events of one applied command (all at `revision`) to synced watchers. Call after
   * every apply that changed the revision, in order, before any new watcher is created: the store
   * put prevKv in the put events only if a watcher wanted it when it applied them.
   */
  notify(events: Event[], revision: number): void {
    assert(revision >= this.revision, `watch: notify went back from ${this.revision} to ${revision}`);
    this.revision = revision;
    const sets = this.sets;
    if (events.length === 0 || sets === undefined || sets.synced.size === 0) return;
    const keys = events.map((event) => keyString(event.kv.key));
    const selections = new SharedSelections(events, keys, false);
    for (const shape of sets.rangeShapes) this.deliver(shape, selections, revision);
    if (keys.length === 1) {
      for (const shape of sets.byKey.get(keys[0]!) ?? []) this.deliver(shape, selections, revision);
      return;
    }
    const seen = new Set<Shape>(); // A txn's events may touch one key twice (a delete, then a put).
    for (const key of keys) {
      for (const shape of sets.byKey.get(key) ?? []) {
        if (seen.has(shape)) continue;
        seen.add(shape);
        this.deliver(shape, selections, revision);
      }
    }
  }

  /** A put's events to the synced watchers of one shape, selected once for all of them. */
  private deliver(shape: Shape, selections: SharedSelections, revision: number): void {
    // A watcher whose sink refuses leaves the set as it is visited, which iteration allows.
    for (const watcher of shape.synced) {
      const selected = selections.of(watcher);
      if (selected.length === 0) continue;
      if (!watcher.sink.send({ type: 'events', watchId: watcher.id, revision, events: selected })) this.fallBehind(watcher, selected[0]!.kv.modRevision);
    }
  }

  /**
   * Advances up to syncWatchersMax unsynced watchers, oldest first, by one bounded batch of
   * history read once for all of them (as etcd's syncWatchers does): reading history per watcher
   * cost a fan-out of 1,000 watchers on one prefix 65% of the member's CPU, each lagging watcher
   * re-reading the same revisions. Call it periodically (e.g. every tick) while watchers are
   * unsynced (see WatchHubOptions.onUnsynced). Returns how many are still unsynced.
   */
  syncUnsynced(): number {
    if (this.unsyncedCount === 0) this.lastScan = undefined;
    if (this.sets === undefined || this.sets.unsynced.size === 0) return this.unsyncedCount;
    const group: WatcherState[] = [];
    for (const watcher of this.w.unsynced) {
      if (group.length >= this.syncWatchersMax) break;
      group.push(watcher);
    }
    this.catchUp(group);
    // The ones still behind go to the back, so every unsynced watcher gets its turn.
    for (const watcher of group) {
      if (!this.w.unsynced.delete(watcher)) continue;
      this.w.unsynced.add(watcher);
    }
    return this.unsyncedCount;
  }

  /**
   * One catch-up step for a group of unsynced watchers: a single scan of history from the oldest
   * revision any of them needs, bounded by batchEventsMax, shared by all; each takes the events
   * it matches. A watcher whose next revision lies beyond the scan waits for a later step.
   */
  private catchUp(group: readonly WatcherState[]): void {
    const compactRevision = this.store.compactRevision;
    // The hub may lag the store by one apply (notify comes after apply); read only what the hub
    // has seen, so live events continue exactly where history stops.
    const to = this.revision;
    const behind: WatcherState[] = [];
    for (const watcher of group) {
      if (watcher.nextRevision < compactRevision) {
        if (watcher.sink.send({ type: 'compacted', watchId: watcher.id, compactRevision })) this.remove(watcher);
      } else if (watcher.nextRevision > to) {
        this.makeSynced(watcher);
      } else if (watcher.sink.ready?.() !== false) {
        behind.push(watcher);
      } else {
        this.park(watcher);
      }
    }
    if (behind.length === 0) return;
    // The only watcher behind reads only its own keys; otherwise a scan reads every key and each
    // watcher filters (the next steps, for the others, reuse that scan).
    const alone = behind.length === 1 && this.unsyncedCount === 1 ? behind[0]!.request : undefined;
    let fromRevision = behind[0]!.nextRevision;
    for (const watcher of behind) fromRevision = Math.min(fromRevision, watcher.nextRevision);
    const prevKv = behind.some((w) => w.request.prevKv === true);
    const scan: { events: Event[]; nextRevision: number; selections?: SharedSelections } =
      this.lastScanFrom(fromRevision, prevKv) ??
      (alone
        ? this.store.scanEvents({ fromRevision, toRevision: to, key: alone.key, rangeEnd: alone.rangeEnd, prevKv, eventsMax: this.batchEventsMax })
        : this.scanEveryKey(fromRevision, to, prevKv));
    const selections = scan.selections ?? new SharedSelections(scan.events, undefined, true);
    for (const watcher of behind) {
      if (watcher.nextRevision >= scan.nextRevision) continue;
      const selected = selections.of(watcher);
      if (selected.length > 0 && !watcher.sink.send({ type: 'events', watchId: watcher.id, revision: to, events: selected })) {
        if (watcher.sink.ready !== undefined) this.park(watcher);
        continue;
      }
      watcher.nextRevision = scan.nextRevision;
      if (watcher.nextRevision > to) this.makeSynced(watcher);
    }
  }

  /** The last scan of every key, when it holds the events from `fromRevision` on (see lastScan). */
  private lastScanFrom(fromRevision: number, prevKv: boolean): HistoryScan | undefined {
    const last = this.lastScan;
    const covers = last !== undefined && last.fromRevision <= fromRevision && fromRevision < last.nextRevision && (last.prevKv || !prevKv);
    return covers ? last : undefined;
  }

  /** History of every key from `fromRevision`, kept as the last scan. */
  private scanEveryKey(fromRevision: number, toRevision: number, prevKv: boolean): HistoryScan {
    const scan = this.store.scanEvents({ fromRevision, toRevision, key: EVERY_KEY, rangeEnd: EVERY_KEY, prevKv, eventsMax: this.batchEventsMax });
    const keys = scan.events.map((event) => keyString(event.kv.key));
    this.lastScan = { fromRevision, nextRevision: scan.nextRevision, prevKv, events: scan.events, keys, selections: new SharedSelections(scan.events, keys, true) };
    return this.lastScan;
  }

  /** Progress notices (progress_notify / RequestProgress) to synced watchers: "nothing more up to revision". */
  progress(revision = this.revision): void {
    for (const watcher of this.sets?.synced ?? []) {
      watcher.sink.send({ type: 'progress', watchId: watcher.id, revision: Math.min(revision, this.revision) });
    }
  }

  /**
   * Call after store.install() (a raft snapshot replaced the state): as etcd's watchable store
   * does on restore, every synced watcher drops to unsynced at the revision it needs next and
   * catches up from the new history, or gets a compacted notice if that is gone.
   */
  restored(): void {
    this.lastScan = undefined;
    for (const watcher of [...(this.sets?.synced ?? [])]) this.makeUnsynced(watcher, Math.max(watcher.nextRevision, this.revision + 1));
    this.revision = this.store.currentRevision;
  }
}
