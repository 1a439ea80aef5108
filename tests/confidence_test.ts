/**
 * Confidence penalty (src/regularizers/confidence.ts): the logit gradient against the float64
 * reference (plain and hinged, extreme logits), the parameter gradients through a model against
 * PyTorch 1.13 autograd (tools/torch_jacobian.py), the sign (it rewards entropy), and the
 * regularizer hook.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import {
  buildModel,
  f64,
  initParams,
  lenet,
  MLP_TANH,
  readGrads,
  relErr,
  stateInputs,
  torchJacobian,
  type TorchJob,
  upload,
} from "./_jacobian_util.ts";
import { confidencePenalty, confidencePenaltyRegularizer } from "../src/regularizers/confidence.ts";
import { confidencePenaltyRef } from "../src/reference/jacobian.ts";
import type { StepContext } from "../src/hooks/step.ts";

Deno.test("confidencePenalty() value and logit gradient match the float64 reference", async () => {
  const rt = await getBackend();
  for (const [b, c] of [[1, 1], [3, 2], [17, 10], [5, 100]]) {
    const zd = randomArray(b * c, b + c, -4, 4);
    zd[0] = 60; // a near one-hot row: H ≈ 0, p·log p with p underflowing
    const z = upload(rt, zd, [b, c]);
    for (const hinge of [undefined, 0.5, 1e9]) {
      const base = randomArray(b * c, 7);
      const dz = upload(rt, base, [b, c]);
      const r = confidencePenalty(rt, z, { beta: 0.3, hinge, dLogits: dz });
      const want = confidencePenaltyRef(zd, b, 0.3, hinge ?? null);
      const what = `B=${b} C=${c} hinge=${hinge}`;
      assertClose(await r.value.read(), [want.value], { atol: 1e-6, rtol: 1e-5, what });
      assertClose(await r.perSample.read(), want.perSample, { atol: 1e-6, rtol: 1e-5, what });
      const grad = Array.from(await dz.read() as Float32Array, (q, i) => q - base[i]);
      assertClose(grad, want.dLogits, { atol: 1e-7, rtol: 1e-4, what: `${what} dLogits` });
      r.dispose();
      dz.dispose();
    }
    z.dispose();
  }
});

Deno.test("confidencePenalty() rewards entropy (the seed had the sign wrong)", async () => {
  const rt = await getBackend();
  const zd = randomArray(40, 3, -3, 3);
  const z = upload(rt, zd, [4, 10]);
  const dz = rt.zeros([4, 10]);
  const r = confidencePenalty(rt, z, { beta: 1, dLogits: dz });
  const v0 = (await r.value.read())[0];
  assert.ok(v0 < 0, `−βH must be negative, got ${v0}`);
  // A small step against the gradient lowers the penalty, i.e. raises the entropy.
  const g = await dz.read();
  const z1 = upload(rt, Array.from(zd, (q, i) => q - 0.1 * g[i]), [4, 10]);
  const r1 = confidencePenalty(rt, z1, { beta: 1 });
  assert.ok((await r1.value.read())[0] < v0);
  for (const t of [z, z1, dz]) t.dispose();
  r.dispose();
  r1.dispose();
});

Deno.test("confidencePenalty() parameter gradients match PyTorch through LeNet and an MLP", async () => {
  const rt = await getBackend();
  const cases = [
    { desc: MLP_TANH, x: [6, 2], beta: 0.5, gamma: undefined },
    { desc: MLP_TANH, x: [6, 2], beta: 0.5, gamma: 1.2 },
    { desc: lenet("tanh", null), x: [2, 1, 28, 28], beta: 0.2, gamma: undefined },
  ];
  const jobs: TorchJob[] = [];
  const got: { value: number; grads: Map<string, Float32Array> }[] = [];
  for (const [ci, c] of cases.entries()) {
    const model = buildModel(rt, c.desc);
    initParams(rt, model, 900 + ci, 3);
    model.eval();
    const xd = randomArray(c.x.reduce((p, q) => p * q, 1), 910 + ci, 0, 1);
    const x = upload(rt, xd, c.x);
    const logits = model.forward(x);
    const dz = rt.zeros(logits.shape);
    const r = confidencePenalty(rt, logits, { beta: c.beta, hinge: c.gamma, dLogits: dz });
    model.zeroGrad();
    model.backward(dz);
    got.push({ value: (await r.value.read())[0], grads: await readGrads(model) });
    jobs.push({
      spec: { op: "confidence", model: { layers: c.desc }, beta: c.beta, gamma: c.gamma ?? null },
      inputs: { ...(await stateInputs(model)), x: f64(c.x, xd) },
    });
    r.dispose();
    dz.dispose();
    x.dispose();
    model.dispose();
  }
  const want = await torchJacobian(jobs);
  for (const [i, c] of cases.entries()) {
    let worst = relErr([got[i].value], want[i].value.data);
    assert.ok(worst < 1e-5, `case ${i}: value ${got[i].value} vs ${want[i].value.data[0]}`);
    for (const [name, g] of got[i].grads) {
      const e = relErr(g, want[i][`grad.${name}`].data);
      worst = Math.max(worst, e);
      assert.ok(e < 1e-4, `case ${i}: ${name} relative error ${e.toExponential(2)}`);
    }
    console.log(`case ${i} (gamma ${c.gamma}): max rel err ${worst.toExponential(2)}`);
  }
});

Deno.test("confidencePenaltyRegularizer() logitsGrad adds into dLogits and returns the value", async () => {
  const rt = await getBackend();
  const zd = randomArray(30, 5, -2, 2);
  const z = upload(rt, zd, [3, 10]);
  const dz = rt.zeros([3, 10]);
  const reg = confidencePenaltyRegularizer({ beta: 0.25, hinge: 2 });
  assert.equal(reg.name, "confidence");
  assert.deepEqual(reg.options, { beta: 0.25, hinge: 2 });
  const ctx = { rt } as unknown as StepContext;
  const value = reg.logitsGrad!(ctx, z, dz)!;
  const want = confidencePenaltyRef(zd, 3, 0.25, 2);
  assertClose(await value.read(), [want.value], { atol: 1e-6, rtol: 1e-5 });
  assertClose(await dz.read(), want.dLogits, { atol: 1e-7, rtol: 1e-4 });
  assert.throws(() => confidencePenaltyRegularizer({ beta: -1 }), /beta must be/);
  assert.throws(() => reg.logitsGrad!(ctx, z, rt.zeros([2, 10])), /must match logits/);
  reg.dispose!();
  z.dispose();
  dz.dispose();
});
