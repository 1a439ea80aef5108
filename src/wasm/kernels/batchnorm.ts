/**
 * WebAssembly twins of shaders/batchnorm.wgsl and batchnorm_state.wgsl (see src/wasm/README.md,
 * "one backend interface"), as src/layers/batchnorm.ts dispatches them: `batchnorm.stats`
 * (`stats_main`), `batchnorm.affine` (`affine_main`), `batchnorm.bwd_reduce`
 * (`bwd_reduce_main`), `batchnorm.bwd_dx` (`bwd_dx_main`), `batchnorm.update_running`
 * (`update_running_main`), `batchnorm.eval_stats` (`eval_stats_main`), `batchnorm.accum_grads`
 * (`accum_grads_main`); and of shaders/batchnorm_jr.wgsl (training-mode BatchNorm in the
 * Jacobian penalties): `batchnorm.jr_sums` (`sums_main`), `batchnorm.jr_inject` (`inject_main`).
 *
 * Threading plan: the per-channel reductions (stats, bwd_reduce) split the channels across
 * threads, each channel summed whole by one thread; the elementwise passes (affine, bwd_dx) split
 * the elements; the per-channel state updates are O(C) and run on the calling thread. Results are
 * bitwise the same on any thread count.
 *
 * @module
 */

import type { WasmTensor } from "../tensor.ts";
import { gridChannels, gridItems, MIN_WORK, param, splitWork } from "./_split.ts";
import type { Twin, TwinFamily } from "./twin.ts";

/**
 * (b, c, s) of the batchnorm and batchnorm_jr kernels, checked against the bindings: `data`
 * hold (B, C, S) values, each of `perChannel` its number of rows of C values.
 */
function dims(
  kernel: string,
  p: Readonly<Record<string, number>>,
  data: readonly WasmTensor[],
  perChannel: readonly [WasmTensor, number][],
): { b: number; c: number; s: number } {
  const b = param(kernel, p, "b"), c = param(kernel, p, "c"), s = param(kernel, p, "s");
  if (!(c >= 1 && s >= 1)) throw new Error(`Kernel '${kernel}': c and s must be >= 1`);
  for (const t of data) {
    if (t.size < b * c * s) {
      throw new Error(`Kernel '${kernel}': ${t.describe()} holds fewer than (${b}, ${c}, ${s})`);
    }
  }
  for (const [t, rows] of perChannel) {
    if (t.size < rows * c) {
      throw new Error(`Kernel '${kernel}': ${t.describe()} < (${rows}, ${c})`);
    }
  }
  return { b, c, s };
}

const stats: Twin = (rt, [x, _aux, _y, _gamma, _beta, st], p, _c, workgroups) => {
  const kernel = "batchnorm.stats";
  const { b, c, s } = dims(kernel, p, [x], [[st, 5]]);
  const channels = gridChannels(kernel, workgroups, c);
  const eps = param(kernel, p, "eps");
  rt.parallel(
    "batchnorm_stats",
    splitWork(rt, channels, b * s)
      .map(([c0, c1]) => [c0, c1 - c0, b, c, s, x.ptr, st.ptr, eps]),
  );
};

const bwdReduce: Twin = (rt, [dy, x, _y, _gamma, _beta, st], p, _c, workgroups) => {
  const kernel = "batchnorm.bwd_reduce";
  const { b, c, s } = dims(kernel, p, [dy, x], [[st, 5]]);
  const channels = gridChannels(kernel, workgroups, c);
  rt.parallel(
    "batchnorm_bwdReduce",
    splitWork(rt, channels, 2 * b * s)
      .map(([c0, c1]) => [c0, c1 - c0, b, c, s, dy.ptr, x.ptr, st.ptr]),
  );
};

const affine: Twin = (rt, [x, _aux, y, gamma, beta, st], p, _c, workgroups) => {
  const kernel = "batchnorm.affine";
  const { b, c, s } = dims(kernel, p, [x, y], [[st, 5]]);
  const mode = param(kernel, p, "mode") === 0 ? 0 : 1;
  const n = gridItems(b * c * s, workgroups);
  rt.parallel(
    "batchnorm_affine",
    splitWork(rt, n, 1, MIN_WORK, 4)
      .map(([i0, i1]) => [i0, i1 - i0, c, s, x.ptr, y.ptr, gamma.ptr, beta.ptr, st.ptr, mode]),
  );
};

const bwdDx: Twin = (rt, [dy, x, dx, gamma, _beta, st], p, _c, workgroups) => {
  const kernel = "batchnorm.bwd_dx";
  // The WGSL's mode test is `== 1u` (eval); anything else is the training gradient.
  const mode = param(kernel, p, "mode") === 1 ? 1 : 0;
  const { b, c, s } = dims(kernel, p, mode === 0 ? [dy, x, dx] : [dy, dx], [[st, 5]]);
  const n = gridItems(b * c * s, workgroups);
  rt.parallel(
    "batchnorm_bwdDx",
    splitWork(rt, n, 1, MIN_WORK, 4)
      .map(([i0, i1]) => [i0, i1 - i0, b, c, s, dy.ptr, x.ptr, dx.ptr, gamma.ptr, st.ptr, mode]),
  );
};

/** (channels covered, C) of the state kernels: one thread per channel, 64 per workgroup. */
function stateChannels(
  kernel: string,
  p: Readonly<Record<string, number>>,
  workgroups: readonly number[],
  st: WasmTensor,
  perChannel: readonly WasmTensor[],
): [number, number] {
  const c = param(kernel, p, "c");
  const channels = Math.min(c, workgroups[0] * 64);
  if (st.size < 5 * c) throw new Error(`Kernel '${kernel}': stats ${st.describe()} < (5, ${c})`);
  for (const t of perChannel) {
    if (t.size < channels) throw new Error(`Kernel '${kernel}': ${t.describe()} < (${channels},)`);
  }
  return [channels, c];
}

const updateRunning: Twin = (rt, [st, mean, variance, _dg, _db, tracked], p, _c, workgroups) => {
  const kernel = "batchnorm.update_running";
  const [channels, c] = stateChannels(kernel, p, workgroups, st, [mean, variance]);
  rt.kernels.batchnorm_updateRunning(
    channels,
    c,
    st.ptr,
    mean.ptr,
    variance.ptr,
    tracked.ptr,
    param(kernel, p, "momentum"),
  );
};

const evalStats: Twin = (rt, [st, mean, variance], p, _c, workgroups) => {
  const kernel = "batchnorm.eval_stats";
  const [channels, c] = stateChannels(kernel, p, workgroups, st, [mean, variance]);
  rt.kernels.batchnorm_evalStats(
    channels,
    c,
    st.ptr,
    mean.ptr,
    variance.ptr,
    param(kernel, p, "eps"),
  );
};

const accumGrads: Twin = (rt, [st, _mean, _var, dg, db], p, _c, workgroups) => {
  const kernel = "batchnorm.accum_grads";
  const [channels, c] = stateChannels(kernel, p, workgroups, st, [dg, db]);
  rt.kernels.batchnorm_accumGrads(channels, c, st.ptr, dg.ptr, db.ptr);
};

const jrSums: Twin = (rt, [x, bs, r, _gamma, st, sums, dg], p, _c, workgroups) => {
  const kernel = "batchnorm.jr_sums";
  const { b, c, s } = dims(kernel, p, [x, bs, r], [[st, 2], [sums, 5], [dg, 1]]);
  const channels = gridChannels(kernel, workgroups, c);
  rt.parallel(
    "batchnorm_jrSums",
    splitWork(rt, channels, 5 * b * s)
      .map(([c0, c1]) => [c0, c1 - c0, b, c, s, x.ptr, bs.ptr, r.ptr, st.ptr, sums.ptr, dg.ptr]),
  );
};

const jrInject: Twin = (rt, [x, bs, r, gamma, st, sums, _dg, out], p, _c, workgroups) => {
  const kernel = "batchnorm.jr_inject";
  const { b, c, s } = dims(kernel, p, [x, bs, r, out], [[gamma, 1], [st, 2], [sums, 5]]);
  const n = gridItems(b * c * s, workgroups);
  rt.parallel(
    "batchnorm_jrInject",
    splitWork(rt, n, 1, MIN_WORK, 4).map((
      [i0, i1],
    ) => [i0, i1 - i0, b, c, s, x.ptr, bs.ptr, r.ptr, gamma.ptr, st.ptr, sums.ptr, out.ptr]),
  );
};

/** Twins by kernel name, then entry point. */
export const BATCHNORM_TWINS: TwinFamily = {
  "batchnorm.stats": { stats_main: stats },
  "batchnorm.affine": { affine_main: affine },
  "batchnorm.bwd_reduce": { bwd_reduce_main: bwdReduce },
  "batchnorm.bwd_dx": { bwd_dx_main: bwdDx },
  "batchnorm.update_running": { update_running_main: updateRunning },
  "batchnorm.eval_stats": { eval_stats_main: evalStats },
  "batchnorm.accum_grads": { accum_grads_main: accumGrads },
  "batchnorm.jr_sums": { sums_main: jrSums },
  "batchnorm.jr_inject": { inject_main: jrInject },
};
