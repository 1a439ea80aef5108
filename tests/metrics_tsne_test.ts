/**
 * Exact t-SNE (src/metrics/tsne.ts) against scikit-learn 1.2's `TSNE(method="exact")` through
 * tools/sklearn_tsne.py (Debian's python3-sklearn): the affinities P, the KL divergence and its
 * gradient at one embedding, the descent step for step, and the final KL from the same start;
 * the gradient against central differences of the KL; well-separated clusters staying apart.
 * The host-side float64 code does not use the backend, so these run the same on both.
 */
import { assert, assertClose } from "./_util.ts";
import { randomNormal } from "../src/init/philox.ts";
import { tsne, tsneAffinities, tsneGradient, tsneKl } from "../src/metrics/tsne.ts";
import { pythonJob } from "./_torch.ts";

/** Runs tools/sklearn_tsne.py on one job. */
function sklearn(job: Record<string, unknown>): Promise<Record<string, unknown>> {
  return pythonJob("sklearn_tsne.py", job, { hint: "needs apt-get install -y python3-sklearn" });
}

const rows = (a: ArrayLike<number>, n: number, d: number): number[][] =>
  Array.from({ length: n }, (_, i) => Array.from({ length: d }, (_, k) => a[i * d + k]));

/**
 * 4 clusters of N/4 points in D = 5 with integer coordinates: squared distances are integers
 * below 2²⁴, exact in the float32 that scikit-learn's binary search reads them as.
 */
function clusters(n: number, d: number, seed: number, spread = 1.5): Float64Array {
  const z = randomNormal(n * d, { seed });
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) {
      x[i * d + k] = (k === i % 4 ? 20 : 0) + Math.round(spread * z[i * d + k]);
    }
  }
  return x;
}

const N = 120, D = 5, PERP = 10;
const X = clusters(N, D, 3);
const INIT = randomNormal(N * 2, { seed: 9 }).map((v) => 1e-4 * v);

Deno.test("tsneAffinities() equals scikit-learn's P for the same perplexity", async () => {
  const ref = await sklearn({ x: rows(X, N, D), perplexity: PERP });
  const want = (ref.P as number[][]).flat();
  const { p, beta } = tsneAffinities(X, N, D, { perplexity: PERP });
  // Same bisection (start β = 1, double/halve until bracketed, then midpoints, |ΔH| ≤ 1e-5) on
  // the same exact distances: equal but for sklearn's floor of P at the float64 epsilon.
  assertClose(p, want, { atol: 2.3e-16, rtol: 1e-12, what: "P" });
  let sum = 0;
  for (let i = 0; i < N * N; i++) sum += p[i];
  assertClose([sum], [1], { atol: 1e-12 });
  // Each conditional row has perplexity exp(H) = PERP (H in nats) within the search tolerance.
  const dist = (i: number, j: number) => {
    let s = 0;
    for (let k = 0; k < D; k++) s += (X[i * D + k] - X[j * D + k]) ** 2;
    return s;
  };
  for (const i of [0, 57, 119]) {
    let z = 0, h = 0;
    for (let j = 0; j < N; j++) if (j !== i) z += Math.exp(-beta[i] * dist(i, j));
    for (let j = 0; j < N; j++) {
      if (j === i) continue;
      const q = Math.exp(-beta[i] * dist(i, j)) / z;
      if (q > 0) h -= q * Math.log(q);
    }
    assertClose([Math.exp(h)], [PERP], { rtol: 2e-5, what: `perplexity of row ${i}` });
  }
  assert.throws(() => tsneAffinities(X, N, D, { perplexity: N }), /perplexity must be in/);
});

Deno.test("tsneKl() and tsneGradient() equal scikit-learn's _kl_divergence; gradient = central differences", async () => {
  const { p } = tsneAffinities(X, N, D, { perplexity: PERP });
  const y = randomNormal(N * 2, { seed: 11 });
  const ref = await sklearn({ x: rows(X, N, D), perplexity: PERP, at: rows(y, N, 2) });
  // sklearn adds ε·log(ε/q) for the pairs it floors at ε: ~1e-11 here.
  assertClose([tsneKl(p, y, N)], [ref.kl_at as number], { rtol: 1e-9, what: "KL" });
  const g = tsneGradient(p, y, N, 2);
  assertClose(g, (ref.grad_at as number[][]).flat(), { atol: 1e-12, rtol: 1e-9, what: "∇KL" });
  // <∇KL, v> against (KL(y + hv) − KL(y − hv)) / 2h in float64.
  const v = randomNormal(N * 2, { seed: 12 });
  const h = 1e-5;
  const kl = (s: number) => tsneKl(p, y.map((yi, i) => yi + s * h * v[i]), N);
  const fd = (kl(1) - kl(-1)) / (2 * h);
  const dot = g.reduce((a, gi, i) => a + gi * v[i], 0);
  assertClose([dot], [fd], { rtol: 1e-6, atol: 1e-9, what: "<∇KL, v>" });
});

Deno.test("tsne() follows scikit-learn's descent step for step, and ends at a KL within sklearn's own spread", async () => {
  // Starts: INIT, and INIT with a relative 1e-9 perturbation (four draws): the descent from a
  // 1e-4 start amplifies rounding ~10× per early step, so two exact implementations part ways
  // after ~20 steps and reach different local minima. The tolerance on the final KL is how far
  // sklearn's own runs from indistinguishable starts spread.
  const starts = [INIT];
  for (let s = 0; s < 4; s++) {
    const e = randomNormal(N * 2, { seed: 100 + s });
    starts.push(INIT.map((v, i) => v * (1 + 1e-9 * e[i])));
  }
  const steps = [1, 5, 10];
  const opts = {
    perplexity: PERP,
    exaggeration: 4,
    learningRate: 100,
    iterations: 1000,
    // scikit-learn's schedule: exaggeration for the whole first phase of 250 steps, then a fresh
    // descent (momentum and gains reset) with momentum 0.8.
    exaggerationIterations: 250,
    momentumSwitch: 250,
    restartAtSwitch: true,
  };
  const ref = await sklearn({
    x: rows(X, N, D),
    perplexity: PERP,
    init: starts.map((s) => rows(s, N, 2)),
    early_exaggeration: 4,
    learning_rate: 100,
    n_iter: 1000,
    steps,
  });
  const after = ref.after_steps as number[][][];
  for (const [k, s] of steps.entries()) {
    const r = tsne(X, N, D, { ...opts, iterations: s, init: INIT });
    const want = after[k].flat();
    const scale = want.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    assertClose(r.embedding, want, { atol: 1e-8 * scale, rtol: 0, what: `after ${s} steps` });
  }
  const ours = tsne(X, N, D, { ...opts, init: INIT });
  assertClose([ours.kl], [tsneKl(ours.affinities.p, ours.embedding, N)], { rtol: 1e-12 });
  const kls = ref.kl_final as number[];
  const lo = Math.min(...kls), hi = Math.max(...kls);
  const spread = hi - lo;
  console.log(
    `t-SNE final KL: ours ${ours.kl.toFixed(4)}, sklearn ${
      kls.map((v) => v.toFixed(4)).join(", ")
    }`,
  );
  assert.ok(
    ours.kl >= lo - spread && ours.kl <= hi + spread,
    `our KL ${ours.kl} outside sklearn's [${lo}, ${hi}] widened by its spread ${spread}`,
  );
  assert.ok(ours.kl < ours.history[5][1], "KL fell after the exaggeration phase");
});

Deno.test("tsne() keeps well-separated clusters separated (paper's settings, seeded)", () => {
  // 4 clusters of 50 in D = 10, centres 10 apart per axis, unit spread.
  const n = 200, d = 10;
  const z = randomNormal(n * d, { seed: 5 });
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) x[i * d + k] = (k === i % 4 ? 10 : 0) + z[i * d + k];
  }
  const a = tsne(x, n, d, { perplexity: 20, seed: 1 });
  const b = tsne(x, n, d, { perplexity: 20, seed: 1 });
  assert.deepEqual(a.embedding, b.embedding, "seeded: the same embedding twice");
  const y = a.embedding;
  const cent = Array.from({ length: 4 }, (_, c) => {
    let sx = 0, sy = 0;
    for (let i = c; i < n; i += 4) {
      sx += y[2 * i];
      sy += y[2 * i + 1];
    }
    return [sx / (n / 4), sy / (n / 4)];
  });
  // Every cluster lies within a disc around its centroid smaller than half the distance to the
  // nearest other centroid: no two discs overlap.
  for (let c = 0; c < 4; c++) {
    let radius = 0;
    for (let i = c; i < n; i += 4) {
      radius = Math.max(radius, Math.hypot(y[2 * i] - cent[c][0], y[2 * i + 1] - cent[c][1]));
    }
    let gap = Infinity;
    for (let e = 0; e < 4; e++) {
      if (e !== c) {
        gap = Math.min(gap, Math.hypot(cent[e][0] - cent[c][0], cent[e][1] - cent[c][1]));
      }
    }
    assert.ok(radius < gap / 2, `cluster ${c}: radius ${radius}, nearest centroid at ${gap}`);
  }
});
