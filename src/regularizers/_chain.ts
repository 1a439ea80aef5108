/**
 * Shared machinery of the penalties on the function (Jacobian, Jacobian determinant, input-gradient
 * norm): the exact parameter gradient of any differentiable function of Jacobian rows `u = Jᵀ v`,
 * by the recipe of DESIGN.md ("Jacobian regularization"; worked out in shared/jr_gradient_recipe.py)
 * over a model's cached forward pass, with no autograd engine:
 *
 * 1. {@linkcode LayerChain.vjp}: `b_L = v`, `b_{k-1} = A_kᵀ b_k` — the ordinary backward without
 *    touching parameter gradients, keeping every backward signal `b_k`; returns `u = b_0`.
 * 2. {@linkcode LayerChain.tangent}: `r_0 = ∂R/∂u`, `r_k = A_k r_{k-1}` (the layers' `jvp`), and on
 *    the way the terms that need both signals: `∂R/∂W_k += b_k ⊗ r_{k-1}` for Linear/Conv2d (their
 *    ordinary weight-gradient kernels with `b_k` as output gradient and `r_{k-1}` as input, no
 *    bias term: the bias does not enter `A_k`), `∂R/∂γ += Σ b_k r_{k-1} / σ` for an eval-mode
 *    BatchNorm, and the injection `σ''(a) ⊙ b_k ⊙ r_{k-1}` at the pre-activation `a` of every
 *    curved activation (Tanh, Sigmoid, Softplus), summed over all calls.
 * 3. {@linkcode LayerChain.backpropInjections}: one ordinary backward (accumulating parameter
 *    gradients) that starts from an optional gradient at the output and picks up the summed
 *    injections on its way down, i.e. the dependence of `A_k` on the primal activations.
 *
 * Why this is exact: `u` is linear in each `A_k`, so `∂R/∂A_k = b_k r_{k-1}ᵀ` (the adjoint of
 * `u` with respect to `b_{k-1}` is the tangent `r_{k-1}`); for `A = diag(σ'(a))` that is
 * `b ⊙ r` on the diagonal, and `σ'(a)` depends on the parameters below through `a`.
 *
 * Layer-owned outputs are overwritten by the next call of the same pass on the same layer: the
 * chain calls each layer at most once per pass, keeps the references, and copies where one pass
 * borrows another's buffer (BatchNorm's VJP is its jvp, as its eval-mode Jacobian is diagonal).
 *
 * Private to src/regularizers.
 *
 * @module
 */

import type { Runtime } from "../gpu/runtime.ts";
import type { Kernel } from "../gpu/kernel.ts";
import type { Tensor } from "../gpu/tensor.ts";
import type { Layer } from "../layers/layer.ts";
import { Sequential } from "../layers/sequential.ts";
import { Linear } from "../layers/linear.ts";
import { Conv2d } from "../layers/conv2d.ts";
import { Activation } from "../layers/activation.ts";
import { AvgPool2d, MaxPool2d } from "../layers/pool.ts";
import { Dropout } from "../layers/dropout.ts";
import { Flatten } from "../layers/flatten.ts";
import { Normalize } from "../layers/normalize.ts";
import { BatchNorm } from "../layers/batchnorm.ts";
import { axpy } from "../ops/elementwise.ts";
import { randomNormal } from "../ops/random.ts";
import jacobianSrc from "../../shaders/jacobian.wgsl" with { type: "text" };

const k = (entry: string): Kernel => ({ name: `jacobian.${entry}`, code: jacobianSrc, entry });
/** Kernels of shaders/jacobian.wgsl. */
export const KERNELS = {
  normalizeRows: k("normalize_rows_main"),
  oneHot: k("one_hot_main"),
  bnGamma: k("bn_gamma_main"),
  confidence: k("confidence_main"),
  softmaxHvp: k("softmax_hvp_main"),
  det: k("det_main"),
} as const;

/**
 * Dispatches one kernel of shaders/jacobian.wgsl.
 * @param inputs up to three read-only tensors (u, v, w)
 * @param outputs one or two read_write tensors (out, out2)
 */
export function launch(
  rt: Runtime,
  kernel: Kernel,
  inputs: Tensor[],
  outputs: Tensor[],
  params: Partial<Record<"n" | "c" | "s" | "len" | "alpha" | "beta" | "coef", number>>,
  workgroups: readonly number[],
): void {
  const u = inputs[0] ?? rt.placeholder(0);
  rt.dispatch(kernel, {
    bindings: [u, inputs[1] ?? u, inputs[2] ?? u, outputs[0], outputs[1] ?? rt.placeholder(1)],
    params: { n: 0, c: 0, s: 0, len: 0, alpha: 0, beta: 0, coef: 0, ...params },
    workgroups,
  });
}

/** `out` (n, c) ← one-hot rows `e_mu`. */
export function oneHot(rt: Runtime, out: Tensor, c: number, mu: number): void {
  launch(rt, KERNELS.oneHot, [], [out], { n: out.size, c, s: mu }, rt.grid(out.size, 64));
}

/** 32-bit FNV-1a hash of a string (random stream of a regularizer). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * Random unit vectors: `out` (rows, c) ← Gaussian rows divided by their norms (uniform on the
 * unit sphere), from the Philox stream keyed by `(seed mod 2^32, hash(stream))`, substream `step`.
 */
export function randomUnitRows(
  rt: Runtime,
  out: Tensor,
  c: number,
  opts: { seed: number; step: number; stream: string },
): void {
  const seed = ((opts.seed % 4294967296) + 4294967296) % 4294967296;
  randomNormal(rt, out.shape, { seed: [seed, fnv1a(opts.stream)], counter: opts.step, out });
  const rows = out.size / c;
  launch(rt, KERNELS.normalizeRows, [], [out], { n: rows, c }, rt.grid(rows, 64));
}

/** What a layer of the chain is, for the recipe. */
type Kind =
  | "weights" // Linear, Conv2d: inputGrad / weightGrad
  | "curved" // Tanh, Sigmoid, Softplus: σ'' injection
  | "plain" // ReLU, LeakyReLU, pools, Dropout, Flatten, Normalize: backward has no parameters
  | "batchnorm"; // eval mode only: affine per channel

interface Step {
  layer: Layer;
  kind: Kind;
}

const SUPPORTED = "Linear, Conv2d, activations, MaxPool2d, AvgPool2d, Dropout, Flatten, " +
  "Normalize, BatchNorm (eval mode) and nested Sequential";

function flatten(op: string, layer: Layer, out: Step[]): void {
  if (layer instanceof Sequential) {
    for (const l of layer.layers) flatten(op, l, out);
    return;
  }
  let kind: Kind;
  if (layer instanceof Linear || layer instanceof Conv2d) kind = "weights";
  else if (layer instanceof Activation) kind = layer.hasCurvature ? "curved" : "plain";
  else if (
    layer instanceof MaxPool2d || layer instanceof AvgPool2d || layer instanceof Dropout ||
    layer instanceof Flatten || layer instanceof Normalize
  ) kind = "plain";
  else if (layer instanceof BatchNorm) kind = "batchnorm";
  else {
    const what = (layer as { describe?: () => string }).describe?.() ??
      `${layer.name || "layer"} (${layer.constructor.name})`;
    throw new Error(
      `${op}: cannot differentiate through ${what}; the Jacobian penalties support chains of ` +
        SUPPORTED,
    );
  }
  out.push({ layer, kind });
}

/**
 * A model seen as a chain of leaf layers, with the three passes of the recipe (see the module
 * doc). Holds its scratch tensors between calls; `dispose()` frees them.
 */
export class LayerChain {
  readonly steps: readonly Step[];
  /** b[k]: the backward signal at the output of step k (from the last `vjp`). */
  #b: Tensor[] = [];
  /** Owned copies of BatchNorm VJP outputs, per step. */
  #bnCopy: (Tensor | null)[];
  /** Summed σ'' injections at the input of each curved step (null: none yet). */
  #inject: (Tensor | null)[];
  #injected: boolean[];
  #hasB = false;

  /**
   * @param rt runtime
   * @param model the model (a Sequential, possibly nested) whose last forward is the point
   * @param op name for error messages ("jacobianPenalty")
   * @throws Error naming the layer for an unsupported layer type or a BatchNorm in training mode
   */
  constructor(readonly rt: Runtime, readonly model: Layer, readonly op: string) {
    const steps: Step[] = [];
    flatten(op, model, steps);
    if (steps.length === 0) throw new Error(`${op}: the model has no layers`);
    this.steps = steps;
    this.#bnCopy = steps.map(() => null);
    this.#inject = steps.map(() => null);
    this.#injected = steps.map(() => false);
    this.checkMode();
  }

  /** Throws for a BatchNorm in training mode (it couples the samples of a batch). */
  checkMode(): void {
    for (const s of this.steps) {
      if (s.kind === "batchnorm" && s.layer.training) {
        const d = (s.layer as unknown as { name: string }).name || "batchnorm";
        throw new Error(
          `${this.op}: BatchNorm '${d}' is in training mode, where it couples the samples of a ` +
            `batch and the per-sample Jacobian is not defined; put the model in eval mode ` +
            `(model.eval()) or use a model without BatchNorm`,
        );
      }
    }
  }

  /**
   * Step 1: `u = Jᵀ v` at the last forward, keeping each layer's backward signal. No parameter
   * gradient changes.
   * @param v (B, C) f32 at the output (kept by reference: do not overwrite it before `tangent`)
   * @returns (B, ...) f32 shaped like the model input, owned by the chain's first layer (or `v`
   *   itself for a chain of identities); valid until the next `vjp` or `backpropInjections`
   */
  vjp(v: Tensor): Tensor {
    let g = v;
    for (let i = this.steps.length - 1; i >= 0; i--) {
      const { layer, kind } = this.steps[i];
      this.#b[i] = g;
      if (kind === "weights") g = (layer as Linear | Conv2d).inputGrad(g);
      else if (kind === "batchnorm") {
        // Eval-mode BatchNorm is diagonal: Aᵀ = A, so its jvp is its VJP, but jvp's buffer is
        // reused by the tangent pass: keep a copy.
        const t = layer.jvp(g);
        let c = this.#bnCopy[i];
        if (!c || c.disposed || c.shape.join() !== t.shape.join()) {
          c?.dispose();
          c = this.#bnCopy[i] = this.rt.empty(t.shape, "f32", `${this.op} bn copy`);
        }
        this.rt.copy(t, c);
        g = c;
      } else g = layer.backward(g);
    }
    this.#hasB = true;
    return g;
  }

  /**
   * Step 2: the tangent pass from `r0 = ∂R/∂u`, adding `b_k ⊗ r_{k-1}` into weight gradients
   * (and BatchNorm γ gradients) and summing the σ'' injections for `backpropInjections`.
   * @param r0 (B, ...) f32 shaped like the model input
   * @param opts `output: true` also applies the last layer and returns the tangent at the output
   * @returns (B, C) tangent at the output (layer-owned) when asked, else null
   */
  tangent(r0: Tensor, opts: { output?: boolean } = {}): Tensor | null {
    if (!this.#hasB) throw new Error(`${this.op}: tangent() before vjp()`);
    let r = r0;
    const last = this.steps.length - 1;
    for (let i = 0; i <= last; i++) {
      const { layer, kind } = this.steps[i];
      const b = this.#b[i];
      if (kind === "weights") {
        (layer as Linear | Conv2d).weightGrad(b, r, { bias: false });
      } else if (kind === "curved") {
        const s = (layer as Activation).secondDerivative(b, r);
        let acc = this.#inject[i];
        if (!acc || acc.disposed || acc.shape.join() !== s.shape.join()) {
          acc?.dispose();
          acc = this.#inject[i] = this.rt.empty(s.shape, "f32", `${this.op} injection`);
          this.#injected[i] = false;
        }
        if (this.#injected[i]) axpy(this.rt, 1, s, acc);
        else this.rt.copy(s, acc);
        this.#injected[i] = true;
      } else if (kind === "batchnorm") {
        const bn = layer as BatchNorm;
        const shape = r.shape;
        let sp = 1;
        for (let d = 2; d < shape.length; d++) sp *= shape[d];
        launch(
          this.rt,
          KERNELS.bnGamma,
          [b, r, bn.runningVar],
          [bn.dWeight],
          { n: shape[0], c: bn.channels, s: sp, alpha: bn.eps, coef: 1 },
          [bn.channels],
        );
      }
      if (i < last || opts.output) r = layer.jvp(r);
    }
    return opts.output ? r : null;
  }

  /**
   * Step 3: one ordinary backward that accumulates parameter gradients, starting from `top` at
   * the output (or nothing) and adding each curved layer's summed injection at its input. Runs
   * only down to the lowest layer with parameters; clears the injections.
   * @param top optional (B, C) gradient at the output (not modified)
   */
  backpropInjections(top: Tensor | null = null): void {
    let lowest = -1;
    for (let i = 0; i < this.steps.length && lowest < 0; i++) {
      if (this.steps[i].kind === "weights" || this.steps[i].kind === "batchnorm") lowest = i;
    }
    if (lowest < 0) {
      this.#injected.fill(false);
      this.#hasB = false;
      return;
    }
    let g: Tensor | null = top;
    for (let i = this.steps.length - 1; i >= lowest; i--) {
      const { layer, kind } = this.steps[i];
      if (g) {
        // A batchnorm's backward in eval mode accumulates dγ = Σ g x̂ and dβ = Σ g, as wanted.
        g = layer.backward(g);
      }
      if (kind === "curved" && this.#injected[i]) {
        const acc = this.#inject[i]!;
        // g, when set, is the activation's own backward buffer: adding in place is safe.
        if (g) axpy(this.rt, 1, acc, g);
        else g = acc;
      }
    }
    this.#injected.fill(false);
    this.#hasB = false;
  }

  /** Frees the chain's scratch tensors (not the model's). */
  dispose(): void {
    for (const t of [...this.#bnCopy, ...this.#inject]) t?.dispose();
    this.#bnCopy.fill(null);
    this.#inject.fill(null);
    this.#b = [];
  }
}

/** `slot` when it has `shape`, else a fresh tensor (the old one disposed). */
export function reuse(
  rt: Runtime,
  slot: Tensor | null,
  shape: readonly number[],
  name: string,
): Tensor {
  if (slot && !slot.disposed && slot.shape.join() === shape.join()) return slot;
  slot?.dispose();
  return rt.empty(shape, "f32", name);
}

/** Product of a shape's entries. */
export function sizeOfShape(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
