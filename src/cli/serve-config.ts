// Builds a NodeConfig for `lichen serve` from four sources, highest precedence first:
// command-line flags, LICHEN_* environment variables, a JSON config file, the defaults.
// Every option has one row in SERVE_OPTIONS, which names it in all three sources, so help,
// parsing and error messages cannot drift apart. Values from every source go through the same
// parser, and an error names the flag, variable or file key the bad value came from.
import { readFileSync } from 'node:fs';
import { BCRYPT_COST_MAX, BCRYPT_COST_MIN, parseAuthTokenSpec } from '../auth/index.js';
import { clientTlsSettings, defaultNodeConfig, peerTlsSettings, type NodeConfig, type PeerSpec } from '../server/config.js';
import { parseCompactionRetention } from '../server/compactor.js';
import { parseGoDurationMs } from '../server/duration.js';
import { tlsSettingsProblem } from '../tls/index.js';
import { isLogLevel, LOG_LEVELS } from '../log.js';
import {
  authTokenTtlSecondsMax,
  configFileBytesMax,
  initialClusterMembersMax,
  quotaBackendBytesDefault,
  requestBytesMax,
  requestBytesMaxDefault,
} from '../limits.js';
import { formatHostPort, parseHostPort } from '../address.js';
import { parseBoolean, parseInteger, UsageError, type FlagSpec } from './args.js';

type Source = 'flag' | 'env' | 'file' | 'default';

/** The options of NodeConfig the CLI can set (everything except the unsafe test knobs). */
type SettableConfig = Omit<NodeConfig, 'unsafe'>;

interface ServeOption<K extends keyof SettableConfig = keyof SettableConfig> {
  /** Flag name without dashes; also the key in the config file (camelCase key accepted too). */
  flag: string;
  env: string;
  key: K;
  description: string;
  valueName: string;
  /** A switch: the flag alone means true (`--flag=false` turns it off). */
  isSwitch?: boolean;
  /** Converts a raw value (a string from a flag or env var, any JSON value from the file). */
  parse(raw: unknown, where: string): SettableConfig[K];
}

/** Host names, IPv4, or bracketed IPv6, then a port. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function asText(raw: unknown, where: string): string {
  if (typeof raw === 'string') return raw.trim();
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
  throw new UsageError(`invalid value for ${where}: expected a string, got ${JSON.stringify(raw)}`);
}

function parseName(raw: unknown, where: string): string {
  const name = asText(raw, where);
  if (!NAME_PATTERN.test(name)) {
    throw new UsageError(`invalid value for ${where}: "${name}" (letters, digits, '.', '_' and '-'; at most 63 characters)`);
  }
  return name;
}

export function parseAddress(raw: unknown, where: string): string {
  const text = asText(raw, where);
  try {
    return formatHostPort(parseHostPort(text));
  } catch {
    const port = /:(\d+)$/.exec(text)?.[1];
    const why = port !== undefined && Number(port) > 65_535 ? 'port must be 0..65535' : 'expected host:port';
    throw new UsageError(`invalid value for ${where}: "${text}" (${why})`);
  }
}

function parseOptionalAddress(raw: unknown, where: string): string {
  const text = asText(raw, where);
  // An empty value (or "none") turns the HTTP listener off.
  if (text === '' || text === 'none') return '';
  return parseAddress(text, where);
}

/** "a=host:port,b=host:port" (or, in the file, an array of {name, peerAddress} or a name→address map). */
export function parseInitialCluster(raw: unknown, where: string): PeerSpec[] {
  let entries: [string, unknown][];
  if (typeof raw === 'string') {
    const text = raw.trim();
    if (text === '') return [];
    entries = text.split(',').map((part) => {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new UsageError(`invalid value for ${where}: "${part}" (expected name=host:port)`);
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
    });
  } else if (Array.isArray(raw)) {
    entries = raw.map((item: unknown) => {
      const spec = item as Partial<PeerSpec> | null;
      if (spec === null || typeof spec !== 'object') {
        throw new UsageError(`invalid value for ${where}: expected objects like {"name": "n1", "peerAddress": "host:port"}`);
      }
      return [String(spec.name ?? ''), spec.peerAddress];
    });
  } else if (raw !== null && typeof raw === 'object') {
    entries = Object.entries(raw);
  } else {
    throw new UsageError(`invalid value for ${where}: expected name=host:port,...`);
  }
  if (entries.length > initialClusterMembersMax) {
    throw new UsageError(`invalid value for ${where}: ${entries.length} members (at most ${initialClusterMembersMax})`);
  }
  const peers = entries.map(([name, address]) => ({
    name: parseName(name, `${where} (member name)`),
    peerAddress: parseAddress(address, `${where} (address of ${name})`),
  }));
  const names = new Set<string>();
  const addresses = new Set<string>();
  for (const peer of peers) {
    if (names.has(peer.name)) throw new UsageError(`invalid value for ${where}: member name "${peer.name}" appears twice`);
    if (addresses.has(peer.peerAddress)) {
      throw new UsageError(`invalid value for ${where}: address ${peer.peerAddress} appears twice`);
    }
    names.add(peer.name);
    addresses.add(peer.peerAddress);
  }
  return peers;
}

function parseSwitch(raw: unknown, where: string): boolean {
  return parseBoolean(asText(raw, where), where);
}

function parsePath(raw: unknown, where: string): string {
  return asText(raw, where);
}

function integerParser(min: number, max: number) {
  return (raw: unknown, where: string): number => parseInteger(asText(raw, where), where, min, max);
}

/** A parser that accepts one of a few words. */
function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: unknown, where: string): T => {
    const text = asText(raw, where);
    if (!(choices as readonly string[]).includes(text)) {
      throw new UsageError(`invalid value for ${where}: "${text}" (expected ${choices.join(' or ')})`);
    }
    return text as T;
  };
}

function option<K extends keyof SettableConfig>(spec: ServeOption<K>): ServeOption {
  return spec as unknown as ServeOption;
}

export const SERVE_OPTIONS: readonly ServeOption[] = [
  option({
    flag: 'name', env: 'LICHEN_NAME', key: 'name', valueName: 'name',
    description: "This member's name, unique in the cluster (default: default)",
    parse: parseName,
  }),
  option({
    flag: 'data-dir', env: 'LICHEN_DATA_DIR', key: 'dataDir', valueName: 'path',
    description: 'Where the WAL, snapshots and data files live (default: data/<name>)',
    parse: (raw, where) => {
      const dir = asText(raw, where);
      if (dir === '') throw new UsageError(`invalid value for ${where}: must not be empty`);
      return dir;
    },
  }),
  option({
    flag: 'listen-client', env: 'LICHEN_LISTEN_CLIENT', key: 'listenClient', valueName: 'host:port',
    description: 'etcd v3 gRPC API address (default: 127.0.0.1:2379)',
    parse: parseAddress,
  }),
  option({
    flag: 'listen-peer', env: 'LICHEN_LISTEN_PEER', key: 'listenPeer', valueName: 'host:port',
    description: 'Raft traffic between members (default: 127.0.0.1:2380)',
    parse: parseAddress,
  }),
  option({
    flag: 'listen-http', env: 'LICHEN_LISTEN_HTTP', key: 'listenHttp', valueName: 'host:port',
    description: "HTTP/JSON API, /metrics and /health; 'none' disables it (default: 127.0.0.1:4001)",
    parse: parseOptionalAddress,
  }),
  option({
    flag: 'initial-cluster', env: 'LICHEN_INITIAL_CLUSTER', key: 'initialCluster', valueName: 'name=host:port,...',
    description: 'Members of a new cluster (peer addresses); ignored once the data dir holds a cluster (default: this node alone)',
    parse: parseInitialCluster,
  }),
  option({
    flag: 'join', env: 'LICHEN_JOIN', key: 'join', valueName: 'host:port',
    description: "Join a running cluster through any member's client address: added as a learner, promoted once caught up; not needed on restart",
    parse: parseOptionalAddress,
  }),
  option({
    flag: 'cluster-token', env: 'LICHEN_CLUSTER_TOKEN', key: 'clusterToken', valueName: 'token',
    description: 'Shared by all members of one cluster (default: derived from the initial cluster)',
    parse: asText,
  }),
  option({
    flag: 'engine', env: 'LICHEN_ENGINE', key: 'engine', valueName: 'lmdb|leveldb|memory',
    description: 'Storage engine: lmdb (a B+tree), leveldb (an LSM tree) or memory (default: lmdb)',
    parse: oneOf(['lmdb', 'leveldb', 'memory'] as const),
  }),
  option({
    flag: 'max-request-bytes', env: 'LICHEN_MAX_REQUEST_BYTES', key: 'maxRequestBytes', valueName: 'bytes',
    description: `Largest client request accepted, at most ${requestBytesMax} (default: ${requestBytesMaxDefault})`,
    parse: integerParser(1024, requestBytesMax),
  }),
  option({
    flag: 'tick-ms', env: 'LICHEN_TICK_MS', key: 'tickMs', valueName: 'ms',
    description: 'The raft tick (default: 100)',
    parse: integerParser(1, 60_000),
  }),
  option({
    flag: 'election-ticks', env: 'LICHEN_ELECTION_TICKS', key: 'electionTicks', valueName: 'ticks',
    description: 'Election timeout in ticks (default: 10)',
    parse: integerParser(2, 10_000),
  }),
  option({
    flag: 'heartbeat-ticks', env: 'LICHEN_HEARTBEAT_TICKS', key: 'heartbeatTicks', valueName: 'ticks',
    description: 'Heartbeat interval in ticks; below --election-ticks (default: 1)',
    parse: integerParser(1, 10_000),
  }),
  option({
    flag: 'follower-commit-delay-ms', env: 'LICHEN_FOLLOWER_COMMIT_DELAY_MS', key: 'followerCommitDelayMs', valueName: 'ms',
    description: 'How long a leader may hold back a commit index to send it with the next append; 0 sends it at once (default: 2)',
    parse: integerParser(0, 1_000),
  }),
  option({
    flag: 'snapshot-entries', env: 'LICHEN_SNAPSHOT_ENTRIES', key: 'snapshotEntries', valueName: 'count',
    description: 'Snapshot and compact the log after this many applied entries, plus a random 0-25% per member (default: 100000, as etcd)',
    parse: integerParser(1, 100_000_000),
  }),
  option({
    flag: 'snapshot-catch-up-entries', env: 'LICHEN_SNAPSHOT_CATCH_UP_ENTRIES', key: 'snapshotCatchUpEntries', valueName: 'count',
    description: 'Log entries kept behind a snapshot for slow followers (default: 5000)',
    parse: integerParser(0, 100_000_000),
  }),
  option({
    flag: 'snapshot-wal-bytes', env: 'LICHEN_SNAPSHOT_WAL_BYTES', key: 'snapshotWalBytes', valueName: 'bytes',
    description: 'Also snapshot when the WAL has grown this many bytes since the last snapshot, plus the same random 0-25% (default: 67108864)',
    parse: integerParser(1024, Number.MAX_SAFE_INTEGER),
  }),
  option({
    flag: 'quota-backend-bytes', env: 'LICHEN_QUOTA_BACKEND_BYTES', key: 'quotaBackendBytes', valueName: 'bytes',
    description: 'Raise the NOSPACE alarm and refuse writes that add data once the data in use reaches this; 0 means the default, negative disables (default: 2147483648, as etcd)',
    parse: (raw, where) => {
      const bytes = parseInteger(asText(raw, where), where, Number.MIN_SAFE_INTEGER);
      return bytes === 0 ? quotaBackendBytesDefault : bytes;
    },
  }),
  option({
    flag: 'auto-compaction-mode', env: 'LICHEN_AUTO_COMPACTION_MODE', key: 'autoCompactionMode', valueName: 'periodic|revision',
    description: "How --auto-compaction-retention is read: 'periodic' a duration, 'revision' a number of revisions (default: periodic)",
    parse: oneOf(['periodic', 'revision'] as const),
  }),
  option({
    flag: 'auto-compaction-retention', env: 'LICHEN_AUTO_COMPACTION_RETENTION', key: 'autoCompactionRetention', valueName: 'retention',
    description: "History the leader keeps when it compacts: periodic, a duration ('5m', '1h30m') or hours ('1'); revision, a revision count; 0 disables (default: 0)",
    parse: asText,
  }),
  option({
    flag: 'experimental-initial-corrupt-check', env: 'LICHEN_EXPERIMENTAL_INITIAL_CORRUPT_CHECK', key: 'experimentalInitialCorruptCheck', valueName: 'true|false',
    isSwitch: true,
    description: "Before starting, compare this member's HashKV with its peers' and refuse to start if one differs (default: false, as etcd)",
    parse: parseSwitch,
  }),
  option({
    flag: 'experimental-corrupt-check-time', env: 'LICHEN_EXPERIMENTAL_CORRUPT_CHECK_TIME', key: 'experimentalCorruptCheckTimeMs', valueName: 'duration',
    description: "How often the leader compares HashKV with its peers and raises CORRUPT for one that differs, e.g. '5m'; 0s never (default: 0s, as etcd)",
    parse: (raw, where) => {
      try {
        return parseGoDurationMs(asText(raw, where));
      } catch (error) {
        throw new UsageError(`invalid value for ${where}: ${(error as Error).message}`);
      }
    },
  }),
  option({
    flag: 'request-timeout-ms', env: 'LICHEN_REQUEST_TIMEOUT_MS', key: 'requestTimeoutMs', valueName: 'ms',
    description: 'How long a client request may wait for commit and apply (default: 5000)',
    parse: integerParser(1, 3_600_000),
  }),
  option({
    flag: 'cert-file', env: 'LICHEN_CERT_FILE', key: 'certFile', valueName: 'path',
    description: 'PEM certificate the client listeners (gRPC and HTTP) serve over TLS; with --key-file',
    parse: parsePath,
  }),
  option({
    flag: 'key-file', env: 'LICHEN_KEY_FILE', key: 'keyFile', valueName: 'path',
    description: 'PEM private key of --cert-file',
    parse: parsePath,
  }),
  option({
    flag: 'trusted-ca-file', env: 'LICHEN_TRUSTED_CA_FILE', key: 'trustedCaFile', valueName: 'path',
    description: 'CA bundle that signs client certificates; when set, every client must present one (as etcd)',
    parse: parsePath,
  }),
  option({
    flag: 'client-cert-auth', env: 'LICHEN_CLIENT_CERT_AUTH', key: 'clientCertAuth', valueName: 'true|false', isSwitch: true,
    description: "Clients must present a certificate from --trusted-ca-file; its common name is the user when a request carries no token",
    parse: parseSwitch,
  }),
  option({
    flag: 'auto-tls', env: 'LICHEN_AUTO_TLS', key: 'autoTls', valueName: 'true|false', isSwitch: true,
    description: 'Client TLS with a self-signed certificate kept in <data-dir>/fixtures/client (clients skip verification)',
    parse: parseSwitch,
  }),
  option({
    flag: 'peer-cert-file', env: 'LICHEN_PEER_CERT_FILE', key: 'peerCertFile', valueName: 'path',
    description: 'PEM certificate for raft traffic, served to peers and presented when dialing them; with --peer-key-file',
    parse: parsePath,
  }),
  option({
    flag: 'peer-key-file', env: 'LICHEN_PEER_KEY_FILE', key: 'peerKeyFile', valueName: 'path',
    description: 'PEM private key of --peer-cert-file',
    parse: parsePath,
  }),
  option({
    flag: 'peer-trusted-ca-file', env: 'LICHEN_PEER_TRUSTED_CA_FILE', key: 'peerTrustedCaFile', valueName: 'path',
    description: "CA bundle that signs the members' peer certificates; when set, every dialing peer must present one",
    parse: parsePath,
  }),
  option({
    flag: 'peer-client-cert-auth', env: 'LICHEN_PEER_CLIENT_CERT_AUTH', key: 'peerClientCertAuth', valueName: 'true|false', isSwitch: true,
    description: 'Peers must present a certificate from --peer-trusted-ca-file',
    parse: parseSwitch,
  }),
  option({
    flag: 'peer-cert-allowed-cn', env: 'LICHEN_PEER_CERT_ALLOWED_CN', key: 'peerCertAllowedCn', valueName: 'name',
    description: "The common name every peer's certificate must have",
    parse: asText,
  }),
  option({
    flag: 'peer-auto-tls', env: 'LICHEN_PEER_AUTO_TLS', key: 'peerAutoTls', valueName: 'true|false', isSwitch: true,
    description: 'Peer TLS with a self-signed certificate kept in <data-dir>/fixtures/peer (peers skip chain verification; the member-id binding still holds)',
    parse: parseSwitch,
  }),
  option({
    flag: 'log-level', env: 'LICHEN_LOG_LEVEL', key: 'logLevel', valueName: LOG_LEVELS.join('|'),
    description: 'Log level (default: info)',
    parse: (raw, where) => {
      const level = asText(raw, where);
      if (!isLogLevel(level)) throw new UsageError(`invalid value for ${where}: "${level}" (expected ${LOG_LEVELS.join(', ')})`);
      return level;
    },
  }),
  option({
    flag: 'auth-token', env: 'LICHEN_AUTH_TOKEN', key: 'authToken', valueName: 'simple|jwt,...',
    description:
      'Auth tokens, as etcd: simple, or jwt,priv-key=<path>,sign-method=<RS256|PS256|ES256|HS256|...>[,pub-key=<path>][,ttl=5m] (default: simple)',
    parse: (raw, where) => {
      const text = asText(raw, where);
      try {
        parseAuthTokenSpec(text);
      } catch (error) {
        throw new UsageError(`invalid value for ${where}: ${(error as Error).message.replace(/^invalid --auth-token: /, '')}`);
      }
      return text;
    },
  }),
  option({
    flag: 'auth-token-ttl', env: 'LICHEN_AUTH_TOKEN_TTL', key: 'authTokenTtlSeconds', valueName: 'seconds',
    description: 'A simple token expires this long after its last use (default: 300)',
    parse: integerParser(1, authTokenTtlSecondsMax),
  }),
  option({
    flag: 'bcrypt-cost', env: 'LICHEN_BCRYPT_COST', key: 'bcryptCost', valueName: `${BCRYPT_COST_MIN}-${BCRYPT_COST_MAX}`,
    description: 'bcrypt cost of password hashes; each step doubles the time (default: 10, as etcd)',
    parse: integerParser(BCRYPT_COST_MIN, BCRYPT_COST_MAX),
  }),
];

export const CONFIG_FILE_FLAG: FlagSpec = {
  name: 'config',
  type: 'string',
  valueName: 'file.json',
  description: 'JSON config file; keys are the flag names (data-dir) or camelCase (dataDir). Also LICHEN_CONFIG',
};

/** The serve flags as parser specs: all strings, converted by resolveServeConfig so errors are uniform. */
export const SERVE_FLAG_SPECS: readonly FlagSpec[] = [
  ...SERVE_OPTIONS.map((o) => ({
    name: o.flag,
    type: o.isSwitch ? ('boolean' as const) : ('string' as const),
    valueName: o.valueName,
    description: `${o.description}. Env ${o.env}`,
  })),
  CONFIG_FILE_FLAG,
];

/** Test-only fault injection, read from the environment only so it never lands in a config file. */
export const UNSAFE_ENV = {
  walSyncDelayMs: 'LICHEN_UNSAFE_WAL_SYNC_DELAY_MS',
  walNoSync: 'LICHEN_UNSAFE_WAL_NO_SYNC',
  readsWithoutReadIndex: 'LICHEN_UNSAFE_READS_WITHOUT_READINDEX',
  diskBudgetBytes: 'LICHEN_UNSAFE_DISK_BUDGET_BYTES',
} as const;

export interface ResolveInput {
  /** Raw flag values by flag name (as parseArgs returns them for SERVE_FLAG_SPECS). */
  flags: Record<string, unknown>;
  env: Record<string, string | undefined>;
  /** Injected so tests need no files; defaults to reading from disk. */
  readFile?: (path: string) => string;
}

export interface ResolvedServeConfig {
  config: NodeConfig;
  /** Where each option's value came from (for the startup log line). */
  sources: Record<string, Source>;
  /** The unsafe options that are set: the caller must warn loudly about each. */
  unsafeWarnings: string[];
}

export function resolveServeConfig(input: ResolveInput): ResolvedServeConfig {
  const readFile = input.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  const configPath = pickConfigPath(input);
  const file = configPath === undefined ? {} : loadConfigFile(configPath, readFile);

  const values: Partial<SettableConfig> = {};
  const sources: Record<string, Source> = {};
  for (const opt of SERVE_OPTIONS) {
    const found = lookupOption(opt, input, file, configPath);
    if (found === undefined) {
      sources[opt.flag] = 'default';
      continue;
    }
    (values as Record<string, unknown>)[opt.key] = opt.parse(found.raw, found.where);
    sources[opt.flag] = found.source;
  }

  const name = values.name ?? 'default';
  const { unsafe, warnings } = readUnsafeOptions(input.env);
  const config = defaultNodeConfig({
    ...values,
    name,
    dataDir: values.dataDir ?? `data/${name}`,
    unsafe,
  });
  validateConfig(config, sources);
  return { config, sources, unsafeWarnings: warnings };
}

function pickConfigPath(input: ResolveInput): string | undefined {
  const fromFlag = input.flags.config;
  if (typeof fromFlag === 'string' && fromFlag !== '') return fromFlag;
  const fromEnv = input.env.LICHEN_CONFIG;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

function loadConfigFile(path: string, readFile: (path: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new UsageError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  if (text.length > configFileBytesMax) throw new UsageError(`config file ${path} is larger than ${configFileBytesMax} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`config file ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`config file ${path} must hold a JSON object`);
  }
  const known = new Set(SERVE_OPTIONS.flatMap((o) => [o.flag, o.key as string]));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) {
      const hint = key.startsWith('unsafe') ? ' (unsafe options are accepted from the environment only)' : '';
      throw new UsageError(`unknown key "${key}" in config file ${path}${hint}`);
    }
  }
  return parsed as Record<string, unknown>;
}

interface FoundValue {
  raw: unknown;
  source: Source;
  where: string;
}

function lookupOption(
  opt: ServeOption,
  input: ResolveInput,
  file: Record<string, unknown>,
  configPath: string | undefined,
): FoundValue | undefined {
  const fromFlag = input.flags[opt.flag];
  if (fromFlag !== undefined) return { raw: fromFlag, source: 'flag', where: `--${opt.flag}` };
  const fromEnv = input.env[opt.env];
  // An empty variable counts as unset, as most shells make unsetting awkward.
  if (fromEnv !== undefined && fromEnv !== '') return { raw: fromEnv, source: 'env', where: opt.env };
  for (const key of [opt.flag, opt.key as string]) {
    if (Object.hasOwn(file, key)) {
      return { raw: file[key], source: 'file', where: `"${key}" in config file ${configPath ?? ''}` };
    }
  }
  return undefined;
}

function readUnsafeOptions(env: Record<string, string | undefined>): { unsafe: NodeConfig['unsafe']; warnings: string[] } {
  const unsafe: NodeConfig['unsafe'] = { walSyncDelayMs: 0, walNoSync: false, readsWithoutReadIndex: false };
  const warnings: string[] = [];
  const delay = env[UNSAFE_ENV.walSyncDelayMs];
  if (delay !== undefined && delay !== '') {
    unsafe.walSyncDelayMs = parseInteger(delay, UNSAFE_ENV.walSyncDelayMs, 0, 60_000);
    if (unsafe.walSyncDelayMs > 0) {
      warnings.push(`${UNSAFE_ENV.walSyncDelayMs}=${unsafe.walSyncDelayMs}: every WAL fsync is delayed (test-only slow disk)`);
    }
  }
  const noSync = env[UNSAFE_ENV.walNoSync];
  if (noSync !== undefined && noSync !== '') {
    unsafe.walNoSync = parseBoolean(noSync, UNSAFE_ENV.walNoSync);
    if (unsafe.walNoSync) {
      warnings.push(`${UNSAFE_ENV.walNoSync}: the WAL is never fsynced; acknowledged writes can be lost on power failure`);
    }
  }
  const budget = env[UNSAFE_ENV.diskBudgetBytes];
  if (budget !== undefined && budget !== '') {
    unsafe.diskBudgetBytes = parseInteger(budget, UNSAFE_ENV.diskBudgetBytes, 0, Number.MAX_SAFE_INTEGER);
    warnings.push(`${UNSAFE_ENV.diskBudgetBytes}=${unsafe.diskBudgetBytes}: WAL and snapshot writes fail with ENOSPC after that many more bytes (test-only full disk)`);
  }
  const staleReads = env[UNSAFE_ENV.readsWithoutReadIndex];
  if (staleReads !== undefined && staleReads !== '') {
    unsafe.readsWithoutReadIndex = parseBoolean(staleReads, UNSAFE_ENV.readsWithoutReadIndex);
    if (unsafe.readsWithoutReadIndex) {
      warnings.push(`${UNSAFE_ENV.readsWithoutReadIndex}: linearizable reads are served locally and may be stale`);
    }
  }
  return { unsafe, warnings };
}

/** Checks that concern more than one option; names the flags involved. */
function validateConfig(config: NodeConfig, sources: Record<string, Source>): void {
  for (const [settings, prefix] of [[clientTlsSettings(config), ''], [peerTlsSettings(config), 'peer-']] as const) {
    const problem = tlsSettingsProblem(settings, prefix);
    if (problem !== undefined) throw new UsageError(problem);
  }
  if (config.heartbeatTicks >= config.electionTicks) {
    throw new UsageError(
      `--heartbeat-ticks (${config.heartbeatTicks}) must be smaller than --election-ticks (${config.electionTicks})`,
    );
  }
  const explicitCluster = sources['initial-cluster'] !== 'default' && config.initialCluster.length > 0;
  if (explicitCluster && !config.initialCluster.some((peer) => peer.name === config.name)) {
    const names = config.initialCluster.map((p) => p.name).join(', ');
    throw new UsageError(`--initial-cluster (${names}) does not list this member's --name "${config.name}"`);
  }
  try {
    parseCompactionRetention(config.autoCompactionMode, config.autoCompactionRetention);
  } catch (error) {
    throw new UsageError(`invalid value for --auto-compaction-retention with --auto-compaction-mode ${config.autoCompactionMode}: ${(error as Error).message}`);
  }
  const listeners = [
    ['--listen-client', config.listenClient],
    ['--listen-peer', config.listenPeer],
    ['--listen-http', config.listenHttp],
  ] as const;
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const [flagA, addressA] = listeners[i] as readonly [string, string];
      const [flagB, addressB] = listeners[j] as readonly [string, string];
      if (addressA !== '' && addressA === addressB && !addressA.endsWith(':0')) {
        throw new UsageError(`${flagA} and ${flagB} are both ${addressA}; each listener needs its own port`);
      }
    }
  }
}
