// TLS for Lichen's listeners and dialers: certificates (certs.ts), etcd's TLS flags turned into
// Node's TLS options (settings.ts), and the certificates of a local cluster (local-cluster.ts).
// certs.ts is not re-exported: its library takes about a second to load on a busy machine, so
// only the code that makes certificates loads it (with import()), and tests import it directly.
export type { PemPair, CertificateRequest } from './certs.js';
export {
  TLS_OFF,
  SELF_SIGNED_VALID_DAYS,
  tlsSettingsProblem,
  loadTlsMaterial,
  serverOptions,
  clientOptions,
  peerTlsOptions,
  acceptanceProblem,
  verifiedCommonName,
  type TlsSettings,
  type TlsMaterial,
} from './settings.js';
export { ensureClusterTls, serveTlsFlags, clientTlsHints, clusterClientTls, clusterTlsDir, type ClusterTls, type LocalMember } from './local-cluster.js';
