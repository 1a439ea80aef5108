import { assert } from "./_util.ts";
import { pythonJob } from "./_torch.ts";
import {
  averageRanks,
  predictorCorrelations,
  spearman,
  spearmanBootstrap,
} from "../src/metrics/rank_correlation.ts";
import { randomNormal, randomUniform } from "../src/init/philox.ts";

/** Jobs through tools/scipy_stats.py (Debian's /usr/bin/python3 with python3-scipy). */
function scipy(jobs: unknown[]): Promise<Record<string, unknown>[]> {
  return pythonJob("scipy_stats.py", jobs, {
    pythonEnv: "REGULA_SCIPY_PYTHON",
    hint: "apt-get install -y python3-scipy",
  });
}

/** Seeded values rounded to `levels` distinct values, so that ties are common. */
function tied(n: number, levels: number, stream: number): number[] {
  return Array.from(randomUniform(n, { seed: 7, stream }), (u) => Math.floor(u * levels));
}

Deno.test("spearman() and averageRanks() match scipy.stats on data with ties", async () => {
  const cases: { x: number[]; y: number[] }[] = [
    { x: [1, 2, 2, 3], y: [1, 3, 2, 4] },
    { x: [0.5, 0.5, 0.5, 0.1, 0.9], y: [3, 1, 2, 2, 5] },
    { x: [1, 2], y: [2, 1] },
    { x: [4, 4, 1, 1, 2, 2, 3, 3], y: [1, 1, 1, 2, 2, 2, 3, 3] },
  ];
  for (let s = 0; s < 8; s++) {
    const n = [5, 12, 30, 200][s % 4];
    cases.push({ x: tied(n, 2 + s, 2 * s), y: tied(n, 3 + (s % 3), 2 * s + 1) });
  }
  // a monotone but nonlinear pair with ties: ρ_s = 1 though Pearson < 1
  cases.push({ x: [1, 2, 2, 3, 10], y: [1, 4, 4, 9, 100] });
  const ref = await scipy([
    ...cases.map((c) => ({ op: "spearman", ...c })),
    ...cases.map((c) => ({ op: "rankdata", x: c.x })),
  ]);
  cases.forEach((c, i) => {
    const rho = spearman(c.x, c.y), want = ref[i].rho as number;
    assert.ok(Math.abs(rho - want) <= 1e-12, `case ${i}: ${rho} vs scipy ${want}`);
    const ranks = Array.from(averageRanks(c.x));
    assert.deepEqual(ranks, ref[cases.length + i].ranks, `ranks of case ${i}`);
  });
  assert.equal(spearman([1, 2, 2, 3, 10], [1, 4, 4, 9, 100]), 1);
});

Deno.test("spearman() is NaN for a constant variable, as scipy's", async () => {
  const [ref] = await scipy([{ op: "spearman", x: [2, 2, 2, 2], y: [1, 2, 3, 4] }]);
  assert.equal(ref.rho, null);
  assert.ok(Number.isNaN(spearman([2, 2, 2, 2], [1, 2, 3, 4])));
  assert.ok(Number.isNaN(spearman([1], [1])));
  assert.throws(() => spearman([1, NaN], [1, 2]), /pair 1 is not finite/);
  assert.throws(() => spearman([1, 2], [1]), /x has 2 values, y 1/);
});

Deno.test("spearmanBootstrap() is a function of its seed", () => {
  const x = tied(15, 5, 40), y = tied(15, 4, 41);
  const a = spearmanBootstrap(x, y, { seed: 3, resamples: 500 });
  const b = spearmanBootstrap(x, y, { seed: 3, resamples: 500 });
  const c = spearmanBootstrap(x, y, { seed: 4, resamples: 500 });
  assert.deepEqual(a, b);
  assert.ok(a.lo !== c.lo || a.hi !== c.hi, "another seed resamples differently");
  assert.equal(a.rho, spearman(x, y));
  assert.ok(a.lo <= a.hi && a.used <= 500 && a.used > 450);
  assert.equal(a.level, 0.95);
  assert.throws(() => spearmanBootstrap(x, y, { level: 1 }), /level must be in \(0, 1\)/);
  assert.throws(() => spearmanBootstrap(x, y, { resamples: 0 }), /positive integer/);
  // all resamples of a constant variable are degenerate: no interval, and it says so
  const d = spearmanBootstrap([1, 1, 1], [1, 2, 3], { resamples: 50 });
  assert.equal(d.used, 0);
  assert.ok(Number.isNaN(d.lo) && Number.isNaN(d.hi) && Number.isNaN(d.rho));
});

Deno.test("spearmanBootstrap() agrees with scipy.stats.bootstrap's percentile interval", async () => {
  // Different random streams: the two intervals agree up to Monte Carlo error (B = 4000).
  const n = 30;
  const g = randomNormal(2 * n, { seed: 11 });
  const x = Array.from({ length: n }, (_, i) => Math.round(4 * g[i]) / 4);
  const y = Array.from({ length: n }, (_, i) => Math.round(4 * (0.6 * g[i] + 0.8 * g[n + i])) / 4);
  const [ref] = await scipy([{ op: "bootstrap", x, y, resamples: 4000, level: 0.9, seed: 0 }]);
  const ours = spearmanBootstrap(x, y, { resamples: 4000, level: 0.9, seed: 0 });
  assert.ok(Math.abs(ours.lo - (ref.lo as number)) < 0.03, `lo ${ours.lo} vs ${ref.lo}`);
  assert.ok(Math.abs(ours.hi - (ref.hi as number)) < 0.03, `hi ${ours.hi} vs ${ref.hi}`);
});

Deno.test("spearmanBootstrap() covers the population ρ_s about as often as its level", () => {
  // Bivariate normal with Pearson ρ: population Spearman ρ_s = (6/π) asin(ρ/2) (Pearson 1907;
  // Kruskal 1958, "Ordinal measures of association", eq. 5.5).
  const rho = 0.6, truth = (6 / Math.PI) * Math.asin(rho / 2);
  const n = 40, reps = 300;
  let covered = 0;
  for (let r = 0; r < reps; r++) {
    const g = randomNormal(2 * n, { seed: 100, stream: r });
    const x = Array.from(g.subarray(0, n));
    const y = x.map((v, i) => rho * v + Math.sqrt(1 - rho * rho) * g[n + i]);
    const ci = spearmanBootstrap(x, y, { resamples: 400, seed: r });
    if (ci.lo <= truth && truth <= ci.hi) covered++;
  }
  // The percentile interval of a correlation under-covers a little at small n; 0.95 nominal.
  const rate = covered / reps;
  assert.ok(rate >= 0.88 && rate <= 0.99, `coverage ${rate}`);
});

Deno.test("predictorCorrelations() drops non-finite pairs per cell and keeps the order", () => {
  const points = [
    { name: "a", quantities: { J: 1, ECE: 0.1 }, targets: { gap: 0.01, pgd: 0.9 } },
    { name: "b", quantities: { J: 2, ECE: NaN }, targets: { gap: 0.02, pgd: 0.5 } },
    { name: "c", quantities: { J: 3, ECE: 0.3 }, targets: { gap: 0.03, pgd: 0.4 } },
    { name: "d", quantities: { J: 4, ECE: 0.2 }, targets: { gap: 0.05, pgd: 0.1 } },
  ];
  const a = predictorCorrelations(points, { resamples: 200 });
  assert.deepEqual(a.quantities, ["J", "ECE"]);
  assert.deepEqual(a.targets, ["gap", "pgd"]);
  assert.equal(a.cells.length, 4);
  const jg = a.cells[0], jp = a.cells[1], eg = a.cells[2];
  assert.equal(jg.rho, 1);
  assert.equal(jp.rho, -1);
  assert.equal(jg.n, 4);
  assert.equal(eg.n, 3);
  assert.equal(eg.rho, spearman([0.1, 0.3, 0.2], [0.01, 0.03, 0.05]));
  assert.equal(a.resamples, 200);
});
