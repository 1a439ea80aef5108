/**
 * WebAssembly twins of shaders/layers.wgsl (see src/wasm/README.md, "one backend interface"), as
 * src/layers/_util.ts dispatches them: `layers.sum_parts` (`sum_parts_main`), `layers.channel_sum`
 * (`channel_sum_main`), `layers.channel_affine` (`channel_affine_main`), `layers.act2`
 * (`act2_main`), `layers.bn_gamma` (`bn_gamma_main`). Also the splitting helpers the twins of
 * this helper's other families (optim, batchnorm, weightnorm) share.
 *
 * Threading plan: the elementwise kernels split their output elements into contiguous ranges,
 * the per-channel sums their channels (each channel summed whole by one thread, never split along
 * the sum), so results are bitwise the same on any thread count; below a few tens of thousands of
 * elements of work everything runs on the calling thread (a hand-off to a worker costs more).
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";

/** Fewest elements of elementwise work worth a thread of its own. */
export const ELEMENTWISE_MIN_PER_THREAD = 16384;
/** Fewest elements read by per-channel (per-row) reductions worth a thread of its own. */
export const REDUCE_MIN_PER_THREAD = 16384;

/**
 * A numeric param of a dispatch, or an error naming the kernel when it is missing.
 * @param p the dispatch's params
 * @param name the WGSL `Params` field
 * @param kernel the kernel name, for the message
 * @returns the value
 */
export function num(p: Readonly<Record<string, number>>, name: string, kernel: string): number {
  const v = p[name];
  if (!Number.isFinite(v)) throw new Error(`Kernel '${kernel}': param '${name}' is missing`);
  return v;
}

/**
 * The items a WGSL kernel indexed by `(wid.y · nwg.x + wid.x) · 256 + lid` (rt.grid) covers:
 * those below `n` that the grid reaches.
 * @param n the bound the WGSL checks
 * @param workgroups the grid `[x, y, z]` (z is not read by these kernels)
 * @returns the item count
 */
export function gridItems(n: number, workgroups: readonly number[]): number {
  return Math.min(n, workgroups[0] * (workgroups[1] ?? 1) * 256);
}

/**
 * Splits `n` items into contiguous `[start, end)` ranges, one per thread that gets work: at most
 * `threads`, each (but the last) of at least `minPer` items and a multiple of `align`.
 * @param n items
 * @param threads threads available
 * @param minPer fewest items worth a thread
 * @param align each range but the last is a multiple of this
 * @returns the ranges, in order (one `[0, n]` when n is small; none when n = 0)
 */
export function splitItems(
  n: number,
  threads: number,
  minPer: number,
  align = 4,
): [number, number][] {
  if (n <= 0) return [];
  const parts = Math.max(1, Math.min(threads, Math.floor(n / Math.max(1, minPer))));
  const step = Math.ceil(n / parts / align) * align;
  const out: [number, number][] = [];
  for (let i = 0; i < n; i += step) out.push([i, Math.min(n, i + step)]);
  return out;
}

/**
 * Splits `channels` per-channel reductions of `perChannel` elements each across threads.
 * @returns the channel ranges (see {@linkcode splitItems})
 */
export function splitChannels(
  channels: number,
  perChannel: number,
  threads: number,
): [number, number][] {
  const minPer = Math.ceil(REDUCE_MIN_PER_THREAD / Math.max(1, perChannel));
  return splitItems(channels, threads, minPer, 1);
}

/**
 * The channel count of a kernel with one workgroup per channel (`c = wid.x`), checked against
 * the buffer it writes.
 */
export function gridChannels(
  workgroups: readonly number[],
  outSize: number,
  perChannel: number,
  kernel: string,
): number {
  const c = workgroups[0];
  if (c > outSize / perChannel) {
    throw new Error(
      `Kernel '${kernel}': ${c} workgroups (channels) but the output holds ${outSize} elements`,
    );
  }
  return c;
}

const sumParts: Twin = (rt, [u, _v, _w, out], p, _c, workgroups) => {
  const kernel = "layers.sum_parts";
  const len = gridItems(num(p, "len", kernel), workgroups);
  const stride = num(p, "len", kernel);
  const parts = num(p, "parts", kernel);
  if (len > out.size || (parts > 0 && (parts - 1) * stride + len > u.size)) {
    throw new Error(`Kernel '${kernel}': ${parts} parts of ${stride} do not fit ${u.describe()}`);
  }
  const beta = num(p, "beta", kernel);
  rt.parallel(
    "layers_sumParts",
    splitItems(len, rt.threads, Math.ceil(ELEMENTWISE_MIN_PER_THREAD / Math.max(1, parts)))
      .map(([i0, i1]) => [i0, i1 - i0, stride, parts, u.ptr, out.ptr, beta]),
  );
};

const channelSum: Twin = (rt, [u, _v, _w, out], p, _c, workgroups) => {
  const kernel = "layers.channel_sum";
  const channels = gridChannels(workgroups, out.size, 1, kernel);
  const n = num(p, "n", kernel), c = num(p, "c", kernel), s = num(p, "s", kernel);
  if (n * c * s > u.size) {
    throw new Error(`Kernel '${kernel}': (${n}, ${c}, ${s}) > ${u.describe()}`);
  }
  const beta = num(p, "beta", kernel);
  rt.parallel(
    "layers_channelSum",
    splitChannels(channels, n * s, rt.threads)
      .map(([c0, c1]) => [c0, c1 - c0, n, c, s, u.ptr, out.ptr, beta]),
  );
};

const channelAffine: Twin = (rt, [u, v, w, out], p, constants, workgroups) => {
  const kernel = "layers.channel_affine";
  const n = gridItems(num(p, "n", kernel), workgroups);
  if (n > u.size || n > out.size) {
    throw new Error(
      `Kernel '${kernel}': ${n} elements do not fit ${u.describe()}, ${out.describe()}`,
    );
  }
  const c = num(p, "c", kernel), s = num(p, "s", kernel);
  if (n > 0 && !(c >= 1 && s >= 1)) throw new Error(`Kernel '${kernel}': c and s must be >= 1`);
  const hasShift = (constants.HAS_SHIFT ?? 0) !== 0 ? 1 : 0;
  rt.parallel(
    "layers_channelAffine",
    splitItems(n, rt.threads, ELEMENTWISE_MIN_PER_THREAD)
      .map(([i0, i1]) => [i0, i1 - i0, c, s, u.ptr, v.ptr, w.ptr, out.ptr, hasShift]),
  );
};

const act2: Twin = (rt, [u, v, w, out], p, constants, workgroups) => {
  const kernel = "layers.act2";
  const n = gridItems(num(p, "n", kernel), workgroups);
  const act = constants.ACT ?? 1;
  const factors = constants.FACTORS ?? 0;
  const read = [u, ...(factors >= 1 ? [v] : []), ...(factors >= 2 ? [w] : []), out];
  for (const t of read) {
    if (t.size < n) throw new Error(`Kernel '${kernel}': ${t.describe()} holds fewer than ${n}`);
  }
  const alpha = num(p, "alpha", kernel), beta = num(p, "beta", kernel);
  rt.parallel(
    "layers_act2",
    splitItems(n, rt.threads, ELEMENTWISE_MIN_PER_THREAD)
      .map(([i0, i1]) => [i0, i1 - i0, act, factors, u.ptr, v.ptr, w.ptr, out.ptr, alpha, beta]),
  );
};

const bnGamma: Twin = (rt, [u, v, w, out], p, _c, workgroups) => {
  const kernel = "layers.bn_gamma";
  const channels = gridChannels(workgroups, Math.min(out.size, w.size), 1, kernel);
  const n = num(p, "n", kernel), c = num(p, "c", kernel), s = num(p, "s", kernel);
  if (n * c * s > Math.min(u.size, v.size)) {
    throw new Error(`Kernel '${kernel}': (${n}, ${c}, ${s}) > ${u.describe()}, ${v.describe()}`);
  }
  const eps = num(p, "alpha", kernel);
  rt.parallel(
    "layers_bnGamma",
    splitChannels(channels, n * s, rt.threads)
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
