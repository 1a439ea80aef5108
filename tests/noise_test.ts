import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import type { Param } from "../src/layers/layer.ts";
import {
  gaussianInputNoise,
  inputNoiseRegularizer,
  perturbWeights,
  weightNoiseRegularizer,
} from "../src/regularizers/noise.ts";
import { labelSmoothingOf, labelSmoothingRegularizer } from "../src/regularizers/smoothing.ts";
import type { StepContext } from "../src/hooks/step.ts";
import { streamKey } from "../src/regularizers/_params.ts";
import { randomNormalRef } from "../src/reference/random.ts";

const rt = await getBackend();

Deno.test("gaussianInputNoise() is x + σ·N(0,1) from the (seed, step) Philox stream", async () => {
  const n = 2 * 3 * 17;
  const xs = randomArray(n, 1, 0, 1);
  const x = rt.upload(xs, [2, 3, 17]);
  const y = gaussianInputNoise(rt, x, { sigma: 0.3, seed: 7, step: 5 });
  const e = randomNormalRef(n, streamKey(7, "input-noise"), 5, 0, 0.3);
  assertClose(await y.read(), xs.map((v, i) => v + e[i]), { rtol: 1e-5, atol: 1e-6 });
  assert.deepEqual(await x.read(), xs, "input untouched");
  const y6 = gaussianInputNoise(rt, x, { sigma: 0.3, seed: 7, step: 6 });
  const a = await y.read(), b = await y6.read();
  assert.ok(a.some((v, i) => v !== b[i]), "fresh noise each step");
  const c = gaussianInputNoise(rt, x, { sigma: 0.3, seed: 7, step: 5, clip: true, out: y6 });
  const got = await c.read();
  assert.ok(got.every((v) => v >= 0 && v <= 1));
  assertClose(got, a.map((v) => Math.min(1, Math.max(0, v))), { rtol: 0, atol: 0 });
  for (const t of [x, y, y6]) t.dispose();
});

Deno.test("gaussianInputNoise() has the asked-for standard deviation", async () => {
  const n = 1 << 16;
  const x = rt.zeros([n]);
  const y = gaussianInputNoise(rt, x, { sigma: 0.25, seed: 3, step: 0 });
  const v = await y.read() as Float32Array;
  const mean = v.reduce((s, t) => s + t, 0) / n;
  const sd = Math.sqrt(v.reduce((s, t) => s + (t - mean) ** 2, 0) / n);
  assert.ok(Math.abs(mean) < 0.005 && Math.abs(sd - 0.25) < 0.005, `mean ${mean}, sd ${sd}`);
  x.dispose();
  y.dispose();
});

function params(): (Param & { w: Float32Array })[] {
  const mk = (name: string, shape: number[], kind: Param["kind"], seed: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const w = randomArray(n, seed);
    return { name, kind, value: rt.upload(w, shape), grad: rt.zeros(shape), w };
  };
  return [
    mk("fc1.weight", [5, 7], "weight", 1),
    mk("fc1.bias", [5], "bias", 2),
    mk("conv.weight", [3, 2, 3, 3], "weight", 3),
  ];
}

Deno.test("perturbWeights() adds per-parameter noise and restore() brings back the clean weights", async () => {
  const ps = params();
  const stash = perturbWeights(rt, ps, { sigma: 0.1, seed: 9, step: 4 });
  for (const p of [ps[0], ps[2]]) {
    const e = randomNormalRef(p.w.length, streamKey(9, `weight-noise:${p.name}`), 4, 0, 0.1);
    assertClose(await p.value.read(), p.w.map((v, i) => v + e[i]), { rtol: 1e-5, atol: 1e-6 });
  }
  assert.deepEqual(await ps[1].value.read(), ps[1].w, "bias untouched by default");
  stash.restore();
  for (const p of ps) assert.deepEqual(await p.value.read(), p.w);
  stash.dispose();
  for (const p of ps) {
    p.value.dispose();
    p.grad!.dispose();
  }
});

Deno.test("weightNoiseRegularizer() perturbs in beforeForward and restores in beforeStep", async () => {
  const ps = params();
  const reg = weightNoiseRegularizer({ sigma: 0.05, biases: true });
  assert.deepEqual(reg.options, { sigma: 0.05, biases: true, norms: false });
  const ctx = (step: number) => ({ rt, params: ps, step, seed: 11 }) as unknown as StepContext;
  reg.beforeForward!(ctx(0));
  const noisy0 = await ps[1].value.read();
  assert.ok(noisy0.some((v, i) => v !== ps[1].w[i]), "bias perturbed with biases=true");
  reg.beforeStep!(ctx(0));
  for (const p of ps) assert.deepEqual(await p.value.read(), p.w, `${p.name} clean after step`);
  reg.beforeForward!(ctx(1));
  const noisy1 = await ps[1].value.read();
  assert.ok(noisy1.some((v, i) => v !== noisy0[i]), "fresh noise each step");
  reg.dispose!(); // restores
  for (const p of ps) assert.deepEqual(await p.value.read(), p.w);
  for (const p of ps) {
    p.value.dispose();
    p.grad!.dispose();
  }
});

Deno.test("inputNoiseRegularizer() transforms the batch and keeps the input", async () => {
  const xs = randomArray(4 * 6, 5, 0, 1);
  const x = rt.upload(xs, [4, 6]);
  const reg = inputNoiseRegularizer({ sigma: 0.2, clip: true });
  assert.deepEqual(reg.options, { sigma: 0.2, clip: true });
  const ctx = { rt, x, step: 2, seed: 1 } as unknown as StepContext;
  const y = reg.transformInput!(ctx, x);
  assert.notEqual(y, x);
  const e = randomNormalRef(24, streamKey(1, "input-noise"), 2, 0, 0.2);
  assertClose(await y.read(), xs.map((v, i) => Math.min(1, Math.max(0, v + e[i]))), {
    rtol: 1e-5,
    atol: 1e-6,
  });
  reg.dispose!();
  x.dispose();
});

Deno.test("labelSmoothingRegularizer() carries ε for train; labelSmoothingOf() finds it", () => {
  const ls = labelSmoothingRegularizer({ eps: 0.2 });
  assert.equal(ls.labelSmoothing, 0.2);
  assert.deepEqual(ls.options, { eps: 0.2 });
  assert.equal(labelSmoothingOf([inputNoiseRegularizer(), ls]), 0.2);
  assert.equal(labelSmoothingOf([inputNoiseRegularizer()]), undefined);
  assert.throws(() => labelSmoothingOf([ls, labelSmoothingRegularizer()]), /asked for by/);
  assert.throws(() => labelSmoothingRegularizer({ eps: 1.5 }), /eps must be in \[0, 1\]/);
});
