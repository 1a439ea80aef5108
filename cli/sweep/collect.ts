/**
 * `cli.ts sweep collect DIR`: one table per sweep folder found in DIR (its `plan.json`), mean ±
 * 95 % CI over seeds, written as `table.csv`, `table.md` and `table.html` (src/plot's page and
 * Vega-Lite charts) beside the runs; runs without a result are listed with their state and
 * last error.
 *
 * @module
 */

import { exists, FileError, writeFileAtomic } from "../fs.ts";
import type { Reference } from "../../src/sweep/grid.ts";
import {
  buildTable,
  problemsText,
  type RunMetrics,
  type RunProblem,
  type SweepTable,
  tableCells,
  tableCsv,
  tableMarkdown,
} from "../../src/sweep/table.ts";
import { meanCi } from "../../src/sweep/stats.ts";
import {
  type Block,
  htmlPage,
  lineChart,
  predictorBlocks,
  renderSvg,
  type SeriesPoint,
} from "../../src/plot/mod.ts";
import { predictorCorrelations, type PredictorPoint } from "../../src/metrics/mod.ts";
import { GAP_TARGET, pgdTarget } from "../../src/metrics/report.ts";
import { readJson, runDir, runState, type StateOptions } from "./store.ts";
import type { RunResult } from "./run.ts";

/** What plan.json holds. */
export interface Plan {
  preset: string;
  budget: string;
  file: string;
  description?: string;
  grid: string[];
  planHash: string;
  reference?: Reference[];
  runs: {
    id: string;
    index: number;
    variant: string;
    axes: Record<string, string | number | boolean>;
  }[];
}

/** Sweep folders in `dir`: itself if it holds plan.json, else its subfolders that do. */
export async function findSweeps(dir: string): Promise<string[]> {
  if (await exists(`${dir}/plan.json`)) return [dir];
  const found: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && await exists(`${dir}/${e.name}/plan.json`)) {
        found.push(`${dir}/${e.name}`);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new FileError(`No such sweep folder: ${dir}`);
    throw e;
  }
  return found.sort();
}

/**
 * The table of one sweep folder, and the finished runs' results.
 * @param dir the sweep folder (with plan.json)
 * @param opts staleness threshold for claims
 */
export async function collectSweep(
  dir: string,
  opts: StateOptions = {},
): Promise<{ plan: Plan; table: SweepTable; results: RunResult[] }> {
  const plan = await readJson<Plan>(`${dir}/plan.json`);
  if (!plan) throw new FileError(`No plan.json in ${dir}`);
  const results: RunResult[] = [];
  const problems: RunProblem[] = [];
  for (const r of plan.runs) {
    const rd = runDir(dir, r.id);
    const st = await runState(rd, opts);
    if (st.state === "done") {
      const res = await readJson<RunResult>(`${rd}/metrics.json`);
      if (res) results.push(res);
      continue;
    }
    problems.push({
      id: r.id,
      variant: r.variant,
      axes: r.axes,
      status: st.state === "missing" ? "missing" : st.state === "running" ? "running" : "failed",
      error: st.state === "failed"
        ? st.error
        : st.state === "stale"
        ? `killed or lost (${st.why}); re-run the sweep to retry`
        : undefined,
      attempts: st.state === "missing" ? undefined : st.attempt,
    });
  }
  const table = buildTable({
    preset: plan.preset,
    budget: plan.budget,
    planned: plan.runs,
    results: results.map((r): RunMetrics => ({
      id: r.id,
      variant: r.variant,
      axes: r.axes,
      metrics: r.metrics,
    })),
    problems,
    reference: plan.reference,
  });
  return { plan, table, results };
}

/** The HTML page: the table, the runs without a result, robustness curves (mean over seeds). */
export async function sweepHtml(
  plan: Plan,
  table: SweepTable,
  results: RunResult[],
): Promise<string> {
  const cells = tableCells(table);
  const blocks: Block[] = [];
  if (plan.description) blocks.push({ kind: "text", text: plan.description });
  blocks.push({
    kind: "table",
    header: cells.header,
    rows: cells.rows,
    caption:
      `mean ± 95 % CI over seeds (Student t, n − 1 degrees of freedom); ${plan.runs.length} ` +
      `runs planned, ${results.length} with a result`,
  }, { kind: "text", text: problemsText(table) });
  // Accuracy vs ε per attack: mean over the seeds of each row's variant.
  const byAttack = new Map<string, SeriesPoint[]>();
  for (const row of table.rows) {
    const rs = results.filter((r) =>
      r.variant === row.variant &&
      Object.entries(row.axes).every(([k, v]) => r.axes[k] === v) && r.curves
    );
    const attacks = new Set(rs.flatMap((r) => Object.keys(r.curves!.accuracy)));
    for (const a of attacks) {
      const eps = rs[0].curves!.eps;
      eps.forEach((e, i) => {
        const vals = rs.map((r) => r.curves!.accuracy[a]?.[i]).filter((v) => Number.isFinite(v));
        if (!vals.length) return;
        const list = byAttack.get(a) ?? [];
        list.push({ x: e, y: meanCi(vals).mean, series: row.label });
        byAttack.set(a, list);
      });
    }
  }
  if (byAttack.size) {
    const charts: Block[] = [];
    for (const [a, pts] of byAttack) {
      charts.push({
        kind: "svg",
        svg: await renderSvg(lineChart(pts, {
          title: `${a.toUpperCase()}: accuracy under attack (mean over seeds)`,
          xTitle: "ε (pixel units)",
          yTitle: "accuracy",
          yDomain: [0, 1],
        })),
      });
    }
    blocks.push({ kind: "heading", text: "Robustness" }, { kind: "row", blocks: charts });
  }
  blocks.push(...await sweepPredictorBlocks(table, results));
  return htmlPage(`regula sweep: ${plan.preset} (${plan.budget})`, blocks);
}

/** Run metrics keys of the candidate predictors and their names in the report's table. */
const SWEEP_PREDICTORS: Record<string, string> = {
  testAccuracy: "clean accuracy",
  testLoss: "test loss",
  ece: "ECE",
  mce: "MCE",
  jacobianF: "‖J‖_F",
  tvIso: "TV iso",
  tvAniso: "TV aniso",
  margin: "mean logit margin",
  weightNorm: "‖W‖_F (all weights)",
  logSpectralProduct: "Σ log σ_max(W)",
};

/**
 * What predicts robustness over the sweep's runs (every seed a point; 3 or more runs): Spearman ρ
 * with a bootstrap CI (B = 2000, 95 %, seed 0) of each measured quantity against the gap and PGD
 * accuracy at each ε, the scatters at the middle ε.
 */
async function sweepPredictorBlocks(table: SweepTable, results: RunResult[]): Promise<Block[]> {
  if (results.length < 3) return [];
  const eps = [...new Set(results.flatMap((r) => r.curves?.accuracy.pgd ? r.curves.eps : []))]
    .sort((a, b) => a - b);
  const labelOf = new Map<string, string>();
  const points: PredictorPoint[] = results.map((r) => {
    const row = table.rows.find((t) =>
      t.variant === r.variant &&
      Object.entries(t.axes).every(([k, v]) => k === "seed" || r.axes[k] === v)
    );
    labelOf.set(r.id, row?.label ?? r.variant);
    // Only what the run measured: absent keys are left out of the cells (and of the table when
    // no run has them).
    const quantities: Record<string, number> = {}, targets: Record<string, number> = {};
    for (const [k, label] of Object.entries(SWEEP_PREDICTORS)) {
      if (k in r.metrics) quantities[label] = r.metrics[k];
    }
    if ("generalizationGap" in r.metrics) targets[GAP_TARGET] = r.metrics.generalizationGap;
    for (const e of eps) {
      if (`pgd@${e}` in r.metrics) targets[pgdTarget(e)] = r.metrics[`pgd@${e}`];
    }
    return { name: r.id, quantities, targets };
  });
  const a = predictorCorrelations(points, { resamples: 2000, level: 0.95, seed: 0 });
  if (!a.targets.length || !a.quantities.length) return [];
  const mid = eps[Math.floor((eps.length - 1) / 2)];
  return await predictorBlocks(a, {
    scatterTarget: mid === undefined ? GAP_TARGET : pgdTarget(mid),
    groupOf: (id) => labelOf.get(id) ?? id,
    what: "runs",
  });
}

/**
 * Writes table.csv, table.md and table.html into a sweep folder.
 * @returns the Markdown text
 */
export async function writeTables(dir: string, opts: StateOptions = {}): Promise<{
  markdown: string;
  table: SweepTable;
  plan: Plan;
}> {
  const { plan, table, results } = await collectSweep(dir, opts);
  const enc = new TextEncoder();
  const markdown = tableMarkdown(table);
  const title = `## ${plan.preset} (${plan.budget})\n\n`;
  await writeFileAtomic(`${dir}/table.csv`, enc.encode(tableCsv(table)), { force: true });
  await writeFileAtomic(`${dir}/table.md`, enc.encode(title + markdown + "\n"), { force: true });
  await writeFileAtomic(`${dir}/table.html`, enc.encode(await sweepHtml(plan, table, results)), {
    force: true,
  });
  return { markdown, table, plan };
}
