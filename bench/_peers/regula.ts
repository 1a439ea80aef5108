/**
 * regula's side of bench/train.ts: LeNet-5 and DDNet from `buildModel` (src/models), and one
 * training step = forward, softmax cross-entropy, backward, SGD with momentum (gradients zeroed
 * inside the update), recorded into one encoder and submitted once. Nothing is read back per
 * step. Also {@linkcode profileStep}, the per-dispatch profile behind `bench/train.ts --profile`.
 *
 * @module
 */

import type { Runtime } from "../../src/gpu/runtime.ts";
import type { Tensor } from "../../src/gpu/tensor.ts";
import type { Sequential } from "../../src/layers/sequential.ts";
import { buildModel } from "../../src/models/model.ts";
import { createOptimizer, type Optimizer } from "../../src/train/optim.ts";
import { type CrossEntropyResult, softmaxCrossEntropy } from "../../src/losses/cross_entropy.ts";
import type { ModelName, TrainConfig, Trainer } from "./common.ts";

/**
 * The library's LeNet-5 (tanh) or DDNet (dropout 0.5 after fc1 and fc2) from src/models, PyTorch
 * default initialisation, no input normalisation (the peers have none).
 * @param dropout false: DDNet without its dropout layers (LeNet has none)
 */
export function buildRegulaModel(rt: Runtime, model: ModelName, dropout = true): Sequential {
  const spec = model === "ddnet" ? { kind: model, dropout: dropout ? 0.5 : 0 } : { kind: model };
  return buildModel(rt, spec, { seed: 1 });
}

/** regula's {@linkcode Trainer}, with its model. */
export interface RegulaTrainer extends Trainer {
  net: Sequential;
}

/**
 * Builds the model, synthetic data (fixed batch) and optimizer.
 * @param rt runtime
 * @param cfg configuration
 * @param x (B, ...inputShape) data
 * @param y (B,) labels
 */
export function regulaTrainer(
  rt: Runtime,
  cfg: TrainConfig,
  x: Float32Array,
  y: Int32Array,
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
  return {
    name: "regula",
    net,
    sync: () => rt.sync(),
    step() {
      net.setCounter(t++);
      const logits = net.forward(xt);
      ce = softmaxCrossEntropy(rt, logits, yt, { out: ce ?? undefined });
      // As train() does: the first layer's input gradient, which nobody reads, is skipped
      // (TF.js and jax-js differentiate with respect to the parameters only, so they skip it too).
      net.backwardParams(ce.dLogits!);
      opt.step(params, cfg.lr);
      rt.submit();
    },
    async loss() {
      return ce ? (await ce.loss.read())[0] : NaN;
    },
    dispose() {
      ce?.dispose();
      opt.dispose();
      net.dispose();
      xt.dispose();
      yt.dispose();
    },
  };
}

/** Kernel name and workgroup count of a dispatch recorded by {@linkcode profileStep}. */
export interface DispatchProfile {
  kernel: string;
  what: string;
  ms: number;
}

/**
 * Times every dispatch of one step in isolation: records the step's dispatches, then replays
 * each one `reps` times in one submit and waits (minus the cost of an empty submit).
 * @returns per-dispatch times, in step order
 */
export async function profileStep(
  rt: Runtime,
  trainer: RegulaTrainer,
  reps = 10,
): Promise<DispatchProfile[]> {
  // deno-lint-ignore no-explicit-any
  const r = rt as any;
  const orig = r.dispatch.bind(rt);
  // deno-lint-ignore no-explicit-any
  const recorded: [any, any][] = [];
  // deno-lint-ignore no-explicit-any
  r.dispatch = (k: unknown, spec: any) => {
    // Keep the buffers, not the tensors: temporaries are disposed (and their buffers pooled)
    // within the step; for timing, replaying on a recycled buffer is fine.
    const bindings = spec.bindings.map((t: Tensor) => ({
      buffer: t.buffer,
      shape: t.shape,
      describe: () => t.describe(),
    }));
    recorded.push([k, { ...spec, bindings }]);
    orig(k, spec);
  };
  trainer.step();
  await rt.sync();
  r.dispatch = orig;
  const empty = async () => {
    const t0 = performance.now();
    rt.submit();
    await rt.sync();
    return performance.now() - t0;
  };
  let base = Infinity;
  for (let i = 0; i < 5; i++) base = Math.min(base, await empty());
  const out: DispatchProfile[] = [];
  for (const [k, spec] of recorded) {
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      const t0 = performance.now();
      for (let i = 0; i < reps; i++) orig(k, spec);
      await rt.sync();
      best = Math.min(best, (performance.now() - t0 - base) / reps);
    }
    const b = spec.bindings.map((t: Tensor) => `[${t.shape}]`).join(" ");
    const c = spec.constants ? JSON.stringify(spec.constants) : "";
    out.push({ kernel: k.name, what: `${b} wg=${spec.workgroups} ${c}`, ms: +best.toFixed(3) });
  }
  return out;
}
