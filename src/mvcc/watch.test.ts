import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryEngine } from '../engine/memory.js';
import type { MvccCommand as Command } from './command.js';
import { Harness, b, s } from './testkit.js';
import type { Event } from './types.js';
import { WatchHub, partOf, type WatchMessage, type WatchSink, type Watcher } from './watch.js';

/** A sink with a bounded buffer: refuses messages while holding `capacity` of them. */
class BoundedSink implements WatchSink {
  readonly buffer: WatchMessage[] = [];
  readonly received: WatchMessage[] = [];
  maxHeld = 0;
  constructor(public capacity = Infinity) {}

  send(message: WatchMessage): boolean {
    if (this.buffer.length >= this.capacity) return false;
    this.buffer.push(message);
    this.maxHeld = Math.max(this.maxHeld, this.buffer.length);
    return true;
  }

  drain(): void {
    this.received.push(...this.buffer.splice(0));
  }

  /** Every event delivered so far as "type:key@mod". */
  events(): string[] {
    this.drain();
    return this.received.flatMap((m) => (m.type === 'events' ? m.events.map((e) => `${e.type}:${s(e.kv.key)}@${e.kv.modRevision}`) : []));
  }
}

/** A sink that says when it is full, as a watch stream does, takes nothing then, and resumes its watcher once drained. */
class ReadySink extends BoundedSink {
  sent = 0;
  asked = 0;
  watcher: Watcher | undefined;
  override send(message: WatchMessage): boolean {
    this.sent++;
    return super.send(message);
  }
  ready(): boolean {
    this.asked++;
    return this.buffer.length < this.capacity;
  }
  override drain(): void {
    const wasFull = this.buffer.length >= this.capacity;
    super.drain();
    if (wasFull) this.watcher?.resume();
  }
}

/** A store and a hub wired the way the server wires them: notify after every apply. */
function setup(options?: ConstructorParameters<typeof WatchHub>[1]): { h: Harness; hub: WatchHub; run(command: Command): void; put(key: string, value: string): void } {
  const h = Harness.open(new MemoryEngine());
  const hub = new WatchHub(h.store, options);
  const run = (command: Command): void => {
    const result = h.apply(command);
    if (!('error' in result)) hub.notify(result.events, result.revision);
  };
  return { h, hub, run, put: (key, value) => run({ type: 'put', request: { key: b(key), value: b(value) } }) };
}

describe('WatchHub', () => {
  it('delivers live events to a watcher on one key, in order', () => {
    const { hub, put, run } = setup();
    const sink = new BoundedSink();
    const watcher = hub.create({ key: b('k') }, sink);
    assert.equal(watcher.synced, true);
    put('k', '1');
    put('other', '1');
    put('k', '2');
    run({ type: 'deleteRange', request: { key: b('k') } });
    assert.deepEqual(sink.events(), ['0:k@2', '0:k@4', '1:k@5']);
    const first = sink.received[0]!;
    assert.ok(first.type === 'events' && first.revision === 2 && first.watchId === watcher.id);
  });

  it('put events carry prevKv exactly while some watcher wants it (a put reads the previous version only then)', () => {
    const { h, hub, put } = setup();
    const putEvent = (value: string): Event => {
      const result = h.put('k', value);
      hub.notify(result.events, result.revision);
      return result.events[0]!;
    };
    put('k', '1');
    hub.create({ key: b('k') }, new BoundedSink());
    assert.equal(putEvent('2').prevKv, undefined);
    const watcher = hub.create({ key: b('k'), startRevision: 2, prevKv: true }, new BoundedSink(0));
    assert.equal(watcher.synced, false, 'an unsynced watcher counts too: it may become synced before the next event');
    assert.equal(s(putEvent('3').prevKv?.value), '2');
    watcher.cancel();
    watcher.cancel();
    assert.equal(putEvent('4').prevKv, undefined);
  });

  it('a prefix watcher sees every key in its range; filters and prevKv apply', () => {
    const { hub, put, run } = setup();
    const all = new BoundedSink();
    const noDelete = new BoundedSink();
    const noPut = new BoundedSink();
    hub.create({ key: b('p/'), rangeEnd: b('p0'), prevKv: true }, all);
    hub.create({ key: b('p/'), rangeEnd: b('p0'), noDelete: true }, noDelete);
    hub.create({ key: b('p/'), rangeEnd: b('p0'), noPut: true }, noPut);
    put('p/a', '1');
    put('q', '1');
    put('p/b', '1');
    put('p/a', '2');
    run({ type: 'deleteRange', request: { key: b('p/'), rangeEnd: b('p0') } });
    assert.deepEqual(all.events(), ['0:p/a@2', '0:p/b@4', '0:p/a@5', '1:p/a@6', '1:p/b@6']);
    assert.deepEqual(noDelete.events(), ['0:p/a@2', '0:p/b@4', '0:p/a@5']);
    assert.deepEqual(noPut.events(), ['1:p/a@6', '1:p/b@6']);
    const update = all.received[2]!;
    assert.ok(update.type === 'events');
    assert.equal(s(update.events[0]!.prevKv?.value), '1', 'prevKv when asked');
    const noPrev = noDelete.received[2]!;
    assert.ok(noPrev.type === 'events' && noPrev.events[0]!.prevKv === undefined, 'no prevKv unless asked');
  });

  it('catches up from history in bounded batches, then continues live without gaps or duplicates', () => {
    const { hub, put } = setup({ batchEventsMax: 3 });
    for (let i = 0; i < 10; i++) put('k', `${i}`); // revisions 2..11
    const sink = new BoundedSink();
    const watcher = hub.create({ key: b('k'), startRevision: 4, prevKv: true }, sink);
    assert.equal(watcher.synced, false, 'a past start revision begins unsynced');
    assert.equal(sink.buffer.length, 1, 'create sends the first batch at once');
    const batchSizes = () => sink.received.map((m) => (m.type === 'events' ? m.events.length : 0));
    for (let step = 0; step < 10 && !watcher.synced; step++) hub.syncUnsynced();
    assert.equal(watcher.synced, true);
    put('k', 'live-1');
    put('k', 'live-2');
    const revisions = sink.events().map((e) => Number(e.split('@')[1]));
    assert.deepEqual(revisions, [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert.ok(batchSizes().every((n) => n <= 3), `batches ${batchSizes().join(',')}`);
    const firstEvent = sink.received[0]!;
    assert.ok(firstEvent.type === 'events');
    assert.equal(s(firstEvent.events[0]!.prevKv?.value), '1', 'history events carry prevKv');
  });

  it('a start revision in the future only sees events from that revision', () => {
    const { hub, put } = setup();
    const sink = new BoundedSink();
    hub.create({ key: b('k'), startRevision: 4 }, sink);
    for (let i = 0; i < 4; i++) put('k', `${i}`); // 2..5
    assert.deepEqual(sink.events(), ['0:k@4', '0:k@5']);
  });

  it('a start revision below the compact revision gets a compacted notice and is cancelled', () => {
    const { hub, put, run } = setup();
    for (let i = 0; i < 5; i++) put('k', `${i}`); // 2..6
    run({ type: 'compact', request: { revision: 5 } });
    const sink = new BoundedSink();
    const watcher = hub.create({ key: b('k'), startRevision: 3 }, sink);
    assert.deepEqual(sink.buffer, [{ type: 'compacted', watchId: watcher.id, compactRevision: 5 }]);
    assert.equal(watcher.cancelled, true);
    assert.equal(hub.watcherCount, 0);
    const atCompaction = new BoundedSink();
    hub.create({ key: b('k'), startRevision: 5 }, atCompaction);
    assert.deepEqual(atCompaction.events(), ['0:k@5', '0:k@6'], 'the compact revision itself is still readable');
  });

  it('a slow sink drops back to unsynced instead of buffering, then catches up exactly', () => {
    const { hub, put } = setup({ batchEventsMax: 4 });
    const sink = new BoundedSink(2);
    const watcher = hub.create({ key: b('k') }, sink);
    for (let i = 0; i < 20; i++) put('k', `${i}`); // 2..21
    assert.equal(sink.maxHeld, 2, 'never holds more than its capacity');
    assert.equal(watcher.synced, false, 'moved to unsynced when the buffer filled');
    for (let round = 0; round < 50 && !watcher.synced; round++) {
      sink.drain();
      hub.syncUnsynced();
    }
    assert.equal(watcher.synced, true);
    put('k', 'after');
    const revisions = sink.events().map((e) => Number(e.split('@')[1]));
    assert.deepEqual(revisions, Array.from({ length: 21 }, (_, i) => i + 2));
  });

  it('lagging watchers catch up together: one history scan per step, each gets exactly its own events', () => {
    const { h, hub, put } = setup({ batchEventsMax: 1000 });
    let scans = 0;
    const scanEvents = h.store.scanEvents.bind(h.store);
    h.store.scanEvents = (options) => {
      scans++;
      return scanEvents(options);
    };
    // 60 watchers on a prefix, 30 on one key, 10 with prevKv from a past revision: all slow.
    const prefix = Array.from({ length: 60 }, () => new BoundedSink(1));
    const single = Array.from({ length: 30 }, () => new BoundedSink(1));
    for (const sink of prefix) hub.create({ key: b('p/'), rangeEnd: b('p0') }, sink);
    for (const sink of single) hub.create({ key: b('p/a') }, sink);
    put('p/a', 'x'); // revision 2, before the past watchers start
    const past = Array.from({ length: 10 }, () => new BoundedSink(1));
    for (const sink of past) hub.create({ key: b('p/'), rangeEnd: b('p0'), startRevision: 2, prevKv: true }, sink);
    scans = 0;
    for (let i = 0; i < 40; i++) put(i % 2 === 0 ? 'p/a' : (i % 3 === 0 ? 'q' : 'p/b'), `${i}`); // 3..42
    assert.equal(hub.unsyncedCount, 100, 'every watcher fell behind');
    for (const sink of [...prefix, ...single, ...past]) sink.drain();
    assert.equal(hub.syncUnsynced(), 0, 'one step caught all of them up');
    assert.equal(scans, 1, 'with one scan of history');
    const keys = (i: number): string => (i % 2 === 0 ? 'p/a' : i % 3 === 0 ? 'q' : 'p/b');
    const expected = (match: (key: string) => boolean): string[] =>
      Array.from({ length: 40 }, (_, i) => [keys(i), i + 3] as const).filter(([key]) => match(key)).map(([key, rev]) => `0:${key}@${rev}`);
    for (const sink of prefix) assert.deepEqual(sink.events(), ['0:p/a@2', ...expected((k) => k.startsWith('p/'))]);
    for (const sink of single) assert.deepEqual(sink.events(), ['0:p/a@2', ...expected((k) => k === 'p/a')]);
    for (const sink of past) assert.deepEqual(sink.events(), ['0:p/a@2', ...expected((k) => k.startsWith('p/'))]);
    const withPrev = past[0]!.received.flatMap((m) => (m.type === 'events' ? m.events : []));
    assert.equal(s(withPrev[1]!.prevKv?.value), 'x', 'prevKv for the watchers that asked');
    const withoutPrev = prefix[0]!.received.flatMap((m) => (m.type === 'events' ? m.events : []));
    assert.ok(withoutPrev.every((e) => e.prevKv === undefined), 'and none for the others');
  });

  it('watchers of one shape share a step\'s selection from where each of them is, and other shapes select their own', () => {
    const { hub, put, run } = setup({ batchEventsMax: 1000 });
    // Two watchers that take nothing until they are caught up in one step, together.
    const lagging = [new BoundedSink(0), new BoundedSink(0)];
    for (const sink of lagging) hub.create({ key: b('p/'), rangeEnd: b('p0') }, sink);
    for (let i = 0; i < 12; i++) {
      if (i % 4 === 3) run({ type: 'deleteRange', request: { key: b(`p/${i - 1}`) } });
      else put(i % 5 === 4 ? 'q' : `p/${i}`, `${i}`);
    } // revisions 2..13 (q at 6 and 11)
    const sinks = [2, 5, 5, 9, 14].map((startRevision) => {
      const sink = new BoundedSink();
      hub.create({ key: b('p/'), rangeEnd: b('p0'), startRevision }, sink);
      return sink;
    });
    const noPut = new BoundedSink();
    hub.create({ key: b('p/'), rangeEnd: b('p0'), startRevision: 2, noPut: true }, noPut);
    for (const sink of lagging) sink.capacity = Infinity;
    assert.equal(hub.syncUnsynced(), 0);
    const all = ['0:p/0@2', '0:p/1@3', '0:p/2@4', '1:p/2@5', '0:p/5@7', '0:p/6@8', '1:p/6@9', '0:p/8@10', '0:p/10@12', '1:p/10@13'];
    const from = (revision: number): string[] => all.filter((e) => Number(e.split('@')[1]) >= revision);
    assert.deepEqual(sinks.map((sink) => sink.events()), [from(2), from(5), from(5), from(9), []]);
    const eventsOf = (sink: BoundedSink): Event[] => sink.received.flatMap((m) => (m.type === 'events' ? m.events : []));
    assert.equal(eventsOf(sinks[1]!).length, 7);
    assert.deepEqual(lagging.map((sink) => sink.events()), [all, all]);
    const lists = lagging.map((sink) => sink.received.find((m) => m.type === 'events')!);
    assert.ok(lists[0]!.type === 'events' && lists[1]!.type === 'events' && lists[0]!.events === lists[1]!.events, 'one list for both');
    assert.deepEqual(noPut.events(), all.filter((e) => e.startsWith('1:')));
  });

  it('a put\'s events are selected once per shape: watchers of one shape get one list, each by its own start revision, filters and keys', () => {
    const { hub, put, run } = setup();
    const prefix = { key: b('p/'), rangeEnd: b('p0') };
    const same = [new BoundedSink(), new BoundedSink(), new BoundedSink()];
    const watchers = same.map((sink) => hub.create(prefix, sink));
    const noDelete = new BoundedSink();
    hub.create({ ...prefix, noDelete: true }, noDelete);
    const withPrev = new BoundedSink();
    hub.create({ ...prefix, prevKv: true }, withPrev);
    const future = new BoundedSink();
    hub.create({ ...prefix, startRevision: 4 }, future);
    const oneKey = [new BoundedSink(), new BoundedSink()];
    for (const sink of oneKey) hub.create({ key: b('p/a') }, sink);
    const elsewhere = new BoundedSink();
    hub.create({ key: b('q'), rangeEnd: b('r') }, elsewhere);

    put('p/a', '1'); // 2
    put('p/b', '1'); // 3
    run({ type: 'deleteRange', request: { key: b('p/a') } }); // 4
    put('p/a', '2'); // 5
    // A txn on two keys: one response per watcher, with the events it wants.
    run({ type: 'txn', request: { compare: [], success: [{ requestDeleteRange: { key: b('p/a') } }, { requestPut: { key: b('p/b'), value: b('2') } }], failure: [] } }); // 6

    const all = ['0:p/a@2', '0:p/b@3', '1:p/a@4', '0:p/a@5', '1:p/a@6', '0:p/b@6'];
    for (const sink of same) assert.deepEqual(sink.events(), all);
    for (let i = 0; i < 5; i++) {
      const lists = same.map((sink) => (sink.received[i] as Extract<WatchMessage, { type: 'events' }>).events);
      assert.ok(lists[0] === lists[1] && lists[1] === lists[2], `one list for the shape's watchers at put ${i}`);
    }
    assert.deepEqual(same.map((sink) => (sink.received[0] as Extract<WatchMessage, { type: 'events' }>).watchId), watchers.map((w) => w.id));
    assert.deepEqual(noDelete.events(), all.filter((e) => e.startsWith('0:')));
    assert.deepEqual(future.events(), all.filter((e) => Number(e.split('@')[1]) >= 4));
    assert.deepEqual(withPrev.events(), all);
    const prevOf = (sink: BoundedSink, i: number) => (sink.received[i] as Extract<WatchMessage, { type: 'events' }>).events[0]!.prevKv;
    assert.ok(prevOf(withPrev, 2) !== undefined && prevOf(same[0]!, 2) === undefined, 'prevKv only for the watcher that asked');
    for (const sink of oneKey) assert.deepEqual(sink.events(), ['0:p/a@2', '1:p/a@4', '0:p/a@5', '1:p/a@6']);
    assert.deepEqual(elsewhere.events(), []);
  });

  it('a watcher of a shared shape whose sink refuses a put falls behind alone and catches up exactly; a cancelled one gets nothing more', () => {
    const { hub, put } = setup();
    const prefix = { key: b('p/'), rangeEnd: b('p0') };
    const slow = new BoundedSink(1);
    const fast = new BoundedSink();
    const gone = new BoundedSink();
    const slowWatcher = hub.create(prefix, slow);
    hub.create(prefix, fast);
    const goneWatcher = hub.create(prefix, gone);
    put('p/1', 'a'); // 2
    goneWatcher.cancel();
    put('p/2', 'a'); // 3: slow's buffer is full
    put('p/3', 'a'); // 4
    assert.equal(slowWatcher.synced, false);
    assert.deepEqual(fast.events(), ['0:p/1@2', '0:p/2@3', '0:p/3@4']);
    assert.deepEqual(gone.events(), ['0:p/1@2']);
    slow.capacity = Infinity;
    hub.syncUnsynced();
    assert.equal(slowWatcher.synced, true);
    put('p/4', 'a'); // 5
    assert.deepEqual(slow.events(), ['0:p/1@2', '0:p/2@3', '0:p/3@4', '0:p/4@5']);
    assert.deepEqual(fast.events(), ['0:p/1@2', '0:p/2@3', '0:p/3@4', '0:p/4@5']);
  });

  it('a step serves the oldest unsynced watchers first and sends the ones still behind to the back', () => {
    const { hub, put } = setup({ syncWatchersMax: 2 });
    const sinks = Array.from({ length: 5 }, () => new BoundedSink(0));
    const watchers = sinks.map((sink) => hub.create({ key: b('k') }, sink));
    put('k', '1'); // every sink refuses: all five unsynced, in creation order
    for (const i of [2, 3, 4]) sinks[i]!.capacity = Infinity; // the first two stay stuck
    assert.equal(hub.syncUnsynced(), 5, 'the first step tries the two stuck ones');
    assert.equal(hub.syncUnsynced(), 3, 'the next ones get their turn instead of waiting behind them');
    assert.equal(hub.syncUnsynced(), 2);
    assert.deepEqual(watchers.map((w) => w.synced), [false, false, true, true, true]);
    for (const i of [2, 3, 4]) assert.deepEqual(sinks[i]!.events(), ['0:k@2']);
  });

  it('a step passes by watchers whose sinks are not ready, and later steps reuse the history read for the others', () => {
    const { h, hub, put } = setup();
    let scans = 0;
    const scanEvents = h.store.scanEvents.bind(h.store);
    h.store.scanEvents = (options) => {
      scans++;
      return scanEvents(options);
    };
    const sinks = Array.from({ length: 3 }, () => new ReadySink(1));
    const watchers = sinks.map((sink) => (sink.watcher = hub.create({ key: b('p/'), rangeEnd: b('p0') }, sink)));
    for (let i = 0; i < 4; i++) put(`p/${i}`, `${i}`); // 2..5: each sink takes revision 2, then is full
    assert.equal(hub.unsyncedCount, 3);
    const sentBefore = sinks.map((sink) => sink.sent);
    scans = 0;
    hub.syncUnsynced();
    assert.deepEqual(sinks.map((sink) => sink.sent), sentBefore, 'no sink was offered events while full');
    assert.equal(scans, 0, 'and no history was read for them');

    for (const [i, sink] of sinks.entries()) {
      sink.drain(); // one client reads; the next step serves its watcher alone
      hub.syncUnsynced();
      assert.equal(watchers[i]!.synced, true, `watcher ${i} caught up`);
    }
    assert.equal(scans, 1, 'the three steps read history once');
    for (const sink of sinks) assert.deepEqual(sink.events(), ['0:p/0@2', '0:p/1@3', '0:p/2@4', '0:p/3@5']);
  });

  it('a watcher whose sink is full is parked: no step looks at it until its sink resumes it', () => {
    let unsyncedCalls = 0;
    const { hub, put } = setup({ onUnsynced: () => unsyncedCalls++ });
    const full = new ReadySink(1);
    const plain = new BoundedSink(1); // no ready(): offered events again at every step
    full.watcher = hub.create({ key: b('k') }, full);
    const plainWatcher = hub.create({ key: b('k') }, plain);
    put('k', '1'); // 2: both take it
    put('k', '2'); // 3: both refuse; the full one is parked, the plain one unsynced
    assert.equal(hub.unsyncedCount, 2);
    assert.equal(hub.watcherCount, 2);
    assert.equal(unsyncedCalls, 1, 'only the plain watcher asks for steps');
    put('k', '3'); // 4
    const [asked, sent] = [full.asked, full.sent];
    for (let i = 0; i < 3; i++) hub.syncUnsynced();
    assert.deepEqual([full.asked, full.sent], [asked, sent], 'the parked watcher was neither asked nor offered anything');
    assert.equal(plainWatcher.synced, false, 'the plain one is still offered events and still refuses');

    full.drain(); // the client read: the sink resumes its watcher
    assert.equal(unsyncedCalls, 2, 'a resumed watcher asks for a step');
    assert.equal(hub.syncUnsynced(), 1);
    assert.equal(full.watcher.synced, true);
    assert.deepEqual(full.events(), ['0:k@2', '0:k@3', '0:k@4']);
    full.watcher.resume(); // resuming a watcher that is not parked changes nothing
    assert.equal(full.watcher.synced, true);

    full.capacity = 0;
    put('k', '4'); // 5: refused again, parked again; cancelled while parked
    assert.equal(hub.unsyncedCount, 2);
    full.watcher.cancel();
    assert.equal(hub.unsyncedCount, 1);
    assert.equal(hub.watcherCount, 1);
    full.watcher.resume();
    assert.equal(hub.unsyncedCount, 1, 'a cancelled watcher does not come back');
  });

  it("watchers catching up from one scan get parts of one selection, kept across steps, and partOf says where each was cut", () => {
    const { hub, put } = setup();
    // Each sink takes one message: w0 is left behind at revision 3, w1 at 4, w2 at 5.
    const sinks = [new ReadySink(1), new ReadySink(1), new ReadySink(1)];
    sinks[0]!.watcher = hub.create({ key: b('p/'), rangeEnd: b('p0') }, sinks[0]!);
    put('p/a', '1'); // 2
    sinks[1]!.watcher = hub.create({ key: b('p/'), rangeEnd: b('p0') }, sinks[1]!);
    put('p/b', '1'); // 3
    sinks[2]!.watcher = hub.create({ key: b('p/'), rangeEnd: b('p0') }, sinks[2]!);
    put('p/c', '1'); // 4
    put('p/d', '1'); // 5
    put('p/e', '1'); // 6
    assert.equal(hub.unsyncedCount, 3);
    const lastList = (sink: ReadySink): Event[] => {
      const message = sink.buffer.at(-1)!;
      assert.equal(message.type, 'events');
      return (message as Extract<WatchMessage, { type: 'events' }>).events;
    };
    sinks[0]!.drain();
    sinks[1]!.drain();
    hub.syncUnsynced(); // one scan, 3..6; w2 is still parked
    const whole = lastList(sinks[0]!);
    assert.deepEqual(partOf(whole), { whole, first: 0 }, 'w0 needs the whole selection');
    assert.deepEqual(partOf(lastList(sinks[1]!)), { whole, first: 1 });
    sinks[2]!.drain();
    hub.syncUnsynced(); // a later step reuses the scan, and its selection
    assert.deepEqual(partOf(lastList(sinks[2]!)), { whole, first: 2 });
    sinks[0]!.drain();
    put('p/f', '1'); // 7, live
    assert.equal(partOf(lastList(sinks[0]!)), undefined, "a put's events are no selection of history");
    assert.deepEqual(sinks.map((sink) => sink.events()), [
      ['0:p/a@2', '0:p/b@3', '0:p/c@4', '0:p/d@5', '0:p/e@6', '0:p/f@7'],
      ['0:p/b@3', '0:p/c@4', '0:p/d@5', '0:p/e@6'],
      ['0:p/c@4', '0:p/d@5', '0:p/e@6'],
    ]);
  });

  it('an unsynced watcher overtaken by compaction gets the compacted notice', () => {
    const { hub, put, run } = setup();
    const sink = new BoundedSink(1);
    const watcher = hub.create({ key: b('k') }, sink);
    for (let i = 0; i < 5; i++) put('k', `${i}`); // 2..6; only revision 2 fits
    run({ type: 'compact', request: { revision: 6 } });
    sink.drain();
    hub.syncUnsynced();
    assert.deepEqual(sink.buffer, [{ type: 'compacted', watchId: watcher.id, compactRevision: 6 }]);
    assert.equal(watcher.cancelled, true);
  });

  it('cancelled watchers get nothing more; progress goes to synced watchers', () => {
    const { hub, put } = setup();
    const gone = new BoundedSink();
    const kept = new BoundedSink();
    hub.create({ key: b('k') }, gone).cancel();
    const watcher = hub.create({ key: b('k') }, kept);
    put('k', '1');
    hub.progress();
    assert.deepEqual(gone.events(), []);
    assert.deepEqual(kept.buffer.at(-1), { type: 'progress', watchId: watcher.id, revision: 2 });
  });

  it('after a snapshot install, synced watchers catch up from the new history', () => {
    const source = setup();
    const target = setup();
    const sink = new BoundedSink();
    target.hub.create({ key: b('k') }, sink);
    target.put('k', 'mine'); // revision 2 on the target
    for (let i = 0; i < 4; i++) source.put('k', `${i}`); // source revisions 2..5
    target.h.store.install(source.h.store.export());
    target.hub.restored();
    target.hub.syncUnsynced();
    target.h.index = source.h.index;
    target.put('k', 'live'); // 6
    assert.deepEqual(sink.events(), ['0:k@2', '0:k@3', '0:k@4', '0:k@5', '0:k@6']);
  });

  it('refuses watchers beyond watchersMax', () => {
    const { hub } = setup({ watchersMax: 2 });
    hub.create({ key: b('a') }, new BoundedSink());
    hub.create({ key: b('b') }, new BoundedSink());
    assert.throws(() => hub.create({ key: b('c') }, new BoundedSink()), { code: 'Overloaded' });
  });
});
