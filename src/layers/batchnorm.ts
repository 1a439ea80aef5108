/**
 * BatchNorm1d and BatchNorm2d with PyTorch 1.13 semantics (Ioffe & Szegedy
 * 2015): batch statistics in training mode (biased variance to normalize,
 * unbiased variance into `running_var`, momentum 0.1), running statistics in
 * eval mode. `state_dict` names: `weight`, `bias`, `running_mean`,
 * `running_var`, `num_batches_tracked` (i32 here, int64 in PyTorch).
 *
 * In training mode the layer couples the samples of a batch (the batch statistics depend on
 * every sample), and `jvp` is the batch-coupled one, `γ P r` per channel (P the Jacobian of
 * x ↦ x̂ over the channel's B·H·W values, shaders/batchnorm_jr.wgsl), as PyTorch's autograd
 * computes it for the whole batch; the Jacobian penalties go through both modes.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { cachedInput } from "./_check.ts";
import { batchnormGammaTerm } from "./_util.ts";
import bnSrc from "../../shaders/batchnorm.wgsl" with { type: "text" };
import bnStateSrc from "../../shaders/batchnorm_state.wgsl" with { type: "text" };
import bnJrSrc from "../../shaders/batchnorm_jr.wgsl" with { type: "text" };

const STATS: Kernel = { name: "batchnorm.stats", code: bnSrc, entry: "stats_main" };
const AFFINE: Kernel = { name: "batchnorm.affine", code: bnSrc, entry: "affine_main" };
const BWD_REDUCE: Kernel = { name: "batchnorm.bwd_reduce", code: bnSrc, entry: "bwd_reduce_main" };
const BWD_DX: Kernel = { name: "batchnorm.bwd_dx", code: bnSrc, entry: "bwd_dx_main" };
const UPDATE_RUNNING: Kernel = {
  name: "batchnorm.update_running",
  code: bnStateSrc,
  entry: "update_running_main",
};
const EVAL_STATS: Kernel = {
  name: "batchnorm.eval_stats",
  code: bnStateSrc,
  entry: "eval_stats_main",
};
const JR_SUMS: Kernel = { name: "batchnorm.jr_sums", code: bnJrSrc, entry: "sums_main" };
const JR_INJECT: Kernel = { name: "batchnorm.jr_inject", code: bnJrSrc, entry: "inject_main" };
const ACCUM_GRADS: Kernel = {
  name: "batchnorm.accum_grads",
  code: bnStateSrc,
  entry: "accum_grads_main",
};

/** Options of {@linkcode BatchNorm}. */
export interface BatchNormOptions {
  /** 1 for BatchNorm1d ((B, C) or (B, C, L) input), 2 for BatchNorm2d ((B, C, H, W)). */
  dims: 1 | 2;
  /** Added to the variance. Default 1e-5. */
  eps?: number;
  /** Weight of the new batch statistic in the running average. Default 0.1. */
  momentum?: number;
}

/** Batch normalization over the channel axis (axis 1). */
export class BatchNorm implements Layer {
  training = true;
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  readonly numBatchesTracked: Tensor;
  readonly dWeight: Tensor;
  readonly dBias: Tensor;
  readonly eps: number;
  readonly momentum: number;
  readonly dims: 1 | 2;
  #stats: Tensor;
  #input: Tensor | null = null;
  #inputMode: "train" | "eval" = "train";
  #out: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;
  #vjp: Tensor | null = null;
  #inj: Tensor | null = null;
  #jrSums: Tensor | null = null;

  /**
   * In the Jacobian recipe, in the mode of the cached forward. Eval mode: the Jacobian is
   * diagonal, so the VJP is the jvp's kernel (into its own buffer: the tangent pass reuses
   * jvp's), and `dγ += Σ b r / σ` per channel. Training mode (PyTorch's double backprop through
   * the batch statistics, which couple the samples): the VJP is the input half of the training
   * backward, `P(γ b)`; the tangent terms are `dγ += Σ b ⊙ P r` and the injection
   * `∇_x ⟨γ b, P(x) r⟩` at the input (shaders/batchnorm_jr.wgsl has the formula and its
   * derivation). The final backward's `backward` in the same mode then adds `dγ += Σ g x̂` and
   * `dβ += Σ g` and carries `g` through the batch statistics.
   */
  readonly jacobian: JacobianRole = {
    vjp: (b) =>
      this.#vjp = this.#inputMode === "train"
        ? this.#coupled(b, this.#vjp)
        : this.#diagonal(b, this.#vjp),
    tangent: (b, r) => {
      if (this.#inputMode === "train") return this.#trainTangent(b, r);
      this.outputShape(r.shape);
      batchnormGammaTerm(this.rt, b, r, this.runningVar, this.eps, this.dWeight);
      return null;
    },
  };

  /**
   * @param rt runtime
   * @param name module path ("bn1", "layer1.0.bn2")
   * @param channels number of channels C
   * @param options 1-d or 2-d, eps, momentum
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    readonly channels: number,
    options: BatchNormOptions,
  ) {
    if (!Number.isInteger(channels) || channels < 1) {
      throw new Error(`${name} (BatchNorm): channels must be a positive integer, got ${channels}`);
    }
    this.dims = options.dims;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    const c = channels;
    this.weight = rt.upload(new Float32Array(c).fill(1), [c], "f32", `${name}.weight`);
    this.bias = rt.zeros([c], "f32", `${name}.bias`);
    this.runningMean = rt.zeros([c], "f32", `${name}.running_mean`);
    this.runningVar = rt.upload(new Float32Array(c).fill(1), [c], "f32", `${name}.running_var`);
    this.numBatchesTracked = rt.zeros([1], "i32", `${name}.num_batches_tracked`);
    this.dWeight = rt.zeros([c], "f32", `${name}.weight.grad`);
    this.dBias = rt.zeros([c], "f32", `${name}.bias.grad`);
    this.#stats = rt.zeros([5, c], "f32", `${name}.stats`);
  }

  #describe(): string {
    return `${this.name || "batchnorm"} (BatchNorm${this.dims}d ${this.channels})`;
  }

  /** (B, C), (B, C, L) for 1-d; (B, C, H, W) for 2-d. */
  outputShape(inputShape: readonly number[]): number[] {
    const ok = this.dims === 2
      ? inputShape.length === 4
      : inputShape.length === 2 || inputShape.length === 3;
    const want = this.dims === 2
      ? `[B,${this.channels},H,W]`
      : `[B,${this.channels}] or [B,${this.channels},L]`;
    if (!ok || inputShape[1] !== this.channels) {
      throw new Error(`${this.#describe()}: expected input ${want}, got ${fmtShape(inputShape)}`);
    }
    if (inputShape[0] === 0) throw new Error(`${this.#describe()}: batch of 0`);
    return [...inputShape];
  }

  #bcs(shape: readonly number[]): { b: number; c: number; s: number } {
    let s = 1;
    for (let i = 2; i < shape.length; i++) s *= shape[i];
    return { b: shape[0], c: this.channels, s };
  }

  #owned(slot: Tensor | null, shape: readonly number[]): Tensor {
    if (slot && !slot.disposed && slot.shape.join() === shape.join()) return slot;
    slot?.dispose();
    return this.rt.empty(shape);
  }

  /** @param x (B, C, ...) f32; @returns layer-owned (B, C, ...) */
  forward(x: Tensor): Tensor {
    this.outputShape(x.shape);
    const { b, c, s } = this.#bcs(x.shape);
    const rt = this.rt;
    if (this.training && b * s < 2) {
      throw new Error(
        `${this.#describe()}: expected more than 1 value per channel in training mode, got input ${
          fmtShape(x.shape)
        }`,
      );
    }
    const stateParams = { c, eps: this.eps, momentum: this.momentum };
    const state = this.#stateBindings();
    const params = { b, c, s, eps: this.eps, mode: 0 };
    if (this.training) {
      rt.dispatch(STATS, {
        bindings: this.#dataBindings(x, x, this.#scratchOut()),
        params,
        workgroups: [c],
      });
      rt.dispatch(UPDATE_RUNNING, {
        bindings: state,
        params: stateParams,
        workgroups: [Math.ceil(c / 64)],
      });
    } else {
      rt.dispatch(EVAL_STATS, {
        bindings: state,
        params: stateParams,
        workgroups: [Math.ceil(c / 64)],
      });
    }
    this.#out = this.#owned(this.#out, x.shape);
    rt.dispatch(AFFINE, {
      bindings: this.#dataBindings(x, x, this.#out),
      params,
      workgroups: rt.grid(b * c * s, 256),
    });
    this.#input = x;
    this.#inputMode = this.training ? "train" : "eval";
    return this.#out;
  }

  #scratch: Tensor | null = null;
  #scratchOut(): Tensor {
    return this.#scratch ??= this.rt.zeros([1]);
  }

  /** The bindings of shaders/batchnorm_state.wgsl's kernels. */
  #stateBindings(): Tensor[] {
    return [
      this.#stats,
      this.runningMean,
      this.runningVar,
      this.dWeight,
      this.dBias,
      this.numBatchesTracked,
    ];
  }

  #dataBindings(x: Tensor, aux: Tensor, y: Tensor): Tensor[] {
    return [x, aux, y, this.weight, this.bias, this.#stats];
  }

  /** @param dy (B, C, ...) f32; @returns layer-owned dx; accumulates weight.grad and bias.grad */
  backward(dy: Tensor): Tensor {
    return this.#backward(dy, true, "backward");
  }

  /**
   * The input gradient alone (attacks, saliency, `Sequential.inputGrad`): `backward`'s dx,
   * leaving weight.grad and bias.grad as they are.
   * @param dy (B, C, ...) f32; @returns layer-owned dx (the buffer `backward` returns)
   */
  inputGrad(dy: Tensor): Tensor {
    return this.#backward(dy, false, "inputGrad");
  }

  #backward(dy: Tensor, accumulate: boolean, what: string): Tensor {
    const x = cachedInput(this.#describe(), this.#input, what);
    if (dy.shape.join() !== x.shape.join()) {
      throw new Error(
        `${this.#describe()}: gradient shape ${fmtShape(dy.shape)} does not match output ${
          fmtShape(x.shape)
        }`,
      );
    }
    const { b, c, s } = this.#bcs(x.shape);
    const rt = this.rt;
    const mode = this.#inputMode === "train" ? 0 : 1;
    const params = { b, c, s, eps: this.eps, mode };
    rt.dispatch(BWD_REDUCE, {
      bindings: this.#dataBindings(dy, x, this.#scratchOut()),
      params,
      workgroups: [c],
    });
    if (accumulate) {
      rt.dispatch(ACCUM_GRADS, {
        bindings: this.#stateBindings(),
        params: { c, eps: this.eps, momentum: this.momentum },
        workgroups: [Math.ceil(c / 64)],
      });
    }
    this.#dx = this.#owned(this.#dx, x.shape);
    rt.dispatch(BWD_DX, {
      bindings: this.#dataBindings(dy, x, this.#dx),
      params,
      workgroups: rt.grid(b * c * s, 256),
    });
    return this.#dx;
  }

  /**
   * @param tx (B, C, ...) tangent; @returns layer-owned `γ·invstd·tx` (eval mode) or the
   * batch-coupled `γ P tx` (training mode), at the cached forward
   */
  jvp(tx: Tensor): Tensor {
    return this.#ty = this.#inputMode === "train"
      ? this.#coupled(tx, this.#ty)
      : this.#diagonal(tx, this.#ty);
  }

  /** The cached input, checked against a signal `t` shaped like it. */
  #point(t: Tensor, what: string): Tensor {
    const x = cachedInput(this.#describe(), this.#input, what);
    if (t.shape.join() !== x.shape.join()) {
      throw new Error(
        `${this.#describe()}: ${what} shape ${fmtShape(t.shape)} does not match the input ${
          fmtShape(x.shape)
        }`,
      );
    }
    return x;
  }

  /**
   * Training mode: `γ P t = γ·invstd·(t - Σt/M - x̂ Σt·x̂/M)` per channel into `slot` — the input
   * half of the training backward (P is symmetric, so the VJP and the JVP are the same map);
   * uses stats rows 3 and 4 as scratch, touches no gradient.
   */
  #coupled(t: Tensor, slot: Tensor | null): Tensor {
    const x = this.#point(t, "jvp");
    const { b, c, s } = this.#bcs(x.shape);
    const params = { b, c, s, eps: this.eps, mode: 0 };
    this.rt.dispatch(BWD_REDUCE, {
      bindings: this.#dataBindings(t, x, this.#scratchOut()),
      params,
      workgroups: [c],
    });
    const out = this.#owned(slot, x.shape);
    this.rt.dispatch(BWD_DX, {
      bindings: this.#dataBindings(t, x, out),
      params,
      workgroups: this.rt.grid(b * c * s, 256),
    });
    return out;
  }

  /** Training mode: `dγ += Σ b ⊙ P r`; @returns the layer-owned injection (batchnorm_jr.wgsl). */
  #trainTangent(bsig: Tensor, r: Tensor): Tensor {
    const x = this.#point(r, "tangent");
    this.#point(bsig, "tangent");
    const { b, c, s } = this.#bcs(x.shape);
    const sums = this.#jrSums = this.#owned(this.#jrSums, [5, c]);
    const inj = this.#inj = this.#owned(this.#inj, x.shape);
    const bindings = [x, bsig, r, this.weight, this.#stats, sums, this.dWeight, inj];
    this.rt.dispatch(JR_SUMS, { bindings, params: { b, c, s }, workgroups: [c] });
    this.rt.dispatch(JR_INJECT, {
      bindings,
      params: { b, c, s },
      workgroups: this.rt.grid(b * c * s, 256),
    });
    return inj;
  }

  /** `gamma·invstd·t` into `slot` (reused when it fits); eval mode. */
  #diagonal(t: Tensor, slot: Tensor | null): Tensor {
    this.outputShape(t.shape);
    const { b, c, s } = this.#bcs(t.shape);
    const out = this.#owned(slot, t.shape);
    this.rt.dispatch(AFFINE, {
      bindings: this.#dataBindings(t, t, out),
      params: { b, c, s, eps: this.eps, mode: 1 },
      workgroups: this.rt.grid(b * c * s, 256),
    });
    return out;
  }

  /** weight, bias (trained); running_mean, running_var, num_batches_tracked (buffers). */
  params(): Param[] {
    const n = this.name ? `${this.name}.` : "";
    return [
      { name: `${n}weight`, value: this.weight, grad: this.dWeight, kind: "weight" },
      { name: `${n}bias`, value: this.bias, grad: this.dBias, kind: "bias" },
      { name: `${n}running_mean`, value: this.runningMean, kind: "buffer" },
      { name: `${n}running_var`, value: this.runningVar, kind: "buffer" },
      { name: `${n}num_batches_tracked`, value: this.numBatchesTracked, kind: "buffer" },
    ];
  }

  dispose(): void {
    for (
      const t of [
        this.weight,
        this.bias,
        this.runningMean,
        this.runningVar,
        this.numBatchesTracked,
        this.dWeight,
        this.dBias,
        this.#stats,
        this.#out,
        this.#dx,
        this.#ty,
        this.#vjp,
        this.#inj,
        this.#jrSums,
        this.#scratch,
      ]
    ) t?.dispose();
  }
}
