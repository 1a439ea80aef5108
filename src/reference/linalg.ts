/**
 * Float64 CPU references for src/linalg: singular values as the square roots of the eigenvalues
 * of the smaller Gram matrix, and hard SVB's clipping through the same eigendecomposition, both on
 * the cyclic two-sided Jacobi solver of src/linalg/eigen.ts (Golub & Van Loan, "Matrix
 * Computations", 4th ed., alg. 8.5.3). A different algorithm from the GPU's one-sided Jacobi, so
 * that the two are independent checks of each other.
 *
 * @module
 */

import { symmetricEigen } from "../linalg/eigen.ts";

/**
 * Eigenvalues and eigenvectors of a symmetric (n, n) matrix, smallest first: the Jacobi solver of
 * src/linalg/eigen.ts, reordered.
 * @param a (n, n) row-major, symmetric (only read)
 * @param n order
 * @returns `values` (n,) ascending and `vectors` (n, n) with eigenvector k in column k
 */
export function symmetricEigenRef(
  a: ArrayLike<number>,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const desc = symmetricEigen(a, n);
  const values = desc.values.reverse();
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) vectors[i * n + k] = desc.vectors[i * n + (n - 1 - k)];
  }
  return { values, vectors };
}

/**
 * The smaller Gram matrix of an (m, n) matrix: `W Wᵀ` (m, m) when m ≤ n, else `Wᵀ W` (n, n).
 * @param w (m, n) row-major
 * @returns the (p, p) Gram matrix, p = min(m, n)
 */
export function smallGramRef(w: ArrayLike<number>, m: number, n: number): Float64Array {
  const p = Math.min(m, n);
  const g = new Float64Array(p * p);
  if (m <= n) {
    for (let i = 0; i < m; i++) {
      for (let j = i; j < m; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += w[i * n + k] * w[j * n + k];
        g[i * p + j] = g[j * p + i] = s;
      }
    }
  } else {
    const col = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) col[j * m + i] = w[i * n + j];
    for (let i = 0; i < n; i++) {
      for (let j = i; j < n; j++) {
        let s = 0;
        for (let k = 0; k < m; k++) s += col[i * m + k] * col[j * m + k];
        g[i * p + j] = g[j * p + i] = s;
      }
    }
  }
  return g;
}

/**
 * Singular values of an (m, n) matrix, descending: square roots of the eigenvalues of its smaller
 * Gram matrix (accurate to about `eps · σ_max² / σ` in absolute terms, plenty for the bands of
 * hard SVB; not for tiny singular values).
 * @param w (m, n) row-major (a conv weight flattened to (out, in·kh·kw))
 * @returns (min(m, n),) descending
 */
export function singularValuesRef(w: ArrayLike<number>, m: number, n: number): Float64Array {
  const p = Math.min(m, n);
  const { values } = symmetricEigen(smallGramRef(w, m, n), p);
  return values.map((v) => Math.sqrt(Math.max(0, v)));
}

/**
 * `U clip(Σ) Vᵀ` in float64: the hard-SVB projection of an (m, n) matrix, through the
 * eigendecomposition of the smaller Gram matrix (`W Wᵀ = U Σ² Uᵀ`, `W ← U diag(c/σ) Uᵀ W`, or the
 * mirror image for m > n).
 * @param w (m, n) row-major
 * @param lo lower bound of the band
 * @param hi upper bound
 * @returns (m, n) the projected matrix
 */
export function clipSingularValuesRef(
  w: ArrayLike<number>,
  m: number,
  n: number,
  lo: number,
  hi: number,
): Float64Array {
  const p = Math.min(m, n);
  const { values, vectors: Q } = symmetricEigen(smallGramRef(w, m, n), p);
  // M = Q diag(f) Qᵀ, f = clip(σ)/σ (1 for σ = 0).
  const f = Array.from(values, (v) => {
    const s = Math.sqrt(Math.max(0, v));
    return s > 0 ? Math.min(hi, Math.max(lo, s)) / s : 1;
  });
  const M = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j < p; j++) {
      let s = 0;
      for (let k = 0; k < p; k++) s += Q[i * p + k] * f[k] * Q[j * p + k];
      M[i * p + j] = s;
    }
  }
  const out = new Float64Array(m * n);
  if (m <= n) {
    for (let i = 0; i < m; i++) {
      for (let k = 0; k < m; k++) {
        const c = M[i * p + k];
        for (let j = 0; j < n; j++) out[i * n + j] += c * w[k * n + j];
      }
    }
  } else {
    for (let i = 0; i < m; i++) {
      for (let k = 0; k < n; k++) {
        const wik = w[i * n + k];
        for (let j = 0; j < n; j++) out[i * n + j] += wik * M[k * p + j];
      }
    }
  }
  return out;
}
