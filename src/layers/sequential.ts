/**
 * `Sequential`: a chain of layers, `torch.nn.Sequential`. forward and jvp run the layers in
 * order (forward fusing a layer with the next where the layer offers it: a Conv2d followed by
 * ReLU, Tanh or Sigmoid is one kernel), backward in reverse; `params()` concatenates the layers' parameters (each layer already
 * carries its full module path, e.g. "features.0.weight").
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";

/** A layer with a random stream (Dropout). */
interface Counted {
  counter: number;
}

/**
 * A layer that can run its forward and the next layer's in one kernel (Conv2d with an
 * activation): returns the next layer's output, both layers' caches set, or null (nothing ran).
 */
interface Fusable {
  forwardFused?(x: Tensor, next: Layer): Tensor | null;
}

function hasCounter(l: Layer): l is Layer & Counted {
  return typeof (l as Partial<Counted>).counter === "number";
}

/**
 * Runs layers one after the other. Each layer's own input checks name the layer and both shapes
 * ("conv2 (Conv2d 6->16, k5): expected input [B,6,H,W], got [64,3,32,32]"); an empty batch is
 * refused before anything runs.
 * @example
 * ```ts
 * const net = new Sequential(rt, "", [
 *   new Conv2d(rt, "0", 1, 6, 5), new ReLU(rt, "1"), new MaxPool2d(rt, "2", 2),
 *   new Flatten("3"), new Linear(rt, "4", 6 * 12 * 12, 10),
 * ]);
 * const logits = net.forward(x); // (B, 10), owned by the last layer
 * ```
 */
export class Sequential implements Layer {
  readonly layers: readonly Layer[];
  /** In the Jacobian recipe: a container of its layers. */
  readonly jacobian: JacobianRole;
  #training = true;
  #lastInput: Tensor | null = null;

  /**
   * @param rt runtime (for {@linkcode Sequential.zeroGrad})
   * @param name module path of the container ("" for a root model, "features" for a child)
   * @param layers the layers, each constructed with its full module path
   */
  constructor(readonly rt: Backend, readonly name: string, layers: readonly Layer[]) {
    this.layers = [...layers];
    this.jacobian = { children: this.layers };
    const seen = new Set<string>();
    for (const p of this.params()) {
      if (seen.has(p.name)) {
        throw new Error(`${this.describe()}: two parameters are named '${p.name}'`);
      }
      seen.add(p.name);
    }
  }

  /** "features (Sequential of 5)" */
  describe(): string {
    return `${this.name || "model"} (Sequential of ${this.layers.length})`;
  }

  /** True in training mode; setting it sets every layer. */
  get training(): boolean {
    return this.#training;
  }

  set training(on: boolean) {
    this.#training = on;
    for (const l of this.layers) l.training = on;
  }

  /** Training mode for every layer (dropout active, batch statistics). @returns this */
  train(): this {
    this.training = true;
    return this;
  }

  /** Evaluation mode for every layer. @returns this */
  eval(): this {
    this.training = false;
    return this;
  }

  /** Sets the random-stream counter of every layer that has one (Dropout); call once per step. */
  setCounter(counter: number): void {
    for (const l of this.layers) {
      if (l instanceof Sequential) l.setCounter(counter);
      else if (hasCounter(l)) l.counter = counter;
    }
  }

  /** The shape after every layer; throws naming the first layer that refuses its input. */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length === 0 || inputShape[0] === 0) {
      throw new Error(
        `${this.describe()}: got input ${
          fmtShape(inputShape)
        }; expected a batch of at least one sample`,
      );
    }
    let s = [...inputShape];
    for (const l of this.layers) s = l.outputShape(s);
    return s;
  }

  /** @param x (B, ...) f32; @returns the last layer's output (owned by that layer) */
  forward(x: Tensor): Tensor {
    if (x.disposed) {
      throw new Error(`${this.describe()}: input ${x.describe()} was used after dispose()`);
    }
    this.outputShape(x.shape);
    let h = x;
    const n = this.layers.length;
    for (let i = 0; i < n; i++) {
      const l = this.layers[i] as Layer & Fusable;
      // A layer and the next in one kernel where they fuse (Conv2d + ReLU/Tanh/Sigmoid).
      const fused = i + 1 < n && typeof l.forwardFused === "function"
        ? l.forwardFused(h, this.layers[i + 1])
        : null;
      if (fused) {
        h = fused;
        i++;
      } else h = l.forward(h);
    }
    this.#lastInput = x;
    return h;
  }

  /** @param dy gradient of the output; @returns dx (owned by the first layer); accumulates grads */
  backward(dy: Tensor): Tensor {
    if (!this.#lastInput) throw new Error(`${this.describe()}: backward() before forward()`);
    let g = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) g = this.layers[i].backward(g);
    return g;
  }

  /**
   * `backward` for training: accumulates every parameter gradient but stops at the lowest layer
   * that has parameters, which computes only its own (`paramGrad` on Linear and Conv2d), so the
   * input gradient nobody reads is never computed (LeNet's conv1 input gradient is about a
   * quarter of its step on a CPU adapter).
   * @param dy gradient of the output
   */
  backwardParams(dy: Tensor): void {
    if (!this.#lastInput) throw new Error(`${this.describe()}: backward() before forward()`);
    let lowest = 0;
    while (lowest < this.layers.length && this.layers[lowest].params().length === 0) lowest++;
    let g = dy;
    for (let i = this.layers.length - 1; i > lowest; i--) g = this.layers[i].backward(g);
    if (lowest === this.layers.length) return;
    const l = this.layers[lowest] as Layer & { paramGrad?: (dy: Tensor) => void };
    if (l instanceof Sequential) l.backwardParams(g);
    else if (typeof l.paramGrad === "function") l.paramGrad(g);
    else l.backward(g);
  }

  /**
   * The input gradient `Jᵀ dy` without touching parameter gradients: layers that offer
   * `inputGrad` (Linear, Conv2d, weight-normalized ones, BatchNorm, LayerNorm, GroupNorm,
   * residual blocks, nested Sequential) use it, the others' `backward` has no parameters to
   * accumulate.
   * For attacks and for the vector-Jacobian pass of the Jacobian regularizer.
   * @param dy gradient of the output
   * @returns dx (owned by the first layer)
   */
  inputGrad(dy: Tensor): Tensor {
    if (!this.#lastInput) throw new Error(`${this.describe()}: inputGrad() before forward()`);
    let g = dy;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const l = this.layers[i] as Layer & { inputGrad?: (dy: Tensor) => Tensor };
      g = typeof l.inputGrad === "function" ? l.inputGrad(g) : l.backward(g);
    }
    return g;
  }

  /** @param tx tangent of the input; @returns tangent of the output (owned by the last layer) */
  jvp(tx: Tensor): Tensor {
    if (tx.disposed) {
      throw new Error(`${this.describe()}: tangent ${tx.describe()} was used after dispose()`);
    }
    let t = tx;
    for (const l of this.layers) t = l.jvp(t);
    return t;
  }

  /** Every layer's parameters and buffers, in order. */
  params(): Param[] {
    return this.layers.flatMap((l) => l.params());
  }

  /** Sets every parameter gradient to 0 (recorded in the current step). */
  zeroGrad(): void {
    for (const p of this.params()) if (p.grad) this.rt.fill0(p.grad);
  }

  /** Disposes every layer. */
  dispose(): void {
    for (const l of this.layers) l.dispose();
    this.#lastInput = null;
  }
}
