// report.html: a self-contained page (no scripts or files from elsewhere) with the verdict, the
// anomalies and the operations involved, the faults, and a timeline: one row per client worker,
// one bar per operation from invocation to completion, fault intervals as shaded bands, and the
// operations of every anomaly outlined in red.
import type { History, HistoryOp } from './history.js';
import type { Verdict } from './verdict.js';

/** Bars drawn at most (anomaly operations are always drawn); beyond it the page says so. */
const BARS_MAX = 40_000;
const ROW_HEIGHT_PX = 14;
const LABEL_WIDTH_PX = 170;
const AXIS_HEIGHT_PX = 34;
const PX_PER_SECOND = 60;
const WIDTH_MIN_PX = 1100;
const WIDTH_MAX_PX = 60_000;

const STATUS_COLOR: Record<string, string> = { ok: '#3a9d5d', fail: '#9aa0a6', unknown: '#e8a33d', pending: '#e8a33d' };
const FAULT_COLOR: Record<string, string> = { kill: '#d9534f', pause: '#8e6cc7', partition: '#3b7dd8', 'slow-disk': '#c7883b', 'full-disk': '#a0522d', membership: '#2aa198' };

export function renderReport(verdict: Verdict, history: History): string {
  const flagged = new Set<number>(verdict.anomalies.flatMap((a) => a.opIds));
  const culprits = new Set<number>(verdict.anomalies.flatMap((a) => a.culpritOpIds ?? []));
  const title = verdict.valid ? 'PASS' : 'FAIL';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lichen check: ${title}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{margin:0 0 8px} .pass{color:#2d7d46} .fail{color:#c0392b}
table{border-collapse:collapse;margin:8px 0 16px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} code,pre{font:12px/1.35 ui-monospace,monospace} pre{background:#f8f8f8;padding:8px;overflow:auto;max-height:320px}
.timeline{overflow-x:auto;border:1px solid #ddd;margin:8px 0 16px} .legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px;border-radius:2px}
.anomaly{border-left:4px solid #c0392b;padding:4px 10px;margin:10px 0;background:#fdf3f2}
</style></head><body>
<h1 class="${verdict.valid ? 'pass' : 'fail'}">lichen check: ${title}</h1>
${summaryTable(verdict)}
${anomalySection(verdict)}
<h2>Timeline</h2>
<div class="legend">${Object.entries({ ok: 'ok', fail: 'fail (no effect)', unknown: 'unknown outcome' })
    .map(([status, label]) => `<span><i class="swatch" style="background:${STATUS_COLOR[status]}"></i>${label}</span>`)
    .join('')}${Object.entries(FAULT_COLOR)
    .map(([kind, color]) => `<span><i class="swatch" style="background:${color};opacity:.35"></i>${kind}</span>`)
    .join('')}<span><i class="swatch" style="border:2px solid #c0392b"></i>in an anomaly</span></div>
<div class="timeline">${timeline(verdict, history, flagged, culprits)}</div>
${faultTable(verdict)}
${checksSection(verdict)}
</body></html>
`;
}

function escape(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`;
}

function summaryTable(verdict: Verdict): string {
  const rows: [string, string][] = [
    ['command', `<code>${escape(verdict.command || '(api)')}</code>`],
    ['linearizable (register)', escape(verdict.linearizable)],
    ['anomalies', String(verdict.anomalies.length)],
    ['seed', String(verdict.seed)],
    ['members', String(verdict.nodes)],
    ['workloads', escape(verdict.workloads.join(', '))],
    ['faults requested', escape(verdict.faultsRequested.join(', ') || 'none')],
    ['faults injected', String(verdict.faults.length)],
    ['clients', String(verdict.clients)],
    ['unsafe reads', String(verdict.unsafeReads)],
    ['run time', seconds(verdict.durationMs)],
    [
      'operations',
      `${verdict.counts.total} (ok ${verdict.counts.ok}, fail ${verdict.counts.fail}, unknown ${verdict.counts.unknown})` +
        Object.entries(verdict.counts.byWorkload)
          .map(([w, c]) => `<br>${escape(w)}: ${c!.total} (ok ${c!.ok}, fail ${c!.fail}, unknown ${c!.unknown})`)
          .join(''),
    ],
  ];
  if (verdict.errors.length > 0) rows.push(['harness errors', verdict.errors.map((e) => `<pre>${escape(e)}</pre>`).join('')]);
  return `<table>${rows.map(([k, v]) => `<tr><th>${escape(k)}</th><td>${v}</td></tr>`).join('')}</table>`;
}

function describeOp(op: HistoryOp): string {
  const end = op.status === 'pending' || op.status === 'unknown' ? '?' : seconds(op.completeMs);
  return `#${op.id} ${op.workload} ${op.f}(${op.key}${Object.keys(op.input).length ? ' ' + JSON.stringify(op.input) : ''}) ` +
    `by process ${op.process} (worker ${op.worker}) on ${op.node} [${seconds(op.invokeMs)} → ${end}] ${op.status}` +
    (op.output ? ` ${JSON.stringify(op.output)}` : '') + (op.error ? ` error: ${op.error}` : '');
}

function anomalySection(verdict: Verdict): string {
  if (verdict.anomalies.length === 0) return '<h2>Anomalies</h2><p>None.</p>';
  const items = verdict.anomalies.map((anomaly) => {
    const ops = anomaly.opIds.map((id) => verdict.anomalyOps[id]).filter((o): o is HistoryOp => o !== undefined);
    return `<div class="anomaly"><b>${escape(anomaly.kind)}</b> (${escape(anomaly.workload)}${anomaly.key ? `, ${escape(anomaly.key)}` : ''}): ${escape(anomaly.description)}
${ops.length ? `<pre>${ops.map((o) => escape(describeOp(o))).join('\n')}</pre>` : ''}
${anomaly.text ? `<details><summary>checker output</summary><pre>${escape(anomaly.text)}</pre></details>` : ''}</div>`;
  });
  return `<h2>Anomalies (${verdict.anomalies.length})</h2>${items.join('\n')}`;
}

function faultTable(verdict: Verdict): string {
  if (verdict.faults.length === 0) return '<h2>Faults</h2><p>None injected.</p>';
  return `<h2>Faults</h2><table><tr><th>kind</th><th>start</th><th>end</th><th>what</th></tr>${verdict.faults
    .map((f) => `<tr><td>${escape(f.kind)}</td><td>${seconds(f.startMs)}</td><td>${seconds(f.endMs)}</td><td>${escape(f.detail)}</td></tr>`)
    .join('')}</table>`;
}

function checksSection(verdict: Verdict): string {
  return `<h2>Checks</h2><table><tr><th>workload</th><th>result</th><th>details</th></tr>${verdict.checks
    .map((c) => `<tr><td>${escape(c.workload)}</td><td>${escape(c.result)}</td><td><pre>${escape(JSON.stringify(c.details, null, 1))}</pre></td></tr>`)
    .join('')}</table>`;
}

function timeline(verdict: Verdict, history: History, flagged: Set<number>, culprits: Set<number>): string {
  const endMs = Math.max(verdict.durationMs, ...history.faults.map((f) => f.endMs ?? 0), 1);
  const plotWidth = Math.min(WIDTH_MAX_PX, Math.max(WIDTH_MIN_PX, (endMs / 1000) * PX_PER_SECOND));
  const x = (ms: number): number => LABEL_WIDTH_PX + (ms / endMs) * plotWidth;
  const workers = [...new Map(history.ops.map((o) => [o.worker, o])).values()].sort((a, b) => a.worker - b.worker);
  const rowOf = new Map(workers.map((o, i) => [o.worker, i]));
  const height = AXIS_HEIGHT_PX + workers.length * ROW_HEIGHT_PX + 8;
  const parts: string[] = [];

  for (const fault of history.faults) {
    const x0 = x(fault.startMs);
    const x1 = x(fault.endMs ?? endMs);
    const color = FAULT_COLOR[fault.kind] ?? '#888';
    parts.push(`<rect x="${x0.toFixed(1)}" y="${AXIS_HEIGHT_PX - 14}" width="${Math.max(2, x1 - x0).toFixed(1)}" height="${height - AXIS_HEIGHT_PX + 14}" fill="${color}" opacity="0.18"><title>${escape(`${fault.kind}: ${fault.detail} [${seconds(fault.startMs)} → ${seconds(fault.endMs)}]`)}</title></rect>`);
    parts.push(`<text x="${(x0 + 2).toFixed(1)}" y="${AXIS_HEIGHT_PX - 4}" font-size="10" fill="${color}">${escape(fault.kind)}</text>`);
  }
  const stepMs = axisStep(endMs, plotWidth);
  for (let t = 0; t <= endMs; t += stepMs) {
    parts.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="12" y2="${height}" stroke="#eee"/>`);
    parts.push(`<text x="${(x(t) + 2).toFixed(1)}" y="10" font-size="10" fill="#666">${(t / 1000).toFixed(0)}s</text>`);
  }
  workers.forEach((o, i) => {
    const y = AXIS_HEIGHT_PX + i * ROW_HEIGHT_PX;
    parts.push(`<text x="4" y="${y + 10}" font-size="10" fill="#333">w${o.worker} ${escape(o.node)} ${escape(o.workload)}</text>`);
  });

  let drawn = 0;
  const normal: string[] = [];
  const highlighted: string[] = [];
  for (const op of history.ops) {
    const isFlagged = flagged.has(op.id);
    if (!isFlagged && drawn >= BARS_MAX) continue;
    if (!isFlagged) drawn++;
    const row = rowOf.get(op.worker)!;
    const y = AXIS_HEIGHT_PX + row * ROW_HEIGHT_PX + 2;
    const known = op.status === 'ok' || op.status === 'fail';
    const x0 = x(op.invokeMs);
    const x1 = x(known ? op.completeMs! : (op.completeMs ?? endMs));
    const stroke = isFlagged ? ` stroke="#c0392b" stroke-width="${culprits.has(op.id) ? 3 : 1.5}"` : '';
    const bar = `<rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(1.5, x1 - x0).toFixed(1)}" height="${ROW_HEIGHT_PX - 4}" fill="${STATUS_COLOR[op.status]}"${stroke}><title>${escape(describeOp(op))}</title></rect>`;
    (isFlagged ? highlighted : normal).push(bar);
  }
  const note = drawn >= BARS_MAX ? `<p>Only the first ${BARS_MAX} operations (and every operation in an anomaly) are drawn.</p>` : '';
  return `${note}<svg xmlns="http://www.w3.org/2000/svg" width="${(LABEL_WIDTH_PX + plotWidth + 10).toFixed(0)}" height="${height}">${parts.join('')}${normal.join('')}${highlighted.join('')}</svg>`;
}

/** A tick step (ms) that puts axis labels roughly 80 px apart. */
function axisStep(endMs: number, widthPx: number): number {
  const raw = (endMs / widthPx) * 80;
  for (const step of [1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000, 300_000]) if (step >= raw) return step;
  return 600_000;
}
