/**
 * WebAssembly twins of shaders/layers.wgsl (see src/wasm/README.md, "one backend interface"), as
 * src/layers/_util.ts dispatches them: `layers.sum_parts` (`sum_parts_main`), `layers.channel_sum`
 * (`channel_sum_main`), `layers.channel_affine` (`channel_affine_main`), `layers.act2`
 * (`act2_main`), `layers.bn_gamma` (`bn_gamma_main`).
 *
 * Threading plan: the elementwise kernels split their output elements into contiguous ranges,
 * the per-channel sums their channels (each channel summed whole by one thread, never split along
 * the sum), so results are bitwise the same on any thread count; below a few tens of thousands of
 * elements of work everything runs on the calling thread (a hand-off to a worker costs more).
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { gridChannels, gridItems, MIN_WORK, param, splitWork } from "./_split.ts";

const sumParts: Twin = (rt, [u, _v, _w, out], p, _c, workgroups) => {
  const kernel = "layers.sum_parts";
  const len = gridItems(param(kernel, p, "len"), workgroups);
  const stride = param(kernel, p, "len");
  const parts = param(kernel, p, "parts");
  if (len > out.size || (parts > 0 && (parts - 1) * stride + len > u.size)) {
    throw new Error(`Kernel '${kernel}': ${parts} parts of ${stride} do not fit ${u.describe()}`);
  }
  const beta = param(kernel, p, "beta");
  rt.parallel(
    "layers_sumParts",
    splitWork(rt, len, parts, MIN_WORK, 4)
      .map(([i0, i1]) => [i0, i1 - i0, stride, parts, u.ptr, out.ptr, beta]),
  );
};

const channelSum: Twin = (rt, [u, _v, _w, out], p, _c, workgroups) => {
  const kernel = "layers.channel_sum";
  const channels = gridChannels(kernel, workgroups, out.size);
  const n = param(kernel, p, "n"), c = param(kernel, p, "c"), s = param(kernel, p, "s");
  if (n * c * s > u.size) {
    throw new Error(`Kernel '${kernel}': (${n}, ${c}, ${s}) > ${u.describe()}`);
  }
  const beta = param(kernel, p, "beta");
  rt.parallel(
    "layers_channelSum",
    splitWork(rt, channels, n * s)
      .map(([c0, c1]) => [c0, c1 - c0, n, c, s, u.ptr, out.ptr, beta]),
  );
};

const channelAffine: Twin = (rt, [u, v, w, out], p, constants, workgroups) => {
  const kernel = "layers.channel_affine";
  const n = gridItems(param(kernel, p, "n"), workgroups);
  if (n > u.size || n > out.size) {
    throw new Error(
      `Kernel '${kernel}': ${n} elements do not fit ${u.describe()}, ${out.describe()}`,
    );
  }
  const c = param(kernel, p, "c"), s = param(kernel, p, "s");
  if (n > 0 && !(c >= 1 && s >= 1)) throw new Error(`Kernel '${kernel}': c and s must be >= 1`);
  const hasShift = (constants.HAS_SHIFT ?? 0) !== 0 ? 1 : 0;
  rt.parallel(
    "layers_channelAffine",
    splitWork(rt, n, 1, MIN_WORK, 4)
      .map(([i0, i1]) => [i0, i1 - i0, c, s, u.ptr, v.ptr, w.ptr, out.ptr, hasShift]),
  );
};

const act2: Twin = (rt, [u, v, w, out], p, constants, workgroups) => {
  const kernel = "layers.act2";
  const n = gridItems(param(kernel, p, "n"), workgroups);
  const act = constants.ACT ?? 1;
  const factors = constants.FACTORS ?? 0;
  const read = [u, ...(factors >= 1 ? [v] : []), ...(factors >= 2 ? [w] : []), out];
  for (const t of read) {
    if (t.size < n) throw new Error(`Kernel '${kernel}': ${t.describe()} holds fewer than ${n}`);
  }
  const alpha = param(kernel, p, "alpha"), beta = param(kernel, p, "beta");
  rt.parallel(
    "layers_act2",
    splitWork(rt, n, 1, MIN_WORK, 4)
      .map(([i0, i1]) => [i0, i1 - i0, act, factors, u.ptr, v.ptr, w.ptr, out.ptr, alpha, beta]),
  );
};

const bnGamma: Twin = (rt, [u, v, w, out], p, _c, workgroups) => {
  const kernel = "layers.bn_gamma";
  const channels = gridChannels(kernel, workgroups, Math.min(out.size, w.size));
  const n = param(kernel, p, "n"), c = param(kernel, p, "c"), s = param(kernel, p, "s");
  if (n * c * s > Math.min(u.size, v.size)) {
    throw new Error(`Kernel '${kernel}': (${n}, ${c}, ${s}) > ${u.describe()}, ${v.describe()}`);
  }
  const eps = param(kernel, p, "alpha");
  rt.parallel(
    "layers_bnGamma",
    splitWork(rt, channels, n * s)
      .map(([c0, c1]) => [c0, c1 - c0, n, c, s, u.ptr, v.ptr, w.ptr, out.ptr, eps]),
  );
};

/** Twins by kernel name, then entry point. */
export const LAYERS_TWINS: TwinFamily = {
  "layers.sum_parts": { sum_parts_main: sumParts },
  "layers.channel_sum": { channel_sum_main: channelSum },
  "layers.channel_affine": { channel_affine_main: channelAffine },
  "layers.act2": { act2_main: act2 },
  "layers.bn_gamma": { bn_gamma_main: bnGamma },
};
