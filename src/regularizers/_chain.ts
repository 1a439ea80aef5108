/**
 * Shared machinery of the penalties on the function (Jacobian, Jacobian determinant, input-gradient
 * norm): the exact parameter gradient of any differentiable function of Jacobian rows `u = Jᵀ v`,
 * by the recipe of DESIGN.md ("Jacobian regularization"; worked out in shared/jr_gradient_recipe.py)
 * over a model's cached forward pass, with no autograd engine. Each layer says how it takes part
 * through its {@linkcode JacobianRole} (`Layer.jacobian`, src/layers/layer.ts); the chain knows no
 * layer class:
 *
 * 1. {@linkcode LayerChain.vjp}: `b_L = v`, `b_{k-1} = A_kᵀ b_k` — the ordinary backward without
 *    touching parameter gradients (the role's `vjp`, else `backward`), keeping every backward
 *    signal `b_k`; returns `u = b_0`.
 * 2. {@linkcode LayerChain.tangent}: `r_0 = ∂R/∂u`, `r_k = A_k r_{k-1}` (the layers' `jvp`), and on
 *    the way the roles' terms that need both signals (`tangent(b_k, r_{k-1})`): parameter terms
 *    added in place (`∂R/∂W_k += b_k ⊗ r_{k-1}` for Linear/Conv2d, `∂R/∂γ += Σ b_k r_{k-1} / σ`
 *    for an eval-mode BatchNorm), and injections at a layer's input (`σ''(a) ⊙ b_k ⊙ r_{k-1}` at
 *    the pre-activation `a` of every curved activation: Tanh, Sigmoid, Softplus; and the
 *    second-order term of LayerNorm, GroupNorm and training-mode BatchNorm, whose Jacobian
 *    depends on their input: see shaders/layernorm.wgsl and batchnorm_jr.wgsl), summed over all
 *    calls. A training-mode BatchNorm couples the samples of the batch: every pass runs on the
 *    whole batch, so `u` is the batch's `∂(Σ_i v_i·z_i)/∂x`, as autograd computes it.
 * 3. {@linkcode LayerChain.backpropInjections}: one ordinary backward (accumulating parameter
 *    gradients) that starts from an optional gradient at the output and picks up the summed
 *    injections on its way down, i.e. the dependence of `A_k` on the primal activations.
 *
 * Branch points (`role.branches`, a residual block's main path plus shortcut, `y = Σ_j f_j(x)`):
 * every pass runs down each branch and adds what arrives at the shared input (`Aᵀ b = Σ_j A_jᵀ b`,
 * `A r = Σ_j A_j r`, and the final backward likewise), each branch a chain of its own.
 *
 * Why this is exact: `u` is linear in each `A_k`, so `∂R/∂A_k = b_k r_{k-1}ᵀ` (the adjoint of
 * `u` with respect to `b_{k-1}` is the tangent `r_{k-1}`); for `A = diag(σ'(a))` that is
 * `b ⊙ r` on the diagonal, and `σ'(a)` depends on the parameters below through `a`.
 *
 * Layer-owned outputs are overwritten by the next call of the same pass on the same layer: the
 * chain calls each layer at most once per pass and keeps the references (a role's `vjp` writes
 * a buffer of its own, not the one `jvp` returns: BatchNorm's VJP is its jvp kernel).
 *
 * Private to src/regularizers.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Tensor } from "../backend.ts";
import type { JacobianRole, Layer } from "../layers/layer.ts";
import { axpy } from "../ops/elementwise.ts";
import { randomNormal } from "../ops/random.ts";
import jacobianSrc from "../../shaders/jacobian.wgsl" with { type: "text" };

const k = (entry: string): Kernel => ({ name: `jacobian.${entry}`, code: jacobianSrc, entry });
/** Kernels of shaders/jacobian.wgsl. */
export const KERNELS = {
  normalizeRows: k("normalize_rows_main"),
  oneHot: k("one_hot_main"),
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
  rt: Backend,
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
export function oneHot(rt: Backend, out: Tensor, c: number, mu: number): void {
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
  rt: Backend,
  out: Tensor,
  c: number,
  opts: { seed: number; step: number; stream: string },
): void {
  const seed = ((opts.seed % 4294967296) + 4294967296) % 4294967296;
  randomNormal(rt, out.shape, { seed: [seed, fnv1a(opts.stream)], counter: opts.step, out });
  const rows = out.size / c;
  launch(rt, KERNELS.normalizeRows, [], [out], { n: rows, c }, rt.grid(rows, 64));
}

/** A leaf layer of the chain and its part in the recipe. */
interface Leaf {
  layer: Layer;
  role: JacobianRole;
  /** It has trained parameters: the final backward must reach it. */
  trained: boolean;
}

/**
 * A branch point (`role.branches`): `y = Σ_j branch_j(x)`. Each pass runs down every branch and
 * adds the results into a buffer of its own (never one of the branches': an identity branch
 * hands back its input, which belongs to someone else).
 */
interface Fork {
  layer: Layer;
  branches: Segment[];
  trained: boolean;
  /** Σ_j A_jᵀ b (the backward signal at the shared input), Σ_j A_j r, and the final backward. */
  sums: [Tensor | null, Tensor | null, Tensor | null];
}

type Step = Leaf | Fork;

const SUPPORTED = "Linear, Conv2d, activations, MaxPool2d, AvgPool2d, Dropout, Flatten, " +
  "Normalize, BatchNorm, LayerNorm, GroupNorm, weight-normalized Linear and " +
  "Conv2d, ResNet BasicBlock (Branches) and nested Sequential";

function flatten(op: string, layer: Layer, out: Step[], rt: Backend, leaves: Leaf[]): void {
  const role = layer.jacobian;
  if (!role) {
    const what = (layer as { describe?: () => string }).describe?.() ??
      `${layer.name || "layer"} (${layer.constructor.name})`;
    throw new Error(
      `${op}: cannot differentiate through ${what}; the Jacobian penalties support chains of ` +
        `${SUPPORTED} (a layer takes part by implementing Layer.jacobian)`,
    );
  }
  if (role.children) {
    for (const l of role.children) flatten(op, l, out, rt, leaves);
    return;
  }
  if (role.branches) {
    const branches = role.branches.map((l) => new Segment(rt, op, [l], leaves));
    out.push({
      layer,
      branches,
      trained: branches.some((b) => b.lowest >= 0),
      sums: [null, null, null],
    });
    return;
  }
  const leaf = { layer, role, trained: layer.params().some((p) => p.grad !== undefined) };
  leaves.push(leaf);
  out.push(leaf);
}

/**
 * A chain of steps `h_k = f_k(h_{k-1})`, each a leaf or a branch point whose branches are
 * segments themselves; the three passes of the recipe over it (see the module doc).
 */
class Segment {
  readonly steps: readonly Step[];
  /** Index of the lowest step with trained parameters; -1: none. */
  readonly lowest: number;
  /** b[k]: the backward signal at the output of step k (from the last `vjp`). */
  #b: Tensor[] = [];
  /** Summed injections at the input of each step (null: none yet). */
  #inject: (Tensor | null)[];
  #injected: boolean[];
  /**
   * The injection of a step's only call so far, in the role's own buffer (not copied: one
   * projection, the common case, needs no accumulator); moved into `#inject` before a second
   * call would overwrite it.
   */
  #held: (Tensor | null)[];

  constructor(readonly rt: Backend, readonly op: string, layers: readonly Layer[], leaves: Leaf[]) {
    const steps: Step[] = [];
    for (const l of layers) flatten(op, l, steps, rt, leaves);
    this.steps = steps;
    this.lowest = steps.findIndex((s) => s.trained);
    this.#inject = steps.map(() => null);
    this.#injected = steps.map(() => false);
    this.#held = steps.map(() => null);
  }

  /** `out ← Σ parts` into a fork's own buffer `fork.sums[slot]`; null when there are no parts. */
  #sum(fork: Fork, slot: 0 | 1 | 2, parts: Tensor[]): Tensor | null {
    if (parts.length === 0) return null;
    const out = fork.sums[slot] = reuse(
      this.rt,
      fork.sums[slot],
      parts[0].shape,
      `${this.op} fork`,
    );
    this.rt.copy(parts[0], out);
    for (let i = 1; i < parts.length; i++) axpy(this.rt, 1, parts[i], out);
    return out;
  }

  vjp(v: Tensor): Tensor {
    let g = v;
    for (let i = this.steps.length - 1; i >= 0; i--) {
      const step = this.steps[i];
      this.#b[i] = g;
      if ("branches" in step) {
        const gi = g;
        g = this.#sum(step, 0, step.branches.map((br) => br.vjp(gi)))!;
      } else g = step.role.vjp ? step.role.vjp(g) : step.layer.backward(g);
    }
    return g;
  }

  /** @returns the tangent at the output when `output`, else null (the last jvp is skipped) */
  tangent(r0: Tensor, output: boolean): Tensor | null {
    let r = r0;
    const last = this.steps.length - 1;
    for (let i = 0; i <= last; i++) {
      const step = this.steps[i];
      const need = i < last || output;
      if ("branches" in step) {
        const ri = r;
        const parts = step.branches.map((br) => br.tangent(ri, need));
        if (need) r = this.#sum(step, 1, parts as Tensor[])!;
        continue;
      }
      const held = this.#held[i];
      if (held && step.role.tangent) {
        this.rt.copy(held, this.#accumulator(i, held.shape));
        this.#injected[i] = true;
        this.#held[i] = null;
      }
      const s = step.role.tangent?.(this.#b[i], r) ?? null;
      if (s) {
        if (this.#injected[i]) axpy(this.rt, 1, s, this.#accumulator(i, s.shape));
        else this.#held[i] = s;
      }
      if (need) r = step.layer.jvp(r);
    }
    return output ? r : null;
  }

  /** The owned injection accumulator of step `i`, (re)allocated for `shape`. */
  #accumulator(i: number, shape: readonly number[]): Tensor {
    const acc = this.#inject[i];
    if (acc && !acc.disposed && acc.shape.join() === shape.join()) return acc;
    acc?.dispose();
    return this.#inject[i] = this.rt.empty(shape, "f32", `${this.op} injection`);
  }

  /**
   * One ordinary backward from `top` (or nothing), adding each step's summed injection at its
   * input; down to the lowest trained step, or to the input when `full`. Clears the injections.
   * @returns the gradient at the input when `full` (null: nothing arrived), else null
   */
  backprop(top: Tensor | null, full: boolean): Tensor | null {
    const stop = full ? 0 : this.lowest;
    let g: Tensor | null = top;
    if (stop >= 0) {
      for (let i = this.steps.length - 1; i >= stop; i--) {
        const step = this.steps[i];
        if ("branches" in step) {
          const gi = g;
          const parts = step.branches.map((br) => br.backprop(gi, true));
          g = this.#sum(step, 2, parts.filter((t): t is Tensor => t !== null));
          continue;
        }
        if (g && !full && i === stop) {
          // Nothing below reads the lowest trained layer's input gradient: where the layer can
          // skip it (`paramGrad` on Linear and Conv2d, as Sequential.backwardParams does), it
          // does; LeNet's conv1 input gradient is the costliest kernel of a JR step otherwise.
          const l = step.layer as Layer & { paramGrad?: (dy: Tensor) => void };
          if (typeof l.paramGrad === "function") {
            l.paramGrad(g);
            break;
          }
        }
        // A batchnorm's backward in eval mode accumulates dγ = Σ g x̂ and dβ = Σ g, as wanted.
        if (g) g = step.layer.backward(g);
        const acc = this.#held[i] ?? (this.#injected[i] ? this.#inject[i]! : null);
        if (acc) {
          // g, when set, is the layer's own backward buffer: adding in place is safe.
          if (g) axpy(this.rt, 1, acc, g);
          else g = acc;
        }
      }
    }
    this.#injected.fill(false);
    this.#held.fill(null);
    return full ? g : null;
  }

  dispose(): void {
    for (const t of this.#inject) t?.dispose();
    this.#inject.fill(null);
    this.#held.fill(null);
    this.#b = [];
    for (const step of this.steps) {
      if (!("branches" in step)) continue;
      for (const br of step.branches) br.dispose();
      for (const t of step.sums) t?.dispose();
      step.sums = [null, null, null];
    }
  }
}

/**
 * A model seen as a chain of leaf layers and branch points, with the three passes of the recipe
 * (see the module doc). Holds its scratch tensors between calls; `dispose()` frees them.
 */
export class LayerChain {
  #root: Segment;
  #leaves: Leaf[] = [];
  #hasB = false;

  /**
   * @param rt runtime
   * @param model the model (a Sequential, possibly nested, possibly with branch points) whose
   *   last forward is the point
   * @param op name for error messages ("jacobianPenalty")
   * @throws Error naming the layer for a layer without a Jacobian role, or one whose check
   *   refuses
   */
  constructor(readonly rt: Backend, readonly model: Layer, readonly op: string) {
    this.#root = new Segment(rt, op, [model], this.#leaves);
    if (this.#leaves.length === 0) throw new Error(`${op}: the model has no layers`);
    this.checkMode();
  }

  /** Throws, naming the layer, where a per-sample Jacobian is not defined (the roles' `check`). */
  checkMode(): void {
    for (const s of this.#leaves) s.role.check?.(this.op);
  }

  /**
   * Step 1: `u = Jᵀ v` at the last forward, keeping each layer's backward signal. No parameter
   * gradient changes.
   * @param v (B, C) f32 at the output (kept by reference: do not overwrite it before `tangent`)
   * @returns (B, ...) f32 shaped like the model input, owned by the chain's first layer (or `v`
   *   itself for a chain of identities); valid until the next `vjp` or `backpropInjections`
   */
  vjp(v: Tensor): Tensor {
    const u = this.#root.vjp(v);
    this.#hasB = true;
    return u;
  }

  /**
   * Step 2: the tangent pass from `r0 = ∂R/∂u`, adding each layer's terms that need both signals
   * (weight and BatchNorm γ gradients) and summing the injections for `backpropInjections`.
   * @param r0 (B, ...) f32 shaped like the model input
   * @param opts `output: true` also applies the last layer and returns the tangent at the output
   * @returns (B, C) tangent at the output (layer-owned) when asked, else null
   */
  tangent(r0: Tensor, opts: { output?: boolean } = {}): Tensor | null {
    if (!this.#hasB) throw new Error(`${this.op}: tangent() before vjp()`);
    return this.#root.tangent(r0, opts.output ?? false);
  }

  /**
   * Step 3: one ordinary backward that accumulates parameter gradients, starting from `top` at
   * the output (or nothing) and adding each layer's summed injection at its input. Runs only
   * down to the lowest layer with trained parameters, whose input gradient it skips where the
   * layer offers `paramGrad`; clears the injections. With `top` the data loss's gradient at the
   * logits, this one backward serves the loss and the penalty together (the training step's
   * shared backward: the `backward` hook of src/hooks/step.ts).
   * @param top optional (B, C) gradient at the output (not modified)
   */
  backpropInjections(top: Tensor | null = null): void {
    this.#root.backprop(top, false);
    this.#hasB = false;
  }

  /** Frees the chain's scratch tensors (not the model's). */
  dispose(): void {
    this.#root.dispose();
  }
}

/** `slot` when it has `shape`, else a fresh tensor (the old one disposed). */
export function reuse(
  rt: Backend,
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
