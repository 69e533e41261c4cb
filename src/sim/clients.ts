// Simulated clients: each issues one operation at a time against whatever node it believes leads,
// and records the operation in the history the linearizability checker reads.
//
// Writes (put, delete, cas) are proposed as log commands; the answer comes when the node the
// client talks to applies the command. Reads use ReadIndex: the node asks the leader for a read
// index, waits until it has applied that far, then reads its own state machine. A client that
// hears nothing within attemptTimeoutSteps retries on another node (writes keep their request id,
// so the session table makes the retry exactly-once). When it gives up, a write that may have
// reached a node is recorded with an unknown outcome (return = Infinity); a write that never
// reached any node, and any read without an answer, is left out: neither can have had an effect.

import type { KvInput, KvOperation, KvOutput } from '../check/index.js';
import type { NodeId } from '../raft/types.js';
import type { Cluster } from './cluster.js';
import type { ApplyOutcome } from './kv-state-machine.js';
import { encodeCommand } from './kv-state-machine.js';
import type { Prng } from '../random.js';
import { isLeaderRole } from './raft-adapter.js';

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
  call: number;
  requestId: number;
  target: NodeId | undefined;
  /** When the current attempt times out, or when to make the next attempt if there is none. */
  deadline: number;
  waiting: boolean;
  attempts: number;
  /** A write that reached some node may still commit after we give up. */
  mayHaveEffect: boolean;
  readContext: string | undefined;
}

class SimClient {
  nextRequestId = 1;
  pending: PendingOperation | undefined;
  leaderGuess: NodeId | undefined;
  /** Last value this client saw per key, used as a plausible cas expectation. */
  lastSeen = new Map<string, string | undefined>();
  constructor(readonly id: number) {}
}

export class ClientPool {
  readonly history: KvOperation[] = [];
  private readonly clients: SimClient[] = [];
  stats = { started: 0, completed: 0, unknown: 0, abandonedReads: 0, abandonedUnsent: 0, attempts: 0 };

  constructor(
    private readonly cluster: Cluster,
    private readonly random: Prng,
    count: number,
    private readonly keys: number,
    private readonly timing: ClientTiming,
  ) {
    // Client ids start at 1; 0 is the liveness probe.
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
      if (now - pending.call >= this.timing.operationTimeoutSteps) {
        this.abandon(client, pending);
        continue;
      }
      this.attempt(client, pending, now, pending.waiting);
    }
  }

  /** Ends every operation still in flight (the run is over). */
  abandonAll(): void {
    for (const client of this.clients) if (client.pending !== undefined) this.abandon(client, client.pending);
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
    client.pending = {
      input,
      call: now,
      requestId,
      target: undefined,
      deadline: now,
      waiting: false,
      attempts: 0,
      mayHaveEffect: false,
      readContext: undefined,
    };
    this.stats.started++;
    this.cluster.trace.string(`op${client.id}:${requestId}:${input.kind}:${key}@${now};`);
    this.attempt(client, client.pending, now, false);
  }

  /** Picks a node: the believed leader unless the last attempt there failed, else any member. */
  private chooseTarget(client: SimClient, avoid: NodeId | undefined): NodeId {
    const conf = this.cluster.committedConf;
    const members = [...conf.voters, ...conf.learners];
    if (client.leaderGuess !== undefined && client.leaderGuess !== avoid && members.includes(client.leaderGuess)) {
      return client.leaderGuess;
    }
    const others = members.filter((id) => id !== avoid);
    return this.random.pick(others.length > 0 ? others : members);
  }

  private attempt(client: SimClient, pending: PendingOperation, now: number, timedOut: boolean): void {
    const avoid = timedOut || pending.attempts > 0 ? pending.target : undefined;
    if (timedOut || pending.attempts > 0) client.leaderGuess = undefined;
    const target = this.chooseTarget(client, avoid);
    pending.target = target;
    pending.attempts++;
    this.stats.attempts++;
    let refused: Error | undefined;
    if (pending.input.kind === 'get') {
      pending.readContext = `${client.id}:${pending.requestId}:${pending.attempts}`;
      refused = this.cluster.startRead(target, pending.readContext, pending.input.key);
    } else {
      const data = encodeCommand({ clientId: client.id, requestId: pending.requestId, op: pending.input });
      const attempt = pending.attempts;
      refused = this.cluster.propose(target, data, () => this.onRefused(client, pending, attempt));
      // Raft may still refuse it when the member's loop runs it; then it had no effect, but an
      // earlier attempt may have had, so the client keeps assuming it might.
      if (refused === undefined) pending.mayHaveEffect = true;
    }
    if (refused !== undefined) {
      pending.waiting = false;
      pending.deadline = now + this.timing.refusalBackoffSteps;
      return;
    }
    pending.waiting = true;
    pending.deadline = now + this.timing.attemptTimeoutSteps;
    // A node that accepted a request knows (or is) the leader: follow its hint next time.
    const status = this.cluster.node(target).live?.raw.status();
    if (status !== undefined) client.leaderGuess = isLeaderRole(status.role) ? target : status.lead || undefined;
  }

  /** Raft refused a proposal the member had taken: back off, then try again. */
  private onRefused(client: SimClient, pending: PendingOperation, attempt: number): void {
    if (client.pending !== pending || pending.attempts !== attempt || !pending.waiting) return;
    pending.waiting = false;
    pending.deadline = this.cluster.now + this.timing.refusalBackoffSteps;
  }

  private finish(client: SimClient, pending: PendingOperation, output: KvOutput, now: number): void {
    this.history.push({ clientId: client.id, input: pending.input, call: pending.call, output, return: now });
    if (pending.input.kind === 'get') client.lastSeen.set(pending.input.key, output.value);
    else if (pending.input.kind === 'put') client.lastSeen.set(pending.input.key, pending.input.value);
    else if (pending.input.kind === 'delete') client.lastSeen.set(pending.input.key, undefined);
    else if (output.ok === true) client.lastSeen.set(pending.input.key, pending.input.value);
    client.pending = undefined;
    this.stats.completed++;
    this.cluster.trace.string(`done${client.id}:${pending.requestId}:${JSON.stringify(output)}@${now};`);
  }

  private abandon(client: SimClient, pending: PendingOperation): void {
    client.pending = undefined;
    if (pending.input.kind === 'get') {
      this.stats.abandonedReads++;
      return;
    }
    if (!pending.mayHaveEffect) {
      this.stats.abandonedUnsent++;
      return;
    }
    this.stats.unknown++;
    this.history.push({ clientId: client.id, input: pending.input, call: pending.call, output: undefined, return: Infinity });
    // The write may or may not have happened: forget what we believed about the key.
    client.lastSeen.delete(pending.input.key);
  }

  onApplied(node: NodeId, outcome: ApplyOutcome): void {
    const client = this.clients[outcome.command.clientId - 1];
    const pending = client?.pending;
    if (client === undefined || pending === undefined || !pending.waiting) return;
    if (pending.target !== node || pending.requestId !== outcome.command.requestId) return;
    if (outcome.kind === 'stale') return;
    this.finish(client, pending, outcome.result, this.cluster.now);
  }

  onRead(node: NodeId, context: string, value: string | undefined): void {
    const clientId = Number(context.slice(0, context.indexOf(':')));
    const client = this.clients[clientId - 1];
    const pending = client?.pending;
    if (client === undefined || pending === undefined || !pending.waiting) return;
    if (pending.target !== node || pending.readContext !== context) return;
    this.finish(client, pending, { value }, this.cluster.now);
  }
}
