import { assert, getBackend, randomArray } from "./_util.ts";
import { buildReport, reportCommand } from "../cli/report.ts";
import { buildModel } from "../src/models/mod.ts";
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
