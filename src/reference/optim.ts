/**
 * Float64 CPU references of `src/train/optim.ts`: one step of SGD, Adam and
 * AdamW on plain arrays, the PyTorch 1.13 single-tensor formulas written out.
 *
 * @module
 */

/** Per-parameter state of the references (torch's `optimizer.state[p]`). */
export interface RefOptimState {
  /** Steps taken. */
  step: number;
  /** SGD momentum buffer (absent before the first step with momentum). */
  momentumBuffer?: Float64Array;
  /** Adam first moment. */
  expAvg?: Float64Array;
  /** Adam second moment. */
  expAvgSq?: Float64Array;
  /** AMSGrad running maximum of the second moment. */
  maxExpAvgSq?: Float64Array;
}

/** Hyperparameters of {@linkcode refSgdStep}. */
export interface RefSgdOptions {
  /** Learning rate. */
  lr: number;
  /** Default 0. */
  momentum?: number;
  /** Default 0. */
  dampening?: number;
  /** Default false. */
  nesterov?: boolean;
  /** L2 term added to the gradient. Default 0. */
  weightDecay?: number;
  /** Default false. */
  maximize?: boolean;
}

/**
 * One SGD step in place: `p` (updated), `g` (read), state (updated).
 * @param p parameter values
 * @param g gradient, same length
 */
export function refSgdStep(
  p: Float64Array,
  g: ArrayLike<number>,
  state: RefOptimState,
  o: RefSgdOptions,
): void {
  const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 } = o;
  const first = momentum !== 0 && !state.momentumBuffer;
  if (momentum !== 0) state.momentumBuffer ??= new Float64Array(p.length);
  const buf = state.momentumBuffer;
  for (let i = 0; i < p.length; i++) {
    let d = o.maximize ? -g[i] : g[i];
    d += weightDecay * p[i];
    if (buf) {
      buf[i] = first ? d : momentum * buf[i] + (1 - dampening) * d;
      d = nesterov ? d + momentum * buf[i] : buf[i];
    }
    p[i] -= lr * d;
  }
  state.step++;
}

/** Hyperparameters of {@linkcode refAdamStep}. */
export interface RefAdamOptions {
  /** Learning rate. */
  lr: number;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Adam: L2 term (default 0); AdamW: decoupled decay (default 1e-2). */
  weightDecay?: number;
  /** Default false. */
  amsgrad?: boolean;
  /** Default false. */
  maximize?: boolean;
  /** AdamW: decoupled weight decay. */
  decoupled?: boolean;
}

/**
 * One Adam (or, with `decoupled`, AdamW) step in place.
 * @param p parameter values
 * @param g gradient, same length
 */
export function refAdamStep(
  p: Float64Array,
  g: ArrayLike<number>,
  state: RefOptimState,
  o: RefAdamOptions,
): void {
  const { lr, betas = [0.9, 0.999], eps = 1e-8, amsgrad = false } = o;
  const wd = o.weightDecay ?? (o.decoupled ? 1e-2 : 0);
  const [b1, b2] = betas;
  const n = p.length;
  const m = state.expAvg ??= new Float64Array(n);
  const v = state.expAvgSq ??= new Float64Array(n);
  const vmax = amsgrad ? (state.maxExpAvgSq ??= new Float64Array(n)) : null;
  const step = ++state.step;
  const bc1 = 1 - b1 ** step, bc2 = 1 - b2 ** step;
  for (let i = 0; i < n; i++) {
    let gi = o.maximize ? -g[i] : g[i];
    if (o.decoupled) p[i] *= 1 - lr * wd;
    else gi += wd * p[i];
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    let vv = v[i];
    if (vmax) vv = vmax[i] = Math.max(vmax[i], v[i]);
    const denom = Math.sqrt(vv) / Math.sqrt(bc2) + eps;
    p[i] -= (lr / bc1) * (m[i] / denom);
  }
}
