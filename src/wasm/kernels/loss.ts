/**
 * WebAssembly twins of shaders/loss.wgsl (see src/wasm/README.md, "one backend interface"), the
 * kernels of src/losses/: `loss.ce_rows` (entry `ce_rows_main`), `loss.sum` (`sum_main`),
 * `loss.mse` (`mse_main`) and `loss.argmax_count` (`argmax_count_main`), run by the `loss_*`
 * exports of wasm/assembly/loss.ts; the per-row and per-group ones split over threads by rows
 * (groups of 2048 elements), the single sum and the count on one thread (as the WGSL's one
 * workgroup and its integer atomics: the count is exact either way).
 *
 * Bindings `[x, labels, tgt, dx, y, cnt]` (unused ones are placeholders), params
 * `b, k, n, smoothing, gscale, lscale`, constants `SOFT`, `GRAD` (`T`, the invocations per row,
 * means nothing on a CPU).
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitWork } from "./_split.ts";

/** Elements per thread below which a call stays on one thread. */
const LOSS_MIN_WORK = 32768;

const ceRows: Twin = (rt, [x, labels, tgt, dx, y], p, constants) => {
  const kn = "loss.ce_rows";
  const b = param(kn, p, "b"), k = param(kn, p, "k");
  if (k < 1) throw new Error(`Kernel '${kn}': k must be at least 1, got ${k}`);
  const soft = (constants.SOFT ?? 0) !== 0 ? 1 : 0;
  const grad = (constants.GRAD ?? 1) !== 0 ? 1 : 0;
  const ptrs = [x.ptr, soft ? 0 : labels.ptr, soft ? tgt.ptr : 0, grad ? dx.ptr : 0, y.ptr];
  const eps = param(kn, p, "smoothing"), gscale = param(kn, p, "gscale");
  rt.parallel(
    "loss_ceRows",
    splitWork(rt, b, k, LOSS_MIN_WORK).map((
      [r0, r1],
    ) => [soft, grad, ...ptrs, k, eps, gscale, r0, r1]),
  );
};

const sum: Twin = (rt, [x, labels, _tgt, _dx, y, cnt], p) => {
  const kn = "loss.sum";
  const n = param(kn, p, "n"), k = param(kn, p, "k");
  rt.kernels.loss_sum(x.ptr, k > 0 ? labels.ptr : 0, y.ptr, cnt.ptr, n, k, param(kn, p, "lscale"));
};

const mse: Twin = (rt, [x, _labels, tgt, dx, y], p, constants) => {
  const kn = "loss.mse";
  const n = param(kn, p, "n");
  const grad = (constants.GRAD ?? 1) !== 0 ? 1 : 0;
  const gscale = param(kn, p, "gscale");
  const ptrs = [x.ptr, tgt.ptr, grad ? dx.ptr : 0, y.ptr];
  rt.parallel(
    "loss_mse",
    splitWork(rt, Math.ceil(n / 2048), 2048, LOSS_MIN_WORK).map((
      [g0, g1],
    ) => [grad, ...ptrs, n, gscale, g0, g1]),
  );
};

const argmaxCount: Twin = (rt, [x, labels, _tgt, _dx, _y, cnt], p) => {
  const kn = "loss.argmax_count";
  const b = param(kn, p, "b"), k = param(kn, p, "k");
  if (b === 0 || k === 0) return;
  rt.kernels.loss_argmaxCount(x.ptr, labels.ptr, cnt.ptr, b, k);
};

/** Twins by kernel name, then entry point. */
export const LOSS_TWINS: TwinFamily = {
  "loss.ce_rows": { ce_rows_main: ceRows },
  "loss.sum": { sum_main: sum },
  "loss.mse": { mse_main: mse },
  "loss.argmax_count": { argmax_count_main: argmaxCount },
};
