// A local TLS cluster (`lichen up --tls`, and tests): a certificate authority and the certificates
// such a cluster needs, in <dir>/tls: ca.pem and ca-key.pem; <node>.pem and <node>-key.pem for
// each node (its client and peer listeners, and its dials to the other members); client.pem and
// client-key.pem for the CLI and etcdctl (common name "root": with authentication on, the
// certificate logs in as root). Files that exist are kept, so restarting the cluster, or adding a
// node, reuses the CA.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PemPair } from './certs.js';
import { parseHostPort } from '../address.js';

/** A member of the local cluster: its name and the addresses its certificate must name. */
export interface LocalMember {
  name: string;
  client: string;
  peer: string;
  http: string;
}

/** Ten years for the CA and the certificates: a local cluster should not expire under its user. */
const VALID_DAYS = 3650;
export const CLIENT_COMMON_NAME = 'root';

export interface ClusterTls {
  dir: string;
  caFile: string;
  clientCertFile: string;
  clientKeyFile: string;
}

export function clusterTlsDir(dir: string): string {
  return join(dir, 'tls');
}

/** Makes what is missing of the CA, the client certificate and each node's certificate. */
export async function ensureClusterTls(dir: string, plans: readonly LocalMember[]): Promise<ClusterTls> {
  const tlsDir = clusterTlsDir(dir);
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  const { createCertificateAuthority, issueCertificate } = await import('./certs.js');
  const ca = await ensurePair(tlsDir, 'ca', () => createCertificateAuthority('Lichen local CA', VALID_DAYS));
  await ensurePair(tlsDir, 'client', () => issueCertificate(ca, { commonName: CLIENT_COMMON_NAME, hosts: [], usage: 'client', validDays: VALID_DAYS }));
  for (const plan of plans) {
    const hosts = [...new Set([plan.client, plan.peer, plan.http].map((address) => parseHostPort(address).host)), '127.0.0.1', '::1', 'localhost'];
    await ensurePair(tlsDir, plan.name, () => issueCertificate(ca, { commonName: plan.name, hosts, usage: 'server-and-client', validDays: VALID_DAYS }));
  }
  return { dir: tlsDir, caFile: join(tlsDir, 'ca.pem'), clientCertFile: join(tlsDir, 'client.pem'), clientKeyFile: join(tlsDir, 'client-key.pem') };
}

/** The `lichen serve` flags of one node of a TLS cluster: TLS and client certificates on every port. */
export function serveTlsFlags(tls: ClusterTls, name: string): string[] {
  const cert = join(tls.dir, `${name}.pem`);
  const key = join(tls.dir, `${name}-key.pem`);
  return [
    '--cert-file', cert, '--key-file', key, '--trusted-ca-file', tls.caFile, '--client-cert-auth',
    '--peer-cert-file', cert, '--peer-key-file', key, '--peer-trusted-ca-file', tls.caFile, '--peer-client-cert-auth',
  ];
}

/** How to reach the cluster with etcdctl and with lichen (printed by `up --tls`). */
export function clientTlsHints(tls: ClusterTls, endpoints: string): string[] {
  const https = endpoints
    .split(',')
    .map((e) => `https://${e}`)
    .join(',');
  return [
    `etcdctl --endpoints=${https} --cacert=${tls.caFile} --cert=${tls.clientCertFile} --key=${tls.clientKeyFile} put hello world`,
    `LICHEN_ENDPOINTS=${endpoints} LICHEN_CACERT=${tls.caFile} LICHEN_CERT=${tls.clientCertFile} LICHEN_KEY=${tls.clientKeyFile} lichen get hello`,
  ];
}

/** The CLI's TLS settings for a TLS cluster of `dir` (up --remove talks to it). */
export function clusterClientTls(dir: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  const tlsDir = clusterTlsDir(dir);
  return {
    ca: readFileSync(join(tlsDir, 'ca.pem')),
    cert: readFileSync(join(tlsDir, 'client.pem')),
    key: readFileSync(join(tlsDir, 'client-key.pem')),
  };
}

async function ensurePair(dir: string, name: string, make: () => Promise<PemPair>): Promise<PemPair> {
  const certPath = join(dir, `${name}.pem`);
  const keyPath = join(dir, `${name}-key.pem`);
  if (existsSync(certPath) && existsSync(keyPath)) return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  const pair = await make();
  writeFileSync(keyPath, pair.key, { mode: 0o600 });
  writeFileSync(certPath, pair.cert);
  return pair;
}

