// Simulated clients: each issues one operation at a time against whatever member it believes leads
// the group that holds the key (groupOfKey), through the replica's own client operations, and
// records the operation in the history the linearizability checker reads (one check per group).
//
// Writes (put, delete, and cas as a transaction comparing the value) go through Replica.propose;
// the answer comes when the member the client talks to has applied the command. Reads wait for
// Replica.linearizableBarrier (a ReadIndex round), then read that member's MVCC store. The real
// MVCC keeps no session table, so a write handed to a member is never retried: when its member
// does not answer in time, or answers with an error that does not rule out that it was appended,
// it is recorded with an unknown outcome (return = Infinity) and the client moves on. A write
// refused before it reached the log, and a read that got no answer, is tried again on another
// member (or left out of the history when the client gives up: it can have had no effect).

import type { KvInput, KvOperation, KvOutput } from '../check/index.js';
import { isLichenError } from '../errors.js';
import { CompareResult, CompareTarget, type Command, type TxnResponse } from '../mvcc/index.js';
import type { NodeId } from '../raft/types.js';
import { metaGroupId, type GroupId } from '../ids.js';
import type { Applied, Replica } from '../replica/index.js';
import type { Cluster } from './cluster.js';
import type { Prng } from '../random.js';

export interface ClientTiming {
  /** Probability per step that an idle client starts an operation. */
  startRate: number;
  /** How long one attempt may wait for its answer before the client tries another node. */
  attemptTimeoutSteps: number;
  /** How long an operation may take in total before the client gives up on it. */
  operationTimeoutSteps: number;
  /** Pause before retrying after a node refused outright (no leader, node down). */
  refusalBackoffSteps: number;
}

interface PendingOperation {
  input: KvInput;
  /** The group that holds the key. */
  group: GroupId;
  call: number;
  requestId: number;
  target: NodeId | undefined;
  /** When the current attempt times out, or when to make the next attempt if there is none. */
  deadline: number;
  waiting: boolean;
  attempts: number;
}

class SimClient {
  nextRequestId = 1;
  pending: PendingOperation | undefined;
  /** Per group: the member this client believes leads it. */
  leaderGuess = new Map<GroupId, NodeId>();
  /** Last value this client saw per key, used as a plausible cas expectation. */
  lastSeen = new Map<string, string | undefined>();
  constructor(readonly id: number) {}
}

/**
 * The group that holds a key of the clients (`k<n>`: group 1 + n mod groups) or of the liveness
 * probe (`__liveness` in group 1, `__liveness/<group>` in the others). Keys are spread over the
 * groups so that each group's history is checked on its own (linearizability is per key).
 */
export function groupOfKey(key: string, groups: number): GroupId {
  if (key.startsWith('k')) return metaGroupId + (Number(key.slice(1)) % groups);
  const slash = key.indexOf('/');
  return slash < 0 ? metaGroupId : Number(key.slice(slash + 1));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The MVCC command that carries out a write of the checker's model. */
export function writeCommand(input: Exclude<KvInput, { kind: 'get' }>): Command {
  const key = encoder.encode(input.key);
  switch (input.kind) {
    case 'put':
      return { type: 'put', request: { key, value: encoder.encode(input.value) } };
    case 'delete':
      return { type: 'deleteRange', request: { key } };
    case 'cas': {
      // "The value is `expected`", or for an absent one, "the key has no version".
      const compare =
        input.expected === undefined
          ? { result: CompareResult.EQUAL, target: CompareTarget.VERSION, key, version: 0 }
          : { result: CompareResult.EQUAL, target: CompareTarget.VALUE, key, value: encoder.encode(input.expected) };
      return { type: 'txn', request: { compare: [compare], success: [{ requestPut: { key, value: encoder.encode(input.value) } }], failure: [] } };
    }
  }
}

/**
 * Whether a refused proposal certainly never reached the log: raft dropped it (no leader, an
 * election or a transfer under way: Unavailable naming the leader it knew) or a limit refused it.
 * Anything else (a timeout, a member that stopped) leaves the outcome unknown.
 */
function neverProposed(error: unknown): boolean {
  return isLichenError(error, 'Overloaded') || (isLichenError(error, 'Unavailable') && error.details.leaderId !== undefined);
}

export class ClientPool {
  readonly history: KvOperation[] = [];
  private readonly clients: SimClient[] = [];
  stats = { started: 0, completed: 0, unknown: 0, abandonedReads: 0, abandonedUnsent: 0, attempts: 0 };
  /**
   * A leader cut off with followers (the simulator's partition sets it, and clears it on heal):
   * meanwhile reads go through those followers and writes to the members outside, so that writes
   * the majority acknowledges are followed by reads the cut-off side answers, if it answers.
   */
  cutOff: { leader: NodeId; side: NodeId[] } | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly random: Prng,
    count: number,
    private readonly keys: number,
    private readonly timing: ClientTiming,
  ) {
    for (let i = 1; i <= count; i++) this.clients.push(new SimClient(i));
  }

  idle(): boolean {
    return this.clients.every((c) => c.pending === undefined);
  }

  /** One time unit: start new operations (when `active`), retry or abandon stuck ones. */
  step(now: number, active: boolean): void {
    for (const client of this.clients) {
      const pending = client.pending;
      if (pending === undefined) {
        if (active && this.random.chance(this.timing.startRate)) this.begin(client, now);
        continue;
      }
      if (now < pending.deadline) continue;
      // A write in some member's hands may still be applied: its outcome is unknown.
      if (now - pending.call >= this.timing.operationTimeoutSteps || (pending.waiting && pending.input.kind !== 'get')) {
        this.abandon(client, pending, pending.waiting);
        continue;
      }
      this.attempt(client, pending, now);
    }
  }

  /** Ends every operation still in flight (the run is over). */
  abandonAll(): void {
    for (const client of this.clients) if (client.pending !== undefined) this.abandon(client, client.pending, client.pending.waiting);
  }

  private begin(client: SimClient, now: number): void {
    const key = `k${this.random.int(this.keys)}`;
    const requestId = client.nextRequestId++;
    const value = `c${client.id}r${requestId}`;
    const roll = this.random.float();
    let input: KvInput;
    if (roll < 0.4) input = { kind: 'get', key };
    else if (roll < 0.7) input = { kind: 'put', key, value };
    else if (roll < 0.8) input = { kind: 'delete', key };
    else {
      const expected = this.random.chance(0.8) ? client.lastSeen.get(key) : `c${client.id}r${requestId - 1}`;
      input = { kind: 'cas', key, expected, value };
    }
    const group = groupOfKey(key, this.cluster.groupIds.length);
    client.pending = { input, group, call: now, requestId, target: undefined, deadline: now, waiting: false, attempts: 0 };
    this.stats.started++;
    this.cluster.trace.event(`op${client.id}:${requestId}:${input.kind}:${key}@${now};`);
    this.attempt(client, client.pending, now);
  }

  /**
   * Picks a member of the group: the believed leader unless the last attempt there failed, else any
   * member. While a leader is cut off with followers (cutOff), a read goes through one of those
   * followers and a write to a member outside.
   */
  private chooseTarget(client: SimClient, group: GroupId, avoid: NodeId | undefined, read: boolean): NodeId {
    const conf = this.cluster.committedConfOf(group);
    const members = [...conf.voters, ...conf.learners];
    const cutOff = this.cutOff;
    if (cutOff !== undefined) {
      const side = members.filter((id) => (read ? id !== cutOff.leader && cutOff.side.includes(id) : !cutOff.side.includes(id)));
      const guess = client.leaderGuess.get(group);
      if (!read && guess !== undefined && guess !== avoid && side.includes(guess)) return guess;
      if (side.length > 0) return this.random.pick(side);
    }
    const guess = client.leaderGuess.get(group);
    if (guess !== undefined && guess !== avoid && members.includes(guess)) return guess;
    const others = members.filter((id) => id !== avoid);
    return this.random.pick(others.length > 0 ? others : members);
  }

  private attempt(client: SimClient, pending: PendingOperation, now: number): void {
    const retry = pending.attempts > 0;
    const { group } = pending;
    if (retry) client.leaderGuess.delete(group);
    const target = this.chooseTarget(client, group, retry ? pending.target : undefined, pending.input.kind === 'get');
    pending.target = target;
    const attempt = ++pending.attempts;
    this.stats.attempts++;
    const replica = this.cluster.serving(target, group);
    if (replica === undefined) {
      pending.waiting = false;
      pending.deadline = now + this.timing.refusalBackoffSteps;
      return;
    }
    const current = () => client.pending === pending && pending.attempts === attempt && pending.waiting;
    const input = pending.input;
    if (input.kind === 'get') {
      replica.linearizableBarrier().then(
        () => current() && this.finish(client, pending, { value: this.read(replica, input.key) }, target),
        () => current() && this.backOff(pending),
      );
    } else {
      replica.propose(writeCommand(input)).then(
        (applied) => current() && this.finish(client, pending, this.outputOf(input, applied), target),
        (error: unknown) => {
          if (!current()) return;
          if (neverProposed(error)) this.backOff(pending);
          else this.abandon(client, pending, true);
        },
      );
    }
    pending.waiting = true;
    pending.deadline = now + this.timing.attemptTimeoutSteps;
    // A node that accepted a request knows (or is) the leader: follow its hint next time.
    const guess = replica.isLeader() ? target : replica.leaderId;
    if (guess !== 0) client.leaderGuess.set(group, guess);
    else client.leaderGuess.delete(group);
  }

  private read(replica: Replica, key: string): string | undefined {
    const kv = replica.store.range({ key: encoder.encode(key) }).kvs[0];
    return kv === undefined ? undefined : decoder.decode(kv.value);
  }

  private outputOf(input: KvInput, applied: Applied): KvOutput {
    return input.kind === 'cas' ? { ok: (applied.response as TxnResponse).succeeded } : {};
  }

  /** The attempt was refused without effect: back off, then try again. */
  private backOff(pending: PendingOperation): void {
    pending.waiting = false;
    pending.deadline = this.cluster.now + this.timing.refusalBackoffSteps;
  }

  private finish(client: SimClient, pending: PendingOperation, output: KvOutput, by: NodeId): void {
    const now = this.cluster.now;
    this.history.push({ clientId: client.id, input: pending.input, call: pending.call, output, return: now });
    if (pending.input.kind === 'get') client.lastSeen.set(pending.input.key, output.value);
    else if (pending.input.kind === 'put') client.lastSeen.set(pending.input.key, pending.input.value);
    else if (pending.input.kind === 'delete') client.lastSeen.set(pending.input.key, undefined);
    else if (output.ok === true) client.lastSeen.set(pending.input.key, pending.input.value);
    client.pending = undefined;
    this.stats.completed++;
    this.cluster.trace.event(`done${client.id}:${pending.requestId}:${JSON.stringify(output)}:n${by}@${now};`);
  }

  /** Gives up on an operation; a write that reached a member (`mayHaveEffect`) is recorded as unknown. */
  private abandon(client: SimClient, pending: PendingOperation, mayHaveEffect: boolean): void {
    client.pending = undefined;
    if (pending.input.kind === 'get') {
      this.stats.abandonedReads++;
      return;
    }
    if (!mayHaveEffect) {
      this.stats.abandonedUnsent++;
      return;
    }
    this.stats.unknown++;
    this.history.push({ clientId: client.id, input: pending.input, call: pending.call, output: undefined, return: Infinity });
    this.cluster.trace.event(`unknown${client.id}:${pending.requestId}@${this.cluster.now};`);
    // The write may or may not have happened: forget what we believed about the key.
    client.lastSeen.delete(pending.input.key);
  }
}
