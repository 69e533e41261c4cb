// A tiny deterministic network for raft tests: it handles every node's Ready exactly as a server
// would (queue the messages that may leave at once, persist into MemoryStorage, queue the ones that
// waited for it, apply committed entries, advance) and delivers queued messages, with hooks to
// drop, cut or hold messages. No timers: tests call tick().

import { isLichenError } from '../errors.js';
import { seededRandom } from '../random.js';
import { decodeConfChange } from './membership.js';
import { Raft, type RaftConfig, type ReadState } from './raft.js';
import { RawNode, type RaftClass, type Ready } from './rawnode.js';
import { MemoryStorage } from './storage.js';
import { EntryType, snapshotBytes, type ConfState, type Entry, type Message, type NodeId } from './types.js';

export { seededRandom };

export const text = (s: string): Uint8Array => new TextEncoder().encode(s);
export const str = (b: Uint8Array): string => new TextDecoder().decode(b);

export interface TestNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Payloads of applied normal, non-empty entries, in order (the "state machine"). */
  applied: string[];
  appliedIndex: number;
  conf: ConfState;
  readStates: ReadState[];
  /** Every Ready this node produced, for tests that inspect them. */
  readies: Ready[];
}

export type Verdict = 'deliver' | 'drop' | 'hold';

export interface NetworkOptions {
  config?: Partial<Omit<RaftConfig, 'id' | 'storage' | 'random'>>;
  /** Per-node core class (to build deliberately unsafe nodes). */
  raftClass?: (id: NodeId) => RaftClass;
  seed?: number;
  /** Bootstrap the given ids as the initial voters (default: all ids). */
  voters?: NodeId[];
  /** Ids started empty, to join later through membership changes. */
  joiners?: NodeId[];
  /** Prepared storage for some ids (no bootstrap for them); see storageWithLog. */
  storage?: (id: NodeId) => MemoryStorage | undefined;
}

/**
 * A storage holding entries with the given terms at indexes 1..n (payload "t<term>i<index>"),
 * membership `conf`, and hard state `term` (default: the last entry's term) with no vote.
 */
export function storageWithLog(terms: number[], conf: ConfState, term?: number, commit = 0): MemoryStorage {
  const storage = new MemoryStorage();
  storage.append(
    terms.map((t, i) => ({ term: t, index: i + 1, type: EntryType.Normal, data: text(`t${t}i${i + 1}`) })),
  );
  storage.setConfState(conf);
  storage.setHardState({ term: term ?? terms[terms.length - 1] ?? 0, vote: 0, commit });
  return storage;
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent but not yet delivered. */
  queue: Message[] = [];
  /** Messages held by the `route` hook, for the test to deliver or drop by hand. */
  held: Message[] = [];
  /** Decides each message's fate; by default everything not cut is delivered. */
  route: (m: Message) => Verdict = () => 'deliver';
  /** Ids whose links are cut, as "a-b" (both directions). */
  private readonly cuts = new Set<string>();
  /** Ids that are down: they neither receive nor process anything. */
  readonly down = new Set<NodeId>();
  private readonly options: NetworkOptions;

  constructor(ids: NodeId[], options: NetworkOptions = {}) {
    this.options = options;
    const joiners = new Set(options.joiners ?? []);
    const voters = options.voters ?? ids.filter((id) => !joiners.has(id));
    for (const id of ids) {
      const prepared = options.storage?.(id);
      const node = this.makeNode(id, prepared ?? new MemoryStorage(), 0);
      if (!joiners.has(id) && !prepared) node.raw.bootstrap(voters);
      this.nodes.set(id, node);
    }
    this.stabilize();
  }

  private makeNode(id: NodeId, storage: MemoryStorage, applied: number): TestNode {
    const seed = (this.options.seed ?? 1) * 1000 + id;
    const config: RaftConfig = { ...this.options.config, id, storage, random: seededRandom(seed), applied };
    const raftClass = this.options.raftClass?.(id) ?? Raft;
    const raw = new RawNode(config, raftClass);
    const conf = storage.initialState().confState;
    return { id, raw, storage, applied: [], appliedIndex: applied, conf, readStates: [], readies: [] };
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raw.raft;
  }

  /** Adds an empty node (to be added to the group by a membership change). */
  addEmptyNode(id: NodeId): TestNode {
    const node = this.makeNode(id, new MemoryStorage(), 0);
    this.nodes.set(id, node);
    return node;
  }

  /**
   * Simulates a crash and restart: unpersisted state is lost, the node restarts from its storage
   * and re-applies committed entries after its snapshot (the test state machine is rebuilt).
   */
  restart(id: NodeId): TestNode {
    const old = this.node(id);
    const snap = old.storage.snapshot();
    const node = this.makeNode(id, old.storage, 0);
    node.applied = snap.data.byteLength > 0 ? (JSON.parse(new TextDecoder().decode(snapshotBytes(snap.data))) as string[]) : [];
    node.appliedIndex = snap.metadata.index;
    node.conf = snap.metadata.conf;
    this.nodes.set(id, node);
    return node;
  }

  cut(a: NodeId, b: NodeId): void {
    this.cuts.add(`${Math.min(a, b)}-${Math.max(a, b)}`);
  }

  /** Cuts every link of `id`. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  heal(): void {
    this.cuts.clear();
    this.route = () => 'deliver';
  }

  isCut(a: NodeId, b: NodeId): boolean {
    return this.cuts.has(`${Math.min(a, b)}-${Math.max(a, b)}`);
  }

  /** Handles one node's Ready the way a server does, in the order the Ready gives. */
  handleReady(node: TestNode): void {
    const rd = node.raw.ready();
    node.readies.push(rd);
    // 1. Send what may leave at once.
    this.queue.push(...rd.messages);
    // 2. Persist.
    if (rd.snapshot) {
      node.storage.applySnapshot(rd.snapshot);
      node.applied = JSON.parse(new TextDecoder().decode(snapshotBytes(rd.snapshot.data))) as string[];
      node.appliedIndex = rd.snapshot.metadata.index;
      node.conf = rd.snapshot.metadata.conf;
    }
    node.storage.append(rd.entries);
    if (rd.hardState) node.storage.setHardState(rd.hardState);
    // 3. Send what waited for the persistence.
    this.queue.push(...rd.messagesAfterPersist);
    // 4. Apply.
    for (const e of rd.committedEntries) this.applyEntry(node, e);
    node.readStates.push(...rd.readStates);
    // 5. Advance.
    node.raw.advance();
  }

  private applyEntry(node: TestNode, e: Entry): void {
    if (e.index <= node.appliedIndex) throw new Error(`node ${node.id} applied ${e.index} twice`);
    if (e.index !== node.appliedIndex + 1) throw new Error(`node ${node.id} skipped to ${e.index}`);
    node.appliedIndex = e.index;
    if (e.type === EntryType.ConfChange) {
      node.conf = node.raw.applyConfChange(decodeConfChange(e.data));
      node.storage.setConfState(node.conf);
    } else if (e.data.length > 0) {
      node.applied.push(new TextDecoder().decode(e.data));
    }
  }

  /** Delivers one message now (bypassing the queue and the hooks). */
  deliver(m: Message): void {
    if (this.down.has(m.to)) return;
    this.nodes.get(m.to)?.raw.step(m);
  }

  /** Processes Ready batches and delivers messages until nothing moves (bounded). */
  stabilize(maxRounds = 10_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const node of this.nodes.values()) {
        if (this.down.has(node.id)) continue;
        if (node.raw.hasReady()) {
          this.handleReady(node);
          moved = true;
        }
      }
      if (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        for (const m of batch) this.route1(m);
        moved = true;
      }
      if (!moved) return;
    }
    throw new Error('network did not stabilize');
  }

  private route1(m: Message): void {
    if (this.down.has(m.to) || this.down.has(m.from) || this.isCut(m.from, m.to)) return;
    const verdict = this.route(m);
    if (verdict === 'drop') return;
    if (verdict === 'hold') {
      this.held.push(m);
      return;
    }
    this.nodes.get(m.to)?.raw.step(m);
  }

  /** Ticks every live node once, then stabilizes. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const node of this.nodes.values()) if (!this.down.has(node.id)) node.raw.tick();
      this.stabilize();
    }
  }

  /** Ticks one node `times` times (stabilizing after each tick). */
  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      this.node(id).raw.tick();
      this.stabilize();
    }
  }

  campaign(id: NodeId): void {
    this.node(id).raw.campaign();
    this.stabilize();
  }

  propose(id: NodeId, data: string): void {
    this.node(id).raw.propose(text(data));
    this.stabilize();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw.raft.role === 'leader').map((n) => n.id);
  }

  /** Ticks all nodes until some live node is leader (bounded); returns its id. */
  electSomeone(maxTicks = 200): NodeId {
    for (let i = 0; i < maxTicks; i++) {
      const leaders = this.leaders().filter((id) => !this.down.has(id));
      if (leaders.length === 1) return leaders[0]!;
      this.tickAll();
    }
    throw new Error('no leader elected');
  }
}

/**
 * One step of a randomized run: a proposal `payload` on a random node (refusals are expected),
 * sometimes a node cut off, the network healed, or a node restarted (`onRestart` sees it before it
 * runs); then every node ticks once.
 */
export function chaosStep(net: Network, rnd: () => number, payload: string, onRestart?: (node: TestNode) => void): void {
  const ids = [...net.nodes.keys()];
  const pick = (): NodeId => ids[Math.floor(rnd() * ids.length)]!;
  try {
    net.node(pick()).raw.propose(text(payload));
  } catch (error) {
    if (!isLichenError(error)) throw error;
  }
  if (rnd() < 0.05) net.isolate(pick());
  if (rnd() < 0.1) net.heal();
  if (rnd() < 0.02) onRestart?.(net.restart(pick()));
  net.tickAll(1);
}
