// The configuration of one Lichen node. The CLI fills it from flags, LICHEN_* environment
// variables and a JSON config file (in that order of precedence); tests build it directly.
import { AUTH_TOKEN_TTL_SECONDS_DEFAULT } from '../auth/tokens.js';
import { BCRYPT_COST_DEFAULT } from '../auth/password.js';
import type { EngineKind } from '../engine/types.js';
import { pendingRequestsMax, quotaBackendBytesDefault, requestBytesMaxDefault } from '../limits.js';
import type { AutoCompactionMode } from './compactor.js';
import type { TlsSettings } from '../tls/index.js';

export interface PeerSpec {
  /** The member's name, unique in the cluster. */
  name: string;
  /** host:port of the member's peer (raft) listener. */
  peerAddress: string;
}

export interface NodeConfig {
  /** This member's name; must appear in initialCluster when bootstrapping. */
  name: string;
  /** Where the WAL, snapshots and engine files live. Created if missing. */
  dataDir: string;
  /** host:port for the etcd v3 gRPC API. Port 0 picks a free port. */
  listenClient: string;
  /** host:port for raft traffic between members. Port 0 picks a free port. */
  listenPeer: string;
  /** host:port for the HTTP/JSON API, /metrics and /health; empty disables it. */
  listenHttp: string;
  /** The members of a new cluster. Ignored when dataDir already holds a cluster. */
  initialCluster: PeerSpec[];
  /**
   * Whether initialCluster was given (not this node alone by default): only then must it agree
   * with the membership of a data directory that exists (see state.ts).
   */
  initialClusterGiven: boolean;
  /**
   * host:port of any running member's client (gRPC) API. A new member with an empty data
   * directory asks that cluster to add it as a learner instead of bootstrapping a new cluster;
   * ignored once the data directory holds a member.
   */
  join: string;
  /** Shared by all members of one cluster; derived from initialCluster when absent. */
  clusterToken: string;
  engine: EngineKind;
  /** Largest client request accepted (etcd's default: 1.5 MiB). */
  maxRequestBytes: number;
  /** The raft tick. Election timeout = electionTicks * tickMs. */
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /**
   * How long a leader may hold back a new commit index from its followers, so that it travels in
   * the next append instead of a message of its own (see RaftConfig.lazyCommitBroadcast). Followers
   * apply, and serve serializable reads and watches, up to this much later. 0 sends it at once.
   */
  followerCommitDelayMs: number;
  /** Take a state machine snapshot and compact the log after this many applied entries. */
  snapshotEntries: number;
  /**
   * Entries kept in the log behind a snapshot, so a briefly slow follower catches up from the
   * log instead of a full snapshot (etcd keeps 5,000).
   */
  snapshotCatchUpEntries: number;
  /** Also snapshot when the WAL has grown this much since the last snapshot's compaction. */
  snapshotWalBytes: number;
  /**
   * The space quota (etcd's --quota-backend-bytes): once the engine's pages in use reach it, the
   * NOSPACE alarm is raised and writes that add data are refused. Negative disables the quota.
   */
  quotaBackendBytes: number;
  /** How --auto-compaction-retention is read: a duration ('periodic') or a revision count. */
  autoCompactionMode: AutoCompactionMode;
  /** '0' disables auto compaction; otherwise as etcd reads it (see parseCompactionRetention). */
  autoCompactionRetention: string;
  /** etcd's --experimental-initial-corrupt-check: compare HashKV with the peers before starting. */
  experimentalInitialCorruptCheck: boolean;
  /** etcd's --experimental-corrupt-check-time: how often the leader compares HashKV; 0 never. */
  experimentalCorruptCheckTimeMs: number;
  /** Client requests waiting for raft, per node; beyond it requests fail with Overloaded. */
  pendingRequestsMax: number;
  /** How long a client request may wait for commit/apply before Timeout. */
  requestTimeoutMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** etcd's --auth-token: "simple", or "jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>,ttl=<duration>". */
  authToken: string;
  /** etcd's --auth-token-ttl: a simple token expires this long after its last use. */
  authTokenTtlSeconds: number;
  /** etcd's --bcrypt-cost: the cost of the password hashes this member makes (4–31). */
  bcryptCost: number;
  // Client TLS, for the gRPC and HTTP listeners (etcd's flags; src/tls/settings.ts has the rules).
  /** PEM certificate and key the client listeners serve; both or neither. */
  certFile: string;
  keyFile: string;
  /** CA that signs client certificates; when set, every client must present one. */
  trustedCaFile: string;
  /** Clients must present a certificate from trustedCaFile, and its common name is the user. */
  clientCertAuth: boolean;
  /** Without certFile: serve a self-signed certificate kept in <dataDir>/fixtures/client. */
  autoTls: boolean;
  // Peer TLS, for raft traffic: the same certificate serves the listener and the dials.
  peerCertFile: string;
  peerKeyFile: string;
  peerTrustedCaFile: string;
  peerClientCertAuth: boolean;
  /** The common name every peer certificate must have ('' accepts any the CA signed). */
  peerCertAllowedCn: string;
  /** Without peerCertFile: a self-signed certificate in <dataDir>/fixtures/peer; peers skip the chain check. */
  peerAutoTls: boolean;
  /** Test-only fault injection; never set these in production. */
  unsafe: {
    /** Added before every WAL fsync (slow disk). */
    walSyncDelayMs: number;
    /** Skip fsync entirely: acknowledged writes can be lost on power failure. */
    walNoSync: boolean;
    /** Serve "linearizable" reads locally without ReadIndex (stale reads possible). */
    readsWithoutReadIndex: boolean;
    /**
     * A full disk: writes to the WAL and snapshot files fail with ENOSPC once they have taken this
     * many more bytes (undefined: no limit). The `full-disk` fault of `lichen check` sets it.
     */
    diskBudgetBytes?: number;
  };
}

export function defaultNodeConfig(overrides: Partial<NodeConfig> & Pick<NodeConfig, 'name' | 'dataDir'>): NodeConfig {
  const base: NodeConfig = {
    name: overrides.name,
    dataDir: overrides.dataDir,
    listenClient: '127.0.0.1:2379',
    listenPeer: '127.0.0.1:2380',
    listenHttp: '127.0.0.1:4001',
    initialCluster: [],
    initialClusterGiven: false,
    join: '',
    clusterToken: '',
    engine: 'lmdb',
    maxRequestBytes: requestBytesMaxDefault,
    tickMs: 100,
    electionTicks: 10,
    heartbeatTicks: 1,
    followerCommitDelayMs: 2,
    snapshotEntries: 100_000,
    snapshotCatchUpEntries: 5_000,
    snapshotWalBytes: 64 * 1024 * 1024,
    quotaBackendBytes: quotaBackendBytesDefault,
    autoCompactionMode: 'periodic',
    autoCompactionRetention: '0',
    experimentalInitialCorruptCheck: false,
    experimentalCorruptCheckTimeMs: 0,
    pendingRequestsMax,
    requestTimeoutMs: 5_000,
    logLevel: 'info',
    authToken: 'simple',
    authTokenTtlSeconds: AUTH_TOKEN_TTL_SECONDS_DEFAULT,
    bcryptCost: BCRYPT_COST_DEFAULT,
    certFile: '',
    keyFile: '',
    trustedCaFile: '',
    clientCertAuth: false,
    autoTls: false,
    peerCertFile: '',
    peerKeyFile: '',
    peerTrustedCaFile: '',
    peerClientCertAuth: false,
    peerCertAllowedCn: '',
    peerAutoTls: false,
    unsafe: { walSyncDelayMs: 0, walNoSync: false, readsWithoutReadIndex: false },
  };
  const config = { ...base, ...overrides, unsafe: { ...base.unsafe, ...overrides.unsafe } };
  config.initialClusterGiven = config.initialCluster.length > 0;
  if (config.initialCluster.length === 0) {
    config.initialCluster = [{ name: config.name, peerAddress: config.listenPeer }];
  }
  return config;
}

export function clientTlsSettings(config: NodeConfig): TlsSettings {
  const { certFile, keyFile, trustedCaFile, clientCertAuth, autoTls } = config;
  return { certFile, keyFile, trustedCaFile, clientCertAuth, autoTls, allowedCn: '' };
}

export function peerTlsSettings(config: NodeConfig): TlsSettings {
  return {
    certFile: config.peerCertFile,
    keyFile: config.peerKeyFile,
    trustedCaFile: config.peerTrustedCaFile,
    clientCertAuth: config.peerClientCertAuth,
    autoTls: config.peerAutoTls,
    allowedCn: config.peerCertAllowedCn,
  };
}
