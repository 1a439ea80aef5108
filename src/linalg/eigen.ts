/**
 * The symmetric eigendecomposition in float64 on the CPU by the cyclic two-sided Jacobi method
 * (Golub & Van Loan, "Matrix Computations", 4th ed., alg. 8.5.3): the one solver behind the
 * metrics' PCA and singular values (src/metrics/_linalg.ts) and the float64 references of
 * src/linalg (src/reference/linalg.ts). It imports nothing, so any layer may use it. A different
 * algorithm from the GPU's one-sided Jacobi (src/linalg/svd.ts), so that the two check each other.
 *
 * @module
 */

/**
 * All eigenpairs of a symmetric (n, n) matrix, largest first.
 *
 * Sweeps until the off-diagonal part is below 1e-30 of the squared Frobenius norm (about machine
 * precision in the norm), at most 60 sweeps; Jacobi converges quadratically, in well under 20 for
 * the orders used here.
 *
 * @example
 * ```ts
 * import { symmetricEigen } from "./eigen.ts";
 * const { values, vectors } = symmetricEigen([2, 1, 1, 2], 2);
 * console.log(values); // Float64Array [≈3, ≈1]; column 0 of `vectors` is ±(1, 1)/√2
 * console.log(vectors.length); // 4
 * ```
 *
 * @param a (n, n) row-major, symmetric (only read)
 * @param n order
 * @returns `values` (n,) descending and `vectors` (n, n) with eigenvector k in column k
 */
export function symmetricEigen(
  a: ArrayLike<number>,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0, tot = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        tot += A[i * n + j] ** 2;
        if (i !== j) off += A[i * n + j] ** 2;
      }
    }
    if (off <= 1e-30 * tot) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (apq === 0) continue;
        const theta = (A[q * n + q] - A[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        // A ← Jᵀ A J with J the rotation in the (p, q) plane; V ← V J.
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p], vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => A[y * n + y] - A[x * n + x]);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((src, k) => {
    values[k] = A[src * n + src];
    for (let i = 0; i < n; i++) vectors[i * n + k] = V[i * n + src];
  });
  return { values, vectors };
}
