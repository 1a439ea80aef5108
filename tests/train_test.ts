/**
 * The training loop on a tiny problem: loss falls, history is complete, regularizer hooks run
 * in the documented order with their values summed on the GPU, the best weights come back,
 * runs are reproducible and follow PyTorch's SGD step for step, and bad inputs fail with clear
 * errors.
 */
import { assert, getBackend } from "./_util.ts";
import { tinyMlp, toyCircle, toyHalfplane } from "./_train_util.ts";
import { evaluate, train } from "../src/train/train.ts";
import type { Regularizer } from "../src/hooks/step.ts";
import { fill } from "../src/ops/elementwise.ts";
import { Batches } from "../src/data/batches.ts";
import { toy2d } from "../src/data/toy.ts";
import { buildModel, modelSpecFromName } from "../src/models/mod.ts";
import { f64, i32, paramInputs, relErr, torchBridge } from "./_model_bridge.ts";

Deno.test("train() reduces the loss of an MLP on a toy problem and records history", async () => {
  const rt = await getBackend();
  const model = tinyMlp(rt);
  const data = { train: toyHalfplane(512, 1), val: toyHalfplane(256, 2) };
  const before = await evaluate(model, data.val);
  const submits0 = rt.submits;
  const progress: number[] = [];
  const r = await train(model, data, {
    epochs: 6,
    batchSize: 32,
    lr: 0.3,
    optimizer: { algorithm: "sgd", momentum: 0.9 },
    schedule: "step",
    seed: 3,
    logEvery: 8,
    onProgress: (p) => progress.push(p.globalStep),
  });
  const after = await evaluate(model, data.val, { perClass: true });
  assert.equal(r.history.length, 6);
  assert.equal(r.steps, 6 * 16);
  assert.ok(after.loss < 0.6 * before.loss, `val loss ${before.loss} -> ${after.loss}`);
  assert.ok(after.accuracy > 0.85, `val accuracy ${after.accuracy}`);
  assert.ok(r.history[5].trainLoss < r.history[0].trainLoss);
  for (const h of r.history) {
    for (
      const k of ["trainLoss", "trainAccuracy", "valLoss", "valAccuracy", "paramNorm", "gradNorm"]
    ) {
      const v = (h as unknown as Record<string, number>)[k];
      assert.ok(Number.isFinite(v) && v >= 0, `epoch ${h.epoch} ${k} = ${v}`);
    }
    assert.ok(h.samplesPerSecond > 0 && h.seconds > 0 && h.steps === 16);
  }
  // Hoffman's step schedule: lr/10 after 1/3, lr/100 after 2/3 of the steps.
  assert.deepEqual(r.history.map((h) => +h.lr.toPrecision(3)), [0.3, 0.3, 0.03, 0.03, 3e-3, 3e-3]);
  assert.ok(Math.abs(r.history[5].valLoss! - after.loss) < 1e-5);
  assert.equal(after.perClassAccuracy!.length, 2);
  assert.equal(after.predictions!.length, 256);
  // One submit per step plus a few per epoch (validation batches, sums, best copy).
  const perEpoch = (rt.submits - submits0 - 2) / 6 - 16;
  assert.ok(perEpoch < 8, `${perEpoch} extra submits per epoch`);
  assert.ok(progress.includes(8) && progress.includes(96), `progress at ${progress}`);
  model.dispose();
});

Deno.test("train() calls regularizer hooks in order and sums their penalties on the GPU", async () => {
  const rt = await getBackend();
  const model = tinyMlp(rt);
  const calls: string[] = [];
  const value = rt.zeros([1], "f32");
  fill(rt, value, 0.25);
  const reg: Regularizer = {
    name: "probe",
    options: {},
    transformInput(ctx, x) {
      calls.push(`transformInput ${ctx.step}`);
      assert.equal(ctx.stepsPerEpoch, 4);
      return x;
    },
    beforeForward: () => void calls.push("beforeForward"),
    logitsGrad(_ctx, logits, dLogits) {
      calls.push("logitsGrad");
      assert.deepEqual(logits.shape, dLogits.shape);
      return value;
    },
    afterBackward: () => (calls.push("afterBackward"), null),
    beforeStep: () => void calls.push("beforeStep"),
    afterStep: () => void calls.push("afterStep"),
  };
  const r = await train(model, { train: toyCircle(64) }, {
    epochs: 2,
    batchSize: 16,
    regularizers: [reg],
  });
  assert.deepEqual(calls.slice(0, 6), [
    "transformInput 0",
    "beforeForward",
    "logitsGrad",
    "afterBackward",
    "beforeStep",
    "afterStep",
  ]);
  assert.equal(calls.length, 6 * 8);
  assert.ok(Math.abs(r.history[1].penalties.probe - 0.25) < 1e-6);
  assert.equal(r.history[0].valLoss, undefined);
  value.dispose();
  model.dispose();
});

Deno.test("train() stops early and restores the best weights", async () => {
  const rt = await getBackend();
  const model = tinyMlp(rt);
  // Validation labels are the flipped training labels: validation loss rises as training fits.
  const tr = toyCircle(128, 1);
  const val = { ...tr, y: tr.y.map((c) => 1 - c) };
  const r = await train(model, { train: tr, val }, {
    epochs: 30,
    batchSize: 32,
    lr: 0.1,
    earlyStopping: { kind: "gl", alpha: 5 },
  });
  assert.ok(r.history.length < 30, `ran ${r.history.length} epochs`);
  assert.match(r.stopReason!, /^GL_5: generalization loss/);
  assert.ok(r.restoredBest);
  const best = r.history[r.bestEpoch - 1].valLoss!;
  const now = await evaluate(model, val);
  assert.ok(Math.abs(now.loss - best) < 1e-5, `restored ${now.loss}, best ${best}`);
  model.dispose();
});

Deno.test("train() rejects data that does not fit and bad options", async () => {
  const rt = await getBackend();
  const model = tinyMlp(rt);
  const bad = { ...toyCircle(8), sampleShape: [3], x: new Float32Array(24) };
  await assert.rejects(
    () => train(model, { train: bad }, { epochs: 1 }),
    /does not take training samples of shape \[3\]/,
  );
  const three = { ...toyCircle(8), classes: 3 };
  await assert.rejects(
    () => train(model, { train: three }, { epochs: 1 }),
    /outputs \[1,2\] for one sample, but the training set has 3 classes/,
  );
  const label = toyCircle(8);
  label.y[5] = 9;
  await assert.rejects(
    () => train(model, { train: label }, { epochs: 1 }),
    /label 9 of sample 5 is outside \[0, 2\)/,
  );
  await assert.rejects(
    () =>
      train(model, { train: toyCircle(8) }, {
        epochs: 1,
        earlyStopping: { kind: "up", strips: 2 },
      }),
    /early stopping needs a validation set/,
  );
  await assert.rejects(
    () => train(model, { train: toyCircle(8) }, { epochs: 0 }),
    /epochs must be a positive integer/,
  );
  model.dispose();
});

Deno.test("train() is reproducible from the seed", async () => {
  const rt = await getBackend();
  const run = async (seed: number) => {
    const model = tinyMlp(rt);
    const r = await train(model, { train: toyHalfplane(96, 1) }, {
      epochs: 2,
      batchSize: 16,
      seed,
    });
    const w = await model.params()[0].value.read();
    model.dispose();
    return { losses: r.history.map((h) => h.trainLoss), w };
  };
  const a = await run(5), b = await run(5), c = await run(6);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.losses, c.losses);
});

Deno.test("train() follows PyTorch's SGD step for step (order, momentum, weight decay)", async () => {
  const rt = await getBackend();
  const ds = toy2d({ seed: 3 }); // 512 samples, 4 classes
  const model = buildModel(rt, modelSpecFromName("mlp", { hidden: [16] }), { seed: 2 });
  const init = await paramInputs(model.params());
  const B = 32, epochs = 2, seed = 9, lr = 0.1, momentum = 0.9, weightDecay = 1e-3;
  const r = await train(model, { train: ds }, {
    epochs,
    batchSize: B,
    lr,
    seed,
    optimizer: { algorithm: "sgd", momentum, weightDecay },
  });
  // The batches train() saw: the loader's order of each epoch, replayed for PyTorch.
  const loader = new Batches(rt, ds, { batchSize: B, seed });
  const xs: number[] = [], ys: number[] = [];
  for (let e = 0; e < epochs; e++) {
    for (const i of loader.order(e)) {
      xs.push(ds.x[2 * i], ds.x[2 * i + 1]);
      ys.push(ds.y[i]);
    }
  }
  loader.dispose();
  const S = xs.length / (2 * B);
  const [t] = await torchBridge([{
    spec: {
      op: "train_sgd",
      model: model.spec,
      dtype: "float32",
      lr,
      momentum,
      weight_decay: weightDecay,
    },
    inputs: { ...init, x: f64([S, B, 2], xs), y: i32([S, B], ys) },
  }]);
  const per = S / epochs;
  for (let e = 0; e < epochs; e++) {
    const mean = t.losses.data.slice(e * per, (e + 1) * per).reduce((a, b) => a + b, 0) / per;
    assert.ok(
      Math.abs(r.history[e].trainLoss - mean) <= 1e-4 * mean,
      `epoch ${e + 1}: train loss ${r.history[e].trainLoss}, PyTorch ${mean}`,
    );
  }
  for (const p of model.params()) {
    const err = relErr(await p.value.read(), t[`state.${p.name}`].data);
    assert.ok(err < 1e-4, `${p.name}: relative error ${err}`);
  }
  model.dispose();
});
