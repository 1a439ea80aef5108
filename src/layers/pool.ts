/**
 * `MaxPool2d` and `AvgPool2d` with PyTorch 1.13 semantics (NCHW; dilation 1, ceil_mode False;
 * max-pool padding acts as -inf, average-pool padding as zeros counted in the divisor unless
 * `countIncludePad: false`). Kernels: shaders/pool.wgsl. Neither has parameters.
 *
 * Max pool caches the argmax of every window; its backward sums, for each input, the gradients
 * of the windows whose argmax it is (overlapping windows such as kernel 3, stride 2 can pick the
 * same input twice), and its jvp gathers the tangent at the argmax. Average pooling is linear:
 * its jvp is its forward.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { checkBatch, checkGradShape, checkTensor, pair, reuse } from "./_util.ts";
import { conv2dOutputSize } from "./conv2d.ts";
import poolSrc from "../../shaders/pool.wgsl" with { type: "text" };

const MAX_FWD: Kernel = { name: "pool.max_fwd", code: poolSrc, entry: "max_fwd_main" };
const MAX_BWD: Kernel = { name: "pool.max_bwd", code: poolSrc, entry: "max_bwd_main" };
const MAX_JVP: Kernel = { name: "pool.max_jvp", code: poolSrc, entry: "max_jvp_main" };
const AVG_FWD: Kernel = { name: "pool.avg_fwd", code: poolSrc, entry: "avg_fwd_main" };
const AVG_BWD: Kernel = { name: "pool.avg_bwd", code: poolSrc, entry: "avg_bwd_main" };

/** Options of the pooling layers. */
export interface Pool2dOptions {
  /** Default: the kernel size (PyTorch's default). */
  stride?: number | readonly [number, number];
  /** Default 0; at most half the kernel (PyTorch's rule). */
  padding?: number | readonly [number, number];
}

/** Options of {@linkcode AvgPool2d}. */
export interface AvgPool2dOptions extends Pool2dOptions {
  /** Count padded zeros in the divisor (PyTorch's default, true). */
  countIncludePad?: boolean;
}

abstract class Pool2d implements Layer {
  training = true;
  /**
   * Plain in the Jacobian recipe: no parameters, and a Jacobian fixed by the cached argmax (max)
   * or constant (average).
   */
  readonly jacobian: JacobianRole = {};
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  protected input: Tensor | null = null;
  protected inputShape: number[] | null = null;
  protected y: Tensor | null = null;
  protected dx: Tensor | null = null;
  protected ty: Tensor | null = null;
  abstract readonly kind: "MaxPool2d" | "AvgPool2d";

  constructor(
    readonly rt: Backend,
    readonly name: string,
    kernelSize: number | readonly [number, number],
    options: Pool2dOptions,
    kind: string,
  ) {
    const where = `${name || "pool"} (${kind})`;
    this.kernelSize = pair(kernelSize, "kernel size", where, 1);
    this.stride = pair(options.stride ?? this.kernelSize, "stride", where, 1);
    this.padding = pair(options.padding ?? 0, "padding", where, 0);
    if (this.padding[0] > this.kernelSize[0] / 2 || this.padding[1] > this.kernelSize[1] / 2) {
      throw new Error(
        `${where}: padding ${this.padding.join(",")} must be at most half the kernel ` +
          `${this.kernelSize.join("x")}`,
      );
    }
  }

  /** "pool1 (MaxPool2d k2, s2)" */
  describe(): string {
    const f = (v: [number, number]) => (v[0] === v[1] ? `${v[0]}` : v.join("x"));
    const p = this.padding[0] || this.padding[1] ? `, p${f(this.padding)}` : "";
    return `${this.name || "pool"} (${this.kind} k${f(this.kernelSize)}, s${f(this.stride)}${p})`;
  }

  /** (B, C, H, W) -> (B, C, OH, OW). */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 4) {
      throw new Error(`${this.describe()}: expected input [B,C,H,W], got ${fmtShape(inputShape)}`);
    }
    checkBatch(this.describe(), inputShape);
    const [oh, ow] = conv2dOutputSize(
      inputShape[2],
      inputShape[3],
      this.kernelSize,
      this.stride,
      this.padding,
    );
    if (oh < 1 || ow < 1) {
      throw new Error(
        `${this.describe()}: input ${fmtShape(inputShape)} is smaller than the window ` +
          `${this.kernelSize.join("x")} with padding ${this.padding.join(",")}`,
      );
    }
    return [inputShape[0], inputShape[1], oh, ow];
  }

  /** The geometry as the override constants of shaders/pool.wgsl. */
  protected geometry(
    inputShape: readonly number[],
    outShape: readonly number[],
  ): Record<string, number> {
    return {
      H: inputShape[2],
      W: inputShape[3],
      OH: outShape[2],
      OW: outShape[3],
      KH: this.kernelSize[0],
      KW: this.kernelSize[1],
      SH: this.stride[0],
      SW: this.stride[1],
      PH: this.padding[0],
      PW: this.padding[1],
    };
  }

  protected params4(
    inputShape: readonly number[],
    outShape: readonly number[],
  ): Record<string, number> {
    return {
      planes: inputShape[0] * inputShape[1],
      h: inputShape[2],
      w: inputShape[3],
      oh: outShape[2],
      ow: outShape[3],
      kh: this.kernelSize[0],
      kw: this.kernelSize[1],
      sh: this.stride[0],
      sw: this.stride[1],
      ph: this.padding[0],
      pw: this.padding[1],
    };
  }

  protected cached(what: string): { x: Tensor; inputShape: number[]; outShape: number[] } {
    if (!this.input || !this.inputShape) {
      throw new Error(`${this.describe()}: ${what}() before forward()`);
    }
    return {
      x: this.input,
      inputShape: this.inputShape,
      outShape: this.outputShape(this.inputShape),
    };
  }

  abstract forward(x: Tensor): Tensor;
  abstract backward(dy: Tensor): Tensor;
  abstract jvp(tx: Tensor): Tensor;

  /** None: pooling has no parameters. */
  params(): Param[] {
    return [];
  }

  dispose(): void {
    for (const t of [this.y, this.dx, this.ty]) t?.dispose();
    this.input = null;
  }
}

/**
 * `torch.nn.MaxPool2d(kernel, stride = kernel, padding = 0)`. The argmax indices (flat `iy·W + ix`
 * within each plane, as `return_indices=True` gives them) are cached by `forward` and read by
 * `backward` and `jvp`; {@linkcode MaxPool2d.indices} exposes them.
 */
export class MaxPool2d extends Pool2d {
  readonly kind = "MaxPool2d";
  #idx: Tensor | null = null;

  /**
   * @param rt runtime
   * @param name module path ("pool1", "features.2")
   * @param kernelSize k or [kh, kw]
   * @param options stride (default kernel), padding (default 0)
   */
  constructor(
    rt: Backend,
    name: string,
    kernelSize: number | readonly [number, number],
    options: Pool2dOptions = {},
  ) {
    super(rt, name, kernelSize, options, "MaxPool2d");
  }

  /** (B, C, OH, OW) u32 argmax of the last forward (layer-owned). */
  get indices(): Tensor | null {
    return this.#idx;
  }

  /** @param x (B, C, H, W) f32; @returns layer-owned (B, C, OH, OW) */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    this.y = reuse(this.rt, this.y, shape, `${this.name}.out`);
    if (!this.#idx || this.#idx.size !== this.y.size) {
      this.#idx?.dispose();
      this.#idx = this.rt.empty(shape, "u32", `${this.name}.argmax`);
    }
    this.rt.dispatch(MAX_FWD, {
      bindings: [x, this.#idx, this.y],
      params: this.params4(x.shape, shape),
      workgroups: this.rt.grid(this.y.size, 256),
      constants: this.geometry(x.shape, shape),
    });
    this.input = x;
    this.inputShape = [...x.shape];
    return this.y;
  }

  /** @param dy (B, C, OH, OW) f32; @returns layer-owned dx (B, C, H, W), summed over windows */
  backward(dy: Tensor): Tensor {
    const { inputShape, outShape } = this.cached("backward");
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, outShape);
    this.dx = reuse(this.rt, this.dx, inputShape, `${this.name}.dx`);
    this.rt.dispatch(MAX_BWD, {
      bindings: [dy, this.#idx!, this.dx],
      params: this.params4(inputShape, outShape),
      workgroups: this.rt.grid(this.dx.size, 256),
      constants: this.geometry(inputShape, outShape),
    });
    return this.dx;
  }

  /** @param tx (B, C, H, W) tangent; @returns layer-owned tx gathered at the cached argmax */
  jvp(tx: Tensor): Tensor {
    const { inputShape, outShape } = this.cached("jvp");
    checkTensor(this.describe(), tx, "tangent");
    checkGradShape(this.describe(), tx, inputShape, "tangent");
    this.ty = reuse(this.rt, this.ty, outShape, `${this.name}.jvp`);
    this.rt.dispatch(MAX_JVP, {
      bindings: [tx, this.#idx!, this.ty],
      params: this.params4(inputShape, outShape),
      workgroups: this.rt.grid(this.ty.size, 256),
      constants: this.geometry(inputShape, outShape),
    });
    return this.ty;
  }

  override dispose(): void {
    super.dispose();
    this.#idx?.dispose();
  }
}

/** `torch.nn.AvgPool2d(kernel, stride = kernel, padding = 0, count_include_pad = True)`. */
export class AvgPool2d extends Pool2d {
  readonly kind = "AvgPool2d";
  readonly countIncludePad: boolean;

  /**
   * @param rt runtime
   * @param name module path
   * @param kernelSize k or [kh, kw]
   * @param options stride (default kernel), padding (default 0), countIncludePad (default true)
   */
  constructor(
    rt: Backend,
    name: string,
    kernelSize: number | readonly [number, number],
    options: AvgPool2dOptions = {},
  ) {
    super(rt, name, kernelSize, options, "AvgPool2d");
    this.countIncludePad = options.countIncludePad ?? true;
  }

  #run(
    kernel: Kernel,
    x: Tensor,
    out: Tensor,
    inputShape: readonly number[],
    outShape: readonly number[],
  ): void {
    this.rt.dispatch(kernel, {
      bindings: [x, this.rt.placeholder(0), out],
      params: this.params4(inputShape, outShape),
      workgroups: this.rt.grid(out.size, 256),
      constants: {
        ...this.geometry(inputShape, outShape),
        INCLUDE_PAD: this.countIncludePad ? 1 : 0,
      },
    });
  }

  /** @param x (B, C, H, W) f32; @returns layer-owned (B, C, OH, OW) */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    this.y = reuse(this.rt, this.y, shape, `${this.name}.out`);
    this.#run(AVG_FWD, x, this.y, x.shape, shape);
    this.input = x;
    this.inputShape = [...x.shape];
    return this.y;
  }

  /** @param dy (B, C, OH, OW) f32; @returns layer-owned dx (B, C, H, W) */
  backward(dy: Tensor): Tensor {
    const { inputShape, outShape } = this.cached("backward");
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, outShape);
    this.dx = reuse(this.rt, this.dx, inputShape, `${this.name}.dx`);
    this.#run(AVG_BWD, dy, this.dx, inputShape, outShape);
    return this.dx;
  }

  /** @param tx (B, C, H, W) tangent (any spatial size); @returns layer-owned average of tx */
  jvp(tx: Tensor): Tensor {
    checkTensor(this.describe(), tx, "tangent");
    const shape = this.outputShape(tx.shape);
    this.ty = reuse(this.rt, this.ty, shape, `${this.name}.jvp`);
    this.#run(AVG_FWD, tx, this.ty, tx.shape, shape);
    return this.ty;
  }
}
