/**
 * WebAssembly twins of shaders/attacks.wgsl (see src/wasm/README.md, "one backend interface"):
 * by kernel name (the `name` of the `Kernel` the op dispatches, `attacks.<entry>`), then entry
 * point. The kernels are in wasm/assembly/attacks.ts.
 *
 * Every entry point binds the WGSL's eight storage buffers, in binding order
 * `[src0, src1, dst0, dst1, dst2, state, rows, labels]`, and its `Params`
 * (`n, d, b, k, s, c0, c1, eps, alpha, beta, f0, f1`); the role of each per entry point is the
 * WGSL's. Unused bindings (placeholders) are never read. Item counts come from the params, as in
 * the WGSL (its guards `i < n`, `b < b`), never from the grid.
 *
 * Threads: elementwise entry points are split by elements, per-sample ones by samples, row ones
 * by rows, only when each thread gets enough work to pay for waking it; nothing is reduced across
 * a split, so results are bitwise the same for any thread count.
 *
 * Unlike a GPU, which drops out-of-range accesses, a wasm kernel would write over other tensors:
 * each twin first checks that the bindings it touches hold the elements the params address.
 *
 * @module
 */

import type { WasmTensor } from "../tensor.ts";
import type { Twin, TwinFamily } from "./twin.ts";
import { param, splitRange, splitWork } from "./_split.ts";

/** Least elements per thread for the cheap elementwise steps (a worker wake-up costs ~10 µs). */
const CHEAP = 1 << 15;
/** Least elements per thread for the steps that call tanh/log per element. */
const TRANSCENDENTAL = 1 << 12;
/** Least rows per thread for the per-row kernels. */
const LEAST_ROWS = 512;

function uint(kernel: string, p: Readonly<Record<string, number>>, name: string): number {
  const v = p[name];
  if (!Number.isInteger(v) || v < 0) {
    throw new Error(
      `Kernel 'attacks.${kernel}': param '${name}' must be an integer >= 0, got ${v}`,
    );
  }
  return v;
}

function real(kernel: string, p: Readonly<Record<string, number>>, name: string): number {
  return param(`attacks.${kernel}`, p, name);
}

const SLOTS = ["src0", "src1", "dst0", "dst1", "dst2", "state", "rows", "labels"] as const;

/** Throws unless binding `slot` holds at least `count` elements. */
function need(kernel: string, bindings: readonly WasmTensor[], slot: number, count: number): void {
  const t = bindings[slot];
  if (t.size < count) {
    throw new Error(
      `Kernel 'attacks.${kernel}': ${SLOTS[slot]} ${t.describe()} holds ${t.size} elements, ` +
        `the params address ${count}`,
    );
  }
}

const SRC0 = 0, SRC1 = 1, DST0 = 2, DST1 = 3, DST2 = 4, STATE = 5, ROWS = 6, LABELS = 7;

/** Per-sample kernels: parts of whole samples, at least CHEAP elements each, with scratch. */
function sampleParts(rt: Parameters<Twin>[0], b: number, d: number): [number, number][] {
  return splitWork(rt, b, d, CHEAP);
}

/** An elementwise twin over `n` elements, `args(i0, i1)` the kernel's arguments of a range. */
function elementwise(
  entry: string,
  fn: string,
  least: number,
  slots: readonly number[],
  args: (b: readonly WasmTensor[], p: Readonly<Record<string, number>>) => (
    i0: number,
    i1: number,
  ) => number[],
  extra?: (b: readonly WasmTensor[], p: Readonly<Record<string, number>>) => void,
): Twin {
  return (rt, bindings, p) => {
    const n = uint(entry, p, "n");
    for (const s of slots) need(entry, bindings, s, n);
    extra?.(bindings, p);
    const make = args(bindings, p);
    rt.parallel(fn, splitRange(n, rt.threads, least, 4).map(([i0, i1]) => make(i0, i1)));
  };
}

/** Checks a per-sample state of `s` columns for the samples that `n` elements of `d` cover. */
function perSampleState(
  entry: string,
  b: readonly WasmTensor[],
  p: Readonly<Record<string, number>>,
) {
  const n = uint(entry, p, "n"), d = uint(entry, p, "d"), s = uint(entry, p, "s");
  if (n > 0 && d === 0) throw new Error(`Kernel 'attacks.${entry}': param 'd' is 0 with n = ${n}`);
  if (n > 0) need(entry, b, STATE, (Math.ceil(n / d) - 1) * s + 3);
}

const linfStep = elementwise(
  "linf_step",
  "attacks_linfStep",
  CHEAP,
  [SRC0, SRC1, DST0],
  ([x0, g, x], p) => (i0, i1) => [
    x0.ptr,
    g.ptr,
    x.ptr,
    i0,
    i1,
    real("linf_step", p, "eps"),
    real("linf_step", p, "alpha"),
  ],
);

const addClamp = elementwise(
  "add_clamp",
  "attacks_addClamp",
  CHEAP,
  [SRC0, SRC1, DST0],
  ([x0, u, x]) => (i0, i1) => [x0.ptr, u.ptr, x.ptr, i0, i1],
);

const apgdStep = elementwise(
  "apgd_step",
  "attacks_apgdStep",
  CHEAP,
  [SRC0, SRC1, DST0, DST1],
  (b, p) => (i0, i1) => [
    b[SRC0].ptr,
    b[SRC1].ptr,
    b[DST0].ptr,
    b[DST1].ptr,
    b[STATE].ptr,
    i0,
    i1,
    p.d,
    p.s,
    real("apgd_step", p, "eps"),
    real("apgd_step", p, "alpha"),
  ],
  (b, p) => {
    const n = uint("apgd_step", p, "n"), d = uint("apgd_step", p, "d");
    const s = uint("apgd_step", p, "s");
    if (n > 0 && d === 0) {
      throw new Error(`Kernel 'attacks.apgd_step': param 'd' is 0 with n = ${n}`);
    }
    if (n > 0) need("apgd_step", b, STATE, (Math.ceil(n / d) - 1) * s + 1);
  },
);

const tanhMap = elementwise(
  "tanh_map",
  "attacks_tanhMap",
  TRANSCENDENTAL,
  [SRC1, DST0],
  (b) => (i0, i1) => [b[SRC1].ptr, b[DST0].ptr, i0, i1],
);

const atanhInit = elementwise(
  "atanh_init",
  "attacks_atanhInit",
  TRANSCENDENTAL,
  [SRC0, DST0, DST1, DST2],
  (b) => (i0, i1) => [b[SRC0].ptr, b[DST0].ptr, b[DST1].ptr, b[DST2].ptr, i0, i1],
);

const cwStep = elementwise(
  "cw_step",
  "attacks_cwStep",
  TRANSCENDENTAL,
  [SRC0, SRC1, DST0, DST1, DST2],
  (b, p) => (i0, i1) => [
    b[SRC0].ptr,
    b[SRC1].ptr,
    b[DST0].ptr,
    b[DST1].ptr,
    b[DST2].ptr,
    i0,
    i1,
    real("cw_step", p, "alpha"),
    real("cw_step", p, "f0"),
    real("cw_step", p, "f1"),
  ],
);

const deepfoolStep = elementwise(
  "deepfool_step",
  "attacks_deepfoolStep",
  CHEAP,
  [SRC0, DST0, DST1, DST2],
  (b, p) => (i0, i1) => [
    b[SRC0].ptr,
    b[DST0].ptr,
    b[DST1].ptr,
    b[DST2].ptr,
    b[STATE].ptr,
    i0,
    i1,
    p.d,
    p.s,
    real("deepfool_step", p, "alpha"),
  ],
  (b, p) => perSampleState("deepfool_step", b, p),
);

const onehotDiff: Twin = (rt, b, p) => {
  const e = "onehot_diff";
  const n = uint(e, p, "n"), k = uint(e, p, "k"), s = uint(e, p, "s"), c0 = uint(e, p, "c0");
  if (n === 0) return;
  if (k === 0) throw new Error(`Kernel 'attacks.${e}': param 'k' is 0 with n = ${n}`);
  const rows = Math.ceil(n / k);
  need(e, b, DST0, n);
  need(e, b, LABELS, rows);
  need(e, b, STATE, (rows - 1) * s + 3);
  rt.parallel(
    "attacks_onehotDiff",
    splitRange(n, rt.threads, CHEAP).map(([i0, i1]) => [
      b[DST0].ptr,
      b[LABELS].ptr,
      b[STATE].ptr,
      i0,
      i1,
      k,
      s,
      c0,
    ]),
  );
};

// ---- per sample ----

/** Checks `slots` hold `b` samples of `d` and returns the sample ranges with their scratch. */
function samples(
  rt: Parameters<Twin>[0],
  entry: string,
  bindings: readonly WasmTensor[],
  p: Readonly<Record<string, number>>,
  slots: readonly number[],
): { b: number; d: number; parts: [number, number][]; red: (part: number) => number } {
  const b = uint(entry, p, "b"), d = uint(entry, p, "d");
  for (const s of slots) need(entry, bindings, s, b * d);
  return { b, d, parts: sampleParts(rt, b, d), red: (i) => rt.scratch(i) };
}

const l2Step: Twin = (rt, bs, p) => {
  const e = "l2_step";
  const { d, parts, red } = samples(rt, e, bs, p, [SRC0, SRC1, DST0]);
  const eps = real(e, p, "eps"), alpha = real(e, p, "alpha");
  rt.parallel(
    "attacks_l2Step",
    parts.map((
      [b0, b1],
      i,
    ) => [bs[SRC0].ptr, bs[SRC1].ptr, bs[DST0].ptr, b0, b1, d, eps, alpha, red(i)]),
  );
};

const l2Init: Twin = (rt, bs, p) => {
  const e = "l2_init";
  const { b, d, parts, red } = samples(rt, e, bs, p, [SRC0, SRC1, DST0]);
  need(e, bs, ROWS, b);
  const eps = real(e, p, "eps");
  rt.parallel(
    "attacks_l2Init",
    parts.map(([b0, b1], i) => [
      bs[SRC0].ptr,
      bs[SRC1].ptr,
      bs[ROWS].ptr,
      bs[DST0].ptr,
      b0,
      b1,
      d,
      eps,
      red(i),
    ]),
  );
};

const linfInit: Twin = (rt, bs, p) => {
  const e = "linf_init";
  const { d, parts } = samples(rt, e, bs, p, [SRC0, SRC1, DST0]);
  const eps = real(e, p, "eps");
  rt.parallel(
    "attacks_linfInit",
    parts.map(([b0, b1]) => [bs[SRC0].ptr, bs[SRC1].ptr, bs[DST0].ptr, b0, b1, d, eps]),
  );
};

const selectBest: Twin = (rt, bs, p) => {
  const e = "select_best";
  const { b, d, parts } = samples(rt, e, bs, p, [DST0, DST1]);
  const s = uint(e, p, "s"), c0 = uint(e, p, "c0"), c1 = uint(e, p, "c1");
  if (b > 0) {
    need(e, bs, STATE, 2 * b);
    need(e, bs, ROWS, (b - 1) * s + Math.max(c0, c1) + 1);
  }
  rt.parallel(
    "attacks_selectBest",
    parts.map(([b0, b1]) => [
      bs[DST0].ptr,
      bs[DST1].ptr,
      bs[STATE].ptr,
      bs[ROWS].ptr,
      b0,
      b1,
      d,
      s,
      c0,
      c1,
    ]),
  );
};

const apgdTrack: Twin = (rt, bs, p) => {
  const e = "apgd_track";
  const { b, d, parts } = samples(rt, e, bs, p, [SRC0, SRC1, DST0, DST1, DST2]);
  const s = uint(e, p, "s");
  if (b > 0) {
    need(e, bs, STATE, (b - 1) * s + 7);
    need(e, bs, ROWS, 2 * b);
  }
  rt.parallel(
    "attacks_apgdTrack",
    parts.map(([b0, b1]) => [
      bs[SRC0].ptr,
      bs[SRC1].ptr,
      bs[DST0].ptr,
      bs[DST1].ptr,
      bs[DST2].ptr,
      bs[STATE].ptr,
      bs[ROWS].ptr,
      b0,
      b1,
      d,
      s,
    ]),
  );
};

const apgdCheck: Twin = (rt, bs, p) => {
  const e = "apgd_check";
  const { b, d, parts } = samples(rt, e, bs, p, [SRC0, SRC1, DST0, DST1]);
  const s = uint(e, p, "s");
  if (b > 0) need(e, bs, STATE, (b - 1) * s + 6);
  const f0 = real(e, p, "f0");
  rt.parallel(
    "attacks_apgdCheck",
    parts.map(([b0, b1]) => [
      bs[SRC0].ptr,
      bs[SRC1].ptr,
      bs[DST0].ptr,
      bs[DST1].ptr,
      bs[STATE].ptr,
      b0,
      b1,
      d,
      s,
      f0,
    ]),
  );
};

const cwTrack: Twin = (rt, bs, p) => {
  const e = "cw_track";
  const { b, d, parts, red } = samples(rt, e, bs, p, [SRC0, SRC1, DST0]);
  const s = uint(e, p, "s");
  if (b > 0) {
    need(e, bs, STATE, (b - 1) * s + 5);
    need(e, bs, ROWS, 2 * b);
  }
  rt.parallel(
    "attacks_cwTrack",
    parts.map(([b0, b1], i) => [
      bs[SRC0].ptr,
      bs[SRC1].ptr,
      bs[DST0].ptr,
      bs[STATE].ptr,
      bs[ROWS].ptr,
      b0,
      b1,
      d,
      s,
      red(i),
    ]),
  );
};

const deepfoolCand: Twin = (rt, bs, p) => {
  const e = "deepfool_cand";
  const { b, d, parts, red } = samples(rt, e, bs, p, [SRC1, DST0]);
  const k = uint(e, p, "k"), s = uint(e, p, "s"), c0 = uint(e, p, "c0");
  if (b > 0) {
    if (k === 0) throw new Error(`Kernel 'attacks.${e}': param 'k' is 0 with b = ${b}`);
    need(e, bs, ROWS, b * k);
    need(e, bs, LABELS, b);
    need(e, bs, STATE, (b - 1) * s + 3);
  }
  rt.parallel(
    "attacks_deepfoolCand",
    parts.map(([b0, b1], i) => [
      bs[SRC1].ptr,
      bs[ROWS].ptr,
      bs[LABELS].ptr,
      bs[DST0].ptr,
      bs[STATE].ptr,
      b0,
      b1,
      d,
      k,
      s,
      c0,
      red(i),
    ]),
  );
};

// ---- per row ----

const lossRows: Twin = (rt, bs, p, constants) => {
  const e = "loss_rows";
  const b = uint(e, p, "b"), k = uint(e, p, "k"), s = uint(e, p, "s");
  const loss = constants.LOSS ?? 0, targeted = constants.TARGETED ?? 0;
  if (loss !== 0 && loss !== 1 && loss !== 2) {
    throw new Error(`Kernel 'attacks.${e}': LOSS must be 0, 1 or 2, got ${loss}`);
  }
  if (b > 0) {
    need(e, bs, SRC1, b * k);
    need(e, bs, DST0, b * k);
    need(e, bs, DST1, 2 * b);
    need(e, bs, LABELS, b);
    if (loss === 2) need(e, bs, STATE, (b - 1) * s + 1);
  }
  const sign = real(e, p, "alpha"), kappa = real(e, p, "eps");
  rt.parallel(
    "attacks_lossRows",
    splitRange(b, rt.threads, LEAST_ROWS).map(([b0, b1]) => [
      bs[SRC1].ptr,
      bs[LABELS].ptr,
      bs[STATE].ptr,
      bs[DST0].ptr,
      bs[DST1].ptr,
      b0,
      b1,
      k,
      s,
      sign,
      kappa,
      loss,
      targeted === 1 ? 1 : 0,
    ]),
  );
};

const cwSearch: Twin = (rt, bs, p) => {
  const e = "cw_search";
  const b = uint(e, p, "b"), s = uint(e, p, "s");
  if (b > 0) need(e, bs, STATE, (b - 1) * s + 5);
  rt.kernels.attacks_cwSearch(bs[STATE].ptr, 0, b, s);
};

const deepfoolBegin: Twin = (rt, bs, p) => {
  const e = "deepfool_begin";
  const b = uint(e, p, "b"), k = uint(e, p, "k"), s = uint(e, p, "s");
  if (b > 0) {
    need(e, bs, SRC1, b * k);
    need(e, bs, LABELS, b);
    need(e, bs, STATE, (b - 1) * s + 3);
  }
  rt.kernels.attacks_deepfoolBegin(bs[SRC1].ptr, bs[LABELS].ptr, bs[STATE].ptr, 0, b, k, s);
};

const maskLabel: Twin = (rt, bs, p) => {
  const e = "mask_label";
  const b = uint(e, p, "b"), k = uint(e, p, "k");
  if (b > 0) {
    need(e, bs, DST0, b * k);
    need(e, bs, LABELS, b);
  }
  rt.kernels.attacks_maskLabel(bs[DST0].ptr, bs[LABELS].ptr, 0, b, k);
};

/** Twins by kernel name, then entry point. */
export const ATTACKS_TWINS: TwinFamily = {
  "attacks.linf_step": { linf_step: linfStep },
  "attacks.add_clamp": { add_clamp: addClamp },
  "attacks.l2_step": { l2_step: l2Step },
  "attacks.l2_init": { l2_init: l2Init },
  "attacks.linf_init": { linf_init: linfInit },
  "attacks.loss_rows": { loss_rows: lossRows },
  "attacks.select_best": { select_best: selectBest },
  "attacks.apgd_step": { apgd_step: apgdStep },
  "attacks.apgd_track": { apgd_track: apgdTrack },
  "attacks.apgd_check": { apgd_check: apgdCheck },
  "attacks.tanh_map": { tanh_map: tanhMap },
  "attacks.atanh_init": { atanh_init: atanhInit },
  "attacks.cw_step": { cw_step: cwStep },
  "attacks.cw_track": { cw_track: cwTrack },
  "attacks.cw_search": { cw_search: cwSearch },
  "attacks.deepfool_begin": { deepfool_begin: deepfoolBegin },
  "attacks.onehot_diff": { onehot_diff: onehotDiff },
  "attacks.deepfool_cand": { deepfool_cand: deepfoolCand },
  "attacks.deepfool_step": { deepfool_step: deepfoolStep },
  "attacks.mask_label": { mask_label: maskLabel },
};
