/**
 * Weight normalization (Salimans & Kingma 2016, "Weight Normalization: A Simple
 * Reparameterization to Accelerate Training of Deep Neural Networks") of a Linear or Conv2d
 * layer, with `torch.nn.utils.weight_norm(module, name="weight", dim=0)` semantics: the weight is
 * `w = g · v / ‖v‖` per output unit, the trained parameters are `weight_g` (O, 1) or
 * (O, 1, 1, 1) and `weight_v` (like the weight), and the `state_dict` holds `bias`, `weight_g`,
 * `weight_v` in that order, as PyTorch's does.
 *
 * The wrapped layer does the work: `forward` first writes `w` into its weight
 * (shaders/weightnorm.wgsl), its backward (or, in the Jacobian recipe, its `dW += b ⊗ r`)
 * accumulates into its weight gradient, which is then folded into `dg` and `dv` and cleared. The
 * input Jacobian is `w` itself, constant in the input: nothing to inject.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import type { Linear } from "./linear.ts";
import type { Conv2d } from "./conv2d.ts";
import src from "../../shaders/weightnorm.wgsl" with { type: "text" };

const WEIGHT: Kernel = { name: "weightnorm.weight", code: src, entry: "weight_main" };
const FOLD: Kernel = { name: "weightnorm.fold", code: src, entry: "fold_main" };

/**
 * A weight-normalized Linear or Conv2d. Build the inner layer with the module path the wrapper
 * should have; its bias stays its own, its weight becomes derived.
 * @example
 * ```ts
 * const fc = new WeightNorm(rt, new Linear(rt, "fc1", 784, 100));
 * const y = fc.forward(x); // params: fc1.bias, fc1.weight_g (100, 1), fc1.weight_v (100, 784)
 * ```
 */
export class WeightNorm implements Layer {
  readonly name: string;
  /** (O, 1, ...) per-unit scale g. */
  readonly weightG: Tensor;
  /** Like the wrapped weight: the direction v. */
  readonly weightV: Tensor;
  readonly dWeightG: Tensor;
  readonly dWeightV: Tensor;
  #rows: number;
  #k: number;

  /**
   * In the Jacobian recipe: the wrapped layer's role (its input gradient going down, and
   * `dW += b ⊗ r`), the weight term then folded into `dg` and `dv`.
   */
  readonly jacobian: JacobianRole = {
    vjp: (b) => this.inner.inputGrad(b),
    tangent: (b, r) => {
      this.inner.weightGrad(b, r, { bias: false });
      this.#fold();
      return null;
    },
  };

  /**
   * @param rt runtime
   * @param inner the Linear or Conv2d to reparametrize (owned by the wrapper from now on); its
   *   current weight gives the initial v and g = ‖v‖ per output unit, as PyTorch does
   */
  constructor(readonly rt: Backend, readonly inner: Linear | Conv2d) {
    this.name = inner.name;
    const shape = inner.weight.shape;
    this.#rows = shape[0];
    this.#k = inner.weight.size / shape[0];
    const n = this.name ? `${this.name}.` : "";
    const gShape = [shape[0], ...shape.slice(1).map(() => 1)];
    this.weightV = rt.empty(shape, "f32", `${n}weight_v`);
    rt.copy(inner.weight, this.weightV);
    this.weightG = rt.empty(gShape, "f32", `${n}weight_g`);
    this.dWeightG = rt.zeros(gShape, "f32", `${n}weight_g.grad`);
    this.dWeightV = rt.zeros(shape, "f32", `${n}weight_v.grad`);
    this.resetGain();
    rt.fill0(inner.dWeight);
  }

  /** "fc1 (weight-normalized Linear 784->100)" */
  describe(): string {
    const d = this.inner.describe();
    const at = d.indexOf("(");
    return at < 0
      ? `${d} (weight-normalized)`
      : `${d.slice(0, at + 1)}weight-normalized ${d.slice(at + 1)}`;
  }

  /** Sets g = ‖v‖ per output unit (so that w = v), PyTorch's initialization of `weight_g`. */
  resetGain(): void {
    // Folding the "gradient" dW = v with g = 1 puts c = Σ v·v / ‖v‖ = ‖v‖ into dg (and 0 into
    // dv): the row norms without a kernel of their own. Clears every gradient it used.
    this.rt.fill0(this.dWeightG);
    this.rt.copy(this.weightV, this.inner.dWeight);
    this.#dispatch(FOLD, this.inner.dWeight, this.dWeightG, this.dWeightV, true);
    this.rt.copy(this.dWeightG, this.weightG);
    this.rt.fill0(this.dWeightG);
    this.rt.fill0(this.dWeightV);
  }

  #dispatch(kernel: Kernel, w: Tensor, dg: Tensor, dv: Tensor, unitG = false): void {
    const g = unitG ? this.#ones() : this.weightG;
    this.rt.dispatch(kernel, {
      bindings: [g, this.weightV, w, dg, dv],
      params: { rows: this.#rows, k: this.#k },
      workgroups: [this.#rows],
    });
  }

  #onesT: Tensor | null = null;
  #ones(): Tensor {
    return this.#onesT ??= this.rt.upload(new Float32Array(this.#rows).fill(1), [this.#rows]);
  }

  #fold(): void {
    this.#dispatch(FOLD, this.inner.dWeight, this.dWeightG, this.dWeightV);
  }

  get training(): boolean {
    return this.inner.training;
  }

  set training(on: boolean) {
    this.inner.training = on;
  }

  outputShape(inputShape: readonly number[]): number[] {
    return this.inner.outputShape(inputShape);
  }

  /** Writes w = g v / ‖v‖ into the wrapped weight, then its forward. */
  forward(x: Tensor): Tensor {
    this.#dispatch(WEIGHT, this.inner.weight, this.rt.placeholder(0), this.rt.placeholder(1));
    return this.inner.forward(x);
  }

  /** @returns layer-owned dx; accumulates weight_g, weight_v and bias grads */
  backward(dy: Tensor): Tensor {
    const dx = this.inner.backward(dy);
    this.#fold();
    return dx;
  }

  /** `backward` without the input gradient. */
  paramGrad(dy: Tensor): void {
    this.inner.paramGrad(dy);
    this.#fold();
  }

  /** The input gradient alone (no parameter gradients). */
  inputGrad(dy: Tensor): Tensor {
    return this.inner.inputGrad(dy);
  }

  jvp(tx: Tensor): Tensor {
    return this.inner.jvp(tx);
  }

  /** `bias` (when the layer has one), `weight_g`, `weight_v`: PyTorch's state_dict order. */
  params(): Param[] {
    const n = this.name ? `${this.name}.` : "";
    const ps: Param[] = this.inner.params().filter((p) => p.kind === "bias");
    ps.push(
      {
        name: `${n}weight_g`,
        value: this.weightG,
        grad: this.dWeightG,
        kind: "weight",
        scale: true,
      },
      { name: `${n}weight_v`, value: this.weightV, grad: this.dWeightV, kind: "weight" },
    );
    return ps;
  }

  dispose(): void {
    this.inner.dispose();
    for (const t of [this.weightG, this.weightV, this.dWeightG, this.dWeightV, this.#onesT]) {
      t?.dispose();
    }
  }
}
