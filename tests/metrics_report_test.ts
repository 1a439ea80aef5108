import { assert, getBackend, randomArray } from "./_util.ts";
import { buildReport, reportCommand } from "../cli/report.ts";
import { buildModel } from "../src/models/mod.ts";
import { measureModels } from "../src/metrics/mod.ts";
import { renderReport } from "../src/plot/mod.ts";
import { encodeCheckpoint } from "../src/io/checkpoint.ts";

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
  const h = capture();
  assert.equal(await reportCommand(["--help"], h.io), 0);
  assert.match(h.out[0], /Usage: deno run -A cli.ts report/);
  await Deno.remove(dir, { recursive: true });
});

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
  const n = 30;
  const data = {
    name: "tiny",
    x: randomArray(n * 64, 6, 0, 1),
    y: Int32Array.from({ length: n }, (_, i) => i % 3),
    sampleShape: [1, 8, 8],
    classes: 3,
  };
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

Deno.test("reportCommand() refuses a bad --perplexity, --tsne-samples or --feature-maps (exit 2)", async () => {
  for (const bad of [["--perplexity", "0"], ["--tsne-samples", "-1"], ["--feature-maps", "1.5"]]) {
    const c = capture();
    assert.equal(await reportCommand(["x.safetensors", ...bad], c.io), 2, bad.join(" "));
    assert.match(c.err.join("\n"), new RegExp(`Flag '${bad[0]}'`));
  }
});
