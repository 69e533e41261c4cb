import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry, RequestHistogram, createLichenMetrics, httpRequestSecondsOn, type LichenMetricSources } from './metrics.js';

const SOURCES: LichenMetricSources = {
  raftTerm: () => 5,
  raftCommitIndex: () => 42,
  raftAppliedIndex: () => 41,
  hasLeader: () => true,
  isLeader: () => false,
  mvccRevision: () => 17,
  walBytes: () => 4096,
  dbSizeBytes: () => 65536,
  dbSizeInUseBytes: () => 24576,
  quotaBackendBytes: () => 2147483648,
};

test('createLichenMetrics registers every Lichen metric with its sources', async () => {
  const metrics = createLichenMetrics(SOURCES);
  metrics.raftLeaderChangesTotal.inc();
  metrics.raftProposalsTotal.inc({ result: 'proposed' });
  metrics.walFsyncSeconds.observe(0.003);
  metrics.backendCommitSeconds.observe(0.00003);
  metrics.applySeconds.observe(0.0001);
  metrics.proposalCommitSeconds.observe(0.002);
  metrics.peerRoundTripSeconds.observe({ To: '000000000000002a' }, 0.0002);
  metrics.httpRequestSeconds.observe({ route: '/v1/kv/:key', code: '200' }, 0.01);
  metrics.grpcRequestSeconds.observe({ method: '/etcdserverpb.KV/Range', code: 'OK' }, 0.02);
  const lines = (await metrics.registry.metrics()).split('\n');
  for (const line of [
    'lichen_raft_term 5',
    'lichen_raft_commit_index 42',
    'lichen_raft_applied_index 41',
    'lichen_server_has_leader 1',
    'lichen_server_is_leader 0',
    'lichen_raft_leader_changes_total 1',
    'lichen_raft_proposals_total{result="proposed"} 1',
    'lichen_disk_wal_fsync_duration_seconds_bucket{le="0.00256"} 0',
    'lichen_disk_wal_fsync_duration_seconds_bucket{le="0.00512"} 1',
    'lichen_disk_wal_fsync_duration_seconds_count 1',
    'lichen_disk_backend_commit_duration_seconds_bucket{le="0.00004"} 1',
    'lichen_server_apply_duration_seconds_bucket{le="0.00016"} 1',
    'lichen_server_proposal_commit_duration_seconds_bucket{le="0.00256"} 1',
    'lichen_network_peer_round_trip_time_seconds_bucket{le="0.00032",To="000000000000002a"} 1',
    'lichen_wal_bytes 4096',
    'lichen_http_request_seconds_count{route="/v1/kv/:key",code="200"} 1',
    'lichen_grpc_request_seconds_count{method="/etcdserverpb.KV/Range",code="OK"} 1',
    'lichen_mvcc_revision 17',
    'lichen_mvcc_db_total_size_in_bytes 65536',
    'lichen_mvcc_db_total_size_in_use_in_bytes 24576',
    'lichen_server_quota_backend_bytes 2147483648',
  ]) {
    assert.ok(lines.includes(line), `missing line: ${line}`);
  }
});

test('the gauges read their sources at every scrape', async () => {
  let leader = false;
  const metrics = createLichenMetrics({ ...SOURCES, isLeader: () => leader });
  assert.match(await metrics.registry.metrics(), /^lichen_server_is_leader 0$/m);
  leader = true;
  assert.match(await metrics.registry.metrics(), /^lichen_server_is_leader 1$/m);
});

test('process and Node.js runtime metrics are exported next to Lichen\'s own', async () => {
  const text = await createLichenMetrics(SOURCES).registry.metrics();
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_version_info']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `missing ${name}`);
  }
});

test('two members in one process have registries of their own', async () => {
  const a = createLichenMetrics(SOURCES);
  const b = createLichenMetrics({ ...SOURCES, raftTerm: () => 9 });
  a.raftLeaderChangesTotal.inc();
  assert.match(await a.registry.metrics(), /^lichen_raft_term 5$/m);
  assert.match(await b.registry.metrics(), /^lichen_raft_term 9$/m);
  assert.match(await b.registry.metrics(), /^lichen_raft_leader_changes_total 0$/m);
});

test('httpRequestSecondsOn returns the registered histogram or registers it once', () => {
  const registry = new Registry();
  const first = httpRequestSecondsOn(registry);
  assert.equal(httpRequestSecondsOn(registry), first);
  const lichen = createLichenMetrics(SOURCES);
  assert.equal(httpRequestSecondsOn(lichen.registry), lichen.httpRequestSeconds);
});

test('a RequestHistogram renders exactly what a prom-client Histogram renders for the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const options = { name: 'calls_seconds', help: 'Calls.', labelNames: ['method', 'code'] as const, buckets: [0.001, 0.01, 0.1] };
  const fast = new RequestHistogram({ ...options, registry: ours });
  const reference = new Histogram({ ...options, labelNames: [...options.labelNames], buckets: [...options.buckets], registers: [theirs] });
  // Values on, between, below and above the bounds, in several label sets (one method with two codes).
  const observations: Array<[string, string, number]> = [
    ['/a', 'OK', 0.001],
    ['/a', 'OK', 0.0005],
    ['/a', 'NOT_FOUND', 0.05],
    ['/b', 'OK', 3],
    ['/a', 'OK', 0.01],
    ['/b', 'OK', 0.1000001],
  ];
  for (const [method, code, seconds] of observations) {
    fast.observe({ method, code }, seconds);
    reference.observe({ method, code }, seconds);
  }
  const sorted = async (registry: Registry) => (await registry.metrics()).split('\n').sort();
  assert.deepEqual(await sorted(ours), await sorted(theirs));
  assert.match(await ours.metrics(), /^calls_seconds_bucket\{le="0.01",method="\/a",code="OK"\} 3$/m);
});
