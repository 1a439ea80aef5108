/**
 * `Normalize(mean, std)`: `y[b, c, ...] = (x[b, c, ...] - mean[c]) / std[c]`, torchvision's
 * `transforms.Normalize` as a layer, so that models take inputs in [0, 1] and attacks work in
 * pixel units (DESIGN.md, "Attacks").
 *
 * State: none in `params()`. mean and std are constructor arguments, stored in the model's
 * architecture description, not as tensors in the checkpoint: torchvision's Normalize is not an
 * `nn.Module` with a `state_dict`, so a PyTorch twin of the model normalizes outside and its
 * `state_dict` has no entry for it; exporting buffers would break `load_state_dict(strict=True)`.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { channelAffine, checkBatch, checkGradShape, checkTensor, reuse } from "./_util.ts";

/** Per-channel affine normalization over axis 1 of a (B, C, ...) input. */
export class Normalize implements Layer {
  training = true;
  /** Plain in the Jacobian recipe: no parameters, and a constant Jacobian. */
  readonly jacobian: JacobianRole = {};
  readonly mean: readonly number[];
  readonly std: readonly number[];
  #scale: Tensor;
  #shift: Tensor;
  #y: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;
  #inputShape: number[] | null = null;

  /**
   * @param rt runtime
   * @param name module path ("normalize")
   * @param mean per-channel means (C values)
   * @param std per-channel standard deviations (C positive values)
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    mean: readonly number[],
    std: readonly number[],
  ) {
    if (mean.length < 1 || mean.length !== std.length) {
      throw new Error(
        `${
          name || "normalize"
        } (Normalize): mean (${mean.length}) and std (${std.length}) need one value per channel`,
      );
    }
    if (!std.every((s) => Number.isFinite(s) && s > 0) || !mean.every(Number.isFinite)) {
      throw new Error(
        `${
          name || "normalize"
        } (Normalize): std must be positive and mean finite, got mean ${mean}, std ${std}`,
      );
    }
    this.mean = [...mean];
    this.std = [...std];
    this.#scale = rt.upload(
      new Float32Array(std.map((s) => 1 / s)),
      [std.length],
      "f32",
      `${name}.scale`,
    );
    this.#shift = rt.upload(
      new Float32Array(mean.map((m, i) => -m / std[i])),
      [std.length],
      "f32",
      `${name}.shift`,
    );
  }

  get channels(): number {
    return this.mean.length;
  }

  /** "normalize (Normalize 3)" */
  describe(): string {
    return `${this.name || "normalize"} (Normalize ${this.channels})`;
  }

  /** (B, C, ...) -> same. */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 2 || inputShape[1] !== this.channels) {
      throw new Error(
        `${this.describe()}: expected input [B,${this.channels},...], got ${fmtShape(inputShape)}`,
      );
    }
    checkBatch(this.describe(), inputShape);
    return [...inputShape];
  }

  #spatial(shape: readonly number[]): number {
    return shape.slice(2).reduce((a, b) => a * b, 1);
  }

  /** @param x (B, C, ...) f32; @returns layer-owned `(x - mean) / std` */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    this.#y = reuse(this.rt, this.#y, shape, `${this.name}.out`);
    channelAffine(
      this.rt,
      x,
      this.channels,
      this.#spatial(shape),
      this.#scale,
      this.#shift,
      this.#y,
    );
    this.#inputShape = shape;
    return this.#y;
  }

  /** @param dy (B, C, ...) f32; @returns layer-owned `dy / std` */
  backward(dy: Tensor): Tensor {
    if (!this.#inputShape) throw new Error(`${this.describe()}: backward() before forward()`);
    checkTensor(this.describe(), dy, "gradient");
    checkGradShape(this.describe(), dy, this.#inputShape);
    this.#dx = reuse(this.rt, this.#dx, dy.shape, `${this.name}.dx`);
    channelAffine(this.rt, dy, this.channels, this.#spatial(dy.shape), this.#scale, null, this.#dx);
    return this.#dx;
  }

  /** @param tx (B, C, ...) f32; @returns layer-owned `tx / std` */
  jvp(tx: Tensor): Tensor {
    checkTensor(this.describe(), tx, "tangent");
    const shape = this.outputShape(tx.shape);
    this.#ty = reuse(this.rt, this.#ty, shape, `${this.name}.jvp`);
    channelAffine(this.rt, tx, this.channels, this.#spatial(shape), this.#scale, null, this.#ty);
    return this.#ty;
  }

  /** None (see the module documentation). */
  params(): Param[] {
    return [];
  }

  dispose(): void {
    for (const t of [this.#scale, this.#shift, this.#y, this.#dx, this.#ty]) t?.dispose();
  }
}
