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
export { type DispatchSpec, Runtime } from "./src/gpu/runtime.ts";
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
// (add layers here: `export { Linear } from "./src/layers/linear.ts";` ...)
export type { Layer, Param } from "./src/layers/layer.ts";
export { BatchNorm, type BatchNormOptions } from "./src/layers/batchnorm.ts";

// Checks that run the same in Deno and in a browser.
export { checkNames, type CheckResult, selfCheck, type SelfCheckOptions } from "./src/selfcheck.ts";
