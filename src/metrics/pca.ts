/**
 * Principal components of data and of each layer's activations: the sample covariance
 * `C = Xcᵀ Xc / (N − 1)` of centred rows, or (when D > N) the Gram matrix `Xc Xcᵀ`, whose
 * eigenvectors `w` give `v = Xcᵀ w / ‖Xcᵀ w‖` with the same nonzero eigenvalues (Jolliffe,
 * "Principal Component Analysis", 2nd ed., sec. 3.1). The min(N, D)-square product is a GPU
 * matmul; its top eigenpairs come from float64 subspace iteration (src/metrics/_linalg.ts).
 *
 * @module
 */

import type { Backend } from "../backend.ts";
import type { Layer } from "../layers/layer.ts";
import { matmul } from "../ops/matmul.ts";
import { topEigen } from "./_linalg.ts";
import type { MetricModel, Samples } from "./_common.ts";
import { forEachLayerOutput } from "./_activations.ts";

/** Principal components of N samples of dimension D. */
export interface PcaResult {
  /** (k, D) unit principal directions, row j = component j (sign: largest |entry| positive). */
  components: Float64Array;
  /** (k,) variances along them (eigenvalues of the covariance), descending. */
  variances: Float64Array;
  /** (k,) fraction of the total variance each explains. */
  explained: Float64Array;
  /** (N, k) coordinates of the centred samples. */
  projections: Float64Array;
  /** (D,) the mean. */
  mean: Float64Array;
  n: number;
  d: number;
  k: number;
}

/**
 * Top-k principal components of the rows of X.
 * @param rt runtime (the covariance or Gram product runs on its GPU)
 * @param x (N, D) row-major samples (CPU)
 * @param n N
 * @param d D
 * @param opts `components` k (default 2)
 * @returns components, variances, explained fractions, projections (float64)
 * @example
 * ```ts
 * const { projections, explained } = await pca(rt, acts, n, d);
 * ```
 */
export async function pca(
  rt: Backend,
  x: ArrayLike<number>,
  n: number,
  d: number,
  opts: { components?: number } = {},
): Promise<PcaResult> {
  const k = opts.components ?? 2;
  if (!(n >= 2 && d >= 1 && x.length >= n * d)) {
    throw new Error(
      `pca: need at least 2 samples of size >= 1 in ${x.length} values (N=${n}, D=${d})`,
    );
  }
  if (!(Number.isInteger(k) && k >= 1 && k <= Math.min(n, d))) {
    throw new Error(
      `pca: components must be an integer in [1, min(N, D) = ${Math.min(n, d)}], got ${k}`,
    );
  }
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const xc = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) xc[i * d + j] = x[i * d + j] - mean[j];
  let trace = 0;
  for (let i = 0; i < n * d; i++) trace += xc[i] * xc[i];
  trace /= n - 1;
  const gram = d > n;
  const m = gram ? n : d;
  const xt = rt.upload(xc, [n, d]);
  // Gram: Xc Xcᵀ (N, N); covariance: Xcᵀ Xc (D, D).
  const prod = gram
    ? matmul(rt, xt, xt, { transB: true, alpha: 1 / (n - 1) })
    : matmul(rt, xt, xt, { transA: true, alpha: 1 / (n - 1) });
  const a = Float64Array.from(await prod.read());
  prod.dispose();
  xt.dispose();
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < i; j++) a[i * m + j] = a[j * m + i] = (a[i * m + j] + a[j * m + i]) / 2;
  }
  const eig = topEigen(a, m, k);
  const components = new Float64Array(k * d);
  for (let c = 0; c < k; c++) {
    if (gram) {
      // v = Xcᵀ w, normalised (float64 over the f32 centred data).
      for (let i = 0; i < n; i++) {
        const wi = eig.vectors[i * k + c];
        for (let j = 0; j < d; j++) components[c * d + j] += wi * xc[i * d + j];
      }
    } else {
      for (let j = 0; j < d; j++) components[c * d + j] = eig.vectors[j * k + c];
    }
    let nrm = 0, big = 0;
    for (let j = 0; j < d; j++) {
      nrm += components[c * d + j] ** 2;
      if (Math.abs(components[c * d + j]) > Math.abs(big)) big = components[c * d + j];
    }
    const f = (big < 0 ? -1 : 1) / (Math.sqrt(nrm) || 1);
    for (let j = 0; j < d; j++) components[c * d + j] *= f;
  }
  const projections = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += xc[i * d + j] * components[c * d + j];
      projections[i * k + c] = s;
    }
  }
  const variances = eig.values.map((v) => Math.max(0, v));
  return {
    components,
    variances,
    explained: variances.map((v) => (trace > 0 ? v / trace : 0)),
    projections,
    mean,
    n,
    d,
    k,
  };
}

/** PCA of one layer's output. */
export interface LayerPca extends PcaResult {
  /** Layer name (module path) and class. */
  layer: string;
  /** Position of the layer in `model.layers`. */
  index: number;
  /** Labels of the samples, for colouring. */
  labels?: Int32Array;
}

/**
 * Top-2 principal components of the output of each layer (eval mode), for scatter plots coloured
 * by class. Runs the model's layers one by one on up to `maxSamples` samples in one batch.
 * @param rt runtime
 * @param model a chain of layers (`Sequential` / `Model`)
 * @param data samples (labels kept for colouring)
 * @param opts `layers` (names or indices; default every layer whose output differs in shape from
 *   its input or is the last), `maxSamples` (default 500), `components` (default 2)
 * @returns one result per chosen layer
 */
export async function activationPca(
  rt: Backend,
  model: MetricModel & { layers: readonly Layer[] },
  data: Samples,
  opts: { layers?: (string | number)[]; maxSamples?: number; components?: number } = {},
): Promise<LayerPca[]> {
  const out: LayerPca[] = [];
  await forEachLayerOutput(rt, model, data, opts, async ({ index, layer, acts, n, d }) => {
    const r = await pca(rt, acts, n, d, { components: Math.min(opts.components ?? 2, d) });
    out.push({
      ...r,
      layer,
      index,
      labels: data.y ? Int32Array.from(data.y.subarray(0, n)) : undefined,
    });
  });
  return out;
}
