/**
 * SVG charts: vega-lite specs compiled to vega and rendered headless in Node (renderer "none",
 * View.toSVG), no browser. vega and vega-lite are ESM-only, hence the dynamic imports.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

type Spec = Record<string, unknown>;

interface VegaView {
  toSVG(): Promise<string>;
  finalize(): void;
}
interface VegaModule {
  parse(spec: unknown): unknown;
  View: new (runtime: unknown, options: { renderer: string }) => VegaView;
}

export async function renderSvg(spec: Spec): Promise<string> {
  // ESM-only packages; a computed specifier keeps TypeScript's commonjs resolution out of it
  const names = { vega: 'vega', vegaLite: 'vega-lite' };
  const vega = (await import(names.vega)) as VegaModule;
  const vl = (await import(names.vegaLite)) as { compile: (spec: unknown) => { spec: unknown } };
  const compiled = vl.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', background: 'white', ...spec }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

export async function writeChart(dir: string, name: string, spec: Spec): Promise<string> {
  const svg = await renderSvg(spec);
  const file = path.join(dir, `${name}.svg`);
  writeFileSync(file, svg);
  return file;
}

/** Bars with min–max whiskers: rows {group, label, median, min, max}. */
export function barsWithSpread(title: string, yTitle: string, rows: Array<{ label: string; group: string; median: number; min: number; max: number }>): Spec {
  return {
    title,
    width: 520,
    height: 260,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'label', type: 'nominal', sort: null, title: null, axis: { labelAngle: -30, labelLimit: 220 } },
          y: { field: 'median', type: 'quantitative', title: yTitle },
          color: { field: 'group', type: 'nominal', title: null },
        },
      },
      {
        mark: { type: 'rule', color: 'black' },
        encoding: { x: { field: 'label', type: 'nominal', sort: null }, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } },
      },
      {
        mark: { type: 'text', dy: -8, fontSize: 10 },
        encoding: {
          x: { field: 'label', type: 'nominal', sort: null },
          y: { field: 'max', type: 'quantitative' },
          text: { field: 'median', type: 'quantitative', format: ',.0f' },
        },
      },
    ],
  };
}

/** Lines of y against x per series, with optional min–max band. */
export function lines(title: string, xTitle: string, yTitle: string, rows: Array<{ series: string; x: number; y: number; min?: number; max?: number }>, opts: { logY?: boolean } = {}): Spec {
  const band = rows.some((r) => r.min !== undefined);
  const layers: Spec[] = [
    {
      mark: { type: 'line', point: true, tooltip: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: xTitle },
        y: { field: 'y', type: 'quantitative', title: yTitle, scale: opts.logY ? { type: 'log' } : {} },
        color: { field: 'series', type: 'nominal', title: null },
      },
    },
  ];
  if (band) {
    layers.push({
      mark: { type: 'errorbar', ticks: true },
      encoding: {
        x: { field: 'x', type: 'quantitative' },
        y: { field: 'min', type: 'quantitative', title: yTitle },
        y2: { field: 'max' },
        color: { field: 'series', type: 'nominal' },
      },
    });
  }
  return { title, width: 520, height: 260, data: { values: rows }, layer: layers };
}

/** A histogram from pre-binned counts, one colour per series. */
export function histogram(title: string, xTitle: string, rows: Array<{ series: string; bin: number; binEnd: number; count: number }>): Spec {
  return {
    title,
    width: 560,
    height: 260,
    data: { values: rows },
    mark: { type: 'bar', opacity: 0.7, tooltip: true },
    encoding: {
      x: { field: 'bin', type: 'quantitative', title: xTitle, bin: { binned: true } },
      x2: { field: 'binEnd' },
      y: { field: 'count', type: 'quantitative', title: 'timers', stack: null },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
}

/** Grouped bars: one group per category, one bar per series. */
export function groupedBars(title: string, yTitle: string, rows: Array<{ category: string; series: string; value: number }>, opts: { rule?: number; logY?: boolean } = {}): Spec {
  const layers: Spec[] = [
    {
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: { field: 'category', type: 'nominal', title: null, sort: null, axis: { labelAngle: -20, labelLimit: 200 } },
        xOffset: { field: 'series', sort: null },
        y: { field: 'value', type: 'quantitative', title: yTitle, scale: opts.logY ? { type: 'symlog' } : {} },
        color: { field: 'series', type: 'nominal', title: null, sort: null },
      },
    },
  ];
  if (opts.rule !== undefined) {
    layers.push({ data: { values: [{ y: opts.rule }] }, mark: { type: 'rule', color: 'red', strokeDash: [4, 4] }, encoding: { y: { field: 'y', type: 'quantitative' } } });
  }
  return { title, width: 560, height: 260, data: { values: rows }, layer: layers };
}
