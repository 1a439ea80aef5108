/**
 * The backend interface: what every op, layer, loss, optimizer, regularizer, attack, metric and
 * `train()` needs from a runtime, and nothing about GPUs. Two classes implement it: the WebGPU
 * `Runtime` (src/gpu/runtime.ts) and the WebAssembly CPU `WasmRuntime` (src/wasm/runtime.ts).
 * Code above this file takes a {@linkcode Backend} and {@linkcode Tensor}s, so the same code runs
 * on both; `Runtime.create({ backend: "auto" | "webgpu" | "wasm" })` picks one.
 *
 * All the work reaches a backend through one call, {@linkcode Backend.dispatch}: a WGSL kernel and
 * its bindings, uniform params, override constants and workgroup grid. The WebGPU runtime records
 * it into the current step; the WebAssembly runtime runs the kernel's twin (src/wasm/kernels/) at
 * once. Ops are therefore synchronous on Wasm: `submit()` does nothing there, `read()` resolves at
 * once, and code written for the GPU's one-submit-per-step model runs unchanged.
 *
 * This file and src/kernel.ts sit below src/gpu and src/wasm in the import order; src/wasm
 * imports nothing from src/gpu, and src/gpu imports src/wasm only where `Runtime.create` picks
 * the backend.
 *
 * @module
 */

import type { Kernel } from "./kernel.ts";

/** Element types. All are 4 bytes wide. */
export type DType = "f32" | "u32" | "i32";

/** Typed array matching a dtype. */
export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "u32" ? Uint32Array
  : Int32Array;

/** The two backends. */
export type BackendKind = "webgpu" | "wasm";

/** Number of elements of a shape (1 for a scalar `[]`). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Formats a shape as `[2,3,4]` for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** Throws unless every dimension is a non-negative integer. */
export function checkShape(shape: readonly number[], what = "shape"): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new Error(
        `Invalid ${what} ${fmtShape(shape)}: dimensions must be non-negative integers`,
      );
    }
  }
}

/**
 * A dense, row-major tensor owned by a backend: a GPU buffer (WebGPU) or a block of the
 * WebAssembly memory (Wasm). Whoever creates a tensor owns it and frees it with `dispose()`.
 */
export interface Tensor {
  /** The backend that owns the memory. */
  readonly rt: Backend;
  /** Unique id (per backend kind), for debugging and error messages. */
  readonly id: number;
  /** Row-major dimensions. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Name shown in error messages. */
  name?: string;
  /** Byte length of the data (`4 * size`). */
  readonly byteLength: number;
  /**
   * Bytes of the memory behind the tensor (at least `byteLength`: a GPU buffer is rounded up to
   * its pool's size class). Kernels that read vec4s need a multiple of 16.
   */
  readonly capacity: number;
  /**
   * The identity of the memory (a GPUBuffer, or a byte offset in the Wasm memory): two tensors
   * alias exactly when their `storage` is the same (a `reshape` aliases its original).
   * Throws if the tensor was disposed.
   */
  readonly storage: unknown;
  /** True after `dispose()`. */
  readonly disposed: boolean;
  /** "tensor #12 'fc1.weight' f32[120,400]" */
  describe(): string;
  /** Frees the memory (returns it to the backend). Using the tensor afterwards throws. Idempotent. */
  dispose(): void;
  /** A view of the same memory with another shape of the same size; dispose the original. */
  reshape(shape: readonly number[]): Tensor;
  /** A copy of the data on the CPU (submits pending work on WebGPU). */
  read(): Promise<TypedArrayFor<DType>>;
}

/** How to launch a kernel. */
export interface DispatchSpec {
  /** Tensors bound, in ascending `@binding` order of the shader's storage variables. */
  bindings: Tensor[];
  /** Values of the shader's uniform `Params` struct, by field name. */
  params?: Record<string, number>;
  /** Workgroup counts `[x, y?, z?]`. */
  workgroups: readonly number[];
  /** Values of WGSL `override` constants (part of the pipeline cache key). */
  constants?: Record<string, number>;
}

/** The limits ops plan with (the WebGPU device's; generous ones on Wasm). */
export interface BackendLimits {
  /** Largest tensor one binding may cover, in bytes. */
  readonly maxStorageBufferBindingSize: number;
  /** Largest tensor, in bytes. */
  readonly maxBufferSize: number;
  /** Storage bindings one kernel may have. */
  readonly maxStorageBuffersPerShaderStage: number;
  /** Largest workgroup count per grid dimension. */
  readonly maxComputeWorkgroupsPerDimension: number;
}

/** Memory in use, as both backends report it (each adds its own fields). */
export interface BackendMemory {
  /** Bytes held by live tensors. */
  inUseBytes: number;
  /** Bytes the backend has taken for tensors, live or cached for reuse. */
  allocatedBytes: number;
  /**
   * Allocations so far that took new memory (WebGPU: buffers created; Wasm: heap blocks not
   * served by a freed one): constant over the steps of a loop that does not grow.
   */
  created: number;
  /**
   * The most bytes tensors may take, where the backend has a fixed cap (the WebAssembly
   * backend's memory limit); absent where it has none it knows of (WebGPU).
   */
  limitBytes?: number;
}

/** A runtime that owns tensors and runs kernels on them. */
export interface Backend {
  /** Which backend this is. */
  readonly kind: BackendKind;
  /** The adapter or engine, for messages: "llvmpipe (LLVM 15.0.6, 256 bits)", "WebAssembly SIMD, 2 threads". */
  readonly description: string;
  /**
   * True where kernels run on CPU cores (a software WebGPU adapter, or Wasm): ops then pick
   * their CPU-shaped launch (direct loads, small workgroups, no workgroup-memory tiling).
   */
  readonly isCpuAdapter: boolean;
  /** The limits ops plan with. */
  readonly limits: BackendLimits;
  /** Number of dispatches so far. */
  dispatches: number;
  /** Number of submitted steps so far (always 0 on Wasm, where nothing is deferred). */
  submits: number;
  /** An uninitialised tensor. */
  empty(shape: readonly number[], dtype?: DType, name?: string): Tensor;
  /** A tensor of zeros. */
  zeros(shape: readonly number[], dtype?: DType, name?: string): Tensor;
  /** A tensor holding `data` (dtype from the array type unless given). */
  upload(
    data: Float32Array | Uint32Array | Int32Array | number[],
    shape: readonly number[],
    dtype?: DType,
    name?: string,
  ): Tensor;
  /** Overwrites the contents of `t` with `data` (same number of elements). */
  write(t: Tensor, data: Float32Array | Uint32Array | Int32Array): void;
  /** `dst[dstOffset..] = src[srcOffset..]` for `count` elements (default all of src). */
  copy(src: Tensor, dst: Tensor, count?: number, srcOffset?: number, dstOffset?: number): void;
  /** Sets every element of `t` to 0. */
  fill0(t: Tensor): void;
  /** A copy of a tensor's data on the CPU. */
  read(t: Tensor): Promise<TypedArrayFor<DType>>;
  /**
   * The `index`-th placeholder tensor, for a storage binding an entry point leaves unused;
   * distinct indices are distinct memory, never disposed by the caller.
   */
  placeholder(index: number): Tensor;
  /** Runs (Wasm) or records (WebGPU) one dispatch of `kernel`. */
  dispatch(kernel: Kernel, spec: DispatchSpec): void;
  /** Workgroup counts for `n` items handled `perGroup` at a time, spread over x and y. */
  grid(n: number, perGroup: number): [number, number];
  /** Ends the current step (WebGPU: one queue submit; Wasm: nothing). */
  submit(): void;
  /** Waits for all work and throws any error it raised. */
  sync(): Promise<void>;
  /** Memory in use. */
  memory(): BackendMemory;
  /** Frees cached memory no tensor holds. */
  trim(): Promise<void>;
  /** Frees everything; the backend is unusable afterwards. */
  destroy(): void;
}

/**
 * Workgroup counts for `n` independent items handled `perGroup` at a time, spread over x and y
 * when x alone would exceed `maxPerDimension` (both backends' `grid`). Kernels recover the item
 * as `(wid.y * nwg.x + wid.x) * perGroup + lid.x`.
 */
export function gridFor(n: number, perGroup: number, maxPerDimension: number): [number, number] {
  const groups = Math.ceil(n / perGroup);
  if (groups <= maxPerDimension) return [groups, 1];
  const y = Math.ceil(groups / maxPerDimension);
  return [Math.ceil(groups / y), y];
}

/**
 * The error for a tensor handed to a backend that does not own it.
 * @param t the tensor
 * @param kind the backend it was handed to
 * @param kernel the kernel being dispatched, if any
 */
export function foreignTensorError(t: Tensor, kind: BackendKind, kernel?: string): Error {
  const owner = t.rt.kind === kind
    ? `another ${kind === "webgpu" ? "WebGPU" : "WebAssembly"} runtime`
    : `the ${t.rt.kind} backend`;
  return new Error(
    `${kernel ? `Kernel '${kernel}': ` : ""}${t.describe()} belongs to ${owner}, not this one; ` +
      `create it with this runtime (or copy it: upload(await t.read(), t.shape))`,
  );
}
