// The shapes the linearizability checker works on: a recorded history of operations and a
// sequential model that says which outcomes are legal from which state.

/**
 * One client operation as a history records it. `call` and `return` are times on one clock shared
 * by every client (the simulator's tick counter, or any monotonic clock). An operation whose
 * outcome is unknown (the client timed out, or crashed, before learning the result) has
 * `return = Infinity`: it may have taken effect at any point after `call`, or never, and its
 * `output` is ignored.
 */
export interface Operation<Input, Output> {
  clientId: number;
  input: Input;
  call: number;
  output: Output | undefined;
  return: number;
}

/** A named subset of a history that can be checked on its own (for example: all ops on one key). */
export interface Partition<Input, Output> {
  key: string;
  ops: Operation<Input, Output>[];
}

/**
 * A sequential specification. The checker searches for an order of the operations, consistent with
 * real time, in which every `step` succeeds.
 */
export interface Model<State, Input, Output> {
  /** The state before any operation. */
  init(): State;
  /**
   * Applies one operation. Returns the next state when `output` is a legal answer from `state`,
   * or undefined when it is not. When `outcomeKnown` is false the output is unknown and any answer
   * is legal: the step only computes the effect.
   */
  step(state: State, input: Input, output: Output | undefined, outcomeKnown: boolean): State | undefined;
  /** A string that is equal for two states exactly when the states are equal (memoization key). */
  stateKey(state: State): string;
  /**
   * Splits a history into independent parts (per key, for a key-value map). A history is
   * linearizable when every part is, which keeps the search small. Without it, one partition.
   */
  partition?(ops: Operation<Input, Output>[]): Partition<Input, Output>[];
  /** Human-readable text for one operation, used in failure reports. */
  describe?(input: Input, output: Output | undefined, outcomeKnown: boolean): string;
}

export type CheckResultKind = 'ok' | 'illegal' | 'unknown';

export interface CheckOptions {
  /**
   * Wall-clock budget for the whole check. When it runs out the result is 'unknown'. Undefined means
   * no wall-clock limit (the step limit below still applies). Wall time makes the verdict depend on
   * machine speed; the simulator therefore relies on `searchStepsMax`, which is deterministic.
   */
  timeoutMs?: number;
  /**
   * Work budget for the whole check: the number of search steps (one step = one attempt to
   * linearize an operation, or one backtrack) summed over all partitions. When it runs out the
   * result is 'unknown'. Default SEARCH_STEPS_MAX_DEFAULT.
   */
  searchStepsMax?: number;
  /**
   * Most (linearized set, state) pairs remembered per partition; past it the result is 'unknown'.
   * Bounds the checker's memory (an entry is a short string). Default MEMO_ENTRIES_MAX_DEFAULT.
   */
  memoEntriesMax?: number;
}

export interface CheckResult<Input, Output> {
  result: CheckResultKind;
  /** Search steps spent (all partitions). */
  searchSteps: number;
  partitionsChecked: number;
  /** Set when result is 'illegal': the smallest partition that has no linearization. */
  failure?: {
    partitionKey: string;
    ops: Operation<Input, Output>[];
    /**
     * The longest sequence of operations (indexes into `ops`) the search could linearize before it
     * got stuck. The operation that could not follow it is usually the culprit.
     */
    longestLinearizedPrefix: number[];
    /** `ops` rendered one per line, sorted by call time, for a human. */
    text: string;
  };
  /** Set when result is 'unknown': why the search stopped. */
  stoppedBy?: 'timeout' | 'searchStepsMax' | 'memoEntriesMax';
}

/** Default for CheckOptions.searchStepsMax: enough for thousands of ops per key with real overlap. */
export const SEARCH_STEPS_MAX_DEFAULT = 20_000_000;

/** Default for CheckOptions.memoEntriesMax: about 500 MB of memo at worst. */
export const MEMO_ENTRIES_MAX_DEFAULT = 5_000_000;
