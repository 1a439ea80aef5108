// regula WebAssembly kernels: the twins of shaders/jacobian.wgsl (src/wasm/kernels/jacobian.ts
// calls them). Every export here becomes an export of the module (index.ts re-exports this file).
//
// The small kernels of the function-space regularizers (src/regularizers/_chain.ts,
// confidence.ts, gradient_norm.ts, determinant.ts); the math is in the WGSL file. Each takes a
// range of rows (or elements, or samples) and computes them with the same operations in the
// same order as one WGSL invocation does (sequential loops over a row), so any split across
// threads gives bitwise the same result. exp and log are Mathf's (a few ulp from the GPU's).

import { at } from "./_common";

/** The largest of u[o + j], j < c (the WGSL's running max; c >= 1). */
@inline function rowMax(u: usize, o: i32, c: i32): f32 {
  let m = load<f32>(at(u, o));
  for (let j = 1; j < c; j++) m = max<f32>(m, load<f32>(at(u, o + j)));
  return m;
}

/** Σ exp(u[o + j] - m), j < c, in order. */
@inline function sumExp(u: usize, o: i32, c: i32, m: f32): f32 {
  let z: f32 = 0;
  for (let j = 0; j < c; j++) z += Mathf.exp(load<f32>(at(u, o + j)) - m);
  return z;
}

/** normalize_rows_main over rows [r0, r1) of out (n, c): each row divided by its norm. */
export function jacobian_normalizeRows(out: usize, c: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const row = at(out, r * c);
    let ss: f32 = 0;
    for (let j = 0; j < c; j++) {
      const a = load<f32>(at(row, j));
      ss += a * a;
    }
    const inv = <f32>1 / Mathf.sqrt(ss);
    for (let j = 0; j < c; j++) store<f32>(at(row, j), load<f32>(at(row, j)) * inv);
  }
}

/** one_hot_main over elements [e0, e1): out[i] = 1 when i % c == s, else 0. */
export function jacobian_oneHot(out: usize, c: u32, s: u32, e0: i32, e1: i32): void {
  for (let i = e0; i < e1; i++) store<f32>(at(out, i), <u32>i % c == s ? 1 : 0);
}

/**
 * confidence_main over rows [r0, r1) of the (n, c) logits u: out2[r] = R (−coef H, or
 * coef max(0, beta − H) when `hinged`), and with `grad` out[r, :] += alpha p (log p + H) where
 * the penalty is active.
 */
export function jacobian_confidence(
  u: usize, out: usize, out2: usize, c: i32, grad: i32, hinged: i32,
  alpha: f32, beta: f32, coef: f32, r0: i32, r1: i32,
): void {
  for (let r = r0; r < r1; r++) {
    const o = r * c;
    const m = rowMax(u, o, c);
    const z = sumExp(u, o, c, m);
    const lse = m + Mathf.log(z);
    let h: f32 = 0;
    for (let j = 0; j < c; j++) {
      const lp = load<f32>(at(u, o + j)) - lse;
      h -= Mathf.exp(lp) * lp;
    }
    let on = true;
    let pen = -coef * h;
    if (hinged != 0) {
      on = beta - h > 0;
      pen = coef * max<f32>(0, beta - h);
    }
    store<f32>(at(out2, r), pen);
    if (grad != 0 && on) {
      for (let j = 0; j < c; j++) {
        const lp = load<f32>(at(u, o + j)) - lse;
        const p = at(out, o + j);
        store<f32>(p, load<f32>(p) + alpha * Mathf.exp(lp) * (lp + h));
      }
    }
  }
}

/** softmax_hvp_main over rows [r0, r1): out[r, :] = p ⊙ t − p (p · t), p = softmax(u[r, :]), t = v[r, :]. */
export function jacobian_softmaxHvp(u: usize, v: usize, out: usize, c: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const o = r * c;
    const m = rowMax(u, o, c);
    const z = sumExp(u, o, c, m);
    let pt: f32 = 0;
    for (let j = 0; j < c; j++) {
      pt += Mathf.exp(load<f32>(at(u, o + j)) - m) / z * load<f32>(at(v, o + j));
    }
    for (let j = 0; j < c; j++) {
      const q = Mathf.exp(load<f32>(at(u, o + j)) - m) / z;
      store<f32>(at(out, o + j), q * (load<f32>(at(v, o + j)) - pt));
    }
  }
}

// det: the matrix and its inverse, NMAX × NMAX each, in the caller's scratch (2 KiB).
const NMAX: i32 = 16;

/** J[i, b, d] of the (c, n, s) Jacobian u. */
@inline function jat(u: usize, n: i32, s: i32, i: i32, b: i32, d: i32): f32 {
  return load<f32>(at(u, (i * n + b) * s + d));
}

/**
 * det_main over samples [b0, b1) of the (c, n, s) Jacobians u: out2[b] = R, out (c, n, s) =
 * alpha ∂R/∂J (square: (det J − 1)², else (sqrt(det G) − 1)² with G the smaller Gram matrix), by
 * Gauss–Jordan elimination with partial pivoting on `scratch` (2 · 16 · 16 f32, this thread's).
 */
export function jacobian_det(
  u: usize, out: usize, out2: usize, n: i32, c: i32, s: i32, alpha: f32,
  scratch: usize, b0: i32, b1: i32,
): void {
  const nn = min<i32>(c, s);
  const ga = scratch;
  const ge = scratch + <usize>(NMAX * NMAX * 4);
  for (let b = b0; b < b1; b++) {
    for (let i = 0; i < nn; i++) {
      for (let j = 0; j < nn; j++) {
        let g: f32 = 0;
        if (c == s) {
          g = jat(u, n, s, i, b, j);
        } else if (c < s) {
          for (let d = 0; d < s; d++) g += jat(u, n, s, i, b, d) * jat(u, n, s, j, b, d);
        } else {
          for (let k = 0; k < c; k++) g += jat(u, n, s, k, b, i) * jat(u, n, s, k, b, j);
        }
        store<f32>(at(ga, i * NMAX + j), g);
        store<f32>(at(ge, i * NMAX + j), i == j ? 1 : 0);
      }
    }
    let det: f32 = 1;
    for (let col = 0; col < nn; col++) {
      let piv = col;
      let best = Mathf.abs(load<f32>(at(ga, col * NMAX + col)));
      for (let r = col + 1; r < nn; r++) {
        const q = Mathf.abs(load<f32>(at(ga, r * NMAX + col)));
        if (q > best) {
          best = q;
          piv = r;
        }
      }
      if (piv != col) {
        det = -det;
        for (let j = 0; j < nn; j++) {
          const t1 = load<f32>(at(ga, col * NMAX + j));
          store<f32>(at(ga, col * NMAX + j), load<f32>(at(ga, piv * NMAX + j)));
          store<f32>(at(ga, piv * NMAX + j), t1);
          const t2 = load<f32>(at(ge, col * NMAX + j));
          store<f32>(at(ge, col * NMAX + j), load<f32>(at(ge, piv * NMAX + j)));
          store<f32>(at(ge, piv * NMAX + j), t2);
        }
      }
      const d0 = load<f32>(at(ga, col * NMAX + col));
      det *= d0;
      const inv = <f32>1 / d0;
      for (let j = 0; j < nn; j++) {
        store<f32>(at(ga, col * NMAX + j), load<f32>(at(ga, col * NMAX + j)) * inv);
        store<f32>(at(ge, col * NMAX + j), load<f32>(at(ge, col * NMAX + j)) * inv);
      }
      for (let r = 0; r < nn; r++) {
        const f = load<f32>(at(ga, r * NMAX + col));
        if (r != col && f != 0) {
          for (let j = 0; j < nn; j++) {
            store<f32>(
              at(ga, r * NMAX + j),
              load<f32>(at(ga, r * NMAX + j)) - f * load<f32>(at(ga, col * NMAX + j)),
            );
            store<f32>(
              at(ge, r * NMAX + j),
              load<f32>(at(ge, r * NMAX + j)) - f * load<f32>(at(ge, col * NMAX + j)),
            );
          }
        }
      }
    }
    let gcoef: f32;
    if (c == s) {
      store<f32>(at(out2, b), (det - 1) * (det - 1));
      gcoef = 2 * (det - 1) * det;
    } else {
      const vol = Mathf.sqrt(max<f32>(det, 0));
      store<f32>(at(out2, b), (vol - 1) * (vol - 1));
      gcoef = 2 * (vol - 1) * vol;
    }
    const k = alpha * gcoef;
    for (let i = 0; i < c; i++) {
      for (let d = 0; d < s; d++) {
        let g: f32 = 0;
        if (c == s) {
          g = load<f32>(at(ge, d * NMAX + i));
        } else if (c < s) {
          for (let j = 0; j < c; j++) g += load<f32>(at(ge, i * NMAX + j)) * jat(u, n, s, j, b, d);
        } else {
          for (let q = 0; q < s; q++) g += jat(u, n, s, i, b, q) * load<f32>(at(ge, q * NMAX + d));
        }
        store<f32>(at(out, (i * n + b) * s + d), k * g);
      }
    }
  }
}
