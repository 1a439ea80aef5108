/**
 * Optimizers as functions of explicit state: `sgd`, `adam` and `adamw` record
 * fused kernels into the current step's encoder and allocate nothing after the
 * first step: one dispatch updates up to 10 (SGD) or 6 (Adam, AdamW) parameter
 * tensors, each in a binding slot of its own (`shaders/optim_sgd_fused.wgsl`,
 * `shaders/optim_adam_fused.wgsl`: LeNet-5's SGD step is one dispatch), on GPUs
 * with the 30 storage bindings that takes; elsewhere, and by default on CPU
 * adapters, where it measured slower (see `canFuse`), one dispatch per tensor
 * (`shaders/optim.wgsl`). Both compute the same bits. The
 * update formulas are PyTorch 1.13's (`torch.optim.SGD`, `Adam`, `AdamW`,
 * default single-tensor path), operation by operation.
 *
 * State lives in an {@linkcode OptimizerState}: tensors created lazily at a
 * parameter's first step (as torch creates `optimizer.state[p]`), keyed by the
 * parameter's `state_dict` name, and freed by `state.dispose()`. The learning
 * rate is an argument of every step (a uniform, not a compile-time constant),
 * so a schedule costs no recompilation. Parameter groups with different
 * options are calls with different options on the same state.
 *
 * @example
 * ```ts
 * const opt = createOptimizer(rt, { algorithm: "sgd", momentum: 0.9, nesterov: true, zeroGrad: true });
 * const schedule = cosineAnnealing(0.1, { tMax: steps });
 * for (let t = 0; t < steps; t++) {
 *   // ... forward, loss, backward (accumulates p.grad) ...
 *   opt.step(model.params(), schedule(t)); // and zeroes the gradients
 *   rt.submit();
 * }
 * opt.dispose();
 * ```
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Kernel } from "../kernel.ts";
import { fmtShape, type Tensor } from "../backend.ts";
import type { Param } from "../layers/layer.ts";
import optimSrc from "../../shaders/optim.wgsl" with { type: "text" };
import sgdFusedSrc from "../../shaders/optim_sgd_fused.wgsl" with { type: "text" };
import adamFusedSrc from "../../shaders/optim_adam_fused.wgsl" with { type: "text" };

const SGD: Kernel = { name: "optim.sgd", code: optimSrc, entry: "sgd_main" };
const ADAM: Kernel = { name: "optim.adam", code: optimSrc, entry: "adam_main" };
const SGD_FUSED: Kernel = { name: "optim.sgd_fused", code: sgdFusedSrc };
const ADAM_FUSED: Kernel = { name: "optim.adam_fused", code: adamFusedSrc };
/** Parameter tensors per fused dispatch (slots of shaders/optim_{sgd,adam}_fused.wgsl). */
const SGD_SLOTS = 10, ADAM_SLOTS = 6;
/** Storage bindings the fused kernels need (slots × buffers per slot). */
const FUSED_BINDINGS = 30;

/** A tensor's update in a fused dispatch: its buffers, in the slot's binding order. */
interface SlotUpdate {
  buffers: Tensor[];
  size: number;
  /** What must be equal across the slots of one dispatch (a uniform: first step, step count). */
  key: string;
}

/**
 * Records `updates` as fused dispatches of up to `slots` tensors each (consecutive tensors of
 * equal `key`), with `params(first)` giving the uniform of a dispatch and unused slots bound to
 * distinct placeholders.
 */
function fusedDispatches(
  rt: Backend,
  kernel: Kernel,
  slots: number,
  perSlot: number,
  updates: SlotUpdate[],
  params: (first: SlotUpdate) => Record<string, number>,
): void {
  for (let i = 0; i < updates.length;) {
    const group = [updates[i++]];
    while (i < updates.length && group.length < slots && updates[i].key === group[0].key) {
      group.push(updates[i++]);
    }
    const bindings: Tensor[] = [];
    const layout: Record<string, number> = {};
    // Each slot starts on a workgroup of its own (see the NOTE in the shaders).
    let groups = 0, spare = 0;
    for (let s = 0; s < slots; s++) {
      if (s > 0) layout[`off${s}`] = groups;
      const u = group[s];
      for (let b = 0; b < perSlot; b++) bindings.push(u?.buffers[b] ?? rt.placeholder(spare++));
      layout[`len${s}`] = u?.size ?? 0;
      groups += Math.ceil((u?.size ?? 0) / 256);
    }
    rt.dispatch(kernel, {
      bindings,
      params: { ...params(group[0]), ...layout },
      workgroups: rt.grid(groups, 1),
    });
  }
}

/** True when the device has the storage bindings of the fused kernels. */
function canFuse(rt: Backend, fused: boolean | undefined): boolean {
  // NOTE: not by default on CPU adapters. Mesa llvmpipe runs every case of the slot switch for
  // every invocation (masked, each load a loop over the lanes), so there the fused SGD step of
  // LeNet-5's 10 tensors measured 2.3-2.8 ms of GPU time against 0.8-0.9 ms for ten dispatches
  // (interleaved, best of 8 rounds of 20 steps), even with each workgroup inside one slot.
  return (fused ?? !rt.isCpuAdapter) &&
    rt.limits.maxStorageBuffersPerShaderStage >= FUSED_BINDINGS;
}

/** The update rules offered. */
export type Algorithm = "sgd" | "adam" | "adamw";

/** Options of {@linkcode sgd} (torch.optim.SGD, same names in camelCase and defaults). */
export interface SgdOptions {
  /** Learning rate for this step (>= 0). */
  lr: number;
  /** Momentum factor. Default 0 (no momentum buffer). */
  momentum?: number;
  /** Dampening of the momentum. Default 0. */
  dampening?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov?: boolean;
  /** L2 penalty added to the gradient, `g + wd * p`. Default 0. */
  weightDecay?: number;
  /** Ascend instead of descend. Default false. */
  maximize?: boolean;
  /**
   * Set each gradient to 0 after reading it: torch's `zero_grad()` fused into
   * the update, saving a clear per tensor. Default false (as torch, `step`
   * leaves gradients alone).
   */
  zeroGrad?: boolean;
  /**
   * Fuse the update of many tensors into one dispatch (see the module doc) where the device has
   * the bindings. Default: on GPUs, not on CPU adapters (llvmpipe, where ten dispatches measured
   * faster); false: one dispatch per tensor. The results are the same bits either way.
   */
  fused?: boolean;
}

/** Options of {@linkcode adam} and {@linkcode adamw} (torch.optim.Adam / AdamW). */
export interface AdamOptions {
  /** Learning rate for this step (>= 0). */
  lr: number;
  /** (beta1, beta2). Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Added to the bias-corrected sqrt of the second moment. Default 1e-8. */
  eps?: number;
  /**
   * Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay,
   * `p *= 1 - lr * wd` before the update (default 1e-2, as torch).
   */
  weightDecay?: number;
  /** AMSGrad: normalise by the running maximum of the second moment. Default false. */
  amsgrad?: boolean;
  /** Ascend instead of descend. Default false. */
  maximize?: boolean;
  /** Set each gradient to 0 after reading it (see {@linkcode SgdOptions.zeroGrad}). Default false. */
  zeroGrad?: boolean;
  /**
   * Fuse the update of many tensors into one dispatch (see the module doc) where the device has
   * the bindings. Default: on GPUs, not on CPU adapters (llvmpipe, where ten dispatches measured
   * faster); false: one dispatch per tensor. The results are the same bits either way.
   */
  fused?: boolean;
}

/** Per-parameter state: torch's `optimizer.state[p]`. */
interface Slot {
  shape: readonly number[];
  /** Steps taken (torch's `state["step"]`). */
  step: number;
  /** "momentum_buffer" (SGD) or "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (Adam/AdamW). */
  tensors: Map<string, Tensor>;
}

/** What an {@linkcode OptimizerState} holds, kept out of its public surface. */
interface StateData {
  algorithm: Algorithm | null;
  slots: Map<string, Slot>;
  disposed: boolean;
}

const stateData = new WeakMap<OptimizerState, StateData>();

/**
 * The state of one optimizer: per parameter (by `state_dict` name), its step
 * count and its moment buffers, created at the parameter's first step. Owns
 * its tensors.
 */
export class OptimizerState {
  /**
   * An empty state.
   * @param rt the runtime that allocates the state tensors
   */
  constructor(readonly rt: Backend) {
    stateData.set(this, { algorithm: null, slots: new Map(), disposed: false });
  }

  /** The algorithm that first used this state (null before any step). */
  get algorithm(): Algorithm | null {
    return stateData.get(this)!.algorithm;
  }

  /** Steps taken for the parameter named `name` (0 before its first step). */
  steps(name: string): number {
    return stateData.get(this)!.slots.get(name)?.step ?? 0;
  }

  /**
   * Every state tensor, named `${param}.${key}` with torch's keys
   * (`momentum_buffer`, `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`). The tensors
   * stay owned by the state: do not dispose them.
   */
  tensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, slot] of stateData.get(this)!.slots) {
      for (const [key, t] of slot.tensors) out.set(`${name}.${key}`, t);
    }
    return out;
  }

  /** Frees every state tensor; the state can not be used afterwards. */
  dispose(): void {
    const d = stateData.get(this)!;
    for (const slot of d.slots.values()) for (const t of slot.tensors.values()) t.dispose();
    d.slots.clear();
    d.disposed = true;
  }
}

/** The slot of `p` in `state`, created on first use, checked against the algorithm and shape. */
function slotOf(rt: Backend, state: OptimizerState, op: Algorithm, p: Param): Slot {
  if (state.rt !== rt) throw new Error(`${op}: the optimizer state belongs to another runtime`);
  const d = stateData.get(state)!;
  if (d.disposed) throw new Error(`${op}: the optimizer state was used after dispose()`);
  const family = (a: Algorithm) => (a === "sgd" ? "sgd" : "adam");
  if (d.algorithm && family(d.algorithm) !== family(op)) {
    throw new Error(
      `${op}: this optimizer state holds ${d.algorithm} buffers; use a new OptimizerState`,
    );
  }
  d.algorithm ??= op;
  let s = d.slots.get(p.name);
  if (!s) {
    d.slots.set(p.name, s = { shape: [...p.value.shape], step: 0, tensors: new Map() });
  } else if (fmtShape(s.shape) !== fmtShape(p.value.shape)) {
    throw new Error(
      `${op}: parameter '${p.name}' has shape ${fmtShape(p.value.shape)} but its optimizer ` +
        `state was made for ${fmtShape(s.shape)}`,
    );
  }
  return s;
}

/** The state tensor `key` of a slot, created (zeroed if `zero`) on first use. */
function stateTensor(
  rt: Backend,
  slot: Slot,
  name: string,
  key: string,
  zero: boolean,
): { t: Tensor; fresh: boolean } {
  let t = slot.tensors.get(key);
  if (t) return { t, fresh: false };
  t = zero
    ? rt.zeros(slot.shape, "f32", `${name}.${key}`)
    : rt.empty(slot.shape, "f32", `${name}.${key}`);
  slot.tensors.set(key, t);
  return { t, fresh: true };
}

function checkNumber(op: string, what: string, v: number, lo: number, hi = Infinity): void {
  if (!(Number.isFinite(v) && v >= lo && v <= hi)) {
    const range = hi === Infinity ? `>= ${lo}` : `in [${lo}, ${hi}]`;
    throw new Error(`${op}: invalid ${what} ${v} (must be finite and ${range})`);
  }
}

/** The trainable params of a list (those with a gradient, not buffers), validated. */
function trainable(op: string, params: readonly Param[]): Param[] {
  const seen = new Set<string>();
  const out: Param[] = [];
  for (const p of params) {
    if (p.kind === "buffer" || !p.grad) continue;
    if (seen.has(p.name)) {
      throw new Error(`${op}: parameter name '${p.name}' appears twice; state is kept by name`);
    }
    seen.add(p.name);
    if (p.value.disposed || p.grad.disposed) {
      throw new Error(`${op}: parameter '${p.name}' or its gradient was used after dispose()`);
    }
    if (p.value.dtype !== "f32" || p.grad.dtype !== "f32" || p.value.size !== p.grad.size) {
      throw new Error(
        `${op}: parameter '${p.name}' ${p.value.describe()} and gradient ${p.grad.describe()} ` +
          `must be f32 of the same size`,
      );
    }
    out.push(p);
  }
  return out;
}

const BASE_PARAMS = {
  lr: 0,
  wd: 0,
  momentum: 0,
  one_minus_dampening: 0,
  nesterov: 0,
  first: 0,
  maximize: 0,
  zero_grad: 0,
  beta1: 0,
  one_minus_beta1: 0,
  beta2: 0,
  one_minus_beta2: 0,
  eps: 0,
  step_size: 0,
  bc2_sqrt: 0,
  decay: 0,
  decoupled: 0,
  amsgrad: 0,
};

/**
 * One step of stochastic gradient descent with optional momentum, dampening,
 * Nesterov momentum and L2 weight decay (torch.optim.SGD, 1.13):
 * `d = g + wd p; buf = d` (first step) `or momentum buf + (1 - dampening) d;
 * d = nesterov ? d + momentum buf : buf; p -= lr d`.
 *
 * @param rt runtime
 * @param params parameters; those without `grad` and `kind: "buffer"` are skipped. Each
 *   `value` is updated in place from its `grad` (f32, same size)
 * @param state momentum buffers by parameter name (created here, owned by the state)
 * @param opts learning rate and hyperparameters
 * @throws Error on invalid hyperparameters, mismatched shapes, or a state of another algorithm
 */
export function sgd(
  rt: Backend,
  params: readonly Param[],
  state: OptimizerState,
  opts: SgdOptions,
): void {
  const op = "sgd";
  const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = opts;
  checkNumber(op, "learning rate", lr, 0);
  checkNumber(op, "momentum", momentum, 0);
  checkNumber(op, "dampening", dampening, -Infinity);
  checkNumber(op, "weight decay", weightDecay, 0);
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new Error(`${op}: Nesterov momentum requires a momentum and zero dampening`);
  }
  const uniform = (first: number) => ({
    lr,
    wd: weightDecay,
    momentum,
    one_minus_dampening: 1 - dampening,
    nesterov: nesterov ? 1 : 0,
    first,
    maximize: opts.maximize ? 1 : 0,
    zero_grad: (opts.zeroGrad ?? false) ? 1 : 0,
  });
  const fused = canFuse(rt, opts.fused);
  const updates: SlotUpdate[] = [];
  for (const p of trainable(op, params)) {
    const slot = slotOf(rt, state, op, p);
    let buf: Tensor | null = null, first = 0;
    if (momentum !== 0) {
      const b = stateTensor(state.rt, slot, p.name, "momentum_buffer", false);
      buf = b.t;
      first = b.fresh ? 1 : 0;
    }
    slot.step++;
    if (fused) {
      const buffers = buf ? [p.value, p.grad!, buf] : [p.value, p.grad!];
      updates.push({ buffers, size: p.value.size, key: `${first}` });
      continue;
    }
    rt.dispatch(SGD, {
      bindings: [p.value, p.grad!, buf ?? rt.placeholder(0), rt.placeholder(1), rt.placeholder(2)],
      params: { ...BASE_PARAMS, n: p.value.size, ...uniform(first) },
      workgroups: rt.grid(p.value.size, 256),
    });
  }
  fusedDispatches(rt, SGD_FUSED, SGD_SLOTS, 3, updates, (u) => uniform(Number(u.key)));
}

function adamStep(
  op: "adam" | "adamw",
  rt: Backend,
  params: readonly Param[],
  state: OptimizerState,
  opts: AdamOptions,
): void {
  const { lr, betas = [0.9, 0.999], eps = 1e-8, amsgrad = false } = opts;
  const weightDecay = opts.weightDecay ?? (op === "adamw" ? 1e-2 : 0);
  checkNumber(op, "learning rate", lr, 0);
  checkNumber(op, "epsilon value", eps, 0);
  checkNumber(op, "weight decay", weightDecay, 0);
  const [beta1, beta2] = betas;
  if (!(beta1 >= 0 && beta1 < 1)) {
    throw new Error(`${op}: invalid beta parameter at index 0: ${beta1}`);
  }
  if (!(beta2 >= 0 && beta2 < 1)) {
    throw new Error(`${op}: invalid beta parameter at index 1: ${beta2}`);
  }
  const uniform = (step: number) => {
    // Python-float scalars of torch's _single_tensor_adam(w), in float64 here too.
    const bc1 = 1 - beta1 ** step;
    const bc2 = 1 - beta2 ** step;
    return {
      lr,
      wd: weightDecay,
      maximize: opts.maximize ? 1 : 0,
      zero_grad: (opts.zeroGrad ?? false) ? 1 : 0,
      beta1,
      one_minus_beta1: 1 - beta1,
      beta2,
      one_minus_beta2: 1 - beta2,
      eps,
      step_size: lr / bc1,
      bc2_sqrt: Math.sqrt(bc2),
      decay: 1 - lr * weightDecay,
      decoupled: op === "adamw" ? 1 : 0,
      amsgrad: amsgrad ? 1 : 0,
    };
  };
  const fused = canFuse(rt, opts.fused);
  const updates: SlotUpdate[] = [];
  for (const p of trainable(op, params)) {
    const slot = slotOf(rt, state, op, p);
    const m = stateTensor(state.rt, slot, p.name, "exp_avg", true).t;
    const v = stateTensor(state.rt, slot, p.name, "exp_avg_sq", true).t;
    const vmax = amsgrad ? stateTensor(state.rt, slot, p.name, "max_exp_avg_sq", true).t : null;
    const step = ++slot.step;
    if (fused) {
      const buffers = vmax ? [p.value, p.grad!, m, v, vmax] : [p.value, p.grad!, m, v];
      updates.push({ buffers, size: p.value.size, key: `${step}` });
      continue;
    }
    rt.dispatch(ADAM, {
      bindings: [p.value, p.grad!, m, v, vmax ?? rt.placeholder(0)],
      params: { ...BASE_PARAMS, n: p.value.size, ...uniform(step) },
      workgroups: rt.grid(p.value.size, 256),
    });
  }
  fusedDispatches(rt, ADAM_FUSED, ADAM_SLOTS, 5, updates, (u) => uniform(Number(u.key)));
}

/**
 * One Adam step (torch.optim.Adam, 1.13): bias-corrected moments,
 * `p -= lr / (1 - β1^t) * m / (sqrt(v) / sqrt(1 - β2^t) + eps)`, with
 * `weightDecay` as an L2 term added to the gradient.
 *
 * @param rt runtime
 * @param params parameters; those without `grad` and `kind: "buffer"` are skipped
 * @param state moments and step counts by parameter name (owned by the state)
 * @param opts learning rate and hyperparameters
 * @throws Error on invalid hyperparameters, mismatched shapes, or an SGD state
 */
export function adam(
  rt: Backend,
  params: readonly Param[],
  state: OptimizerState,
  opts: AdamOptions,
): void {
  adamStep("adam", rt, params, state, opts);
}

/**
 * One AdamW step (torch.optim.AdamW, 1.13): `p *= 1 - lr * wd` first
 * (decoupled weight decay, Loshchilov & Hutter 2019), then the Adam update.
 * `weightDecay` defaults to 1e-2 as in torch.
 *
 * @param rt runtime
 * @param params parameters; those without `grad` and `kind: "buffer"` are skipped
 * @param state moments and step counts by parameter name (owned by the state)
 * @param opts learning rate and hyperparameters
 * @throws Error on invalid hyperparameters, mismatched shapes, or an SGD state
 */
export function adamw(
  rt: Backend,
  params: readonly Param[],
  state: OptimizerState,
  opts: AdamOptions,
): void {
  adamStep("adamw", rt, params, state, opts);
}

/** An optimizer bound to its state and hyperparameters; only the learning rate varies. */
export interface Optimizer {
  /** The update rule. */
  readonly algorithm: Algorithm;
  /** Its state (owned by the optimizer). */
  readonly state: OptimizerState;
  /**
   * Records one update of every trainable param (fused dispatches, see the
   * module doc) into the current step. Does not submit.
   */
  step(params: readonly Param[], lr: number): void;
  /** Frees the state. */
  dispose(): void;
}

/** What {@linkcode createOptimizer} builds: the algorithm and its options minus `lr`. */
export type OptimizerSpec =
  | ({ algorithm: "sgd" } & Omit<SgdOptions, "lr">)
  | ({ algorithm: "adam" | "adamw" } & Omit<AdamOptions, "lr">);

/**
 * An {@linkcode Optimizer} over a fresh {@linkcode OptimizerState}.
 * @param rt runtime
 * @param spec algorithm and hyperparameters (all but the learning rate)
 * @returns the optimizer; the caller disposes it
 */
export function createOptimizer(rt: Backend, spec: OptimizerSpec): Optimizer {
  const state = new OptimizerState(rt);
  const { algorithm, ...rest } = spec;
  const fn = algorithm === "sgd"
    ? sgd
    : algorithm === "adam"
    ? adam
    : algorithm === "adamw"
    ? adamw
    : null;
  if (!fn) throw new Error(`createOptimizer: unknown algorithm '${algorithm}'`);
  return {
    algorithm,
    state,
    step(params, lr) {
      fn(rt, params, state, { ...rest, lr });
    },
    dispose() {
      state.dispose();
    },
  };
}

/**
 * Sets every gradient to 0 (recorded in the current step): torch's
 * `optimizer.zero_grad()`, for callers that do not fuse it into the step with
 * `zeroGrad: true`.
 * @param rt runtime
 * @param params parameters whose `grad` is cleared
 */
export function zeroGrads(rt: Backend, params: readonly Param[]): void {
  for (const p of params) if (p.grad) rt.fill0(p.grad);
}
