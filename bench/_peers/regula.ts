/**
 * regula's side of bench/train.ts and bench/wasm_train.ts, on any backend: LeNet-5 and DDNet from `buildModel` (src/models), and one
 * training step = forward, softmax cross-entropy, backward, SGD with momentum (gradients zeroed
 * inside the update), recorded into one encoder and submitted once. Nothing is read back per
 * step. With `jacobian`, the step adds the Jacobian regularizer (src/regularizers/jacobian.ts) as
 * `train()` runs it, for the JR/plain step ratio.
 *
 * @module
 */

import type { Backend } from "../../src/backend.ts";
import type { Sequential } from "../../src/layers/sequential.ts";
import { buildModel } from "../../src/models/model.ts";
import { createOptimizer, type Optimizer } from "../../src/train/optim.ts";
import { type CrossEntropyResult, softmaxCrossEntropy } from "../../src/losses/cross_entropy.ts";
import { jacobianRegularizer } from "../../src/regularizers/jacobian.ts";
import type { Regularizer, StepContext } from "../../src/hooks/step.ts";
import type { ModelName, TrainConfig, Trainer } from "./common.ts";

/**
 * The library's LeNet-5 (tanh) or DDNet (dropout 0.5 after fc1 and fc2) from src/models, PyTorch
 * default initialisation, no input normalisation (the peers have none).
 * @param dropout false: DDNet without its dropout layers (LeNet has none)
 */
export function buildRegulaModel(rt: Backend, model: ModelName, dropout = true): Sequential {
  const spec = model === "ddnet" ? { kind: model, dropout: dropout ? 0.5 : 0 } : { kind: model };
  return buildModel(rt, spec, { seed: 1 });
}

/** regula's {@linkcode Trainer}, with its model. */
export interface RegulaTrainer extends Trainer {
  net: Sequential;
}

/** Options of {@linkcode regulaTrainer}. */
export interface RegulaTrainerOptions {
  /** Add Jacobian regularization (λ, projections per sample) to every step. Default none. */
  jacobian?: { lambda: number; nproj: number };
}

/**
 * Builds the model, synthetic data (fixed batch) and optimizer.
 * @param rt backend: the WebGPU runtime (bench/train.ts) or the WebAssembly one
 *   (bench/wasm_train.ts, where every op runs at once and `sync` has nothing to wait for)
 * @param cfg configuration
 * @param x (B, ...inputShape) data
 * @param y (B,) labels
 * @param opts `jacobian`: a Jacobian-regularized step
 */
export function regulaTrainer(
  rt: Backend,
  cfg: TrainConfig,
  x: Float32Array,
  y: Int32Array,
  opts: RegulaTrainerOptions = {},
): RegulaTrainer {
  const net = buildRegulaModel(rt, cfg.model);
  const xt = rt.upload(x, [cfg.batch, ...cfg.inputShape]);
  const yt = rt.upload(y, [cfg.batch], "i32");
  const opt: Optimizer = createOptimizer(rt, {
    algorithm: "sgd",
    momentum: cfg.momentum,
    zeroGrad: true,
  });
  const params = net.params();
  let ce: CrossEntropyResult | null = null;
  let t = 0;
  const jr: Regularizer | null = opts.jacobian ? jacobianRegularizer(opts.jacobian) : null;
  return {
    name: jr ? "regula-jr" : "regula",
    net,
    sync: () => rt.sync(),
    step() {
      const step = t++;
      net.setCounter(step);
      const logits = net.forward(xt);
      ce = softmaxCrossEntropy(rt, logits, yt, { out: ce ?? undefined });
      // As train() does: the first layer's input gradient, which nobody reads, is skipped
      // (TF.js and jax-js differentiate with respect to the parameters only, so they skip it too).
      if (!jr) net.backwardParams(ce.dLogits!);
      else {
        const ctx: StepContext = {
          rt,
          model: net,
          params,
          x: xt,
          y: yt,
          step,
          epoch: 0,
          stepsPerEpoch: 1,
          seed: 0,
        };
        // As train() does: the regularizer's backward serves the data loss too.
        jr.backward!(ctx, ce.dLogits!);
      }
      opt.step(params, cfg.lr);
      rt.submit();
    },
    async loss() {
      return ce ? (await ce.loss.read())[0] : NaN;
    },
    dispose() {
      ce?.dispose();
      jr?.dispose?.();
      opt.dispose();
      net.dispose();
      xt.dispose();
      yt.dispose();
    },
  };
}
