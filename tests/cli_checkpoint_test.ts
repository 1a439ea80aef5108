/**
 * cli/checkpoint.ts without a GPU: what model and data a checkpoint's metadata and the flags
 * name (the plain strings a PyTorch user writes), and the PyTorch `state_dict` forms it reads.
 */
import { assert } from "./_util.ts";
import { UsageError } from "../cli/args.ts";
import {
  datasetName,
  fitModelSpec,
  type ModelRequest,
  modelRequest,
  torchStateDict,
} from "../cli/checkpoint.ts";
import type { Checkpoint } from "../src/io/checkpoint.ts";
import type { SafetensorsTensor } from "../src/io/safetensors.ts";

const f32 = (shape: number[]): SafetensorsTensor => ({
  dtype: "F32",
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
});
const ck = (metadata: Record<string, unknown>, tensors = {}): Checkpoint => ({
  metadata,
  tensors,
});
const MNIST = { sampleShape: [1, 28, 28], classes: 10 };

Deno.test("modelRequest() reads plain-string metadata and --model with its options", async () => {
  const r1 = await modelRequest("a", ck({ model: "LeNet-5", activation: "nn.Tanh()" }), {});
  assert.deepEqual(r1, {
    name: "lenet",
    options: { activation: "tanh" },
    source: "from the checkpoint's metadata",
  });
  // a number stored as a string, the way safetensors metadata holds every value
  const r2 = await modelRequest("a", ck({ model: "ddnet", dropout: "0.25" }), {});
  assert.deepEqual(fitModelSpec(r2, { sampleShape: [3, 32, 32], classes: 10 }, {}), {
    kind: "ddnet",
    dropout: 0.25,
    inChannels: 3,
    inputSize: 32,
    classes: 10,
    normalize: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
  });
  // --model wins over the metadata, whose options then do not apply; the flags' do
  const r3 = await modelRequest("a", ck({ model: "ddnet", dropout: 0.25 }), {
    model: "lenet-relu",
    normalize: "none",
  });
  assert.deepEqual(fitModelSpec(r3, MNIST, {}), {
    kind: "lenet",
    activation: "relu",
    dropout: 0,
    inChannels: 1,
    inputSize: 28,
    classes: 10,
    normalize: null,
  });
  // a metadata-like object, and a full spec, inline
  const r4 = await modelRequest("a", ck({}), { model: '{"model": "lenet", "dropout": 0.5}' });
  assert.equal(fitModelSpec(r4, MNIST, {}).kind, "lenet");
  assert.equal((fitModelSpec(r4, MNIST, {}) as { dropout: number }).dropout, 0.5);
  const r5 = await modelRequest("a", ck({}), {
    model: '{"kind": "mlp", "inputs": 2, "classes": 4}',
  });
  assert.ok("spec" in r5 && r5.spec.kind === "mlp");
  // an MLP's widths and bias come from its tensors (here an nn.Sequential's keys)
  const r6 = await modelRequest("a", ck({ model: "mlp" }), { activation: "relu" });
  const seq = { "1.weight": f32([5, 2]), "3.weight": f32([4, 5]) };
  assert.deepEqual(fitModelSpec(r6, { sampleShape: [2], classes: 4 }, seq), {
    kind: "mlp",
    inputs: 2,
    hidden: [5],
    classes: 4,
    activation: "relu",
    dropout: 0,
    bias: false,
    inputShape: [2],
    normalize: null,
  });
});

Deno.test("modelRequest() refuses what it cannot read, saying what to give", async () => {
  for (
    const [meta, flags, msg] of [
      [{}, {}, /metadata names no model; give --model NAME \(mlp, lenet/],
      [{ model: "vgg16" }, {}, /unknown model 'vgg16'; models: mlp, lenet, lenet-relu/],
      [{ model: 3 }, {}, /the model must be a name .* or a JSON model spec with "kind", got 3/],
      [{ model: "lenet", dropout: "half" }, {}, /dropout must be a number in \[0, 1\), got "half"/],
      [{ model: { kind: "lenet" } }, { dropout: 0.5 }, /--dropout adjust a model name/],
      [{ model: "lenet" }, { normalize: "0.1" }, /normalize must be MEAN\/STD/],
      [{ model: { kind: "lenet", bogus: 1 } }, {}, /invalid model spec: .*unknown field/],
    ] as [Record<string, unknown>, Record<string, string | number>, RegExp][]
  ) {
    await assert.rejects(
      () => modelRequest("x.safetensors", ck(meta), flags),
      (e: Error) => {
        assert.ok(e instanceof UsageError, String(e));
        assert.match(e.message, msg);
        return true;
      },
    );
  }
  const req = await modelRequest("a", ck({ model: "resnet18" }), { activation: "tanh" });
  assert.throws(
    () => fitModelSpec(req, { sampleShape: [3, 32, 32], classes: 10 }, {}),
    /uses relu only/,
  );
});

Deno.test("datasetName() takes --data, then the metadata's (torchvision spellings), then LeNet's", () => {
  const notes: string[] = [];
  const note = (s: string) => notes.push(s);
  const lenet: ModelRequest = { name: "lenet", options: {}, source: "" };
  const ddnet: ModelRequest = { name: "ddnet", options: {}, source: "" };
  assert.equal(datasetName("a", ck({ dataset: "FashionMNIST" }), ddnet, {}, note), "fashion-mnist");
  assert.equal(datasetName("a", ck({ data: { name: "CIFAR10" } }), ddnet, {}, note), "cifar10");
  assert.equal(datasetName("a", ck({ data: "cifar10" }), ddnet, { data: "idx" }, note), "idx");
  assert.deepEqual(notes, []);
  assert.equal(datasetName("a", ck({}), lenet, {}, note), "mnist");
  assert.match(notes[0], /no dataset recorded; using mnist/);
  assert.throws(() => datasetName("a", ck({}), ddnet, {}, note), /give --data \(mnist/);
});

Deno.test("torchStateDict() reads DataParallel, double and nn.Sequential/nn.Linear state_dicts", () => {
  const dp = torchStateDict({
    "module.conv1.weight": {
      dtype: "F64",
      shape: [2],
      data: new Float64Array([0.1, -2]),
    },
    "module.conv1.bias": f32([1]),
  }, "lenet");
  assert.deepEqual(Object.keys(dp.tensors), ["conv1.weight", "conv1.bias"]);
  assert.equal(dp.tensors["conv1.weight"].dtype, "F32");
  assert.deepEqual(Array.from(dp.tensors["conv1.weight"].data), [Math.fround(0.1), -2]);
  assert.equal(dp.changes.length, 2);
  const seq = torchStateDict(
    {
      "1.weight": f32([3, 2]),
      "1.bias": f32([3]),
      "10.weight": f32([4, 3]),
      "4.weight": f32([3, 3]),
    },
    "mlp",
  );
  assert.deepEqual(Object.keys(seq.tensors).sort(), [
    "fc1.bias",
    "fc1.weight",
    "fc2.weight",
    "fc3.weight",
  ]);
  assert.deepEqual(seq.tensors["fc2.weight"].shape, [3, 3], "index 4 before index 10");
  assert.deepEqual(Object.keys(torchStateDict({ weight: f32([4, 2]) }, "mlp").tensors), [
    "fc1.weight",
  ]);
  // only an MLP is renamed, and only when it has no fc1 of its own
  assert.deepEqual(Object.keys(torchStateDict({ "0.weight": f32([1]) }, "lenet").tensors), [
    "0.weight",
  ]);
  const own = { "fc1.weight": f32([1, 1]), "2.weight": f32([1]) };
  assert.deepEqual(torchStateDict(own, "mlp"), { tensors: own, changes: [] });
});
