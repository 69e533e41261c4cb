// A put benchmark through Lichen's HTTP/JSON API: PUT /v1/kv/<key> with the raw value as body,
// over N keep-alive connections with one request in flight on each (node's HTTP client does
// not pipeline). Lichen-only: etcd has no such route.
import { Agent, request } from 'node:http';
import { driveLoad } from './driver.js';
import { makeValue, randomKeyPicker, sequentialKeyPicker } from './keys.js';
import { buildResult, type RunControls } from './run.js';
import type { BenchResult } from './report.js';
import { UsageError } from '../cli/args.js';
import { parseHostPort, type HostPort } from '../address.js';

export interface HttpPutOptions {
  /** host:port of HTTP listeners; connection i goes to url i mod n. */
  urls: string[];
  connections: number;
  total?: number;
  durationMs?: number;
  keySizeBytes: number;
  valueSizeBytes: number;
  keySpaceSize: number;
  sequentialKeys: boolean;
  requestTimeoutMs: number;
  ratePerSecond?: number;
}

/** Bodies of error answers are read up to this size, for the error message. */
const ERROR_BODY_CHARS_MAX = 300;

function putOnce(agent: Agent, target: { host: string; port: number }, key: Buffer, value: Buffer, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: target.host,
        port: target.port,
        method: 'PUT',
        path: `/v1/kv/${encodeURIComponent(key.toString('latin1'))}`,
        headers: { 'content-type': 'application/octet-stream', 'content-length': value.length },
        timeout: timeoutMs,
      },
      (res) => {
        const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (!ok && body.length < ERROR_BODY_CHARS_MAX) body += chunk;
        });
        res.on('end', () => (ok ? resolve() : reject(new Error(`HTTP ${res.statusCode}: ${body.slice(0, ERROR_BODY_CHARS_MAX)}`))));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`HTTP request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(value);
  });
}

function splitHostPort(address: string): HostPort {
  try {
    const target = parseHostPort(address);
    if (target.port > 0) return target;
  } catch {
    // Said below, in the tool's words.
  }
  throw new UsageError(`invalid HTTP address: "${address}" (expected host:port)`);
}

export async function runHttpPutBench(options: HttpPutOptions, controls: RunControls = {}): Promise<BenchResult> {
  if (options.urls.length === 0) throw new UsageError('at least one HTTP address is needed');
  if (options.total === undefined && options.durationMs === undefined) throw new UsageError('give a total or a duration');
  const targets = options.urls.map(splitHostPort);
  // One agent per target, each allowed exactly as many sockets as connections use it.
  const agents = targets.map(
    (_t, i) =>
      new Agent({
        keepAlive: true,
        maxSockets: Math.max(1, Math.ceil((options.connections - i) / targets.length)),
      }),
  );
  const value = makeValue(options.valueSizeBytes);
  const picker = options.sequentialKeys
    ? sequentialKeyPicker(options.keySpaceSize, options.keySizeBytes)
    : randomKeyPicker(options.keySpaceSize, options.keySizeBytes);
  const startedAt = new Date().toISOString();
  try {
    const outcome = await driveLoad({
      kind: 'http-put',
      phase: 'measure',
      workers: options.connections,
      ...(options.total !== undefined ? { total: options.total } : {}),
      ...(options.durationMs !== undefined ? { durationMs: options.durationMs } : {}),
      ...(options.ratePerSecond !== undefined ? { ratePerSecond: options.ratePerSecond } : {}),
      operations: ['put'],
      pickOperation: () => 0,
      issue: (worker) => {
        const t = worker % targets.length;
        return putOnce(agents[t] as Agent, targets[t] as { host: string; port: number }, picker.next(), value, options.requestTimeoutMs);
      },
      ...controls,
    });
    const settings: Record<string, string | number | boolean> = {
      connections: options.connections,
      keySize: options.keySizeBytes,
      valSize: options.valueSizeBytes,
      keySpaceSize: options.keySpaceSize,
      sequentialKeys: options.sequentialKeys,
    };
    if (options.total !== undefined) settings.total = options.total;
    if (options.durationMs !== undefined) settings.durationSeconds = options.durationMs / 1000;
    return buildResult({
      kind: 'http-put',
      startedAt,
      endpoints: options.urls,
      settings,
      preloadedKeys: 0,
      outcome,
      perOperation: false,
    });
  } finally {
    for (const agent of agents) agent.destroy();
  }
}
