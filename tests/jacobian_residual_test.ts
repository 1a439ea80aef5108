/**
 * The penalties on the function through ResNet's BasicBlock (a branch point in the chain of
 * src/regularizers/_chain.ts): Jacobian, Jacobian determinant and input-gradient norm, value
 * and every parameter gradient against PyTorch 1.13 double backprop (tools/torch_jacobian.py) on
 * a small ResNet-like model of two blocks (one with the projection shortcut), BatchNorm in eval
 * mode; and a short training run of ResNet-18 with the Jacobian penalty.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import {
  buildModel,
  f64,
  initParams,
  type LayerDesc,
  readGrads,
  relErr,
  stateInputs,
  TINY_RESNET,
  torchJacobian,
  type TorchJob,
  upload,
} from "./_jacobian_util.ts";
import { jacobianPenalty, jacobianRegularizer } from "../src/regularizers/jacobian.ts";
import { jacobianDeterminantPenalty } from "../src/regularizers/determinant.ts";
import { gradientNormPenalty } from "../src/regularizers/gradient_norm.ts";
import type { PenaltyResult } from "../src/regularizers/_engine.ts";
import { buildModel as buildSpecModel } from "../src/models/model.ts";
import { modelSpecFromName } from "../src/models/spec.ts";
import { train } from "../src/train/train.ts";

type Op = "jacobian" | "determinant" | "gradient_norm";

Deno.test("Jacobian, determinant and gradient-norm penalties through BasicBlock match PyTorch double backprop", async () => {
  const rt = await getBackend();
  const shape = [3, 2, 6, 6];
  const b = shape[0], classes = 3, nproj = 2, lambda = 0.6;
  const ops: Op[] = ["jacobian", "determinant", "gradient_norm"];
  const jobs: TorchJob[] = [];
  const got: { value: number; perSample: Float32Array; grads: Map<string, Float32Array> }[] = [];
  for (const [i, op] of ops.entries()) {
    const model = buildModel(rt, TINY_RESNET);
    initParams(rt, model, 900 + i, 1.5);
    model.eval();
    const xd = randomArray(shape.reduce((p, q) => p * q, 1), 910 + i, 0, 1);
    const x = upload(rt, xd, shape);
    const vd = randomArray(nproj * b * classes, 920 + i);
    const v = upload(rt, vd, [nproj, b, classes]);
    const yd = Array.from({ length: b }, (_, k) => (2 * k + i) % classes);
    const y = rt.upload(new Int32Array(yd), [b], "i32");
    model.zeroGrad();
    let r: PenaltyResult;
    const extra: Record<string, ReturnType<typeof f64>> = {};
    if (op === "jacobian") {
      r = jacobianPenalty(rt, model, x, { v, lambda });
      extra.v = f64([nproj, b, classes], vd);
    } else if (op === "determinant") {
      r = jacobianDeterminantPenalty(rt, model, x, { lambda });
    } else {
      r = gradientNormPenalty(rt, model, x, y, { lambda });
      extra.y = { dtype: "I64", shape: [b], data: BigInt64Array.from(yd.map(BigInt)) };
    }
    got.push({
      value: (await r.value.read())[0],
      perSample: (await r.perSample.read()) as Float32Array,
      grads: await readGrads(model),
    });
    jobs.push({
      spec: { op, model: { layers: TINY_RESNET }, lambda, mode: "eval" },
      inputs: { ...(await stateInputs(model)), x: f64(shape, xd), ...extra },
    });
    r.dispose();
    for (const t of [x, v, y]) t.dispose();
    model.dispose();
  }
  const want = await torchJacobian(jobs);
  for (const [i, op] of ops.entries()) {
    const g = got[i], w = want[i];
    assert.ok(relErr([g.value], w.value.data) < 1e-5, `${op}: value ${g.value} vs ${w.value.data}`);
    assert.ok(relErr(g.perSample, w.per_sample.data) < 1e-4, `${op}: per-sample values`);
    let worst = 0, worstName = "";
    for (const [name, grad] of g.grads) {
      const e = relErr(grad, w[`grad.${name}`].data);
      if (e > worst) [worst, worstName] = [e, name];
      assert.ok(e < 1e-4, `${op}: ${name} relative error ${e.toExponential(2)}`);
    }
    // Every block parameter takes part (a gradient of zero would hide a skipped branch).
    for (const name of ["layer1.0.conv2.weight", "layer2.0.downsample.0.weight", "bn1.weight"]) {
      assert.ok(g.grads.get(name)!.some((q) => q !== 0), `${op}: ${name} gradient is zero`);
    }
    console.log(`${op}: max rel err ${worst.toExponential(2)} (${worstName})`);
  }
});

Deno.test("train() runs ResNet-18 two steps with the Jacobian regularizer in eval mode", async () => {
  const rt = await getBackend();
  // 8x8 inputs: the smallest ResNet-18 accepts (three stride-2 stages, then a 1x1 pool).
  const model = buildSpecModel(rt, modelSpecFromName("resnet18", { inputSize: 8 }), { seed: 3 });
  const n = 4;
  const data = {
    name: "random",
    x: randomArray(n * 3 * 8 * 8, 5, 0, 1),
    y: Int32Array.from([1, 7, 3, 0]),
    sampleShape: [3, 8, 8],
    classes: 10,
    length: n,
  };
  const watched = model.params().find((p) => p.name === "layer4.1.conv2.weight")!;
  const before = await watched.value.read();
  const options = {
    epochs: 1,
    batchSize: 2,
    lr: 0.01,
    optimizer: { algorithm: "sgd" as const, momentum: 0.9 },
    regularizers: [jacobianRegularizer({ lambda: 0.1, nproj: 1 })],
  };
  // In training mode BatchNorm couples the batch, and the penalty refuses it, naming it.
  await assert.rejects(
    () => train(model, { train: data }, options),
    /BatchNorm 'bn1' is in training mode/,
  );
  const result = await train(model, { train: data }, { ...options, trainMode: false });
  const rec = result.history.at(-1)!;
  assert.equal(rec.steps, 2);
  assert.ok(Number.isFinite(rec.trainLoss), `loss ${rec.trainLoss}`);
  const jr = rec.penalties.jacobian;
  assert.ok(Number.isFinite(jr) && jr > 0, `penalty ${jr}`);
  const after = await watched.value.read();
  assert.ok(after.some((q, i) => q !== before[i]), "layer4.1.conv2 moved");
  options.regularizers[0].dispose?.();
  model.dispose();
});
