/**
 * The model zoo (src/models): spec parsing and its errors, parameter names against the
 * PyTorch twins' state_dict keys (tools/torch_models.py), seeded initialization, input checks,
 * and forward / input gradient / parameter gradients of LeNet (tanh, relu), DDNet and ResNet-18
 * against PyTorch with identical weights (uploaded from here).
 */
import { assert, getBackend, randomArray } from "./_util.ts";
import {
  type BridgeJob,
  f64,
  randomizeParams,
  relErr,
  torchBridge,
  upload,
} from "./_model_bridge.ts";
import {
  buildModel,
  type Model,
  MODEL_NAMES,
  type ModelSpec,
  modelSpecFromName,
  parseModelSpec,
} from "../src/models/mod.ts";
import { Dropout } from "../src/layers/dropout.ts";
import { Sequential } from "../src/layers/sequential.ts";
import type { Layer } from "../src/layers/layer.ts";
import type { SafetensorsTensor } from "../src/io/safetensors.ts";
import type { Backend } from "../src/backend.ts";

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";

/** The twins' state_dict keys and shapes, one list per spec (one Python process). */
async function torchKeys(specs: ModelSpec[]): Promise<[string, number[]][][]> {
  const tools = new URL("../tools", import.meta.url).pathname;
  const code = `import sys, json; sys.path.insert(0, ${JSON.stringify(tools)}); import torch_models
print(json.dumps([[[k, list(t.shape)] for k, t in torch_models.build_model(s).state_dict().items()]
                  for s in json.load(sys.stdin)]))`;
  const child = new Deno.Command(PYTHON, { args: ["-c", code], stdin: "piped", stdout: "piped" })
    .spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify(specs)));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(`torch_models.py failed (exit ${out.code})`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

function leaves(l: Layer): Layer[] {
  return l instanceof Sequential ? l.layers.flatMap(leaves) : [l];
}

Deno.test("parseModelSpec() fills in defaults", () => {
  assert.deepEqual(parseModelSpec({ kind: "lenet" }), {
    kind: "lenet",
    activation: "tanh",
    dropout: 0,
    inChannels: 1,
    inputSize: 28,
    classes: 10,
    normalize: null,
  });
  assert.deepEqual(parseModelSpec({ kind: "ddnet" }), {
    kind: "ddnet",
    dropout: 0.5,
    inChannels: 3,
    inputSize: 32,
    classes: 10,
    normalize: null,
  });
  assert.deepEqual(parseModelSpec({ kind: "mlp", inputs: 2, hidden: [8], classes: 4 }), {
    kind: "mlp",
    inputs: 2,
    hidden: [8],
    classes: 4,
    activation: "relu",
    dropout: 0,
    bias: true,
    inputShape: [2],
    normalize: null,
  });
  const r = parseModelSpec({ kind: "resnet18", classes: 100 });
  assert.deepEqual(r, {
    kind: "resnet18",
    classes: 100,
    inChannels: 3,
    inputSize: 32,
    normalize: null,
  });
  // A parsed spec parses to itself (what a checkpoint stores).
  assert.deepEqual(parseModelSpec(JSON.parse(JSON.stringify(r))), r);
});

Deno.test("parseModelSpec() refuses bad specs, naming the field", () => {
  const bad: [unknown, RegExp][] = [
    [null, /Model spec must be a JSON object, got null/],
    [[1], /must be a JSON object/],
    [{ kind: "vgg" }, /unknown "kind" "vgg"; kinds: mlp, lenet, ddnet, resnet18/],
    [
      { kind: "lenet", activation: "gelu" },
      /\(lenet\): "activation" must be "tanh" or "relu", got "gelu"/,
    ],
    [{ kind: "lenet", dropout: 1 }, /"dropout" must be a number in \[0, 1\), got 1/],
    [{ kind: "lenet", inputSize: 8 }, /"inputSize" 8 is too small; LeNet needs at least 12/],
    [{ kind: "lenet", hidden: [3] }, /unknown field\(s\) "hidden"; allowed: kind, activation/],
    [{ kind: "ddnet", classes: 0 }, /\(ddnet\): "classes" must be a positive integer, got 0/],
    [{ kind: "resnet18", inputSize: 30 }, /"inputSize" must be a multiple of 8/],
    [
      { kind: "mlp", hidden: [4], classes: 2 },
      /\(mlp\): "inputs" must be a positive integer, got undefined/,
    ],
    [
      { kind: "mlp", inputs: 2, hidden: [4, -1], classes: 2 },
      /"hidden\[1\]" must be a positive integer, got -1/,
    ],
    [
      { kind: "mlp", inputs: 2, hidden: 4, classes: 2 },
      /"hidden" must be an array of widths, got 4/,
    ],
    [{ kind: "mlp", inputs: 2, classes: 2, activation: "elu" }, /unknown "activation" "elu"/],
    [
      { kind: "mlp", inputs: 784, classes: 10, inputShape: [1, 28, 27] },
      /"inputShape" \[1,28,27\] holds 756 values but "inputs" is 784/,
    ],
    [
      { kind: "ddnet", normalize: { mean: [0.5], std: [0.5] } },
      /"normalize" has 1 channel\(s\) but the input has 3/,
    ],
    [
      { kind: "lenet", normalize: { mean: [0.5], std: [0] } },
      /"normalize" std must hold positive numbers/,
    ],
    [
      { kind: "lenet", normalize: [0.5] },
      /"normalize" must be \{"mean": number\[\], "std": number\[\]\}/,
    ],
  ];
  for (const [spec, re] of bad) assert.throws(() => parseModelSpec(spec), re, JSON.stringify(spec));
});

Deno.test("modelSpecFromName() gives the seed study's models and takes overrides", () => {
  const lenet = modelSpecFromName("lenet");
  assert.equal(lenet.kind, "lenet");
  assert.deepEqual(lenet.normalize, { mean: [0.1307], std: [0.3081] });
  assert.equal((modelSpecFromName("lenet-relu") as { activation: string }).activation, "relu");
  assert.equal((modelSpecFromName("lenet", { dropout: 0.5 }) as { dropout: number }).dropout, 0.5);
  assert.equal((modelSpecFromName("ddnet") as { dropout: number }).dropout, 0.5);
  const r = modelSpecFromName("resnet18", { classes: 100 });
  assert.equal((r as { classes: number }).classes, 100);
  assert.equal(modelSpecFromName("resnet18", { normalize: null }).normalize, null);
  assert.deepEqual(modelSpecFromName("ddnet", { inChannels: 1 }).normalize, {
    mean: [0.5],
    std: [0.5],
  });
  const mlp = modelSpecFromName("mlp");
  assert.deepEqual(mlp, {
    kind: "mlp",
    inputs: 2,
    hidden: [64, 64],
    classes: 4,
    activation: "tanh",
    dropout: 0,
    bias: true,
    inputShape: [2],
    normalize: null,
  });
  const mnist = modelSpecFromName("mlp", { inputShape: [1, 28, 28], hidden: [100], classes: 10 });
  assert.equal((mnist as { inputs: number }).inputs, 784);
  for (const name of MODEL_NAMES) assert.equal(typeof modelSpecFromName(name).kind, "string");
  assert.throws(
    () => modelSpecFromName("lenet5"),
    /Unknown model 'lenet5'; models: mlp, lenet, lenet-relu/,
  );
  assert.throws(() => modelSpecFromName("lenet", { hidden: [3] }), /unknown field\(s\) "hidden"/);
});

Deno.test("buildModel() names parameters exactly as the PyTorch twin's state_dict", async () => {
  const rt = await getBackend();
  const specs: ModelSpec[] = [
    modelSpecFromName("mlp", { dropout: 0.2 }),
    modelSpecFromName("lenet", { dropout: 0.5 }),
    modelSpecFromName("ddnet"),
    modelSpecFromName("resnet18", { classes: 100 }),
    parseModelSpec({ kind: "mlp", inputs: 2, hidden: [], classes: 4, bias: false }),
  ];
  const counts: Record<string, number> = {};
  const all = await torchKeys(specs.map((s) => parseModelSpec(s)));
  for (const [i, spec] of specs.entries()) {
    const model = buildModel(rt, spec, { seed: 1 });
    try {
      const ours = model.params().map((p) => [p.name, p.value.shape] as const);
      const theirs = all[i];
      assert.deepEqual(ours.map(([n]) => n), theirs.map(([n]) => n), `${spec.kind} names`);
      ours.forEach(([n, s], i) => {
        // num_batches_tracked: a 0-d int64 in PyTorch, one i32 here.
        const want = n.endsWith("num_batches_tracked") ? [1] : theirs[i][1];
        assert.deepEqual([...s], want, `${spec.kind} ${n} shape`);
      });
      counts[spec.kind + (spec.kind === "mlp" && !spec.bias ? "-linear" : "")] = model.params()
        .filter((p) => p.kind !== "buffer").reduce((a, p) => a + p.value.size, 0);
    } finally {
      model.dispose();
    }
  }
  // SEED-NOTES.md: LeNet 61,706 and DDNet 1,147,978 parameters; ResNet-18 (CIFAR stem,
  // 100 classes) 11,220,132 as torchvision with conv1 3x3.
  assert.equal(counts.lenet, 61706);
  assert.equal(counts.ddnet, 1147978);
  assert.equal(counts.resnet18, 11220132);
  assert.equal(counts["mlp-linear"], 8);
});

Deno.test("buildModel() initializes by seed and scheme", async () => {
  const rt = await getBackend();
  const spec = modelSpecFromName("lenet");
  const read = async (m: Model, name: string) =>
    Float32Array.from(await m.params().find((p) => p.name === name)!.value.read());
  const a = buildModel(rt, spec, { seed: 3 });
  const b = buildModel(rt, spec, { seed: 3 });
  const c = buildModel(rt, spec, { seed: 4 });
  const xav = buildModel(rt, spec, { seed: 3, init: "xavier" });
  const orth = buildModel(rt, spec, { seed: 3, init: "orthogonal" });
  const kai = buildModel(rt, spec, { seed: 3, init: "kaiming" });
  const res = buildModel(rt, modelSpecFromName("resnet18"), { seed: 3 });
  try {
    const w = await read(a, "fc1.weight");
    assert.deepEqual(w, await read(b, "fc1.weight"));
    assert.notDeepEqual(w, await read(c, "fc1.weight"));
    // nn.Linear default: kaiming_uniform(a=√5) = U(±1/√fan_in); bias U(±1/√fan_in).
    const bound = 1 / Math.sqrt(400);
    const maxAbs = (v: ArrayLike<number>) => Math.max(...Array.from(v, Math.abs));
    assert.ok(maxAbs(w) <= bound && maxAbs(w) > 0.95 * bound, `default fc1 max ${maxAbs(w)}`);
    const bias = await read(a, "fc1.bias");
    assert.ok(maxAbs(bias) <= bound && maxAbs(bias) > 0.5 * bound);
    // xavier_uniform: U(±√(6/(fan_in+fan_out))), zero bias.
    const xw = await read(xav, "fc1.weight");
    const xb = Math.sqrt(6 / (400 + 120));
    assert.ok(maxAbs(xw) <= xb && maxAbs(xw) > 0.95 * xb, `xavier fc1 max ${maxAbs(xw)}`);
    assert.ok((await read(xav, "fc1.bias")).every((v) => v === 0));
    // orthogonal: the rows of fc2.weight (84 x 120) are orthonormal.
    const ow = await read(orth, "fc2.weight");
    for (const [i, j] of [[0, 0], [0, 1], [5, 83], [83, 83]]) {
      let s = 0;
      for (let k = 0; k < 120; k++) s += ow[i * 120 + k] * ow[j * 120 + k];
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-5, `orthogonal rows ${i},${j}: ${s}`);
    }
    // kaiming_normal (fan_in, relu): std √(2/400).
    const kw = await read(kai, "fc1.weight");
    const std = Math.sqrt(kw.reduce((s, v) => s + v * v, 0) / kw.length);
    assert.ok(Math.abs(std / Math.sqrt(2 / 400) - 1) < 0.05, `kaiming std ${std}`);
    // ResNet: torchvision's kaiming_normal(fan_out) convs; BatchNorm at 1, 0, 0, 1.
    const rw = await read(res, "layer3.0.conv2.weight");
    const rstd = Math.sqrt(rw.reduce((s, v) => s + v * v, 0) / rw.length);
    assert.ok(Math.abs(rstd / Math.sqrt(2 / (256 * 9)) - 1) < 0.05, `resnet conv std ${rstd}`);
    assert.ok((await read(res, "layer3.0.bn2.weight")).every((v) => v === 1));
    assert.ok((await read(res, "layer3.0.bn2.running_var")).every((v) => v === 1));
    assert.ok((await read(res, "layer3.0.bn2.running_mean")).every((v) => v === 0));
    assert.throws(
      () => buildModel(rt, spec, { init: "he" as "kaiming" }),
      /Unknown init scheme 'he'; schemes: default, xavier, kaiming, orthogonal/,
    );
    assert.throws(() => buildModel(rt, spec, { seed: -1 }), /seed must be an integer/);
  } finally {
    for (const m of [a, b, c, xav, orth, kai, res]) m.dispose();
  }
});

Deno.test("Model refuses a wrong input shape, a channel mismatch and an empty batch", async () => {
  const rt = await getBackend();
  const lenet = buildModel(rt, modelSpecFromName("lenet"), { seed: 1 });
  const mlp = buildModel(rt, modelSpecFromName("mlp"), { seed: 1 });
  const cifar = rt.zeros([2, 3, 32, 32]);
  const small = rt.zeros([2, 1, 24, 24]);
  const empty = rt.zeros([0, 1, 28, 28]);
  const labels = rt.zeros([2, 2], "i32");
  try {
    assert.deepEqual(lenet.inputShape, [1, 28, 28]);
    assert.equal(lenet.classes, 10);
    assert.deepEqual(mlp.inputShape, [2]);
    assert.equal(mlp.classes, 4);
    assert.deepEqual(lenet.outputShape([5, 1, 28, 28]), [5, 10]);
    assert.throws(
      () => lenet.forward(cifar),
      /lenet \(Model\): expected input \[B,1,28,28\], got \[2,3,32,32\] \(normalize \(Normalize.*\): .*\[2,3,32,32\]/,
    );
    assert.throws(
      () => lenet.forward(small),
      /lenet \(Model\): expected input \[B,1,28,28\], got \[2,1,24,24\] \(fc1 \(Linear 400->120\): expected input \[B,400\], got \[2,256\]\)/,
    );
    assert.throws(() => lenet.forward(empty), /lenet \(Model\): got an empty batch \[0,1,28,28\]/);
    assert.throws(() => mlp.forward(labels), /mlp \(Model\): input must be f32/);
    // An MLP flattens: [B, 2] and [B, 1, 2] both hold 2 values per sample.
    assert.deepEqual(mlp.outputShape([3, 1, 2]), [3, 4]);
    assert.throws(
      () => mlp.forward(cifar),
      /mlp \(Model\): expected input \[B,2\], got \[2,3,32,32\]/,
    );
    const noNorm = buildModel(rt, modelSpecFromName("lenet", { normalize: null }));
    try {
      assert.throws(
        () => noNorm.forward(cifar),
        /expected input \[B,1,28,28\], got \[2,3,32,32\] \(conv1 \(Conv2d 1->6, k5, p2\): expected input \[B,1,H,W\], got \[2,3,32,32\]\)/,
      );
    } finally {
      noNorm.dispose();
    }
  } finally {
    for (const t of [cifar, small, empty, labels]) t.dispose();
    lenet.dispose();
    mlp.dispose();
  }
});

/**
 * Seeded weights, forward, and the gradients of `Σ logits ⊙ dy` with respect to the input
 * (and, unless `paramGrads` is false, the parameters) here; and the bridge job for the twin.
 */
async function runOurs(
  rt: Backend,
  model: Model,
  c: { b: number; train: boolean; paramGrads?: boolean },
  seed: number,
): Promise<{ job: BridgeJob; logits: ArrayLike<number>; grads: Map<string, ArrayLike<number>> }> {
  const values = randomizeParams(rt, model.params(), seed, randomArray);
  // The values as written (float32, exact), without reading 11M ResNet parameters back.
  const inputs: Record<string, SafetensorsTensor> = {};
  for (const p of model.params()) {
    const v = values.get(p.name);
    inputs[p.name] = v
      ? { dtype: "F32", shape: [...p.value.shape], data: v }
      : { dtype: "I64", shape: [], data: new BigInt64Array(1) };
  }
  const paramGrads = c.paramGrads ?? true;
  const shape = [c.b, ...model.inputShape];
  const xd = randomArray(shape.reduce((a, d) => a * d, 1), seed + 1, 0, 1);
  const dyd = randomArray(c.b * model.classes, seed + 2);
  const x = upload(rt, xd, shape);
  const dy = upload(rt, dyd, [c.b, model.classes]);
  try {
    model.training = c.train;
    model.setCounter(5);
    model.zeroGrad();
    const logits = await model.forward(x).read();
    // Dropout keep masks of this forward, for the twin.
    for (const l of leaves(model)) {
      if (l instanceof Dropout && l.mask) {
        const m = await l.mask.read();
        inputs[`mask.${l.name}`] = f64(l.mask.shape, Array.from(m, (v) => (v > 0 ? 1 : 0)));
      }
    }
    const dx = await (paramGrads ? model.backward(dy) : model.inputGrad(dy)).read();
    const grads = new Map<string, ArrayLike<number>>([["grad.x", dx]]);
    // And the jvp `J tx` at the same point (with the same dropout masks; BatchNorm refuses it in
    // training mode).
    const extra: Record<string, SafetensorsTensor> = {};
    if (!c.train || model.spec.kind !== "resnet18") {
      const txd = randomArray(xd.length, seed + 3);
      const tx = upload(rt, txd, shape);
      grads.set("jvp", await model.jvp(tx).read());
      tx.dispose();
      extra.tx = f64(shape, txd);
    }
    if (paramGrads) {
      for (const p of model.params()) if (p.grad) grads.set(`grad.${p.name}`, await p.grad.read());
    }
    return {
      logits,
      grads,
      job: {
        spec: {
          op: "forward",
          mode: c.train ? "train" : "eval",
          model: model.spec,
          param_grads: paramGrads,
        },
        inputs: { ...inputs, ...extra, x: f64(shape, xd), dy: f64([c.b, model.classes], dyd) },
      },
    };
  } finally {
    x.dispose();
    dy.dispose();
  }
}

Deno.test("LeNet, DDNet and ResNet-18 match PyTorch: logits, gradients and jvp", async () => {
  const rt = await getBackend();
  const cases: {
    what: string;
    spec: ModelSpec;
    b: number;
    train: boolean;
    paramGrads?: boolean;
    seed?: number;
  }[] = [
    { what: "lenet tanh", spec: modelSpecFromName("lenet"), b: 3, train: false },
    {
      what: "lenet relu + dropout (train, our masks)",
      spec: modelSpecFromName("lenet-relu", { dropout: 0.5 }),
      b: 3,
      train: true,
    },
    { what: "ddnet (train, our masks)", spec: modelSpecFromName("ddnet"), b: 2, train: true },
    {
      what: "mlp tanh + dropout (train)",
      spec: modelSpecFromName("mlp", { dropout: 0.3 }),
      b: 5,
      train: true,
    },
    // The whole ResNet-18 at batch 2, eval mode, input gradient only; 16x16 inputs (a 2x2
    // global average pool) keep it cheap on software adapters. NOTE: a ReLU whose input is
    // within float32 rounding of 0 can flip between here and float64 PyTorch and change a
    // patch of grad.x; this seed has no such unit.
    {
      what: "resnet18 (eval)",
      spec: modelSpecFromName("resnet18", { inputSize: 16 }),
      b: 2,
      train: false,
      paramGrads: false,
      seed: 7,
    },
  ];
  const ours: Awaited<ReturnType<typeof runOurs>>[] = [];
  for (const [i, c] of cases.entries()) {
    const model = buildModel(rt, c.spec, { seed: 1 });
    try {
      ours.push(await runOurs(rt, model, c, c.seed ?? 100 + 10 * i));
    } finally {
      model.dispose();
    }
  }
  const results = await torchBridge(ours.map((o) => o.job));
  const worst: string[] = [];
  results.forEach((r, i) => {
    const o = ours[i];
    let w = relErr(o.logits, r.logits.data);
    assert.ok(w < 1e-4, `${cases[i].what}: logits relative error ${w}`);
    for (const [name, got] of o.grads) {
      assert.ok(r[name], `${cases[i].what}: torch has no ${name}`);
      const e = relErr(got, r[name].data);
      assert.ok(e < 2e-4, `${cases[i].what}: ${name} relative error ${e.toExponential(2)}`);
      w = Math.max(w, e);
    }
    worst.push(`${cases[i].what} ${w.toExponential(1)}`);
  });
  console.log(`max relative error vs PyTorch: ${worst.join("; ")}`);
});

Deno.test("buildModel() takes unparsed JSON and refuses a bad spec before allocating", async () => {
  const rt = await getBackend();
  const before = rt.memory().inUseBytes;
  assert.throws(() => buildModel(rt, { kind: "lenet", activation: "swish" }), /"activation"/);
  assert.equal(rt.memory().inUseBytes, before);
  const m = buildModel(rt, JSON.parse('{"kind":"mlp","inputs":3,"hidden":[5],"classes":2}'));
  try {
    const x = upload(rt, [0.1, 0.2, 0.3], [1, 3]);
    assert.deepEqual(m.forward(x).shape, [1, 2]);
    x.dispose();
  } finally {
    m.dispose();
  }
});
