// The loop that drives one raft group's core: every call into the RawNode runs here, one at a
// time. Callers queue actions (step a message, tick, propose, read) in an inbox; the loop runs
// them all, then handles one Ready in the order the core gives (see Ready in src/raft/rawnode.ts).
// While that Ready's fsync is in flight the loop keeps running new actions as they arrive, and
// sends at once only what the core releases for that (RawNode.takeMessagesDuringPersist: a
// follower's forwarded proposals, say, which need nothing of the write in flight). Everything else
// they produce (entries to write, answers that promise them) piles up in the core, so the next
// Ready carries all of it under one fsync: group commit without a timer.
import type { Entry, HardState, Message, RawNode, Ready, Snapshot } from '../raft/index.js';

/** What the loop does with each part of a Ready: the replica's network, disk and state machine. */
export interface ReadyHandler {
  /** First, for every Ready: its soft and hard state (leader, role, term) are news. */
  observe(rd: Ready): void;
  /** A Ready's `messages`, then (second call) its `messagesAfterPersist`. */
  send(messages: Message[]): void;
  /** Messages the core released while a Ready's write was in flight (RawNode.takeMessagesDuringPersist). */
  sendDuringPersist(messages: Message[]): void;
  /** Makes a snapshot from the leader durable and installs it (before this Ready's entries). */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * Writes the hard state and entries (flushed when `sync`) and mirrors them into the raft
   * storage; resolves once they are durable.
   */
  persist(update: { hardState?: HardState; entries: Entry[]; sync: boolean }): Promise<void>;
  /** Applies the committed entries and serves the read states. */
  apply(rd: Ready): void;
  /** After advance(): work that follows a handled Ready (snapshots, timers). */
  advanced(): void;
}

export class ReadyLoop {
  private inbox: Array<() => void> = [];
  private wake: (() => void) | undefined;
  private stopped = false;
  /** Handling a Ready (see handle), and within that, stepping actions while its write is in flight. */
  private inTurn = false;
  private stepping = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly raw: RawNode,
    private readonly handler: ReadyHandler,
  ) {}

  /** Actions waiting for the loop's next turn. */
  get backlog(): number {
    return this.inbox.length;
  }

  /**
   * Whether queued actions run as soon as they come: false while the loop handles a Ready and
   * waits for something it does not step through (a snapshot's installation or write).
   */
  get runsActions(): boolean {
    return !this.inTurn || this.stepping;
  }

  /** Runs `action` (which may call the RawNode) on the loop's next turn. */
  enqueue(action: () => void): void {
    this.inbox.push(action);
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Starts the loop; `onFailure` hears of an error that stopped it (a failed write, say). */
  start(onFailure: (error: unknown) => void): void {
    this.done = this.run().catch((error: unknown) => {
      this.stopped = true;
      onFailure(error);
    });
  }

  /** Stops after the Ready in hand (if any); resolves once the loop has ended. */
  stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    return this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.inbox.length === 0 && !this.raw.hasReady()) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      this.runInbox();
      if (!this.raw.hasReady()) continue;
      this.inTurn = true;
      await this.handle(this.raw.ready());
      this.inTurn = false;
    }
  }

  private runInbox(): void {
    const actions = this.inbox;
    this.inbox = [];
    for (const action of actions) action();
  }

  /**
   * One Ready, in the core's order: send what may leave now, persist (snapshot, then entries and
   * hard state under one fsync), send what waited for that, advance.
   *
   * Committed entries are applied while this Ready's fsync runs, not after it (as etcd's server
   * does): the core hands out only entries that are committed AND already persisted here, so
   * nothing they depend on is in the write in flight. The only thing that may then be durable
   * later than the state machine is the commit index in this Ready's hard state, a lower bound the
   * leader teaches again. A Ready the core marks applyAfterPersist (a snapshot, a membership
   * change) keeps the strict order. The loop steps what arrives while the write is in flight,
   * except in a Ready with a snapshot (see stepWhilePersisting). A membership change's Ready may
   * step: what applying the change waits for is that its commit left first, and the core releases
   * nothing early while a commit past a membership change is not durable
   * (RawNode.takeMessagesDuringPersist; ready-loop.test.ts steps an answer during that write).
   */
  private async handle(rd: Ready): Promise<void> {
    const handler = this.handler;
    handler.observe(rd);
    handler.send(rd.messages);
    if (rd.snapshot) await handler.installSnapshot(rd.snapshot);
    let persisted: Promise<void> | undefined;
    if (rd.hardState || rd.entries.length > 0) {
      // mustSync is false when only the commit index moved: written, not flushed.
      persisted = handler.persist({ hardState: rd.hardState, entries: rd.entries, sync: rd.mustSync });
      // Awaited below; this only keeps a failure from being reported as unhandled if apply throws first.
      persisted.catch(() => undefined);
    }
    if (!rd.applyAfterPersist) handler.apply(rd);
    if (persisted) await (rd.snapshot ? persisted : this.stepWhilePersisting(persisted));
    handler.send(rd.messagesAfterPersist);
    if (rd.applyAfterPersist) handler.apply(rd);
    this.raw.advance();
    handler.advanced();
  }

  /**
   * Runs the actions that arrive until `persisted` settles, each batch followed by the messages
   * the core lets leave before this Ready is durable. A follower's client proposal thus reaches
   * the leader while the follower's fsync runs, rather than after it (etcd's node likewise steps
   * proposals and messages between handing out a Ready and its Advance).
   */
  private async stepWhilePersisting(persisted: Promise<void>): Promise<void> {
    let settled = false;
    const onSettled = () => {
      settled = true;
      this.wakeUp();
    };
    persisted.then(onSettled, onSettled);
    this.stepping = true;
    for (;;) {
      if (this.inbox.length > 0 && !this.stopped) {
        this.runInbox();
        const early = this.raw.takeMessagesDuringPersist();
        if (early.length > 0) this.handler.sendDuringPersist(early);
        continue;
      }
      if (settled) break;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    this.stepping = false;
    await persisted;
  }
}
