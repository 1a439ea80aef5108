/**
 * WebAssembly twins of shaders/weightnorm.wgsl (see src/wasm/README.md, "one backend interface"):
 * by kernel name (the `name` of the `Kernel` the op dispatches), then entry point.
 *
 * @module
 */

import type { TwinFamily } from "./twin.ts";

/** Twins by kernel name, then entry point. */
export const WEIGHTNORM_TWINS: TwinFamily = {};
