/**
 * The registry of WebAssembly twins of WGSL kernels, by kernel name (the `name` of the
 * `Kernel` an op dispatches) and entry point: one file here per file under shaders/.
 * Only matmul has its twins so far (issue 11).
 *
 * @module
 */

import { MATMUL_TWINS } from "./matmul.ts";
import type { Twin } from "./twin.ts";

export type { Twin };

/** Twins by kernel name, then entry point ("main" when the kernel names none). */
export const TWINS: Readonly<Record<string, Readonly<Record<string, Twin>>>> = {
  matmul: MATMUL_TWINS,
};
