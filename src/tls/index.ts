// TLS for Lichen's listeners and dialers: certificates (certs.ts) and etcd's TLS flags turned
// into Node's TLS options (settings.ts).
export { createCertificateAuthority, issueCertificate, selfSignedCertificate, commonNameOf, type PemPair, type CertificateRequest } from './certs.js';
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
