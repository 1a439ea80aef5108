/**
 * `BasicBlock`: the two-convolution residual block of ResNet-18/34 (He, Zhang, Ren & Sun 2016,
 * "Deep Residual Learning for Image Recognition", Fig. 2 and option B for the projection
 * shortcut), with torchvision's module names so the parameters carry torchvision's `state_dict`
 * keys (`layer2.0.conv1.weight`, `layer2.0.bn1.running_mean`, `layer2.0.downsample.0.weight`,
 * ...; torchvision/models/resnet.py, `BasicBlock`):
 *
 * ```
 * y = relu( bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x) )
 * conv1: 3x3, stride s, pad 1, no bias      conv2: 3x3, stride 1, pad 1, no bias
 * shortcut = x, or downsample.1(downsample.0(x)) with downsample.0 a 1x1 conv of stride s
 *            (no bias) and downsample.1 a BatchNorm2d, when s ≠ 1 or the channels change
 * ```
 *
 * The three passes follow the graph: `backward` sends the gradient after the final ReLU down
 * both branches and adds what arrives at `x`; `jvp` does the same forwards (in training mode
 * through the BatchNorms' batch statistics, which couple the batch). The graph is
 * `relu(Branches([main, shortcut]))` ({@linkcode Branches}), which is also how the block takes
 * part in the Jacobian penalties: a chain of the merge (a branch point) and the final ReLU.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { JacobianRole, Layer, Param } from "./layer.ts";
import { Conv2d } from "./conv2d.ts";
import { BatchNorm } from "./batchnorm.ts";
import { Activation } from "./activation.ts";
import { Branches } from "./branches.ts";
import { Sequential } from "./sequential.ts";
import { checkBatch, checkTensor } from "./_util.ts";

/** Options of {@linkcode BasicBlock}. */
export interface BasicBlockOptions {
  /** Stride of conv1 and of the projection shortcut. Default 1. */
  stride?: number;
}

/**
 * torchvision's `BasicBlock(inplanes, planes, stride, downsample)` (expansion 1). Parameters
 * and buffers are created as PyTorch creates them before initialization: conv weights zero
 * (initializers set them), BatchNorm weight 1, bias 0, running mean 0, running var 1.
 * @example
 * ```ts
 * const block = new BasicBlock(rt, "layer2.0", 64, 128, { stride: 2 });
 * const y = block.forward(x); // (B, 64, 32, 32) -> (B, 128, 16, 16), owned by the block
 * ```
 */
export class BasicBlock implements Layer {
  /** 3x3, stride `stride`, padding 1, no bias. */
  readonly conv1: Conv2d;
  /** BatchNorm2d after conv1. */
  readonly bn1: BatchNorm;
  /** 3x3, stride 1, padding 1, no bias. */
  readonly conv2: Conv2d;
  /** BatchNorm2d after conv2. */
  readonly bn2: BatchNorm;
  /** The projection shortcut `[downsample.0 (1x1 conv), downsample.1 (BatchNorm)]`, or null. */
  readonly downsample: readonly [Conv2d, BatchNorm] | null;
  /** Stride of conv1 and of the projection shortcut. */
  readonly stride: number;
  #relu1: Activation;
  #relu2: Activation;
  /** main path + shortcut (identity: an empty Sequential). */
  #merge: Branches;
  #training = true;
  #inputShape: number[] | null = null;
  /**
   * In the Jacobian recipe: the merge of the two paths (a branch point whose paths hold the
   * convolutions and the BatchNorms), then the final ReLU.
   */
  readonly jacobian: JacobianRole;

  /**
   * @param rt runtime
   * @param name module path ("layer1.0")
   * @param inChannels channels of the input (torchvision's `inplanes`)
   * @param outChannels channels of the output (`planes`)
   * @param options stride (default 1)
   */
  constructor(
    readonly rt: Backend,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    options: BasicBlockOptions = {},
  ) {
    this.stride = options.stride ?? 1;
    if (!Number.isInteger(this.stride) || this.stride < 1) {
      throw new Error(`${this.describe()}: stride must be a positive integer, got ${this.stride}`);
    }
    const p = name ? `${name}.` : "";
    const s = this.stride;
    this.conv1 = new Conv2d(rt, `${p}conv1`, inChannels, outChannels, 3, {
      stride: s,
      padding: 1,
      bias: false,
    });
    this.bn1 = new BatchNorm(rt, `${p}bn1`, outChannels, { dims: 2 });
    this.#relu1 = new Activation(rt, `${p}relu`, "relu");
    this.conv2 = new Conv2d(rt, `${p}conv2`, outChannels, outChannels, 3, {
      padding: 1,
      bias: false,
    });
    this.bn2 = new BatchNorm(rt, `${p}bn2`, outChannels, { dims: 2 });
    this.downsample = s !== 1 || inChannels !== outChannels
      ? [
        new Conv2d(rt, `${p}downsample.0`, inChannels, outChannels, 1, { stride: s, bias: false }),
        new BatchNorm(rt, `${p}downsample.1`, outChannels, { dims: 2 }),
      ]
      : null;
    this.#relu2 = new Activation(rt, `${p}relu`, "relu");
    this.#merge = new Branches(rt, name, [
      new Sequential(rt, `${p}main`, [this.conv1, this.bn1, this.#relu1, this.conv2, this.bn2]),
      new Sequential(rt, `${p}shortcut`, this.downsample ?? []),
    ]);
    this.jacobian = { children: [this.#merge, this.#relu2] };
  }

  /** "layer2.0 (BasicBlock 64->128, s2)" */
  describe(): string {
    const s = this.stride !== 1 ? `, s${this.stride}` : "";
    return `${this.name || "block"} (BasicBlock ${this.inChannels}->${this.outChannels}${s})`;
  }

  /** The leaf layers in forward order of the residual branch, then the shortcut's. */
  get layers(): Layer[] {
    return [
      this.conv1,
      this.bn1,
      this.#relu1,
      this.conv2,
      this.bn2,
      ...(this.downsample ?? []),
      this.#relu2,
    ];
  }

  /** True in training mode (BatchNorm uses batch statistics); setting it sets every layer. */
  get training(): boolean {
    return this.#training;
  }

  set training(on: boolean) {
    this.#training = on;
    this.#merge.training = on;
    this.#relu2.training = on;
  }

  /** (B, in, H, W) -> (B, out, ⌈H/s⌉, ⌈W/s⌉). */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 4 || inputShape[1] !== this.inChannels) {
      throw new Error(
        `${this.describe()}: expected input [B,${this.inChannels},H,W], got ${
          fmtShape(inputShape)
        }`,
      );
    }
    checkBatch(this.describe(), inputShape);
    return this.bn2.outputShape(
      this.conv2.outputShape(this.bn1.outputShape(this.conv1.outputShape(inputShape))),
    );
  }

  /** @param x (B, in, H, W) f32; @returns block-owned (B, out, H', W') */
  forward(x: Tensor): Tensor {
    checkTensor(this.describe(), x, "input");
    this.outputShape(x.shape);
    const sum = this.#merge.forward(x);
    this.#inputShape = [...x.shape];
    return this.#relu2.forward(sum);
  }

  #check(what: string, t: Tensor): void {
    if (!this.#inputShape) throw new Error(`${this.describe()}: ${what}() before forward()`);
    checkTensor(this.describe(), t, what === "jvp" ? "tangent" : "gradient");
  }

  #vjp(dy: Tensor, accumulate: boolean): Tensor {
    const g = this.#relu2.backward(dy);
    return accumulate ? this.#merge.backward(g) : this.#merge.inputGrad(g);
  }

  /**
   * @param dy (B, out, H', W') f32
   * @returns block-owned dx (B, in, H, W); accumulates every parameter's grad
   */
  backward(dy: Tensor): Tensor {
    this.#check("backward", dy);
    return this.#vjp(dy, true);
  }

  /**
   * The input gradient `Jᵀ dy` without touching any parameter gradient (as
   * {@linkcode Sequential.inputGrad}).
   * @param dy (B, out, H', W') f32
   * @returns block-owned dx (B, in, H, W)
   */
  inputGrad(dy: Tensor): Tensor {
    this.#check("inputGrad", dy);
    return this.#vjp(dy, false);
  }

  /**
   * @param tx (B, in, H, W) tangent of the input
   * @returns block-owned tangent of the output (in training mode through the batch statistics)
   */
  jvp(tx: Tensor): Tensor {
    this.#check("jvp", tx);
    if (tx.shape.join() !== this.#inputShape!.join()) {
      throw new Error(
        `${this.describe()}: tangent ${fmtShape(tx.shape)} does not match the input ${
          fmtShape(this.#inputShape!)
        } of the last forward`,
      );
    }
    return this.#relu2.jvp(this.#merge.jvp(tx));
  }

  /** conv1, bn1, conv2, bn2, downsample.0, downsample.1: torchvision's state_dict order. */
  params(): Param[] {
    return [
      ...this.conv1.params(),
      ...this.bn1.params(),
      ...this.conv2.params(),
      ...this.bn2.params(),
      ...(this.downsample ?? []).flatMap((l) => l.params()),
    ];
  }

  /** Frees every layer and the block's own buffers. */
  dispose(): void {
    this.#merge.dispose();
    this.#relu2.dispose();
    this.#inputShape = null;
  }
}
