/**
 * Float64 CPU references for the penalties on the function (src/regularizers/jacobian.ts,
 * determinant.ts, gradient_norm.ts, confidence.ts) on small MLPs: the Jacobian is carried by
 * forward-mode differentiation (`J_h ← σ'(a) ⊙ W J_h`), so the values are exact up to float64
 * rounding and their parameter gradients can be checked by central differences.
 *
 * @module
 */

/** One layer of a reference MLP: `y = W x + b` (W row-major (out, in)) or an activation. */
export type RefLayer =
  | { kind: "linear"; in: number; out: number; w: Float64Array; b: Float64Array | null }
  | { kind: "tanh" | "sigmoid" | "softplus" | "relu" };

function act(kind: string, a: number): [number, number] {
  switch (kind) {
    case "tanh": {
      const t = Math.tanh(a);
      return [t, 1 - t * t];
    }
    case "sigmoid": {
      const s = 1 / (1 + Math.exp(-a));
      return [s, s * (1 - s)];
    }
    case "softplus": {
      // PyTorch: beta 1, threshold 20 (linear above).
      if (a > 20) return [a, 1];
      return [Math.log1p(Math.exp(a)), 1 / (1 + Math.exp(-a))];
    }
    case "relu":
      return [a > 0 ? a : 0, a > 0 ? 1 : 0];
  }
  throw new Error(`reference: unknown activation ${kind}`);
}

/**
 * Logits and Jacobian of one sample.
 * @param x (D,) input
 * @returns z (C,) and J (C, D) row-major
 */
export function mlpJacobian(
  layers: readonly RefLayer[],
  x: ArrayLike<number>,
): { z: Float64Array; j: Float64Array } {
  const d = x.length;
  let h = Float64Array.from(x);
  let jh = new Float64Array(d * d);
  for (let i = 0; i < d; i++) jh[i * d + i] = 1;
  for (const l of layers) {
    if (l.kind === "linear") {
      const y = new Float64Array(l.out), jy = new Float64Array(l.out * d);
      for (let o = 0; o < l.out; o++) {
        let s = l.b ? l.b[o] : 0;
        for (let i = 0; i < l.in; i++) {
          const w = l.w[o * l.in + i];
          s += w * h[i];
          for (let e = 0; e < d; e++) jy[o * d + e] += w * jh[i * d + e];
        }
        y[o] = s;
      }
      h = y;
      jh = jy;
    } else {
      for (let i = 0; i < h.length; i++) {
        const [y, dy] = act(l.kind, h[i]);
        h[i] = y;
        for (let e = 0; e < d; e++) jh[i * d + e] *= dy;
      }
    }
  }
  return { z: h, j: jh };
}

/**
 * Hoffman et al. 2019: per sample `R = (C / nproj) Σ_μ ||v_μᵀ J||²` (exact `||J||_F²` when
 * `v` is null); `value = (λ/2) mean R`.
 * @param x (B, D) row-major
 * @param v (nproj, B, C) or null
 */
export function jacobianPenaltyRef(
  layers: readonly RefLayer[],
  x: ArrayLike<number>,
  b: number,
  v: ArrayLike<number> | null,
  nproj: number,
  lambda: number,
): { value: number; perSample: Float64Array } {
  const d = x.length / b;
  const per = new Float64Array(b);
  for (let s = 0; s < b; s++) {
    const { z, j } = mlpJacobian(layers, Array.prototype.slice.call(x, s * d, (s + 1) * d));
    const c = z.length;
    let r = 0;
    if (!v) { for (const q of j) r += q * q; }
    else {
      for (let mu = 0; mu < nproj; mu++) {
        for (let e = 0; e < d; e++) {
          let u = 0;
          for (let k = 0; k < c; k++) u += v[(mu * b + s) * c + k] * j[k * d + e];
          r += (c / nproj) * u * u;
        }
      }
    }
    per[s] = r;
  }
  return { value: (lambda / 2) * mean(per), perSample: per };
}

function mean(a: Float64Array): number {
  let s = 0;
  for (const q of a) s += q;
  return s / a.length;
}

/** Determinant of an (n, n) row-major matrix by LU with partial pivoting. */
export function det(m: ArrayLike<number>, n: number): number {
  const a = Float64Array.from(m);
  let r = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(a[i * n + c]) > Math.abs(a[p * n + c])) p = i;
    if (a[p * n + c] === 0) return 0;
    if (p !== c) {
      r = -r;
      for (let j = 0; j < n; j++) [a[c * n + j], a[p * n + j]] = [a[p * n + j], a[c * n + j]];
    }
    r *= a[c * n + c];
    for (let i = c + 1; i < n; i++) {
      const f = a[i * n + c] / a[c * n + c];
      for (let j = c; j < n; j++) a[i * n + j] -= f * a[c * n + j];
    }
  }
  return r;
}

/**
 * Jacobian-determinant penalty: square J: `(det J - 1)²`; otherwise `(sqrt(det G) - 1)²` with
 * G the smaller Gram matrix (`J Jᵀ` when C < D, `Jᵀ J` when C > D); `value = λ mean R`.
 */
export function determinantPenaltyRef(
  layers: readonly RefLayer[],
  x: ArrayLike<number>,
  b: number,
  lambda: number,
): { value: number; perSample: Float64Array } {
  const d = x.length / b;
  const per = new Float64Array(b);
  for (let s = 0; s < b; s++) {
    const { z, j } = mlpJacobian(layers, Array.prototype.slice.call(x, s * d, (s + 1) * d));
    const c = z.length;
    if (c === d) {
      per[s] = (det(j, c) - 1) ** 2;
      continue;
    }
    const n = Math.min(c, d);
    const g = new Float64Array(n * n);
    for (let p = 0; p < n; p++) {
      for (let q = 0; q < n; q++) {
        let t = 0;
        if (c < d) { for (let e = 0; e < d; e++) t += j[p * d + e] * j[q * d + e]; }
        else for (let k = 0; k < c; k++) t += j[k * d + p] * j[k * d + q];
        g[p * n + q] = t;
      }
    }
    per[s] = (Math.sqrt(Math.max(det(g, n), 0)) - 1) ** 2;
  }
  return { value: lambda * mean(per), perSample: per };
}

function softmax(z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i]);
  const p = Float64Array.from(z, (q) => Math.exp(q - m));
  let s = 0;
  for (const q of p) s += q;
  return p.map((q) => q / s);
}

/**
 * Input-gradient norm (double backprop, Drucker & LeCun 1992): per sample
 * `R = ||∂CE_b/∂x_b||²` with `∂CE/∂x = Jᵀ (p - y)`; `value = λ mean R`.
 * @param y (B,) labels
 */
export function gradientNormRef(
  layers: readonly RefLayer[],
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  lambda: number,
): { value: number; perSample: Float64Array } {
  const b = y.length, d = x.length / b;
  const per = new Float64Array(b);
  for (let s = 0; s < b; s++) {
    const { z, j } = mlpJacobian(layers, Array.prototype.slice.call(x, s * d, (s + 1) * d));
    const p = softmax(z);
    p[y[s]] -= 1;
    let r = 0;
    for (let e = 0; e < d; e++) {
      let g = 0;
      for (let k = 0; k < z.length; k++) g += p[k] * j[k * d + e];
      r += g * g;
    }
    per[s] = r;
  }
  return { value: lambda * mean(per), perSample: per };
}

/**
 * Confidence penalty (Pereyra et al. 2017) on (B, C) logits: `R = -β H(p)`, or hinged
 * `β max(0, Γ - H)`; `value = mean R`; `dLogits = ∂value/∂z`.
 */
export function confidencePenaltyRef(
  logits: ArrayLike<number>,
  b: number,
  beta: number,
  gamma: number | null,
): { value: number; perSample: Float64Array; dLogits: Float64Array } {
  const c = logits.length / b;
  const per = new Float64Array(b), dz = new Float64Array(b * c);
  for (let s = 0; s < b; s++) {
    const p = softmax(Array.prototype.slice.call(logits, s * c, (s + 1) * c));
    let h = 0;
    for (const q of p) if (q > 0) h -= q * Math.log(q);
    const active = gamma === null || gamma - h > 0;
    per[s] = gamma === null ? -beta * h : beta * Math.max(0, gamma - h);
    if (!active) continue;
    for (let k = 0; k < c; k++) {
      const lp = Math.log(p[k]);
      dz[s * c + k] = (beta / b) * p[k] * (lp + h);
    }
  }
  return { value: mean(per), perSample: per, dLogits: dz };
}
