// A uPlot time-series chart as a Preact component: created once, fed new data on every render.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
  color: string;
  dash?: number[];
}

const PALETTE = ['#2f7d4f', '#3867d6', '#c0392b', '#8e44ad', '#d35400', '#16a085', '#7f8c8d', '#b7950b', '#2c3e50'];

export function color(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

export function Chart(props: { title: string; unit: string; times: number[]; series: ChartSeries[]; height?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const shape = props.series.map((s) => s.label).join('\u0000');

  useEffect(() => {
    const element = host.current!;
    const options: uPlot.Options = {
      width: Math.max(300, element.clientWidth),
      height: props.height ?? 180,
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { label: props.unit, size: 60 }],
      series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, dash: s.dash, spanGaps: false, points: { show: false } }))],
    };
    plot.current = new uPlot(options, [props.times, ...props.series.map((s) => s.values)] as uPlot.AlignedData, element);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(300, element.clientWidth), height: props.height ?? 180 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
    // The chart is rebuilt only when its series change; data changes go through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([props.times, ...props.series.map((s) => s.values)] as uPlot.AlignedData);
  });

  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <div ref={host} />
    </figure>
  );
}
