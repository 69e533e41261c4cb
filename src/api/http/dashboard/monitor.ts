// The cluster as the dashboard sees it, gathered by the member that serves the page: once a
// second, while at least one page listens, it asks every member for its report (GET /v1/traffic
// since what it already has; its own report is read in-process) and sends one event to every
// page. Why the serving member gathers rather than each page asking every member itself: a page
// then needs to reach one address only (one origin: no CORS, one TLS certificate to trust, one
// token, a tunnel or port-forward to one port is enough), and five open tabs cost the cluster one
// set of requests a second, not five.
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { formatId } from '../../../ids.js';
import { trafficHeatSecondsMax, trafficSecondsMax } from '../../../limits.js';
import { SAMPLE_FIELDS, type HeatColumn, type TrafficSamples } from '../../../traffic/index.js';
import type { DashboardSource, MemberAddress, MemberFacts, MemberReport } from './report.js';

/** How often the pages hear from the cluster. */
export const MONITOR_INTERVAL_MS = 1000;
/**
 * A member that has not answered within this is shown as down. Below the interval, so one round
 * ends before the next starts and a member that died is shown within two rounds at most.
 */
export const MONITOR_PEER_TIMEOUT_MS = 900;

export type MemberState = 'up' | 'down' | 'unknown';

/** The id of no member (formatId(0)), as /v1/status says "no leader". */
export const NO_MEMBER = formatId(0);

export interface MemberView extends MemberAddress {
  state: MemberState;
  /** Why the member is down or unknown. */
  error?: string;
  /** The last facts it reported (kept while it is down, marked by `state`). */
  facts?: MemberFacts;
  /** Log entries it has applied fewer than the leader; absent when either is not up. */
  lag?: number;
}

/**
 * One event to the pages. A "history" event carries the whole hour of samples and ten minutes of
 * heat held here, a "tick" only what arrived since the previous tick; pages add ticks to what they
 * have. Heat columns are per member: a page adds up the columns of one second.
 */
export interface ClusterEvent {
  second: number;
  /** The member that says it leads, in the highest term among the up members; all zeros when none. */
  leader: string;
  members: MemberView[];
  samples: Record<string, TrafficSamples>;
  heat: HeatColumn[];
  /** The heat is left out: auth is enabled and the page's user lacks the root role. */
  heatHidden?: boolean;
}

export interface MonitorDeps {
  source: DashboardSource;
  /**
   * GET http://<address>/v1/traffic?since=…&heatSince=…, with the Authorization header when one is
   * given, rejecting on failure or after the timeout.
   */
  fetchReport(address: string, since: number, heatSince: number, timeoutMs: number, authorization?: string): Promise<MemberReport>;
  /** Default setTimeout; tests drive rounds by hand. */
  setTimer?: (run: () => void, ms: number) => { cancel(): void };
  /** Wall-clock milliseconds. Default Date.now. */
  nowMs?: () => number;
}

interface Tracked {
  address: MemberAddress;
  state: MemberState;
  error?: string;
  facts?: MemberFacts;
  /** Samples of the last hour, columns as in TrafficSamples. */
  samples: TrafficSamples;
  /** The last closed second received, for the next request's `since`. */
  cursor: number;
  heatCursor: number;
}

/** Gets each event as an object and as its JSON text (made once for every listener). */
export type Listener = (kind: 'history' | 'tick', event: ClusterEvent, json: string) => void;

export interface Subscription {
  /** Whether the page's user may see the heat now (asked each round: auth or roles may change). */
  seesHeat(): boolean;
  /**
   * The page's Authorization header. While auth is enabled the other members send their heat
   * only to the root role, so the monitor asks them with the credentials of a page that sees it.
   */
  authorization?: string;
}

const SEES_EVERYTHING: Subscription = { seesHeat: () => true };

export class ClusterMonitor {
  private readonly tracked = new Map<string, Tracked>();
  /** Every member's heat columns of the last trafficHeatSecondsMax seconds, oldest first. */
  private heat: HeatColumn[] = [];
  private readonly listeners = new Map<Listener, Subscription>();
  /** Listeners that have not had their history event yet. */
  private readonly waiting = new Set<Listener>();
  private timer: { cancel(): void } | undefined;
  private running = false;
  private readonly setTimer: NonNullable<MonitorDeps['setTimer']>;
  private readonly nowMs: () => number;

  constructor(private readonly deps: MonitorDeps) {
    this.nowMs = deps.nowMs ?? Date.now;
    this.setTimer =
      deps.setTimer ??
      ((run, ms) => {
        const handle = setTimeout(run, ms);
        handle.unref();
        return { cancel: () => clearTimeout(handle) };
      });
  }

  /** Starts the rounds when the first listener comes; the listener gets a history event first. */
  subscribe(listener: Listener, subscription: Subscription = SEES_EVERYTHING): () => void {
    this.listeners.set(listener, subscription);
    this.waiting.add(listener);
    if (!this.running) {
      this.running = true;
      void this.round();
    }
    return () => {
      this.listeners.delete(listener);
      this.waiting.delete(listener);
    };
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Stops the rounds (also done by itself when the last listener leaves). */
  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.running = false;
    this.listeners.clear();
    this.waiting.clear();
  }

  /** One round: ask everyone, then tell every listener; the next round starts a second after this one. */
  private async round(): Promise<void> {
    const started = this.nowMs();
    try {
      const tick = await this.gather();
      if (!this.running) return;
      // Each event's JSON text is made once for the pages that see the heat and once for the rest.
      const texts = new Map<string, { event: ClusterEvent; json: string }>();
      const textOf = (kind: 'history' | 'tick', seesHeat: boolean): { event: ClusterEvent; json: string } => {
        const name = `${kind}${seesHeat}`;
        let text = texts.get(name);
        if (!text) {
          const full = kind === 'history' ? this.historyOf(tick) : tick;
          const event: ClusterEvent = seesHeat ? full : { ...full, heat: [], heatHidden: true };
          text = { event, json: JSON.stringify(event) };
          texts.set(name, text);
        }
        return text;
      };
      for (const [listener, subscription] of this.listeners) {
        const kind = this.waiting.delete(listener) ? 'history' : 'tick';
        const { event, json } = textOf(kind, subscription.seesHeat());
        listener(kind, event, json);
      }
    } catch {
      // The member is still starting (it has no member table yet): the pages wait for the next round.
    }
    if (!this.running) return;
    if (this.listeners.size === 0) {
      this.running = false;
      return;
    }
    this.timer = this.setTimer(() => void this.round(), Math.max(0, MONITOR_INTERVAL_MS - (this.nowMs() - started)));
  }

  /** Asks every member for what is new, updates the view, and returns the tick it makes (public for tests). */
  async gather(): Promise<ClusterEvent> {
    const members = this.deps.source.members();
    for (const id of this.tracked.keys()) if (!members.some((m) => m.id === id)) this.tracked.delete(id);
    const newSamples: Record<string, TrafficSamples> = {};
    const newHeat: HeatColumn[] = [];
    const authorization = this.heatCredentials();
    await Promise.all(
      members.map(async (address) => {
        const tracked = this.trackedFor(address);
        try {
          const report = await this.reportOf(address, tracked, authorization);
          tracked.state = 'up';
          tracked.error = undefined;
          tracked.facts = report.member;
          newSamples[address.id] = report.samples;
          appendSamples(tracked.samples, report.samples);
          tracked.cursor = Math.max(tracked.cursor, report.second - 1);
          for (const column of report.heat) {
            newHeat.push(column);
            tracked.heatCursor = Math.max(tracked.heatCursor, column.second);
          }
          tracked.heatCursor = Math.max(tracked.heatCursor, report.second - 1);
        } catch (error) {
          tracked.state = address.httpAddress === '' ? 'unknown' : 'down';
          tracked.error = address.httpAddress === '' ? 'the member has not published an HTTP address' : errorText(error);
        }
      }),
    );
    newHeat.sort((a, b) => a.second - b.second);
    this.heat.push(...newHeat);
    this.heat.sort((a, b) => a.second - b.second);
    const second = Math.floor(this.nowMs() / 1000);
    this.heat = this.heat.filter((c) => c.second >= second - trafficHeatSecondsMax);
    return { second, ...this.membersView(), samples: newSamples, heat: newHeat };
  }

  private trackedFor(address: MemberAddress): Tracked {
    let tracked = this.tracked.get(address.id);
    if (!tracked) {
      tracked = { address, state: 'unknown', samples: emptySamples(), cursor: 0, heatCursor: 0 };
      this.tracked.set(address.id, tracked);
    }
    tracked.address = address;
    return tracked;
  }

  private reportOf(address: MemberAddress, tracked: Tracked, authorization: string | undefined): Promise<MemberReport> {
    if (address.id === this.deps.source.memberId) return this.deps.source.report(tracked.cursor, tracked.heatCursor);
    if (address.httpAddress === '') return Promise.reject(new Error('no HTTP address'));
    return this.deps.fetchReport(address.httpAddress, tracked.cursor, tracked.heatCursor, MONITOR_PEER_TIMEOUT_MS, authorization);
  }

  /** The credentials of a page that sees the heat, the latest to subscribe; none when no page has any. */
  private heatCredentials(): string | undefined {
    let found: string | undefined;
    for (const subscription of this.listeners.values()) if (subscription.authorization && subscription.seesHeat()) found = subscription.authorization;
    return found;
  }

  private membersView(): Pick<ClusterEvent, 'leader' | 'members'> {
    const up = [...this.tracked.values()].filter((t) => t.state === 'up' && t.facts);
    const leaders = up.filter((t) => t.facts!.role === 'leader').sort((a, b) => b.facts!.term - a.facts!.term);
    const leader = leaders[0]?.facts;
    const members = [...this.tracked.values()]
      .sort((a, b) => a.address.name.localeCompare(b.address.name) || a.address.id.localeCompare(b.address.id))
      .map((t): MemberView => ({
        ...t.address,
        state: t.state,
        ...(t.error !== undefined ? { error: t.error } : {}),
        ...(t.facts ? { facts: t.facts } : {}),
        ...(leader && t.state === 'up' && t.facts ? { lag: Math.max(0, leader.appliedIndex - t.facts.appliedIndex) } : {}),
      }));
    return { leader: leader?.id ?? NO_MEMBER, members };
  }

  /** The whole kept history: every member's samples of the last hour and the heat of ten minutes. */
  private historyOf(tick: ClusterEvent): ClusterEvent {
    const samples: Record<string, TrafficSamples> = {};
    for (const [id, tracked] of this.tracked) samples[id] = tracked.samples;
    return { ...tick, samples, heat: this.heat };
  }
}

/** The client side of TLS to the other members' HTTP ports: the member's own client certificate. */
export interface MemberTls {
  ca: Buffer | undefined;
  cert: Buffer;
  key: Buffer;
  /** Auto TLS: the peers' certificates are self-signed, nobody can verify them. */
  insecureSkipVerify: boolean;
}

/**
 * How a member asks another for its report: GET /v1/traffic on its HTTP port, over HTTPS with
 * the member's client certificate when the HTTP ports serve TLS.
 */
export function reportFetcher(tls?: MemberTls): MonitorDeps['fetchReport'] {
  return async (address, since, heatSince, timeoutMs, authorization) => {
    const path = `/v1/traffic?since=${since}&heatSince=${heatSince}`;
    const signal = AbortSignal.timeout(timeoutMs);
    const get = (headers: Record<string, string>) => (tls ? httpsGet(address, path, headers, tls, signal) : plainGet(address, path, headers, signal));
    // A token the other member does not take gets the report without the heat (see trafficRoute).
    const answer = await get(authorization ? { authorization } : {});
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.text.slice(0, 200)}`);
    return JSON.parse(answer.text) as MemberReport;
  };
}

interface Answer {
  status: number;
  text: string;
}

async function plainGet(address: string, path: string, headers: Record<string, string>, signal: AbortSignal): Promise<Answer> {
  const response = await fetch(`http://${address}${path}`, { headers, signal });
  return { status: response.status, text: await response.text() };
}

/** fetch() cannot be given a CA or a client certificate; node:https can. */
function httpsGet(address: string, path: string, headers: Record<string, string>, tls: MemberTls, signal: AbortSignal): Promise<Answer> {
  const url = new URL(`https://${address}${path}`);
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      url,
      { headers, signal, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecureSkipVerify, servername: isIP(url.hostname.replace(/^\[|\]$/g, '')) ? undefined : url.hostname },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end();
  });
}

function emptySamples(): TrafficSamples {
  return { from: 0, reads: [], writes: [], readP50: [], readP99: [], writeP50: [], writeP99: [] };
}

/** Adds `more` after `into` (seconds both have are taken from `more`) and keeps the last hour. */
function appendSamples(into: TrafficSamples, more: TrafficSamples): void {
  if (more.reads.length === 0) return;
  const end = into.from + into.reads.length;
  if (into.reads.length === 0 || more.from < into.from || more.from - end > trafficSecondsMax) {
    // Nothing kept yet, or older than what is kept (a clock step back): start again from `more`.
    for (const field of SAMPLE_FIELDS) into[field] = [...more[field]];
    into.from = more.from;
  } else {
    for (const field of SAMPLE_FIELDS) {
      const column = into[field];
      column.length = Math.min(column.length, more.from - into.from);
      while (column.length < more.from - into.from) column.push(0);
      column.push(...more[field]);
    }
  }
  const excess = into.reads.length - trafficSecondsMax;
  if (excess > 0) {
    for (const field of SAMPLE_FIELDS) into[field].splice(0, excess);
    into.from += excess;
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') return `no answer within ${MONITOR_PEER_TIMEOUT_MS} ms`;
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? error.message;
  }
  return String(error);
}
