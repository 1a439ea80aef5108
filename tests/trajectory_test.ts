/**
 * Per-layer trajectories of train(): ‖θ_t‖, ‖∇θ_t‖ and ‖θ_t − θ_0‖ as recorded in the history
 * equal a float64 recomputation from the weights and gradients read back at every step, the
 * sampling (every N steps, across epochs and read-backs) keeps every sample once, and the norms
 * follow PyTorch's SGD for a few steps (tools/torch_bridge.py `train_sgd` with `trajectory`).
 */
import { assert, getBackend } from "./_util.ts";
import { tinyMlp, toyHalfplane } from "./_train_util.ts";
import { train, type TrajectoryRecord } from "../src/train/train.ts";
import type { Regularizer } from "../src/hooks/step.ts";
import type { Tensor } from "../src/backend.ts";
import { layerOf } from "../src/train/_trajectory.ts";
import { toy2d } from "../src/data/toy.ts";
import { subset } from "../src/data/dataset.ts";
import { buildModel, modelSpecFromName } from "../src/models/mod.ts";
import { f64, i32, paramInputs, torchBridge } from "./_model_bridge.ts";

/** The epochs' trajectory records joined into one. */
function joined(records: (TrajectoryRecord | undefined)[]): TrajectoryRecord {
  const out: TrajectoryRecord = { steps: [], layers: {} };
  for (const r of records) {
    if (!r) continue;
    out.steps.push(...r.steps);
    for (const [l, v] of Object.entries(r.layers)) {
      const o = out.layers[l] ??= { paramNorm: [], gradNorm: [], distance: [] };
      o.paramNorm.push(...v.paramNorm);
      o.gradNorm.push(...v.gradNorm);
      o.distance.push(...v.distance);
    }
  }
  return out;
}

function close(got: number, want: number, what: string, rtol = 2e-5, atol = 1e-7): void {
  assert.ok(
    Math.abs(got - want) <= atol + rtol * Math.abs(want),
    `${what}: got ${got}, want ${want}`,
  );
}

Deno.test("train() trajectory equals a float64 recomputation from read-back weights", async () => {
  const rt = await getBackend();
  const model = tinyMlp(rt, 2, 16, 2, 4);
  const trained = model.params().filter((p) => p.grad);
  // A hook that runs just before the trajectory sample: keeps copies of θ_t and ∇θ_t per step.
  const snaps: { value: Tensor; grad: Tensor }[][] = [];
  const spy: Regularizer = {
    name: "spy",
    options: {},
    beforeStep(ctx) {
      snaps[ctx.step] = trained.map((p) => {
        const value = rt.empty(p.value.shape, "f32"), grad = rt.empty(p.value.shape, "f32");
        rt.copy(p.value, value);
        rt.copy(p.grad!, grad);
        return { value, grad };
      });
    },
  };
  const r = await train(model, { train: toyHalfplane(96, 3) }, {
    epochs: 3,
    batchSize: 16,
    lr: 0.2,
    optimizer: { algorithm: "sgd", momentum: 0.9 },
    regularizers: [spy],
    trajectoryEvery: 1,
    logEvery: 4,
    seed: 5,
  });
  const t = joined(r.history.map((h) => h.trajectory));
  assert.deepEqual(t.steps, Array.from({ length: 18 }, (_, i) => i));
  assert.deepEqual(Object.keys(t.layers), ["fc1", "fc2"]);
  for (const h of r.history) assert.deepEqual(h.trajectory!.steps.length, 6);
  const read = async (x: Tensor) => Float64Array.from(await x.read() as Float32Array);
  const theta0 = await Promise.all(snaps[0].map((s) => read(s.value)));
  for (let step = 0; step < 18; step++) {
    const sq: Record<string, [number, number, number]> = {};
    for (let i = 0; i < trained.length; i++) {
      const v = await read(snaps[step][i].value), g = await read(snaps[step][i].grad);
      const acc = sq[layerOf(trained[i].name)] ??= [0, 0, 0];
      for (let j = 0; j < v.length; j++) {
        acc[0] += v[j] * v[j];
        acc[1] += g[j] * g[j];
        acc[2] += (v[j] - theta0[i][j]) ** 2;
      }
    }
    for (const [l, [p, g, d]] of Object.entries(sq)) {
      close(t.layers[l].paramNorm[step], Math.sqrt(p), `step ${step} ${l} ‖θ‖`);
      close(t.layers[l].gradNorm[step], Math.sqrt(g), `step ${step} ${l} ‖g‖`);
      close(t.layers[l].distance[step], Math.sqrt(d), `step ${step} ${l} ‖θ−θ0‖`, 1e-4);
    }
  }
  assert.equal(t.layers.fc1.distance[0], 0);
  assert.ok(t.layers.fc1.distance[17] > 0.01, `moved ${t.layers.fc1.distance[17]}`);
  snaps.flat().forEach((s) => (s.value.dispose(), s.grad.dispose()));
  model.dispose();
});

Deno.test("train() samples the trajectory every N steps across epochs and read-backs", async () => {
  const rt = await getBackend();
  const data = { train: toyHalfplane(100, 2) }; // 7 steps per epoch of 16
  for (const [every, logEvery] of [[3, 2], [2, 50], [5, 1]]) {
    const model = tinyMlp(rt);
    const r = await train(model, data, {
      epochs: 4,
      batchSize: 16,
      trajectoryEvery: every,
      logEvery,
    });
    const all: number[] = [];
    r.history.forEach((h, e) => {
      for (const s of h.trajectory!.steps) {
        assert.ok(s >= 7 * e && s < 7 * (e + 1), `every ${every}: step ${s} in epoch ${e + 1}`);
        all.push(s);
      }
      for (const v of Object.values(h.trajectory!.layers)) {
        assert.equal(v.paramNorm.length, h.trajectory!.steps.length);
        assert.ok(v.paramNorm.every((x) => x > 0) && v.gradNorm.every(Number.isFinite));
      }
    });
    const want = Array.from({ length: 28 }, (_, i) => i).filter((i) => i % every === 0);
    assert.deepEqual(all, want, `every ${every}, logEvery ${logEvery}`);
    model.dispose();
  }
  const model = tinyMlp(rt);
  const off = await train(model, data, { epochs: 1, batchSize: 16, trajectoryEvery: 0 });
  assert.equal(off.history[0].trajectory, undefined);
  // Default: about 200 samples per run.
  const def = await train(model, data, { epochs: 60, batchSize: 16 }); // 420 steps: every 3
  const n = def.history.reduce((a, h) => a + h.trajectory!.steps.length, 0);
  assert.equal(n, 140);
  await assert.rejects(
    () => train(model, data, { epochs: 1, trajectoryEvery: -1 }),
    /trajectoryEvery must be an integer >= 0/,
  );
  model.dispose();
});

Deno.test("train() trajectory follows PyTorch's SGD for a few steps", async () => {
  const rt = await getBackend();
  // One batch per epoch (the whole set), so the shuffle only permutes the batch's rows.
  const ds = subset(toy2d({ seed: 1 }), Array.from({ length: 64 }, (_, i) => 8 * i));
  const model = buildModel(rt, modelSpecFromName("mlp", { hidden: [12, 8] }), { seed: 3 });
  const init = await paramInputs(model.params());
  const steps = 6, lr = 0.3;
  const r = await train(model, { train: ds }, {
    epochs: steps,
    batchSize: 64,
    lr,
    optimizer: { algorithm: "sgd", momentum: 0 },
    trajectoryEvery: 1,
  });
  const t = joined(r.history.map((h) => h.trajectory));
  const [out] = await torchBridge([{
    spec: { op: "train_sgd", model: model.spec, dtype: "float64", lr, steps, trajectory: true },
    inputs: { ...init, x: f64([1, 64, 2], ds.x), y: i32([1, 64], ds.y) },
  }]);
  const torch: Record<string, number[][]> = {};
  for (const p of model.params().filter((p) => p.grad)) {
    const rows = out[`traj.${p.name}`].data;
    const acc = torch[layerOf(p.name)] ??= Array.from({ length: steps }, () => [0, 0, 0]);
    for (let s = 0; s < steps; s++) for (let q = 0; q < 3; q++) acc[s][q] += rows[3 * s + q];
  }
  assert.deepEqual(Object.keys(t.layers), Object.keys(torch));
  for (const [l, rows] of Object.entries(torch)) {
    for (let s = 0; s < steps; s++) {
      close(t.layers[l].paramNorm[s], Math.sqrt(rows[s][0]), `${l} step ${s} ‖θ‖`, 1e-5);
      close(t.layers[l].gradNorm[s], Math.sqrt(rows[s][1]), `${l} step ${s} ‖g‖`, 1e-4);
      close(t.layers[l].distance[s], Math.sqrt(rows[s][2]), `${l} step ${s} ‖θ−θ0‖`, 1e-4, 1e-6);
    }
  }
  model.dispose();
});
