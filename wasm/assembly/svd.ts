// regula WebAssembly kernels: the twins of shaders/svd.wgsl (src/wasm/kernels/svd.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
//
// One-sided Jacobi SVD (Hestenes 1958) of the (p, len) work matrix with the rotations
// accumulated in rot (p, p); the math, the round-robin pair order of Brent & Luk 1985 and the
// flags protocol are in the WGSL file, whose pairing and formulas these kernels reproduce
// exactly. flags (4,) u32: [0] converged, [1] rotated this sweep, [2] sweeps run.
//
// Threading: rotate takes a range of the pairs of one round (disjoint rows), finish and sortRows
// a range of rows, transpose a range of output rows; each item is computed by the same
// operations whatever the range, so any split across threads gives bitwise the same result.
// The three dot products of a pair sum in four SIMD lanes, then ((l0 + l1) + (l2 + l3)) (the
// WGSL's tree order differs: equal within float32 rounding, so a pair at the skip threshold may
// be rotated on one backend and not on the other; the singular values still agree to rounding).

import { at, sumSquares } from "./_common";
import { hsum } from "./_vmath";

/** transpose_main over rows [j0, j1) of work (n, m) = srcᵀ, src (m, n). */
export function svd_transpose(src: usize, work: usize, m: i32, n: i32, j0: i32, j1: i32): void {
  // Eight output rows at a time: each source row contributes 32 contiguous bytes.
  let j = j0;
  for (; j + 8 <= j1; j += 8) {
    for (let i = 0; i < m; i++) {
      const s = at(src, i * n + j);
      for (let t = 0; t < 8; t++) store<f32>(at(work, (j + t) * m + i), load<f32>(at(s, t)));
    }
  }
  for (; j < j1; j++) {
    for (let i = 0; i < m; i++) store<f32>(at(work, j * m + i), load<f32>(at(src, i * n + j)));
  }
}

/** init_main: rot (p, p) = I; flags = [p ≤ 1, 0, 0, 0]. */
export function svd_init(rot: usize, flags: usize, p: i32): void {
  store<u32>(flags, p <= 1 ? 1 : 0);
  store<u32>(flags, 0, 4);
  store<u32>(flags, 0, 8);
  store<u32>(flags, 0, 12);
  for (let e = 0; e < p * p; e++) store<f32>(at(rot, e), e % (p + 1) == 0 ? 1 : 0);
}

/** c x − s y into x and s x + c y into y, over n values. */
@inline function rotateRows(x: usize, y: usize, n: i32, c: f32, s: f32): void {
  const cv = f32x4.splat(c), sv = f32x4.splat(s);
  let t = 0;
  for (; t + 4 <= n; t += 4) {
    const a = v128.load(at(x, t));
    const b = v128.load(at(y, t));
    v128.store(at(x, t), f32x4.sub(f32x4.mul(cv, a), f32x4.mul(sv, b)));
    v128.store(at(y, t), f32x4.add(f32x4.mul(sv, a), f32x4.mul(cv, b)));
  }
  for (; t < n; t++) {
    const a = load<f32>(at(x, t));
    const b = load<f32>(at(y, t));
    store<f32>(at(x, t), c * a - s * b);
    store<f32>(at(y, t), s * a + c * b);
  }
}

/**
 * rotate_main over pairs [k0, k1) of round `round` (pair 0 is (round, pe − 1), pair k > 0 is
 * ((round + k) mod (pe − 1), (round − k) mod (pe − 1))): nothing when flags[0] is set; a pair
 * with a phantom index (≥ p) or |γ| ≤ tol sqrt(αβ) is skipped; else the Schur rotation of rows
 * i, j of work (p, len) and rot (p, p), and flags[1] = 1.
 */
export function svd_rotate(
  work: usize, rot: usize, flags: usize, p: i32, pe: i32, len: i32, round: i32, tol: f32,
  k0: i32, k1: i32,
): void {
  if (load<u32>(flags) != 0) return;
  const h = pe - 1;
  for (let k = k0; k < k1; k++) {
    let i = round;
    let j = h;
    if (k > 0) {
      i = (round + k) % h;
      j = (round + h - k) % h;
    }
    if (i >= p || j >= p) continue;
    const x = at(work, i * len);
    const y = at(work, j * len);
    let va = f32x4.splat(0), vb = f32x4.splat(0), vg = f32x4.splat(0);
    let t = 0;
    for (; t + 4 <= len; t += 4) {
      const a = v128.load(at(x, t));
      const b = v128.load(at(y, t));
      va = f32x4.add(va, f32x4.mul(a, a));
      vb = f32x4.add(vb, f32x4.mul(b, b));
      vg = f32x4.add(vg, f32x4.mul(a, b));
    }
    let al = hsum(va), be = hsum(vb), ga = hsum(vg);
    for (; t < len; t++) {
      const a = load<f32>(at(x, t));
      const b = load<f32>(at(y, t));
      al += a * a;
      be += b * b;
      ga += a * b;
    }
    if (!(Mathf.abs(ga) > tol * Mathf.sqrt(al * be))) continue;
    const zeta = (be - al) / (<f32>2 * ga);
    const tn = (zeta >= 0 ? <f32>1 : <f32>-1) / (Mathf.abs(zeta) + Mathf.sqrt(<f32>1 + zeta * zeta));
    const c = <f32>1 / Mathf.sqrt(<f32>1 + tn * tn);
    const s = c * tn;
    rotateRows(x, y, len, c, s);
    rotateRows(at(rot, i * p), at(rot, j * p), p, c, s);
    store<u32>(flags, 1, 4);
  }
}

/** sweep_end_main: unless converged, flags[2] += 1, converged when nothing rotated, flags[1] = 0. */
export function svd_sweepEnd(flags: usize): void {
  if (load<u32>(flags) != 0) return;
  store<u32>(flags, load<u32>(flags, 8) + 1, 8);
  if (load<u32>(flags, 4) == 0) store<u32>(flags, 1);
  store<u32>(flags, 0, 4);
}

/**
 * finish_main over rows [k0, k1): σ = ||a_k|| / ||r_k|| into sout[k]; mode 0: a_k ← a_k / ||a_k||
 * (0 stays 0), r_k ← r_k / ||r_k||; mode 1: a_k ← (clamp(σ, lo, hi) / σ − 1) / ||r_k||² · a_k.
 */
export function svd_finish(
  work: usize, rot: usize, sout: usize, p: i32, len: i32, mode: i32, lo: f32, hi: f32,
  k0: i32, k1: i32,
): void {
  for (let k = k0; k < k1; k++) {
    const a = at(work, k * len);
    const r = at(rot, k * p);
    const an = Mathf.sqrt(sumSquares(a, len));
    const rn = Mathf.sqrt(sumSquares(r, p));
    const sigma = an / rn;
    store<f32>(at(sout, k), sigma);
    let f: f32 = 0;
    if (an > 0) {
      if (mode == 0) {
        f = <f32>1 / an;
      } else {
        f = (min<f32>(max<f32>(sigma, lo), hi) / sigma - 1) / (rn * rn);
      }
    }
    const fv = f32x4.splat(f);
    let t = 0;
    for (; t + 4 <= len; t += 4) v128.store(at(a, t), f32x4.mul(v128.load(at(a, t)), fv));
    for (; t < len; t++) store<f32>(at(a, t), load<f32>(at(a, t)) * f);
    if (mode == 0) {
      const rv = f32x4.splat(rn);
      t = 0;
      for (; t + 4 <= p; t += 4) v128.store(at(r, t), f32x4.div(v128.load(at(r, t)), rv));
      for (; t < p; t++) store<f32>(at(r, t), load<f32>(at(r, t)) / rn);
    }
  }
}

/**
 * sort_rows_main over rows [k0, k1) of src (p, len): row k goes to row rank(k) of dst, rank(k) =
 * #{j : sv[j] > sv[k] or (sv[j] = sv[k] and j < k)} (descending, stable).
 */
export function svd_sortRows(
  src: usize, sv: usize, dst: usize, p: i32, len: i32, k0: i32, k1: i32,
): void {
  for (let k = k0; k < k1; k++) {
    const sk = load<f32>(at(sv, k));
    let rank = 0;
    for (let j = 0; j < p; j++) {
      const sj = load<f32>(at(sv, j));
      if (sj > sk || (sj == sk && j < k)) rank++;
    }
    memory.copy(at(dst, rank * len), at(src, k * len), <usize>len << 2);
  }
}
