/**
 * The contract of a WebAssembly twin of a WGSL entry point: it receives what
 * `Runtime.dispatch` receives (src/gpu/runtime.ts `DispatchSpec`), with
 * `WasmTensor`s for the storage bindings, and computes the same result before
 * it returns. See src/wasm/README.md.
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";
import type { WasmTensor } from "../tensor.ts";

/**
 * A twin: `bindings` in ascending `@binding` order of the WGSL storage variables, `params` the
 * uniform `Params` fields by name, `constants` the override constants, `workgroups` the grid
 * the WebGPU dispatch would launch (only for kernels whose WGSL reads it, as matmul's batch).
 */
export type Twin = (
  rt: WasmRuntime,
  bindings: readonly WasmTensor[],
  params: Readonly<Record<string, number>>,
  constants: Readonly<Record<string, number>>,
  workgroups: readonly number[],
) => void;

/** The twins of one family of WGSL files: by kernel name, then entry point ("main" by default). */
export type TwinFamily = Readonly<Record<string, Readonly<Record<string, Twin>>>>;
