/**
 * Elementwise activation layers with PyTorch 1.13 semantics: `ReLU`, `LeakyReLU` (slope 0.01),
 * `Tanh`, `Sigmoid`, `Softplus` (beta 1, threshold 20). The Jacobian is diagonal, so `backward`
 * and `jvp` both multiply by σ'(a) at the cached point, and {@linkcode Activation.secondDerivative}
 * gives σ''(a) (times optional factors) for the Jacobian regularizer (DESIGN.md step 5:
 * inject `σ''(a) ⊙ b ⊙ r`). ReLU and LeakyReLU have σ'' = 0 (`hasCurvature` false).
 *
 * Derivatives at kinks follow PyTorch: ReLU'(0) = 0, LeakyReLU'(0) = slope; Softplus is the
 * identity (σ' = 1, σ'' = 0) where `beta·a > threshold`.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import { binary, type BinaryOp, unary, type UnaryOp } from "../ops/elementwise.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import {
  cachedInput,
  checkBatch,
  checkGradShape,
  checkTensor,
  reuse,
  secondDerivative,
} from "./_util.ts";

/** The activation functions. */
export type ActivationKind = "relu" | "leaky_relu" | "tanh" | "sigmoid" | "softplus";

/** Options of {@linkcode Activation}. */
export interface ActivationOptions {
  /** LeakyReLU negative slope. Default 0.01. */
  slope?: number;
  /** Softplus beta. Default 1. */
  beta?: number;
  /** Softplus threshold above which it is linear. Default 20. */
  threshold?: number;
}

const SPEC: Record<
  ActivationKind,
  { fwd: UnaryOp; bwd: BinaryOp; from: "input" | "output"; act2: 0 | 1 | 2 | 3; title: string }
> = {
  relu: { fwd: "relu", bwd: "relu_backward", from: "output", act2: 0, title: "ReLU" },
  leaky_relu: {
    fwd: "leaky_relu",
    bwd: "leaky_relu_backward",
    from: "input",
    act2: 0,
    title: "LeakyReLU",
  },
  tanh: { fwd: "tanh", bwd: "tanh_backward", from: "output", act2: 1, title: "Tanh" },
  sigmoid: { fwd: "sigmoid", bwd: "sigmoid_backward", from: "output", act2: 2, title: "Sigmoid" },
  softplus: {
    fwd: "softplus",
    bwd: "softplus_backward",
    from: "input",
    act2: 3,
    title: "Softplus",
  },
};

/**
 * An elementwise activation layer. σ' is computed from the cached output (ReLU, Tanh, Sigmoid)
 * or the cached input (LeakyReLU, Softplus: the caller must keep the input alive until
 * backward/jvp, as for every layer).
 */
export class Activation implements Layer {
  training = true;
  /** False for ReLU and LeakyReLU, whose σ'' is 0 everywhere (nothing to inject). */
  readonly hasCurvature: boolean;
  /**
   * In the Jacobian recipe: the injection `σ''(a) ⊙ b ⊙ r` at the input (its σ'(a) depends on
   * the parameters below through the pre-activation `a`); nothing for ReLU and LeakyReLU.
   */
  readonly jacobian: JacobianRole;
  readonly alpha: number;
  readonly beta: number;
  #input: Tensor | null = null;
  #y: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;
  #d2: Tensor | null = null;

  /**
   * @param rt runtime
   * @param name module path ("act1", "features.1")
   * @param kind the function
   * @param options slope (leaky_relu), beta and threshold (softplus)
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    readonly kind: ActivationKind,
    options: ActivationOptions = {},
  ) {
    if (!SPEC[kind]) throw new Error(`${name || "activation"}: unknown activation '${kind}'`);
    this.hasCurvature = SPEC[kind].act2 !== 0;
    this.jacobian = this.hasCurvature ? { tangent: (b, r) => this.secondDerivative(b, r) } : {};
    this.alpha = kind === "leaky_relu"
      ? options.slope ?? 0.01
      : kind === "softplus"
      ? options.beta ?? 1
      : 0;
    this.beta = kind === "softplus" ? options.threshold ?? 20 : 0;
    if (
      !Number.isFinite(this.alpha) || !Number.isFinite(this.beta) ||
      (kind === "softplus" && this.alpha <= 0)
    ) {
      throw new Error(`${this.describe()}: invalid parameters ${JSON.stringify(options)}`);
    }
  }

  /** "act1 (Tanh)" */
  describe(): string {
    return `${this.name || this.kind} (${SPEC[this.kind].title})`;
  }

  /** Same shape as the input. */
  outputShape(inputShape: readonly number[]): number[] {
    checkBatch(this.describe(), inputShape);
    return [...inputShape];
  }

  /** @param x (B, ...) f32; @returns layer-owned σ(x) */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    this.#y = reuse(this.rt, this.#y, shape, `${this.name}.out`);
    unary(this.rt, SPEC[this.kind].fwd, x, { out: this.#y, alpha: this.alpha, beta: this.beta });
    this.#input = x;
    return this.#y;
  }

  /**
   * The kind when σ' and σ'' are computed from the output alone (ReLU, Tanh, Sigmoid), so that
   * the layer below may compute σ in its own output kernel ({@linkcode Activation.forwardWith});
   * null for LeakyReLU and Softplus, which need the pre-activation.
   */
  get outputDerivedKind(): ActivationKind | null {
    return SPEC[this.kind].from === "output" ? this.kind : null;
  }

  /**
   * The forward of a fused pair: `write(out)` stores σ(a) into the layer's output buffer (the
   * layer below computes `a` and σ in one kernel, e.g. Conv2d.forwardFused), and the layer
   * caches it as its forward would. Only for an {@linkcode Activation.outputDerivedKind}: no
   * pre-activation is kept.
   * @param shape the output shape (that of `a`)
   * @param write records the kernel that fills `out`
   * @returns layer-owned σ(a)
   */
  forwardWith(shape: readonly number[], write: (out: Tensor) => void): Tensor {
    if (!this.outputDerivedKind) {
      throw new Error(`${this.describe()}: its derivatives need the pre-activation; not fusable`);
    }
    this.#y = reuse(this.rt, this.#y, this.outputShape(shape), `${this.name}.out`);
    write(this.#y);
    // σ' comes from the output; the cached "input" only marks the forward as done.
    this.#input = this.#y;
    return this.#y;
  }

  /** The tensor σ' and σ'' are computed from, checked alive. */
  #point(what: string): Tensor {
    const y = this.#y;
    const x = cachedInput(this.describe(), y ? this.#input : null, what);
    return SPEC[this.kind].from === "output" ? y! : x;
  }

  #diag(what: string, v: Tensor, slot: Tensor | null): Tensor {
    const at = this.#point(what);
    checkTensor(this.describe(), v, what === "jvp" ? "tangent" : "gradient");
    checkGradShape(this.describe(), v, at.shape, what === "jvp" ? "tangent" : "gradient");
    const out = reuse(this.rt, slot, at.shape, `${this.name}.${what}`);
    binary(this.rt, SPEC[this.kind].bwd, at, v, { out, alpha: this.alpha, beta: this.beta });
    return out;
  }

  /** @param dy f32 like the output; @returns layer-owned `σ'(a) ⊙ dy` */
  backward(dy: Tensor): Tensor {
    return this.#dx = this.#diag("backward", dy, this.#dx);
  }

  /** @param tx f32 like the input; @returns layer-owned `σ'(a) ⊙ tx` */
  jvp(tx: Tensor): Tensor {
    return this.#ty = this.#diag("jvp", tx, this.#ty);
  }

  /**
   * `σ''(a) ⊙ f₁ ⊙ f₂` at the cached point `a` of the last forward, with zero, one or two factors
   * of the same shape (the Jacobian regularizer passes the backward signal and the tangent).
   * Tanh: `-2 t (1 - t²)`; Sigmoid: `s (1 - s)(1 - 2s)`; Softplus: `β s (1 - s)`, `s = sigmoid(βa)`
   * (0 where `βa > threshold`); ReLU, LeakyReLU: 0.
   * @param factors up to two f32 tensors shaped like the activation
   * @returns layer-owned tensor shaped like the activation (overwritten by the next call)
   */
  secondDerivative(...factors: Tensor[]): Tensor {
    const at = this.#point("secondDerivative");
    if (factors.length > 2) {
      throw new Error(`${this.describe()}: secondDerivative takes at most 2 factors`);
    }
    for (const f of factors) {
      checkTensor(this.describe(), f, "factor");
      checkGradShape(this.describe(), f, at.shape, "factor");
    }
    this.#d2 = reuse(this.rt, this.#d2, at.shape, `${this.name}.d2`);
    const act = SPEC[this.kind].act2;
    if (act === 0) this.rt.fill0(this.#d2);
    else secondDerivative(this.rt, act, at, factors, this.#d2, this.alpha, this.beta);
    return this.#d2;
  }

  /** None. */
  params(): Param[] {
    return [];
  }

  dispose(): void {
    for (const t of [this.#y, this.#dx, this.#ty, this.#d2]) t?.dispose();
    this.#input = null;
  }
}

/** `torch.nn.ReLU()`. */
export class ReLU extends Activation {
  /** @param rt runtime @param name module path */
  constructor(rt: Backend, name: string) {
    super(rt, name, "relu");
  }
}

/** `torch.nn.LeakyReLU(negative_slope = 0.01)`. */
export class LeakyReLU extends Activation {
  /** @param rt runtime @param name module path @param slope negative slope (default 0.01) */
  constructor(rt: Backend, name: string, slope = 0.01) {
    super(rt, name, "leaky_relu", { slope });
  }
}

/** `torch.nn.Tanh()`. */
export class Tanh extends Activation {
  /** @param rt runtime @param name module path */
  constructor(rt: Backend, name: string) {
    super(rt, name, "tanh");
  }
}

/** `torch.nn.Sigmoid()`. */
export class Sigmoid extends Activation {
  /** @param rt runtime @param name module path */
  constructor(rt: Backend, name: string) {
    super(rt, name, "sigmoid");
  }
}

/** `torch.nn.Softplus(beta = 1, threshold = 20)`. */
export class Softplus extends Activation {
  /** @param rt runtime @param name module path @param options beta, threshold */
  constructor(rt: Backend, name: string, options: { beta?: number; threshold?: number } = {}) {
    super(rt, name, "softplus", options);
  }
}
