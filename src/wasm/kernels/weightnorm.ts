/**
 * WebAssembly twins of shaders/weightnorm.wgsl (see src/wasm/README.md, "one backend
 * interface"), as src/layers/weight_norm.ts dispatches them: `weightnorm.weight` (`weight_main`)
 * and `weightnorm.fold` (`fold_main`).
 *
 * Threading plan: the WGSL runs one workgroup per output row (the row count is the grid's x
 * count, as there); the rows are split across threads, each row's norm and dot product summed
 * whole by one thread, so results are bitwise the same on any thread count.
 *
 * @module
 */

import { param, splitWork } from "./_split.ts";
import type { WasmTensor } from "../tensor.ts";
import type { Twin, TwinFamily } from "./twin.ts";

/** (rows, k) of a dispatch, checked against the bindings. */
function shape(
  kernel: string,
  p: Readonly<Record<string, number>>,
  workgroups: readonly number[],
  perRow: readonly WasmTensor[],
  matrices: readonly WasmTensor[],
): [number, number] {
  const rows = workgroups[0];
  const k = param(kernel, p, "k");
  for (const t of perRow) {
    if (t.size < rows) throw new Error(`Kernel '${kernel}': ${t.describe()} < (${rows},)`);
  }
  for (const t of matrices) {
    if (t.size < rows * k) throw new Error(`Kernel '${kernel}': ${t.describe()} < (${rows}, ${k})`);
  }
  return [rows, k];
}

const weight: Twin = (rt, [g, v, w], p, _c, workgroups) => {
  const [rows, k] = shape("weightnorm.weight", p, workgroups, [g], [v, w]);
  rt.parallel(
    "weightnorm_weight",
    splitWork(rt, rows, k).map(([o0, o1]) => [o0, o1 - o0, k, g.ptr, v.ptr, w.ptr]),
  );
};

const fold: Twin = (rt, [g, v, dw, dg, dv], p, _c, workgroups) => {
  const [rows, k] = shape("weightnorm.fold", p, workgroups, [g, dg], [v, dw, dv]);
  rt.parallel(
    "weightnorm_fold",
    splitWork(rt, rows, k)
      .map(([o0, o1]) => [o0, o1 - o0, k, g.ptr, v.ptr, dw.ptr, dg.ptr, dv.ptr]),
  );
};

/** Twins by kernel name, then entry point. */
export const WEIGHTNORM_TWINS: TwinFamily = {
  "weightnorm.weight": { weight_main: weight },
  "weightnorm.fold": { fold_main: fold },
};
