/**
 * The penalties on the function through ResNet's BasicBlock (a branch point in the chain of
 * src/regularizers/_chain.ts): Jacobian, Jacobian determinant and input-gradient norm, value
 * and every parameter gradient against PyTorch 1.13 double backprop (tools/torch_jacobian.py) on
 * a small ResNet-like model of two blocks (one with the projection shortcut), BatchNorm in eval
 * mode (training mode: tests/jacobian_batchnorm_test.ts); and a short training run of ResNet-18
 * with the Jacobian penalty in both modes.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import {
  buildModel,
  f64,
  initParams,
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

Deno.test("train() runs ResNet-18 two steps with the Jacobian regularizer in training and eval mode", async () => {
  const rt = await getBackend();
  // Batches of 4: in training mode layer4's BatchNorms (1x1 maps) normalize 4 values per
  // channel; with 2 the Jacobian is ~1e10 (PyTorch's too: x̂ = ±1 nearly, P ∝ eps) and the step
  // diverges.
  const n = 8;
  const data = {
    name: "random",
    x: randomArray(n * 3 * 8 * 8, 5, 0, 1),
    y: Int32Array.from([1, 7, 3, 0, 2, 9, 4, 4]),
    sampleShape: [3, 8, 8],
    classes: 10,
    length: n,
  };
  for (const trainMode of [true, false]) {
    // 8x8 inputs: the smallest ResNet-18 accepts (three stride-2 stages, then a 1x1 pool).
    const model = buildSpecModel(rt, modelSpecFromName("resnet18", { inputSize: 8 }), { seed: 3 });
    const find = (name: string) => model.params().find((p) => p.name === name)!;
    const watched = find("layer4.1.conv2.weight"), mean = find("layer4.1.bn2.running_mean");
    const before = await watched.value.read(), meanBefore = await mean.value.read();
    const reg = jacobianRegularizer({ lambda: 0.01, nproj: 1 });
    const result = await train(model, { train: data }, {
      epochs: 1,
      batchSize: 4,
      lr: 0.01,
      optimizer: { algorithm: "sgd" as const, momentum: 0.9 },
      regularizers: [reg],
      trainMode,
    });
    const rec = result.history.at(-1)!;
    const what = trainMode ? "training mode" : "eval mode";
    assert.equal(rec.steps, 2);
    assert.ok(Number.isFinite(rec.trainLoss), `${what}: loss ${rec.trainLoss}`);
    const jr = rec.penalties.jacobian;
    assert.ok(Number.isFinite(jr) && jr > 0, `${what}: penalty ${jr}`);
    const after = await watched.value.read();
    assert.ok(after.some((q, i) => q !== before[i]), `${what}: layer4.1.conv2 moved`);
    // Training mode: the batch statistics, updated once per step; eval mode: untouched.
    const meanAfter = await mean.value.read();
    assert.equal(meanAfter.some((q, i) => q !== meanBefore[i]), trainMode, `${what}: running mean`);
    const tracked = (await find("layer4.1.bn2.num_batches_tracked").value.read())[0];
    assert.equal(tracked, trainMode ? 2 : 0, `${what}: num_batches_tracked`);
    reg.dispose?.();
    model.dispose();
  }
});
