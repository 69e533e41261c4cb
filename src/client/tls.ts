// TLS towards Lichen (or etcd) members, with etcdctl's choices: a CA bundle to verify the
// members' certificates (--cacert), a client certificate for members that require one (--cert,
// --key), or no verification at all (--insecure-skip-tls-verify, for members with --auto-tls).
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';

export interface ClientTls {
  /** PEM CA bundle that signed the members' certificates (default: the system's roots). */
  ca?: Buffer;
  /** PEM client certificate and its key, for members that require one (--client-cert-auth). */
  cert?: Buffer;
  key?: Buffer;
  /** Do not verify the members' certificates (members with self-signed --auto-tls ones). */
  insecureSkipVerify?: boolean;
}

/** gRPC channel credentials: TLS as `tls` says, or cleartext HTTP/2 without it. */
export function channelCredentials(tls: ClientTls | undefined): ChannelCredentials {
  if (tls === undefined) return credentials.createInsecure();
  return credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null, { rejectUnauthorized: tls.insecureSkipVerify !== true });
}
