/**
 * WebAssembly twins of shaders/layernorm.wgsl (see src/wasm/README.md, "one backend interface"):
 * by kernel name (the `name` of the `Kernel` the op dispatches, src/layers/layernorm.ts), then
 * entry point. The bindings are `[x, u, v, gamma, beta, stats, sums, out]`, the params
 * `rows, m, affc, affs, eps, mode`, the constants `AFFINE` (default true), `GAMMA_U`,
 * `GAMMA_OUT`, `TWO` (default false). The kernels are in wasm/assembly/layernorm.ts; the row
 * kernels split rows across threads, the element kernels elements, `affine_grad_main` the
 * affine indices.
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";
import type { WasmTensor } from "../tensor.ts";
import type { Twin, TwinFamily } from "./twin.ts";
import { flag, param, splitWork } from "./_split.ts";

interface Layout {
  rows: number;
  m: number;
  affc: number;
  affs: number;
}

function layout(entry: string, p: Readonly<Record<string, number>>): Layout {
  const name = `layernorm.${entry}`;
  const l = {
    rows: param(name, p, "rows"),
    m: param(name, p, "m"),
    affc: param(name, p, "affc"),
    affs: param(name, p, "affs"),
  };
  if (l.m < 1 || l.affc < 1 || l.affs < 1) {
    throw new Error(
      `Kernel '${name}': m, affc and affs must be positive, got ${JSON.stringify(l)}`,
    );
  }
  return l;
}

const rowRanges = (rt: WasmRuntime, l: Layout) => splitWork(rt, l.rows, l.m);
const elementRanges = (rt: WasmRuntime, l: Layout) => splitWork(rt, l.rows * l.m, 1);

/** stats (rows, 2) ← (mean, 1/sqrt(var + eps)) of each row of x (rows, M). */
const statsMain: Twin = (rt, [x, , , , , stats], p) => {
  const l = layout("stats_main", p);
  const eps = param("layernorm.stats_main", p, "eps");
  rt.parallel(
    "layernorm_stats",
    rowRanges(rt, l).map(([r0, r1]) => [x.ptr, stats.ptr, l.m, eps, r0, r1]),
  );
};

/** out (rows, M) ← x̂ [γ + β]. */
const forwardMain: Twin = (rt, [x, , , gamma, beta, stats, , out], p, c) => {
  const l = layout("forward_main", p);
  const affine = flag(c, "AFFINE", true);
  rt.parallel(
    "layernorm_forward",
    elementRanges(rt, l).map(([e0, e1]) => [
      x.ptr,
      gamma.ptr,
      beta.ptr,
      stats.ptr,
      out.ptr,
      l.m,
      l.affc,
      l.affs,
      affine,
      e0,
      e1,
    ]),
  );
};

/** sums (rows, 5) ← S0..S4 of ũ = [γ ⊙] u and v (S2..S4 with TWO). */
const rowSumsMain: Twin = (rt, [x, u, v, gamma, , stats, sums], p, c) => {
  const l = layout("row_sums_main", p);
  const gammaU = flag(c, "GAMMA_U", false), two = flag(c, "TWO", false);
  rt.parallel(
    "layernorm_rowSums",
    rowRanges(rt, l).map(([r0, r1]) => [
      x.ptr,
      u.ptr,
      v.ptr,
      gamma.ptr,
      stats.ptr,
      sums.ptr,
      l.m,
      l.affc,
      l.affs,
      gammaU,
      two,
      r0,
      r1,
    ]),
  );
};

/** out (rows, M) ← [γ ⊙] P ũ. */
const projectMain: Twin = (rt, [x, u, , gamma, , stats, sums, out], p, c) => {
  const l = layout("project_main", p);
  const gammaU = flag(c, "GAMMA_U", false), gammaOut = flag(c, "GAMMA_OUT", false);
  rt.parallel(
    "layernorm_project",
    elementRanges(rt, l).map(([e0, e1]) => [
      x.ptr,
      u.ptr,
      gamma.ptr,
      stats.ptr,
      sums.ptr,
      out.ptr,
      l.m,
      l.affc,
      l.affs,
      gammaU,
      gammaOut,
      e0,
      e1,
    ]),
  );
};

/** out (rows, M) ← the Jacobian-regularizer injection at x. */
const injectMain: Twin = (rt, [x, u, v, gamma, , stats, sums, out], p, c) => {
  const l = layout("inject_main", p);
  const gammaU = flag(c, "GAMMA_U", false);
  rt.parallel(
    "layernorm_inject",
    elementRanges(rt, l).map(([e0, e1]) => [
      x.ptr,
      u.ptr,
      v.ptr,
      gamma.ptr,
      stats.ptr,
      sums.ptr,
      out.ptr,
      l.m,
      l.affc,
      l.affs,
      gammaU,
      e0,
      e1,
    ]),
  );
};

/** out (affC,) += Σ over each affine index of u ⊙ w, w by `mode` (0 x̂, 1 one, 2 P v). */
const affineGradMain: Twin = (rt, b: readonly WasmTensor[], p) => {
  const [x, u, v, , , stats, sums, out] = b;
  const l = layout("affine_grad_main", p);
  const mode = param("layernorm.affine_grad_main", p, "mode");
  const perIndex = (l.rows * l.m) / l.affc;
  rt.parallel(
    "layernorm_affineGrad",
    splitWork(rt, l.affc, perIndex).map(([a0, a1]) => [
      x.ptr,
      u.ptr,
      v.ptr,
      stats.ptr,
      sums.ptr,
      out.ptr,
      l.rows,
      l.m,
      l.affc,
      l.affs,
      mode,
      a0,
      a1,
    ]),
  );
};

/** Twins by kernel name, then entry point. */
export const LAYERNORM_TWINS: TwinFamily = {
  "layernorm.stats_main": { stats_main: statsMain },
  "layernorm.forward_main": { forward_main: forwardMain },
  "layernorm.row_sums_main": { row_sums_main: rowSumsMain },
  "layernorm.project_main": { project_main: projectMain },
  "layernorm.inject_main": { inject_main: injectMain },
  "layernorm.affine_grad_main": { affine_grad_main: affineGradMain },
};
