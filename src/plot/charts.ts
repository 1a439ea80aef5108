/**
 * Charts as SVG: Vega-Lite specifications compiled by `vega-lite` and rendered headless by
 * `vega` (`View.toSVG()` needs no canvas), so the pictures come from a maintained grammar of
 * graphics rather than hand-drawn marks. Each builder returns a Vega-Lite spec (plain JSON, also
 * usable with vega-embed in a page); {@linkcode renderSvg} turns any spec into SVG text.
 *
 * @module
 */

// Full npm: specifiers, not import-map names: a URL import of this module has no import map.
// deno-lint-ignore no-import-prefix
import * as vega from "npm:vega@6.4.0";
// deno-lint-ignore no-import-prefix
import * as vl from "npm:vega-lite@6.5.0";
import { classPalette } from "./colors.ts";

/** A Vega-Lite specification (plain JSON). */
export type VegaLiteSpec = Record<string, unknown>;

/**
 * Renders a Vega-Lite spec to SVG text (headless, no canvas).
 * @param spec Vega-Lite JSON
 * @returns an `<svg>` document
 */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const base = (title: string | undefined, w = 320, h = 220): VegaLiteSpec => ({
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  ...(title ? { title } : {}),
  width: w,
  height: h,
  background: "white",
});

/** One point of a line chart. */
export interface SeriesPoint {
  x: number;
  y: number;
  /** Curve name (colour). */
  series: string;
}

/**
 * Curves, e.g. loss/accuracy per epoch or accuracy vs ε (robustness).
 * @param points the points (one curve per `series`)
 * @param opts titles, `yDomain`, `points` (draw markers), `logY` (log y axis; points with
 *   y <= 0 are left out)
 */
export function lineChart(
  points: SeriesPoint[],
  opts: {
    title?: string;
    xTitle?: string;
    yTitle?: string;
    yDomain?: [number, number];
    points?: boolean;
    logY?: boolean;
  } = {},
): VegaLiteSpec {
  const scale = {
    ...(opts.yDomain ? { domain: opts.yDomain } : {}),
    ...(opts.logY ? { type: "log" } : {}),
  };
  return {
    ...base(opts.title),
    data: {
      values: points.filter((p) =>
        Number.isFinite(p.x) && Number.isFinite(p.y) && (!opts.logY || p.y > 0)
      ),
    },
    mark: { type: "line", point: opts.points ?? true },
    encoding: {
      x: { field: "x", type: "quantitative", title: opts.xTitle ?? "x" },
      y: {
        field: "y",
        type: "quantitative",
        title: opts.yTitle ?? "y",
        ...(Object.keys(scale).length ? { scale } : {}),
      },
      color: { field: "series", type: "nominal", title: null },
    },
  };
}

/**
 * Reliability diagram (Guo et al. 2017, fig. 1): accuracy per confidence bin as bars, the
 * diagonal of perfect calibration, and each bin's mean confidence as a tick.
 * @param bins reliability bins (src/metrics `calibration().bins`)
 * @param opts title
 */
export function reliabilityChart(
  bins: { lo: number; hi: number; count: number; accuracy: number; confidence: number }[],
  opts: { title?: string } = {},
): VegaLiteSpec {
  const values = bins.filter((b) => b.count > 0).map((b) => ({
    lo: b.lo,
    hi: b.hi,
    accuracy: b.accuracy,
    confidence: b.confidence,
    count: b.count,
    zero: 0,
  }));
  const x = { type: "quantitative", scale: { domain: [0, 1] }, title: "confidence" };
  return {
    ...base(opts.title, 260, 260),
    layer: [
      {
        data: { values },
        mark: { type: "rect", color: "#4c78a8", stroke: "white" },
        encoding: {
          x: { field: "lo", ...x },
          x2: { field: "hi" },
          y: { field: "zero", type: "quantitative", scale: { domain: [0, 1] }, title: "accuracy" },
          y2: { field: "accuracy" },
        },
      },
      {
        data: { values },
        mark: { type: "tick", color: "#e45756", thickness: 2 },
        encoding: {
          x: { field: "confidence", ...x },
          y: {
            field: "confidence",
            type: "quantitative",
            scale: { domain: [0, 1] },
            title: "accuracy",
          },
        },
      },
      {
        data: { values: [{ a: 0 }, { a: 1 }] },
        mark: { type: "line", color: "#888", strokeDash: [4, 4] },
        encoding: { x: { field: "a", ...x }, y: { field: "a", type: "quantitative" } },
      },
    ],
  };
}

/**
 * A histogram from precomputed bins.
 * @param h `edges` (bins + 1) and `counts` (bins)
 * @param opts titles, `logY`
 */
export function histogramChart(
  h: { edges: number[]; counts: number[] },
  opts: { title?: string; xTitle?: string; logY?: boolean } = {},
): VegaLiteSpec {
  const values = h.counts.map((c, i) => ({ lo: h.edges[i], hi: h.edges[i + 1], count: c }));
  return {
    ...base(opts.title, 300, 180),
    data: { values },
    mark: { type: "rect", color: "#4c78a8", stroke: "white", strokeWidth: 0.5 },
    encoding: {
      x: { field: "lo", type: "quantitative", title: opts.xTitle ?? "value" },
      x2: { field: "hi" },
      y: {
        field: "count",
        type: "quantitative",
        title: opts.logY ? "count (symlog scale)" : "count",
        ...(opts.logY ? { scale: { type: "symlog" } } : {}),
      },
      tooltip: [{ field: "lo", title: "from" }, { field: "hi", title: "to" }, { field: "count" }],
    },
  };
}

/**
 * A scatter plot coloured by class with the categorical palette of the images (so a PCA
 * scatter and a boundary plane agree on colours).
 * @param points `x`, `y`, `label` (class index)
 * @param opts title, axis titles, `classNames`, `classes` (palette size)
 */
export function scatterChart(
  points: { x: number; y: number; label: number }[],
  opts: {
    title?: string;
    xTitle?: string;
    yTitle?: string;
    classNames?: readonly string[];
    classes?: number;
  } = {},
): VegaLiteSpec {
  const k = opts.classes ?? Math.max(1, ...points.map((p) => p.label + 1));
  const names = Array.from({ length: k }, (_, i) => opts.classNames?.[i] ?? String(i));
  return {
    ...base(opts.title, 260, 220),
    data: { values: points.map((p) => ({ x: p.x, y: p.y, class: names[p.label] ?? "?" })) },
    mark: { type: "circle", size: 14, opacity: 0.7 },
    encoding: {
      x: { field: "x", type: "quantitative", title: opts.xTitle ?? "PC1" },
      y: { field: "y", type: "quantitative", title: opts.yTitle ?? "PC2" },
      color: {
        field: "class",
        type: "nominal",
        scale: { domain: names, range: classPalette(k) },
        legend: k <= 20 ? { title: "class" } : null,
      },
    },
  };
}

/**
 * A bar chart of named values, grouped by series (e.g. accuracy per model).
 * @param rows `category`, `value`, `series`
 * @param opts titles
 */
export function barChart(
  rows: { category: string; value: number; series: string }[],
  opts: { title?: string; yTitle?: string } = {},
): VegaLiteSpec {
  return {
    ...base(opts.title, 320, 200),
    data: { values: rows },
    mark: "bar",
    encoding: {
      x: { field: "category", type: "nominal", title: null },
      xOffset: { field: "series" },
      y: { field: "value", type: "quantitative", title: opts.yTitle ?? "value" },
      color: { field: "series", type: "nominal", title: null },
    },
  };
}
