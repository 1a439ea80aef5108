/**
 * WebAssembly twins of shaders/svd.wgsl (see src/wasm/README.md, "one backend interface"): by
 * kernel name (`svd.<entry>`, dispatched by src/linalg/svd.ts), then entry point. The bindings
 * are `[src, sv, work, rot, sout, flags]`, the params `p, pe, len, round, m, n, mode, tol, lo,
 * hi`; the `RW` constant (invocations per pair) only changes the GPU's summation order and means
 * nothing here. The kernels are in wasm/assembly/svd.ts and reproduce the WGSL's round-robin
 * pairing and rotation formulas exactly; the pairs of a round (disjoint rows) and the rows of
 * the other entry points are split across threads.
 *
 * `rotate_main` runs the pairs `k < x workgroups` of its round (the WGSL's pair is
 * `workgroup_id.x`; src/linalg/svd.ts launches `pe / 2`).
 *
 * @module
 */

import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitWork } from "./_split.ts";

const num = (entry: string, p: Readonly<Record<string, number>>, name: string) =>
  param(`svd.${entry}`, p, name);

/** work (n, m) ← srcᵀ, src (m, n). */
const transpose: Twin = (rt, [src, , work], p) => {
  const m = num("transpose_main", p, "m"), n = num("transpose_main", p, "n");
  rt.parallel(
    "svd_transpose",
    splitWork(rt, n, m).map(([j0, j1]) => [
      src.ptr,
      work.ptr,
      m,
      n,
      j0,
      j1,
    ]),
  );
};

/** rot (p, p) ← I; flags (4,) u32 ← [p ≤ 1, 0, 0, 0]. */
const init: Twin = (rt, [, , , rot, , flags], p) => {
  rt.kernels.svd_init(rot.ptr, flags.ptr, num("init_main", p, "p"));
};

/** One round of Jacobi rotations on work (p, len) and rot (p, p), unless flags[0] is set. */
const rotate: Twin = (rt, [, , work, rot, , flags], p, _c, wg) => {
  const e = "rotate_main";
  const [np, pe, len] = [num(e, p, "p"), num(e, p, "pe"), num(e, p, "len")];
  const [round, tol] = [num(e, p, "round"), num(e, p, "tol")];
  if (pe < 2) return;
  // The flag check is repeated in the kernel; reading it here first saves the hand-off to the
  // workers for the rounds recorded after convergence.
  if (new Uint32Array(rt.wasmMemory.buffer, flags.ptr, 1)[0] !== 0) return;
  const pairs = wg[0];
  rt.parallel(
    "svd_rotate",
    splitWork(rt, pairs, 3 * (len + np)).map(([k0, k1]) => [
      work.ptr,
      rot.ptr,
      flags.ptr,
      np,
      pe,
      len,
      round,
      tol,
      k0,
      k1,
    ]),
  );
};

/** The end of a sweep: count it, and mark convergence when it rotated nothing. */
const sweepEnd: Twin = (rt, [, , , , , flags]) => {
  rt.kernels.svd_sweepEnd(flags.ptr);
};

/** sout (p,) ← σ; mode 0 normalizes the rows of work and rot, mode 1 makes work the clip update. */
const finish: Twin = (rt, [, , work, rot, sout], p) => {
  const e = "finish_main";
  const [np, len, mode] = [num(e, p, "p"), num(e, p, "len"), num(e, p, "mode")];
  const [lo, hi] = [p.lo ?? 0, p.hi ?? 0];
  rt.parallel(
    "svd_finish",
    splitWork(rt, np, len + np).map(([k0, k1]) => [
      work.ptr,
      rot.ptr,
      sout.ptr,
      np,
      len,
      mode,
      lo,
      hi,
      k0,
      k1,
    ]),
  );
};

/** work (p, len) ← the rows of src (p, len) in descending order of sv (p,), stable. */
const sortRows: Twin = (rt, [src, sv, work], p) => {
  const np = num("sort_rows_main", p, "p"), len = num("sort_rows_main", p, "len");
  rt.parallel(
    "svd_sortRows",
    splitWork(rt, np, len + np).map(([k0, k1]) => [
      src.ptr,
      sv.ptr,
      work.ptr,
      np,
      len,
      k0,
      k1,
    ]),
  );
};

/** Twins by kernel name, then entry point. */
export const SVD_TWINS: TwinFamily = {
  "svd.transpose_main": { transpose_main: transpose },
  "svd.init_main": { init_main: init },
  "svd.rotate_main": { rotate_main: rotate },
  "svd.sweep_end_main": { sweep_end_main: sweepEnd },
  "svd.finish_main": { finish_main: finish },
  "svd.sort_rows_main": { sort_rows_main: sortRows },
};
