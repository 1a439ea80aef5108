/**
 * regula's WebAssembly CPU backend (work in progress, issue 11): a runtime
 * that keeps tensors in one `WebAssembly.Memory` and runs 128-bit SIMD
 * kernels on it, on several threads where `SharedArrayBuffer` allows. Today it
 * has the GEMM; see src/wasm/README.md for what is planned and how it will
 * meet the layers. Not yet exported from the root mod.ts.
 *
 * @example
 * ```ts
 * import { matmul, WasmRuntime } from "./mod.ts";
 * const rt = await WasmRuntime.create();
 * const a = rt.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(matmul(rt, a, a).toArray()); // [7, 10, 15, 22]
 * rt.destroy();
 * ```
 *
 * @module
 */

export { defaultThreads, WasmRuntime, type WasmRuntimeOptions } from "./runtime.ts";
export { WasmTensor } from "./tensor.ts";
export { type HeapStats } from "./heap.ts";
export { matmul, type WasmMatmulOptions } from "./matmul.ts";
export { simdSupported, threadsUnavailableReason } from "./module.ts";
