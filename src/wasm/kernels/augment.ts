/**
 * WebAssembly twins of shaders/augment.wgsl (see src/wasm/README.md, "one backend interface"):
 * by kernel name (the `name` of the `Kernel` the op dispatches), then entry point.
 *
 * One kernel, `augment` (src/data/augment.ts `AUGMENT_KERNEL`), dispatched by the standalone
 * `augment` op and by the batch loader (src/data/batches.ts, which dispatches nothing else):
 * bindings `[src, labels, order, mats, lut, out_x, out_y]`, `Params` `count, offset, channels,
 * height, width, sample`, override constants `SOURCE` (0), `INDEXED` (1), `AFFINE` (0),
 * `LABELS` (1), `VEC4` (0) with the WGSL's defaults. `VEC4 = 1` only changes how the WGSL maps
 * invocations to elements (four per invocation, a plain gather whatever `AFFINE` says), so the
 * twin runs the plain gather for it. Run by `augment_gather` (wasm/assembly/augment.ts), split
 * across threads by output elements.
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import type { WasmTensor } from "../tensor.ts";
import { param, splitRange } from "./_split.ts";

/** Output elements below which a part is not worth a thread. */
const MIN_PART = 1 << 15;

function need(t: WasmTensor, elements: number, what: string): void {
  if (t.size < elements) {
    throw new Error(`Kernel 'augment': ${what} needs ${elements} elements, got ${t.describe()}`);
  }
}

const augmentMain: Twin = (
  rt,
  [src, labels, order, mats, lut, outX, outY],
  params,
  constants,
) => {
  const num = (name: string): number => param("augment", params, name);
  const count = num("count"), offset = num("offset");
  const height = num("height"), width = num("width"), sample = num("sample");
  const source = constants.SOURCE ?? 0;
  const indexed = constants.INDEXED ?? 1;
  const vec4 = constants.VEC4 ?? 0;
  const affine = vec4 === 1 ? 0 : constants.AFFINE ?? 0;
  const withLabels = constants.LABELS ?? 1;
  const total = count * sample;
  if (total === 0) return;
  if (vec4 === 1 && sample % 4 !== 0) {
    throw new Error(
      `Kernel 'augment': VEC4 = 1 needs a sample size that is a multiple of 4, got ${sample}`,
    );
  }
  if (affine === 1 && height * width === 0) {
    throw new Error(`Kernel 'augment': AFFINE = 1 needs a non-empty image, got ${height}x${width}`);
  }
  need(outX, total, "out_x (count, sample)");
  if (withLabels === 1) need(outY, count, "out_y (count,)");
  if (indexed === 1) need(order, offset + count, "order (positions,)");
  else need(src, source === 1 ? Math.ceil(total / 4) : total, "src (count, sample)");
  if (affine === 1) need(mats, (offset + count) * 12, "mats (positions, 12)");
  if (source === 1) need(lut, 256, "lut (256,)");
  rt.parallel(
    "augment_gather",
    splitRange(total, rt.threads, MIN_PART).map(([lo, hi]) => [
      src.ptr,
      labels.ptr,
      order.ptr,
      mats.ptr,
      lut.ptr,
      outX.ptr,
      outY.ptr,
      offset,
      height,
      width,
      sample,
      source,
      indexed,
      affine,
      withLabels,
      lo,
      hi,
    ]),
  );
};

/** Twins by kernel name, then entry point. */
export const AUGMENT_TWINS: TwinFamily = {
  augment: { main: augmentMain },
};
