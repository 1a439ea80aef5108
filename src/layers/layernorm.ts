/**
 * `LayerNorm` (Ba, Kiros & Hinton 2016) and `GroupNorm` (Wu & He 2018) with PyTorch 1.13
 * semantics (`torch.nn.LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True)`,
 * `torch.nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`): each sample is
 * normalized on its own — over its trailing `normalized_shape` (LayerNorm) or over each group of
 * `C/G` channels and all positions (GroupNorm) — with the biased variance, then scaled and
 * shifted elementwise (LayerNorm: `weight` and `bias` shaped like `normalized_shape`) or per
 * channel (GroupNorm: `weight`, `bias` (C,)). Training and eval mode are the same.
 *
 * Unlike BatchNorm in training mode nothing couples the samples; the Jacobian penalties go
 * through both layers; the Jacobian `γ P(x)` depends on the input, and the layer's
 * {@linkcode JacobianRole} adds the second-order injection derived in shaders/layernorm.wgsl
 * (as the curved activations add `σ''(a) ⊙ b ⊙ r`).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { cachedInput, checkBatch, checkGradShape, checkTensor, reuse } from "./_util.ts";
import src from "../../shaders/layernorm.wgsl" with { type: "text" };

const k = (entry: string): Kernel => ({ name: `layernorm.${entry}`, code: src, entry });
const KERNELS = {
  stats: k("stats_main"),
  forward: k("forward_main"),
  rowSums: k("row_sums_main"),
  project: k("project_main"),
  inject: k("inject_main"),
  affineGrad: k("affine_grad_main"),
} as const;

/** How a layer's elements fall into rows and affine indices, for an input shape. */
interface Layout {
  /** Rows normalized independently, each of `m` contiguous values. */
  rows: number;
  m: number;
  /** Affine index of element i: `(i / affs) % affc`. */
  affc: number;
  affs: number;
}

/**
 * The shared machinery: rows of contiguous values normalized on their own, then an affine map.
 * Subclasses say how an input shape splits into rows and affine indices.
 */
abstract class RowNorm implements Layer {
  training = true;
  readonly eps: number;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly dWeight: Tensor | null;
  readonly dBias: Tensor | null;
  #input: Tensor | null = null;
  #layout: Layout | null = null;
  #stats: Tensor | null = null;
  #sums: Tensor | null = null;
  #y: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;
  #vjp: Tensor | null = null;
  #inj: Tensor | null = null;

  /**
   * In the Jacobian recipe: the VJP is the input-gradient half of backward (its own buffer); the
   * tangent terms are `dγ += Σ b ⊙ P r` and the injection `∇_x ⟨γ ⊙ b, P(x) r⟩` at the input
   * (shaders/layernorm.wgsl has the formula and its derivation).
   */
  readonly jacobian: JacobianRole = {
    vjp: (b) => this.#vjp = this.#project(b, this.#vjp, "vjp", true, false),
    tangent: (b, r) => this.#tangent(b, r),
  };

  /**
   * @param rt runtime
   * @param name module path
   * @param affineShape shape of weight and bias, or null for no affine map
   * @param eps added to the variance
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    affineShape: readonly number[] | null,
    eps: number,
  ) {
    if (!(eps > 0) || !Number.isFinite(eps)) {
      throw new Error(`${this.describe()}: eps must be a positive number, got ${eps}`);
    }
    this.eps = eps;
    const n = name ? `${name}.` : "";
    if (affineShape) {
      const size = affineShape.reduce((a, b) => a * b, 1);
      this.weight = rt.upload(new Float32Array(size).fill(1), affineShape, "f32", `${n}weight`);
      this.bias = rt.zeros(affineShape, "f32", `${n}bias`);
      this.dWeight = rt.zeros(affineShape, "f32", `${n}weight.grad`);
      this.dBias = rt.zeros(affineShape, "f32", `${n}bias.grad`);
    } else {this.weight =
        this.bias =
        this.dWeight =
        this.dBias =
          null;}
  }

  /** "ln1 (LayerNorm [8])" */
  abstract describe(): string;
  /** Rows and affine indices of an input shape; throws naming the layer on a mismatch. */
  protected abstract layout(shape: readonly number[]): Layout;

  /** Same shape as the input. */
  outputShape(inputShape: readonly number[]): number[] {
    checkBatch(this.describe(), inputShape);
    this.layout(inputShape);
    return [...inputShape];
  }

  #dispatch(
    kernel: Kernel,
    t: { u?: Tensor; v?: Tensor; out: Tensor },
    opts: { mode?: number; constants?: Record<string, number>; workgroups: number[] },
  ): void {
    const x = this.#input!, l = this.#layout!;
    const gamma = this.weight ?? this.rt.placeholder(0);
    this.rt.dispatch(kernel, {
      bindings: [
        x,
        t.u ?? x,
        t.v ?? x,
        gamma,
        this.bias ?? gamma,
        this.#stats!,
        this.#sums!,
        t.out,
      ],
      params: {
        rows: l.rows,
        m: l.m,
        affc: l.affc,
        affs: l.affs,
        eps: this.eps,
        mode: opts.mode ?? 0,
      },
      workgroups: opts.workgroups,
      constants: opts.constants,
    });
  }

  #rowGrid(rows = this.#layout!.rows): number[] {
    return rows <= 65535 ? [rows] : [65535, Math.ceil(rows / 65535)];
  }

  /** @param x (B, ...) f32; @returns layer-owned output, same shape */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    checkBatch(this.describe(), x.shape);
    const l = this.layout(x.shape);
    this.#input = x;
    this.#layout = l;
    this.#stats = reuse(this.rt, this.#stats, [l.rows, 2], `${this.name}.stats`);
    this.#sums = reuse(this.rt, this.#sums, [l.rows, 5], `${this.name}.sums`);
    this.#y = reuse(this.rt, this.#y, x.shape, `${this.name}.out`);
    this.#dispatch(KERNELS.stats, { out: this.#y }, { workgroups: this.#rowGrid() });
    this.#dispatch(KERNELS.forward, { out: this.#y }, {
      workgroups: this.rt.grid(x.size, 256),
      constants: { AFFINE: this.weight ? 1 : 0 },
    });
    return this.#y;
  }

  #cached(what: string, t: Tensor): void {
    cachedInput(this.describe(), this.#layout ? this.#input : null, what);
    checkTensor(this.describe(), t, what === "jvp" ? "tangent" : "gradient");
    checkGradShape(
      this.describe(),
      t,
      this.#input!.shape,
      what === "jvp" ? "tangent" : "gradient",
    );
  }

  /** `out ← [γ ⊙] P([γ ⊙] u)` (row sums of u first). */
  #project(u: Tensor, slot: Tensor | null, what: string, gammaIn: boolean, gammaOut: boolean) {
    this.#cached(what, u);
    const g = this.weight !== null;
    const out = reuse(this.rt, slot, u.shape, `${this.name}.${what}`);
    this.#dispatch(KERNELS.rowSums, { u, out }, {
      workgroups: this.#rowGrid(),
      constants: { GAMMA_U: gammaIn && g ? 1 : 0, TWO: 0 },
    });
    this.#dispatch(KERNELS.project, { u, out }, {
      workgroups: this.rt.grid(u.size, 256),
      constants: { GAMMA_U: gammaIn && g ? 1 : 0, GAMMA_OUT: gammaOut && g ? 1 : 0 },
    });
    return out;
  }

  /** `out[a] += Σ_{aff(i) = a} u ⊙ w` (mode 0: w = x̂, 1: w = 1, 2: w = P v). */
  #affineGrad(u: Tensor, out: Tensor, mode: number, v?: Tensor): void {
    this.#dispatch(KERNELS.affineGrad, { u, v, out }, {
      mode,
      workgroups: this.#rowGrid(this.#layout!.affc),
    });
  }

  /** @param dy like the output; @returns layer-owned dx = P(γ ⊙ dy); accumulates dγ, dβ */
  backward(dy: Tensor): Tensor {
    this.#dx = this.#project(dy, this.#dx, "backward", true, false);
    if (this.dWeight) this.#affineGrad(dy, this.dWeight, 0);
    if (this.dBias) this.#affineGrad(dy, this.dBias, 1);
    return this.#dx;
  }

  /**
   * The input gradient alone, `P(γ ⊙ dy)`, leaving dγ and dβ as they are (attacks, saliency:
   * `Sequential.inputGrad` otherwise runs `backward`, which adds to them).
   * @param dy like the output; @returns layer-owned dx (the buffer `backward` returns)
   */
  inputGrad(dy: Tensor): Tensor {
    return this.#dx = this.#project(dy, this.#dx, "backward", true, false);
  }

  /** @param tx like the input; @returns layer-owned γ ⊙ P tx */
  jvp(tx: Tensor): Tensor {
    return this.#ty = this.#project(tx, this.#ty, "jvp", false, true);
  }

  #tangent(b: Tensor, r: Tensor): Tensor {
    this.#cached("tangent", b);
    this.#cached("tangent", r);
    const g = this.weight !== null;
    const out = this.#inj = reuse(this.rt, this.#inj, r.shape, `${this.name}.injection`);
    this.#dispatch(KERNELS.rowSums, { u: b, v: r, out }, {
      workgroups: this.#rowGrid(),
      constants: { GAMMA_U: g ? 1 : 0, TWO: 1 },
    });
    if (this.dWeight) this.#affineGrad(b, this.dWeight, 2, r);
    this.#dispatch(KERNELS.inject, { u: b, v: r, out }, {
      workgroups: this.rt.grid(r.size, 256),
      constants: { GAMMA_U: g ? 1 : 0 },
    });
    return out;
  }

  /** `weight`, `bias` (when affine). */
  params(): Param[] {
    if (!this.weight) return [];
    const n = this.name ? `${this.name}.` : "";
    return [
      {
        name: `${n}weight`,
        value: this.weight,
        grad: this.dWeight!,
        kind: "weight",
        elementwise: true,
      },
      { name: `${n}bias`, value: this.bias!, grad: this.dBias!, kind: "bias" },
    ];
  }

  dispose(): void {
    for (
      const t of [
        this.weight,
        this.bias,
        this.dWeight,
        this.dBias,
        this.#stats,
        this.#sums,
        this.#y,
        this.#dx,
        this.#ty,
        this.#vjp,
        this.#inj,
      ]
    ) t?.dispose();
    this.#input = null;
    this.#layout = null;
  }
}

/** Options of {@linkcode LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance. Default 1e-5. */
  eps?: number;
  /** Learn `weight` and `bias` shaped like `normalized_shape`. Default true. */
  elementwiseAffine?: boolean;
}

/**
 * `torch.nn.LayerNorm(normalized_shape)`: each sample's trailing `normalized_shape` values are
 * normalized together; `weight` and `bias` are shaped like `normalized_shape`.
 * @example
 * ```ts
 * const ln = new LayerNorm(rt, "ln1", [16]);
 * const y = ln.forward(x); // x (B, 16) or (B, L, 16)
 * ```
 */
export class LayerNorm extends RowNorm {
  readonly normalizedShape: readonly number[];

  /**
   * @param rt runtime
   * @param name module path ("ln1")
   * @param normalizedShape the trailing dimensions normalized over (positive integers)
   * @param options eps, elementwiseAffine
   */
  constructor(
    rt: Backend,
    name: string,
    normalizedShape: number | readonly number[],
    options: LayerNormOptions = {},
  ) {
    const shape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    if (shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
      throw new Error(
        `${name || "layernorm"} (LayerNorm): normalizedShape must be positive integers, got ${
          JSON.stringify(normalizedShape)
        }`,
      );
    }
    super(rt, name, options.elementwiseAffine ?? true ? shape : null, options.eps ?? 1e-5);
    this.normalizedShape = shape;
  }

  /** "ln1 (LayerNorm [16])" */
  describe(): string {
    return `${this.name || "layernorm"} (LayerNorm ${fmtShape(this.normalizedShape ?? [])})`;
  }

  protected layout(shape: readonly number[]): Layout {
    const k = this.normalizedShape.length;
    const tail = shape.slice(shape.length - k);
    if (shape.length <= k || tail.some((d, i) => d !== this.normalizedShape[i])) {
      throw new Error(
        `${this.describe()}: expected input [B,...,${this.normalizedShape.join(",")}], got ${
          fmtShape(shape)
        }`,
      );
    }
    const m = this.normalizedShape.reduce((a, b) => a * b, 1);
    const total = shape.reduce((a, b) => a * b, 1);
    return { rows: total / m, m, affc: m, affs: 1 };
  }
}

/** Options of {@linkcode GroupNorm}. */
export interface GroupNormOptions {
  /** Added to the variance. Default 1e-5. */
  eps?: number;
  /** Learn per-channel `weight` and `bias`. Default true. */
  affine?: boolean;
}

/**
 * `torch.nn.GroupNorm(num_groups, num_channels)`: the channels of a (B, C, ...) input split into
 * `groups` groups of C/G consecutive channels; each sample's group is normalized over its
 * channels and positions; `weight`, `bias` are per channel (C,).
 * @example
 * ```ts
 * const gn = new GroupNorm(rt, "gn1", 2, 8);
 * const y = gn.forward(x); // x (B, 8, H, W)
 * ```
 */
export class GroupNorm extends RowNorm {
  /**
   * @param rt runtime
   * @param name module path ("gn1")
   * @param groups number of groups G (divides `channels`)
   * @param channels number of channels C
   * @param options eps, affine
   */
  constructor(
    rt: Backend,
    name: string,
    readonly groups: number,
    readonly channels: number,
    options: GroupNormOptions = {},
  ) {
    if (
      !Number.isInteger(groups) || !Number.isInteger(channels) || groups < 1 || channels < 1 ||
      channels % groups !== 0
    ) {
      throw new Error(
        `${name || "groupnorm"} (GroupNorm): channels (${channels}) must be a positive multiple ` +
          `of groups (${groups})`,
      );
    }
    super(rt, name, options.affine ?? true ? [channels] : null, options.eps ?? 1e-5);
  }

  /** "gn1 (GroupNorm 2 groups of 8)" */
  describe(): string {
    return `${
      this.name || "groupnorm"
    } (GroupNorm ${this.groups} groups, ${this.channels} channels)`;
  }

  protected layout(shape: readonly number[]): Layout {
    if (shape.length < 2 || shape[1] !== this.channels) {
      throw new Error(
        `${this.describe()}: expected input [B,${this.channels},...], got ${fmtShape(shape)}`,
      );
    }
    const s = shape.slice(2).reduce((a, b) => a * b, 1);
    return {
      rows: shape[0] * this.groups,
      m: (this.channels / this.groups) * s,
      affc: this.channels,
      affs: s,
    };
  }
}
