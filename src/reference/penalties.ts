/**
 * Float64 CPU references of the parameter penalties (src/regularizers/penalties.ts) and
 * projections (src/regularizers/projections.ts), one weight tensor at a time: plain loops over
 * the same formulas.
 *
 * @module
 */

/** Value and gradient of a penalty on one tensor. */
export interface PenaltyRef {
  value: number;
  grad: Float64Array;
}

/** `λ1 Σ|w| + (λ2/2) Σ w²`, gradient `λ1 sign(w) + λ2 w` (sign(0) = 0). */
export function elasticNetRef(w: ArrayLike<number>, l1: number, l2: number): PenaltyRef {
  let value = 0;
  const grad = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const x = w[i];
    value += l1 * Math.abs(x) + 0.5 * l2 * x * x;
    grad[i] = l1 * Math.sign(x) + l2 * x;
  }
  return { value, grad };
}

/**
 * `λ ||G − I||_F²` with G the smaller Gram matrix of the (m, k) matrix W, gradient
 * `4λ (W Wᵀ − I) W` (m ≤ k) or `4λ W (Wᵀ W − I)` (m > k).
 */
export function softSvbRef(w: ArrayLike<number>, m: number, k: number, lambda: number): PenaltyRef {
  const n = Math.min(m, k);
  const at = m <= k
    ? (i: number, j: number) => w[i * k + j]
    : (i: number, j: number) => w[j * k + i];
  const len = Math.max(m, k);
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < len; t++) s += at(i, t) * at(j, t);
      g[i * n + j] = s - (i === j ? 1 : 0);
    }
  }
  let value = 0;
  for (const e of g) value += e * e;
  value *= lambda;
  const grad = new Float64Array(m * k);
  // Rows a_i (length len) of the "short side" matrix A: ∂/∂A = 4λ (A Aᵀ − I) A.
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < len; t++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += g[i * n + j] * at(j, t);
      const idx = m <= k ? i * k + t : t * k + i;
      grad[idx] = 4 * lambda * s;
    }
  }
  return { value, grad };
}

/**
 * Power iteration on the (m, k) matrix W from u0, `iters` times:
 * `v = Wᵀu/||Wᵀu||, u = Wv/||Wv||, σ = ||Wv||`; value `(λ/2) σ²`, gradient `λ σ u vᵀ`.
 */
export function spectralRef(
  w: ArrayLike<number>,
  m: number,
  k: number,
  u0: ArrayLike<number>,
  lambda: number,
  iters: number,
): PenaltyRef & { sigma: number; u: Float64Array; v: Float64Array } {
  let u = Float64Array.from(u0);
  let v = new Float64Array(k);
  let sigma = 0;
  for (let it = 0; it < iters; it++) {
    v = new Float64Array(k);
    for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) v[j] += w[i * k + j] * u[i];
    const nv = norm(v);
    for (let j = 0; j < k; j++) v[j] /= nv;
    const t = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += w[i * k + j] * v[j];
      t[i] = s;
    }
    sigma = norm(t);
    u = t.map((x) => x / sigma);
  }
  const grad = new Float64Array(m * k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) grad[i * k + j] = lambda * sigma * u[i] * v[j];
  }
  return { value: 0.5 * lambda * sigma * sigma, grad, sigma, u, v };
}

/** Rows of the (m, k) W scaled to norm ≤ c: `w_i · c / (||w_i|| + 1e-7)` where `||w_i|| > c`. */
export function maxNormRef(w: ArrayLike<number>, m: number, k: number, c: number): Float64Array {
  const out = Float64Array.from(w);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += w[i * k + j] ** 2;
    const r = Math.sqrt(s);
    if (r > c) { for (let j = 0; j < k; j++) out[i * k + j] *= c / (r + 1e-7); }
  }
  return out;
}

function norm(x: Float64Array): number {
  let s = 0;
  for (const e of x) s += e * e;
  return Math.sqrt(s);
}
