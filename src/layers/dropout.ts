/**
 * `Dropout(p)` and `Dropout2d(p)`: inverted dropout (Srivastava et al. 2014; PyTorch scales kept
 * values by `1 / (1 - p)` in training and is the identity in eval mode). Masks come from the
 * counter-based Philox generator of src/ops/random.ts: the mask is a pure function of
 * `(seed, name, counter)`, so the same seed and counter give the same mask on every run and
 * backend, and two dropout layers of one model draw independent masks.
 *
 * Randomness is explicit: the layer never advances its own `counter`. A training loop sets it
 * each step (directly, or for a whole model with `Sequential.setCounter(step)`); forgetting to
 * do so reuses one mask. `Dropout2d` zeroes whole channels of a (B, C, H, W) input.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import { binary } from "../ops/elementwise.ts";
import { bernoulliMask } from "../ops/random.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { checkBatch, checkGradShape, checkTensor, fnv1a, reuse } from "./_util.ts";

/** Options of {@linkcode Dropout}. */
export interface DropoutOptions {
  /** u32 seed, the first Philox key word (the second is a hash of the layer name). Default 0. */
  seed?: number;
  /** Zero whole channels of a (B, C, H, W) input (`Dropout2d`). Default false. */
  channelwise?: boolean;
}

/**
 * Inverted dropout. In training mode `y = x ⊙ m`, `m = 1/(1-p)` with probability `1 - p` and 0
 * otherwise; `backward` and `jvp` multiply by the same cached mask. In eval mode (or `p = 0`)
 * `forward`, `backward` and `jvp` return their argument itself (no copy).
 */
export class Dropout implements Layer {
  training = true;
  /** Plain in the Jacobian recipe: no parameters, and a Jacobian fixed by the cached mask. */
  readonly jacobian: JacobianRole = {};
  /** Philox substream of the next forward; set it each step. */
  counter = 0;
  readonly seed: number;
  readonly channelwise: boolean;
  #mask: Tensor | null = null;
  #maskView: Tensor | null = null;
  #applied = false;
  #shape: number[] | null = null;
  #y: Tensor | null = null;
  #dx: Tensor | null = null;
  #ty: Tensor | null = null;

  /**
   * @param rt runtime
   * @param name module path ("drop1", "classifier.0"); also selects the layer's random stream
   * @param p drop probability in [0, 1]
   * @param options seed (u32, default 0), channelwise
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    readonly p = 0.5,
    options: DropoutOptions = {},
  ) {
    this.channelwise = options.channelwise ?? false;
    if (!(p >= 0 && p <= 1)) throw new Error(`${this.describe()}: p must be in [0, 1], got ${p}`);
    this.seed = options.seed ?? 0;
    if (!Number.isInteger(this.seed) || this.seed < 0 || this.seed > 0xffffffff) {
      throw new Error(`${this.describe()}: seed must be a u32, got ${this.seed}`);
    }
  }

  /** "drop1 (Dropout p=0.5)" */
  describe(): string {
    return `${this.name || "dropout"} (${this.channelwise ? "Dropout2d" : "Dropout"} p=${this.p})`;
  }

  /** Same shape as the input ((B, C, H, W) for Dropout2d). */
  outputShape(inputShape: readonly number[]): number[] {
    if (this.channelwise && inputShape.length !== 4) {
      throw new Error(`${this.describe()}: expected input [B,C,H,W], got ${fmtShape(inputShape)}`);
    }
    checkBatch(this.describe(), inputShape);
    return [...inputShape];
  }

  /** The mask of the last training forward (layer-owned; (B, C) for Dropout2d), or null. */
  get mask(): Tensor | null {
    return this.#applied ? this.#mask : null;
  }

  /** @param x (B, ...) f32; @returns layer-owned `x ⊙ mask` in training, `x` itself in eval */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    const shape = this.outputShape(x.shape);
    this.#shape = shape;
    this.#applied = this.training && this.p > 0;
    if (!this.#applied) return x;
    const maskShape = this.channelwise ? [shape[0], shape[1]] : shape;
    this.#mask = reuse(this.rt, this.#mask, maskShape, `${this.name}.mask`);
    this.#maskView = this.channelwise ? this.#mask.reshape([shape[0], shape[1], 1, 1]) : this.#mask;
    bernoulliMask(this.rt, maskShape, {
      seed: [this.seed, fnv1a(this.name)],
      counter: this.counter,
      p: this.p,
      out: this.#mask,
    });
    this.#y = reuse(this.rt, this.#y, shape, `${this.name}.out`);
    binary(this.rt, "mul", x, this.#maskView, { out: this.#y });
    return this.#y;
  }

  #masked(what: "backward" | "jvp", v: Tensor, slot: Tensor | null): Tensor {
    if (!this.#shape) throw new Error(`${this.describe()}: ${what}() before forward()`);
    const name = what === "jvp" ? "tangent" : "gradient";
    checkTensor(this.describe(), v, name);
    checkGradShape(this.describe(), v, this.#shape, name);
    if (!this.#applied) return v;
    const out = reuse(this.rt, slot, this.#shape, `${this.name}.${what}`);
    binary(this.rt, "mul", v, this.#maskView!, { out });
    return out;
  }

  /** @param dy f32 like the output; @returns layer-owned `dy ⊙ mask` (`dy` itself in eval) */
  backward(dy: Tensor): Tensor {
    const r = this.#masked("backward", dy, this.#dx);
    if (r !== dy) this.#dx = r;
    return r;
  }

  /** @param tx f32 like the input; @returns layer-owned `tx ⊙ mask` (`tx` itself in eval) */
  jvp(tx: Tensor): Tensor {
    const r = this.#masked("jvp", tx, this.#ty);
    if (r !== tx) this.#ty = r;
    return r;
  }

  /** None. */
  params(): Param[] {
    return [];
  }

  dispose(): void {
    for (const t of [this.#mask, this.#y, this.#dx, this.#ty]) t?.dispose();
  }
}

/** `torch.nn.Dropout2d(p)`: zeroes whole channels of a (B, C, H, W) input. */
export class Dropout2d extends Dropout {
  /**
   * @param rt runtime
   * @param name module path
   * @param p drop probability in [0, 1]
   * @param options seed (u32, default 0)
   */
  constructor(rt: Backend, name: string, p = 0.5, options: { seed?: number } = {}) {
    super(rt, name, p, { ...options, channelwise: true });
  }
}
