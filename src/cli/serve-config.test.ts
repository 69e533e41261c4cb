import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestBytesMaxDefault } from '../limits.js';
import { parseArgs } from './args.js';
import { resolveServeConfig, SERVE_FLAG_SPECS, SERVE_OPTIONS } from './serve-config.js';

function resolve(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}) {
  const { flags } = parseArgs(argv, SERVE_FLAG_SPECS);
  return resolveServeConfig({
    flags,
    env,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file, open '${path}'`);
      return text;
    },
  });
}

test('with nothing set, the defaults apply and the node forms a cluster of itself', () => {
  const { config, sources, unsafeWarnings } = resolve([]);
  assert.equal(config.name, 'default');
  assert.equal(config.dataDir, 'data/default');
  assert.equal(config.listenClient, '127.0.0.1:2379');
  assert.equal(config.maxRequestBytes, requestBytesMaxDefault);
  assert.deepEqual(config.initialCluster, [{ name: 'default', peerAddress: '127.0.0.1:2380' }]);
  assert.equal(sources.name, 'default');
  assert.deepEqual(unsafeWarnings, []);
});

test('a flag beats the environment, which beats the file, which beats the default', () => {
  const files = {
    'c.json': JSON.stringify({ name: 'from-file', 'tick-ms': 50, electionTicks: 20, engine: 'memory', 'log-level': 'debug' }),
  };
  const env = { LICHEN_NAME: 'from-env', LICHEN_TICK_MS: '70', LICHEN_CONFIG: 'c.json' };
  const { config, sources } = resolve(['--name', 'from-flag'], env, files);
  assert.equal(config.name, 'from-flag');
  assert.equal(sources.name, 'flag');
  assert.equal(config.tickMs, 70);
  assert.equal(sources['tick-ms'], 'env');
  assert.equal(config.electionTicks, 20);
  assert.equal(sources['election-ticks'], 'file');
  assert.equal(config.engine, 'memory');
  assert.equal(config.logLevel, 'debug');
  assert.equal(config.heartbeatTicks, 1);
  assert.equal(sources['heartbeat-ticks'], 'default');
  assert.equal(config.dataDir, 'data/from-flag', 'the default data dir follows the final name');
});

test('--config on the command line beats LICHEN_CONFIG', () => {
  const files = { 'a.json': '{"name":"a"}', 'b.json': '{"name":"b"}' };
  assert.equal(resolve(['--config', 'b.json'], { LICHEN_CONFIG: 'a.json' }, files).config.name, 'b');
});

test('an empty environment variable counts as unset', () => {
  assert.equal(resolve([], { LICHEN_NAME: '' }).config.name, 'default');
});

test('every option can be set from a flag, its LICHEN_* variable and its file key', () => {
  for (const option of SERVE_OPTIONS) {
    assert.equal(option.env, `LICHEN_${option.flag.toUpperCase().replaceAll('-', '_')}`, `env name of --${option.flag}`);
  }
  const values: Record<string, string> = {
    name: 'n1',
    'data-dir': '/tmp/x',
    'listen-client': '127.0.0.1:3000',
    'listen-peer': '127.0.0.1:3001',
    'listen-http': '127.0.0.1:3002',
    'initial-cluster': 'n1=127.0.0.1:3001,n2=127.0.0.1:3011',
    join: '127.0.0.1:4000',
    'cluster-token': 'tok',
    engine: 'memory',
    'max-request-bytes': '2048',
    'tick-ms': '20',
    'election-ticks': '12',
    'heartbeat-ticks': '2',
    'follower-commit-delay-ms': '0',
    'snapshot-entries': '500',
    'snapshot-catch-up-entries': '50',
    'snapshot-wal-bytes': '1048576',
    'request-timeout-ms': '900',
    'quota-backend-bytes': '8388608',
    'auto-compaction-mode': 'revision',
    'auto-compaction-retention': '1000',
    'experimental-initial-corrupt-check': 'true',
    'experimental-corrupt-check-time': '1m30s',
    'log-level': 'warn',
    'auth-token': 'simple',
    'auth-token-ttl': '60',
    'bcrypt-cost': '5',
    'cert-file': '/tls/server.pem',
    'key-file': '/tls/server-key.pem',
    'trusted-ca-file': '/tls/ca.pem',
    'client-cert-auth': 'true',
    'auto-tls': 'false',
    'peer-cert-file': '/tls/peer.pem',
    'peer-key-file': '/tls/peer-key.pem',
    'peer-trusted-ca-file': '/tls/ca.pem',
    'peer-client-cert-auth': 'true',
    'peer-cert-allowed-cn': 'member',
    'peer-auto-tls': 'false',
  };
  for (const option of SERVE_OPTIONS) assert.ok(option.flag in values, `this test covers --${option.flag}`);
  // Values for options this build does not have (yet) are left out rather than rejected.
  for (const flag of Object.keys(values)) if (!SERVE_OPTIONS.some((o) => o.flag === flag)) delete values[flag];
  const viaFlags = resolve(Object.entries(values).map(([k, v]) => `--${k}=${v}`)).config;
  const viaEnv = resolve([], Object.fromEntries(SERVE_OPTIONS.map((o) => [o.env, values[o.flag] as string]))).config;
  const viaFile = resolve(['--config', 'f.json'], {}, { 'f.json': JSON.stringify(values) }).config;
  assert.deepEqual(viaEnv, viaFlags);
  assert.deepEqual(viaFile, viaFlags);
  assert.deepEqual(viaFlags.initialCluster, [
    { name: 'n1', peerAddress: '127.0.0.1:3001' },
    { name: 'n2', peerAddress: '127.0.0.1:3011' },
  ]);
  assert.equal(viaFlags.maxRequestBytes, 2048);
  assert.equal(viaFlags.clusterToken, 'tok');
  assert.equal(viaFlags.followerCommitDelayMs, 0);
  assert.equal(viaFlags.quotaBackendBytes, 8388608);
  assert.equal(viaFlags.autoCompactionMode, 'revision');
  assert.equal(viaFlags.autoCompactionRetention, '1000');
  assert.equal(viaFlags.experimentalInitialCorruptCheck, true);
  assert.equal(viaFlags.experimentalCorruptCheckTimeMs, 90_000);
});

test('--experimental-initial-corrupt-check is a switch, as in etcd', () => {
  assert.equal(resolve([]).config.experimentalInitialCorruptCheck, false);
  assert.equal(resolve(['--experimental-initial-corrupt-check']).config.experimentalInitialCorruptCheck, true);
  assert.equal(resolve(['--experimental-initial-corrupt-check=false']).config.experimentalInitialCorruptCheck, false);
  assert.equal(resolve([]).config.experimentalCorruptCheckTimeMs, 0);
});

test('--quota-backend-bytes 0 means the 2 GiB default and a negative quota disables it, as in etcd', () => {
  assert.equal(resolve([]).config.quotaBackendBytes, 2 * 1024 ** 3);
  assert.equal(resolve(['--quota-backend-bytes', '0']).config.quotaBackendBytes, 2 * 1024 ** 3);
  assert.equal(resolve(['--quota-backend-bytes', '-1']).config.quotaBackendBytes, -1);
  assert.equal(resolve([]).config.autoCompactionRetention, '0', 'auto compaction is off by default');
  assert.equal(resolve(['--auto-compaction-retention', '1h30m']).config.autoCompactionRetention, '1h30m');
});

test('the file may list the initial cluster as an array or a map', () => {
  const asArray = { initialCluster: [{ name: 'a', peerAddress: 'h:1' }, { name: 'b', peerAddress: 'h:2' }], name: 'a' };
  const asMap = { 'initial-cluster': { a: 'h:1', b: 'h:2' }, name: 'a' };
  const fromArray = resolve(['--config', 'x'], {}, { x: JSON.stringify(asArray) }).config.initialCluster;
  const fromMap = resolve(['--config', 'x'], {}, { x: JSON.stringify(asMap) }).config.initialCluster;
  assert.deepEqual(fromArray, [{ name: 'a', peerAddress: 'h:1' }, { name: 'b', peerAddress: 'h:2' }]);
  assert.deepEqual(fromMap, fromArray);
});

test('--listen-http none (or empty) disables the HTTP listener', () => {
  assert.equal(resolve(['--listen-http', 'none']).config.listenHttp, '');
  assert.equal(resolve(['--listen-http=']).config.listenHttp, '');
});

test('invalid values fail with a message naming the flag, variable or file key', () => {
  const cases: [string[], Record<string, string>, Record<string, string>, RegExp][] = [
    [['--tick-ms', 'fast'], {}, {}, /invalid value for --tick-ms: "fast" \(expected an integer\)/],
    [[], { LICHEN_TICK_MS: '0' }, {}, /invalid value for LICHEN_TICK_MS: "0" \(expected an integer between 1 and 60000\)/],
    [['--config', 'c'], {}, { c: '{"tick-ms": "x"}' }, /invalid value for "tick-ms" in config file c/],
    [['--engine', 'rocks'], {}, {}, /invalid value for --engine: "rocks" \(expected lmdb or leveldb or memory\)/],
    [['--listen-client', 'localhost'], {}, {}, /invalid value for --listen-client: "localhost" \(expected host:port\)/],
    [['--listen-peer', 'h:70000'], {}, {}, /--listen-peer: "h:70000" \(port must be 0..65535\)/],
    [['--log-level', 'loud'], {}, {}, /invalid value for --log-level: "loud"/],
    [['--name', 'bad name'], {}, {}, /invalid value for --name: "bad name"/],
    [['--max-request-bytes', '10'], {}, {}, /--max-request-bytes: "10" \(expected an integer between 1024 and/],
    [['--initial-cluster', 'a=h:1,a=h:2', '--name', 'a'], {}, {}, /member name "a" appears twice/],
    [['--initial-cluster', 'a=h:1,b=h:1', '--name', 'a'], {}, {}, /address h:1 appears twice/],
    [['--initial-cluster', 'a-h:1'], {}, {}, /invalid value for --initial-cluster: "a-h:1" \(expected name=host:port\)/],
    [['--initial-cluster', 'a=h:1,b=h:2', '--name', 'c'], {}, {}, /--initial-cluster \(a, b\) does not list this member's --name "c"/],
    [['--election-ticks', '3', '--heartbeat-ticks', '3'], {}, {}, /--heartbeat-ticks \(3\) must be smaller than --election-ticks \(3\)/],
    [['--listen-client', 'h:5', '--listen-peer', 'h:5'], {}, {}, /--listen-client and --listen-peer are both h:5/],
    [['--config', 'missing.json'], {}, {}, /cannot read config file missing.json: ENOENT/],
    [['--config', 'c'], {}, { c: '{oops' }, /config file c is not valid JSON/],
    [['--config', 'c'], {}, { c: '[1]' }, /config file c must hold a JSON object/],
    [['--config', 'c'], {}, { c: '{"data_dir":"x"}' }, /unknown key "data_dir" in config file c/],
    [['--config', 'c'], {}, { c: '{"unsafeWalNoSync":true}' }, /unsafe options are accepted from the environment only/],
    [['--quota-backend-bytes', '2G'], {}, {}, /invalid value for --quota-backend-bytes: "2G" \(expected an integer/],
    [['--auto-compaction-mode', 'daily'], {}, {}, /invalid value for --auto-compaction-mode: "daily" \(expected periodic or revision\)/],
    [['--auto-compaction-retention', 'soon'], {}, {}, /invalid value for --auto-compaction-retention with --auto-compaction-mode periodic: retention "soon"/],
    [['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '5m'], {}, {}, /must be a number of revisions in revision mode/],
    [['--experimental-corrupt-check-time', '5'], {}, {}, /invalid value for --experimental-corrupt-check-time: "5" is not a duration/],
    [['--auth-token', 'jwt,sign-method=XX1'], {}, {}, /invalid value for --auth-token: sign-method must be one of RS256/],
    [[], { LICHEN_AUTH_TOKEN: 'opaque' }, {}, /invalid value for LICHEN_AUTH_TOKEN: unknown token type "opaque"/],
    [['--bcrypt-cost', '3'], {}, {}, /--bcrypt-cost: "3" \(expected an integer between 4 and 31\)/],
  ];
  for (const [argv, env, files, expected] of cases) {
    assert.throws(() => resolve(argv, env, files), expected, `${argv.join(' ')} ${JSON.stringify(env)}`);
  }
});

test('unsafe options come from the environment only and each produces a warning', () => {
  const { config, unsafeWarnings } = resolve([], {
    LICHEN_UNSAFE_WAL_SYNC_DELAY_MS: '25',
    LICHEN_UNSAFE_WAL_NO_SYNC: 'true',
    LICHEN_UNSAFE_READS_WITHOUT_READINDEX: '1',
  });
  assert.deepEqual(config.unsafe, { walSyncDelayMs: 25, walNoSync: true, readsWithoutReadIndex: true });
  assert.equal(unsafeWarnings.length, 3);
  assert.match(unsafeWarnings.join('\n'), /LICHEN_UNSAFE_WAL_NO_SYNC: the WAL is never fsynced/);
  assert.throws(() => resolve([], { LICHEN_UNSAFE_WAL_NO_SYNC: 'maybe' }), /invalid value for LICHEN_UNSAFE_WAL_NO_SYNC: "maybe"/);
  assert.deepEqual(resolve([], { LICHEN_UNSAFE_WAL_NO_SYNC: '0' }).unsafeWarnings, []);
});

test('TLS switches need no value, as etcd\'s; TLS flags that cannot work together are refused by name', () => {
  const { config } = resolve(['--auto-tls', '--peer-auto-tls', '--name', 'n1']);
  assert.equal(config.autoTls, true);
  assert.equal(config.peerAutoTls, true);
  assert.equal(config.name, 'n1');
  assert.equal(resolve([], { LICHEN_PEER_CLIENT_CERT_AUTH: 'true', LICHEN_PEER_AUTO_TLS: 'true', LICHEN_PEER_TRUSTED_CA_FILE: '/ca.pem' }).config.peerClientCertAuth, true);
  assert.throws(() => resolve(['--cert-file', '/c.pem']), /--cert-file and --key-file must be given together/);
  assert.throws(() => resolve(['--auto-tls', '--client-cert-auth']), /--client-cert-auth needs --trusted-ca-file/);
  assert.throws(() => resolve(['--peer-trusted-ca-file', '/ca.pem']), /--peer-trusted-ca-file needs TLS: give --peer-cert-file and --peer-key-file, or --peer-auto-tls/);
});
