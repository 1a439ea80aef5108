/**
 * The runtime: a WebGPU device ({@linkcode requestGpuDevice}, or a clear
 * {@linkcode NoAdapterError}), {@linkcode Tensor}s (a GPU buffer, a shape, a
 * dtype) owned by a {@linkcode Runtime}, its buffer pool and kernel dispatch.
 * Whoever creates a tensor disposes it.
 *
 * @example
 * ```ts
 * import { Runtime } from "@regula/regula/gpu";
 *
 * const rt = await Runtime.create();
 * const x = rt.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(rt.description, await x.read()); // Float32Array [1, 2, 3, 4]
 * x.dispose();
 * ```
 *
 * @module
 */

export {
  type DeviceOptions,
  type GpuDeviceInfo,
  NoAdapterError,
  requestGpuDevice,
} from "./device.ts";
export {
  type BackendChoice,
  type BackendOptions,
  isSoftwareAdapter,
  Runtime,
  type RuntimeOptions,
} from "./runtime.ts";
export { byKernel, Profiler, type ProfileRow } from "./profile.ts";
export { type DType, GpuTensor, type TypedArrayFor } from "./tensor.ts";
export type { Kernel } from "../kernel.ts";
export type { DispatchSpec } from "../backend.ts";
export { BufferPool, type PoolStats } from "./pool.ts";
