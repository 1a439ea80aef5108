/**
 * regula: train, regularize and attack small neural networks on the GPU
 * through WebGPU, with hand-written WGSL compute shaders. The same code runs
 * in Deno and in browsers (see `dist/regula.js` from `deno task bundle`).
 *
 * Everything works on {@linkcode Tensor}s owned by a {@linkcode Runtime}:
 * whoever creates a tensor disposes it. Ops are plain functions
 * `op(rt, ...tensors, options)` that record GPU work; reading a result back
 * (`await t.read()`) submits it.
 *
 * @example
 * ```ts
 * import { Runtime, selfCheck } from "./mod.ts";
 *
 * const rt = await Runtime.create();
 * const x = rt.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(rt.description, await x.read()); // Float32Array [1, 2, 3, 4]
 * x.dispose();
 * for (const r of await selfCheck(rt)) console.log(r.name, r.ok ? "ok" : r.detail);
 * ```
 *
 * @module
 */

// Runtime: device, tensors, kernels.
export {
  type DeviceOptions,
  type GpuDeviceInfo,
  NoAdapterError,
  requestGpuDevice,
} from "./src/gpu/device.ts";
export { type DispatchSpec, Runtime, type RuntimeOptions } from "./src/gpu/runtime.ts";
export { byKernel, Profiler, type ProfileRow } from "./src/gpu/profile.ts";
export { type DType, Tensor, type TypedArrayFor } from "./src/gpu/tensor.ts";
export type { Kernel } from "./src/gpu/kernel.ts";
export { BufferPool, type PoolStats } from "./src/gpu/pool.ts";

// Ops: plain functions `op(rt, ...tensors, options)` over tensors.
export {
  axpy,
  binary,
  type BinaryOp,
  clamp,
  type ElementwiseOptions,
  fill,
  scale,
  unary,
  type UnaryOp,
} from "./src/ops/elementwise.ts";
export {
  matmul,
  type MatmulActivation,
  type MatmulOptions,
  type MatmulTiling,
} from "./src/ops/matmul.ts";
export {
  argmax,
  argmin,
  type ArgOptions,
  logSoftmax,
  reduce,
  type ReduceOp,
  type ReduceOptions,
  softmax,
  type SoftmaxOptions,
} from "./src/ops/reduce.ts";
export {
  bernoulliMask,
  randomBits,
  randomNormal,
  type RandomOptions,
  randomUniform,
  type Seed,
} from "./src/ops/random.ts";

// Layers: the layer contract and its implementations.
export type { Layer, Param } from "./src/layers/layer.ts";
export { BatchNorm, type BatchNormOptions } from "./src/layers/batchnorm.ts";
export * from "./src/layers/linear.ts";
export * from "./src/layers/conv2d.ts";
export * from "./src/layers/pool.ts";
export * from "./src/layers/activation.ts";
export * from "./src/layers/dropout.ts";
export * from "./src/layers/flatten.ts";
export * from "./src/layers/normalize.ts";
export * from "./src/layers/sequential.ts";
export * from "./src/layers/residual.ts";

// Models from a plain JSON description, with PyTorch state_dict names.
export * from "./src/models/mod.ts";

// Data: datasets parsed from bytes, GPU-resident batches, augmentation.
export * from "./src/data/dataset.ts";
export * from "./src/data/idx.ts";
export * from "./src/data/cifar.ts";
export * from "./src/data/toy.ts";
export * from "./src/data/batches.ts";
export * from "./src/data/augment.ts";

// Losses: softmax cross-entropy, mean squared error, argmax-accuracy count, fused on the GPU.
export * from "./src/losses/mod.ts";

// Training: optimizers, schedules, the loop, early stopping, checkpoints.
export * from "./src/train/optim.ts";
export * from "./src/train/schedule.ts";
export * from "./src/train/train.ts";
export * from "./src/train/early_stopping.ts";
export * from "./src/io/checkpoint.ts";
export * from "./src/io/safetensors.ts";

// Regularizers: penalties, projections and transforms, pure functions over GPU buffers.
export type { Regularizer, StepContext } from "./src/hooks/step.ts";
export * from "./src/regularizers/penalties.ts";
export * from "./src/regularizers/projections.ts";
export * from "./src/regularizers/noise.ts";
export * from "./src/regularizers/smoothing.ts";
export * from "./src/regularizers/jacobian.ts";
export * from "./src/regularizers/determinant.ts";
export * from "./src/regularizers/confidence.ts";
export * from "./src/regularizers/gradient_norm.ts";
export * from "./src/regularizers/registry.ts";
export * from "./src/linalg/svd.ts";

// Attacks and robustness evaluation.
export * from "./src/attacks/mod.ts";

// Metrics: calibration, Jacobian norms, decision planes and their total variation, saliency, PCA.
export * from "./src/metrics/mod.ts";

// Checks that run the same in Deno and in a browser.
export { checkNames, type CheckResult, selfCheck, type SelfCheckOptions } from "./src/selfcheck.ts";
