// The outcome of a check: per-workload results, anomalies with the operations involved, counts
// of operations by status, and the faults injected. Written as verdict.json and rendered in
// report.html.
import type { FaultRecord, History, HistoryOp, OpStatus, Workload } from './history.js';

export interface Anomaly {
  /** Stable name: not-linearizable, lost-append, duplicate-append, stale-read, watch-gap, ... */
  kind: string;
  workload: Workload | 'cluster';
  key?: string;
  description: string;
  /** History ids of the operations involved (the report highlights them). */
  opIds: number[];
  /** The operations most likely at fault, when the checker can tell. */
  culpritOpIds?: number[];
  /** Extra text for a human, e.g. the checker's rendering of a key's operations. */
  text?: string;
}

export interface WorkloadCheck {
  workload: Workload;
  /** invalid: anomalies found; unknown: the check could not decide (budget spent). */
  result: 'valid' | 'invalid' | 'unknown';
  details: Record<string, unknown>;
  anomalies: Anomaly[];
}

export interface Counts {
  total: number;
  ok: number;
  fail: number;
  unknown: number;
}

export interface Verdict {
  /** True when every check passed and nothing went wrong in the harness. */
  valid: boolean;
  /** The register workload's linearizability ('not-run' when it did not run). */
  linearizable: boolean | 'unknown' | 'not-run';
  seed: number;
  nodes: number;
  workloads: Workload[];
  faultsRequested: string[];
  clients: number;
  unsafeReads: boolean;
  durationMs: number;
  counts: Counts & { byWorkload: Partial<Record<Workload, Counts>> };
  faults: FaultRecord[];
  checks: WorkloadCheck[];
  anomalies: Anomaly[];
  /** Anomalies with their operations spelled out (the report and a reader need them). */
  anomalyOps: Record<number, HistoryOp>;
  /** Problems of the run itself (a member that would not restart, a final read that failed). */
  errors: string[];
  command: string;
}

export function countOps(ops: readonly HistoryOp[]): Counts {
  const counts: Counts = { total: 0, ok: 0, fail: 0, unknown: 0 };
  for (const op of ops) {
    counts.total++;
    const status: OpStatus = op.status === 'pending' ? 'unknown' : op.status;
    counts[status]++;
  }
  return counts;
}

export function buildVerdict(input: {
  history: History;
  checks: WorkloadCheck[];
  clusterAnomalies: Anomaly[];
  errors: string[];
  seed: number;
  nodes: number;
  workloads: Workload[];
  faultsRequested: string[];
  clients: number;
  unsafeReads: boolean;
  durationMs: number;
  command: string;
}): Verdict {
  const { history, checks } = input;
  const anomalies = [...checks.flatMap((c) => c.anomalies), ...input.clusterAnomalies];
  const byWorkload: Partial<Record<Workload, Counts>> = {};
  for (const workload of input.workloads) byWorkload[workload] = countOps(history.ops.filter((o) => o.workload === workload));
  const anomalyOps: Record<number, HistoryOp> = {};
  for (const anomaly of anomalies) for (const id of anomaly.opIds) anomalyOps[id] = history.ops[id]!;
  const register = checks.find((c) => c.workload === 'register');
  const linearizable = register === undefined ? 'not-run' : register.result === 'unknown' ? 'unknown' : register.result === 'valid';
  return {
    valid: anomalies.length === 0 && input.errors.length === 0 && checks.every((c) => c.result === 'valid'),
    linearizable,
    seed: input.seed,
    nodes: input.nodes,
    workloads: input.workloads,
    faultsRequested: input.faultsRequested,
    clients: input.clients,
    unsafeReads: input.unsafeReads,
    durationMs: input.durationMs,
    counts: { ...countOps(history.ops), byWorkload },
    faults: history.faults,
    checks,
    anomalies,
    anomalyOps,
    errors: input.errors,
    command: input.command,
  };
}
