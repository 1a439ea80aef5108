/**
 * Launches the entry points of shaders/metrics.wgsl. Every entry point shares the file's three
 * storage bindings (f32 input, u32 input, f32 output) and one `Params` struct; unused bindings
 * get the runtime's placeholder tensors and unused fields 0.
 *
 * @module
 */

import type { Kernel } from "../kernel.ts";
import type { Backend } from "../backend.ts";
import type { Tensor } from "../backend.ts";
import metricsSrc from "../../shaders/metrics.wgsl" with { type: "text" };

/** Entry points of shaders/metrics.wgsl. */
export type MetricsEntry =
  | "plane_points"
  | "pred_stats"
  | "sumsq_rows"
  | "onehot"
  | "saliency_max"
  | "occlude"
  | "tv_rows";

const kernels = new Map<MetricsEntry, Kernel>();

function kernel(entry: MetricsEntry): Kernel {
  let k = kernels.get(entry);
  if (!k) kernels.set(entry, k = { name: `metrics.${entry}`, code: metricsSrc, entry });
  return k;
}

/** Fields of the shader's `Params` (all default to 0). */
export interface MetricsParams {
  n?: number;
  d?: number;
  k?: number;
  res?: number;
  start?: number;
  half?: number;
  flag?: number;
  cls?: number;
  h?: number;
  w?: number;
  win?: number;
  stride?: number;
  nwx?: number;
  baseline?: number;
  scale?: number;
}

const FIELDS: (keyof MetricsParams)[] = [
  "n",
  "d",
  "k",
  "res",
  "start",
  "half",
  "flag",
  "cls",
  "h",
  "w",
  "win",
  "stride",
  "nwx",
  "baseline",
  "scale",
];

/**
 * Records one dispatch of a metrics entry point over `threads` invocations.
 * @param rt runtime
 * @param entry entry point
 * @param io `xa` (f32, read), `xu` (u32/i32, read), `y` (f32, written)
 * @param params uniform values (missing fields are 0)
 * @param threads number of invocations
 */
export function runMetricsKernel(
  rt: Backend,
  entry: MetricsEntry,
  io: { xa?: Tensor; xu?: Tensor; y: Tensor },
  params: MetricsParams,
  threads: number,
): void {
  const values: Record<string, number> = {};
  for (const f of FIELDS) values[f] = params[f] ?? 0;
  rt.dispatch(kernel(entry), {
    bindings: [io.xa ?? rt.placeholder(0), io.xu ?? rt.placeholder(1), io.y],
    params: values,
    workgroups: rt.grid(threads, 256),
  });
}
