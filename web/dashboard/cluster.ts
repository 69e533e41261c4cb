// The cluster as the page knows it: fed by the member's event stream (GET /v1/events), a
// "history" event once and a "tick" every second. Samples (one hour per member) and heat columns
// (ten minutes) are kept here with the same bounds as the server's.
import { useEffect, useState } from 'preact/hooks';
import { NO_ID, type ClusterEvent, type HeatColumn, type MemberView, type TrafficSamples } from './api';
import { openStream, type Stream } from './stream';

export const SAMPLE_SECONDS = 3600;
export const HEAT_SECONDS = 600;
const FIELDS = ['reads', 'writes', 'readP50', 'readP99', 'writeP50', 'writeP99'] as const;

export type Connection = 'connecting' | 'open' | 'lost';

export interface ClusterState {
  connection: Connection;
  /** When the stream last delivered an event (ms), for "last heard" after a loss. */
  heardAt: number;
  /** Why the stream was lost. */
  error: string;
  second: number;
  leader: string;
  members: MemberView[];
  samples: Map<string, TrafficSamples>;
  /** Second → prefix → [reads, writes], added up over the members; OTHER_PREFIX holds the rest. */
  heat: Map<number, Map<string, [number, number]>>;
  /** The member leaves the heat out: auth is on and the logged-in user lacks the root role. */
  heatHidden: boolean;
}

/** The row of the requests on prefixes not counted one by one (a string no prefix can be: it is not a key's start). */
export const OTHER_PREFIX = '\u0000(other)';

const state: ClusterState = {
  connection: 'connecting',
  heardAt: 0,
  error: '',
  second: 0,
  leader: NO_ID,
  members: [],
  samples: new Map(),
  heat: new Map(),
  heatHidden: false,
};
let version = 0;
const listeners = new Set<() => void>();

function changed(): void {
  version++;
  for (const listener of listeners) listener();
}

function addSamples(id: string, more: TrafficSamples, replace: boolean): void {
  const into = state.samples.get(id);
  if (replace || !into || into.reads.length === 0 || more.from < into.from || more.from > into.from + into.reads.length + SAMPLE_SECONDS) {
    state.samples.set(id, { ...more, ...Object.fromEntries(FIELDS.map((f) => [f, [...more[f]]])) });
    return;
  }
  // Overlap (a reconnect) is overwritten, a gap is zeros.
  const offset = more.from - into.from;
  for (const field of FIELDS) {
    const column = into[field];
    while (column.length < offset) column.push(0);
    column.splice(offset, more[field].length, ...more[field]);
  }
  const excess = into.reads.length - SAMPLE_SECONDS;
  if (excess > 0) {
    for (const field of FIELDS) into[field].splice(0, excess);
    into.from += excess;
  }
}

function addHeat(columns: HeatColumn[]): void {
  for (const column of columns) {
    let cells = state.heat.get(column.second);
    if (!cells) {
      cells = new Map();
      state.heat.set(column.second, cells);
    }
    const add = (prefix: string, reads: number, writes: number): void => {
      const cell = cells!.get(prefix);
      if (cell) {
        cell[0] += reads;
        cell[1] += writes;
      } else {
        cells!.set(prefix, [reads, writes]);
      }
    };
    for (const [prefix, reads, writes] of column.cells) add(prefix, reads, writes);
    if (column.other[0] + column.other[1] > 0) add(OTHER_PREFIX, column.other[0], column.other[1]);
  }
  for (const second of state.heat.keys()) {
    if (second < state.second - HEAT_SECONDS) state.heat.delete(second);
  }
}

function apply(kind: 'history' | 'tick', event: ClusterEvent): void {
  state.connection = 'open';
  state.heardAt = Date.now();
  state.second = event.second;
  state.leader = event.leader;
  state.members = event.members;
  if (kind === 'history') state.heat.clear();
  state.heatHidden = event.heatHidden === true;
  for (const [id, samples] of Object.entries(event.samples)) addSamples(id, samples, kind === 'history');
  addHeat(event.heat);
  changed();
}

let source: Stream | undefined;

/** Opens the stream once for the page; it reconnects by itself after a loss. */
export function connectCluster(url = '/v1/events'): void {
  if (source) return;
  source = openStream(url, {
    onEvent: (event, data) => {
      if (event === 'history' || event === 'tick') apply(event, JSON.parse(data) as ClusterEvent);
    },
    onError: (message) => {
      state.connection = 'lost';
      state.error = message;
      changed();
    },
  });
}

export function reconnectCluster(): void {
  source?.close();
  source = undefined;
  state.connection = 'connecting';
  connectCluster();
  changed();
}

/**
 * The cluster state; the component renders again on every event while the tab is visible (a
 * hidden tab keeps the data and draws once it is shown again, so open tabs cost little).
 */
export function useCluster(): ClusterState {
  const [, setVersion] = useState(version);
  useEffect(() => {
    const listener = (): void => {
      if (!document.hidden) setVersion(version);
    };
    listeners.add(listener);
    document.addEventListener('visibilitychange', listener);
    return () => {
      listeners.delete(listener);
      document.removeEventListener('visibilitychange', listener);
    };
  }, []);
  return state;
}

export function memberName(members: MemberView[], id: string | undefined): string {
  if (id === undefined || id === NO_ID) return 'none';
  return members.find((m) => m.id === id)?.name || id;
}
