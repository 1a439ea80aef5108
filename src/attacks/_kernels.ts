/**
 * Dispatch helpers for `shaders/attacks.wgsl`: one kernel object per entry point, the runtime's
 * placeholders (one per slot) for the bindings an entry point leaves unused, and the three launch
 * shapes (elementwise, one workgroup per sample, one invocation per row).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Tensor } from "../backend.ts";
import attacksSrc from "../../shaders/attacks.wgsl" with { type: "text" };

/** Entry points of `shaders/attacks.wgsl`. */
export type AttackEntry =
  | "linf_step"
  | "add_clamp"
  | "l2_step"
  | "l2_init"
  | "linf_init"
  | "loss_rows"
  | "select_best"
  | "apgd_step"
  | "apgd_track"
  | "apgd_check"
  | "tanh_map"
  | "atanh_init"
  | "cw_step"
  | "cw_track"
  | "cw_search"
  | "deepfool_begin"
  | "onehot_diff"
  | "deepfool_cand"
  | "deepfool_step"
  | "mask_label";

const kernels = new Map<AttackEntry, Kernel>();

function kernel(entry: AttackEntry): Kernel {
  let k = kernels.get(entry);
  if (!k) kernels.set(entry, k = { name: `attacks.${entry}`, code: attacksSrc, entry });
  return k;
}

/** The shader's storage bindings, by role name, in binding order. */
export interface AttackBindings {
  src0?: Tensor;
  src1?: Tensor;
  dst0?: Tensor;
  dst1?: Tensor;
  dst2?: Tensor;
  state?: Tensor;
  rows?: Tensor;
  labels?: Tensor;
}

const SLOTS = ["src0", "src1", "dst0", "dst1", "dst2", "state", "rows", "labels"] as const;

/** The shader's uniform `Params`. */
export interface AttackParams {
  n: number;
  d: number;
  b: number;
  k: number;
  s: number;
  c0: number;
  c1: number;
  eps: number;
  alpha: number;
  beta: number;
  f0: number;
  f1: number;
}

/** How the entry point is launched. */
export type Launch = "elementwise" | "sample" | "row";

/**
 * Records one dispatch of an entry point of `shaders/attacks.wgsl`.
 * @param rt runtime
 * @param entry entry point
 * @param bindings tensors by role (missing ones get placeholders)
 * @param params uniform values (missing ones are 0)
 * @param launch "elementwise" over `params.n` elements, "sample" = one workgroup per each of
 *   `params.b` samples, "row" = one invocation per sample
 * @param constants override constants (LOSS, TARGETED)
 */
export function runAttackKernel(
  rt: Backend,
  entry: AttackEntry,
  bindings: AttackBindings,
  params: Partial<AttackParams>,
  launch: Launch,
  constants?: Record<string, number>,
): void {
  const p: AttackParams = {
    n: 0,
    d: 0,
    b: 0,
    k: 0,
    s: 0,
    c0: 0,
    c1: 0,
    eps: 0,
    alpha: 0,
    beta: 0,
    f0: 0,
    f1: 0,
    ...params,
  };
  const workgroups = launch === "elementwise"
    ? rt.grid(p.n, 256)
    : launch === "sample"
    ? rt.grid(p.b, 1)
    : rt.grid(p.b, 256);
  rt.dispatch(kernel(entry), {
    bindings: SLOTS.map((s, i) => bindings[s] ?? rt.placeholder(i)),
    params: p as unknown as Record<string, number>,
    workgroups,
    constants,
  });
}
