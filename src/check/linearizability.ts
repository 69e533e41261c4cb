// A linearizability checker in the style of porcupine: the Wing–Gong search with Lowe's
// just-in-time linearization and memoization of (set of linearized operations, model state), run
// separately on each partition of the history (per key for a key-value map).
//
// The history becomes one list of call and return events sorted by time. The search walks it:
// at a call event it tries to linearize that operation now (the model must accept its output); on
// success the operation's two events leave the list and the walk restarts at the front. Reaching a
// return event means an operation that has already returned was never linearized, so the search
// backtracks and undoes the last choice. A (linearized set, state) pair seen before cannot lead
// anywhere new, which is what keeps the search from exploding on concurrent histories.
//
// Unknown outcomes (return = Infinity) put the return event at the end of the list, so such an
// operation may be linearized anywhere after its call. Once every operation with a known outcome
// is linearized, the remaining unknown ones are placed after everything else, which has the same
// effect as "never happened" for everything the history observed; so both possibilities are
// covered without a special case in the search.

import type {
  CheckOptions,
  CheckResult,
  Model,
  Operation,
  Partition,
} from './types.js';
import { MEMO_ENTRIES_MAX_DEFAULT, SEARCH_STEPS_MAX_DEFAULT } from './types.js';
import { Prng } from '../random.js';

/** One event of the doubly linked event list: the call or the return of one operation. */
interface EventNode {
  opIndex: number;
  isCall: boolean;
  time: number;
  /** For a call: its return event. For a return: null. */
  match: EventNode | null;
  prev: EventNode | null;
  next: EventNode | null;
}

/** How often (in search steps) the wall clock is looked at when a timeout is set. */
const CLOCK_CHECK_INTERVAL_STEPS = 4096;

/**
 * Checks that `history` is linearizable with respect to `model`. Partitions are checked smallest
 * first, so an 'illegal' verdict names the smallest partition without a linearization.
 */
export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  for (const op of history) validateOperation(op);
  const partitions: Partition<Input, Output>[] = model.partition
    ? model.partition(history)
    : [{ key: '', ops: history }];
  partitions.sort((a, b) => a.ops.length - b.ops.length || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const budget = new SearchBudget(options);
  let sawUnknown = false;
  let partitionsChecked = 0;
  for (const partition of partitions) {
    const outcome = searchPartition(model, partition.ops, budget);
    partitionsChecked++;
    if (outcome.kind === 'illegal') {
      return {
        result: 'illegal',
        searchSteps: budget.steps,
        partitionsChecked,
        failure: {
          partitionKey: partition.key,
          ops: partition.ops,
          longestLinearizedPrefix: outcome.longest,
          text: renderOperations(model, partition.ops, outcome.longest),
        },
      };
    }
    if (outcome.kind === 'unknown') {
      sawUnknown = true;
      // A later partition may still be illegal, but the shared budget is spent: stop here.
      if (budget.exhausted() !== undefined) break;
    }
  }
  if (sawUnknown) {
    return { result: 'unknown', searchSteps: budget.steps, partitionsChecked, stoppedBy: budget.exhausted() };
  }
  return { result: 'ok', searchSteps: budget.steps, partitionsChecked };
}

function validateOperation(op: Operation<unknown, unknown>): void {
  if (!Number.isFinite(op.call)) throw new RangeError(`operation call time must be finite, got ${op.call}`);
  if (Number.isNaN(op.return) || op.return < op.call) {
    throw new RangeError(`operation return time ${op.return} is before its call time ${op.call}`);
  }
}

/** The shared work limit: steps always, wall time when asked for. */
class SearchBudget {
  steps = 0;
  private readonly stepsMax: number;
  private readonly deadlineMs: number | undefined;
  private readonly memoEntriesMax: number;
  private stoppedBy: 'timeout' | 'searchStepsMax' | 'memoEntriesMax' | undefined;

  constructor(options: CheckOptions) {
    this.stepsMax = options.searchStepsMax ?? SEARCH_STEPS_MAX_DEFAULT;
    this.memoEntriesMax = options.memoEntriesMax ?? MEMO_ENTRIES_MAX_DEFAULT;
    this.deadlineMs = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  }

  /** Counts one step; returns false when the budget is spent. */
  spend(): boolean {
    if (this.stoppedBy !== undefined) return false;
    this.steps++;
    if (this.steps > this.stepsMax) this.stoppedBy = 'searchStepsMax';
    else if (
      this.deadlineMs !== undefined &&
      this.steps % CLOCK_CHECK_INTERVAL_STEPS === 0 &&
      Date.now() > this.deadlineMs
    ) {
      this.stoppedBy = 'timeout';
    }
    return this.stoppedBy === undefined;
  }

  /** Whether one more memo entry fits (the memo of one partition holds `size` now). */
  remember(size: number): boolean {
    if (size >= this.memoEntriesMax) this.stoppedBy = 'memoEntriesMax';
    return this.stoppedBy === undefined;
  }

  exhausted(): 'timeout' | 'searchStepsMax' | 'memoEntriesMax' | undefined {
    return this.stoppedBy;
  }
}

type PartitionOutcome = { kind: 'ok' } | { kind: 'unknown' } | { kind: 'illegal'; longest: number[] };

function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: Operation<Input, Output>[],
  budget: SearchBudget,
): PartitionOutcome {
  const head = buildEventList(ops);
  const knownCount = ops.reduce((n, op) => n + (op.return === Infinity ? 0 : 1), 0);
  const linearized = new LinearizedSet(ops.length);
  const seen = new Set<string>();
  const stack: { call: EventNode; state: State }[] = [];
  let state = model.init();
  let linearizedKnown = 0;
  let longest: number[] = [];
  let event = head.next;

  while (linearizedKnown < knownCount) {
    if (!budget.spend()) return { kind: 'unknown' };
    // The list always ends with a return event while a known operation is left, so the walk
    // meets a return (and backtracks) before it could run off the end.
    if (event === null) throw new Error('assertion failed: linearizability search ran off the event list');
    const op = ops[event.opIndex]!;
    if (event.isCall) {
      const outcomeKnown = op.return !== Infinity;
      const next = model.step(state, op.input, op.output, outcomeKnown);
      if (next !== undefined) {
        linearized.toggle(event.opIndex);
        const key = linearized.key() + model.stateKey(next);
        if (!seen.has(key)) {
          if (!budget.remember(seen.size)) return { kind: 'unknown' };
          seen.add(key);
          stack.push({ call: event, state });
          state = next;
          if (outcomeKnown) linearizedKnown++;
          lift(event);
          event = head.next;
          continue;
        }
        linearized.toggle(event.opIndex);
      }
      event = event.next;
    } else {
      // This operation returned before anything else could be linearized: undo the last choice.
      // The deepest stack is copied only here, when it is about to shrink: copying it at every
      // new depth made a long legal history quadratic.
      if (stack.length > longest.length) longest = stack.map((s) => s.call.opIndex);
      const top = stack.pop();
      if (top === undefined) return { kind: 'illegal', longest };
      state = top.state;
      linearized.toggle(top.call.opIndex);
      if (ops[top.call.opIndex]!.return !== Infinity) linearizedKnown--;
      unlift(top.call);
      event = top.call.next;
    }
  }
  return { kind: 'ok' };
}

/**
 * Builds the time-ordered event list behind a sentinel head. At equal times a call sorts before a
 * return, so operations that merely touch are treated as concurrent (the permissive reading, as
 * porcupine does); ties are otherwise broken by operation index so the order is deterministic.
 */
function buildEventList(ops: Operation<unknown, unknown>[]): EventNode {
  const events: EventNode[] = [];
  ops.forEach((op, opIndex) => {
    const ret: EventNode = { opIndex, isCall: false, time: op.return, match: null, prev: null, next: null };
    const call: EventNode = { opIndex, isCall: true, time: op.call, match: ret, prev: null, next: null };
    events.push(call, ret);
  });
  events.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.isCall !== b.isCall) return a.isCall ? -1 : 1;
    return a.opIndex - b.opIndex;
  });
  const head: EventNode = { opIndex: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let last = head;
  for (const event of events) {
    last.next = event;
    event.prev = last;
    last = event;
  }
  return head;
}

/** Removes a call event and its return event from the list (they keep their own links). */
function lift(call: EventNode): void {
  unlink(call);
  unlink(call.match!);
}

/** Puts back what lift removed, in reverse order so every saved link is valid again. */
function unlift(call: EventNode): void {
  relink(call.match!);
  relink(call);
}

function unlink(node: EventNode): void {
  node.prev!.next = node.next;
  if (node.next !== null) node.next.prev = node.prev;
}

function relink(node: EventNode): void {
  node.prev!.next = node;
  if (node.next !== null) node.next.prev = node;
}

/**
 * The set of linearized operations, kept as a 96-bit Zobrist hash: each operation has three
 * random words, and the set's hash is the XOR of its members' words, updated in O(1) per change.
 * The memo needs only equality of sets; a bitset key grew with the history (a 40,000-operation key
 * made every memo entry 5 KB, and a 30-minute `lichen check` ran out of memory). Two different
 * sets share a hash with probability about n²/2^97 for n memo entries; that could only prune a
 * branch, so the worst case is a false 'illegal', never a missed violation.
 */
class LinearizedSet {
  private readonly words: Uint32Array;
  private h0 = 0;
  private h1 = 0;
  private h2 = 0;

  constructor(size: number) {
    this.words = new Uint32Array(size * 3);
    // Seeded, so a replayed check searches identically.
    const prng = new Prng(size);
    for (let i = 0; i < this.words.length; i++) this.words[i] = prng.nextU32();
  }

  /** Adds the operation if absent, removes it if present. */
  toggle(opIndex: number): void {
    this.h0 ^= this.words[opIndex * 3]!;
    this.h1 ^= this.words[opIndex * 3 + 1]!;
    this.h2 ^= this.words[opIndex * 3 + 2]!;
  }

  /** Six UTF-16 units naming the set, then a separator before the model state's key. */
  key(): string {
    return String.fromCharCode(this.h0 & 0xffff, this.h0 >>> 16, this.h1 & 0xffff, this.h1 >>> 16, this.h2 & 0xffff, this.h2 >>> 16, 0);
  }
}

function renderOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: Operation<Input, Output>[],
  longest: number[],
): string {
  const order = ops.map((_, i) => i).sort((a, b) => ops[a]!.call - ops[b]!.call || a - b);
  const lines = order.map((i) => {
    const op = ops[i]!;
    const known = op.return !== Infinity;
    const what = model.describe
      ? model.describe(op.input, op.output, known)
      : `${JSON.stringify(op.input)} -> ${known ? JSON.stringify(op.output) : '?'}`;
    const end = known ? String(op.return) : '∞';
    return `#${i} client ${op.clientId} [${op.call}, ${end}] ${what}`;
  });
  lines.push(`longest linearizable prefix: ${longest.length ? longest.map((i) => `#${i}`).join(' ') : '(none)'}`);
  return lines.join('\n');
}
