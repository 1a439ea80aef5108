import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import type { Param } from "../src/layers/layer.ts";
import {
  hardSvb,
  hardSvbRegularizer,
  maxNorm,
  maxNormRegularizer,
} from "../src/regularizers/projections.ts";
import type { StepContext } from "../src/hooks/step.ts";
import { clipSingularValuesRef, singularValuesRef } from "../src/reference/linalg.ts";
import { maxNormRef } from "../src/reference/penalties.ts";

const rt = await getBackend();

function weight(name: string, shape: number[], w: Float32Array, kind: Param["kind"] = "weight") {
  return { name, kind, value: rt.upload(w, shape), grad: rt.zeros(shape) } as Param;
}

function free(ps: Param[]) {
  for (const p of ps) {
    p.value.dispose();
    p.grad?.dispose();
  }
}

const EPS = 0.5;
const LO = 1 / (1 + EPS), HI = 1 + EPS;

Deno.test("hardSvb() puts every singular value in [1/(1+ε), 1+ε] (float64 check)", async () => {
  // Singular values of these spread well outside the band on both sides.
  const shapes = [[6, 25], [25, 6], [16, 6, 5, 5], [120, 400], [7, 7], [1, 9]];
  const ws = shapes.map((s, i) => {
    const n = s.reduce((a, b) => a * b, 1);
    return randomArray(n, 20 + i, -1, 1).map((x) => 2.5 * x * Math.sqrt(3 / (n / s[0])));
  });
  for (const [i, w] of ws.entries()) {
    const m = shapes[i][0], k = w.length / m;
    const before = singularValuesRef(w, m, k);
    assert.ok(before[0] > HI || before.at(-1)! < LO, `case ${i} starts inside the band`);
  }
  const ps = shapes.map((s, i) => weight(`w${i}`, s, ws[i]));
  const bias = weight("b", [6], randomArray(6, 1, 3, 4), "bias");
  hardSvb(rt, [...ps, bias], { eps: EPS });
  // The band is met to 2e-5 relative: W' = W + Rᵀ E is formed in f32, and E cancels most of W
  // when σ is clipped from ~5 down to 1.5.
  for (const [i, p] of ps.entries()) {
    const m = shapes[i][0], k = ws[i].length / m;
    const got = await p.value.read();
    const s = singularValuesRef(got, m, k);
    const what = `${shapes[i]}`;
    for (const x of s) {
      assert.ok(x >= LO * (1 - 2e-5) && x <= HI * (1 + 2e-5), `${what}: σ = ${x} outside the band`);
    }
    const want = clipSingularValuesRef(ws[i], m, k, LO, HI);
    const scale = want.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    assertClose(got, want, { rtol: 0, atol: 1e-4 * scale, what: `${what} U clip(S) Vt` });
  }
  assertClose(await bias.value.read(), randomArray(6, 1, 3, 4), { rtol: 0, atol: 0, what: "bias" });
  free([...ps, bias]);
});

Deno.test("hardSvb() leaves a matrix already inside the band unchanged", async () => {
  const m = 40, k = 90;
  // Singular values in [0.8, 1.2] ⊂ [1/1.5, 1.5].
  const w0 = randomArray(m * k, 5, -1, 1).map((x) => x * Math.sqrt(3 / k));
  const w = Float32Array.from(clipSingularValuesRef(w0, m, k, 0.8, 1.2));
  const s = singularValuesRef(w, m, k);
  assert.ok(s[0] < HI && s.at(-1)! > LO);
  const p = weight("fc.weight", [m, k], w);
  hardSvb(rt, [p], { eps: EPS });
  assertClose(await p.value.read(), w, { rtol: 0, atol: 0, what: "unchanged (exactly)" });
  free([p]);
});

Deno.test("hardSvb() on DDNet conv4 shape (128, 128, 3, 3)", async () => {
  const shape = [128, 128, 3, 3], m = 128, k = 1152;
  const w = randomArray(m * k, 8, -1, 1).map((x) => 3 * x * Math.sqrt(3 / k));
  const p = weight("conv4.weight", shape, w);
  hardSvb(rt, [p], { eps: 0.05 });
  const got = await p.value.read();
  for (const x of singularValuesRef(got, m, k)) {
    assert.ok(x >= (1 / 1.05) * (1 - 2e-5) && x <= 1.05 * (1 + 2e-5), `σ = ${x} outside the band`);
  }
  free([p]);
});

Deno.test("maxNorm() rescales rows longer than c, as torch.renorm", async () => {
  const shapes = [[5, 7], [3, 2, 3, 3], [1, 1], [17, 300]];
  const ws = shapes.map((s, i) => randomArray(s.reduce((a, b) => a * b, 1), 60 + i, -1, 1));
  const ps = shapes.map((s, i) => weight(`w${i}`, s, ws[i]));
  maxNorm(rt, ps, { c: 1.2 });
  for (const [i, p] of ps.entries()) {
    const m = shapes[i][0], k = ws[i].length / m;
    assertClose(await p.value.read(), maxNormRef(ws[i], m, k, 1.2), { rtol: 1e-5, atol: 1e-7 });
  }
  free(ps);
});

Deno.test("hardSvbRegularizer() projects after every T steps (T = one epoch by default)", async () => {
  const w = randomArray(4 * 6, 3, -2, 2);
  const p = weight("fc.weight", [4, 6], w);
  const ctx = (step: number, stepsPerEpoch = 3) =>
    ({ rt, params: [p], step, stepsPerEpoch, seed: 0 }) as unknown as StepContext;
  const reg = hardSvbRegularizer();
  assert.deepEqual(reg.options, { eps: 0.5, every: "epoch", sweeps: 12 });
  reg.afterStep!(ctx(0));
  reg.afterStep!(ctx(1));
  assertClose(await p.value.read(), w, { rtol: 0, atol: 0, what: "steps 0, 1: untouched" });
  reg.afterStep!(ctx(2));
  const s = singularValuesRef(await p.value.read(), 4, 6);
  assert.ok(s[0] <= HI * (1 + 2e-5) && s[3] >= LO * (1 - 2e-5), `σ ${s}`);
  const every2 = hardSvbRegularizer({ eps: 0.05, every: 2 });
  rt.write(p.value, w);
  every2.afterStep!(ctx(0));
  assertClose(await p.value.read(), w, { rtol: 0, atol: 0 });
  every2.afterStep!(ctx(1));
  const s2 = singularValuesRef(await p.value.read(), 4, 6);
  assert.ok(s2[0] <= 1.05 * (1 + 2e-5) && s2[3] >= (1 - 2e-5) / 1.05, `σ ${s2}`);
  assert.throws(() => hardSvbRegularizer({ every: 0 }), /every must be/);
  const mn = maxNormRegularizer({ c: 0.5 });
  mn.afterStep!(ctx(0));
  assertClose(await p.value.read(), maxNormRef(await p.value.read(), 4, 6, 0.5), { rtol: 1e-6 });
  free([p]);
});
