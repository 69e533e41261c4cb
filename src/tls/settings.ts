// From TLS flags (etcd's names and rules) to the options of Node's TLS sockets.
//
// etcd's rules, followed here: a listener serves TLS when it has a certificate and key, or makes
// itself a self-signed one (--auto-tls, --peer-auto-tls: kept in the data directory under
// fixtures/client and fixtures/peer, reused on restart). A listener with a trusted CA, or with
// client-cert-auth, requires every client to present a certificate signed by that CA. A
// self-signed certificate cannot be verified, so whoever dials a member with auto TLS skips the
// chain check (etcd's InsecureSkipVerify). A required common name (--peer-cert-allowed-cn) is
// checked on the certificate of the other end, both when accepting and when dialing, as etcd does.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { ErrorCode, LichenError } from '../errors.js';

/** One listener kind's TLS flags, as etcd names them (the peer ones have the --peer- prefix). */
export interface TlsSettings {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  autoTls: boolean;
  /** The common name the other end's certificate must have; '' accepts any (peer only in etcd). */
  allowedCn: string;
}

export const TLS_OFF: TlsSettings = { certFile: '', keyFile: '', trustedCaFile: '', clientCertAuth: false, autoTls: false, allowedCn: '' };

/** A listener's loaded TLS material and what it demands of the other end. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** The trusted CA bundle, when one was given. */
  ca: Buffer | undefined;
  /** Every client must present a certificate signed by `ca`. */
  requireClientCert: boolean;
  /** The client certificate's common name names the user (etcd's --client-cert-auth). */
  commonNameIsUser: boolean;
  /** Made here by auto TLS: nobody can verify its chain, so dialers of it skip the check. */
  selfSigned: boolean;
  allowedCn: string;
}

/** etcd's --self-signed-cert-validity default: one year. */
export const SELF_SIGNED_VALID_DAYS = 365;

/** Flag combinations that cannot work, named with the flags' own names (prefix: '' or 'peer-'). */
export function tlsSettingsProblem(settings: TlsSettings, prefix: '' | 'peer-'): string | undefined {
  const flag = (name: string): string => `--${prefix}${name}`;
  if ((settings.certFile === '') !== (settings.keyFile === '')) return `${flag('cert-file')} and ${flag('key-file')} must be given together`;
  const served = settings.certFile !== '' || settings.autoTls;
  if (!served && (settings.trustedCaFile !== '' || settings.clientCertAuth || settings.allowedCn !== '')) {
    return `${flag(settings.trustedCaFile !== '' ? 'trusted-ca-file' : settings.clientCertAuth ? 'client-cert-auth' : 'cert-allowed-cn')} needs TLS: give ${flag('cert-file')} and ${flag('key-file')}, or ${flag('auto-tls')}`;
  }
  if (settings.clientCertAuth && settings.trustedCaFile === '') {
    return `${flag('client-cert-auth')} needs ${flag('trusted-ca-file')} (the CA that signs the clients' certificates)`;
  }
  if (settings.allowedCn !== '' && settings.trustedCaFile === '') {
    return `${flag('cert-allowed-cn')} needs ${flag('trusted-ca-file')}: a common name means something only in a certificate the CA signed`;
  }
  return undefined;
}

/**
 * Loads (or, for auto TLS, makes or reuses under `autoDir`) a listener's TLS material; undefined
 * when the settings ask for no TLS. `hosts` go into a self-signed certificate's names.
 */
export async function loadTlsMaterial(settings: TlsSettings, auto: { dir: string; hosts: string[] }): Promise<TlsMaterial | undefined> {
  let pair: { cert: Buffer; key: Buffer };
  let selfSigned = false;
  if (settings.certFile !== '') {
    pair = { cert: await readPem(settings.certFile, 'certificate'), key: await readPem(settings.keyFile, 'key') };
  } else if (settings.autoTls) {
    pair = await autoCertificate(auto.dir, auto.hosts);
    selfSigned = true;
  } else {
    return undefined;
  }
  const ca = settings.trustedCaFile === '' ? undefined : await readPem(settings.trustedCaFile, 'trusted CA');
  const material: TlsMaterial = {
    ...pair,
    ca,
    requireClientCert: ca !== undefined || settings.clientCertAuth,
    commonNameIsUser: settings.clientCertAuth,
    selfSigned,
    allowedCn: settings.allowedCn,
  };
  // A key that does not match its certificate, or a broken PEM, fails here and not at the first connection.
  try {
    tls.createSecureContext(secureContextOptions(material));
  } catch (error) {
    throw new LichenError(ErrorCode.InvalidArgument, `TLS: cannot use ${settings.certFile || auto.dir}: ${(error as Error).message}`);
  }
  return material;
}

function secureContextOptions(material: TlsMaterial): tls.SecureContextOptions {
  return { cert: material.cert, key: material.key, ...(material.ca ? { ca: material.ca } : {}) };
}

/** Options of a TLS listener serving `material`, offering `alpn` protocols. */
export function serverOptions(material: TlsMaterial, alpn: string[]): tls.TlsOptions {
  return {
    ...secureContextOptions(material),
    requestCert: material.requireClientCert,
    rejectUnauthorized: material.requireClientCert,
    ...(alpn.length > 0 ? { ALPNProtocols: alpn } : {}),
  };
}

/**
 * Options for dialing with `material` (a member dialing a peer): it presents its certificate,
 * verifies the listener's against the trusted CA (or, with auto TLS, skips the chain check), and
 * requires the allowed common name when one is set.
 */
export function clientOptions(material: TlsMaterial, alpn: string[]): tls.ConnectionOptions {
  const options: tls.ConnectionOptions = {
    ...secureContextOptions(material),
    rejectUnauthorized: !material.selfSigned,
    ...(alpn.length > 0 ? { ALPNProtocols: alpn } : {}),
  };
  if (material.allowedCn !== '') {
    options.checkServerIdentity = (host, cert) =>
      tls.checkServerIdentity(host, cert) ??
      (cert.subject?.CN === material.allowedCn ? undefined : new Error(`the peer's certificate has common name "${cert.subject?.CN ?? ''}", not the allowed "${material.allowedCn}"`));
  }
  return options;
}

/** What the peer transport needs (src/transport/tcp.ts PeerTls): one material serves both ends. */
export function peerTlsOptions(material: TlsMaterial): {
  server: tls.TlsOptions;
  client: tls.ConnectionOptions;
  accept: (socket: tls.TLSSocket) => string | undefined;
} {
  return { server: serverOptions(material, []), client: clientOptions(material, []), accept: (socket) => acceptanceProblem(material, socket) };
}

/**
 * Why an accepted TLS connection may not stay (the allowed common name), or undefined. The chain
 * itself was verified by the handshake when the listener requires client certificates.
 */
export function acceptanceProblem(material: TlsMaterial, socket: tls.TLSSocket): string | undefined {
  if (material.allowedCn === '') return undefined;
  const commonName = verifiedCommonName(socket);
  if (commonName === material.allowedCn) return undefined;
  return `the client's certificate has common name "${commonName ?? ''}", not the allowed "${material.allowedCn}"`;
}

/** The common name of the client certificate the handshake verified, or undefined (none, or unverified). */
export function verifiedCommonName(socket: tls.TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const commonName = socket.getPeerCertificate().subject?.CN;
  return typeof commonName === 'string' && commonName !== '' ? commonName : undefined;
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new LichenError(ErrorCode.InvalidArgument, `TLS: cannot read the ${what} file ${path}: ${(error as Error).message}`);
  }
}

/** etcd's SelfCert: cert.pem and key.pem in `dir`, made on first use and reused afterwards. */
async function autoCertificate(dir: string, hosts: string[]): Promise<{ cert: Buffer; key: Buffer }> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) return { cert: await readFile(certPath), key: await readFile(keyPath) };
  const { selfSignedCertificate } = await import('./certs.js');
  const made = await selfSignedCertificate({ commonName: 'lichen', hosts, usage: 'server-and-client', validDays: SELF_SIGNED_VALID_DAYS });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyPath, made.key, { mode: 0o600 });
  await writeFile(certPath, made.cert);
  return { cert: Buffer.from(made.cert), key: Buffer.from(made.key) };
}
