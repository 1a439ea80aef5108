/**
 * Batch sizes under the WebAssembly backend's memory cap (src/layers/memory.ts): the per-sample
 * estimate against a count by hand and against the memory a real forward pass takes, and
 * evaluate / robustness choosing a batch that fits where the usual 500 would not.
 */

import { assert, randomArray } from "./_util.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import { Runtime } from "../src/gpu/runtime.ts";
import { Conv2d } from "../src/layers/conv2d.ts";
import { ReLU, Tanh } from "../src/layers/activation.ts";
import { Flatten } from "../src/layers/flatten.ts";
import { Linear } from "../src/layers/linear.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { fittingBatchSize, forwardBytesPerSample } from "../src/layers/memory.ts";
import { buildModel, modelSpecFromName } from "../src/models/mod.ts";
import { evaluate } from "../src/train/train.ts";
import type { Backend } from "../src/backend.ts";

function convNet(rt: Backend): Sequential {
  return new Sequential(rt, "", [
    new Conv2d(rt, "0", 3, 32, 3, { padding: 1 }),
    new ReLU(rt, "1"),
    new Conv2d(rt, "2", 32, 32, 3, { padding: 1 }),
    new ReLU(rt, "3"),
    new Flatten("4"),
    new Linear(rt, "5", 32 * 16 * 16, 10),
  ]);
}

Deno.test("forwardBytesPerSample counts each layer's output once, residual branches included", async () => {
  const rt = await WasmRuntime.create({ threads: 1, warn: false });
  try {
    const mlp = new Sequential(rt, "", [
      new Linear(rt, "0", 4, 8),
      new Tanh(rt, "1"),
      new Linear(rt, "2", 8, 3),
    ]);
    assert.equal(forwardBytesPerSample(mlp, [4]), 4 * (8 + 8 + 3));
    mlp.dispose();
    const conv = convNet(rt);
    assert.equal(forwardBytesPerSample(conv, [3, 16, 16]), 4 * (4 * 32 * 16 * 16 + 32 * 256 + 10));
    conv.dispose();

    // ResNet-18 on 32×32: the estimate against what one forward pass of 8 samples really takes
    // from the heap (its layers' outputs, BatchNorm's statistics and kernel temporaries).
    const res = buildModel(rt, modelSpecFromName("resnet18", { classes: 100 }), { seed: 1 });
    res.eval();
    const per = forwardBytesPerSample(res, [3, 32, 32]);
    // main path 8·(64·32·32·(conv, bn, relu) …): at least the stem's three 64×32×32 outputs
    assert(per > 3 * 4 * 64 * 32 * 32, `${per}`);
    const x = rt.upload(randomArray(8 * 3 * 32 * 32, 3, 0, 1), [8, 3, 32, 32]);
    const before = rt.memory().inUseBytes;
    res.forward(x);
    const taken = rt.memory().inUseBytes - before;
    const ratio = taken / (8 * per);
    assert(ratio > 0.95 && ratio < 1.1, `forward took ${taken} bytes, estimate ${8 * per}`);
    x.dispose();
    res.dispose();
  } finally {
    rt.destroy();
  }
});

Deno.test("fittingBatchSize keeps the batch on WebGPU and shrinks it under the Wasm cap", async () => {
  const small = await WasmRuntime.create({ threads: 1, warn: false, maxMemoryBytes: 40 << 20 });
  try {
    const net = convNet(small);
    const per = forwardBytesPerSample(net, [3, 16, 16]);
    const bs = fittingBatchSize(small, net, [3, 16, 16], 500);
    const free = (40 << 20) - small.memory().inUseBytes;
    assert.equal(bs, Math.floor(free / 2 / per));
    assert(bs > 10 && bs < 500, `${bs}`);
    assert.equal(
      fittingBatchSize(small, net, [3, 16, 16], 500, { backward: true }),
      Math.floor(free / 4 / per),
    );
    assert.equal(fittingBatchSize(small, net, [3, 16, 16], 7), 7);
    // not a layer (a metric's bare forward): kept
    assert.equal(fittingBatchSize(small, { forward: () => null }, [3, 16, 16], 500), 500);
    net.dispose();
  } finally {
    small.destroy();
  }
  let gpu: Runtime | null = null;
  try {
    gpu = await Runtime.create({ backend: "webgpu" });
  } catch {
    return; // no adapter: the WebGPU half is the suite's first pass
  }
  const net = convNet(gpu);
  assert.equal(fittingBatchSize(gpu, net, [3, 16, 16], 500), 500);
  net.dispose();
});

Deno.test("evaluate picks a batch that fits the Wasm cap where 500 samples do not", async () => {
  const rt = await WasmRuntime.create({ threads: 2, warn: false, maxMemoryBytes: 40 << 20 });
  try {
    const net = convNet(rt);
    const n = 700;
    const data = {
      name: "random",
      x: randomArray(n * 768, 5, 0, 1),
      y: Int32Array.from({ length: n }, (_, i) => (i * 7) % 10),
      sampleShape: [3, 16, 16],
      classes: 10,
      length: n,
    };
    // 700 samples at once take about 46 MiB (68 KB each: the fused conv+ReLU outputs; the
    // estimate, 164 KB, counts every layer's output): past the 40 MiB cap
    await assert.rejects(
      () => evaluate(net, data, { batchSize: 700 }),
      /Out of WebAssembly memory/,
    );
    const auto = await evaluate(net, data);
    const fixed = await evaluate(net, data, { batchSize: 20 });
    assert.equal(auto.accuracy, fixed.accuracy);
    assert(
      Math.abs(auto.loss - fixed.loss) < 1e-5 * Math.abs(fixed.loss),
      `${auto.loss} ${fixed.loss}`,
    );
    net.dispose();
  } finally {
    rt.destroy();
  }
});
