// regula WebAssembly kernels: the twins of shaders/regularizers.wgsl
// (src/wasm/kernels/regularizers.ts calls them). Every export here becomes an export of the module
// (index.ts re-exports this file).
//
// The parameter regularizers (src/regularizers/penalties.ts, projections.ts); the math is in the
// WGSL file. Matrices are row-major (m, k). Each kernel takes a range of its output items
// (penalty chunks, Gram rows, matrix rows or columns, elements) and computes each item by the
// same operations whatever the range, so any split across threads gives bitwise the same
// result. Reductions sum in four SIMD lanes, then ((l0 + l1) + (l2 + l3)): the WGSL's tree order
// differs, so sums agree within float32 rounding, not bitwise.

import { at, sumSquares } from "./_common";
import { hsum } from "./_vmath";

/** Each element of x[0..n) times f. */
@inline function scale(x: usize, n: i32, f: f32): void {
  const fv = f32x4.splat(f);
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(at(x, j), f32x4.mul(v128.load(at(x, j)), fv));
  for (; j < n; j++) store<f32>(at(x, j), load<f32>(at(x, j)) * f);
}

const CHUNK: i32 = 2048;

/**
 * penalty_main over chunks [g0, g1) of 2048 elements of the weight a (n,):
 * acc[off + g] = Σ c1 |w| + (c2/2) w² over the chunk; with `grad`, out[i] += c1 sign(w) + c2 w.
 */
export function regularizers_penalty(
  a: usize, out: usize, acc: usize, n: i32, off: i32, grad: i32, c1: f32, c2: f32,
  g0: i32, g1: i32,
): void {
  const h: f32 = <f32>0.5 * c2;
  const c1v = f32x4.splat(c1), c2v = f32x4.splat(c2), hv = f32x4.splat(h);
  const one = f32x4.splat(1);
  for (let g = g0; g < g1; g++) {
    const i0 = g * CHUNK;
    const cnt = min<i32>(CHUNK, n - i0);
    const w0 = at(a, i0), o0 = at(out, i0);
    let sv = f32x4.splat(0);
    let k = 0;
    for (; k + 4 <= cnt; k += 4) {
      const w = v128.load(at(w0, k));
      sv = f32x4.add(sv, f32x4.add(f32x4.mul(c1v, f32x4.abs(w)), f32x4.mul(f32x4.mul(hv, w), w)));
      if (grad != 0) {
        const zero = f32x4.splat(0);
        const sign = f32x4.sub(
          v128.and(f32x4.gt(w, zero), one),
          v128.and(f32x4.lt(w, zero), one),
        );
        const d = f32x4.add(f32x4.mul(c1v, sign), f32x4.mul(c2v, w));
        v128.store(at(o0, k), f32x4.add(v128.load(at(o0, k)), d));
      }
    }
    let s = hsum(sv);
    for (; k < cnt; k++) {
      const w = load<f32>(at(w0, k));
      s += c1 * Mathf.abs(w) + h * w * w;
      if (grad != 0) {
        const sign: f32 = w > 0 ? 1 : w < 0 ? -1 : 0;
        store<f32>(at(o0, k), load<f32>(at(o0, k)) + (c1 * sign + c2 * w));
      }
    }
    store<f32>(at(acc, off + g), s);
  }
}

/**
 * gram_residual_main over rows [r0, r1) of the (n, n) Gram matrix in out: G ← G − I in place,
 * acc[off + i] = c1 Σ_j (G − I)[i, j]².
 */
export function regularizers_gramResidual(
  out: usize, acc: usize, n: i32, off: i32, c1: f32, r0: i32, r1: i32,
): void {
  for (let i = r0; i < r1; i++) {
    const d = at(out, i * n + i);
    store<f32>(d, load<f32>(d) - 1);
    store<f32>(at(acc, off + i), c1 * sumSquares(at(out, i * n), n));
  }
}

/** matvec_t_main over columns [j0, j1): out[j] = Σ_i a[i, j] b[i] (a (m, k), in increasing i). */
export function regularizers_matvecT(
  a: usize, b: usize, out: usize, m: i32, k: i32, j0: i32, j1: i32,
): void {
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    let s = f32x4.splat(0);
    for (let i = 0; i < m; i++) {
      s = f32x4.add(s, f32x4.mul(v128.load(at(a, i * k + j)), f32x4.splat(load<f32>(at(b, i)))));
    }
    v128.store(at(out, j), s);
  }
  for (; j < j1; j++) {
    let s: f32 = 0;
    for (let i = 0; i < m; i++) s += load<f32>(at(a, i * k + j)) * load<f32>(at(b, i));
    store<f32>(at(out, j), s);
  }
}

/** matvec_main over rows [i0, i1): out[i] = Σ_j a[i, j] b[j] (a (m, k)). */
export function regularizers_matvec(
  a: usize, b: usize, out: usize, k: i32, i0: i32, i1: i32,
): void {
  for (let i = i0; i < i1; i++) {
    const row = at(a, i * k);
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= k; j += 4) {
      acc = f32x4.add(acc, f32x4.mul(v128.load(at(row, j)), v128.load(at(b, j))));
    }
    let s = hsum(acc);
    for (; j < k; j++) s += load<f32>(at(row, j)) * load<f32>(at(b, j));
    store<f32>(at(out, i), s);
  }
}

/** normalize_main: σ = ||out[0..n)||, out ← out / σ (a zero vector stays zero), acc[off] = σ. */
export function regularizers_normalize(out: usize, acc: usize, n: i32, off: i32): void {
  const nrm = Mathf.sqrt(sumSquares(out, n));
  scale(out, n, nrm > 0 ? <f32>1 / nrm : 0);
  store<f32>(at(acc, off), nrm);
}

/** outer_main over elements [e0, e1) of the (m, k) out: out[i, j] += c1 acc[off] a[i] b[j]. */
export function regularizers_outer(
  a: usize, b: usize, out: usize, acc: usize, k: i32, off: i32, c1: f32, e0: i32, e1: i32,
): void {
  const coef = c1 * load<f32>(at(acc, off));
  let e = e0;
  while (e < e1) {
    const i = e / k;
    const end = min<i32>(e1, (i + 1) * k);
    const ai = coef * load<f32>(at(a, i));
    const av = f32x4.splat(ai);
    let j = e - i * k;
    const jEnd = end - i * k;
    const row = at(out, i * k);
    for (; j + 4 <= jEnd; j += 4) {
      v128.store(at(row, j), f32x4.add(v128.load(at(row, j)), f32x4.mul(av, v128.load(at(b, j)))));
    }
    for (; j < jEnd; j++) store<f32>(at(row, j), load<f32>(at(row, j)) + ai * load<f32>(at(b, j)));
    e = end;
  }
}

/** spectral_value_main: out[0] = c1 Σ_{l < n} acc[l]². */
export function regularizers_spectralValue(acc: usize, out: usize, n: i32, c1: f32): void {
  store<f32>(out, c1 * sumSquares(acc, n));
}

/**
 * max_norm_main over rows [i0, i1) of the (m, k) weight in out: r = ||w_i||; when r > c1,
 * w_i ← w_i · c1 / (r + 1e-7).
 */
export function regularizers_maxNorm(out: usize, k: i32, c1: f32, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const row = at(out, i * k);
    const r = Mathf.sqrt(sumSquares(row, k));
    if (r > c1) scale(row, k, c1 / (r + <f32>1e-7));
  }
}
