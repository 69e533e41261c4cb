// Talking to the member that serves the page: JSON requests whose failures become ApiError (the
// API's {"error": {code, message}} or the network's failure), never an exception the page does not
// show, and the shapes the API answers with.

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The session's token once logged in (auth on); sent as the Authorization header. */
let token: string | undefined = sessionStorage.getItem('lichen-token') ?? undefined;
/** Told when the token is refused (it expired, or auth was disabled and enabled again). */
let onTokenRefused: () => void = () => {};

export function setToken(value: string | undefined): void {
  token = value;
  if (value) sessionStorage.setItem('lichen-token', value);
  else sessionStorage.removeItem('lichen-token');
}

export function whenTokenRefused(listener: () => void): void {
  onTokenRefused = listener;
}

/** The Authorization header of every request, when logged in. */
export function authorization(): Record<string, string> {
  return token ? { Authorization: token } : {};
}

export async function api<T>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      ...init,
      headers: {
        ...(body !== undefined && !(body instanceof Uint8Array) && typeof body !== 'string' ? { 'Content-Type': 'application/json' } : {}),
        ...authorization(),
        ...(init.headers as Record<string, string> | undefined),
      },
      body: body === undefined ? undefined : body instanceof Uint8Array || typeof body === 'string' ? (body as BodyInit) : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError('Unreachable', `the member serving this page did not answer (${(error as Error).message})`, 0);
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    throw new ApiError('Internal', `HTTP ${response.status}: ${text.slice(0, 200)}`, response.status);
  }
  if (!response.ok) {
    if (response.status === 401 && token) onTokenRefused();
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(error?.code ?? 'Internal', error?.message ?? `HTTP ${response.status}`, response.status);
  }
  return json as T;
}

/** A key as a path segment: every byte percent-encoded as the API decodes it. */
export function keyPath(key: string): string {
  return encodeURIComponent(key);
}

/** Member and lease ids are 16 hex digits; all zeros is none (no leader, no lease). */
export const NO_ID = '0000000000000000';

export interface KeyValue {
  key: string;
  keyEncoding?: 'base64';
  value?: string;
  encoding?: 'base64';
  createRevision: number;
  modRevision: number;
  version: number;
  lease: string;
}

export interface TrafficSamples {
  from: number;
  reads: number[];
  writes: number[];
  readP50: number[];
  readP99: number[];
  writeP50: number[];
  writeP99: number[];
}

export type HeatCell = [prefix: string, reads: number, writes: number];
export interface HeatColumn {
  second: number;
  cells: HeatCell[];
  /** Requests on the prefixes a member did not count one by one that second. */
  other: [number, number];
}

export interface MemberFacts {
  id: string;
  name: string;
  role: 'leader' | 'follower' | 'candidate' | 'precandidate' | 'learner';
  term: number;
  leader: string;
  commitIndex: number;
  appliedIndex: number;
  revision: number;
  dbSize: number;
  dbSizeInUse: number;
  version: string;
  errors: string[];
}

export interface MemberView {
  id: string;
  name: string;
  httpAddress: string;
  isLearner: boolean;
  state: 'up' | 'down' | 'unknown';
  error?: string;
  facts?: MemberFacts;
  lag?: number;
}

export interface ClusterEvent {
  second: number;
  leader: string;
  members: MemberView[];
  samples: Record<string, TrafficSamples>;
  heat: HeatColumn[];
  heatHidden?: boolean;
}

export interface WatchEvent {
  type: 'PUT' | 'DELETE';
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** Bytes of a value or key as the API sent it (UTF-8 text or base64). */
export function bytesOf(text: string | undefined, encoding: 'base64' | undefined): Uint8Array {
  if (text === undefined) return new Uint8Array();
  if (encoding === 'base64') return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new TextEncoder().encode(text);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
