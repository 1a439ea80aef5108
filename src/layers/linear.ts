/**
 * `Linear`: `torch.nn.Linear(in, out, bias)`, `y = x Wᵀ + b` with `weight` (out, in) and `bias`
 * (out,), on the tiled GEMM of src/ops/matmul.ts.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { matmul } from "../ops/matmul.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import {
  cachedInput,
  channelSum,
  checkBatch,
  checkGradShape,
  checkTensor,
  reuse,
} from "./_util.ts";

/** Options of {@linkcode Linear}. */
export interface LinearOptions {
  /** Learn an additive bias. Default true. */
  bias?: boolean;
}

/**
 * A fully connected layer. Input (B, in) or (B, ..., in): leading dimensions are treated as
 * batch, as in PyTorch. Parameters are created zero-filled, each with a `grad`.
 *
 * - forward: `y = x Wᵀ + b`;
 * - backward: `dx = dy W`, `W.grad += dyᵀ x`, `b.grad += Σ_rows dy`;
 * - jvp: `tx Wᵀ` (no bias).
 */
export class Linear implements Layer {
  training = true;
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly dWeight: Tensor;
  readonly dBias: Tensor | null;
  #input: Tensor | null = null;
  #inputShape: number[] | null = null;
  #y: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;

  /**
   * @param rt runtime
   * @param name module path ("fc1", "classifier.2")
   * @param inFeatures in
   * @param outFeatures out
   * @param options bias (default true)
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    for (const [what, v] of [["inFeatures", inFeatures], ["outFeatures", outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new Error(
          `${name || "linear"} (Linear): ${what} must be a positive integer, got ${v}`,
        );
      }
    }
    const n = name ? `${name}.` : "";
    this.weight = rt.zeros([outFeatures, inFeatures], "f32", `${n}weight`);
    this.dWeight = rt.zeros([outFeatures, inFeatures], "f32", `${n}weight.grad`);
    const hasBias = options.bias ?? true;
    this.bias = hasBias ? rt.zeros([outFeatures], "f32", `${n}bias`) : null;
    this.dBias = hasBias ? rt.zeros([outFeatures], "f32", `${n}bias.grad`) : null;
  }

  /** "fc1 (Linear 400->120)" */
  describe(): string {
    return `${this.name || "linear"} (Linear ${this.inFeatures}->${this.outFeatures})`;
  }

  /** (B, ..., in) -> (B, ..., out). */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 2 || inputShape[inputShape.length - 1] !== this.inFeatures) {
      throw new Error(
        `${this.describe()}: expected input [B,${this.inFeatures}], got ${fmtShape(inputShape)}`,
      );
    }
    checkBatch(this.describe(), inputShape);
    return [...inputShape.slice(0, -1), this.outFeatures];
  }

  #rows(shape: readonly number[]): number {
    return shape.slice(0, -1).reduce((a, b) => a * b, 1);
  }

  /** @param x (B, in) f32; @returns layer-owned (B, out) */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    const rows = this.#rows(x.shape);
    this.#y = reuse(this.rt, this.#y, shape, `${this.name}.out`);
    matmul(this.rt, x.reshape([rows, this.inFeatures]), this.weight, {
      transB: true,
      bias: this.bias ?? undefined,
      out: this.#y.reshape([rows, this.outFeatures]),
    });
    this.#input = x;
    this.#inputShape = [...x.shape];
    return this.#y;
  }

  #cachedInput(what: string): Tensor {
    return cachedInput(this.describe(), this.#inputShape ? this.#input : null, what);
  }

  /** @param dy (B, out) f32; @returns layer-owned dx (B, in); accumulates weight.grad, bias.grad */
  backward(dy: Tensor): Tensor {
    const x = this.#cachedInput("backward");
    const dx = this.inputGrad(dy);
    this.weightGrad(dy, x);
    return dx;
  }

  /**
   * `backward` without the input gradient: accumulates dW and db at the cached input. For the
   * first layer of a model in training, whose input gradient nobody reads.
   * @param dy gradient of the output
   */
  paramGrad(dy: Tensor): void {
    this.weightGrad(dy, this.#cachedInput("paramGrad"));
  }

  /**
   * The input gradient alone: `dx = dy W` (no parameter gradients).
   * @param dy (B, out) f32
   * @returns layer-owned (B, in), the same buffer `backward` returns
   */
  inputGrad(dy: Tensor): Tensor {
    this.#cachedInput("inputGrad");
    const inputShape = this.#inputShape!;
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, this.outputShape(inputShape));
    const rows = this.#rows(inputShape);
    this.#dx = reuse(this.rt, this.#dx, inputShape, `${this.name}.dx`);
    matmul(this.rt, dy.reshape([rows, this.outFeatures]), this.weight, {
      out: this.#dx.reshape([rows, this.inFeatures]),
    });
    return this.#dx;
  }

  /**
   * Accumulates `weight.grad += dyᵀ x` and `bias.grad += Σ_rows dy` for any `x` of the input's
   * shape (the forward input, or a tangent: the `b ⊗ r` term of DESIGN.md's Jacobian recipe).
   * @param dy (B, out) f32
   * @param x (B, in) f32
   * @param opts `bias: false` leaves bias.grad alone
   */
  weightGrad(dy: Tensor, x: Tensor, opts: { bias?: boolean } = {}): void {
    checkTensor(this.describe(), x, "input");
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, this.outputShape(x.shape));
    const rows = this.#rows(x.shape);
    const dy2 = dy.reshape([rows, this.outFeatures]);
    matmul(this.rt, dy2, x.reshape([rows, this.inFeatures]), {
      transA: true,
      beta: 1,
      out: this.dWeight,
    });
    if (this.dBias && (opts.bias ?? true)) {
      channelSum(this.rt, dy2, rows, this.outFeatures, 1, this.dBias, 1);
    }
  }

  /**
   * In the Jacobian recipe: the input gradient alone going down, and `dW += b ⊗ r` (the
   * weight-gradient kernel fed the backward signal and the tangent, no bias term: the bias does
   * not enter the Jacobian).
   */
  readonly jacobian: JacobianRole = {
    vjp: (b) => this.inputGrad(b),
    tangent: (b, r) => {
      this.weightGrad(b, r, { bias: false });
      return null;
    },
  };

  /** @param tx (B, in) tangent; @returns layer-owned `tx Wᵀ` */
  jvp(tx: Tensor): Tensor {
    checkTensor(this.describe(), tx, "tangent");
    const shape = this.outputShape(tx.shape);
    const rows = this.#rows(tx.shape);
    this.#ty = reuse(this.rt, this.#ty, shape, `${this.name}.jvp`);
    matmul(this.rt, tx.reshape([rows, this.inFeatures]), this.weight, {
      transB: true,
      out: this.#ty.reshape([rows, this.outFeatures]),
    });
    return this.#ty;
  }

  /** `weight` (out, in) and `bias` (out,). */
  params(): Param[] {
    const n = this.name ? `${this.name}.` : "";
    const ps: Param[] = [{
      name: `${n}weight`,
      value: this.weight,
      grad: this.dWeight,
      kind: "weight",
    }];
    if (this.bias) ps.push({ name: `${n}bias`, value: this.bias, grad: this.dBias!, kind: "bias" });
    return ps;
  }

  dispose(): void {
    for (
      const t of [this.weight, this.bias, this.dWeight, this.dBias, this.#y, this.#dx, this.#ty]
    ) t?.dispose();
    this.#input = null;
  }
}
