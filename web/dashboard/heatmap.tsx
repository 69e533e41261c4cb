// The key-space heatmap: key prefixes (in key order) down, the last ten minutes across, one cell
// per prefix and second, darker for more requests (log scale), so a hot prefix is a dark band.
import { useEffect, useRef, useState } from 'preact/hooks';
import { HEAT_SECONDS, OTHER_PREFIX, useCluster, type ClusterState } from './cluster';

/** Rows drawn at most; the prefixes with less traffic over the window are summed into "(other)". */
const ROWS_MAX = 40;
const OTHER_LABEL = '(other)';
type Mode = 'writes' | 'reads' | 'both';

interface Grid {
  prefixes: string[];
  start: number;
  /** counts[row][column] */
  counts: number[][];
  max: number;
}

function countOf(cell: [number, number], mode: Mode): number {
  return mode === 'writes' ? cell[1] : mode === 'reads' ? cell[0] : cell[0] + cell[1];
}

function grid(state: ClusterState, mode: Mode): Grid {
  const start = state.second - HEAT_SECONDS;
  const totals = new Map<string, number>();
  for (const [second, cells] of state.heat) {
    if (second < start) continue;
    for (const [prefix, cell] of cells) totals.set(prefix, (totals.get(prefix) ?? 0) + countOf(cell, mode));
  }
  const ranked = [...totals].filter(([p, n]) => n > 0 && p !== OTHER_PREFIX).sort((a, b) => b[1] - a[1]);
  const shown = new Set(ranked.slice(0, ROWS_MAX).map(([p]) => p));
  const prefixes = [...shown].sort();
  if (ranked.length > ROWS_MAX || (totals.get(OTHER_PREFIX) ?? 0) > 0) prefixes.push(OTHER_PREFIX);
  const row = new Map(prefixes.map((p, i) => [p, i]));
  const counts = prefixes.map(() => new Array<number>(HEAT_SECONDS).fill(0));
  let max = 0;
  for (const [second, cells] of state.heat) {
    const column = second - start;
    if (column < 0 || column >= HEAT_SECONDS) continue;
    for (const [prefix, cell] of cells) {
      const r = row.get(shown.has(prefix) ? prefix : OTHER_PREFIX);
      if (r === undefined) continue;
      const value = (counts[r]![column]! += countOf(cell, mode));
      if (value > max) max = value;
    }
  }
  return { prefixes, start, counts, max };
}

const LABEL_WIDTH = 220;
const ROW_HEIGHT = 16;

function draw(canvas: HTMLCanvasElement, g: Grid): void {
  const width = canvas.clientWidth;
  const height = Math.max(1, g.prefixes.length) * ROW_HEIGHT + 20;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d')!;
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  ctx.font = '12px ui-monospace, monospace';
  ctx.textBaseline = 'middle';
  const cellWidth = (width - LABEL_WIDTH) / HEAT_SECONDS;
  const logMax = Math.log1p(g.max);
  g.prefixes.forEach((prefix, r) => {
    const y = r * ROW_HEIGHT;
    ctx.fillStyle = '#333';
    const text = prefix === OTHER_PREFIX ? OTHER_LABEL : prefix;
    const label = text.length > 30 ? `${text.slice(0, 29)}…` : text;
    ctx.fillText(label, 4, y + ROW_HEIGHT / 2);
    const counts = g.counts[r]!;
    for (let c = 0; c < HEAT_SECONDS; c++) {
      const n = counts[c]!;
      if (n === 0) continue;
      const heat = logMax === 0 ? 0 : Math.log1p(n) / logMax;
      // From pale yellow through orange to dark red.
      ctx.fillStyle = `hsl(${50 - 50 * heat}, 90%, ${88 - 58 * heat}%)`;
      ctx.fillRect(LABEL_WIDTH + c * cellWidth, y + 1, Math.max(1, cellWidth), ROW_HEIGHT - 2);
    }
  });
  ctx.fillStyle = '#666';
  const axisY = g.prefixes.length * ROW_HEIGHT + 10;
  for (let minutesAgo = 10; minutesAgo >= 0; minutesAgo -= 2) {
    const x = LABEL_WIDTH + (HEAT_SECONDS - minutesAgo * 60) * cellWidth;
    ctx.fillText(minutesAgo === 0 ? 'now' : `-${minutesAgo}m`, Math.min(x - 10, width - 24), axisY);
  }
}

export function Heatmap() {
  const state = useCluster();
  const [mode, setMode] = useState<Mode>('both');
  const [hover, setHover] = useState<string>('');
  const canvas = useRef<HTMLCanvasElement>(null);
  const g = grid(state, mode);

  useEffect(() => {
    if (canvas.current) draw(canvas.current, g);
  });

  const onMove = (event: MouseEvent): void => {
    const rect = canvas.current!.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const r = Math.floor((event.clientY - rect.top) / ROW_HEIGHT);
    const c = Math.floor(((x - LABEL_WIDTH) / (rect.width - LABEL_WIDTH)) * HEAT_SECONDS);
    const prefix = g.prefixes[r];
    if (prefix === undefined || c < 0 || c >= HEAT_SECONDS) return setHover('');
    const second = g.start + c;
    const cell = prefix === OTHER_PREFIX ? undefined : state.heat.get(second)?.get(prefix);
    const time = new Date(second * 1000).toLocaleTimeString();
    setHover(`${prefix === OTHER_PREFIX ? OTHER_LABEL : prefix} at ${time}: ${cell ? `${cell[1]} writes, ${cell[0]} reads` : `${g.counts[r]![c]} requests`}`);
  };

  if (state.heatHidden) {
    return (
      <div class="banner error" role="alert" data-testid="heat-hidden">
        The key-space heatmap needs the role root while authentication is enabled: it shows the names of keys across the whole key space. Log in as a user with that role to see it.
      </div>
    );
  }
  return (
    <section>
      <div class="toolbar">
        <span>Requests by key prefix, last 10 minutes, one column per second.</span>
        {(['both', 'writes', 'reads'] as Mode[]).map((m) => (
          <label key={m}>
            <input type="radio" name="heat-mode" checked={mode === m} onChange={() => setMode(m)} /> {m}
          </label>
        ))}
      </div>
      {g.prefixes.length === 0 ? (
        <p class="muted">No requests in the last ten minutes.</p>
      ) : (
        <canvas ref={canvas} class="heatmap" data-testid="heatmap" onMouseMove={onMove} onMouseLeave={() => setHover('')} />
      )}
      <p class="muted" data-testid="heat-hover">
        {hover ||
          `Prefix: a key up to its second '/' (e.g. /registry/pods/), or the whole key. ${g.prefixes.length} rows, busiest cell ${g.max}. ` +
            `(other): the prefixes beyond the ${ROWS_MAX} busiest, and those beyond the 128 a member counts one by one in a second.`}
      </p>
    </section>
  );
}
