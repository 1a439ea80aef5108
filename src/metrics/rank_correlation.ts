/**
 * Spearman's rank correlation with a percentile-bootstrap confidence interval, host-side in
 * float64, for questions like "across these checkpoints, does a smaller ‖J‖_F go with a higher
 * PGD accuracy?" (the seed study's open item; Jiang et al. 2020, "Fantastic generalization
 * measures and where to find them", rank-correlate such measures with the generalization gap).
 *
 * - Ranks: tied values get the average of the ranks they span (1-based), as
 *   `scipy.stats.rankdata(method="average")`.
 * - ρ_s: the Pearson correlation of the two rank vectors, which is what
 *   `scipy.stats.spearmanr` returns with ties (the `1 − 6Σd²/(n(n²−1))` shortcut is exact only
 *   without ties). NaN when either variable is constant.
 * - Bootstrap (Efron & Tibshirani 1993, "An introduction to the bootstrap", ch. 13, the
 *   percentile interval): B resamples of the n (x, y) pairs with replacement, the Spearman ρ of
 *   each, and the (1 − level)/2 and (1 + level)/2 quantiles of those ρ (linear interpolation,
 *   numpy's default). Resamples where x or y is constant have no ρ and are left out; the
 *   result says how many were used. Indices come from seeded Philox uniforms
 *   (src/init/philox.ts), so the interval is a function of (data, B, level, seed).
 *
 * With a handful of checkpoints the interval is wide — it says how little n checkpoints can show.
 *
 * No Deno APIs: runs in browsers too.
 *
 * @example
 * ```ts
 * import { spearman, spearmanBootstrap } from "./rank_correlation.ts";
 * spearman([1, 2, 2, 3], [1, 3, 2, 4]); // 0.9487
 * const ci = spearmanBootstrap([1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5], { seed: 0 });
 * console.log(ci.rho, ci.lo, ci.hi);
 * ```
 *
 * @module
 */

import { randomUniform } from "../init/philox.ts";
import { quantile } from "./_common.ts";

/**
 * Average ranks (1-based; ties share the mean of the ranks they span).
 * @param v values (finite)
 * @returns (n,) ranks as float64
 */
export function averageRanks(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[a] - v[b]);
  const r = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && v[order[j]] === v[order[i]]) j++;
    // positions i..j-1 (0-based) hold one value: ranks i+1..j, mean (i + 1 + j) / 2
    const avg = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) r[order[k]] = avg;
    i = j;
  }
  return r;
}

function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return NaN;
  return Math.max(-1, Math.min(1, sab / Math.sqrt(saa * sbb)));
}

function checkPairs(op: string, x: ArrayLike<number>, y: ArrayLike<number>): void {
  if (x.length !== y.length) throw new Error(`${op}: x has ${x.length} values, y ${y.length}`);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) {
      throw new Error(`${op}: pair ${i} is not finite (${x[i]}, ${y[i]}); drop it first`);
    }
  }
}

/**
 * Spearman's rank correlation ρ_s (Pearson correlation of average ranks).
 * @param x (n,) finite values
 * @param y (n,) finite values
 * @returns ρ_s in [−1, 1]; NaN when n < 2 or x or y is constant
 */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkPairs("spearman", x, y);
  if (x.length < 2) return NaN;
  return pearson(averageRanks(x), averageRanks(y));
}

/** Options of {@linkcode spearmanBootstrap}. */
export interface BootstrapOptions {
  /** Bootstrap resamples B. Default 2000. */
  resamples?: number;
  /** Confidence level. Default 0.95. */
  level?: number;
  /** Seed of the resampling (Philox). Default 0. */
  seed?: number;
}

/** ρ_s and its percentile-bootstrap interval. */
export interface SpearmanCi {
  /** Pairs. */
  n: number;
  /** ρ_s of the data (NaN when undefined). */
  rho: number;
  /** Percentile interval (NaN when no resample had a ρ). */
  lo: number;
  hi: number;
  /** Resamples drawn, and those with a defined ρ (x and y not constant). */
  resamples: number;
  used: number;
  level: number;
  seed: number;
}

/**
 * ρ_s with a percentile-bootstrap confidence interval (resampling the pairs; see the module doc).
 * @param x (n,) finite values
 * @param y (n,) finite values
 * @param opts resamples B (default 2000), level (default 0.95), seed (default 0)
 * @returns ρ_s, the interval and how many resamples it rests on
 */
export function spearmanBootstrap(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  opts: BootstrapOptions = {},
): SpearmanCi {
  checkPairs("spearmanBootstrap", x, y);
  const b = opts.resamples ?? 2000, level = opts.level ?? 0.95, seed = opts.seed ?? 0;
  if (!(Number.isInteger(b) && b >= 1)) {
    throw new Error(`spearmanBootstrap: resamples must be a positive integer, got ${b}`);
  }
  if (!(level > 0 && level < 1)) {
    throw new Error(`spearmanBootstrap: level must be in (0, 1), got ${level}`);
  }
  const n = x.length;
  const rho = spearman(x, y);
  const rhos: number[] = [];
  if (n >= 2) {
    const u = randomUniform(b * n, { seed, stream: 0 });
    const xs = new Float64Array(n), ys = new Float64Array(n);
    for (let r = 0; r < b; r++) {
      for (let i = 0; i < n; i++) {
        const k = Math.min(n - 1, Math.floor(u[r * n + i] * n));
        xs[i] = x[k];
        ys[i] = y[k];
      }
      const v = pearson(averageRanks(xs), averageRanks(ys));
      if (!Number.isNaN(v)) rhos.push(v);
    }
  }
  rhos.sort((p, q) => p - q);
  return {
    n,
    rho,
    lo: quantile(rhos, (1 - level) / 2),
    hi: quantile(rhos, (1 + level) / 2),
    resamples: b,
    used: rhos.length,
    level,
    seed,
  };
}

/** One checkpoint's measured quantities and outcomes (NaN / absent: not measured). */
export interface PredictorPoint {
  name: string;
  /** Candidate predictors, e.g. `{ "‖J‖_F": 2.7, "ECE": 0.15 }`. */
  quantities: Record<string, number>;
  /** Outcomes, e.g. `{ "gap": 0.04, "PGD ε=0.1": 0.31 }`. */
  targets: Record<string, number>;
}

/** ρ_s between one quantity and one target over the checkpoints that have both. */
export interface PredictorCell extends SpearmanCi {
  quantity: string;
  target: string;
}

/** What {@linkcode predictorCorrelations} returns. */
export interface PredictorAnalysis {
  quantities: string[];
  targets: string[];
  /** One cell per (quantity, target), quantities outer. */
  cells: PredictorCell[];
  /** The checkpoints' values (for scatter plots). */
  points: PredictorPoint[];
  resamples: number;
  level: number;
  seed: number;
}

/**
 * Spearman ρ_s with a bootstrap interval for every (quantity, target) pair over a set of
 * checkpoints; pairs where either value is not finite are left out of that cell (its `n` says
 * how many remain). Every cell uses the same seed, so the cells of one table resample the
 * checkpoints the same way when their `n` agree.
 * @param points one entry per checkpoint
 * @param opts bootstrap resamples, level and seed
 * @returns the cells, quantities and targets in first-seen order
 */
export function predictorCorrelations(
  points: readonly PredictorPoint[],
  opts: BootstrapOptions = {},
): PredictorAnalysis {
  const quantities: string[] = [], targets: string[] = [];
  for (const p of points) {
    for (const k of Object.keys(p.quantities)) if (!quantities.includes(k)) quantities.push(k);
    for (const k of Object.keys(p.targets)) if (!targets.includes(k)) targets.push(k);
  }
  const cells: PredictorCell[] = [];
  for (const q of quantities) {
    for (const t of targets) {
      const xs: number[] = [], ys: number[] = [];
      for (const p of points) {
        const a = p.quantities[q], b = p.targets[t];
        if (Number.isFinite(a) && Number.isFinite(b)) {
          xs.push(a);
          ys.push(b);
        }
      }
      cells.push({ quantity: q, target: t, ...spearmanBootstrap(xs, ys, opts) });
    }
  }
  return {
    quantities,
    targets,
    cells,
    points: points.map((p) => ({ ...p })),
    resamples: opts.resamples ?? 2000,
    level: opts.level ?? 0.95,
    seed: opts.seed ?? 0,
  };
}
