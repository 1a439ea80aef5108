/**
 * The pieces of training-mode BatchNorm's Jacobian role (src/layers/batchnorm.ts,
 * shaders/batchnorm_jr.wgsl) against float64 references: the batch-coupled jvp against central
 * differences of the float64 forward, the VJP by the dot-product test `⟨b, A r⟩ = ⟨Aᵀ b, r⟩`,
 * and the tangent terms — `dγ += Σ b ⊙ P r` and the injection `∇_x ⟨b, A(x) r⟩` — against
 * central differences (in float64) of `⟨b, A(x) r⟩` in γ and in x.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import { BatchNorm } from "../src/layers/batchnorm.ts";

/** Float64 training-mode BatchNorm on (B, C, S) data: y(x) and A(x) r = γ P(x) r. */
function ref(
  [b, c, s]: readonly number[],
  gamma: ArrayLike<number>,
  eps: number,
) {
  const m = b * s;
  const at = (i: number, ch: number) => (Math.floor(i / s) * c + ch) * s + (i % s);
  const norm = (x: ArrayLike<number>, ch: number) => {
    let mean = 0, v = 0;
    for (let i = 0; i < m; i++) mean += x[at(i, ch)] / m;
    for (let i = 0; i < m; i++) v += (x[at(i, ch)] - mean) ** 2 / m;
    return { mean, inv: 1 / Math.sqrt(v + eps) };
  };
  const forward = (x: ArrayLike<number>, g = gamma): Float64Array => {
    const y = new Float64Array(x.length);
    for (let ch = 0; ch < c; ch++) {
      const { mean, inv } = norm(x, ch);
      for (let i = 0; i < m; i++) y[at(i, ch)] = g[ch] * (x[at(i, ch)] - mean) * inv;
    }
    return y;
  };
  /** A(x) r = γ s (r - mean r - x̂ mean(x̂ r)) per channel. */
  const jvp = (x: ArrayLike<number>, r: ArrayLike<number>, g = gamma): Float64Array => {
    const out = new Float64Array(x.length);
    for (let ch = 0; ch < c; ch++) {
      const { mean, inv } = norm(x, ch);
      let sr = 0, sxr = 0;
      for (let i = 0; i < m; i++) {
        const k = at(i, ch);
        sr += r[k];
        sxr += (x[k] - mean) * inv * r[k];
      }
      for (let i = 0; i < m; i++) {
        const k = at(i, ch), xh = (x[k] - mean) * inv;
        out[k] = g[ch] * inv * (r[k] - sr / m - xh * sxr / m);
      }
    }
    return out;
  };
  return { forward, jvp };
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** `max|got - want| / max|want|`. */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0, m = 0;
  for (let i = 0; i < want.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return e / m;
}

const CASES: { dims: 1 | 2; shape: number[] }[] = [
  { dims: 2, shape: [3, 5, 3, 3] },
  { dims: 2, shape: [2, 3, 4, 5] },
  // S = 1: four channels per f32x4 in the Wasm twins, and a scalar tail.
  { dims: 1, shape: [6, 7] },
  { dims: 1, shape: [4, 3, 5] },
];

Deno.test("training-mode BatchNorm's jvp, VJP and tangent terms match float64 finite differences", async () => {
  const rt = await getBackend();
  for (const [ci, { dims, shape }] of CASES.entries()) {
    const what = `BatchNorm${dims}d ${JSON.stringify(shape)}`;
    const n = shape.reduce((a, b) => a * b, 1);
    const c = shape[1];
    const bcs = [shape[0], c, n / (shape[0] * c)];
    const eps = 1e-5;
    const gamma = randomArray(c, 100 + ci, 0.5, 1.5);
    const xd = randomArray(n, 110 + ci, -1, 3);
    const bd = randomArray(n, 120 + ci);
    const rd = randomArray(n, 130 + ci);
    const bn = new BatchNorm(rt, "bn", c, { dims, eps });
    rt.write(bn.weight, gamma);
    rt.write(bn.bias, randomArray(c, 140 + ci));
    const [x, b, r] = [xd, bd, rd].map((d) => rt.upload(d, shape));
    bn.training = true;
    bn.forward(x);
    const jvp = await bn.jvp(r).read();
    const vjp = await bn.jacobian!.vjp!(b).read();
    rt.fill0(bn.dWeight);
    const inj = await bn.jacobian!.tangent!(b, r)!.read();
    const dGamma = await bn.dWeight.read();

    const f = ref(bcs, gamma, eps);
    const h = 1e-6;
    // jvp against central differences of the forward along r.
    const xp = Float64Array.from(xd, (v, i) => v + h * rd[i]);
    const xm = Float64Array.from(xd, (v, i) => v - h * rd[i]);
    const yp = f.forward(xp), ym = f.forward(xm);
    const fdJvp = yp.map((v, i) => (v - ym[i]) / (2 * h));
    const eJvp = relErr(jvp, fdJvp);
    assert.ok(eJvp < 1e-4, `${what}: jvp relative error ${eJvp}`);
    assert.ok(relErr(f.jvp(xd, rd), fdJvp) < 1e-7, `${what}: the float64 reference`);
    // VJP: ⟨b, A r⟩ = ⟨Aᵀ b, r⟩ (A from the float64 reference).
    const lhs = dot(bd, f.jvp(xd, rd)), rhs = dot(vjp, rd);
    assert.ok(
      Math.abs(lhs - rhs) <= 1e-5 * (Math.abs(lhs) + 1),
      `${what}: dot-product test ${lhs} vs ${rhs}`,
    );
    // F(x, γ) = ⟨b, A(x; γ) r⟩: dγ and the injection are its gradients.
    const F = (xx: ArrayLike<number>, g: ArrayLike<number> = gamma) => dot(bd, f.jvp(xx, rd, g));
    const fdGamma = Array.from({ length: c }, (_, k) => {
      const gp = Float64Array.from(gamma), gm = Float64Array.from(gamma);
      gp[k] += h;
      gm[k] -= h;
      return (F(xd, gp) - F(xd, gm)) / (2 * h);
    });
    const eGamma = relErr(dGamma, fdGamma);
    assert.ok(eGamma < 1e-4, `${what}: dγ relative error ${eGamma}`);
    const x64 = Float64Array.from(xd);
    const fdX = Array.from({ length: n }, (_, i) => {
      const v = x64[i];
      x64[i] = v + h;
      const up = F(x64);
      x64[i] = v - h;
      const dn = F(x64);
      x64[i] = v;
      return (up - dn) / (2 * h);
    });
    const eInj = relErr(inj, fdX);
    assert.ok(eInj < 1e-3, `${what}: injection relative error ${eInj}`);
    console.log(
      `${what}: jvp ${eJvp.toExponential(1)}, dγ ${eGamma.toExponential(1)}, injection ${
        eInj.toExponential(1)
      }`,
    );
    for (const t of [x, b, r]) t.dispose();
    bn.dispose();
  }
});
