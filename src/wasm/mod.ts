/**
 * regula's WebAssembly CPU backend: a runtime that keeps tensors in one
 * `WebAssembly.Memory` and runs the WebAssembly twin of every WGSL kernel
 * (128-bit SIMD) on it, on several threads where `SharedArrayBuffer` allows.
 * It implements the `Backend` interface (src/backend.ts), so every op, layer,
 * model, loss, optimizer, regularizer, attack and metric takes it as it takes
 * the WebGPU `Runtime`. See src/wasm/README.md.
 *
 * @example
 * ```ts
 * import { wasmMatmul, WasmRuntime } from "./mod.ts";
 * const rt = await WasmRuntime.create();
 * const a = rt.upload(new Float32Array([1, 2, 3, 4]), [2, 2]);
 * console.log(wasmMatmul(rt, a, a).toArray()); // [7, 10, 15, 22]
 * console.log(rt.description); // "WebAssembly SIMD, 2 threads" on two cores
 * rt.destroy();
 * ```
 *
 * @module
 */

export { defaultThreads, WasmRuntime, type WasmRuntimeOptions } from "./runtime.ts";
export { WasmTensor } from "./tensor.ts";
export { type HeapStats } from "./heap.ts";
// The GEMM over Wasm tensors, below the ops: ops' `matmul` (src/ops) runs on this backend too,
// through its twin, so this one is named apart from it.
export { matmul as wasmMatmul, type WasmMatmulOptions } from "./matmul.ts";
export { relaxedSimdSupported, simdSupported, threadsUnavailableReason } from "./module.ts";
