// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
// exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
// We write our own instead of depending on prom-client because we need only these three types
// and the project keeps its dependency list short.
//
// Label values come from small fixed sets (route templates, gRPC method names, status codes).
// Each metric still caps its number of series (seriesMax): a bug that put request data in a label
// must not grow memory without bound, so series beyond the cap are not recorded and are counted
// in `droppedSeries` instead. Metrics are a side channel; losing a series is better than crashing.
import { assert } from './errors.js';

export const CONTENT_TYPE_PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8';

/** Enough for every label combination we expect (routes x codes), far below a memory problem. */
export const SERIES_MAX_DEFAULT = 1_000;

/** Prometheus client libraries' default buckets (seconds): request latencies from 5 ms to 10 s. */
export const DEFAULT_BUCKETS_SECONDS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Buckets start, start*factor, ... (count of them), as in client_golang's ExponentialBuckets. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  assert(start > 0 && factor > 1 && Number.isInteger(count) && count >= 1 && count <= 100, 'exponentialBuckets: bad arguments');
  const buckets: number[] = [];
  for (let i = 0; i < count; i++) buckets.push(start * factor ** i);
  return buckets;
}

/** fsync latencies, 0.5 ms to ~8 s (etcd's wal_fsync_duration_seconds uses the same shape). */
export const FSYNC_BUCKETS_SECONDS: readonly number[] = exponentialBuckets(0.0005, 2, 15);
/** Request latencies on loopback are often under a millisecond: 100 µs to ~13 s, doubling. */
export const REQUEST_BUCKETS_SECONDS: readonly number[] = exponentialBuckets(0.0001, 2, 18);

export type Labels<L extends string> = { readonly [K in L]: string };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A Prometheus sample value: integers print plainly, infinities and NaN with their spelling. */
export function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** Label values escape backslash, double quote and newline (format 0.0.4). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and newline only. */
export function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function renderLabelPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  if (pairs.length === 0) return '';
  return `{${pairs.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

interface MetricOptionsBase<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
  seriesMax?: number;
}

/** What every metric type shares: the name, help, label schema and the bounded series map. */
abstract class Metric<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  /** Series that were not recorded because the metric already had seriesMax of them. */
  droppedSeries = 0;
  private readonly seriesMax: number;
  /** Keyed by the label values joined with a separator no label value is likely to contain. */
  protected readonly series = new Map<string, { labelValues: string[]; state: S }>();

  constructor(options: MetricOptionsBase<L>) {
    assert(METRIC_NAME.test(options.name), `invalid metric name ${JSON.stringify(options.name)}`);
    const labelNames = options.labelNames ?? [];
    for (const label of labelNames) {
      assert(LABEL_NAME.test(label) && !label.startsWith('__'), `invalid label name ${JSON.stringify(label)}`);
    }
    assert(new Set(labelNames).size === labelNames.length, `duplicate label name in ${options.name}`);
    this.name = options.name;
    this.help = options.help;
    this.labelNames = labelNames;
    this.seriesMax = options.seriesMax ?? SERIES_MAX_DEFAULT;
    assert(this.seriesMax >= 1, 'seriesMax must be at least 1');
  }

  protected abstract newState(): S;

  /** The series for these labels, created on first use; undefined when the series cap is hit. */
  protected seriesFor(labels: Labels<L> | undefined): S | undefined {
    const values = this.labelValuesOf(labels);
    const key = values.join('\u0000');
    const existing = this.series.get(key);
    if (existing) return existing.state;
    if (this.series.size >= this.seriesMax) {
      this.droppedSeries++;
      return undefined;
    }
    const state = this.newState();
    this.series.set(key, { labelValues: values, state });
    return state;
  }

  private labelValuesOf(labels: Labels<L> | undefined): string[] {
    const given = (labels ?? {}) as Record<string, unknown>;
    const givenNames = Object.keys(given);
    // Wrong label names are a programming error in the caller, never a runtime condition.
    assert(
      givenNames.length === this.labelNames.length && this.labelNames.every((n) => typeof given[n] === 'string'),
      `${this.name}: labels {${givenNames.join(',')}} do not match {${this.labelNames.join(',')}}`,
    );
    return this.labelNames.map((n) => given[n] as string);
  }

  protected labelPairs(labelValues: readonly string[]): Array<[string, string]> {
    return this.labelNames.map((n, i) => [n, labelValues[i]!]);
  }

  /** Called by the registry before rendering; gauges with a collect callback refresh here. */
  collect(): void {}

  render(): string {
    // A metric without labels has exactly one series, shown as 0 before anything happens, so a
    // scrape can tell "nothing happened yet" from "metric missing".
    if (this.labelNames.length === 0 && this.series.size === 0) this.seriesFor(undefined);
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labelValues, state } of this.series.values()) this.renderSeries(lines, labelValues, state);
    return lines.join('\n') + '\n';
  }

  protected abstract renderSeries(lines: string[], labelValues: readonly string[], state: S): void;
}

interface ValueState {
  value: number;
}

export class Counter<L extends string = never> extends Metric<L, ValueState> {
  readonly type = 'counter';

  protected newState(): ValueState {
    return { value: 0 };
  }

  /** Adds `amount` (default 1). Counters only go up: a negative amount is a bug. */
  inc(labels?: Labels<L>, amount = 1): void {
    assert(amount >= 0 && Number.isFinite(amount), `${this.name}: counter increment must be finite and >= 0`);
    const state = this.seriesFor(labels);
    if (state) state.value += amount;
  }

  /** The current value (for tests and the dashboard). */
  get(labels?: Labels<L>): number {
    return this.seriesFor(labels)?.value ?? 0;
  }

  protected renderSeries(lines: string[], labelValues: readonly string[], state: ValueState): void {
    lines.push(`${this.name}${renderLabelPairs(this.labelPairs(labelValues))} ${formatSampleValue(state.value)}`);
  }
}

export interface GaugeOptions<L extends string> extends MetricOptionsBase<L> {
  /**
   * Called before every render to refresh the gauge from its source, e.g. () => raft.term for an
   * unlabeled gauge (the return value is set), or (gauge) => gauge.set(...) per label set.
   */
  collect?: (gauge: Gauge<L>) => number | void;
}

export class Gauge<L extends string = never> extends Metric<L, ValueState> {
  readonly type = 'gauge';
  private readonly collectFn: GaugeOptions<L>['collect'];

  constructor(options: GaugeOptions<L>) {
    super(options);
    this.collectFn = options.collect;
  }

  protected newState(): ValueState {
    return { value: 0 };
  }

  set(value: number, labels?: Labels<L>): void {
    const state = this.seriesFor(labels);
    if (state) state.value = value;
  }

  inc(labels?: Labels<L>, amount = 1): void {
    const state = this.seriesFor(labels);
    if (state) state.value += amount;
  }

  dec(labels?: Labels<L>, amount = 1): void {
    const state = this.seriesFor(labels);
    if (state) state.value -= amount;
  }

  get(labels?: Labels<L>): number {
    return this.seriesFor(labels)?.value ?? 0;
  }

  override collect(): void {
    if (!this.collectFn) return;
    const result = this.collectFn(this);
    if (typeof result === 'number') this.set(result);
  }

  protected renderSeries(lines: string[], labelValues: readonly string[], state: ValueState): void {
    lines.push(`${this.name}${renderLabelPairs(this.labelPairs(labelValues))} ${formatSampleValue(state.value)}`);
  }
}

interface HistogramState {
  /** Non-cumulative: bucketCounts[i] counts observations in (buckets[i-1], buckets[i]]. */
  bucketCounts: number[];
  sum: number;
  count: number;
}

export interface HistogramOptions<L extends string> extends MetricOptionsBase<L> {
  /** Upper bounds, strictly increasing and finite; the +Inf bucket is implicit. */
  buckets?: readonly number[];
}

export class Histogram<L extends string = never> extends Metric<L, HistogramState> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions<L>) {
    const buckets = options.buckets ?? DEFAULT_BUCKETS_SECONDS;
    // Checked before super() so that a bad bucket list fails before the first series exists.
    assert(buckets.length >= 1 && buckets.length <= 100, `${options.name}: 1 to 100 buckets`);
    assert(buckets.every((b, i) => Number.isFinite(b) && (i === 0 || b > buckets[i - 1]!)), `${options.name}: buckets must be finite and strictly increasing`);
    assert(!(options.labelNames ?? []).includes('le' as never), `${options.name}: "le" is reserved for histogram buckets`);
    super(options);
    this.buckets = [...buckets];
  }

  protected newState(): HistogramState {
    return { bucketCounts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
  }

  /** Records one observation, e.g. a latency in seconds. NaN is ignored (it would poison _sum). */
  observe(value: number, labels?: Labels<L>): void {
    if (Number.isNaN(value)) return;
    const state = this.seriesFor(labels);
    if (!state) return;
    const index = this.buckets.findIndex((upper) => value <= upper);
    if (index >= 0) state.bucketCounts[index]!++;
    state.sum += value;
    state.count++;
  }

  /** { count, sum } of one series (for tests and the dashboard). */
  get(labels?: Labels<L>): { count: number; sum: number } {
    const state = this.seriesFor(labels);
    return { count: state?.count ?? 0, sum: state?.sum ?? 0 };
  }

  protected renderSeries(lines: string[], labelValues: readonly string[], state: HistogramState): void {
    const pairs = this.labelPairs(labelValues);
    let cumulative = 0;
    this.buckets.forEach((upper, i) => {
      cumulative += state.bucketCounts[i]!;
      lines.push(`${this.name}_bucket${renderLabelPairs([...pairs, ['le', formatSampleValue(upper)]])} ${cumulative}`);
    });
    lines.push(`${this.name}_bucket${renderLabelPairs([...pairs, ['le', '+Inf']])} ${state.count}`);
    lines.push(`${this.name}_sum${renderLabelPairs(pairs)} ${formatSampleValue(state.sum)}`);
    lines.push(`${this.name}_count${renderLabelPairs(pairs)} ${state.count}`);
  }
}

/** What the registry needs of a metric, whatever its type and labels. */
interface RenderableMetric {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  collect(): void;
  render(): string;
}

/** Holds metrics in registration order and renders them all for GET /metrics. */
export class Registry {
  private readonly metrics = new Map<string, RenderableMetric>();

  counter<L extends string = never>(options: MetricOptionsBase<L>): Counter<L> {
    return this.add(new Counter<L>(options));
  }

  gauge<L extends string = never>(options: GaugeOptions<L>): Gauge<L> {
    return this.add(new Gauge<L>(options));
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.add(new Histogram<L>(options));
  }

  get(name: string): RenderableMetric | undefined {
    return this.metrics.get(name);
  }

  /** The text exposition format 0.0.4; serve with CONTENT_TYPE_PROMETHEUS. */
  render(): string {
    let text = '';
    for (const metric of this.metrics.values()) {
      metric.collect();
      text += metric.render();
    }
    return text;
  }

  private add<M extends RenderableMetric>(metric: M): M {
    // Two registrations of one name would render a duplicate family, which Prometheus rejects.
    assert(!this.metrics.has(metric.name), `metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

/** Where the Lichen gauges read their values; each is called once per scrape. */
export interface LichenMetricSources {
  raftTerm: () => number;
  raftCommitIndex: () => number;
  raftAppliedIndex: () => number;
  mvccRevision: () => number;
  /** Total bytes in the WAL's segment files. */
  walBytes: () => number;
  /** The storage engine's size and the part of it in use (EngineSpace), and the space quota. */
  dbSizeBytes: () => number;
  dbSizeInUseBytes: () => number;
  quotaBackendBytes: () => number;
}

/** The handles the server, WAL and API layers record into. */
export interface LichenMetrics {
  registry: Registry;
  raftTerm: Gauge;
  raftCommitIndex: Gauge;
  raftAppliedIndex: Gauge;
  raftLeaderChangesTotal: Counter;
  /** result: "committed" | "dropped" | "timeout" | "error" (or any small fixed set). */
  raftProposalsTotal: Counter<'result'>;
  walFsyncSeconds: Histogram;
  walBytes: Gauge;
  /** route: the route template (e.g. "/v1/kv/:key"), never the raw path; code: the HTTP status. */
  httpRequestSeconds: Histogram<'route' | 'code'>;
  /** method: the full gRPC method name; code: the gRPC status name. */
  grpcRequestSeconds: Histogram<'method' | 'code'>;
  mvccRevision: Gauge;
  dbSizeBytes: Gauge;
  dbSizeInUseBytes: Gauge;
  quotaBackendBytes: Gauge;
  /** reason: why a peer's handshake was refused (src/transport/tcp.ts PeerRefusal). */
  peerHandshakesRefusedTotal: Counter<'reason'>;
  /** reason: from_mismatch | to_mismatch (a bound peer connection carried someone else's message). */
  peerMessagesDroppedTotal: Counter<'reason'>;
}

/** Registers every Lichen metric on `registry` (a new one by default), one line each. */
export function createLichenMetrics(sources: LichenMetricSources, registry = new Registry()): LichenMetrics {
  return {
    registry,
    raftTerm: registry.gauge({ name: 'lichen_raft_term', help: 'The current raft term.', collect: sources.raftTerm }),
    raftCommitIndex: registry.gauge({ name: 'lichen_raft_commit_index', help: 'The highest raft log index known to be committed.', collect: sources.raftCommitIndex }),
    raftAppliedIndex: registry.gauge({ name: 'lichen_raft_applied_index', help: 'The highest raft log index applied to the state machine.', collect: sources.raftAppliedIndex }),
    raftLeaderChangesTotal: registry.counter({ name: 'lichen_raft_leader_changes_total', help: 'How many times this member saw the leader change.' }),
    raftProposalsTotal: registry.counter({ name: 'lichen_raft_proposals_total', help: 'Raft proposals by outcome.', labelNames: ['result'] }),
    walFsyncSeconds: registry.histogram({ name: 'lichen_wal_fsync_seconds', help: 'Latency of WAL fsync calls.', buckets: FSYNC_BUCKETS_SECONDS }),
    walBytes: registry.gauge({ name: 'lichen_wal_bytes', help: 'Bytes in the write-ahead log segments.', collect: sources.walBytes }),
    httpRequestSeconds: httpRequestSecondsOn(registry),
    grpcRequestSeconds: registry.histogram({ name: 'lichen_grpc_request_seconds', help: 'gRPC request latency by method and status code.', labelNames: ['method', 'code'], buckets: REQUEST_BUCKETS_SECONDS }),
    mvccRevision: registry.gauge({ name: 'lichen_mvcc_revision', help: 'The current MVCC revision of the key-value store.', collect: sources.mvccRevision }),
    dbSizeBytes: registry.gauge({ name: 'lichen_mvcc_db_total_size_in_bytes', help: 'Size of the storage engine file (etcd: etcd_mvcc_db_total_size_in_bytes).', collect: sources.dbSizeBytes }),
    dbSizeInUseBytes: registry.gauge({ name: 'lichen_mvcc_db_total_size_in_use_in_bytes', help: 'Bytes of the storage engine in use; the space quota counts these.', collect: sources.dbSizeInUseBytes }),
    quotaBackendBytes: registry.gauge({ name: 'lichen_server_quota_backend_bytes', help: 'The space quota (--quota-backend-bytes); negative: no quota.', collect: sources.quotaBackendBytes }),
    peerHandshakesRefusedTotal: registry.counter({ name: 'lichen_peer_handshakes_refused_total', help: 'Peer connections refused at the handshake, by reason (unproven: the dialer did not prove its member id).', labelNames: ['reason'] }),
    peerMessagesDroppedTotal: registry.counter({ name: 'lichen_peer_messages_dropped_total', help: 'Messages dropped on a bound peer connection because they named another sender or receiver.', labelNames: ['reason'] }),
  };
}

export const HTTP_REQUEST_SECONDS = 'lichen_http_request_seconds';

/**
 * The lichen_http_request_seconds histogram of `registry`, registered on first use. The HTTP
 * server calls this so it works both with a registry from createLichenMetrics and a bare one.
 */
export function httpRequestSecondsOn(registry: Registry): Histogram<'route' | 'code'> {
  const existing = registry.get(HTTP_REQUEST_SECONDS);
  if (existing) {
    assert(existing instanceof Histogram, `${HTTP_REQUEST_SECONDS} is registered but is not a histogram`);
    const labels = (existing as Histogram<string>).labelNames;
    assert(labels.length === 2 && labels[0] === 'route' && labels[1] === 'code', `${HTTP_REQUEST_SECONDS} must have labels route, code`);
    return existing as Histogram<'route' | 'code'>;
  }
  return registry.histogram({ name: HTTP_REQUEST_SECONDS, help: 'HTTP API request latency by route and status code.', labelNames: ['route', 'code'], buckets: REQUEST_BUCKETS_SECONDS });
}
