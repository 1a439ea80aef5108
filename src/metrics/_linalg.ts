/**
 * Small dense float64 linear algebra for the metrics: the cyclic Jacobi eigensolver for
 * symmetric matrices (Golub & Van Loan, "Matrix Computations", 4th ed., sec. 8.5) and subspace
 * iteration with a Rayleigh–Ritz step for the top eigenpairs of a symmetric PSD matrix (ibid.,
 * sec. 8.2.4; Saad, "Numerical Methods for Large Eigenvalue Problems", ch. 5).
 *
 * @module
 */

/**
 * All eigenpairs of a symmetric (n, n) matrix, largest first.
 * @param a (n, n) row-major (only read)
 * @param n order
 * @returns `values` (n,) descending and `vectors` (n, n) with eigenvector k in column k
 */
export function jacobiEigen(
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
    const e = jacobiEigen(a, m);
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
  const Z = new Float64Array(m * p);
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
    ritz = jacobiEigen(B, p);
    let done = true;
    for (let j = 0; j < k; j++) {
      if (Math.abs(ritz.values[j] - prev[j]) > tol * Math.max(1e-300, Math.abs(ritz.values[0]))) {
        done = false;
      }
    }
    prev = ritz.values.slice(0, k);
    // Rotate Q onto the Ritz vectors, then iterate on A Q.
    const QR = new Float64Array(m * p);
    for (let r = 0; r < m; r++) {
      for (let j = 0; j < p; j++) {
        let v = 0;
        for (let i = 0; i < p; i++) v += Q[r * p + i] * ritz.vectors[i * p + j];
        QR[r * p + j] = v;
      }
    }
    if (done && it > 2) return take(ritz.values, QR, p);
    Q = Z.slice();
    orthonormalizeColumns(Q, m, p);
  }
  // Not converged to tol: return the last Ritz pairs (still accurate for a gapped spectrum).
  const QR = new Float64Array(m * p);
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < p; j++) {
      let v = 0;
      for (let i = 0; i < p; i++) v += Q[r * p + i] * ritz.vectors[i * p + j];
      QR[r * p + j] = v;
    }
  }
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
  return jacobiEigen(g, small).values.map((v) => Math.sqrt(Math.max(0, v)));
}
