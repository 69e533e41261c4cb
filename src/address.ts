// The one parser of "host:port" addresses, for listeners, peers, endpoints and tools alike.
import { isIPv6 } from 'node:net';
import { ErrorCode, LichenError } from './errors.js';

export interface HostPort {
  /** A name or an IP address; an IPv6 address without its brackets. */
  host: string;
  /** 0..65535; 0 asks a listener for any free port. */
  port: number;
}

const PORT_MAX = 65_535;
const SCHEME = /^(?:https?|tcp):\/\//;
const HOST_NAME = /^[A-Za-z0-9._-]+$/;

/**
 * Splits "host:port" or "[v6]:port". A scheme (http://, https://, tcp://) and a trailing slash
 * are ignored, as etcd's flags take URLs where Lichen takes addresses. Throws InvalidArgument
 * naming the address unless the host is a name, an IPv4 or an IPv6 address and the port an
 * integer in 0..65535.
 */
export function parseHostPort(address: string): HostPort {
  const text = address.replace(SCHEME, '').replace(/\/+$/, '');
  const colon = text.lastIndexOf(':');
  const rawHost = text.slice(0, colon);
  const host = rawHost.startsWith('[') && rawHost.endsWith(']') ? rawHost.slice(1, -1) : rawHost;
  const rawPort = text.slice(colon + 1);
  const port = Number(rawPort);
  const hostValid = HOST_NAME.test(host) || isIPv6(host);
  if (colon <= 0 || !hostValid || !/^\d{1,5}$/.test(rawPort) || port > PORT_MAX) {
    throw new LichenError(ErrorCode.InvalidArgument, `"${address}" is not a host:port address (port 0..${PORT_MAX})`);
  }
  return { host, port };
}

/** The address back as text, with an IPv6 host in brackets. */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
