/**
 * WebAssembly twins of shaders/regularizers.wgsl (see src/wasm/README.md, "one backend
 * interface"): by kernel name (`regularizers.<entry>`, dispatched by `launch` in
 * src/regularizers/_params.ts), then entry point. The bindings are `[a, b, out, acc]`, the params
 * `n, m, k, off, mode, c1, c2`. The kernels are in wasm/assembly/regularizers.ts; the output items
 * (penalty chunks, rows, columns, elements) are split across threads, the one-workgroup entry
 * points (`normalize_main`, `spectral_value_main`) run on one thread.
 *
 * The WGSL takes two item counts from the grid: `penalty_main` runs the chunks
 * `g < min(ceil(n / 2048), x · y workgroups)` and `gram_residual_main` the rows `i < x workgroups`
 * (its row is `workgroup_id.x`); the twins do the same (the latter at most n rows).
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitWork } from "./_split.ts";

const CHUNK = 2048;

const num = (entry: string, p: Readonly<Record<string, number>>, name: string) =>
  param(`regularizers.${entry}`, p, name);

/** acc[off + g] ← chunk g's part of c1 Σ|w| + (c2/2) Σ w²; mode ≠ 0: out += c1 sign(w) + c2 w. */
const penalty: Twin = (rt, [a, , out, acc], p, _c, wg) => {
  const e = "penalty_main";
  const n = num(e, p, "n");
  const groups = Math.min(Math.ceil(n / CHUNK), wg[0] * wg[1]);
  const grad = num(e, p, "mode") !== 0 ? 1 : 0;
  const [off, c1, c2] = [num(e, p, "off"), num(e, p, "c1"), num(e, p, "c2")];
  rt.parallel(
    "regularizers_penalty",
    splitWork(rt, groups, CHUNK).map(([g0, g1]) => [
      a.ptr,
      out.ptr,
      acc.ptr,
      n,
      off,
      grad,
      c1,
      c2,
      g0,
      g1,
    ]),
  );
};

/** out (n, n) ← G − I in place; acc[off + i] ← c1 Σ_j (G − I)[i, j]². */
const gramResidual: Twin = (rt, [, , out, acc], p, _c, wg) => {
  const e = "gram_residual_main";
  const n = num(e, p, "n");
  const rows = Math.min(wg[0], n);
  const [off, c1] = [num(e, p, "off"), num(e, p, "c1")];
  rt.parallel(
    "regularizers_gramResidual",
    splitWork(rt, rows, n).map(([r0, r1]) => [
      out.ptr,
      acc.ptr,
      n,
      off,
      c1,
      r0,
      r1,
    ]),
  );
};

/** out (k,) ← aᵀ b, a (m, k), b (m,). */
const matvecT: Twin = (rt, [a, b, out], p) => {
  const m = num("matvec_t_main", p, "m"), k = num("matvec_t_main", p, "k");
  rt.parallel(
    "regularizers_matvecT",
    splitWork(rt, k, m).map(([j0, j1]) => [
      a.ptr,
      b.ptr,
      out.ptr,
      m,
      k,
      j0,
      j1,
    ]),
  );
};

/** out (m,) ← a b, a (m, k), b (k,). */
const matvec: Twin = (rt, [a, b, out], p) => {
  const m = num("matvec_main", p, "m"), k = num("matvec_main", p, "k");
  rt.parallel(
    "regularizers_matvec",
    splitWork(rt, m, k).map(([i0, i1]) => [
      a.ptr,
      b.ptr,
      out.ptr,
      k,
      i0,
      i1,
    ]),
  );
};

/** out (n,) ← out / ||out|| (zero stays zero); acc[off] ← ||out||. */
const normalize: Twin = (rt, [, , out, acc], p) => {
  rt.kernels.regularizers_normalize(
    out.ptr,
    acc.ptr,
    num("normalize_main", p, "n"),
    num("normalize_main", p, "off"),
  );
};

/** out (m, k) += c1 acc[off] a bᵀ. */
const outer: Twin = (rt, [a, b, out, acc], p) => {
  const e = "outer_main";
  const m = num(e, p, "m"), k = num(e, p, "k");
  const [off, c1] = [num(e, p, "off"), num(e, p, "c1")];
  rt.parallel(
    "regularizers_outer",
    splitWork(rt, m * k, 1).map(([e0, e1]) => [
      a.ptr,
      b.ptr,
      out.ptr,
      acc.ptr,
      k,
      off,
      c1,
      e0,
      e1,
    ]),
  );
};

/** out[0] ← c1 Σ_{l < n} acc[l]². */
const spectralValue: Twin = (rt, [, , out, acc], p) => {
  rt.kernels.regularizers_spectralValue(
    acc.ptr,
    out.ptr,
    num("spectral_value_main", p, "n"),
    num("spectral_value_main", p, "c1"),
  );
};

/** Rows of out (m, k) longer than c1 scaled to c1 / (r + 1e-7). */
const maxNorm: Twin = (rt, [, , out], p) => {
  const e = "max_norm_main";
  const m = num(e, p, "m"), k = num(e, p, "k"), c1 = num(e, p, "c1");
  rt.parallel(
    "regularizers_maxNorm",
    splitWork(rt, m, k).map(([i0, i1]) => [out.ptr, k, c1, i0, i1]),
  );
};

/** Twins by kernel name, then entry point. */
export const REGULARIZERS_TWINS: TwinFamily = {
  "regularizers.penalty_main": { penalty_main: penalty },
  "regularizers.gram_residual_main": { gram_residual_main: gramResidual },
  "regularizers.matvec_t_main": { matvec_t_main: matvecT },
  "regularizers.matvec_main": { matvec_main: matvec },
  "regularizers.normalize_main": { normalize_main: normalize },
  "regularizers.outer_main": { outer_main: outer },
  "regularizers.spectral_value_main": { spectral_value_main: spectralValue },
  "regularizers.max_norm_main": { max_norm_main: maxNorm },
};
