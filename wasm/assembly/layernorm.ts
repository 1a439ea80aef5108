// regula WebAssembly kernels: the twins of shaders/layernorm.wgsl (src/wasm/kernels/layernorm.ts
// calls them). Every export here becomes an export of the module (index.ts re-exports this file).
//
// Per-sample normalization over rows of M contiguous values (LayerNorm, GroupNorm); the math,
// the buffers and the derivation of the Jacobian-regularizer injection are in the WGSL file.
// Buffers (f32, byte offsets): x, u, v (rows, M); gamma, beta (affC,); stats (rows, 2) = mean,
// s = 1/sqrt(var + eps); sums (rows, 5) = S0..S4; out (rows, M) or (affC,). The affine index of
// element i is (i / affS) % affC.
//
// Threading: the row kernels (stats, rowSums) take a range of rows, the element kernels
// (forward, project, inject) a range of elements, affineGrad a range of affine indices; each
// output is computed by the same operations whatever the range, so any split across threads
// gives bitwise the same result. Reductions sum in four SIMD lanes, then ((l0 + l1) + (l2 + l3))
// (the WGSL's tree order differs: equal within float32 rounding, not bitwise).

import { at } from "./_common";
import { hsum } from "./_vmath";

/** γ (or 1) for four consecutive elements of a run: a vector of γ when `step` is 1, else a splat. */
@inline function gammaVec(g: usize, step: i32, k: i32): v128 {
  return step != 0 ? v128.load(at(g, k)) : f32x4.splat(load<f32>(g));
}

/**
 * The end of the run starting at element i (i < end): elements whose affine index is
 * contiguous (affS = 1) or constant (affS > 1), within [i, end).
 */
@inline function runEnd(i: i32, end: i32, affc: i32, affs: i32): i32 {
  if (affs == 1) return min<i32>(end, i + (affc - i % affc));
  return min<i32>(end, (i / affs + 1) * affs);
}

/**
 * stats_main over rows [r0, r1): stats[r] = (mean, 1 / sqrt(var + eps)), the biased variance
 * taken around the mean in a second pass.
 */
export function layernorm_stats(x: usize, stats: usize, m: i32, eps: f32, r0: i32, r1: i32): void {
  const mf = <f32>m;
  for (let r = r0; r < r1; r++) {
    const row = at(x, r * m);
    let acc = f32x4.splat(0);
    let j = 0;
    for (; j + 4 <= m; j += 4) acc = f32x4.add(acc, v128.load(at(row, j)));
    let s = hsum(acc);
    for (; j < m; j++) s += load<f32>(at(row, j));
    const mean = s / mf;
    const mv = f32x4.splat(mean);
    acc = f32x4.splat(0);
    j = 0;
    for (; j + 4 <= m; j += 4) {
      const d = f32x4.sub(v128.load(at(row, j)), mv);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    let q = hsum(acc);
    for (; j < m; j++) {
      const d = load<f32>(at(row, j)) - mean;
      q += d * d;
    }
    store<f32>(at(stats, 2 * r), mean);
    store<f32>(at(stats, 2 * r + 1), <f32>1 / Mathf.sqrt(q / mf + eps));
  }
}

/** forward_main over elements [e0, e1): out = x̂, or x̂ γ + β when `affine`. */
export function layernorm_forward(
  x: usize, gamma: usize, beta: usize, stats: usize, out: usize,
  m: i32, affc: i32, affs: i32, affine: i32, e0: i32, e1: i32,
): void {
  let i = e0;
  while (i < e1) {
    const row = i / m;
    const rowEnd = min<i32>(e1, (row + 1) * m);
    const mean = load<f32>(at(stats, 2 * row));
    const s = load<f32>(at(stats, 2 * row + 1));
    const mv = f32x4.splat(mean);
    const sv = f32x4.splat(s);
    while (i < rowEnd) {
      const end = affine != 0 ? runEnd(i, rowEnd, affc, affs) : rowEnd;
      const a = (i / affs) % affc;
      const step = affs == 1 ? 1 : 0;
      const g = at(gamma, a);
      const b = at(beta, a);
      const n = end - i;
      const xp = at(x, i);
      const op = at(out, i);
      let k = 0;
      if (affine != 0) {
        for (; k + 4 <= n; k += 4) {
          const xh = f32x4.mul(f32x4.sub(v128.load(at(xp, k)), mv), sv);
          const y = f32x4.add(f32x4.mul(xh, gammaVec(g, step, k)), gammaVec(b, step, k));
          v128.store(at(op, k), y);
        }
        for (; k < n; k++) {
          const xh = (load<f32>(at(xp, k)) - mean) * s;
          store<f32>(at(op, k), xh * load<f32>(at(g, k * step)) + load<f32>(at(b, k * step)));
        }
      } else {
        for (; k + 4 <= n; k += 4) {
          v128.store(at(op, k), f32x4.mul(f32x4.sub(v128.load(at(xp, k)), mv), sv));
        }
        for (; k < n; k++) store<f32>(at(op, k), (load<f32>(at(xp, k)) - mean) * s);
      }
      i = end;
    }
  }
}

/**
 * row_sums_main over rows [r0, r1): sums[r] = (Σ ũ, Σ x̂ ũ, Σ v, Σ x̂ v, Σ ũ v) with ũ = γ ⊙ u
 * when `gammaU`, else u; the last three only when `two` (else 0).
 */
export function layernorm_rowSums(
  x: usize, u: usize, v: usize, gamma: usize, stats: usize, sums: usize,
  m: i32, affc: i32, affs: i32, gammaU: i32, two: i32, r0: i32, r1: i32,
): void {
  const step = affs == 1 ? 1 : 0;
  for (let r = r0; r < r1; r++) {
    const mean = load<f32>(at(stats, 2 * r));
    const s = load<f32>(at(stats, 2 * r + 1));
    const mv = f32x4.splat(mean);
    const sv = f32x4.splat(s);
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0), a4 = f32x4.splat(0);
    let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0, t4: f32 = 0;
    let i = r * m;
    const rowEnd = i + m;
    while (i < rowEnd) {
      const end = gammaU != 0 ? runEnd(i, rowEnd, affc, affs) : rowEnd;
      const g = at(gamma, (i / affs) % affc);
      const n = end - i;
      const xp = at(x, i);
      const up = at(u, i);
      const vp = at(v, i);
      let k = 0;
      for (; k + 4 <= n; k += 4) {
        const xh = f32x4.mul(f32x4.sub(v128.load(at(xp, k)), mv), sv);
        let uu = v128.load(at(up, k));
        if (gammaU != 0) uu = f32x4.mul(uu, gammaVec(g, step, k));
        a0 = f32x4.add(a0, uu);
        a1 = f32x4.add(a1, f32x4.mul(xh, uu));
        if (two != 0) {
          const vv = v128.load(at(vp, k));
          a2 = f32x4.add(a2, vv);
          a3 = f32x4.add(a3, f32x4.mul(xh, vv));
          a4 = f32x4.add(a4, f32x4.mul(uu, vv));
        }
      }
      for (; k < n; k++) {
        const xh = (load<f32>(at(xp, k)) - mean) * s;
        let uu = load<f32>(at(up, k));
        if (gammaU != 0) uu *= load<f32>(at(g, k * step));
        t0 += uu;
        t1 += xh * uu;
        if (two != 0) {
          const vv = load<f32>(at(vp, k));
          t2 += vv;
          t3 += xh * vv;
          t4 += uu * vv;
        }
      }
      i = end;
    }
    const o = at(sums, 5 * r);
    store<f32>(o, hsum(a0) + t0);
    store<f32>(o, hsum(a1) + t1, 4);
    store<f32>(o, hsum(a2) + t2, 8);
    store<f32>(o, hsum(a3) + t3, 12);
    store<f32>(o, hsum(a4) + t4, 16);
  }
}

/**
 * project_main over elements [e0, e1): out = s (ũ − S0/M − x̂ S1/M), times γ when `gammaOut`
 * (S0, S1 from rowSums with the same `gammaU`).
 */
export function layernorm_project(
  x: usize, u: usize, gamma: usize, stats: usize, sums: usize, out: usize,
  m: i32, affc: i32, affs: i32, gammaU: i32, gammaOut: i32, e0: i32, e1: i32,
): void {
  const mf = <f32>m;
  const mfv = f32x4.splat(mf);
  const step = affs == 1 ? 1 : 0;
  const useGamma = gammaU != 0 || gammaOut != 0;
  let i = e0;
  while (i < e1) {
    const row = i / m;
    const rowEnd = min<i32>(e1, (row + 1) * m);
    const mean = load<f32>(at(stats, 2 * row));
    const s = load<f32>(at(stats, 2 * row + 1));
    const c0 = load<f32>(at(sums, 5 * row)) / mf;
    const s1 = load<f32>(at(sums, 5 * row + 1));
    const mv = f32x4.splat(mean), sv = f32x4.splat(s), c0v = f32x4.splat(c0);
    const s1v = f32x4.splat(s1);
    while (i < rowEnd) {
      const end = useGamma ? runEnd(i, rowEnd, affc, affs) : rowEnd;
      const g = at(gamma, (i / affs) % affc);
      const n = end - i;
      const xp = at(x, i), up = at(u, i), op = at(out, i);
      let k = 0;
      for (; k + 4 <= n; k += 4) {
        const xh = f32x4.mul(f32x4.sub(v128.load(at(xp, k)), mv), sv);
        let uu = v128.load(at(up, k));
        if (gammaU != 0) uu = f32x4.mul(uu, gammaVec(g, step, k));
        let r = f32x4.mul(sv, f32x4.sub(f32x4.sub(uu, c0v), f32x4.div(f32x4.mul(xh, s1v), mfv)));
        if (gammaOut != 0) r = f32x4.mul(r, gammaVec(g, step, k));
        v128.store(at(op, k), r);
      }
      for (; k < n; k++) {
        const xh = (load<f32>(at(xp, k)) - mean) * s;
        let uu = load<f32>(at(up, k));
        if (gammaU != 0) uu *= load<f32>(at(g, k * step));
        let r = s * (uu - c0 - xh * s1 / mf);
        if (gammaOut != 0) r *= load<f32>(at(g, k * step));
        store<f32>(at(op, k), r);
      }
      i = end;
    }
  }
}

/**
 * inject_main over elements [e0, e1): out = −(s/M)(f x̂ + S3 P g + S1 P r) with
 * P g = s (ũ − S0/M − x̂ S1/M), P r = s (v − S2/M − x̂ S3/M), f = s (S4 − S0 S2/M − S1 S3/M)
 * (sums from rowSums with `two`).
 */
export function layernorm_inject(
  x: usize, u: usize, v: usize, gamma: usize, stats: usize, sums: usize, out: usize,
  m: i32, affc: i32, affs: i32, gammaU: i32, e0: i32, e1: i32,
): void {
  const mf = <f32>m;
  const mfv = f32x4.splat(mf);
  const step = affs == 1 ? 1 : 0;
  let i = e0;
  while (i < e1) {
    const row = i / m;
    const rowEnd = min<i32>(e1, (row + 1) * m);
    const mean = load<f32>(at(stats, 2 * row));
    const s = load<f32>(at(stats, 2 * row + 1));
    const sp = at(sums, 5 * row);
    const s0 = load<f32>(sp), s1 = load<f32>(sp, 4), s2 = load<f32>(sp, 8);
    const s3 = load<f32>(sp, 12), s4 = load<f32>(sp, 16);
    const c0 = s0 / mf, c2 = s2 / mf;
    const f = s * (s4 - s0 * s2 / mf - s1 * s3 / mf);
    const ks = -(s / mf);
    const mv = f32x4.splat(mean), sv = f32x4.splat(s), c0v = f32x4.splat(c0);
    const c2v = f32x4.splat(c2), s1v = f32x4.splat(s1), s3v = f32x4.splat(s3);
    const fv = f32x4.splat(f), ksv = f32x4.splat(ks);
    while (i < rowEnd) {
      const end = gammaU != 0 ? runEnd(i, rowEnd, affc, affs) : rowEnd;
      const g = at(gamma, (i / affs) % affc);
      const n = end - i;
      const xp = at(x, i), up = at(u, i), vp = at(v, i), op = at(out, i);
      let k = 0;
      for (; k + 4 <= n; k += 4) {
        const xh = f32x4.mul(f32x4.sub(v128.load(at(xp, k)), mv), sv);
        let uu = v128.load(at(up, k));
        if (gammaU != 0) uu = f32x4.mul(uu, gammaVec(g, step, k));
        const pg = f32x4.mul(sv, f32x4.sub(f32x4.sub(uu, c0v), f32x4.div(f32x4.mul(xh, s1v), mfv)));
        const pr = f32x4.mul(
          sv,
          f32x4.sub(f32x4.sub(v128.load(at(vp, k)), c2v), f32x4.div(f32x4.mul(xh, s3v), mfv)),
        );
        const t = f32x4.add(f32x4.add(f32x4.mul(fv, xh), f32x4.mul(s3v, pg)), f32x4.mul(s1v, pr));
        v128.store(at(op, k), f32x4.mul(ksv, t));
      }
      for (; k < n; k++) {
        const xh = (load<f32>(at(xp, k)) - mean) * s;
        let uu = load<f32>(at(up, k));
        if (gammaU != 0) uu *= load<f32>(at(g, k * step));
        const pg = s * (uu - c0 - xh * s1 / mf);
        const pr = s * (load<f32>(at(vp, k)) - c2 - xh * s3 / mf);
        store<f32>(at(op, k), ks * (f * xh + s3 * pg + s1 * pr));
      }
      i = end;
    }
  }
}

/** The weights w(i..i+3) of affineGrad: mode 0 x̂, 1 one, 2 (P v)(i) (v read only then). */
@inline function weightOf(
  mode: i32, x: usize, v: usize, i: i32, mv: v128, sv: v128, c2v: v128, s3v: v128, mfv: v128,
): v128 {
  if (mode == 1) return f32x4.splat(1);
  const xh = f32x4.mul(f32x4.sub(v128.load(at(x, i)), mv), sv);
  if (mode == 0) return xh;
  return f32x4.mul(sv, f32x4.sub(f32x4.sub(v128.load(at(v, i)), c2v), f32x4.div(f32x4.mul(xh, s3v), mfv)));
}

/** One lane of {@link weightOf}. */
@inline function weightOf1(
  mode: i32, x: usize, v: usize, i: i32, mean: f32, s: f32, c2: f32, s3: f32, mf: f32,
): f32 {
  if (mode == 1) return 1;
  const xh = (load<f32>(at(x, i)) - mean) * s;
  if (mode == 0) return xh;
  return s * (load<f32>(at(v, i)) - c2 - xh * s3 / mf);
}

/**
 * affine_grad_main over affine indices [a0, a1): out[a] += Σ_{aff(i) = a} u[i] w(i), w by
 * `mode` (0: x̂, dγ; 1: 1, dβ; 2: P v with S2, S3 of v from rowSums, the JR term), summed over
 * the elements in increasing i.
 */
export function layernorm_affineGrad(
  x: usize, u: usize, v: usize, stats: usize, sums: usize, out: usize,
  rows: i32, m: i32, affc: i32, affs: i32, mode: i32, a0: i32, a1: i32,
): void {
  const reps = (rows * m) / (affc * affs);
  const mf = <f32>m;
  const mfv = f32x4.splat(mf);
  let a = a0;
  // LayerNorm (affS = 1, affC = M): four consecutive affine indices share their row.
  if (affs == 1 && affc == m) {
    for (; a + 4 <= a1; a += 4) {
      let acc = f32x4.splat(0);
      for (let r = 0; r < reps; r++) {
        const i = r * m + a;
        const mv = f32x4.splat(load<f32>(at(stats, 2 * r)));
        const sv = f32x4.splat(load<f32>(at(stats, 2 * r + 1)));
        const c2v = f32x4.splat(load<f32>(at(sums, 5 * r + 2)) / mf);
        const s3v = f32x4.splat(load<f32>(at(sums, 5 * r + 3)));
        const w = weightOf(mode, x, v, i, mv, sv, c2v, s3v, mfv);
        acc = f32x4.add(acc, f32x4.mul(v128.load(at(u, i)), w));
      }
      v128.store(at(out, a), f32x4.add(v128.load(at(out, a)), acc));
    }
  }
  if (affs == 1) {
    // One element per (rep, a): the same operations as one lane above.
    for (; a < a1; a++) {
      let acc: f32 = 0;
      for (let r = 0; r < reps; r++) {
        const i = r * affc + a;
        const row = i / m;
        const w = weightOf1(
          mode, x, v, i, load<f32>(at(stats, 2 * row)), load<f32>(at(stats, 2 * row + 1)),
          load<f32>(at(sums, 5 * row + 2)) / mf, load<f32>(at(sums, 5 * row + 3)), mf,
        );
        acc += load<f32>(at(u, i)) * w;
      }
      store<f32>(at(out, a), load<f32>(at(out, a)) + acc);
    }
    return;
  }
  // GroupNorm (affS > 1): runs of affS elements of one channel, each within one row.
  for (; a < a1; a++) {
    let acc = f32x4.splat(0);
    let t: f32 = 0;
    for (let r = 0; r < reps; r++) {
      const i0 = (r * affc + a) * affs;
      const row = i0 / m;
      const mean = load<f32>(at(stats, 2 * row));
      const s = load<f32>(at(stats, 2 * row + 1));
      const c2 = load<f32>(at(sums, 5 * row + 2)) / mf;
      const s3 = load<f32>(at(sums, 5 * row + 3));
      const mv = f32x4.splat(mean), sv = f32x4.splat(s), c2v = f32x4.splat(c2);
      const s3v = f32x4.splat(s3);
      let q = 0;
      for (; q + 4 <= affs; q += 4) {
        const i = i0 + q;
        const w = weightOf(mode, x, v, i, mv, sv, c2v, s3v, mfv);
        acc = f32x4.add(acc, f32x4.mul(v128.load(at(u, i)), w));
      }
      for (; q < affs; q++) {
        const i = i0 + q;
        t += load<f32>(at(u, i)) * weightOf1(mode, x, v, i, mean, s, c2, s3, mf);
      }
    }
    store<f32>(at(out, a), load<f32>(at(out, a)) + (hsum(acc) + t));
  }
}
