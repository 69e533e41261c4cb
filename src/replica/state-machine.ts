// The state machine a replica applies committed commands to: the MVCC store and the auth store
// over one engine (lmdb in a process, the memory engine in tests), with etcd's apply-time
// authorization (src/auth/apply.ts). Both stores keep their data under their own key prefixes,
// so one engine export is the whole state and one import restores it.
import { AuthStore, applyCommand, type ApplyResult } from '../auth/index.js';
import type { Engine, EngineSpace } from '../engine/index.js';
import { MvccStore, type Command } from '../mvcc/index.js';
import type { StateMachine } from './storage.js';

export class KvStateMachine implements StateMachine {
  readonly mvcc: MvccStore;
  readonly auth: AuthStore;

  /** `stores`: already opened over `engine` (start-up may have installed a snapshot into them). */
  constructor(
    readonly engine: Engine,
    stores: { mvcc?: MvccStore; auth?: AuthStore } = {},
  ) {
    this.mvcc = stores.mvcc ?? MvccStore.open(engine);
    this.auth = stores.auth ?? AuthStore.open(engine);
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
    this.engine.batch(applies);
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

  sync(): Promise<void> {
    return this.engine.sync();
  }

  async close(): Promise<void> {
    await this.engine.sync();
    this.engine.close();
  }
}
