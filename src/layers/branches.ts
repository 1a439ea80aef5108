/**
 * `Branches`: parallel paths over one input whose outputs are added, `y = Σ_j branch_j(x)` —
 * the merge of a residual block (He et al. 2016: main path plus shortcut, an empty branch being
 * the identity). forward and jvp run every branch and add the results; backward sends the
 * output gradient down every branch and adds what arrives at the input.
 *
 * In the Jacobian recipe it is a branch point ({@linkcode JacobianRole.branches}): the chain of
 * src/regularizers/_chain.ts runs its passes down each branch (`Aᵀ b = Σ_j A_jᵀ b`,
 * `A r = Σ_j A_j r`), and since `A = Σ_j A_j`, each branch's layers take their usual part.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { binary } from "../ops/elementwise.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import type { Sequential } from "./sequential.ts";
import { checkTensor, reuse, sameShape } from "./_util.ts";

/**
 * The sum of parallel branches, each a {@linkcode Sequential} (an empty one is the identity).
 * Every branch must map the input to the same shape.
 * @example
 * ```ts
 * const merge = new Branches(rt, "block", [
 *   new Sequential(rt, "block.main", [conv1, bn1, relu, conv2, bn2]),
 *   new Sequential(rt, "block.skip", []), // identity
 * ]);
 * const y = merge.forward(x); // main(x) + x, owned by `merge`
 * ```
 */
export class Branches implements Layer {
  readonly branches: readonly Sequential[];
  /** In the Jacobian recipe: a branch point over its branches. */
  readonly jacobian: JacobianRole;
  #training = true;
  #inputShape: number[] | null = null;
  #y: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;
  #dxGrad: Tensor | null = null;

  /**
   * @param rt runtime
   * @param name module path (for messages; the branches' layers carry their own full names)
   * @param branches at least one; each maps the input to the output shape
   */
  constructor(readonly rt: Backend, readonly name: string, branches: readonly Sequential[]) {
    if (branches.length === 0) throw new Error(`${this.describe()}: needs at least one branch`);
    this.branches = [...branches];
    this.jacobian = { branches: this.branches };
  }

  /** "layer1.0 (Branches of 2)" */
  describe(): string {
    return `${this.name || "branches"} (Branches of ${this.branches?.length ?? 0})`;
  }

  /** True in training mode; setting it sets every branch. */
  get training(): boolean {
    return this.#training;
  }

  set training(on: boolean) {
    this.#training = on;
    for (const b of this.branches) b.training = on;
  }

  /** The common output shape of the branches; throws naming the branches when they differ. */
  outputShape(inputShape: readonly number[]): number[] {
    const shapes = this.branches.map((b) => b.outputShape(inputShape));
    for (const [i, s] of shapes.entries()) {
      if (!sameShape(s, shapes[0])) {
        throw new Error(
          `${this.describe()}: branch ${i} gives ${fmtShape(s)} but branch 0 gives ${
            fmtShape(shapes[0])
          } for input ${fmtShape(inputShape)}`,
        );
      }
    }
    return shapes[0];
  }

  /** `out ← Σ parts` (a part may be the input itself, for the identity branch). */
  #sum(parts: Tensor[], slot: Tensor | null, what: string): Tensor {
    const out = reuse(this.rt, slot, parts[0].shape, `${this.name}.${what}`);
    if (parts.length === 1) this.rt.copy(parts[0], out);
    else binary(this.rt, "add", parts[0], parts[1], { out });
    for (let i = 2; i < parts.length; i++) binary(this.rt, "add", out, parts[i], { out });
    return out;
  }

  /** @param x (B, ...) f32; @returns layer-owned `Σ_j branch_j(x)` */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    this.outputShape(x.shape);
    const parts = this.branches.map((b) => b.forward(x));
    this.#inputShape = [...x.shape];
    return this.#y = this.#sum(parts, this.#y, "out");
  }

  #check(what: string, t: Tensor): void {
    if (!this.#inputShape) throw new Error(`${this.describe()}: ${what}() before forward()`);
    checkTensor(this.describe(), t, what === "jvp" ? "tangent" : "gradient");
  }

  /** @param dy like the output; @returns layer-owned `Σ_j A_jᵀ dy`; accumulates every grad */
  backward(dy: Tensor): Tensor {
    this.#check("backward", dy);
    return this.#dx = this.#sum(this.branches.map((b) => b.backward(dy)), this.#dx, "dx");
  }

  /**
   * The input gradient without touching parameter gradients ({@linkcode Sequential.inputGrad}
   * down every branch).
   * @param dy like the output
   * @returns layer-owned input gradient (not the buffer `backward` returns)
   */
  inputGrad(dy: Tensor): Tensor {
    this.#check("inputGrad", dy);
    const parts = this.branches.map((b) => b.inputGrad(dy));
    return this.#dxGrad = this.#sum(parts, this.#dxGrad, "input_grad");
  }

  /** @param tx like the input; @returns layer-owned `Σ_j A_j tx` */
  jvp(tx: Tensor): Tensor {
    this.#check("jvp", tx);
    if (!sameShape(tx.shape, this.#inputShape!)) {
      throw new Error(
        `${this.describe()}: tangent ${fmtShape(tx.shape)} does not match the input ${
          fmtShape(this.#inputShape!)
        } of the last forward`,
      );
    }
    return this.#ty = this.#sum(this.branches.map((b) => b.jvp(tx)), this.#ty, "jvp");
  }

  /** Every branch's parameters, branch by branch. */
  params(): Param[] {
    return this.branches.flatMap((b) => b.params());
  }

  /** Frees every branch and the layer's own buffers. */
  dispose(): void {
    for (const b of this.branches) b.dispose();
    for (const t of [this.#y, this.#dx, this.#ty, this.#dxGrad]) t?.dispose();
    this.#y =
      this.#dx =
      this.#ty =
      this.#dxGrad =
        null;
    this.#inputShape = null;
  }
}
