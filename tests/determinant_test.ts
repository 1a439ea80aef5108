/**
 * Jacobian-determinant penalty (src/regularizers/determinant.ts): value and parameter gradients
 * against PyTorch 1.13 double backprop (tools/torch_jacobian.py) for square J, C > D (the 2 -> 4
 * toy problem), C < D and LeNet; against central differences of the float64 reference; the
 * regularizer hook; errors.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import {
  assertFiniteDifferenceGrads,
  buildModel,
  f64,
  initParams,
  type LayerDesc,
  lenet,
  maskInputs,
  minPoolGap,
  MLP_TANH,
  readGrads,
  refLayers,
  relErr,
  stateInputs,
  torchJacobian,
  type TorchJob,
  upload,
} from "./_jacobian_util.ts";
import {
  jacobianDeterminantPenalty,
  jacobianDeterminantRegularizer,
} from "../src/regularizers/determinant.ts";
import { determinantPenaltyRef } from "../src/reference/jacobian.ts";
import type { StepContext } from "../src/hooks/step.ts";

const SQUARE: LayerDesc[] = [
  { type: "linear", name: "fc1", in: 3, out: 6 },
  { type: "softplus" },
  { type: "linear", name: "fc2", in: 6, out: 3 },
];

const WIDE: LayerDesc[] = [
  { type: "linear", name: "fc1", in: 5, out: 6 },
  { type: "sigmoid" },
  { type: "linear", name: "fc2", in: 6, out: 6 },
  { type: "tanh" },
  { type: "linear", name: "fc3", in: 6, out: 3 },
];

interface Case {
  name: string;
  desc: LayerDesc[];
  x: number[];
  train: boolean;
  gain: number;
  tol: number;
}

const CASES: Case[] = [
  { name: "toy MLP 2->4 (J^T J)", desc: MLP_TANH, x: [6, 2], train: false, gain: 1.5, tol: 1e-4 },
  { name: "square 3->3 (det J)", desc: SQUARE, x: [5, 3], train: false, gain: 1.5, tol: 1e-4 },
  { name: "5->3 (J J^T)", desc: WIDE, x: [4, 5], train: false, gain: 2, tol: 1e-4 },
  // 10x10 Gram matrices of 10 x 784 Jacobians.
  {
    name: "LeNet-tanh (dropout)",
    desc: lenet("tanh", 0.5),
    x: [2, 1, 28, 28],
    train: true,
    gain: 1,
    tol: 1e-4,
  },
];

Deno.test("jacobianDeterminantPenalty() matches PyTorch double backprop", async () => {
  const rt = await getBackend();
  const jobs: TorchJob[] = [];
  const got: { value: number; perSample: Float32Array; grads: Map<string, Float32Array> }[] = [];
  const lambda = 0.3;
  for (const [ci, c] of CASES.entries()) {
    const model = buildModel(rt, c.desc);
    initParams(rt, model, 500 + ci, c.gain);
    if (c.train) model.train();
    else model.eval();
    model.setCounter(ci);
    const xd = randomArray(c.x.reduce((p, q) => p * q, 1), 600 + ci, 0, 1);
    const x = upload(rt, xd, c.x);
    assert.ok((await minPoolGap(model, x)) > 1e-6, `${c.name}: max-pool near-tie`);
    model.zeroGrad();
    const r = jacobianDeterminantPenalty(rt, model, x, { lambda });
    got.push({
      value: (await r.value.read())[0],
      perSample: (await r.perSample.read()) as Float32Array,
      grads: await readGrads(model),
    });
    jobs.push({
      spec: {
        op: "determinant",
        model: { layers: c.desc },
        lambda,
        mode: c.train ? "train" : "eval",
      },
      inputs: { ...(await stateInputs(model)), ...(await maskInputs(model)), x: f64(c.x, xd) },
    });
    r.dispose();
    x.dispose();
    model.dispose();
  }
  const want = await torchJacobian(jobs);
  for (const [i, c] of CASES.entries()) {
    const g = got[i], w = want[i];
    let worst = relErr([g.value], w.value.data), worstName = "value";
    assert.ok(worst < c.tol, `${c.name}: value ${g.value} vs ${w.value.data[0]}`);
    const e = relErr(g.perSample, w.per_sample.data);
    assert.ok(e < c.tol, `${c.name}: per-sample error ${e}`);
    for (const [name, grad] of g.grads) {
      const e = relErr(grad, w[`grad.${name}`].data);
      if (e > worst) [worst, worstName] = [e, name];
      assert.ok(e < c.tol, `${c.name}: ${name} relative error ${e.toExponential(2)}`);
    }
    console.log(`${c.name}: max rel err ${worst.toExponential(2)} (${worstName})`);
  }
});

Deno.test("jacobianDeterminantPenalty() gradient matches central differences (float64)", async () => {
  const rt = await getBackend();
  for (const [k, desc] of [SQUARE, MLP_TANH].entries()) {
    const model = buildModel(rt, desc);
    initParams(rt, model, 50 + k, 1.5);
    const d = desc[0].in as number, b = 3, lambda = 0.5;
    const xd = randomArray(b * d, 60 + k);
    const x = upload(rt, xd, [b, d]);
    model.zeroGrad();
    const r = jacobianDeterminantPenalty(rt, model, x, { lambda });
    const value = (await r.value.read())[0];
    const grads = await readGrads(model);
    const ref = await refLayers(model, desc);
    const f = () => determinantPenaltyRef(ref, xd, b, lambda).value;
    assert.ok(relErr([value], [f()]) < 1e-5, `value ${value} vs ${f()}`);
    assertFiniteDifferenceGrads(ref, desc, grads, f);
    r.dispose();
    x.dispose();
    model.dispose();
  }
});

Deno.test("jacobianDeterminantRegularizer() afterBackward matches the pure function", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, MLP_TANH);
  initParams(rt, model, 71, 1.5);
  const x = upload(rt, randomArray(8, 72), [4, 2]);
  const y = rt.upload(new Int32Array([0, 1, 2, 3]), [4], "i32");
  model.zeroGrad();
  const want = jacobianDeterminantPenalty(rt, model, x, { lambda: 0.2 });
  const wantValue = (await want.value.read())[0];
  const wantGrads = await readGrads(model);
  const reg = jacobianDeterminantRegularizer({ lambda: 0.2 });
  model.zeroGrad();
  model.forward(x);
  const ctx: StepContext = {
    rt,
    model,
    params: model.params(),
    x,
    y,
    step: 0,
    epoch: 0,
    stepsPerEpoch: 1,
    seed: 0,
  };
  const value = (await reg.afterBackward!(ctx)!.read())[0];
  assert.equal(value, wantValue);
  for (const [k, g] of await readGrads(model)) assert.deepEqual(g, wantGrads.get(k), k);
  reg.dispose!();
  want.dispose();
  x.dispose();
  y.dispose();
  model.dispose();
});

Deno.test("jacobianDeterminantPenalty() refuses min(C, D) > 16", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, [{ type: "linear", name: "fc", in: 20, out: 17 }]);
  const x = rt.zeros([2, 20]);
  assert.throws(() => jacobianDeterminantPenalty(rt, model, x), /must be at most 16/);
  x.dispose();
  model.dispose();
});
