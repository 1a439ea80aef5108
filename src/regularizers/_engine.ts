/**
 * The frame the penalties on the function share (Jacobian, Jacobian determinant, input-gradient
 * norm): the input and output checks, the {@linkcode LayerChain} of the model (rebuilt when the
 * model changes), scratch tensors kept between calls, the per-sample and batch-mean outputs, and
 * the two ways of running an engine — once for a pure function, or kept per runtime by a
 * regularizer's hook.
 *
 * Private to src/regularizers.
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { scale } from "../ops/elementwise.ts";
import { reduce } from "../ops/reduce.ts";
import { LayerChain, reuse, sizeOfShape } from "./_chain.ts";

/** Value of a penalty on the function. */
export interface PenaltyResult {
  /** [1] f32: what the penalty adds to the loss (coefficient included). */
  value: Tensor;
  /**
   * (B,) f32: the per-sample penalty `R` (Jacobian, determinant, gradient norm: without λ, e.g.
   * `R(x)` for JR; confidence: with β).
   */
  perSample: Tensor;
  /** Disposes `value` and `perSample`. */
  dispose(): void;
}

/**
 * A {@linkcode PenaltyResult} that owns `value` and `perSample`.
 * @param value [1] f32
 * @param perSample (B,) f32
 * @returns the pair with a `dispose()` that frees both
 */
export function penaltyResult(value: Tensor, perSample: Tensor): PenaltyResult {
  return {
    value,
    perSample,
    dispose() {
      value.dispose();
      perSample.dispose();
    },
  };
}

/**
 * A regularizer's coefficient (λ, β), checked when the regularizer is built.
 * @param op the builder's name, to start the message with
 * @param name the option's name
 * @param v its value
 * @returns `v`
 * @throws Error unless `v` is finite and >= 0
 */
export function checkWeight(op: string, name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) {
    throw new Error(`${op}: ${name} must be finite and >= 0, got ${v}`);
  }
  return v;
}

/** The chain and the sizes {@linkcode ChainEngine.begin} found. */
export interface ChainPoint {
  chain: LayerChain;
  /** The model's (B, C) output shape. */
  out: number[];
  /** Batch size B. */
  b: number;
  /** Classes C. */
  c: number;
  /** Input size per sample D. */
  d: number;
}

/**
 * The reusable state of a penalty on the function: the model's chain, named scratch tensors and
 * the outputs `value` [1] and `perSample` (B,). Subclasses add the penalty's `run`.
 */
export class ChainEngine {
  #chain: LayerChain | null = null;
  #scratch = new Map<string, Tensor>();
  /** [1] f32 of the last run, until {@linkcode ChainEngine.take}. */
  value: Tensor | null = null;
  /** (B,) f32 of the last run, until {@linkcode ChainEngine.take}. */
  perSample: Tensor | null = null;

  /**
   * @param rt runtime
   * @param op name for error messages ("jacobianPenalty", "jacobian regularizer")
   */
  constructor(readonly rt: Backend, readonly op: string) {}

  /**
   * The checks every penalty makes before it runs: `x` alive, the model differentiable by the
   * chain (built on first use and when the model changes) and in a mode it accepts, logits
   * (B, C); allocates `perSample` (B,) and `value` [1].
   * @param model the model
   * @param x (B, ...) f32 input batch
   * @returns the chain and B, C, D
   * @throws Error for a disposed input, an unsupported layer, a layer whose role's check
   *   refuses, or an output that is not (B, C)
   */
  begin(model: Layer, x: Tensor): ChainPoint {
    const op = this.op;
    if (x.disposed) throw new Error(`${op}: input ${x.describe()} was used after dispose()`);
    if (this.#chain?.model !== model) {
      this.#chain?.dispose();
      this.#chain = new LayerChain(this.rt, model, op);
    }
    const chain = this.#chain;
    chain.checkMode();
    const out = model.outputShape(x.shape);
    if (out.length !== 2) {
      throw new Error(`${op}: the model's output must be (B, C) logits, got ${fmtShape(out)}`);
    }
    const [b, c] = out;
    this.perSample = reuse(this.rt, this.perSample, [b], `${op} per sample`);
    this.value = reuse(this.rt, this.value, [1], `${op} value`);
    return { chain, out, b, c, d: sizeOfShape(x.shape) / b };
  }

  /**
   * λ, default 0.01, checked finite (the pure functions accept any sign).
   * @param lambda the option as given
   * @returns λ
   */
  lambda(lambda: number | undefined): number {
    const l = lambda ?? 0.01;
    if (!Number.isFinite(l)) throw new Error(`${this.op}: lambda must be finite, got ${l}`);
    return l;
  }

  /**
   * A scratch f32 tensor of `shape`, kept between runs under `name` (reallocated when the shape
   * changes); owned by the engine.
   */
  scratch(name: string, shape: readonly number[]): Tensor {
    const t = reuse(this.rt, this.#scratch.get(name) ?? null, shape, `${this.op} ${name}`);
    this.#scratch.set(name, t);
    return t;
  }

  /** `value ← coef · mean_batch perSample`. */
  finish(coef: number): void {
    reduce(this.rt, "mean", this.perSample!, { out: this.value! });
    scale(this.rt, this.value!, coef, { out: this.value! });
  }

  /** Hands the outputs to the caller (the engine forgets them). */
  take(): PenaltyResult {
    const r = penaltyResult(this.value!, this.perSample!);
    this.value = this.perSample = null;
    return r;
  }

  /** Frees the chain's scratch, the engine's scratch and the outputs it still holds. */
  dispose(): void {
    this.#chain?.dispose();
    this.#chain = null;
    for (const t of [...this.#scratch.values(), this.value, this.perSample]) t?.dispose();
    this.#scratch.clear();
    this.value = this.perSample = null;
  }
}

/**
 * Runs a fresh engine once and hands its outputs to the caller (a pure function's call).
 * @param engine the engine (disposed afterwards, also on a throw)
 * @param run what to run on it
 * @returns value and perSample; the caller disposes them
 */
export function runOnce<E extends ChainEngine>(engine: E, run: (e: E) => void): PenaltyResult {
  try {
    run(engine);
    return engine.take();
  } finally {
    engine.dispose();
  }
}

/**
 * The engine of a regularizer's hook, kept between steps and rebuilt when the runtime changes.
 */
export class EngineSlot<E extends ChainEngine> {
  #engine: E | null = null;

  /** @param make builds an engine for a runtime */
  constructor(readonly make: (rt: Backend) => E) {}

  /** The engine for `rt` (the one of the previous call when the runtime is the same). */
  get(rt: Backend): E {
    if (this.#engine?.rt !== rt) {
      this.#engine?.dispose();
      this.#engine = this.make(rt);
    }
    return this.#engine;
  }

  /** Frees the engine. */
  dispose(): void {
    this.#engine?.dispose();
    this.#engine = null;
  }
}
