/**
 * Exact t-SNE (van der Maaten & Hinton 2008, "Visualizing Data using t-SNE", JMLR 9), float64 on
 * the host, for a few hundred to ~1000 points (every step is O(N²)):
 *
 * - affinities (sec. 2 and 3.1): `p_{j|i} ∝ exp(−β_i ‖x_i − x_j‖²)`, each `β_i = 1/(2σ_i²)` found
 *   by binary search so that the row's entropy `H(P_i) = log Perp` (in nats: eq. 4's
 *   `2^{H}` with H in bits is the same perplexity), then the joint `p_ij = (p_{j|i} + p_{i|j}) /
 *   2N`;
 * - low-dimensional similarities with one degree of freedom (eq. 4): `q_ij = (1 + ‖y_i −
 *   y_j‖²)^{-1} / Σ_{k≠l} (1 + ‖y_k − y_l‖²)^{-1}`;
 * - the cost `KL(P‖Q) = Σ p_ij log(p_ij / q_ij)` and its gradient (eq. 5) `∂C/∂y_i = 4 Σ_j
 *   (p_ij − q_ij)(y_i − y_j)(1 + ‖y_i − y_j‖²)^{-1}`;
 * - gradient descent with momentum (eq. 7 and sec. 3.4: α = 0.5 for the first 250 iterations,
 *   0.8 after, η = 100, 1000 iterations), the learning rate adapted per coordinate by Jacobs'
 *   (1988) scheme as the paper does (a gain grows by 0.2 while the step keeps its direction,
 *   shrinks by ×0.8 when it turns, floored at 0.01), and early exaggeration (sec. 3.4: all
 *   p_ij ×4 for the first 50 iterations). The start is `N(0, 10⁻⁴ I)`, seeded.
 *
 * @example
 * ```ts
 * import { tsne } from "./tsne.ts";
 * const x = Float64Array.from({ length: 40 * 3 }, (_, i) => Math.sin(i * i)); // (40, 3)
 * const { embedding, kl } = tsne(x, 40, 3, { perplexity: 10, seed: 0 }); // (40, 2)
 * console.log(embedding.length, kl);
 * ```
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { randomNormal } from "../init/philox.ts";
import type { MetricModel, Samples } from "./_common.ts";
import { forEachLayerOutput } from "./_activations.ts";

/** Options of {@linkcode tsneAffinities}. */
export interface AffinityOptions {
  /** Perplexity, the effective number of neighbours (sec. 2: typically 5 to 50). Default 30. */
  perplexity?: number;
  /** Stop the binary search when `|H(P_i) − log Perp| ≤ tolerance` (nats). Default 1e-5. */
  tolerance?: number;
  /** Most bisection steps per point. Default 100. */
  maxSteps?: number;
}

/** The joint affinities of N points. */
export interface Affinities {
  /** (N, N) symmetric joint probabilities `p_ij`, zero diagonal, summing to 1. */
  p: Float64Array;
  /** (N,) precisions `β_i = 1 / (2σ_i²)` found by the binary search. */
  beta: Float64Array;
  n: number;
}

/** Squared Euclidean distances (N, N) of the rows of x (N, D), in float64. */
export function squaredDistances(x: ArrayLike<number>, n: number, d: number): Float64Array {
  const out = new Float64Array(n * n);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) row[k] = x[i * d + k];
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        const t = row[k] - x[j * d + k];
        s += t * t;
      }
      out[i * n + j] = out[j * n + i] = s;
    }
  }
  return out;
}

/**
 * The symmetric t-SNE affinities P of the rows of x: per point a binary search on `β_i` for the
 * wanted perplexity, then `p_ij = (p_{j|i} + p_{i|j}) / 2N`.
 * @param x (N, D) row-major samples
 * @param n N
 * @param d D
 * @param opts perplexity (must be < N − 1), search tolerance and steps
 * @returns P (N, N) and the precisions β
 */
export function tsneAffinities(
  x: ArrayLike<number>,
  n: number,
  d: number,
  opts: AffinityOptions = {},
): Affinities {
  const perp = opts.perplexity ?? 30;
  checkInput("tsneAffinities", x, n, d, perp);
  return affinitiesFromDistances(squaredDistances(x, n, d), n, opts);
}

/**
 * {@linkcode tsneAffinities} from given squared distances.
 * @param dist (N, N) squared distances (the diagonal is ignored)
 * @param n N
 * @param opts as for {@linkcode tsneAffinities}
 */
export function affinitiesFromDistances(
  dist: ArrayLike<number>,
  n: number,
  opts: AffinityOptions = {},
): Affinities {
  const perp = opts.perplexity ?? 30;
  const tol = opts.tolerance ?? 1e-5;
  const steps = opts.maxSteps ?? 100;
  const target = Math.log(perp);
  const cond = new Float64Array(n * n);
  const beta = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const row = cond.subarray(i * n, (i + 1) * n);
    // NOTE: the exponent is taken relative to the nearest neighbour's distance: p_{j|i} is
    // unchanged (the factor cancels) but exp() cannot underflow to an all-zero row when the
    // distances are large (raw activations: ‖Δ‖² of 10⁴ and more at the start β = 1).
    let dmin = Infinity;
    for (let j = 0; j < n; j++) if (j !== i) dmin = Math.min(dmin, dist[i * n + j]);
    let b = 1, lo = -Infinity, hi = Infinity;
    for (let step = 0; step < steps; step++) {
      let sum = 0;
      for (let j = 0; j < n; j++) {
        row[j] = j === i ? 0 : Math.exp(-b * (dist[i * n + j] - dmin));
        sum += row[j];
      }
      // H(P_i) = log Σ_j e^{−β(d_j − dmin)} + β Σ_j p_j (d_j − dmin).
      let dp = 0;
      for (let j = 0; j < n; j++) {
        row[j] /= sum;
        if (j !== i) dp += (dist[i * n + j] - dmin) * row[j];
      }
      const diff = Math.log(sum) + b * dp - target;
      if (Math.abs(diff) <= tol) break;
      // Entropy falls as β grows: too flat a row (diff > 0) needs a larger β.
      if (diff > 0) {
        lo = b;
        b = hi === Infinity ? b * 2 : (b + hi) / 2;
      } else {
        hi = b;
        b = lo === -Infinity ? b / 2 : (b + lo) / 2;
      }
    }
    beta[i] = b;
  }
  const p = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      p[i * n + j] = p[j * n + i] = (cond[i * n + j] + cond[j * n + i]) / (2 * n);
    }
  }
  return { p, beta, n };
}

/**
 * `KL(P‖Q)` of an embedding, with Q the Student-t (one degree of freedom) similarities of its
 * rows; `q_ij` is floored at the float64 epsilon (as a guard against log 0 for far-apart points).
 * @param p (N, N) joint affinities
 * @param y (N, dims) embedding
 * @param n N
 * @param dims embedding dimension (default 2)
 * @returns the divergence in nats
 */
export function tsneKl(
  p: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  dims = 2,
): number {
  const num = new Float64Array(n * n);
  let z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < dims; k++) s += (y[i * dims + k] - y[j * dims + k]) ** 2;
      num[i * n + j] = 1 / (1 + s);
      z += 2 * num[i * n + j];
    }
  }
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const pij = p[i * n + j];
      if (pij > 0) kl += 2 * pij * Math.log(pij / Math.max(num[i * n + j] / z, Number.EPSILON));
    }
  }
  return kl;
}

/**
 * The gradient of `KL(eP‖Q)` over the embedding (eq. 5, with P scaled by the exaggeration e):
 * `g_i = 4 Σ_j (e p_ij − q_ij)(y_i − y_j)(1 + ‖y_i − y_j‖²)⁻¹`.
 * @param p (N, N) joint affinities
 * @param y (N, dims) embedding
 * @param n N
 * @param dims embedding dimension
 * @param opts `exaggeration` e (default 1); `grad` (N·dims) and `num` (N·N) scratch to reuse
 * @returns the gradient (N, dims), `opts.grad` when given
 */
export function tsneGradient(
  p: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  dims: number,
  opts: { exaggeration?: number; grad?: Float64Array; num?: Float64Array } = {},
): Float64Array {
  const e = opts.exaggeration ?? 1;
  const grad = opts.grad ?? new Float64Array(n * dims);
  const num = opts.num ?? new Float64Array(n * n);
  // num_ij = (1 + ‖y_i − y_j‖²)⁻¹, Z = Σ_{k≠l} num_kl.
  let z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < dims; k++) s += (y[i * dims + k] - y[j * dims + k]) ** 2;
      const v = 1 / (1 + s);
      num[i * n + j] = num[j * n + i] = v;
      z += 2 * v;
    }
  }
  grad.fill(0);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const w = num[i * n + j];
      const c = 4 * (e * p[i * n + j] - w / z) * w;
      for (let k = 0; k < dims; k++) grad[i * dims + k] += c * (y[i * dims + k] - y[j * dims + k]);
    }
  }
  return grad;
}

/** Options of {@linkcode tsne}. */
export interface TsneOptions extends AffinityOptions {
  /** Embedding dimension. Default 2. */
  dims?: number;
  /** Gradient-descent iterations T. Default 1000. */
  iterations?: number;
  /** Learning rate η. Default 100. */
  learningRate?: number;
  /** Momentum α before and after `momentumSwitch`. Defaults 0.5 and 0.8. */
  momentum?: [number, number];
  /** Iteration at which the momentum changes. Default 250. */
  momentumSwitch?: number;
  /** Early exaggeration factor of P and its length in iterations. Defaults 4 and 50. */
  exaggeration?: number;
  exaggerationIterations?: number;
  /** Jacobs' per-coordinate gains (sec. 3.4). Default true. */
  adaptiveGains?: boolean;
  /**
   * Start the momentum and the gains afresh when the momentum changes (scikit-learn runs its two
   * phases as two separate descents). Default false: the paper's one descent.
   */
  restartAtSwitch?: boolean;
  /** Seed of the `N(0, 10⁻⁴ I)` start. Default 0. */
  seed?: number;
  /** (N, dims) start instead of the seeded one. */
  init?: ArrayLike<number>;
  /** Record KL(P‖Q) (unexaggerated) every this many iterations in `history`. Default 50. */
  recordEvery?: number;
}

/** What {@linkcode tsne} returns. */
export interface TsneResult {
  /** (N, dims) embedding. */
  embedding: Float64Array;
  /** KL(P‖Q) of the final embedding (nats). */
  kl: number;
  /** `[iteration, KL]` along the descent (KL of the unexaggerated P). */
  history: [number, number][];
  /** The affinities used. */
  affinities: Affinities;
  n: number;
  dims: number;
  perplexity: number;
}

/**
 * Exact t-SNE of the rows of x (module doc for the method and its defaults).
 * @param x (N, D) row-major samples
 * @param n N
 * @param d D
 * @param opts perplexity (< N − 1), iterations, learning rate, momentum, exaggeration, seed
 * @returns the embedding, its KL divergence and the affinities
 * @example
 * ```ts
 * const x = Float64Array.from({ length: 300 * 8 }, (_, i) => Math.cos(i * 0.37)); // (300, 8)
 * const r = tsne(x, 300, 8, { perplexity: 30, seed: 1 });
 * console.log(r.kl, r.embedding.length); // 600 coordinates
 * ```
 */
export function tsne(
  x: ArrayLike<number>,
  n: number,
  d: number,
  opts: TsneOptions = {},
): TsneResult {
  const perp = opts.perplexity ?? 30;
  checkInput("tsne", x, n, d, perp);
  return tsneFromAffinities(tsneAffinities(x, n, d, opts), { ...opts, perplexity: perp });
}

/**
 * The gradient descent of {@linkcode tsne} from given affinities.
 * @param aff joint affinities (from {@linkcode tsneAffinities})
 * @param opts as for {@linkcode tsne} (the affinity options are not used)
 */
export function tsneFromAffinities(aff: Affinities, opts: TsneOptions = {}): TsneResult {
  const n = aff.n, p = aff.p;
  const dims = opts.dims ?? 2;
  const iters = opts.iterations ?? 1000;
  const eta = opts.learningRate ?? 100;
  const [m0, m1] = opts.momentum ?? [0.5, 0.8];
  const mSwitch = opts.momentumSwitch ?? 250;
  const exag = opts.exaggeration ?? 4;
  const exagIters = opts.exaggerationIterations ?? 50;
  const gainsOn = opts.adaptiveGains ?? true;
  const every = opts.recordEvery ?? 50;
  if (!(Number.isInteger(dims) && dims >= 1)) {
    throw new Error(`tsne: dims must be a positive integer, got ${dims}`);
  }
  if (!(Number.isInteger(iters) && iters >= 0)) {
    throw new Error(`tsne: iterations must be a non-negative integer, got ${iters}`);
  }
  if (!(eta > 0 && exag > 0)) {
    throw new Error(`tsne: learningRate and exaggeration must be positive, got ${eta}, ${exag}`);
  }
  let y: Float64Array;
  if (opts.init) {
    if (opts.init.length !== n * dims) {
      throw new Error(`tsne: init has ${opts.init.length} values, need N·dims = ${n * dims}`);
    }
    y = Float64Array.from(opts.init);
  } else {
    y = randomNormal(n * dims, { seed: opts.seed ?? 0 }).map((v) => 1e-4 * v);
  }
  const update = new Float64Array(n * dims);
  const gains = new Float64Array(n * dims).fill(1);
  const grad = new Float64Array(n * dims);
  // (N, N) scratch for the Student-t kernel values.
  const num = new Float64Array(n * n);
  const history: [number, number][] = [];
  for (let t = 0; t < iters; t++) {
    const e = t < exagIters ? exag : 1;
    tsneGradient(p, y, n, dims, { exaggeration: e, grad, num });
    if (every > 0 && t % every === 0) history.push([t, tsneKl(p, y, n, dims)]);
    const alpha = t < mSwitch ? m0 : m1;
    if (opts.restartAtSwitch && t === mSwitch) {
      update.fill(0);
      gains.fill(1);
    }
    for (let q = 0; q < n * dims; q++) {
      if (gainsOn) {
        // Jacobs (1988): the gain grows while the step keeps its direction (the new gradient
        // opposes the last update), and shrinks when it turns.
        gains[q] = update[q] * grad[q] < 0 ? gains[q] + 0.2 : Math.max(gains[q] * 0.8, 0.01);
      }
      update[q] = alpha * update[q] - eta * gains[q] * grad[q];
      y[q] += update[q];
    }
  }
  const kl = tsneKl(p, y, n, dims);
  history.push([iters, kl]);
  return { embedding: y, kl, history, affinities: aff, n, dims, perplexity: opts.perplexity ?? 30 };
}

/** t-SNE of one layer's output. */
export interface LayerTsne {
  /** Layer name (module path) and class. */
  layer: string;
  /** (N, 2) embedding. */
  embedding: Float64Array;
  /** KL(P‖Q) of the embedding (nats). */
  kl: number;
  /** The perplexity used. */
  perplexity: number;
  /** Iterations run. */
  iterations: number;
  n: number;
  /** Labels of the samples, for colouring. */
  labels?: Int32Array;
}

/**
 * 2-D exact t-SNE of the output of each layer (eval mode; the same layers as `activationPca`
 * chooses), for scatter plots coloured by class; the distances are those of the raw
 * activations (no PCA to 30 dimensions first, unlike the paper's sec. 4.2).
 * @param rt runtime (the forward pass runs on it; t-SNE on the host in float64)
 * @param model a chain of layers (`Sequential` / `Model`)
 * @param data samples (labels kept for colouring)
 * @param opts `layers`, `maxSamples` (default 300); `perplexity` (default 30, lowered to
 *   ⌊(N − 2) / 3⌋ for few samples) and the other {@linkcode TsneOptions}
 * @returns one result per chosen layer
 * @example
 * ```ts
 * const maps = await activationTsne(rt, model, { x, y, sampleShape: [1, 28, 28] }, { seed: 0 });
 * console.log(maps.map((m) => `${m.layer}: KL ${m.kl.toFixed(3)}`));
 * ```
 */
export async function activationTsne(
  rt: Backend,
  model: MetricModel & { layers: readonly Layer[] },
  data: Samples,
  opts: TsneOptions & { layers?: (string | number)[]; maxSamples?: number } = {},
): Promise<LayerTsne[]> {
  const out: LayerTsne[] = [];
  const maxSamples = opts.maxSamples ?? 300;
  await forEachLayerOutput(rt, model, data, { ...opts, maxSamples }, ({ layer, acts, n, d }) => {
    const perplexity = Math.min(opts.perplexity ?? 30, Math.max(1, Math.floor((n - 2) / 3)));
    const r = tsne(acts, n, d, { ...opts, perplexity, dims: 2 });
    out.push({
      layer,
      embedding: r.embedding,
      kl: r.kl,
      perplexity,
      iterations: opts.iterations ?? 1000,
      n,
      labels: data.y ? Int32Array.from(data.y.subarray(0, n)) : undefined,
    });
  });
  return out;
}

function checkInput(op: string, x: ArrayLike<number>, n: number, d: number, perp: number): void {
  if (!(Number.isInteger(n) && n >= 3 && Number.isInteger(d) && d >= 1 && x.length >= n * d)) {
    throw new Error(
      `${op}: need at least 3 samples of size >= 1 in ${x.length} values (N=${n}, D=${d})`,
    );
  }
  if (!(perp >= 1 && perp < n - 1)) {
    throw new Error(
      `${op}: perplexity must be in [1, N − 1) = [1, ${n - 1}), got ${perp}; ` +
        `use fewer neighbours or more samples`,
    );
  }
}
