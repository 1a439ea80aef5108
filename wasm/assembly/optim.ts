// regula WebAssembly kernels: the twins of the optim WGSL family (src/wasm/kernels/optim.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// One call updates `n` consecutive elements of one parameter tensor, operation by operation as
// shaders/optim.wgsl's sgd_main / adam_main (PyTorch 1.13's _single_tensor_sgd / _single_tensor_adam,
// see there), four elements per f32x4 and the tail one at a time with the same operations, so
// every element gets the same bits whichever call covers it. The fused shaders
// (optim_sgd_fused.wgsl, optim_adam_fused.wgsl) run the same per-element update, so their twins
// call these per slot. The flags are uniform over a call: the branches are taken per call, not per
// element. Pointers are byte offsets of the part's first element.

import { at } from "./_common";

/**
 * torch.optim.SGD on n elements: d = ±g (+ wd·w); with momentum, buf = first ? d :
 * momentum·buf + (1 - dampening)·d and d = nesterov ? d + momentum·buf : buf; w -= lr·d.
 * @param param (n,) f32, updated in place
 * @param grad (n,) f32, zeroed when zeroGrad
 * @param buf (n,) f32 momentum buffer (read unless first, written; untouched when momentum = 0)
 */
export function optim_sgd(
  n: i32,
  param: usize,
  grad: usize,
  buf: usize,
  lr: f32,
  wd: f32,
  momentum: f32,
  oneMinusDampening: f32,
  nesterov: i32,
  first: i32,
  maximize: i32,
  zeroGrad: i32,
): void {
  const hasWd = wd != 0;
  const hasMom = momentum != 0;
  const vlr = f32x4.splat(lr);
  const vwd = f32x4.splat(wd);
  const vmom = f32x4.splat(momentum);
  const vomd = f32x4.splat(oneMinusDampening);
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const w = v128.load(at(param, i));
    let d = v128.load(at(grad, i));
    if (zeroGrad) v128.store(at(grad, i), zero);
    if (maximize) d = f32x4.neg(d);
    if (hasWd) d = f32x4.add(d, f32x4.mul(vwd, w));
    if (hasMom) {
      const b = first
        ? d
        : f32x4.add(f32x4.mul(v128.load(at(buf, i)), vmom), f32x4.mul(vomd, d));
      v128.store(at(buf, i), b);
      d = nesterov ? f32x4.add(d, f32x4.mul(vmom, b)) : b;
    }
    v128.store(at(param, i), f32x4.sub(w, f32x4.mul(vlr, d)));
  }
  for (; i < n; i++) {
    const w = load<f32>(at(param, i));
    let d = load<f32>(at(grad, i));
    if (zeroGrad) store<f32>(at(grad, i), 0);
    if (maximize) d = -d;
    if (hasWd) d = d + wd * w;
    if (hasMom) {
      const b = first ? d : load<f32>(at(buf, i)) * momentum + oneMinusDampening * d;
      store<f32>(at(buf, i), b);
      d = nesterov ? d + momentum * b : b;
    }
    store<f32>(at(param, i), w - lr * d);
  }
}

/**
 * torch.optim.Adam (decoupled = 0) and AdamW (decoupled = 1) on n elements:
 * g = ±g; AdamW w *= decay, Adam g += wd·w (if wd != 0); m = beta1·m + (1 - beta1)·g;
 * v = beta2·v + (1 - beta2)·g·g; amsgrad: vmax = max(vmax, v), the denominator uses vmax;
 * w -= stepSize · m / (sqrt(v) / bc2Sqrt + eps).
 * @param param (n,) f32, updated in place
 * @param grad (n,) f32, zeroed when zeroGrad
 * @param m (n,) f32 exp_avg
 * @param v (n,) f32 exp_avg_sq
 * @param vmax (n,) f32 max_exp_avg_sq (only with amsgrad)
 */
export function optim_adam(
  n: i32,
  param: usize,
  grad: usize,
  m: usize,
  v: usize,
  vmax: usize,
  wd: f32,
  maximize: i32,
  zeroGrad: i32,
  beta1: f32,
  oneMinusBeta1: f32,
  beta2: f32,
  oneMinusBeta2: f32,
  eps: f32,
  stepSize: f32,
  bc2Sqrt: f32,
  decay: f32,
  decoupled: i32,
  amsgrad: i32,
): void {
  const l2 = !decoupled && wd != 0;
  const vwd = f32x4.splat(wd);
  const vb1 = f32x4.splat(beta1);
  const vob1 = f32x4.splat(oneMinusBeta1);
  const vb2 = f32x4.splat(beta2);
  const vob2 = f32x4.splat(oneMinusBeta2);
  const veps = f32x4.splat(eps);
  const vstep = f32x4.splat(stepSize);
  const vbc2 = f32x4.splat(bc2Sqrt);
  const vdecay = f32x4.splat(decay);
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    let w = v128.load(at(param, i));
    let g = v128.load(at(grad, i));
    if (zeroGrad) v128.store(at(grad, i), zero);
    if (maximize) g = f32x4.neg(g);
    if (decoupled) w = f32x4.mul(w, vdecay);
    else if (l2) g = f32x4.add(g, f32x4.mul(vwd, w));
    const mi = f32x4.add(f32x4.mul(v128.load(at(m, i)), vb1), f32x4.mul(vob1, g));
    let vi = f32x4.add(f32x4.mul(v128.load(at(v, i)), vb2), f32x4.mul(f32x4.mul(vob2, g), g));
    v128.store(at(m, i), mi);
    v128.store(at(v, i), vi);
    if (amsgrad) {
      vi = f32x4.max(v128.load(at(vmax, i)), vi);
      v128.store(at(vmax, i), vi);
    }
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vi), vbc2), veps);
    v128.store(at(param, i), f32x4.sub(w, f32x4.mul(vstep, f32x4.div(mi, denom))));
  }
  for (; i < n; i++) {
    let w = load<f32>(at(param, i));
    let g = load<f32>(at(grad, i));
    if (zeroGrad) store<f32>(at(grad, i), 0);
    if (maximize) g = -g;
    if (decoupled) w = w * decay;
    else if (l2) g = g + wd * w;
    const mi = load<f32>(at(m, i)) * beta1 + oneMinusBeta1 * g;
    let vi = load<f32>(at(v, i)) * beta2 + oneMinusBeta2 * g * g;
    store<f32>(at(m, i), mi);
    store<f32>(at(v, i), vi);
    if (amsgrad) {
      // f32x4.max above: NaN if either is NaN; Mathf.max is the same.
      vi = Mathf.max(load<f32>(at(vmax, i)), vi);
      store<f32>(at(vmax, i), vi);
    }
    const denom = Mathf.sqrt(vi) / bc2Sqrt + eps;
    store<f32>(at(param, i), w - stepSize * (mi / denom));
  }
}
