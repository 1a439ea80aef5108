import { assert, getBackend, randomArray } from "./_util.ts";
import { buildReport, reportCommand } from "../cli/report.ts";
import { GAP_TARGET, measureModels, pgdTarget } from "../src/metrics/report.ts";
import { renderReport } from "../src/plot/mod.ts";
import { buildModel } from "../src/models/mod.ts";
import { encodeCheckpoint } from "../src/io/checkpoint.ts";
import { logitMargins } from "../src/metrics/margin.ts";
import { predictionStats, spearman } from "../src/metrics/mod.ts";

function capture() {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
}

Deno.test("buildReport() compares image models on the same planes in one HTML page", async () => {
  const rt = await getBackend();
  const spec = { kind: "mlp", inputs: 36, hidden: [8], classes: 3, inputShape: [1, 6, 6] };
  const a = buildModel(rt, spec, { seed: 1 }), b = buildModel(rt, spec, { seed: 2 });
  const n = 24;
  const data = {
    name: "tiny",
    x: randomArray(n * 36, 5, 0, 1),
    y: Int32Array.from({ length: n }, (_, i) => i % 3),
    sampleShape: [1, 6, 6],
    classes: 3,
    classNames: ["a", "b", "c"],
  };
  const { html, rows } = await buildReport(
    rt,
    [
      {
        name: "A",
        model: a,
        metadata: { history: { epochs: [{ epoch: 1, trainLoss: 1, trainAccuracy: 0.5 }] } },
      },
      { name: "B", model: b },
    ],
    data,
    {
      images: 2,
      planesPerImage: 2,
      resolution: 12,
      show: 1,
      eps: [0.1],
      pgdSteps: 2,
      pcaSamples: 12,
      jacobianSamples: 8,
    },
  );
  assert.equal(rows.length, 2);
  for (const r of rows) {
    assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
    assert.ok(r.jacobianMean > 0 && r.tvIso >= 0 && r.tvAniso >= r.tvIso);
    assert.equal(r.robustness!.eps.length, 1);
  }
  assert.notEqual(rows[0].jacobianMean, rows[1].jacobianMean);
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /TV iso/);
  assert.match(html, /FGSM example/);
  assert.ok((html.match(/data:image\/png;base64/g) ?? []).length >= 2 * 3);
  assert.match(html, /<svg/);
  assert.ok(!/(src|href)="https?:/.test(html), "no external resources");
  a.dispose();
  b.dispose();
});

Deno.test("reportCommand() writes a report for toy2d checkpoints; usage errors exit 2", async () => {
  const rt = await getBackend();
  const dir = await Deno.makeTempDir();
  const spec = { kind: "mlp", inputs: 2, hidden: [6], classes: 4, activation: "tanh" };
  const m = buildModel(rt, spec, { seed: 3 });
  const path = `${dir}/toy.safetensors`;
  await Deno.writeFile(path, await encodeCheckpoint(m, { model: spec, data: { name: "toy2d" } }));
  m.dispose();
  const c = capture();
  const code = await reportCommand([
    path,
    "--out",
    `${dir}/r.html`,
    "--limit",
    "64",
    "--images",
    "2",
    "--planes-per-image",
    "2",
    "--resolution",
    "10",
    "--show",
    "1",
    "--eps",
    "0.1",
    "--pgd-steps",
    "2",
    "--pca-samples",
    "16",
    "--json",
  ], c.io);
  assert.equal(code, 0, c.err.join("\n"));
  const html = await Deno.readTextFile(`${dir}/r.html`);
  assert.match(html, /Input plane/);
  assert.match(html, /sqrt\(det JᵀJ\)/);
  assert.ok(JSON.parse(c.out[0])[0].tvIso >= 0);
  // The output exists now: refused without --force.
  assert.equal(await reportCommand([path, "--out", `${dir}/r.html`, "--attack", "none"], c.io), 2);
  assert.equal(await reportCommand([], c.io), 2);
  assert.equal(await reportCommand([path, "--attack", "cw"], c.io), 2);
  assert.equal(await reportCommand([path, "--force", "--level", "1"], c.io), 2);
  assert.match(c.err.at(-1)!, /'--level' needs a number in \(0, 1\)/);
  assert.equal(await reportCommand([path, "--force", "--predictor-eps", "0.7"], c.io), 2);
  assert.match(c.err.at(-1)!, /'--predictor-eps' needs one of the PGD radii/);
  const h = capture();
  assert.equal(await reportCommand(["--help"], h.io), 0);
  assert.match(h.out[0], /Usage: deno run -A cli.ts report/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("logitMargins() is f_y − max_{j≠y} f_j of the logits, positive iff correct", async () => {
  const rt = await getBackend();
  const spec = { kind: "mlp", inputs: 6, hidden: [5], classes: 4 };
  const m = buildModel(rt, spec, { seed: 4 });
  const n = 23;
  const data = {
    x: randomArray(n * 6, 9, 0, 1),
    y: Int32Array.from({ length: n }, (_, i) => (i * 7) % 4),
    sampleShape: [6],
  };
  const got = await logitMargins(rt, m, data, { batchSize: 7 });
  const xt = rt.upload(data.x, [n, 6]);
  const z = (await m.forward(xt).read()) as Float32Array;
  xt.dispose();
  const st = await predictionStats(rt, m, data);
  for (let i = 0; i < n; i++) {
    const t = data.y[i];
    const others = [0, 1, 2, 3].filter((j) => j !== t).map((j) => z[i * 4 + j]);
    const want = z[i * 4 + t] - Math.max(...others);
    assert.ok(Math.abs(got[i] - want) <= 1e-6 * (1 + Math.abs(want)), `sample ${i}`);
    assert.equal(got[i] > 0, st.correct[i] === 1, `sample ${i}: sign vs correctness`);
  }
  await assert.rejects(
    () => logitMargins(rt, m, { ...data, y: data.y.map(() => 9) }),
    /label 9 outside \[0, 4\)/,
  );
  m.dispose();
});

Deno.test("buildReport() rank-correlates the measured quantities with the gap and PGD accuracy", async () => {
  const rt = await getBackend();
  const spec = { kind: "mlp", inputs: 16, hidden: [6], classes: 3, inputShape: [1, 4, 4] };
  const models = [1, 2, 3, 4].map((seed) => buildModel(rt, spec, { seed }));
  const n = 30;
  const test = {
    name: "tiny",
    x: randomArray(n * 16, 5, 0, 1),
    y: Int32Array.from({ length: n }, (_, i) => i % 3),
    sampleShape: [1, 4, 4],
    classes: 3,
  };
  const train = {
    x: randomArray(n * 16, 6, 0, 1),
    y: Int32Array.from({ length: n }, (_, i) => (i + 1) % 3),
  };
  const measured = await measureModels(
    rt,
    models.map((model, i) => ({ name: `m${i}`, model, train: i === 3 ? undefined : train })),
    test,
    {
      images: 1,
      planesPerImage: 1,
      resolution: 8,
      show: 0,
      eps: [0.05, 0.1],
      pgdSteps: 2,
      pcaSamples: 0,
      jacobianSamples: 6,
      predictors: { resamples: 300 },
    },
  );
  const rows = measured.models.map((m) => m.row);
  for (const [i, r] of rows.entries()) {
    const w = measured.models[i].weights;
    assert.ok(Math.abs(r.weightNorm - Math.hypot(...w.map((t) => t.l2))) < 1e-9);
    assert.ok(
      Math.abs(r.logSpectralProduct - w.reduce((a, t) => a + Math.log(t.spectralNorm!), 0)) < 1e-9,
    );
    if (i < 3) assert.ok(Math.abs(r.generalizationGap! - (r.trainAccuracy! - r.accuracy)) < 1e-12);
    assert.ok(Number.isFinite(r.margin));
  }
  assert.equal(rows[3].generalizationGap, undefined);
  const p = measured.predictors!;
  assert.deepEqual(p.targets, [GAP_TARGET, pgdTarget(0.05), pgdTarget(0.1)]);
  assert.equal(p.scatterTarget, pgdTarget(0.05));
  assert.equal(p.cells.length, p.quantities.length * 3);
  const jPgd = p.cells.find((c) => c.quantity === "‖J‖_F" && c.target === pgdTarget(0.1))!;
  assert.equal(jPgd.n, 4);
  assert.equal(jPgd.resamples, 300);
  const want = spearman(
    rows.map((r) => r.jacobianMean),
    rows.map((r) => r.robustness!.accuracy.pgd[1]),
  );
  assert.ok(Object.is(jPgd.rho, want) || jPgd.rho === want);
  assert.equal(
    p.cells.find((c) => c.target === GAP_TARGET)!.n,
    3,
    "the model without train data is left out",
  );
  const html = await renderReport(measured);
  assert.match(html, /What predicts robustness/);
  assert.match(html, /B = 300 resamples/);
  assert.match(html, /ρ with PGD accuracy ε=0\.1/);
  for (const m of models) m.dispose();
});

/**
 * conv1 (1 → c, 3×3) → ReLU → a stride-2 BasicBlock (c → out) → fc on 8×8 inputs, 3 classes: a
 * residual block whose feature maps the report folds.
 */
function residualSpec(c: number, out: number) {
  return {
    kind: "sequential",
    inputShape: [1, 8, 8],
    classes: 3,
    layers: [
      { type: "conv2d", name: "conv1", in: 1, out: c, kernel: 3, padding: 1 },
      { type: "relu", name: "act1" },
      { type: "basic_block", name: "layer1.0", in: c, out, stride: 2 },
      { type: "flatten" },
      { type: "linear", name: "fc", in: out * 16, out: 3 },
    ],
  };
}

/** n random 8×8 images in [0, 1] (seed 6), labels 0, 1, 2, 0, ... */
function tiny8x8(n: number) {
  return {
    name: "tiny",
    x: randomArray(n * 64, 6, 0, 1),
    y: Int32Array.from({ length: n }, (_, i) => i % 3),
    sampleShape: [1, 8, 8],
    classes: 3,
  };
}

Deno.test("measureModels() takes feature maps of every conv and t-SNE beside each PCA layer; renderReport() draws them", async () => {
  const rt = await getBackend();
  const spec = {
    kind: "sequential",
    inputShape: [1, 8, 8],
    classes: 3,
    layers: [
      { type: "conv2d", name: "conv1", in: 1, out: 3, kernel: 3, padding: 1 },
      { type: "relu", name: "act1" },
      { type: "maxpool2d", kernel: 2 },
      { type: "conv2d", name: "conv2", in: 3, out: 4, kernel: 3 },
      { type: "tanh", name: "act2" },
      { type: "flatten" },
      { type: "linear", name: "fc", in: 16, out: 3 },
    ],
  };
  const model = buildModel(rt, spec, { seed: 4 });
  const data = tiny8x8(30);
  try {
    const m = await measureModels(rt, [{ name: "conv", model }], data, {
      images: 1,
      planesPerImage: 1,
      resolution: 8,
      show: 1,
      attacks: [],
      pcaSamples: 20,
      tsneSamples: 20,
      featureMaps: 2,
      jacobianSamples: 4,
    });
    const mm = m.models[0];
    assert.deepEqual(
      mm.featureMaps!.map((f) => [f.layer, f.source, f.n, f.channels, f.height, f.width]),
      [["act1 (Activation)", "conv1", 2, 3, 8, 8], ["act2 (Activation)", "conv2", 2, 4, 2, 2]],
    );
    assert.equal(m.featureMapLabels.length, 2);
    // t-SNE of the three layers whose PCA is drawn, 20 samples, perplexity lowered to 6.
    assert.deepEqual(mm.tsne!.map((t) => t.layer), mm.pca!.slice(-3).map((p) => p.layer));
    for (const t of mm.tsne!) {
      assert.equal(t.embedding.length, 40);
      assert.equal(t.perplexity, 6);
      assert.ok(Number.isFinite(t.kl) && t.kl >= 0);
    }
    assert.equal(m.settings.tsneSamples, 20);
    const html = await renderReport(m);
    assert.match(html, /<h2>Feature maps<\/h2>/);
    assert.match(html, /conv, act1 \(Activation\): colour scale per channel .* 0: \[/);
    assert.match(html, /act2 \(Activation\) after conv2, sample #1/);
    assert.match(html, /PCA and t-SNE of activations/);
    assert.equal((html.match(/exact t-SNE of 20 samples, perplexity 6/g) ?? []).length, 3);
    const none = await measureModels(rt, [{ name: "conv", model }], data, {
      images: 1,
      planesPerImage: 1,
      resolution: 8,
      show: 0,
      attacks: [],
      pcaSamples: 20,
      tsneSamples: 0,
      featureMaps: 0,
      jacobianSamples: 4,
    });
    assert.equal(none.models[0].tsne, undefined);
    assert.equal(none.models[0].featureMaps, undefined);
    assert.doesNotMatch(await renderReport(none), /Feature maps|t-SNE of \d+/);
  } finally {
    model.dispose();
  }
});

Deno.test("renderReport() folds the feature maps inside a residual block under its output and draws at most featureMapChannels channels", async () => {
  const rt = await getBackend();
  const model = buildModel(rt, residualSpec(6, 3), { seed: 4 });
  const data = tiny8x8(12);
  try {
    const m = await measureModels(rt, [{ name: "res", model }], data, {
      images: 1,
      planesPerImage: 1,
      resolution: 8,
      show: 0,
      attacks: [],
      pcaSamples: 0,
      tsneSamples: 0,
      featureMaps: 1,
      featureMapChannels: 4,
      jacobianSamples: 4,
    });
    const fm = m.models[0].featureMaps!;
    assert.deepEqual(fm.map((f) => [f.source, f.block, f.channels, f.totalChannels]), [
      ["conv1", undefined, 4, 6],
      ["layer1.0.conv1", "layer1.0", 3, 3],
      ["layer1.0.conv2", "layer1.0", 3, 3],
      ["layer1.0.downsample.0", "layer1.0", 3, 3],
      ["layer1.0", undefined, 3, 3],
    ]);
    assert.equal(m.settings.featureMapChannels, 4);
    const html = await renderReport(m);
    assert.match(
      html,
      /res: act1 \(Activation\) after conv1, sample #0 \(label 0\), channels 0–3 of 6 8×8/,
    );
    assert.match(html, /At most the first 4 channels of each layer are drawn/);
    const folded = html.match(/<details><summary>([^<]*)<\/summary>([\s\S]*?)<\/details>/);
    assert.ok(folded, "a <details> section");
    assert.equal(folded[1], "layer1.0: the 3 convolutions inside the block");
    for (
      const inner of [
        "layer1.0.relu (Activation) after layer1.0.conv1",
        "layer1.0.bn2 (BatchNorm) after layer1.0.conv2",
        "layer1.0.downsample.1 (BatchNorm) after layer1.0.downsample.0",
      ]
    ) {
      assert.ok(folded[2].includes(`res: ${inner}, sample #0`), inner);
    }
    // The block's own output comes before the fold, outside it.
    const out = html.indexOf("res: layer1.0 (BasicBlock) output, sample #0");
    assert.ok(out > 0 && out < html.indexOf("<details>"));
  } finally {
    model.dispose();
  }
});

Deno.test("renderReport() folds the feature maps per model when there are several, the first open", async () => {
  const rt = await getBackend();
  const spec = residualSpec(2, 2);
  const models = [1, 2, 3].map((seed) => buildModel(rt, spec, { seed }));
  const data = tiny8x8(12);
  try {
    const opts = {
      images: 1,
      planesPerImage: 1,
      resolution: 8,
      show: 0,
      attacks: [],
      pcaSamples: 0,
      tsneSamples: 0,
      featureMaps: 1,
      jacobianSamples: 4,
    };
    const named = models.map((model, i) => ({ name: `r${i}`, model }));
    const html = await renderReport(await measureModels(rt, named, data, opts));
    const section = html.slice(html.indexOf("<h2>Feature maps</h2>"));
    const folds = [...section.matchAll(/<details( open)?><summary>(r\d: [^<]*)<\/summary>/g)];
    assert.deepEqual(folds.map((m) => [m[2], m[1] ?? ""]), [
      ["r0: 2 layers", " open"],
      ["r1: 2 layers", ""],
      ["r2: 2 layers", ""],
    ]);
    // Each model's tiles, and its block's inner fold, lie inside its own fold.
    for (let i = 0; i < 3; i++) {
      const from = folds[i].index!, to = folds[i + 1]?.index ?? section.length;
      const part = section.slice(from, to);
      assert.ok(part.includes(`r${i}: act1 (Activation) after conv1, sample #0`));
      assert.ok(part.includes("<summary>layer1.0: the 3 convolutions inside the block"));
      assert.ok(!part.includes(`r${(i + 1) % 3}: act1`));
    }
    // One model: no per-model fold.
    const one = await renderReport(await measureModels(rt, named.slice(0, 1), data, opts));
    assert.doesNotMatch(one, /<summary>r0: /);
    assert.match(one, /r0: act1 \(Activation\) after conv1, sample #0/);
  } finally {
    for (const m of models) m.dispose();
  }
});

Deno.test("reportCommand() refuses a bad --perplexity, --tsne-samples, --feature-maps or --feature-map-channels (exit 2)", async () => {
  for (
    const bad of [
      ["--perplexity", "0"],
      ["--tsne-samples", "-1"],
      ["--feature-maps", "1.5"],
      ["--feature-map-channels", "-2"],
    ]
  ) {
    const c = capture();
    assert.equal(await reportCommand(["x.safetensors", ...bad], c.io), 2, bad.join(" "));
    assert.match(c.err.join("\n"), new RegExp(`Flag '${bad[0]}'`));
  }
});
