// Small kernels of the function-space regularizers (src/regularizers/jacobian.ts, determinant.ts,
// confidence.ts, gradient_norm.ts). All entry points share one binding layout: three read-only
// inputs u, v, w (an entry point binds any buffer in the ones it does not use) and two read_write
// outputs out, out2 (distinct buffers: WebGPU rejects aliased writable bindings).
//
// normalize_rows_main, one invocation per row r < n (rows of length c):
//   out[r, :] = out[r, :] / ||out[r, :]||  — a Gaussian vector divided by its norm is uniform on
//   the unit sphere (Muller 1959), the projections of Hoffman, Roberts & Yaida 2019, sec. 2.
// one_hot_main, one invocation per element i < n: out[i] = (i % c == s) ? 1 : 0.
// confidence_main (Pereyra et al. 2017, "Regularizing neural networks by penalizing confident
//   output distributions"), one invocation per row r < n of the (n, c) logits u:
//   log p = u - logsumexp(u), H = -Σ p log p;
//   penalty (len = 0): R = -β H; hinged (len = 1): R = β max(0, Γ - H); β = coef, Γ = beta;
//   ∂H/∂z_j = -p_j (log p_j + H), so where the penalty is active ∂R/∂z_j = β p_j (log p_j + H);
//   out2[r] = R; with s = 1 also out[r, :] += (alpha / β) · ∂R/∂z (alpha = β / B for a mean).
// softmax_hvp_main (the softmax Hessian of the input-gradient norm), one invocation per row r:
//   p = softmax(u[r, :]), t = v[r, :]: out[r, :] = p ⊙ t - p (p · t)   ( = ∂(p - y)/∂z · t ).
// det_main (Jacobian-determinant penalty), one workgroup of 256 per sample b < n (the Gram
//   entries and the outputs split over the invocations, the N³ elimination on invocation 0, in
//   workgroup memory); J is (c, n, s)
//   (class rows first: row i of sample b is J[i, b, :], s = input size), N = min(c, s) ≤ 16:
//   square (c = s):  R = (det J - 1)²,           ∂R/∂J = 2 (det J - 1) det J · J⁻ᵀ;
//   c < s:  G = J Jᵀ (c×c), vol = sqrt(det G),   ∂R/∂J = 2 (vol - 1) vol · G⁻¹ J;
//   c > s:  G = Jᵀ J (s×s), vol = sqrt(det G),   ∂R/∂J = 2 (vol - 1) vol · J G⁻¹
//   (d log det G = tr(G⁻¹ dG); Magnus & Neudecker, "Matrix differential calculus", ch. 8).
//   out = alpha · ∂R/∂J (c, n, s), out2[b] = R. Determinant and inverse by Gauss–Jordan
//   elimination with partial pivoting; a singular J gives inf/NaN (the
//   gradient of sqrt(det) really is unbounded there).
// Threading for the per-element and per-row ones: item = (wid.y · nwg.x + wid.x) · 64 + lid.x.
// NOTE: det_main once ran one sample per invocation with the matrices in function memory; on
// llvmpipe that gave wrong determinants for 10 x 784 Jacobians (right ones for D ≤ 100; cause
// not pinned down). tests/determinant_test.ts checks LeNet's 10 x 784 case against PyTorch.

struct Params { n: u32, c: u32, s: u32, len: u32, alpha: f32, beta: f32, coef: f32 }

@group(0) @binding(0) var<storage, read> u: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> out2: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const NMAX: u32 = 16u;

fn item(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 {
  return (wid.y * nwg.x + wid.x) * 64u + lid.x;
}

@compute @workgroup_size(64)
fn normalize_rows_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                       @builtin(local_invocation_id) lid: vec3u) {
  let r = item(wid, nwg, lid);
  if (r >= p.n) { return; }
  var ss = 0.0;
  for (var j = 0u; j < p.c; j++) { let a = out[r * p.c + j]; ss += a * a; }
  let inv = 1.0 / sqrt(ss);
  for (var j = 0u; j < p.c; j++) { out[r * p.c + j] *= inv; }
}

@compute @workgroup_size(64)
fn one_hot_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                @builtin(local_invocation_id) lid: vec3u) {
  let i = item(wid, nwg, lid);
  if (i >= p.n) { return; }
  out[i] = select(0.0, 1.0, i % p.c == p.s);
}

@compute @workgroup_size(64)
fn confidence_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                   @builtin(local_invocation_id) lid: vec3u) {
  let r = item(wid, nwg, lid);
  if (r >= p.n) { return; }
  let o = r * p.c;
  var m = u[o];
  for (var j = 1u; j < p.c; j++) { m = max(m, u[o + j]); }
  var z = 0.0;
  for (var j = 0u; j < p.c; j++) { z += exp(u[o + j] - m); }
  let lse = m + log(z);
  var h = 0.0;
  for (var j = 0u; j < p.c; j++) {
    let lp = u[o + j] - lse;
    h -= exp(lp) * lp;
  }
  var on = true;
  var pen = -p.coef * h;
  if (p.len == 1u) {
    on = p.beta - h > 0.0;
    pen = p.coef * max(0.0, p.beta - h);
  }
  out2[r] = pen;
  if (p.s == 1u && on) {
    for (var j = 0u; j < p.c; j++) {
      let lp = u[o + j] - lse;
      out[o + j] += p.alpha * exp(lp) * (lp + h);
    }
  }
}

@compute @workgroup_size(64)
fn softmax_hvp_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
                    @builtin(local_invocation_id) lid: vec3u) {
  let r = item(wid, nwg, lid);
  if (r >= p.n) { return; }
  let o = r * p.c;
  var m = u[o];
  for (var j = 1u; j < p.c; j++) { m = max(m, u[o + j]); }
  var z = 0.0;
  for (var j = 0u; j < p.c; j++) { z += exp(u[o + j] - m); }
  var pt = 0.0;
  for (var j = 0u; j < p.c; j++) { pt += exp(u[o + j] - m) / z * v[o + j]; }
  for (var j = 0u; j < p.c; j++) {
    let q = exp(u[o + j] - m) / z;
    out[o + j] = q * (v[o + j] - pt);
  }
}

// J[i, b, d] of sample b (i < c, d < s).
fn jat(i: u32, b: u32, d: u32) -> f32 {
  return u[(i * p.n + b) * p.s + d];
}

// det_main: the matrix (J itself when square, else the small Gram) and its inverse, built in place.
var<workgroup> ga: array<f32, 256>;
var<workgroup> ge: array<f32, 256>;
var<workgroup> gcoef: f32;

@compute @workgroup_size(256)
fn det_main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
            @builtin(local_invocation_id) lid: vec3u) {
  // One workgroup per sample (uniform exit: every invocation of a group shares b).
  let b = wid.y * nwg.x + wid.x;
  if (b >= p.n) { return; }
  let c = p.c;
  let s = p.s;
  let nn = min(c, s);
  for (var t = lid.x; t < nn * nn; t += 256u) {
    let i = t / nn;
    let j = t % nn;
    var g = 0.0;
    if (c == s) {
      g = jat(i, b, j);
    } else if (c < s) {
      for (var d = 0u; d < s; d++) { g += jat(i, b, d) * jat(j, b, d); }
    } else {
      for (var k = 0u; k < c; k++) { g += jat(k, b, i) * jat(k, b, j); }
    }
    ga[i * NMAX + j] = g;
    ge[i * NMAX + j] = select(0.0, 1.0, i == j);
  }
  workgroupBarrier();
  if (lid.x == 0u) {
    var det = 1.0;
    for (var col = 0u; col < nn; col++) {
      var piv = col;
      var best = abs(ga[col * NMAX + col]);
      for (var r = col + 1u; r < nn; r++) {
        let q = abs(ga[r * NMAX + col]);
        if (q > best) { best = q; piv = r; }
      }
      if (piv != col) {
        det = -det;
        for (var j = 0u; j < nn; j++) {
          let t1 = ga[col * NMAX + j];
          ga[col * NMAX + j] = ga[piv * NMAX + j];
          ga[piv * NMAX + j] = t1;
          let t2 = ge[col * NMAX + j];
          ge[col * NMAX + j] = ge[piv * NMAX + j];
          ge[piv * NMAX + j] = t2;
        }
      }
      let d0 = ga[col * NMAX + col];
      det *= d0;
      let inv = 1.0 / d0;
      for (var j = 0u; j < nn; j++) {
        ga[col * NMAX + j] *= inv;
        ge[col * NMAX + j] *= inv;
      }
      for (var r = 0u; r < nn; r++) {
        let f = ga[r * NMAX + col];
        if (r != col && f != 0.0) {
          for (var j = 0u; j < nn; j++) {
            ga[r * NMAX + j] -= f * ga[col * NMAX + j];
            ge[r * NMAX + j] -= f * ge[col * NMAX + j];
          }
        }
      }
    }
    if (c == s) {
      out2[b] = (det - 1.0) * (det - 1.0);
      gcoef = 2.0 * (det - 1.0) * det;
    } else {
      let vol = sqrt(max(det, 0.0));
      out2[b] = (vol - 1.0) * (vol - 1.0);
      gcoef = 2.0 * (vol - 1.0) * vol;
    }
  }
  workgroupBarrier();
  let k = p.alpha * gcoef;
  for (var t = lid.x; t < c * s; t += 256u) {
    let i = t / s;
    let d = t % s;
    var g = 0.0;
    if (c == s) {
      g = ge[d * NMAX + i]; // (J⁻ᵀ)[i, d]
    } else if (c < s) {
      for (var j = 0u; j < c; j++) { g += ge[i * NMAX + j] * jat(j, b, d); } // (G⁻¹ J)[i, d]
    } else {
      for (var q = 0u; q < s; q++) { g += jat(i, b, q) * ge[q * NMAX + d]; } // (J G⁻¹)[i, d]
    }
    out[(i * p.n + b) * s + d] = k * g;
  }
}
