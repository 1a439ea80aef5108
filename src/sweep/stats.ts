/**
 * Summary statistics of a sweep: the mean of a metric over seeds with its 95 % confidence
 * interval from Student's t distribution.
 *
 * The interval is `mean ± t_{1−α/2, n−1} · s / √n`, with `s` the sample standard deviation
 * (divisor n − 1): NIST/SEMATECH e-Handbook of Statistical Methods, §7.2.2.1 "Confidence limits
 * for the mean" (https://www.itl.nist.gov/div898/handbook/prc/section2/prc221.htm). The t
 * quantile is computed, not looked up: the t CDF through the regularized incomplete beta
 * function, `F(t) = 1 − ½ I_{ν/(ν+t²)}(ν/2, ½)` for t ≥ 0 (Abramowitz & Stegun 26.7.1 with
 * 26.5.27), the incomplete beta by its continued fraction (DLMF 8.17.22, evaluated with Lentz's
 * method), ln Γ by Lanczos' approximation (g = 7, the nine coefficients of Godfrey's table as
 * printed on Wikipedia's "Lanczos approximation"), and the quantile by bisection.
 *
 * No Deno APIs: runs in browsers too.
 *
 * @module
 */

const LANCZOS = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of I_x(a, b) (DLMF 8.17.22), by the modified Lentz method. */
function betaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1, d = 1 - (a + b) * x / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 500; m++) {
    // even step d_{2m}, then odd step d_{2m+1}
    for (
      const num of [
        m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
        -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
      ]
    ) {
      d = 1 + num * d;
      if (Math.abs(d) < tiny) d = tiny;
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      d = 1 / d;
      f *= c * d;
    }
    if (Math.abs(c * d - 1) < 1e-15) break;
  }
  return f;
}

/**
 * The regularized incomplete beta function I_x(a, b).
 * @param x in [0, 1]
 * @param a > 0
 * @param b > 0
 */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) +
    b * Math.log(1 - x);
  // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
  if (x < (a + 1) / (a + b + 2)) return Math.exp(lnFront) * betaFraction(x, a, b) / a;
  return 1 - Math.exp(lnFront) * betaFraction(1 - x, b, a) / b;
}

/**
 * The CDF of Student's t distribution with `df` degrees of freedom.
 * @param t the point
 * @param df degrees of freedom (> 0)
 */
export function studentTCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The quantile of Student's t distribution: the t with `studentTCdf(t, df) = p`.
 * @param p probability in (0, 1)
 * @param df degrees of freedom (> 0)
 * @returns the quantile (e.g. 2.776 for p = 0.975, df = 4)
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (!(df > 0)) throw new Error(`studentTQuantile: df must be > 0, got ${df}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-13 * Math.max(1, hi); i++) {
    const mid = 0.5 * (lo + hi);
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/** Mean, spread and confidence interval of a sample. */
export interface MeanCi {
  /** Number of values. */
  n: number;
  mean: number;
  /** Sample standard deviation (divisor n − 1); NaN for n < 2. */
  std: number;
  /** Half-width of the confidence interval, `t · std / √n`; NaN for n < 2. */
  half: number;
  /** The confidence level (0.95). */
  level: number;
}

/**
 * Mean ± the t-distribution confidence interval of `values` (see the module doc for the
 * formula and its source). Non-finite values are an error: a sweep lists them, not averages them.
 * @param values the per-seed values
 * @param level confidence level, default 0.95
 * @returns mean, sample standard deviation and the interval's half-width
 * @example
 * ```ts
 * meanCi([0.90, 0.92, 0.94]); // { mean: 0.92, std: 0.02, half: 0.0497, ... }
 * ```
 */
export function meanCi(values: readonly number[], level = 0.95): MeanCi {
  const n = values.length;
  if (n === 0) return { n, mean: NaN, std: NaN, half: NaN, level };
  const mean = values.reduce((a, v) => a + v, 0) / n;
  if (n < 2) return { n, mean, std: NaN, half: NaN, level };
  const s2 = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  const std = Math.sqrt(s2);
  const half = studentTQuantile(1 - (1 - level) / 2, n - 1) * std / Math.sqrt(n);
  return { n, mean, std, half, level };
}
