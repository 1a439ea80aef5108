/**
 * Penalties on parameters: L1, L2, elastic net, soft SVB (soft orthogonality) and the spectral
 * norm penalty, each as a pure function over GPU buffers — `(rt, params, opts) → { value }`,
 * adding `∂R/∂θ` into each `param.grad` unless `grad: false` — and as a {@linkcode Regularizer}
 * factory for `train` (its `afterBackward` hook).
 *
 * Which parameters: Linear and Conv2d weights by default (`kind: "weight"` with two or more
 * dimensions); biases with `biases: true`, BatchNorm γ with `norms: true` (the seed project
 * sometimes penalised biases and BatchNorm by accident; see SEED-NOTES.md). The matrix penalties
 * (soft SVB, spectral) act on weights only, a conv weight (out, in, kh, kw) read as the matrix
 * (out, in·kh·kw) of its PyTorch layout.
 *
 * Everything stays on the GPU: per-workgroup partial sums go into one buffer, summed by
 * src/ops/reduce.ts into the [1] value; nothing is read back.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import { matmul } from "../ops/matmul.ts";
import { reduce } from "../ops/reduce.ts";
import { randomNormal } from "../ops/random.ts";
import type { Regularizer, StepContext } from "../hooks/step.ts";
import {
  asMatrix,
  checkCoef,
  CHUNK,
  KERNELS,
  launch,
  type ParamSelection,
  Scratch,
  selectParams,
  streamKey,
} from "./_params.ts";

export type { ParamSelection } from "./_params.ts";
export { selectParams } from "./_params.ts";

/** Options shared by the penalty functions. */
export interface ParamPenaltyOptions extends ParamSelection {
  /** Add `∂R/∂θ` into each selected `param.grad`. Default true. */
  grad?: boolean;
  /** [1] f32 that receives the value (else a new tensor the caller disposes). */
  out?: Tensor;
}

/** What a penalty function returns. */
export interface ParamPenaltyResult {
  /** [1] f32: what the penalty adds to the loss (coefficients included). */
  value: Tensor;
}

function valueTensor(rt: Backend, op: string, out?: Tensor): Tensor {
  if (!out) return rt.empty([1], "f32", `${op} value`);
  if (out.disposed || out.size !== 1 || out.dtype !== "f32") {
    throw new Error(`${op}: out must be a live f32[1], got ${out.describe()}`);
  }
  return out;
}

function checkGrad(op: string, p: Param): void {
  if (!p.grad) throw new Error(`${op}: parameter '${p.name}' has no grad to add into`);
  if (p.grad.size !== p.value.size) {
    throw new Error(
      `${op}: grad of '${p.name}' has ${p.grad.size} elements, the value ${p.value.size}`,
    );
  }
}

/** Runs `fn` with a scratch cache: the given one, or a temporary one freed afterwards. */
function withScratch<T>(rt: Backend, op: string, s: Scratch | undefined, fn: (s: Scratch) => T): T {
  const scratch = s ?? new Scratch(rt, op);
  try {
    return fn(scratch);
  } finally {
    // Safe at once: later work that reuses the buffers is recorded after this work.
    if (!s) scratch.dispose();
  }
}

/** Options of {@linkcode elasticNetPenalty}. */
export interface ElasticNetOptions extends ParamPenaltyOptions {
  /** λ1, the L1 coefficient. Default 0. */
  l1?: number;
  /** λ2, the L2 coefficient. Default 0. */
  l2?: number;
}

function elasticNet(
  rt: Backend,
  op: string,
  params: readonly Param[],
  l1: number,
  l2: number,
  opts: ParamPenaltyOptions,
  scratch?: Scratch,
): ParamPenaltyResult {
  checkCoef(op, "lambda1", l1);
  checkCoef(op, "lambda2", l2);
  const grad = opts.grad ?? true;
  const sel = selectParams(params, opts);
  if (grad) sel.forEach((p) => checkGrad(op, p));
  const value = valueTensor(rt, op, opts.out);
  const total = sel.reduce((s, p) => s + Math.ceil(p.value.size / CHUNK), 0);
  if (total === 0) {
    rt.fill0(value);
    return { value };
  }
  return withScratch(rt, op, scratch, (s) => {
    const partials = s.get("partials", [total]);
    let off = 0;
    for (const p of sel) {
      const groups = Math.ceil(p.value.size / CHUNK);
      if (groups === 0) continue;
      launch(
        rt,
        KERNELS.penalty,
        { a: p.value, out: grad ? p.grad! : undefined, acc: partials },
        { n: p.value.size, off, mode: grad ? 1 : 0, c1: l1, c2: l2 },
        rt.grid(groups, 1),
      );
      off += groups;
    }
    reduce(rt, "sum", partials, { out: value });
    return { value };
  });
}

/**
 * Elastic net (Zou & Hastie 2005): `R = λ1 Σ|w| + (λ2/2) Σ w²` over the selected parameters;
 * `∂R/∂w = λ1 sign(w) + λ2 w` with `sign(0) = 0` (PyTorch's subgradient of |w|).
 * @param rt runtime
 * @param params a model's `params()` (the selection picks the weights)
 * @param opts l1, l2 (default 0 each), biases, norms, grad (default true), out
 * @returns `value` [1] f32 (`opts.out` or new, the caller disposes)
 * @throws Error for negative or non-finite coefficients, or a selected param without grad
 */
export function elasticNetPenalty(
  rt: Backend,
  params: readonly Param[],
  opts: ElasticNetOptions = {},
): ParamPenaltyResult {
  return elasticNet(rt, "elasticNetPenalty", params, opts.l1 ?? 0, opts.l2 ?? 0, opts);
}

/** Options of the one-coefficient penalties. */
export interface LambdaPenaltyOptions extends ParamPenaltyOptions {
  /** λ. */
  lambda: number;
}

/**
 * L1 (lasso) penalty `R = λ Σ|w|`; `∂R/∂w = λ sign(w)`, 0 at w = 0 (as torch's autograd).
 * @param rt runtime
 * @param params a model's `params()`
 * @param opts lambda, biases, norms, grad (default true), out
 * @returns `value` [1] f32 (`opts.out` or new, the caller disposes)
 * @example
 * ```ts
 * import { buildModel, l1Penalty, modelSpecFromName, Runtime } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * // After model.backward: adds λ sign(w) into the weights' grads.
 * const { value } = l1Penalty(rt, model.params(), { lambda: 1e-5 });
 * console.log(await value.read()); // [λ Σ|w|] over the weights (and biases with `biases: true`)
 * value.dispose();
 * model.dispose();
 * ```
 */
export function l1Penalty(
  rt: Backend,
  params: readonly Param[],
  opts: LambdaPenaltyOptions,
): ParamPenaltyResult {
  return elasticNet(rt, "l1Penalty", params, opts.lambda, 0, opts);
}

/**
 * L2 penalty `R = (λ/2) Σ w² = (λ/2) ||w||²`; `∂R/∂w = λ w`. Adding this gradient before the
 * optimizer step is PyTorch's coupled `weight_decay = λ` of SGD (with or without momentum) and of
 * Adam, restricted to the selected weights (`weight_decay` hits every parameter, biases and
 * BatchNorm included). It is not AdamW's decoupled decay (Loshchilov & Hutter 2019,
 * `w ← w − lr·λ·w` outside Adam's normalisation), which has no penalty form.
 * @param rt runtime
 * @param params a model's `params()`
 * @param opts lambda, biases, norms, grad (default true), out
 * @returns `value` [1] f32 (`opts.out` or new, the caller disposes)
 * @example
 * ```ts
 * import { buildModel, l2Penalty, modelSpecFromName, Runtime } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * // After model.backward: adds λ w into the weights' grads.
 * const { value } = l2Penalty(rt, model.params(), { lambda: 5e-4 });
 * console.log(await value.read()); // [(λ/2) Σ w²] over the weights (and biases with `biases: true`)
 * value.dispose();
 * model.dispose();
 * ```
 */
export function l2Penalty(
  rt: Backend,
  params: readonly Param[],
  opts: LambdaPenaltyOptions,
): ParamPenaltyResult {
  return elasticNet(rt, "l2Penalty", params, 0, opts.lambda, opts);
}

function softSvb(
  rt: Backend,
  op: string,
  params: readonly Param[],
  lambda: number,
  opts: ParamPenaltyOptions,
  scratch?: Scratch,
): ParamPenaltyResult {
  checkCoef(op, "lambda", lambda);
  const grad = opts.grad ?? true;
  const sel = selectParams(params, {}, true);
  if (grad) sel.forEach((p) => checkGrad(op, p));
  const value = valueTensor(rt, op, opts.out);
  const total = sel.reduce(
    (s, p) => s + Math.min(p.value.shape[0], p.value.size / p.value.shape[0]),
    0,
  );
  if (total === 0) {
    rt.fill0(value);
    return { value };
  }
  return withScratch(rt, op, scratch, (s) => {
    const partials = s.get("partials", [total]);
    let off = 0;
    for (const p of sel) {
      const w = asMatrix(p.value);
      const [m, k] = w.shape;
      const n = Math.min(m, k);
      const g = s.get(`gram${n}`, [n, n]);
      // The smaller Gram side: W Wᵀ (m × m) for a wide W, Wᵀ W (k × k) for a tall one. Both have
      // the same nonzero eigenvalues σ², but the larger one has |m − k| extra zero eigenvalues,
      // so ||·− I||² could never go below |m − k| (the seed project's mistake).
      if (m <= k) matmul(rt, w, w, { transB: true, out: g });
      else matmul(rt, w, w, { transA: true, out: g });
      launch(rt, KERNELS.gramResidual, { out: g, acc: partials }, { n, off, c1: lambda }, [n]);
      off += n;
      if (grad) {
        const dw = asMatrix(p.grad!);
        // ∂/∂W ||W Wᵀ − I||² = 4 (W Wᵀ − I) W;  ∂/∂W ||Wᵀ W − I||² = 4 W (Wᵀ W − I).
        if (m <= k) matmul(rt, g, w, { alpha: 4 * lambda, beta: 1, out: dw });
        else matmul(rt, w, g, { alpha: 4 * lambda, beta: 1, out: dw });
      }
    }
    reduce(rt, "sum", partials, { out: value });
    return { value };
  });
}

/**
 * Soft SVB / soft orthogonality (Jia et al. 2017, "Improving training of deep neural networks via
 * singular value bounding", sec. 3; Bansal, Chen & Wang 2018, "Can we gain more from
 * orthogonality regularizations in training deep CNNs?", the SO regularizer):
 * `R = λ Σ_W ||G − I||_F²` with `G` the *smaller* Gram matrix of each weight matrix (conv
 * weights as (out, in·kh·kw)): `G = W Wᵀ` when out ≤ in·kh·kw, else `Wᵀ W`. Gradient
 * `4λ (W Wᵀ − I) W`, resp. `4λ W (Wᵀ W − I)`. `R = 0` exactly when all singular values are 1.
 * @param rt runtime
 * @param params a model's `params()` (weights with ≥ 2 dimensions are used)
 * @param opts lambda, grad (default true), out
 * @returns `value` [1] f32 (`opts.out` or new, the caller disposes)
 */
export function softSvbPenalty(
  rt: Backend,
  params: readonly Param[],
  opts: LambdaPenaltyOptions,
): ParamPenaltyResult {
  return softSvb(rt, "softSvbPenalty", params, opts.lambda, opts);
}

/**
 * Power-iteration state of {@linkcode spectralNormPenalty}: one unit vector `u` (out,) per weight,
 * kept across steps (Yoshida & Miyato 2017, sec. 4: one iteration per step suffices because the
 * weights change slowly). Initialised from N(0, I) keyed by (seed, parameter name), normalised.
 */
export class SpectralState {
  readonly #scratch: Scratch;
  constructor(readonly rt: Backend, readonly seed = 0) {
    this.#scratch = new Scratch(rt, "spectral state");
  }

  /** The (m,) u vector of a parameter (created on first use). */
  u(p: Param): Tensor {
    const m = p.value.shape[0];
    const key = `u:${p.name}`;
    const fresh = !this.#scratch.has(key);
    const u = this.#scratch.get(key, [m]);
    if (fresh) {
      randomNormal(this.rt, [m], { seed: streamKey(this.seed, `spectral:${p.name}`), out: u });
      launch(this.rt, KERNELS.normalize, { out: u, acc: this.#trash() }, { n: m }, [1]);
    }
    return u;
  }

  /** Sets a parameter's u (not normalised), e.g. to match PyTorch in a test. */
  set(p: Param, u: Float32Array): void {
    const m = p.value.shape[0];
    if (u.length !== m) throw new Error(`SpectralState.set: u needs ${m} values for '${p.name}'`);
    this.rt.write(this.#scratch.get(`u:${p.name}`, [m]), u);
  }

  #trash(): Tensor {
    return this.#scratch.get("trash", [1]);
  }

  /** Frees the u vectors. */
  dispose(): void {
    this.#scratch.dispose();
  }
}

/** Options of {@linkcode spectralNormPenalty}. */
export interface SpectralNormOptions extends ParamPenaltyOptions {
  /** λ: `R = (λ/2) Σ σ_max(W)²`. */
  lambda: number;
  /** Persistent power-iteration vectors (one per weight). */
  state: SpectralState;
  /** Power iterations per call. Default 1. */
  iters?: number;
}

function spectral(
  rt: Backend,
  op: string,
  params: readonly Param[],
  opts: SpectralNormOptions,
  scratch?: Scratch,
): ParamPenaltyResult {
  const { lambda, state } = opts;
  const iters = opts.iters ?? 1;
  checkCoef(op, "lambda", lambda);
  if (!(Number.isInteger(iters) && iters >= 1)) {
    throw new Error(`${op}: iters must be a positive integer, got ${iters}`);
  }
  if (state.rt !== rt) throw new Error(`${op}: the SpectralState belongs to another runtime`);
  const grad = opts.grad ?? true;
  const sel = selectParams(params, {}, true);
  if (grad) sel.forEach((p) => checkGrad(op, p));
  const value = valueTensor(rt, op, opts.out);
  if (sel.length === 0) {
    rt.fill0(value);
    return { value };
  }
  return withScratch(rt, op, scratch, (s) => {
    // sig[l] = σ of weight l; sig[L] takes the norms of the v's (unused).
    const sig = s.get("sigma", [sel.length + 1]);
    sel.forEach((p, l) => {
      const w = asMatrix(p.value);
      const [m, k] = w.shape;
      const u = state.u(p);
      const v = s.get(`v${k}`, [k]);
      for (let it = 0; it < iters; it++) {
        launch(rt, KERNELS.matvecT, { a: w, b: u, out: v }, { m, k }, rt.grid(k, 256));
        launch(rt, KERNELS.normalize, { out: v, acc: sig }, { n: k, off: sel.length }, [1]);
        launch(rt, KERNELS.matvec, { a: w, b: v, out: u }, { m, k }, rt.grid(m, 1));
        launch(rt, KERNELS.normalize, { out: u, acc: sig }, { n: m, off: l }, [1]);
      }
      if (grad) {
        launch(
          rt,
          KERNELS.outer,
          { a: u, b: v, out: asMatrix(p.grad!), acc: sig },
          { m, k, off: l, c1: lambda },
          rt.grid(m * k, 256),
        );
      }
    });
    launch(rt, KERNELS.spectralValue, { out: value, acc: sig }, { n: sel.length, c1: lambda / 2 }, [
      1,
    ]);
    return { value };
  });
}

/**
 * Spectral norm regularization (Yoshida & Miyato 2017, "Spectral norm regularization for
 * improving the generalizability of deep learning", arXiv:1705.10941, eq. 7–8):
 * `R = (λ/2) Σ_W σ_max(W)²` over the weight matrices (conv weights as (out, in·kh·kw), as in
 * that paper), σ_max by power iteration from the persistent `u` of `state`:
 * `v = Wᵀu / ||Wᵀu||`, `u = W v / ||W v||`, `σ = uᵀ W v = ||W v||`; gradient `λ σ u vᵀ` (u, v
 * held fixed, as in the paper and in `torch.nn.utils.spectral_norm`).
 * @param rt runtime
 * @param params a model's `params()` (weights with ≥ 2 dimensions are used)
 * @param opts lambda, state, iters (default 1), grad (default true), out
 * @returns `value` [1] f32 (`opts.out` or new, the caller disposes); `state` advanced
 */
export function spectralNormPenalty(
  rt: Backend,
  params: readonly Param[],
  opts: SpectralNormOptions,
): ParamPenaltyResult {
  return spectral(rt, "spectralNormPenalty", params, opts);
}

// ---------------------------------------------------------------------------------------------
// Regularizer factories for train.

/** A regularizer over parameters that adds its gradient in `afterBackward`. */
function paramRegularizer(
  name: string,
  options: Record<string, number | string | boolean>,
  run: (ctx: StepContext, out: Tensor, scratch: Scratch) => void,
  extraDispose?: () => void,
): Regularizer {
  let scratch: Scratch | null = null;
  return {
    name,
    options,
    afterBackward(ctx: StepContext): Tensor {
      if (scratch?.rt !== ctx.rt) {
        scratch?.dispose();
        scratch = new Scratch(ctx.rt, name);
      }
      const out = scratch.get("value", [1]);
      run(ctx, out, scratch);
      return out;
    },
    dispose() {
      scratch?.dispose();
      scratch = null;
      extraDispose?.();
    },
  };
}

/** Options of {@linkcode l1Regularizer} and {@linkcode l2Regularizer}. */
export interface LambdaRegularizerOptions extends ParamSelection {
  /** λ. */
  lambda?: number;
}

/**
 * L1 penalty for `train`: `λ Σ|w|` over the weights (see {@linkcode l1Penalty}).
 * @param opts lambda (default 1e-5), biases (false), norms (false)
 * @returns a Regularizer named "l1"
 */
export function l1Regularizer(opts: LambdaRegularizerOptions = {}): Regularizer {
  const lambda = opts.lambda ?? 1e-5;
  checkCoef("l1Regularizer", "lambda", lambda);
  const sel = { biases: opts.biases ?? false, norms: opts.norms ?? false };
  return paramRegularizer("l1", { lambda, ...sel }, (ctx, out, s) => {
    elasticNet(ctx.rt, "l1", ctx.params, lambda, 0, { ...sel, out }, s);
  });
}

/**
 * L2 penalty for `train`: `(λ/2) ||w||²` over the weights (see {@linkcode l2Penalty}; with plain
 * SGD it equals `weight_decay = λ` on those weights; it is not AdamW's decoupled decay).
 * @param opts lambda (default 5e-4, the seed study's value), biases (false), norms (false)
 * @returns a Regularizer named "l2"
 * @example
 * ```ts
 * import {
 *   buildModel,
 *   l2Regularizer,
 *   modelSpecFromName,
 *   Runtime,
 *   toy2d,
 *   train,
 * } from "@regula/regula";
 *
 * const rt = await Runtime.create();
 * const model = buildModel(rt, modelSpecFromName("mlp"), { seed: 0 });
 * const regularizers = [l2Regularizer({ lambda: 5e-4 })];
 * const options = { epochs: 1, batchSize: 64, lr: 0.05, regularizers };
 * const result = await train(model, { train: toy2d() }, options);
 * console.log(result.history[0].penalties.l2); // mean (λ/2) ||w||² over the epoch
 * model.dispose();
 * ```
 */
export function l2Regularizer(opts: LambdaRegularizerOptions = {}): Regularizer {
  const lambda = opts.lambda ?? 5e-4;
  checkCoef("l2Regularizer", "lambda", lambda);
  const sel = { biases: opts.biases ?? false, norms: opts.norms ?? false };
  return paramRegularizer("l2", { lambda, ...sel }, (ctx, out, s) => {
    elasticNet(ctx.rt, "l2", ctx.params, 0, lambda, { ...sel, out }, s);
  });
}

/** Options of {@linkcode elasticNetRegularizer}. */
export interface ElasticNetRegularizerOptions extends ParamSelection {
  /** λ1. Default 1e-5. */
  l1?: number;
  /** λ2. Default 5e-4. */
  l2?: number;
}

/**
 * Elastic net for `train`: `λ1 Σ|w| + (λ2/2) ||w||²` (see {@linkcode elasticNetPenalty}).
 * @param opts l1 (default 1e-5), l2 (default 5e-4), biases (false), norms (false)
 * @returns a Regularizer named "elastic-net"
 */
export function elasticNetRegularizer(opts: ElasticNetRegularizerOptions = {}): Regularizer {
  const l1 = opts.l1 ?? 1e-5, l2 = opts.l2 ?? 5e-4;
  checkCoef("elasticNetRegularizer", "l1", l1);
  checkCoef("elasticNetRegularizer", "l2", l2);
  const sel = { biases: opts.biases ?? false, norms: opts.norms ?? false };
  return paramRegularizer("elastic-net", { l1, l2, ...sel }, (ctx, out, s) => {
    elasticNet(ctx.rt, "elastic-net", ctx.params, l1, l2, { ...sel, out }, s);
  });
}

/**
 * Soft SVB for `train`: `λ Σ ||G − I||_F²`, G the smaller Gram matrix of each weight (see
 * {@linkcode softSvbPenalty}).
 * @param opts lambda (default 1e-4)
 * @returns a Regularizer named "soft-svb"
 */
export function softSvbRegularizer(opts: { lambda?: number } = {}): Regularizer {
  const lambda = opts.lambda ?? 1e-4;
  checkCoef("softSvbRegularizer", "lambda", lambda);
  return paramRegularizer("soft-svb", { lambda }, (ctx, out, s) => {
    softSvb(ctx.rt, "soft-svb", ctx.params, lambda, { out }, s);
  });
}

/** Options of {@linkcode spectralNormRegularizer}. */
export interface SpectralNormRegularizerOptions {
  /** λ: `(λ/2) Σ σ_max²`. Default 0.01. */
  lambda?: number;
  /** Power iterations per step. Default 1. */
  iters?: number;
  /** Seed of the initial u vectors; default the run seed. */
  seed?: number;
}

/**
 * Spectral norm regularization for `train` (Yoshida & Miyato 2017): `(λ/2) Σ σ_max(W)²`, one
 * power iteration per step from persistent vectors (see {@linkcode spectralNormPenalty}).
 * @param opts lambda (default 0.01), iters (default 1), seed (default the run seed)
 * @returns a Regularizer named "spectral"
 */
export function spectralNormRegularizer(opts: SpectralNormRegularizerOptions = {}): Regularizer {
  const lambda = opts.lambda ?? 0.01;
  const iters = opts.iters ?? 1;
  checkCoef("spectralNormRegularizer", "lambda", lambda);
  if (!(Number.isInteger(iters) && iters >= 1)) {
    throw new Error(`spectralNormRegularizer: iters must be a positive integer, got ${iters}`);
  }
  let state: SpectralState | null = null;
  return paramRegularizer(
    "spectral",
    { lambda, iters, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) },
    (ctx, out, s) => {
      if (state?.rt !== ctx.rt) {
        state?.dispose();
        state = new SpectralState(ctx.rt, opts.seed ?? ctx.seed);
      }
      spectral(ctx.rt, "spectral", ctx.params, { lambda, iters, state, out }, s);
    },
    () => {
      state?.dispose();
      state = null;
    },
  );
}
