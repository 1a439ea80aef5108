/**
 * WebAssembly twins of shaders/reduce.wgsl (see src/wasm/README.md, "one backend interface"),
 * the kernels of src/ops/reduce.ts: `reduce` (entry `reduce_main`), `reduce.arg` (`arg_main`)
 * and `reduce.softmax` (`softmax_main`), run by `reduce_run`, `reduce_arg` and `reduce_softmax`
 * (wasm/assembly/reduce.ts) split over threads by outputs, never along the reduced axis.
 *
 * Bindings `[x, y, yi]` (x f32 (outer, len, inner), or a placeholder when `IO` = 1 and x is read
 * from y; y f32; yi u32), params `outer, len, inner, total, scale, ident`, constants `OP`, `MAP`,
 * `SIGN`, `LOG`, `IO` (`C`, the workgroup's column count, means nothing on a CPU).
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitWork } from "./_split.ts";

/** Elements read per thread below which a call stays on one thread. */
const REDUCE_MIN_WORK = 32768;

/** Outputs per part: at least REDUCE_MIN_WORK elements of work each, in multiples of 16 outputs. */
function outputRanges(
  rt: Parameters<Twin>[0],
  outputs: number,
  len: number,
): [number, number][] {
  return splitWork(rt, outputs, len, REDUCE_MIN_WORK, 16);
}

function dims(kernel: string, p: Readonly<Record<string, number>>) {
  const outer = param(kernel, p, "outer");
  const len = param(kernel, p, "len");
  const inner = Math.max(1, param(kernel, p, "inner"));
  return { outer, len, inner, outputs: outer * inner };
}

const reduceMain: Twin = (rt, [x, y], p, constants) => {
  const k = "reduce";
  const { outer, len, inner, outputs } = dims(k, p);
  const total = param(k, p, "total");
  if (inner > 1 && total < outer * len * inner) {
    // The WGSL's `total` bound only cuts the last chunk of a whole-tensor pass (inner = 1).
    throw new Error(`Kernel '${k}': total ${total} < outer * len * inner with inner ${inner} > 1`);
  }
  const xp = (constants.IO ?? 0) === 1 ? y.ptr : x.ptr;
  const yp = y.ptr;
  const op = constants.OP ?? 0, map = constants.MAP ?? 0;
  const scale = param(k, p, "scale"), ident = param(k, p, "ident");
  rt.parallel(
    "reduce_run",
    outputRanges(rt, outputs, len).map((
      [q0, q1],
    ) => [op, map, xp, yp, outer, len, inner, Math.min(total, 2 ** 31 - 1), scale, ident, q0, q1]),
  );
};

const argMain: Twin = (rt, [x, _y, yi], p, constants) => {
  const { len, inner, outputs } = dims("reduce.arg", p);
  const sign = constants.SIGN ?? 1;
  const xp = x.ptr, yp = yi.ptr;
  rt.parallel(
    "reduce_arg",
    outputRanges(rt, outputs, len).map(([q0, q1]) => [sign, xp, yp, len, inner, q0, q1]),
  );
};

const softmaxMain: Twin = (rt, [x, y], p, constants) => {
  const { len, inner, outputs } = dims("reduce.softmax", p);
  const xp = (constants.IO ?? 0) === 1 ? y.ptr : x.ptr;
  const yp = y.ptr;
  const log = constants.LOG ?? 0;
  rt.parallel(
    "reduce_softmax",
    outputRanges(rt, outputs, 3 * len).map(([q0, q1]) => [log, xp, yp, len, inner, q0, q1]),
  );
};

/** Twins by kernel name, then entry point. */
export const REDUCE_TWINS: TwinFamily = {
  reduce: { reduce_main: reduceMain },
  "reduce.arg": { arg_main: argMain },
  "reduce.softmax": { softmax_main: softmaxMain },
};
