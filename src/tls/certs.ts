// Making certificates: a certificate authority, certificates it signs, and self-signed ones (for
// --auto-tls). Node's crypto makes keys but not certificates; @peculiar/x509 builds and signs
// the X.509 structures on top of Node's WebCrypto. Keys are ECDSA P-256 with SHA-256 signatures:
// fast to make (a few milliseconds), and accepted by Node, Go (etcdctl) and every gRPC client.
import { isIP } from 'node:net';
import { X509Certificate as NodeX509Certificate, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Clocks of the machines involved may disagree a little: a certificate is valid from an hour ago. */
const NOT_BEFORE_SLACK_MS = 60 * 60 * 1000;

/** A certificate and its private key, PEM-encoded (the key as PKCS #8). */
export interface PemPair {
  cert: string;
  key: string;
}

export interface CertificateRequest {
  commonName: string;
  /** Host names and IP addresses the certificate is valid for (its subjectAltName). */
  hosts: string[];
  /** Which ends of a TLS connection may present it: a member's certificate serves both. */
  usage: 'server' | 'client' | 'server-and-client';
  validDays: number;
  /** The time it is issued at (tests inject it). Default: now. */
  now?: Date;
}

/** A certificate authority that may sign end-entity certificates (and no further authorities). */
export async function createCertificateAuthority(commonName: string, validDays: number, now = new Date()): Promise<PemPair> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: subject(commonName),
      ...validity(now, validDays),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) };
}

/** An end-entity certificate signed by `ca` (a pair from createCertificateAuthority). */
export async function issueCertificate(ca: PemPair, request: CertificateRequest): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await crypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), ALGORITHM, false, ['sign']);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialNumber(),
      subject: subject(request.commonName),
      issuer: caCert.subject,
      ...validity(request.now ?? new Date(), request.validDays),
      publicKey: keys.publicKey,
      signingKey: caKey,
      signingAlgorithm: ALGORITHM,
      extensions: [
        ...(await endEntityExtensions(request, keys.publicKey)),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto),
      ],
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) };
}

/** A self-signed end-entity certificate, as etcd's --auto-tls makes (nobody can verify its chain). */
export async function selfSignedCertificate(request: CertificateRequest): Promise<PemPair> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialNumber(),
      name: subject(request.commonName),
      ...validity(request.now ?? new Date(), request.validDays),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: await endEntityExtensions(request, keys.publicKey),
    },
    crypto,
  );
  return { cert: cert.toString('pem'), key: await exportKey(keys.privateKey) };
}

/** The subject common name of the first certificate in a PEM text ('' when it has none). */
export function commonNameOf(certPem: string | Buffer): string {
  const subjectText = new NodeX509Certificate(certPem).subject;
  return /^CN=(.*)$/m.exec(subjectText)?.[1] ?? '';
}

async function endEntityExtensions(request: CertificateRequest, publicKey: CryptoKey): Promise<x509.Extension[]> {
  const purposes = {
    server: [x509.ExtendedKeyUsage.serverAuth],
    client: [x509.ExtendedKeyUsage.clientAuth],
    'server-and-client': [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
  }[request.usage];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(purposes, false),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
  ];
  const hosts = [...new Set(request.hosts)].map((host) => host.replace(/^\[|\]$/g, ''));
  if (hosts.length > 0) {
    const names = hosts.map((host) => ({ type: isIP(host) ? ('ip' as const) : ('dns' as const), value: host }));
    extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  }
  return extensions;
}

function generateKeys(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

async function exportKey(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** 128 random bits with the top bit clear, so the DER integer is positive (RFC 5280 §4.1.2.2). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString('hex');
}

function subject(commonName: string): string {
  // The DN string syntax escapes these (RFC 4514); a CN rarely contains them.
  return `O=Lichen, CN=${commonName.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`)}`;
}

function validity(now: Date, validDays: number): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now.getTime() - NOT_BEFORE_SLACK_MS), notAfter: new Date(now.getTime() + validDays * DAY_MS) };
}
