/**
 * Small dense float64 linear algebra for the metrics, on the symmetric Jacobi eigensolver of
 * src/linalg/eigen.ts: subspace iteration with a Rayleigh–Ritz step for the top eigenpairs of a
 * symmetric PSD matrix (Golub & Van Loan, "Matrix Computations", 4th ed., sec. 8.2.4; Saad,
 * "Numerical Methods for Large Eigenvalue Problems", ch. 5) and singular values from the smaller
 * Gram matrix.
 *
 * @module
 */

import { symmetricEigen } from "../linalg/eigen.ts";

/** Orthonormalises the p columns of Q (m, p) in place (modified Gram–Schmidt, twice). */
function orthonormalizeColumns(Q: Float64Array, m: number, p: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < p; j++) {
      for (let i = 0; i < j; i++) {
        let dot = 0;
        for (let r = 0; r < m; r++) dot += Q[r * p + i] * Q[r * p + j];
        for (let r = 0; r < m; r++) Q[r * p + j] -= dot * Q[r * p + i];
      }
      let nrm = 0;
      for (let r = 0; r < m; r++) nrm += Q[r * p + j] ** 2;
      nrm = Math.sqrt(nrm);
      if (nrm === 0) {
        // A rank-deficient block: restart the column from a unit vector.
        Q[(j % m) * p + j] = 1;
        nrm = 1;
      }
      for (let r = 0; r < m; r++) Q[r * p + j] /= nrm;
    }
  }
}

/**
 * The top `k` eigenpairs of a symmetric PSD (m, m) matrix by subspace iteration on a block of
 * `k + 6` columns, finished with Rayleigh–Ritz; exact (Jacobi) when m is small.
 * @param a (m, m) row-major
 * @param m order
 * @param k wanted pairs (k <= m)
 * @returns `values` (k,) descending, `vectors` (m, k) column k = eigenvector k
 */
export function topEigen(
  a: ArrayLike<number>,
  m: number,
  k: number,
  opts: { maxIter?: number; tol?: number } = {},
): { values: Float64Array; vectors: Float64Array } {
  const take = (values: Float64Array, vectors: Float64Array, p: number) => {
    const v = new Float64Array(m * k);
    for (let r = 0; r < m; r++) for (let j = 0; j < k; j++) v[r * k + j] = vectors[r * p + j];
    return { values: values.slice(0, k), vectors: v };
  };
  if (m <= 48) {
    const e = symmetricEigen(a, m);
    return take(e.values, e.vectors, m);
  }
  const p = Math.min(m, k + 6);
  let Q = new Float64Array(m * p);
  // Deterministic start: a fixed pseudo-random block (LCG), so results do not vary run to run.
  let s = 12345;
  for (let i = 0; i < Q.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    Q[i] = s / 2 ** 32 - 0.5;
  }
  orthonormalizeColumns(Q, m, p);
  const maxIter = opts.maxIter ?? 2000, tol = opts.tol ?? 1e-13;
  let prev = new Float64Array(k).fill(Infinity);
  const Z = new Float64Array(m * p), QR = new Float64Array(m * p);
  let ritz: { values: Float64Array; vectors: Float64Array } = {
    values: new Float64Array(p),
    vectors: new Float64Array(p * p),
  };
  for (let it = 0; it < maxIter; it++) {
    Z.fill(0);
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < m; c++) {
        const arc = a[r * m + c];
        if (arc === 0) continue;
        for (let j = 0; j < p; j++) Z[r * p + j] += arc * Q[c * p + j];
      }
    }
    // Rayleigh–Ritz on span(Q): B = Qᵀ A Q = Qᵀ Z.
    const B = new Float64Array(p * p);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < p; j++) {
        let v = 0;
        for (let r = 0; r < m; r++) v += Q[r * p + i] * Z[r * p + j];
        B[i * p + j] = v;
      }
    }
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < i; j++) B[i * p + j] = B[j * p + i] = (B[i * p + j] + B[j * p + i]) / 2;
    }
    ritz = symmetricEigen(B, p);
    let done = true;
    for (let j = 0; j < k; j++) {
      if (Math.abs(ritz.values[j] - prev[j]) > tol * Math.max(1e-300, Math.abs(ritz.values[0]))) {
        done = false;
      }
    }
    prev = ritz.values.slice(0, k);
    // Rotate Q onto the Ritz vectors (the Ritz pairs' eigenvector estimates), then iterate on A Q.
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < p; j++) {
        let v = 0;
        for (let i = 0; i < p; i++) v += Q[r * p + i] * ritz.vectors[i * p + j];
        QR[r * p + j] = v;
      }
    }
    if (done && it > 2) break;
    Q = Z.slice();
    orthonormalizeColumns(Q, m, p);
  }
  // Converged, or not to tol after maxIter: the last Ritz pairs (still accurate for a gapped
  // spectrum), each with the vector from the basis it was computed in.
  return take(ritz.values, QR, p);
}

/**
 * Singular values of an (m, n) matrix, descending: square roots of the eigenvalues of the
 * smaller Gram matrix (`W Wᵀ` or `Wᵀ W`), float64 Jacobi.
 * @param w (m, n) row-major
 * @returns (min(m, n),) singular values
 */
export function singularValues(w: ArrayLike<number>, m: number, n: number): Float64Array {
  const small = Math.min(m, n);
  const g = new Float64Array(small * small);
  if (m <= n) {
    for (let i = 0; i < m; i++) {
      for (let j = i; j < m; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += w[i * n + k] * w[j * n + k];
        g[i * m + j] = g[j * m + i] = s;
      }
    }
  } else {
    const col = new Float64Array(n * n);
    for (let k = 0; k < m; k++) {
      for (let i = 0; i < n; i++) {
        const wi = w[k * n + i];
        if (wi === 0) continue;
        for (let j = i; j < n; j++) col[i * n + j] += wi * w[k * n + j];
      }
    }
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) g[i * n + j] = g[j * n + i] = col[i * n + j];
    }
  }
  return symmetricEigen(g, small).values.map((v) => Math.sqrt(Math.max(0, v)));
}
