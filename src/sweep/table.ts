/**
 * The results table of a sweep: runs grouped by configuration without the seed (one row per
 * variant and non-seed grid point), every metric as mean ± 95 % CI over the seeds
 * ({@linkcode meanCi}), as CSV and Markdown; missing and failed runs are listed below the table,
 * never dropped silently.
 *
 * No Deno APIs: runs in browsers too.
 *
 * @module
 */

import { type MeanCi, meanCi } from "./stats.ts";
import type { Reference } from "./grid.ts";

/** What one finished run contributes to the table. */
export interface RunMetrics {
  id: string;
  variant: string;
  axes: Record<string, string | number | boolean>;
  /** Scalar metrics by key (see {@linkcode METRIC_LABELS}; attacks as `fgsm@0.1`). */
  metrics: Record<string, number>;
}

/** A run that has no result. */
export interface RunProblem {
  id: string;
  variant: string;
  axes: Record<string, string | number | boolean>;
  /** `missing` (never ran), `running` (claimed, alive), `failed` (its last error kept). */
  status: "missing" | "running" | "failed";
  error?: string;
  attempts?: number;
}

/** One row: a configuration and its metrics over seeds. */
export interface TableRow {
  /** Variant plus non-seed axes, e.g. `l2` or `l2 lr=0.1`. */
  label: string;
  variant: string;
  axes: Record<string, string | number | boolean>;
  /** Runs with a result, and runs planned. */
  done: number;
  planned: number;
  cells: Record<string, MeanCi>;
}

/** A preset's table. */
export interface SweepTable {
  preset: string;
  budget: string;
  /** Metric keys in column order. */
  columns: string[];
  rows: TableRow[];
  problems: RunProblem[];
  reference?: Reference[];
}

/** Column titles of the known metrics (attack columns are made from their keys). */
export const METRIC_LABELS: Record<string, string> = {
  testAccuracy: "test acc (%)",
  trainAccuracy: "train acc (%)",
  generalizationGap: "gap (pp)",
  testLoss: "test loss",
  ece: "ECE",
  jacobianF: "‖J‖_F",
  tvIso: "TV iso",
  tvAniso: "TV aniso",
};

/** Metrics shown as percentages (fractions in the JSON). */
function isPercent(key: string): boolean {
  return key === "testAccuracy" || key === "trainAccuracy" || key === "generalizationGap" ||
    key.includes("@");
}

/** The title of a metric column. */
export function metricLabel(key: string): string {
  if (METRIC_LABELS[key]) return METRIC_LABELS[key];
  const at = key.indexOf("@");
  return at < 0 ? key : `${key.slice(0, at).toUpperCase()} ε=${key.slice(at + 1)} (%)`;
}

const DEFAULT_ORDER = [
  "testAccuracy",
  "generalizationGap",
  "ece",
  "jacobianF",
  "tvIso",
];

/** Label of a group: the variant and its non-seed axes. */
function groupLabel(variant: string, axes: Record<string, unknown>): string {
  const rest = Object.entries(axes).filter(([k]) => k !== "seed");
  return [variant, ...rest.map(([k, v]) => `${k}=${v}`)].join(" ");
}

/**
 * Groups runs by configuration without the seed and summarises each metric.
 * @param opts preset and budget names, the planned runs (for order and counts), the finished
 *   runs' metrics, the runs without a result, published references
 * @returns the table
 */
export function buildTable(opts: {
  preset: string;
  budget: string;
  planned: { variant: string; axes: Record<string, string | number | boolean> }[];
  results: RunMetrics[];
  problems: RunProblem[];
  reference?: Reference[];
  level?: number;
}): SweepTable {
  const groups = new Map<
    string,
    {
      variant: string;
      axes: Record<string, string | number | boolean>;
      planned: number;
      runs: RunMetrics[];
    }
  >();
  for (const p of opts.planned) {
    const key = groupLabel(p.variant, p.axes);
    const g = groups.get(key);
    if (g) g.planned++;
    else {
      const axes = Object.fromEntries(Object.entries(p.axes).filter(([k]) => k !== "seed"));
      groups.set(key, { variant: p.variant, axes, planned: 1, runs: [] });
    }
  }
  for (const r of opts.results) {
    const key = groupLabel(r.variant, r.axes);
    let g = groups.get(key);
    if (!g) {
      g = { variant: r.variant, axes: {}, planned: 0, runs: [] };
      groups.set(key, g);
    }
    g.runs.push(r);
  }
  const keys = new Set<string>();
  for (const r of opts.results) for (const k of Object.keys(r.metrics)) keys.add(k);
  const attackKeys = [...keys].filter((k) => k.includes("@")).sort((a, b) => {
    const [na, ea] = a.split("@"), [nb, eb] = b.split("@");
    return na === nb ? Number(ea) - Number(eb) : na.localeCompare(nb);
  });
  const columns = [...DEFAULT_ORDER.filter((k) => keys.has(k)), ...attackKeys];
  const rows: TableRow[] = [];
  for (const [label, g] of groups) {
    const cells: Record<string, MeanCi> = {};
    for (const c of columns) {
      const vals = g.runs.map((r) => r.metrics[c]).filter((v) =>
        typeof v === "number" && Number.isFinite(v)
      );
      cells[c] = meanCi(vals, opts.level ?? 0.95);
    }
    rows.push({
      label,
      variant: g.variant,
      axes: g.axes,
      done: g.runs.length,
      planned: g.planned,
      cells,
    });
  }
  return {
    preset: opts.preset,
    budget: opts.budget,
    columns,
    rows,
    problems: opts.problems,
    reference: opts.reference,
  };
}

/**
 * A cell as text: `98.70 ± 0.11` (percentages in points, others to 4 significant digits), the
 * mean alone when there is one seed, `–` when there is none.
 * @param key the metric
 * @param c its summary
 */
export function formatCell(key: string, c: MeanCi): string {
  if (!c.n) return "–";
  if (isPercent(key)) {
    return c.n < 2
      ? (100 * c.mean).toFixed(2)
      : `${(100 * c.mean).toFixed(2)} ± ${(100 * c.half).toFixed(2)}`;
  }
  const tiny = (v: number) => v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5);
  const fmt = (v: number, digits: number) =>
    tiny(v) ? v.toExponential(digits - 1) : v.toPrecision(digits);
  if (c.n < 2) return fmt(c.mean, 4);
  const half = fmt(c.half, 2);
  return `${fmt(c.mean, 4)} ± ${half}`;
}

function referenceColumns(t: SweepTable): { title: string; get(variant: string): string }[] {
  return (t.reference ?? []).map((r) => ({
    title: `${metricLabel(r.metric)}, ${r.source}`,
    get: (v: string) => r.values[v] ?? "–",
  }));
}

/** The table as Markdown, then the runs without a result. */
export function tableMarkdown(t: SweepTable): string {
  const refs = referenceColumns(t);
  const header = ["variant", "seeds", ...t.columns.map(metricLabel), ...refs.map((r) => r.title)];
  const rows = t.rows.map((r) => [
    r.label,
    `${r.done}/${r.planned}`,
    ...t.columns.map((c) => formatCell(c, r.cells[c])),
    ...refs.map((ref) => ref.get(r.variant)),
  ]);
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => esc(c).padEnd(widths[i])).join(" | ")} |`;
  const out = [
    line(header),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...rows.map(line),
  ];
  out.push("", problemsText(t));
  return out.join("\n");
}

/** "All N runs finished." or the list of runs without a result and why. */
export function problemsText(t: SweepTable): string {
  if (!t.problems.length) return "Every planned run has a result.";
  const lines = [`${t.problems.length} run(s) without a result:`];
  for (const p of t.problems) {
    lines.push(
      `- ${p.id}: ${p.status}${p.attempts ? ` after ${p.attempts} attempt(s)` : ""}${
        p.error ? ` — ${p.error.split("\n")[0]}` : ""
      }`,
    );
  }
  return lines.join("\n");
}

function csvCell(v: string | number): string {
  const s = typeof v === "number" ? (Number.isFinite(v) ? String(v) : "") : v;
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * The table as CSV: one line per row, for each metric its mean, 95 % CI half-width, sample
 * standard deviation and number of seeds (empty where undefined), raw fractions (not %).
 */
export function tableCsv(t: SweepTable): string {
  const axisKeys = [...new Set(t.rows.flatMap((r) => Object.keys(r.axes)))];
  const header = ["preset", "budget", "variant", ...axisKeys, "done", "planned"];
  for (const c of t.columns) header.push(`${c}_mean`, `${c}_ci95`, `${c}_std`, `${c}_n`);
  const lines = [header.map(csvCell).join(",")];
  for (const r of t.rows) {
    const cells: (string | number)[] = [
      t.preset,
      t.budget,
      r.variant,
      ...axisKeys.map((k) => String(r.axes[k] ?? "")),
      r.done,
      r.planned,
    ];
    for (const c of t.columns) {
      const m = r.cells[c];
      cells.push(m.mean, m.half, m.std, m.n);
    }
    lines.push(cells.map(csvCell).join(","));
  }
  return lines.join("\n") + "\n";
}

/** The cells of an HTML table block (for src/plot's htmlPage). */
export function tableCells(t: SweepTable): { header: string[]; rows: string[][] } {
  const refs = referenceColumns(t);
  return {
    header: ["variant", "seeds", ...t.columns.map(metricLabel), ...refs.map((r) => r.title)],
    rows: t.rows.map((r) => [
      r.label,
      `${r.done}/${r.planned}`,
      ...t.columns.map((c) => formatCell(c, r.cells[c])),
      ...refs.map((ref) => ref.get(r.variant)),
    ]),
  };
}
