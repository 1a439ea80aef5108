/**
 * WebAssembly twins of shaders/metrics.wgsl (see src/wasm/README.md, "one backend interface"):
 * by kernel name (the `name` of the `Kernel` the op dispatches, `metrics.<entry>` from
 * src/metrics/_kernels.ts), then entry point. Every entry point binds `[xa (f32), xu (u32),
 * y (f32)]` and one `Params` struct (`n, d, k, res, start, half, flag, cls, h, w, win, stride,
 * nwx, baseline, scale`); the item count is the param `n` (times `d` or `k` where the WGSL's
 * items are elements), never the grid, which the host sizes to it. The kernels are
 * `metrics_*` in wasm/assembly/metrics.ts, split across threads by output rows (elements for
 * saliency_max), so results do not depend on the thread count.
 *
 * @module
 */

import type { WasmRuntime } from "../runtime.ts";
import type { WasmTensor } from "../tensor.ts";
import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitWork } from "./_split.ts";

/** Work (elements touched) below which a part is not worth a thread. */
const METRICS_MIN_WORK = 1 << 15;

function reader(entry: string, p: Readonly<Record<string, number>>) {
  return (name: string): number => param(`metrics.${entry}`, p, name);
}

function need(entry: string, t: WasmTensor, elements: number, what: string): void {
  if (t.size < elements) {
    throw new Error(
      `Kernel 'metrics.${entry}': ${what} needs ${elements} elements, got ${t.describe()}`,
    );
  }
}

/**
 * Runs `name` over items [0, total) in up to `rt.threads` contiguous parts of at least
 * METRICS_MIN_WORK / `work` items each; `args(lo, hi)` gives a part's arguments.
 */
function split(
  rt: WasmRuntime,
  name: string,
  total: number,
  work: number,
  args: (lo: number, hi: number) => number[],
): void {
  if (total <= 0) return;
  rt.parallel(name, splitWork(rt, total, work, METRICS_MIN_WORK).map(([lo, hi]) => args(lo, hi)));
}

const planePoints: Twin = (rt, [xa, , y], params) => {
  const num = reader("plane_points", params);
  const n = num("n"), d = num("d"), res = num("res");
  need("plane_points", xa, 3 * d, "xa [x; u; v]");
  need("plane_points", y, n * d, "y (n, d)");
  const start = num("start"), half = num("half"), flag = num("flag");
  split(rt, "metrics_planePoints", n, 3 * d, (lo, hi) => [
    xa.ptr,
    y.ptr,
    d,
    res,
    start,
    half,
    flag,
    lo,
    hi,
  ]);
};

const predStats: Twin = (rt, [xa, xu, y], params) => {
  const num = reader("pred_stats", params);
  const n = num("n"), k = num("k"), flag = num("flag");
  need("pred_stats", xa, n * k, "logits (n, k)");
  need("pred_stats", y, 4 * n, "y (n, 4)");
  if (flag === 1) need("pred_stats", xu, n, "labels (n,)");
  split(rt, "metrics_predStats", n, 2 * k, (lo, hi) => [xa.ptr, xu.ptr, y.ptr, k, flag, lo, hi]);
};

const sumsqRows: Twin = (rt, [xa, , y], params) => {
  const num = reader("sumsq_rows", params);
  const n = num("n"), d = num("d"), scale = num("scale");
  need("sumsq_rows", xa, n * d, "xa (n, d)");
  need("sumsq_rows", y, n, "y (n,)");
  split(rt, "metrics_sumsqRows", n, d, (lo, hi) => [xa.ptr, y.ptr, d, scale, lo, hi]);
};

const onehot: Twin = (rt, [, xu, y], params) => {
  const num = reader("onehot", params);
  const n = num("n"), k = num("k"), cls = num("cls"), flag = num("flag");
  need("onehot", y, n * k, "y (n, k)");
  if (flag === 1) need("onehot", xu, n, "classes (n,)");
  split(rt, "metrics_onehot", n, k, (lo, hi) => [xu.ptr, y.ptr, k, cls, flag, lo, hi]);
};

const saliencyMax: Twin = (rt, [xa, , y], params) => {
  const num = reader("saliency_max", params);
  const n = num("n"), k = num("k"), d = num("d");
  need("saliency_max", xa, n * k * d, "g (n, k, d)");
  need("saliency_max", y, n * d, "y (n, d)");
  split(rt, "metrics_saliencyMax", n * d, k, (lo, hi) => [xa.ptr, y.ptr, k, d, lo, hi]);
};

const occlude: Twin = (rt, [xa, , y], params) => {
  const num = reader("occlude", params);
  const n = num("n"), k = num("k"), h = num("h"), w = num("w");
  need("occlude", xa, k * h * w, "x (k, h, w)");
  need("occlude", y, n * k * h * w, "y (n, k, h, w)");
  const args = [num("win"), num("stride"), num("nwx"), num("start"), num("baseline")];
  split(rt, "metrics_occlude", n, k * h * w, (lo, hi) => [xa.ptr, y.ptr, k, h, w, ...args, lo, hi]);
};

const tvRows: Twin = (rt, [, xu, y], params) => {
  const num = reader("tv_rows", params);
  const n = num("n"), res = num("res");
  need("tv_rows", xu, n * res, "maps (n, res)");
  need("tv_rows", y, 2 * n, "y (n, 2)");
  split(rt, "metrics_tvRows", n, 2 * res, (lo, hi) => [xu.ptr, y.ptr, res, lo, hi]);
};

/** Twins by kernel name, then entry point. */
export const METRICS_TWINS: TwinFamily = {
  "metrics.plane_points": { plane_points: planePoints },
  "metrics.pred_stats": { pred_stats: predStats },
  "metrics.sumsq_rows": { sumsq_rows: sumsqRows },
  "metrics.onehot": { onehot },
  "metrics.saliency_max": { saliency_max: saliencyMax },
  "metrics.occlude": { occlude },
  "metrics.tv_rows": { tv_rows: tvRows },
};
