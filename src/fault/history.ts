// The recorded history of a check: every client operation with its invocation and completion on
// one monotonic clock (milliseconds since the run started), and the faults the nemesis injected.
import { performance } from 'node:perf_hooks';

export type Workload = 'register' | 'append' | 'watch';
export const WORKLOADS: readonly Workload[] = ['register', 'append', 'watch'];

/**
 * ok: the operation took effect with the recorded output. fail: it certainly did not take effect.
 * unknown: it may or may not have taken effect (timeout, lost connection, killed member).
 */
export type OpStatus = 'ok' | 'fail' | 'unknown';

export interface HistoryOp {
  /** Position in the history (invocation order). */
  id: number;
  workload: Workload;
  /**
   * The logical process. A process runs one operation at a time; after an unknown outcome its
   * worker continues as a fresh process (the old one may still be "in flight" forever).
   */
  process: number;
  /** The worker (a client connection bound to one member) the process runs on. */
  worker: number;
  /** The member the operation was sent to. */
  node: string;
  /** Operation name: get, put, cas, append, read, watch-put. */
  f: string;
  key: string;
  /** What was asked (value to write, expected value, element to append...). */
  input: Record<string, unknown>;
  invokeMs: number;
  /** Undefined while pending. */
  completeMs: number | undefined;
  status: OpStatus | 'pending';
  /** What the server answered (read value, cas outcome, observed list, revision...). */
  output: Record<string, unknown> | undefined;
  error: string | undefined;
}

export interface FaultRecord {
  kind: string;
  /** What exactly was done, e.g. "SIGKILL n2 (leader)" or "isolated leader n1 | [n2,n3]". */
  detail: string;
  startMs: number;
  /** Undefined if the fault was never healed (the run was cut short). */
  endMs: number | undefined;
}

/** History entries kept at most; a run that would exceed it stops recording new operations. */
export const HISTORY_OPS_MAX = 2_000_000;

export class History {
  readonly ops: HistoryOp[] = [];
  readonly faults: FaultRecord[] = [];
  private readonly originMs = performance.now();
  private nextProcess = 0;

  /** Milliseconds since the run started (monotonic). */
  now(): number {
    return performance.now() - this.originMs;
  }

  newProcess(): number {
    return this.nextProcess++;
  }

  get full(): boolean {
    return this.ops.length >= HISTORY_OPS_MAX;
  }

  invoke(fields: Pick<HistoryOp, 'workload' | 'process' | 'worker' | 'node' | 'f' | 'key' | 'input'>): HistoryOp {
    const op: HistoryOp = {
      ...fields,
      id: this.ops.length,
      invokeMs: this.now(),
      completeMs: undefined,
      status: 'pending',
      output: undefined,
      error: undefined,
    };
    this.ops.push(op);
    return op;
  }

  complete(op: HistoryOp, status: OpStatus, output?: Record<string, unknown>, error?: string): void {
    op.completeMs = this.now();
    op.status = status;
    op.output = output;
    op.error = error;
  }

  faultStarted(kind: string, detail: string): FaultRecord {
    const record: FaultRecord = { kind, detail, startMs: this.now(), endMs: undefined };
    this.faults.push(record);
    return record;
  }

  faultEnded(record: FaultRecord, detail?: string): void {
    record.endMs = this.now();
    if (detail) record.detail += `; ${detail}`;
  }
}
