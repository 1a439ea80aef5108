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

/**
 * Axis of a count (epochs, steps, samples): ticks at whole numbers only (Vega picks how many fit,
 * so 200 epochs get 0, 50, 100, …, not 200 ticks), labelled without decimals.
 */
const INTEGER_AXIS = { tickMinStep: 1, format: "d" };

/** One point of a line chart. */
export interface SeriesPoint {
  x: number;
  y: number;
  /** Curve name (colour). */
  series: string;
  /**
   * A second grouping drawn as the line's dash (markers' shape for a single x), e.g. train/val
   * or the attack, so that one colour stays one model.
   */
  dash?: string;
}

/** Dash patterns in the order the `dash` values first appear: solid, dashed, dotted, dash-dot. */
const DASHES = [[1, 0], [6, 3], [2, 2], [6, 2, 2, 2]];

/**
 * Curves, e.g. loss/accuracy per epoch or accuracy vs ε (robustness).
 * @param points the points (one curve per `series`)
 * @param opts titles, `yDomain`, `points` (draw markers), `logY` (log y axis; points with
 *   y <= 0 are left out), `integerX` (x counts something, e.g. epochs or steps: ticks only at
 *   whole numbers, as many as fit)
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
    integerX?: boolean;
  } = {},
): VegaLiteSpec {
  const scale = {
    ...(opts.yDomain ? { domain: opts.yDomain } : {}),
    ...(opts.logY ? { type: "log" } : {}),
  };
  const values = points.filter((p) =>
    Number.isFinite(p.x) && Number.isFinite(p.y) && (!opts.logY || p.y > 0)
  );
  // One x value (e.g. a one-epoch run) draws no line segment and collapses the x scale to a
  // point: draw large markers and widen the domain around it so the point is visible.
  const xs = new Set(values.map((p) => p.x));
  const single = xs.size === 1;
  const x0 = single ? [...xs][0] : 0;
  const dashes = [...new Set(values.flatMap((p) => p.dash === undefined ? [] : [p.dash]))];
  return {
    ...base(opts.title),
    data: { values },
    mark: single
      ? { type: "point", filled: true, size: 90, opacity: 1 }
      : { type: "line", point: opts.points ?? true },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: opts.xTitle ?? "x",
        ...(single
          ? {
            scale: { domain: [x0 - Math.max(1, Math.abs(x0)), x0 + Math.max(1, Math.abs(x0))] },
            axis: { values: [x0] },
          }
          : opts.integerX
          ? { axis: INTEGER_AXIS }
          : {}),
      },
      y: {
        field: "y",
        type: "quantitative",
        title: opts.yTitle ?? "y",
        ...(Object.keys(scale).length ? { scale } : {}),
      },
      color: { field: "series", type: "nominal", title: null, legend: { labelLimit: 260 } },
      ...(dashes.length
        ? single ? { shape: { field: "dash", type: "nominal", title: null } } : {
          strokeDash: {
            field: "dash",
            type: "nominal",
            title: null,
            scale: { domain: dashes, range: dashes.map((_, i) => DASHES[i % DASHES.length]) },
            // A line, not the point markers' circle, so the dash shows in the legend.
            legend: {
              symbolType: "stroke",
              symbolSize: 300,
              encode: {
                symbols: { update: { stroke: { value: "#555" }, strokeWidth: { value: 2 } } },
              },
            },
          },
        }
        : {}),
    },
  };
}

/**
 * Reliability diagram (Guo et al. 2017, fig. 1): accuracy per confidence bin as bars, the
 * diagonal of perfect calibration, each bin's mean confidence as a tick, and its sample count
 * above the bar. Empty bins have no accuracy and draw nothing (no bar, no count), so they are not
 * mistaken for bins at accuracy 0; a bin with samples and accuracy 0 still shows its count.
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
      {
        data: { values: values.map((v) => ({ ...v, mid: (v.lo + v.hi) / 2 })) },
        mark: { type: "text", baseline: "bottom", dy: -2, fontSize: 8, color: "#333" },
        encoding: {
          x: { field: "mid", ...x },
          y: { field: "accuracy", type: "quantitative" },
          text: { field: "count", type: "quantitative" },
        },
      },
    ],
  };
}

/** One checkpoint in a {@linkcode predictorScatterChart}. */
export interface PredictorScatterPoint {
  x: number;
  y: number;
  /** Checkpoint name (the tooltip, and the label when `label` is absent). */
  name: string;
  /** Colour group (the checkpoint, or a sweep's variant). */
  group: string;
  /** Short text drawn beside the point (a number keyed in a caption, say); default `name`. */
  label?: string;
}

/** A rectangle in pixels: left, top, right, bottom. */
type Box = [number, number, number, number];

const overlaps = (a: Box, b: Box): boolean =>
  a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

/**
 * The scale domain of one scatter axis, set here rather than by Vega so that label positions can
 * be computed in pixels: the data range padded by 8 % each side, or around a constant value a
 * range of ±10 % of it (±1 at 0) with a single tick at the value, labelled "v (constant)"
 * (Vega's own domain collapses to a point and labels it "0.000000").
 */
function scatterAxis(vs: number[], title: string): {
  domain: [number, number];
  encoding: Record<string, unknown>;
} {
  const lo = Math.min(...vs), hi = Math.max(...vs);
  if (hi > lo) {
    const pad = 0.08 * (hi - lo);
    const domain: [number, number] = [lo - pad, hi + pad];
    return { domain, encoding: { title, scale: { domain, nice: false, zero: false } } };
  }
  const v = vs.length ? lo : 0, pad = v === 0 ? 1 : 0.1 * Math.abs(v);
  const domain: [number, number] = [v - pad, v + pad];
  return {
    domain,
    encoding: {
      title,
      scale: { domain, nice: false, zero: false },
      // The note on the tick, not in the title: a long y title already fills the plot's height.
      axis: { values: [v], format: "~g", labelExpr: "datum.label + ' (constant)'" },
    },
  };
}

/**
 * One measured quantity against an outcome over checkpoints (what-predicts-robustness plots):
 * a point per checkpoint, coloured by group (a legend when groups hold several points), each with
 * a short label beside it. Points closer than 3 px share one label ("1,3"); a label goes right,
 * left, above or below its point, wherever it overlaps no other label, marker or the frame, and
 * is left out when no place is free (its name stays in the tooltip). A constant axis is drawn
 * around its value with one tick, labelled "v (constant)".
 * @param points the checkpoints (non-finite ones are left out)
 * @param opts title, axis titles, `width` and `height` of the plot area (default 240 × 190)
 */
export function predictorScatterChart(
  points: PredictorScatterPoint[],
  opts: { title?: string; xTitle?: string; yTitle?: string; width?: number; height?: number } = {},
): VegaLiteSpec {
  const w = opts.width ?? 240, h = opts.height ?? 190;
  const values = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .map((p) => ({ ...p, label: p.label ?? p.name }));
  const groups = [...new Set(values.map((p) => p.group))];
  const ax = scatterAxis(values.map((p) => p.x), opts.xTitle ?? "x");
  const ay = scatterAxis(values.map((p) => p.y), opts.yTitle ?? "y");
  const [x0, x1] = ax.domain, [y0, y1] = ay.domain;
  const px = (x: number) => (x - x0) / (x1 - x0) * w;
  const py = (y: number) => h - (y - y0) / (y1 - y0) * h;

  // Clusters of coinciding points (within 3 px), in the order of their first point.
  const clusters: { px: number; py: number; labels: string[] }[] = [];
  for (const p of values) {
    const [cx, cy] = [px(p.x), py(p.y)];
    const c = clusters.find((c) => Math.abs(c.px - cx) < 3 && Math.abs(c.py - cy) < 3);
    if (c) c.labels.push(p.label);
    else clusters.push({ px: cx, py: cy, labels: [p.label] });
  }
  // Greedy placement. Text width is estimated at 0.6 em per character (9 px sans-serif), a
  // marker (size 60 px²) as a 9 px square.
  const fontSize = 9, charW = 0.6 * fontSize, r = 4.5;
  const markers: Box[] = clusters.map((c) => [c.px - r, c.py - r, c.px + r, c.py + r]);
  const placed: Box[] = [];
  const labels: { lx: number; ly: number; text: string }[] = [];
  clusters.forEach((c, i) => {
    const text = c.labels.join(",");
    const tw = text.length * charW + 2, th = fontSize + 2;
    // Above and below: centred on the point, slid inside the frame near its edges.
    const cx = Math.min(Math.max(c.px - tw / 2, 0), w - tw);
    const candidates: Box[] = [
      [c.px + 6, c.py - th / 2, c.px + 6 + tw, c.py + th / 2],
      [c.px - 6 - tw, c.py - th / 2, c.px - 6, c.py + th / 2],
      [cx, c.py - 5 - th, cx + tw, c.py - 5],
      [cx, c.py + 5, cx + tw, c.py + 5 + th],
    ];
    const box = candidates.find((b) =>
      b[0] >= 0 && b[2] <= w && b[1] >= 0 && b[3] <= h &&
      !placed.some((q) => overlaps(b, q)) &&
      !markers.some((m, j) => j !== i && overlaps(b, m))
    );
    if (!box) return;
    placed.push(box);
    labels.push({
      lx: x0 + (box[0] + 1) / w * (x1 - x0),
      ly: y0 + (h - (box[1] + box[3]) / 2) / h * (y1 - y0),
      text,
    });
  });

  const enc = {
    x: { field: "x", type: "quantitative", ...ax.encoding },
    y: { field: "y", type: "quantitative", ...ay.encoding },
  };
  const layer: VegaLiteSpec[] = [{
    data: { values },
    mark: { type: "point", filled: true, size: 60, opacity: 0.85 },
    encoding: {
      ...enc,
      color: {
        field: "group",
        type: "nominal",
        title: null,
        scale: { domain: groups, range: classPalette(Math.max(1, groups.length)) },
        legend: groups.length <= 12 && groups.length < values.length ? {} : null,
      },
      tooltip: [{ field: "name" }, { field: "x" }, { field: "y" }],
    },
  }];
  if (labels.length) {
    layer.push({
      data: { values: labels },
      mark: { type: "text", align: "left", baseline: "middle", fontSize, color: "#333" },
      encoding: {
        x: { field: "lx", type: "quantitative" },
        y: { field: "ly", type: "quantitative" },
        text: { field: "text" },
      },
    });
  }
  return { ...base(opts.title, w, h), layer };
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
        axis: INTEGER_AXIS,
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
