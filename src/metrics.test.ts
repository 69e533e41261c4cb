import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, createLichenMetrics, exponentialBuckets, httpRequestSecondsOn, FSYNC_BUCKETS_SECONDS } from './metrics.js';

test('an unlabeled counter renders HELP, TYPE and 0 before any increment', () => {
  const registry = new Registry();
  registry.counter({ name: 'jobs_total', help: 'Jobs done.' });
  assert.equal(registry.render(), '# HELP jobs_total Jobs done.\n# TYPE jobs_total counter\njobs_total 0\n');
});

test('a labeled counter renders one line per label set in first-use order', () => {
  const registry = new Registry();
  const proposals = registry.counter({ name: 'proposals_total', help: 'Proposals.', labelNames: ['result'] });
  assert.equal(registry.render(), '# HELP proposals_total Proposals.\n# TYPE proposals_total counter\n');
  proposals.inc({ result: 'committed' });
  proposals.inc({ result: 'dropped' }, 2);
  proposals.inc({ result: 'committed' });
  assert.equal(
    registry.render(),
    [
      '# HELP proposals_total Proposals.',
      '# TYPE proposals_total counter',
      'proposals_total{result="committed"} 2',
      'proposals_total{result="dropped"} 2',
      '',
    ].join('\n'),
  );
  assert.equal(proposals.get({ result: 'committed' }), 2);
});

test('a counter refuses to go down and refuses labels it was not declared with', () => {
  const registry = new Registry();
  const plain = registry.counter({ name: 'a_total', help: 'a' });
  const labeled = registry.counter({ name: 'b_total', help: 'b', labelNames: ['x'] });
  assert.throws(() => plain.inc(undefined, -1), /increment must be finite and >= 0/);
  assert.throws(() => labeled.inc(), /labels \{\} do not match \{x\}/);
  assert.throws(() => labeled.inc({ y: '1' } as never), /do not match/);
});

test('a gauge supports set, inc and dec, and fractional and negative values', () => {
  const registry = new Registry();
  const gauge = registry.gauge({ name: 'temperature', help: 'Degrees.' });
  gauge.set(20.5);
  gauge.inc();
  gauge.dec(undefined, 30);
  assert.equal(registry.render(), '# HELP temperature Degrees.\n# TYPE temperature gauge\ntemperature -8.5\n');
});

test('a gauge with a collect callback reads its source at every render', () => {
  const registry = new Registry();
  let term = 3;
  registry.gauge({ name: 'raft_term', help: 'Term.', collect: () => term });
  assert.match(registry.render(), /^raft_term 3$/m);
  term = 4;
  assert.match(registry.render(), /^raft_term 4$/m);
});

test('a labeled gauge collect callback sets each series itself', () => {
  const registry = new Registry();
  registry.gauge({
    name: 'queue_length',
    help: 'Items waiting.',
    labelNames: ['queue'],
    collect: (gauge) => {
      gauge.set(1, { queue: 'apply' });
      gauge.set(7, { queue: 'send' });
    },
  });
  assert.equal(
    registry.render(),
    '# HELP queue_length Items waiting.\n# TYPE queue_length gauge\nqueue_length{queue="apply"} 1\nqueue_length{queue="send"} 7\n',
  );
});

test('a histogram renders cumulative buckets, +Inf, _sum and _count', () => {
  const registry = new Registry();
  const histogram = registry.histogram({ name: 'fsync_seconds', help: 'Fsync latency.', buckets: [0.001, 0.01, 0.1] });
  for (const seconds of [0.0005, 0.001, 0.05, 0.2, 3]) histogram.observe(seconds);
  assert.equal(
    registry.render(),
    [
      '# HELP fsync_seconds Fsync latency.',
      '# TYPE fsync_seconds histogram',
      'fsync_seconds_bucket{le="0.001"} 2',
      'fsync_seconds_bucket{le="0.01"} 2',
      'fsync_seconds_bucket{le="0.1"} 3',
      'fsync_seconds_bucket{le="+Inf"} 5',
      'fsync_seconds_sum 3.2515',
      'fsync_seconds_count 5',
      '',
    ].join('\n'),
  );
});

test('a labeled histogram puts le after the other labels and renders nothing before use', () => {
  const registry = new Registry();
  const requests = registry.histogram({ name: 'req_seconds', help: 'Latency.', labelNames: ['route', 'code'], buckets: [0.5] });
  assert.equal(registry.render(), '# HELP req_seconds Latency.\n# TYPE req_seconds histogram\n');
  requests.observe(0.25, { route: '/get', code: '200' });
  requests.observe(1, { code: '404', route: '/get' });
  assert.equal(
    registry.render(),
    [
      '# HELP req_seconds Latency.',
      '# TYPE req_seconds histogram',
      'req_seconds_bucket{route="/get",code="200",le="0.5"} 1',
      'req_seconds_bucket{route="/get",code="200",le="+Inf"} 1',
      'req_seconds_sum{route="/get",code="200"} 0.25',
      'req_seconds_count{route="/get",code="200"} 1',
      'req_seconds_bucket{route="/get",code="404",le="0.5"} 0',
      'req_seconds_bucket{route="/get",code="404",le="+Inf"} 1',
      'req_seconds_sum{route="/get",code="404"} 1',
      'req_seconds_count{route="/get",code="404"} 1',
      '',
    ].join('\n'),
  );
  assert.deepEqual(requests.get({ route: '/get', code: '404' }), { count: 1, sum: 1 });
});

test('label values escape backslash, quote and newline; HELP escapes backslash and newline', () => {
  const registry = new Registry();
  const counter = registry.counter({ name: 'odd_total', help: 'Line one\nback\\slash "quoted"', labelNames: ['v'] });
  counter.inc({ v: 'a\\b"c"\nd' });
  assert.equal(
    registry.render(),
    '# HELP odd_total Line one\\nback\\\\slash "quoted"\n# TYPE odd_total counter\nodd_total{v="a\\\\b\\"c\\"\\nd"} 1\n',
  );
});

test('special sample values render as NaN, +Inf and -Inf', () => {
  const registry = new Registry();
  const gauge = registry.gauge({ name: 'g', help: 'g', labelNames: ['k'] });
  gauge.set(NaN, { k: 'nan' });
  gauge.set(Infinity, { k: 'pos' });
  gauge.set(-Infinity, { k: 'neg' });
  assert.equal(registry.render(), '# HELP g g\n# TYPE g gauge\ng{k="nan"} NaN\ng{k="pos"} +Inf\ng{k="neg"} -Inf\n');
});

test('a metric stops adding series at seriesMax and counts what it dropped', () => {
  const registry = new Registry();
  const counter = registry.counter({ name: 'c_total', help: 'c', labelNames: ['id'], seriesMax: 2 });
  for (const id of ['a', 'b', 'c', 'a', 'd']) counter.inc({ id });
  assert.equal(counter.droppedSeries, 2);
  assert.equal(registry.render(), '# HELP c_total c\n# TYPE c_total counter\nc_total{id="a"} 2\nc_total{id="b"} 1\n');
});

test('invalid names, duplicate registrations and bad buckets are refused', () => {
  const registry = new Registry();
  registry.counter({ name: 'x_total', help: 'x' });
  assert.throws(() => registry.counter({ name: 'x_total', help: 'x' }), /registered twice/);
  assert.throws(() => registry.counter({ name: '1bad', help: 'x' }), /invalid metric name/);
  assert.throws(() => registry.counter({ name: 'ok', help: 'x', labelNames: ['__reserved'] }), /invalid label name/);
  assert.throws(() => registry.histogram({ name: 'h', help: 'x', buckets: [1, 1] }), /strictly increasing/);
  assert.throws(() => registry.histogram({ name: 'h2', help: 'x', labelNames: ['le'] }), /reserved/);
});

test('exponentialBuckets multiplies by the factor', () => {
  assert.deepEqual(exponentialBuckets(1, 2, 4), [1, 2, 4, 8]);
  assert.equal(FSYNC_BUCKETS_SECONDS.length, 15);
  assert.equal(FSYNC_BUCKETS_SECONDS[0], 0.0005);
});

test('createLichenMetrics registers every Lichen metric with its sources', () => {
  const metrics = createLichenMetrics({
    raftTerm: () => 5,
    raftCommitIndex: () => 42,
    raftAppliedIndex: () => 41,
    mvccRevision: () => 17,
    walBytes: () => 4096,
    dbSizeBytes: () => 65536,
    dbSizeInUseBytes: () => 24576,
    quotaBackendBytes: () => 2147483648,
  });
  metrics.raftLeaderChangesTotal.inc();
  metrics.raftProposalsTotal.inc({ result: 'committed' });
  metrics.walFsyncSeconds.observe(0.003);
  metrics.httpRequestSeconds.observe(0.01, { route: '/v1/kv/:key', code: '200' });
  metrics.grpcRequestSeconds.observe(0.02, { method: '/etcdserverpb.KV/Range', code: 'OK' });
  const text = metrics.registry.render();
  for (const line of [
    'lichen_raft_term 5',
    'lichen_raft_commit_index 42',
    'lichen_raft_applied_index 41',
    'lichen_raft_leader_changes_total 1',
    'lichen_raft_proposals_total{result="committed"} 1',
    'lichen_wal_fsync_seconds_bucket{le="0.004"} 1',
    'lichen_wal_fsync_seconds_count 1',
    'lichen_wal_bytes 4096',
    'lichen_http_request_seconds_count{route="/v1/kv/:key",code="200"} 1',
    'lichen_grpc_request_seconds_count{method="/etcdserverpb.KV/Range",code="OK"} 1',
    'lichen_mvcc_revision 17',
    'lichen_mvcc_db_total_size_in_bytes 65536',
    'lichen_mvcc_db_total_size_in_use_in_bytes 24576',
    'lichen_server_quota_backend_bytes 2147483648',
  ]) {
    assert.ok(text.split('\n').includes(line), `missing line: ${line}`);
  }
  for (const type of ['gauge', 'counter', 'histogram']) assert.match(text, new RegExp(`# TYPE lichen_\\w+ ${type}`));
});

test('httpRequestSecondsOn returns the registered histogram or registers it once', () => {
  const registry = new Registry();
  const first = httpRequestSecondsOn(registry);
  assert.equal(httpRequestSecondsOn(registry), first);
  const zero = (): number => 0;
  const lichen = createLichenMetrics({
    raftTerm: zero, raftCommitIndex: zero, raftAppliedIndex: zero, mvccRevision: zero, walBytes: zero,
    dbSizeBytes: zero, dbSizeInUseBytes: zero, quotaBackendBytes: zero,
  });
  assert.equal(httpRequestSecondsOn(lichen.registry), lichen.httpRequestSeconds);
  const clash = new Registry();
  clash.counter({ name: 'lichen_http_request_seconds', help: 'wrong type' });
  assert.throws(() => httpRequestSecondsOn(clash), /not a histogram/);
});
