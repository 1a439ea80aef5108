// regula WebAssembly kernels: the twins of the weightnorm WGSL family (src/wasm/kernels/weightnorm.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// shaders/weightnorm.wgsl (Salimans & Kingma 2016, torch.nn.utils.weight_norm with dim = 0) on a
// range of output rows o of a (O, K) weight: each row's sums run whole on the thread that owns
// the row in _sums.ts's fixed order (the WGSL's tree in workgroup memory agrees to float32
// rounding), then the row is written four floats at a time.
// Pointers are byte offsets of element 0 of each buffer.

import { at } from "./_common";
import { dot } from "./_sums";

/**
 * weight_main on rows [o0, o0 + count): w[o, :] = (g[o] / ‖v[o, :]‖) · v[o, :].
 * @param g (O,) f32
 * @param v (O, K) f32
 * @param w (O, K) f32
 */
export function weightnorm_weight(o0: u32, count: u32, k: u32, g: usize, v: usize, w: usize): void {
  for (let o = o0; o < o0 + count; o++) {
    const pv = at(v, <usize>o * k);
    const pw = at(w, <usize>o * k);
    const scale = load<f32>(at(g, o)) / Mathf.sqrt(dot(pv, pv, k));
    const vs = f32x4.splat(scale);
    let j: u32 = 0;
    for (; j + 4 <= k; j += 4) v128.store(at(pw, j), f32x4.mul(vs, v128.load(at(pv, j))));
    for (; j < k; j++) store<f32>(at(pw, j), scale * load<f32>(at(pv, j)));
  }
}

/**
 * fold_main on rows [o0, o0 + count): with n = ‖v[o, :]‖ and c = Σ_j dW[o, j]·v[o, j] / n,
 * dg[o] += c; dv[o, :] += (g[o] / n)·(dW[o, :] - c·v[o, :] / n); dW[o, :] = 0.
 * @param g (O,) f32
 * @param v (O, K) f32
 * @param dw (O, K) f32 the accumulated weight gradient, cleared
 * @param dg (O,) f32, accumulated into
 * @param dv (O, K) f32, accumulated into
 */
export function weightnorm_fold(
  o0: u32,
  count: u32,
  k: u32,
  g: usize,
  v: usize,
  dw: usize,
  dg: usize,
  dv: usize,
): void {
  const zero = f32x4.splat(0);
  for (let o = o0; o < o0 + count; o++) {
    const pv = at(v, <usize>o * k);
    const pw = at(dw, <usize>o * k);
    const pd = at(dv, <usize>o * k);
    const n = Mathf.sqrt(dot(pv, pv, k));
    const c = dot(pw, pv, k) / n;
    store<f32>(at(dg, o), load<f32>(at(dg, o)) + c);
    const s = load<f32>(at(g, o)) / n;
    const vs = f32x4.splat(s);
    const vc = f32x4.splat(c);
    const vn = f32x4.splat(n);
    let j: u32 = 0;
    for (; j + 4 <= k; j += 4) {
      const t = f32x4.sub(v128.load(at(pw, j)), f32x4.div(f32x4.mul(vc, v128.load(at(pv, j))), vn));
      v128.store(at(pd, j), f32x4.add(v128.load(at(pd, j)), f32x4.mul(vs, t)));
      v128.store(at(pw, j), zero);
    }
    for (; j < k; j++) {
      const t = load<f32>(at(pw, j)) - c * load<f32>(at(pv, j)) / n;
      store<f32>(at(pd, j), load<f32>(at(pd, j)) + s * t);
      store<f32>(at(pw, j), 0);
    }
  }
}
