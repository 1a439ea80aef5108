/**
 * Shared by the parameter regularizers (penalties.ts, projections.ts, noise.ts): which parameters
 * a regularizer touches, the kernels of shaders/regularizers.wgsl and their launch, and a
 * scratch cache that keeps a regularizer's buffers from step to step.
 *
 * Private to src/regularizers.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import type { Tensor } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import regSrc from "../../shaders/regularizers.wgsl" with { type: "text" };

const k = (entry: string): Kernel => ({ name: `regularizers.${entry}`, code: regSrc, entry });
/** Kernels of shaders/regularizers.wgsl. */
export const KERNELS = {
  penalty: k("penalty_main"),
  gramResidual: k("gram_residual_main"),
  matvecT: k("matvec_t_main"),
  matvec: k("matvec_main"),
  normalize: k("normalize_main"),
  outer: k("outer_main"),
  spectralValue: k("spectral_value_main"),
  maxNorm: k("max_norm_main"),
} as const;

/** Elements one workgroup of `penalty_main` covers. */
export const CHUNK = 2048;

/** Uniform fields of shaders/regularizers.wgsl. */
export type RegParams = Partial<Record<"n" | "m" | "k" | "off" | "mode" | "c1" | "c2", number>>;

/** Storage bindings of shaders/regularizers.wgsl in order (a, b read; out, acc read_write). */
const SLOTS = ["a", "b", "out", "acc"] as const;

/**
 * Dispatches one kernel of shaders/regularizers.wgsl; missing bindings get the runtime's
 * placeholders.
 */
export function launch(
  rt: Backend,
  kernel: Kernel,
  b: Partial<Record<typeof SLOTS[number], Tensor>>,
  params: RegParams,
  workgroups: readonly number[],
): void {
  rt.dispatch(kernel, {
    bindings: SLOTS.map((s, i) => b[s] ?? rt.placeholder(i)),
    params: { n: 0, m: 0, k: 0, off: 0, mode: 0, c1: 0, c2: 0, ...params },
    workgroups,
  });
}

/** Which parameters a regularizer acts on. */
export interface ParamSelection {
  /** Also biases (`kind: "bias"`: Linear, Conv2d and BatchNorm β). Default false. */
  biases?: boolean;
  /**
   * Also the normalization layers' scales (BatchNorm and GroupNorm γ, `kind: "weight"` with one
   * dimension; LayerNorm γ of any shape, `elementwise`; weight normalization's g). Default
   * false: "weights" means the matrices and kernels of Linear and Conv2d layers.
   */
  norms?: boolean;
}

/**
 * The parameters a regularizer acts on: Linear/Conv2d weights (`kind: "weight"`, two or more
 * dimensions), plus biases and BatchNorm γ when asked. Buffers (running statistics) never.
 * @param params a model's `params()`
 * @param sel biases, norms
 * @param matricesOnly only weights with two or more dimensions, whatever `sel` says
 */
export function selectParams(
  params: readonly Param[],
  sel: ParamSelection = {},
  matricesOnly = false,
): Param[] {
  return params.filter((p) => {
    if (p.value.dtype !== "f32") return false;
    if (p.kind === "weight") {
      const matrix = p.value.shape.length >= 2 && !p.scale && !p.elementwise;
      return matrix || (!matricesOnly && (sel.norms ?? false));
    }
    if (p.kind === "bias") return !matricesOnly && (sel.biases ?? false);
    return false;
  });
}

/** A param's weight as an (m, k) matrix: (out, in) or (out, in, kh, kw) → (out, in·kh·kw). */
export function asMatrix(t: Tensor): Tensor {
  const m = t.shape[0];
  return t.shape.length === 2 ? t : t.reshape([m, t.size / m]);
}

/**
 * Tensors a regularizer keeps between steps, by key; a key asked for with another shape gets a
 * new tensor (the old one is freed).
 */
export class Scratch {
  #map = new Map<string, Tensor>();
  constructor(readonly rt: Backend, readonly owner: string) {}

  /** The tensor under `key` with this shape and dtype (contents kept from the last use). */
  get(key: string, shape: readonly number[], dtype: "f32" | "u32" = "f32"): Tensor {
    const t = this.#map.get(key);
    if (
      t && !t.disposed && t.dtype === dtype && t.shape.length === shape.length &&
      t.shape.every((d, i) => d === shape[i])
    ) return t;
    t?.dispose();
    const fresh = this.rt.empty(shape, dtype, `${this.owner} ${key}`);
    this.#map.set(key, fresh);
    return fresh;
  }

  /** True if `key` holds a tensor. */
  has(key: string): boolean {
    return this.#map.has(key);
  }

  /** Frees every tensor. */
  dispose(): void {
    for (const t of this.#map.values()) t.dispose();
    this.#map.clear();
  }
}

/** 32-bit FNV-1a hash of a string: the second Philox key word of a named random stream. */
export function streamKey(seed: number, stream: string): [number, number] {
  let h = 0x811c9dc5;
  for (let i = 0; i < stream.length; i++) {
    h ^= stream.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const s = ((Math.floor(seed) % 4294967296) + 4294967296) % 4294967296;
  return [s, h >>> 0];
}

/** Throws unless `v` is a finite number ≥ 0 (> 0 with `positive`). */
export function checkCoef(op: string, name: string, v: number, positive = false): void {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
    throw new Error(
      `${op}: ${name} must be a finite number ${positive ? "> 0" : ">= 0"}, got ${v}`,
    );
  }
}
