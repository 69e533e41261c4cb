// The state machine a replica applies committed commands to: the MVCC store and the auth store
// over one engine (lmdb in a process, the memory engine in tests), with etcd's apply-time
// authorization (src/auth/apply.ts). Both stores keep their data under their own key prefixes,
// so one engine export is the whole state and one import restores it.
//
// Engine commits. The replica applies each Ready's entries in one batch; an engine may commit
// batches to its storage later, many at once (the replica commits on every tick, the engine by
// itself once engineUncommittedOpsMax writes wait), as etcd's backend commits every 100 ms or
// 10,000 writes. Each batch carries the applied index and the current revision with its data
// (written once, as the batch ends: MvccStore.batchApplies), so after a crash the engine holds the
// state as of some applied index and the WAL replays the rest; the WAL may release entries only
// up to what a sync() has made durable (durableIndex).
import { AuthStore, applyCommand, type ApplyResult } from '../auth/index.js';
import type { Engine, EngineSpace } from '../engine/index.js';
import { MvccStore, type Command, type RecordCachePart } from '../mvcc/index.js';
import type { StateMachine } from './storage.js';

export class KvStateMachine implements StateMachine {
  readonly mvcc: MvccStore;
  readonly auth: AuthStore;

  private durable: number;

  /**
   * `stores`: already opened over `engine` (start-up may have installed a snapshot into them);
   * `recordCache`: the process's, for the MVCC store opened here (see MvccStoreOptions).
   */
  constructor(
    readonly engine: Engine,
    stores: { mvcc?: MvccStore; auth?: AuthStore; recordCache?: RecordCachePart } = {},
  ) {
    this.mvcc = stores.mvcc ?? MvccStore.open(engine, stores.recordCache ? { recordCache: stores.recordCache } : {});
    this.auth = stores.auth ?? AuthStore.open(engine);
    // What the engine holds at open came from its files (a snapshot installed later is durable after the next sync).
    this.durable = this.mvcc.appliedIndex;
  }

  get appliedIndex(): number {
    return this.mvcc.appliedIndex;
  }

  apply(index: number, command: Command): ApplyResult {
    return applyCommand(this, index, command);
  }

  markApplied(index: number): void {
    this.mvcc.applyBeside(index, []);
  }

  batch(applies: () => void): void {
    this.mvcc.batchApplies(applies);
  }

  get uncommittedOps(): number {
    return this.engine.uncommittedOps;
  }

  commit(): void {
    this.engine.commit();
  }

  get durableIndex(): number {
    return this.durable;
  }

  export(): Iterable<Uint8Array> {
    return this.mvcc.export();
  }

  exportApplied(): Iterable<Uint8Array> {
    return this.mvcc.exportApplied();
  }

  install(chunks: Iterable<Uint8Array>): void {
    this.mvcc.install(chunks);
    this.auth.reload();
  }

  space(): EngineSpace {
    return this.engine.space();
  }

  async sync(): Promise<void> {
    const applied = this.appliedIndex;
    await this.engine.sync();
    this.durable = Math.max(this.durable, applied);
  }

  async close(): Promise<void> {
    await this.engine.sync();
    this.engine.close();
  }
}
