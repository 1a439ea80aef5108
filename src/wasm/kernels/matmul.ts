/**
 * WebAssembly twins of shaders/matmul.wgsl's entry points (see src/wasm/README.md, "one
 * backend interface"): the same bindings `[a, b, c, bias]`, the same `Params`
 * (`m, n, k, sa, sb, sc, alpha, beta, slope`) and override constants (`TRANS_A`, `TRANS_B`,
 * `ACT`, `HAS_BIAS`; the vec4-alignment and tiling constants mean nothing on a CPU), run by
 * `sgemm` (src/wasm/matmul.ts). The batch size is the WGSL grid's z count, as in the shader.
 *
 * @module
 */

import { runSgemm } from "../matmul.ts";
import { param } from "./_split.ts";
import type { Twin, TwinFamily } from "./twin.ts";

const matmulMain: Twin = (rt, [a, b, c, bias], p, constants, workgroups) => {
  const num = (name: string) => param("matmul", p, name);
  runSgemm(rt, {
    transA: (constants.TRANS_A ?? 0) !== 0,
    transB: (constants.TRANS_B ?? 0) !== 0,
    m: num("m"),
    n: num("n"),
    k: num("k"),
    batch: workgroups[2] ?? 1,
    alpha: num("alpha"),
    beta: num("beta"),
    act: constants.ACT ?? 0,
    slope: p.slope ?? 0.01,
    a: a.ptr,
    sa: num("sa"),
    b: b.ptr,
    sb: num("sb"),
    c: c.ptr,
    sc: num("sc"),
    bias: (constants.HAS_BIAS ?? 0) !== 0 ? bias.ptr : 0,
    threads: rt.threads,
  });
};

/** Twins by kernel name, then entry point. */
export const MATMUL_TWINS: TwinFamily = {
  matmul: { main: matmulMain },
};
