/**
 * What every twin does before it calls its kernel: read the dispatch's params and override
 * constants, find the items the workgroup grid covers, and split independent output items
 * (elements, rows, channels, samples) into contiguous ranges, one per thread. Private to
 * src/wasm/kernels.
 *
 * Results never depend on the split: the kernels compute each item the same way in any range,
 * and nothing is reduced across ranges, so they are bitwise the same on any thread count. Each
 * family keeps its own threshold (the least work worth waking a worker, ~10 µs) as a named
 * constant where it differs from {@linkcode MIN_WORK}.
 *
 * @module
 */

/** Elements of work below which a part is not worth a thread of its own (the usual threshold). */
export const MIN_WORK = 16384;

/**
 * Splits `[0, n)` into contiguous `[start, end)` ranges, one per thread that gets work: at most
 * `threads`, each of at least `minItems` items (so a small call stays on the calling thread),
 * every start but the first a multiple of `align`.
 * @param n items
 * @param threads threads available
 * @param minItems smallest worthwhile range
 * @param align granularity of the range boundaries
 * @returns the ranges, in order; one empty range `[0, 0]` when `n` is 0
 */
export function splitRange(
  n: number,
  threads: number,
  minItems: number,
  align = 1,
): [number, number][] {
  if (n <= 0) return [[0, 0]];
  const parts = Math.max(1, Math.min(threads, Math.floor(n / Math.max(1, minItems))));
  const step = Math.ceil(n / parts / align) * align;
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += step) out.push([s, Math.min(n, s + step)]);
  return out;
}

/**
 * {@linkcode splitRange} for `n` items of `perItem` elements of work each: every range holds at
 * least `minWork` elements of work.
 * @param rt the runtime (its thread count)
 * @param n items
 * @param perItem elements of work per item (0 counts as 1)
 * @param minWork least work per range
 * @param align granularity of the range boundaries
 * @returns the ranges, in order
 */
export function splitWork(
  rt: { readonly threads: number },
  n: number,
  perItem: number,
  minWork: number = MIN_WORK,
  align = 1,
): [number, number][] {
  return splitRange(n, rt.threads, Math.ceil(minWork / Math.max(1, perItem)), align);
}

/**
 * The number param `name` of a dispatch, checked.
 * @param kernel the kernel name, for the message
 * @param p the dispatch's params
 * @param name the WGSL `Params` field
 * @returns the value
 * @throws Error naming the kernel and the param when it is missing
 */
export function param(kernel: string, p: Readonly<Record<string, number>>, name: string): number {
  const v = p[name];
  if (typeof v !== "number") throw new Error(`Kernel '${kernel}': param '${name}' is missing`);
  return v;
}

/**
 * A whole-number param (or override constant) of a dispatch, checked.
 * @param kernel the kernel name, for the message
 * @param p the dispatch's params (or override constants)
 * @param name the WGSL `Params` field (or `override`)
 * @param min the least value allowed
 * @returns the value
 * @throws Error naming the kernel and the field when it is missing, not an integer or below `min`
 */
export function count(
  kernel: string,
  p: Readonly<Record<string, number>>,
  name: string,
  min = 0,
): number {
  const v = p[name];
  if (!Number.isInteger(v) || v < min) {
    throw new Error(`Kernel '${kernel}': '${name}' is missing or not an integer >= ${min} (${v})`);
  }
  return v;
}

/**
 * An override constant as 0/1, with the WGSL's default when absent.
 * @param c the dispatch's override constants
 * @param name the WGSL `override`
 * @param dflt its default
 * @returns 1 when set (non-zero), else 0
 */
export function flag(c: Readonly<Record<string, number>>, name: string, dflt: boolean): number {
  return (c[name] ?? (dflt ? 1 : 0)) !== 0 ? 1 : 0;
}

/**
 * The items a WGSL kernel indexed by `(wid.y · nwg.x + wid.x) · 256 + lid` covers: those below
 * `n` that the grid reaches.
 * @param n the bound the WGSL checks
 * @param workgroups the grid `[x, y, z]` (z is not read)
 * @returns the item count
 */
export function gridItems(n: number, workgroups: readonly number[]): number {
  return Math.min(n, workgroups[0] * (workgroups[1] ?? 1) * 256);
}

/**
 * The channel count of a kernel with one workgroup per channel (`c = wid.x`), checked against
 * the channels its buffers hold.
 * @param kernel the kernel name, for the message
 * @param workgroups the grid
 * @param channels the most channels the bindings hold
 * @returns `workgroups[0]`
 * @throws Error when the grid has more workgroups than channels
 */
export function gridChannels(
  kernel: string,
  workgroups: readonly number[],
  channels: number,
): number {
  const c = workgroups[0];
  if (c > channels) {
    throw new Error(`Kernel '${kernel}': ${c} workgroups (channels) for ${channels} channels`);
  }
  return c;
}
