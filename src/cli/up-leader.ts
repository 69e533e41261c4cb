// Which node of a `lichen up` cluster leads: every running node is asked over its HTTP API
// (/v1/leader) a few times a second, and every change is reported, so that after the leader
// crashes the user sees the one the others elect.
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';

/** A node as the watch sees it: `running` is false once its process has exited. */
export interface WatchedNode {
  name: string;
  client: string;
  http: string;
  running: boolean;
}

/** A leader as one node names it, in the term that node is in. */
export interface LeaderView {
  id: string;
  name: string;
  term: number;
  clientAddress: string;
}

/** How often the running nodes are asked; a new leader is reported at most this much later. */
export const UP_LEADER_POLL_MS = 250;
const LEADER_REQUEST_TIMEOUT_MS = 1_000;

export interface LeaderWatch {
  nodes: () => readonly WatchedNode[];
  signal: AbortSignal;
  /** The first leader, then each change of leader or term. */
  onLeader: (leader: LeaderView) => void;
  /** Called once when no leader was seen within `waitMs` of the start. */
  onNoLeader: () => void;
  waitMs: number;
}

/** The network and the clock, injected by tests. */
export interface LeaderWatchIo {
  ask: (node: WatchedNode, signal: AbortSignal) => Promise<LeaderView | undefined>;
  now: () => number;
  /** Resolves after ms, or early when the signal is aborted. */
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** PEM CA and client certificate of a cluster started with `up --tls`. */
export interface ClientCertificates {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** The real network (HTTPS with the client certificate when given) and clock. */
export function leaderWatchIo(tls?: ClientCertificates): LeaderWatchIo {
  return {
    ask: (node, signal) => askLeader(node, signal, tls),
    now: () => Date.now(),
    sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => undefined),
  };
}

/** Runs until the signal is aborted. */
export async function watchLeader(watch: LeaderWatch, io: LeaderWatchIo = leaderWatchIo()): Promise<void> {
  const deadline = io.now() + watch.waitMs;
  let last: LeaderView | undefined;
  let warned = false;
  while (!watch.signal.aborted) {
    const nodes = watch.nodes();
    const running = nodes.filter((n) => n.running);
    const answers = await Promise.all(running.map((node) => io.ask(node, watch.signal)));
    const leader = chooseLeader(answers, nodes);
    if (watch.signal.aborted) return;
    if (leader !== undefined && (leader.id !== last?.id || leader.term !== last.term)) {
      last = leader;
      watch.onLeader(leader);
    }
    if (last === undefined && !warned && io.now() >= deadline) {
      warned = true;
      watch.onNoLeader();
    }
    await io.sleep(UP_LEADER_POLL_MS, watch.signal);
  }
}

/**
 * The leader named in the highest term, unless it is a node that is no longer running: after the
 * leader crashed, the others keep naming it until their election timeout runs out.
 */
export function chooseLeader(answers: readonly (LeaderView | undefined)[], nodes: readonly WatchedNode[]): LeaderView | undefined {
  let best: LeaderView | undefined;
  for (const answer of answers) {
    if (answer !== undefined && (best === undefined || answer.term > best.term)) best = answer;
  }
  const leader = best;
  if (leader === undefined) return undefined;
  const node = nodes.find((n) => n.name === leader.name || n.client === leader.clientAddress);
  return node !== undefined && !node.running ? undefined : leader;
}

/** GET of a JSON document over HTTP, or HTTPS with client certificates; undefined unless 200. */
function getJson(url: string, signal: AbortSignal, tls: ClientCertificates | undefined): Promise<unknown> {
  return new Promise((resolveGet, rejectGet) => {
    const options = { signal: AbortSignal.any([signal, AbortSignal.timeout(LEADER_REQUEST_TIMEOUT_MS)]), ...tls };
    const request = (tls ? httpsGet : httpGet)(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        try {
          resolveGet(response.statusCode === 200 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined);
        } catch (error) {
          rejectGet(error);
        }
      });
      response.on('error', rejectGet);
    });
    request.on('error', rejectGet);
  });
}

async function askLeader(node: WatchedNode, signal: AbortSignal, tls: ClientCertificates | undefined): Promise<LeaderView | undefined> {
  try {
    const body = (await getJson(`${tls ? 'https' : 'http'}://${node.http}/v1/leader`, signal, tls)) as
      | { header?: { raftTerm?: unknown }; leader?: { id?: unknown; name?: unknown; clientURLs?: unknown } }
      | undefined;
    const leader = body?.leader;
    if (typeof leader?.id !== 'string' || /^0*$/.test(leader.id)) return undefined;
    const clientUrls = Array.isArray(leader.clientURLs) ? (leader.clientURLs as unknown[]) : [];
    return {
      id: leader.id,
      name: typeof leader.name === 'string' ? leader.name : '',
      term: Number(body?.header?.raftTerm ?? 0),
      clientAddress: String(clientUrls[0] ?? '').replace(/^[a-z]+:\/\//i, ''),
    };
  } catch {
    return undefined;
  }
}
