/**
 * WebAssembly twins of shaders/jacobian.wgsl (see src/wasm/README.md, "one backend interface"):
 * by kernel name (`jacobian.<entry>`, dispatched by `launch` in src/regularizers/_chain.ts), then
 * entry point. The bindings are `[u, v, w, out, out2]`, the params `n, c, s, len, alpha, beta,
 * coef`. The kernels are in wasm/assembly/jacobian.ts; rows (samples for `det_main`, elements
 * for `one_hot_main`) are split across threads.
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitWork } from "./_split.ts";

const num = (entry: string, p: Readonly<Record<string, number>>, name: string) =>
  param(`jacobian.${entry}`, p, name);

/** out (n, c) ← each row divided by its norm. */
const normalizeRows: Twin = (rt, [, , , out], p) => {
  const n = num("normalize_rows_main", p, "n"), c = num("normalize_rows_main", p, "c");
  rt.parallel(
    "jacobian_normalizeRows",
    splitWork(rt, n, c).map(([r0, r1]) => [out.ptr, c, r0, r1]),
  );
};

/** out (n,) ← 1 where i % c == s, else 0. */
const oneHot: Twin = (rt, [, , , out], p) => {
  const n = num("one_hot_main", p, "n"), c = num("one_hot_main", p, "c");
  const s = num("one_hot_main", p, "s");
  rt.parallel(
    "jacobian_oneHot",
    splitWork(rt, n, 1).map(([e0, e1]) => [out.ptr, c, s, e0, e1]),
  );
};

/** out2 (n,) ← the confidence penalty per row of the logits u (n, c); with s = 1, out += its gradient. */
const confidence: Twin = (rt, [u, , , out, out2], p) => {
  const e = "confidence_main";
  const n = num(e, p, "n"), c = num(e, p, "c");
  const args = [
    num(e, p, "s") === 1 ? 1 : 0,
    num(e, p, "len") === 1 ? 1 : 0,
    num(e, p, "alpha"),
    num(e, p, "beta"),
    num(e, p, "coef"),
  ];
  rt.parallel(
    "jacobian_confidence",
    splitWork(rt, n, 8 * Math.max(1, c)).map(([r0, r1]) => [
      u.ptr,
      out.ptr,
      out2.ptr,
      c,
      ...args,
      r0,
      r1,
    ]),
  );
};

/** out (n, c) ← p ⊙ t − p (p · t), p = softmax(u), t = v, per row. */
const softmaxHvp: Twin = (rt, [u, v, , out], p) => {
  const n = num("softmax_hvp_main", p, "n"), c = num("softmax_hvp_main", p, "c");
  rt.parallel(
    "jacobian_softmaxHvp",
    splitWork(rt, n, 8 * Math.max(1, c)).map(([r0, r1]) => [
      u.ptr,
      v.ptr,
      out.ptr,
      c,
      r0,
      r1,
    ]),
  );
};

/** out (c, n, s) ← alpha ∂R/∂J, out2 (n,) ← R, per sample of the Jacobians u (c, n, s). */
const det: Twin = (rt, [u, , , out, out2], p) => {
  const e = "det_main";
  const n = num(e, p, "n"), c = num(e, p, "c"), s = num(e, p, "s");
  if (Math.min(c, s) > 16) {
    throw new Error(`Kernel 'jacobian.det_main': min(c ${c}, s ${s}) must be at most 16`);
  }
  const alpha = num(e, p, "alpha");
  const perSample = c * s * Math.min(c, s);
  rt.parallel(
    "jacobian_det",
    splitWork(rt, n, perSample).map(([b0, b1], t) => [
      u.ptr,
      out.ptr,
      out2.ptr,
      n,
      c,
      s,
      alpha,
      rt.scratch(t),
      b0,
      b1,
    ]),
  );
};

/** Twins by kernel name, then entry point. */
export const JACOBIAN_TWINS: TwinFamily = {
  "jacobian.normalize_rows_main": { normalize_rows_main: normalizeRows },
  "jacobian.one_hot_main": { one_hot_main: oneHot },
  "jacobian.confidence_main": { confidence_main: confidence },
  "jacobian.softmax_hvp_main": { softmax_hvp_main: softmaxHvp },
  "jacobian.det_main": { det_main: det },
};
