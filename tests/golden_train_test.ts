/**
 * End-to-end goldens: seeded models from src/models trained 20 steps with SGD + momentum here
 * reproduce the loss sequence (and final weights) of the same training in PyTorch 1.13 float64
 * (tools/torch_bridge.py `train_sgd` on the twin from tools/torch_models.py, started from our
 * initial weights and replaying our dropout masks); and a training loop allocates no GPU memory
 * after its first steps.
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import { f64, i32, paramInputs, relErr, torchBridge, upload } from "./_model_bridge.ts";
import { buildModel, type Model, modelSpecFromName } from "../src/models/mod.ts";
import { createOptimizer } from "../src/train/optim.ts";
import { type CrossEntropyResult, softmaxCrossEntropy } from "../src/losses/cross_entropy.ts";
import { Dropout } from "../src/layers/dropout.ts";
import { Sequential } from "../src/layers/sequential.ts";
import type { Layer } from "../src/layers/layer.ts";
import type { Backend } from "../src/backend.ts";
import type { Tensor } from "../src/backend.ts";
import { toy2d } from "../src/data/toy.ts";
import { encodeCheckpoint } from "../src/io/checkpoint.ts";
import { encodeSafetensors } from "../src/io/safetensors.ts";

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";

/**
 * Logits of `x` from the model PyTorch rebuilds out of our checkpoint
 * (tools/torch_models.py `load_checkpoint`: spec from the metadata, strict `load_state_dict`).
 */
async function torchFromCheckpoint(
  checkpoint: Uint8Array,
  x: Float32Array,
  shape: number[],
): Promise<number[]> {
  const dir = await Deno.makeTempDir({ prefix: "regula_golden_" });
  try {
    await Deno.writeFile(`${dir}/model.safetensors`, checkpoint);
    await Deno.writeFile(
      `${dir}/x.safetensors`,
      encodeSafetensors({ x: { dtype: "F32", shape, data: x } }),
    );
    const tools = new URL("../tools", import.meta.url).pathname;
    const code = `import sys, json, torch
sys.path.insert(0, ${JSON.stringify(tools)})
import torch_models, torch_bridge
model, meta = torch_models.load_checkpoint(sys.argv[1])
x = torch.from_numpy(torch_bridge.read_safetensors(sys.argv[2])[0]["x"])
with torch.no_grad():
    print(json.dumps(model(x).flatten().tolist()))`;
    const out = await new Deno.Command(PYTHON, {
      args: ["-c", code, `${dir}/model.safetensors`, `${dir}/x.safetensors`],
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function dropouts(l: Layer): Dropout[] {
  if (l instanceof Sequential) return l.layers.flatMap(dropouts);
  return l instanceof Dropout ? [l] : [];
}

interface Run {
  /** The objective of each step's batch before its update. */
  losses: Float32Array;
  /** Dropout keep masks (0/1) per step, by layer name: (steps, ...input shape). */
  masks: Map<string, number[]>;
  maskShapes: Map<string, number[]>;
}

/**
 * `steps` steps of SGD on batches `x[s % S]`, `y[s % S]`: zero grads, forward, mean
 * cross-entropy, backward, update, one submit per step; the losses stay on the GPU until the
 * end. With `readMasks`, each step's dropout masks are read back (for the twin).
 */
async function trainSgd(
  rt: Backend,
  model: Model,
  xs: Tensor[],
  ys: Tensor[],
  opts: { steps: number; lr: number; momentum: number; readMasks?: boolean },
): Promise<Run> {
  const opt = createOptimizer(rt, { algorithm: "sgd", momentum: opts.momentum });
  const losses = rt.zeros([opts.steps]);
  const masks = new Map<string, number[]>(), maskShapes = new Map<string, number[]>();
  let ce: CrossEntropyResult | null = null;
  try {
    model.train();
    const params = model.params();
    for (let step = 0; step < opts.steps; step++) {
      const i = step % xs.length;
      model.setCounter(step);
      model.zeroGrad();
      const logits = model.forward(xs[i]);
      ce = softmaxCrossEntropy(rt, logits, ys[i], { out: ce ?? undefined });
      model.backward(ce.dLogits!);
      opt.step(params, opts.lr);
      rt.copy(ce.loss, losses, 1, 0, step);
      rt.submit();
      if (opts.readMasks) {
        for (const d of dropouts(model)) {
          const m = await d.mask!.read();
          const list = masks.get(d.name) ?? [];
          for (const v of m) list.push(v > 0 ? 1 : 0);
          masks.set(d.name, list);
          maskShapes.set(d.name, [opts.steps, ...d.mask!.shape]);
        }
      }
    }
    return { losses: (await losses.read()) as Float32Array, masks, maskShapes };
  } finally {
    ce?.dispose();
    losses.dispose();
    opt.dispose();
  }
}

/** Asserts `|ours - torch| <= rtol |torch|` step by step; @returns the worst relative error */
function assertLosses(
  what: string,
  ours: ArrayLike<number>,
  want: ArrayLike<number>,
  rtol: number,
) {
  assert.equal(ours.length, want.length);
  let worst = 0;
  for (let s = 0; s < want.length; s++) {
    const e = Math.abs(ours[s] - want[s]) / Math.abs(want[s]);
    worst = Math.max(worst, e);
    assert.ok(
      e <= rtol,
      `${what}: step ${s} loss ${ours[s]} vs PyTorch ${want[s]} (relative error ${
        e.toExponential(2)
      })\n` +
        `ours:  ${Array.from(ours).join(", ")}\ntorch: ${Array.from(want).join(", ")}`,
    );
  }
  return worst;
}

Deno.test("LeNet-tanh trained 20 SGD steps reproduces PyTorch's losses; its checkpoint loads there", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, modelSpecFromName("lenet"), { seed: 1 });
  // 64 fixed inputs in [0, 1] as two batches of 32: noise plus a bright band of rows whose
  // position gives the label (0..9), so that 20 steps make visible progress.
  const S = 2, B = 32, shape = [B, 1, 28, 28];
  const n = B * 784;
  const yd = Array.from({ length: S * B }, (_, i) => (i * 7 + 3) % 10);
  const xd = randomArray(S * n, 2024, 0, 0.5);
  yd.forEach((k, i) => {
    for (let r = 2 * k + 4; r < 2 * k + 7; r++) {
      for (let c = 4; c < 24; c++) xd[i * 784 + r * 28 + c] += 0.5;
    }
  });
  const xs = [0, 1].map((s) => upload(rt, xd.subarray(s * n, (s + 1) * n), shape));
  const ys = [0, 1].map((s) =>
    rt.upload(Int32Array.from(yd.slice(s * B, (s + 1) * B)), [B], "i32")
  );
  try {
    const init = await paramInputs(model.params());
    const steps = 20, lr = 0.05, momentum = 0.9;
    const run = await trainSgd(rt, model, xs, ys, { steps, lr, momentum });
    const [r] = await torchBridge([{
      spec: { op: "train_sgd", model: model.spec, steps, lr, momentum },
      inputs: { ...init, x: f64([S, ...shape], xd), y: i32([S, B], yd) },
    }]);
    const want = r.losses.data;
    assert.ok(
      want[steps - 1] < 0.5 * want[0],
      `PyTorch's loss should fall: ${want[0]} -> ${want[steps - 1]}`,
    );
    const worst = assertLosses("lenet", run.losses, want, 1e-4);
    let wErr = 0, wName = "";
    for (const p of model.params()) {
      if (p.kind === "buffer") continue;
      const e = relErr(await p.value.read(), r[`state.${p.name}`].data);
      if (e > wErr) [wErr, wName] = [e, p.name];
    }
    console.log(
      `lenet: losses ${want[0].toFixed(4)} -> ${want[steps - 1].toFixed(4)}; max relative ` +
        `loss error ${worst.toExponential(2)}, final weights ${wErr.toExponential(2)} (${wName})`,
    );
    // Per tensor, max|Δ| / max|w|: float32 rounding accumulated over 20 momentum steps.
    assert.ok(wErr < 1e-3, `final ${wName} relative error ${wErr}`);
    // The trained model, saved as a checkpoint, loads into the PyTorch twin and predicts the same.
    model.eval();
    const ours = await model.forward(xs[0]).read();
    const theirs = await torchFromCheckpoint(
      await encodeCheckpoint(model, { model: model.spec }),
      xd.subarray(0, n),
      shape,
    );
    const ce = relErr(ours, theirs);
    assert.ok(ce < 1e-5, `logits of the checkpoint in PyTorch: relative error ${ce}`);
  } finally {
    for (const t of [...xs, ...ys]) t.dispose();
    model.dispose();
  }
});

Deno.test("MLP with dropout trained 20 SGD steps on the toy problem reproduces PyTorch", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, modelSpecFromName("mlp", { dropout: 0.2 }), { seed: 5 });
  const ds = toy2d({ perClass: 16, seed: 3 });
  // Two batches of 32 that mix the classes (the dataset is grouped by class).
  const order = Array.from({ length: ds.length }, (_, i) => (i * 37) % ds.length);
  const xd = Float32Array.from(order.flatMap((i) => [ds.x[2 * i], ds.x[2 * i + 1]]));
  const yd = order.map((i) => ds.y[i]);
  const S = 2, B = 32;
  const xs = [0, 1].map((s) => upload(rt, xd.subarray(s * B * 2, (s + 1) * B * 2), [B, 2]));
  const ys = [0, 1].map((s) =>
    rt.upload(Int32Array.from(yd.slice(s * B, (s + 1) * B)), [B], "i32")
  );
  try {
    const init = await paramInputs(model.params());
    const steps = 20, lr = 0.1, momentum = 0.9;
    const run = await trainSgd(rt, model, xs, ys, { steps, lr, momentum, readMasks: true });
    assert.deepEqual([...run.masks.keys()], ["drop1", "drop2"]);
    const masks = Object.fromEntries(
      [...run.masks].map(([k, v]) => [`mask.${k}`, f64(run.maskShapes.get(k)!, v)]),
    );
    const [r] = await torchBridge([{
      spec: { op: "train_sgd", model: model.spec, steps, lr, momentum },
      inputs: { ...init, ...masks, x: f64([S, B, 2], xd), y: i32([S, B], yd) },
    }]);
    const want = r.losses.data;
    assert.ok(
      want[steps - 1] < 0.5 * want[0],
      `PyTorch's loss should fall: ${want[0]} -> ${want[steps - 1]}`,
    );
    const worst = assertLosses("mlp", run.losses, want, 1e-4);
    console.log(
      `mlp + dropout: losses ${want[0].toFixed(4)} -> ${want[steps - 1].toFixed(4)}; max ` +
        `relative loss error ${worst.toExponential(2)}`,
    );
  } finally {
    for (const t of [...xs, ...ys]) t.dispose();
    model.dispose();
  }
});

Deno.test("A training loop allocates no GPU memory after its first steps", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, modelSpecFromName("lenet-relu", { dropout: 0.5 }), { seed: 9 });
  const B = 8;
  const x = upload(rt, randomArray(B * 784, 77, 0, 1), [B, 1, 28, 28]);
  const y = rt.upload(Int32Array.from({ length: B }, (_, i) => i % 10), [B], "i32");
  const opt = createOptimizer(rt, { algorithm: "sgd", momentum: 0.9, weightDecay: 5e-4 });
  const losses = rt.zeros([1]);
  let ce: CrossEntropyResult | null = null;
  try {
    const params = model.params();
    model.train();
    let at10 = rt.memory();
    for (let step = 0; step < 200; step++) {
      model.setCounter(step);
      model.zeroGrad();
      ce = softmaxCrossEntropy(rt, model.forward(x), y, { out: ce ?? undefined });
      model.backward(ce.dLogits!);
      opt.step(params, 0.01);
      rt.copy(ce.loss, losses);
      rt.submit();
      if (step === 9) {
        await rt.sync();
        at10 = { ...rt.memory() };
      }
    }
    await rt.sync();
    const at200 = rt.memory();
    assert.equal(at200.inUseBytes, at10.inUseBytes, "bytes in use after 200 steps vs 10");
    assert.equal(
      at200.allocatedBytes,
      at10.allocatedBytes,
      "bytes allocated after 200 steps vs 10",
    );
    assert.equal(at200.created, at10.created, "buffers created after step 10");
    const [loss] = await losses.read();
    assert.ok(Number.isFinite(loss), `loss ${loss}`);
  } finally {
    ce?.dispose();
    for (const t of [x, y, losses]) t.dispose();
    opt.dispose();
    model.dispose();
  }
});
