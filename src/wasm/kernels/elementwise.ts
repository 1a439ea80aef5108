/**
 * WebAssembly twins of shaders/elementwise.wgsl (see src/wasm/README.md, "one backend interface"):
 * the scalar kernel `elementwise` and its vec4 instantiation `elementwise.vec4`
 * (src/ops/elementwise.ts), every `OP` code, every `BMODE` and the in-place `IO` bits, run by
 * `elementwise_run` (wasm/assembly/elementwise.ts: f32x4 lanes) split over threads by elements.
 *
 * Bindings `[a, b, y]` (f32; `a` or `b` unused, a placeholder, when `IO` says it is read from
 * `y`), params `n, nb, inner, alpha, beta` (counted in items: elements, or vec4 for
 * `elementwise.vec4`), constants `OP`, `BMODE`, `IO`.
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitRange } from "./_split.ts";

/** Elements per thread below which a call stays on one thread. */
const MIN_PER_THREAD = 32768;

function elementwiseTwin(kernel: string, lanes: 1 | 4): Twin {
  return (rt, [a, b, y], p, constants) => {
    const n = param(kernel, p, "n") * lanes;
    const op = constants.OP ?? 0;
    const mode = constants.BMODE ?? 0;
    const io = constants.IO ?? 0;
    const inner = mode === 3 ? param(kernel, p, "inner") : 1;
    let nb = mode === 3 ? param(kernel, p, "nb") : 1;
    if (lanes === 4 && mode === 3) {
      // The vec4 kernel broadcasts whole vec4s of b: element i reads b[i % (4 nb)] when inner = 1.
      if (inner !== 1) {
        throw new Error(`Kernel '${kernel}': BMODE 3 needs inner = 1 for vec4 items, got ${inner}`);
      }
      nb *= 4;
    }
    if (mode === 3 && !(nb >= 1 && inner >= 1)) {
      throw new Error(`Kernel '${kernel}': BMODE 3 needs nb >= 1 and inner >= 1`);
    }
    const yp = y.ptr;
    const ap = io & 1 ? yp : a.ptr;
    const bp = io & 2 ? yp : b.ptr;
    const alpha = p.alpha ?? 0, beta = p.beta ?? 0;
    rt.parallel(
      "elementwise_run",
      splitRange(n, rt.threads, MIN_PER_THREAD, 16).map((
        [s, e],
      ) => [op, mode, ap, bp, yp, s, e, nb, inner, alpha, beta]),
    );
  };
}

/** Twins by kernel name, then entry point. */
export const ELEMENTWISE_TWINS: TwinFamily = {
  elementwise: { main: elementwiseTwin("elementwise", 1) },
  "elementwise.vec4": { main: elementwiseTwin("elementwise.vec4", 4) },
};
