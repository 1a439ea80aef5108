import { assert } from "./_util.ts";
import {
  classMapImage,
  classPalette,
  decodePng,
  encodePng,
  heatmapImage,
  histogramChart,
  htmlPage,
  imageWithOverlay,
  lineChart,
  parseColor,
  pngDataUri,
  predictorBlocks,
  predictorScatterChart,
  reliabilityChart,
  renderSvg,
  scatterChart,
} from "../src/plot/mod.ts";
import { predictorCorrelations } from "../src/metrics/rank_correlation.ts";

Deno.test("encodePng() output decodes back to the same pixels", () => {
  const classes = Uint32Array.from({ length: 6 * 4 }, (_, i) => i % 3);
  const img = classMapImage(classes, 4, 6, { classes: 3, scale: 2 });
  assert.equal(img.width, 12);
  assert.equal(img.height, 8);
  const back = decodePng(encodePng(img));
  assert.equal(back.width, 12);
  assert.deepEqual(back.data, img.data);
  // The pixel colour of class c is the palette's colour c (what the legend shows).
  const pal = classPalette(3).map(parseColor);
  assert.deepEqual([...back.data.subarray(0, 3)], pal[0]);
  assert.deepEqual([...back.data.subarray(4 * 2, 4 * 2 + 3)], pal[1]);
  assert.match(pngDataUri(encodePng(img)), /^data:image\/png;base64,iVBORw0KGgo/);
  assert.throws(() => encodePng({ width: 2, height: 2, data: new Uint8Array(3) }), /3 bytes/);
});

Deno.test("heatmapImage() and imageWithOverlay() map the range to the colour scale ends", () => {
  const h = heatmapImage([0, 1, 2, 3], 2, 2, { scheme: "viridis" });
  assert.deepEqual([...h.data.subarray(0, 3)], [68, 1, 84]); // viridis(0)
  assert.deepEqual([...h.data.subarray(12, 15)], [253, 231, 37]); // viridis(1)
  const o = imageWithOverlay([0, 0.5, 1, 1], [1, 2, 2]);
  assert.deepEqual([...o.data.subarray(4, 7)], [128, 128, 128]);
  const o2 = imageWithOverlay([0, 0, 0, 0], [1, 2, 2], { heat: [0, 0, 0, 1], alpha: 1 });
  assert.deepEqual([...o2.data.subarray(0, 3)], [0, 0, 0]);
  assert.notDeepEqual([...o2.data.subarray(12, 15)], [0, 0, 0]);
  assert.equal(classPalette(100).length, 100);
  assert.equal(new Set(classPalette(100)).size, 100);
});

Deno.test("renderSvg() draws Vega-Lite charts headless", async () => {
  const curves = await renderSvg(
    lineChart([
      { x: 0, y: 1, series: "train" },
      { x: 1, y: 0.5, series: "train" },
      { x: 1, y: NaN, series: "val" },
    ], { title: "loss", xTitle: "epoch" }),
  );
  assert.match(curves, /^<svg[\s\S]*<\/svg>$/);
  assert.match(curves, /epoch/);
  const rel = await renderSvg(reliabilityChart([
    { lo: 0, hi: 0.5, count: 3, accuracy: 0.3, confidence: 0.4 },
    { lo: 0.5, hi: 1, count: 0, accuracy: NaN, confidence: NaN },
  ]));
  assert.match(rel, /<svg/);
  const hist = await renderSvg(histogramChart({ edges: [0, 1, 2], counts: [3, 4] }));
  assert.match(hist, /<svg/);
  const sc = await renderSvg(scatterChart([{ x: 0, y: 0, label: 0 }, { x: 1, y: 2, label: 1 }], {
    classNames: ["cat", "dog"],
  }));
  // The scatter's colours are the image palette's.
  assert.ok(sc.includes(classPalette(2)[1]), "palette colour in the SVG");
  assert.match(sc, /dog/);
});

Deno.test("htmlPage() is self-contained and escapes text", () => {
  const page = htmlPage("a <b> & c", [
    { kind: "text", text: "<script>" },
    { kind: "table", header: ["model", "acc"], rows: [["x", 0.98765], ["y", NaN]] },
    { kind: "legend", classNames: ["0", "1"] },
    { kind: "png", uri: "data:image/png;base64,AAAA", caption: "plane" },
  ]);
  assert.match(page, /a &lt;b&gt; &amp; c/);
  assert.ok(!page.includes("<script>"));
  assert.match(page, /0\.9877/);
  assert.ok(!/(src|href)="https?:/.test(page));
});

/** The `<g>` of the chart's own marks of one type (not the axes' or legend's). */
function markGroup(svg: string, type: string): string {
  return svg.match(new RegExp(`<g class="mark-${type} role-mark[\\s\\S]*?</g>`))?.[0] ?? "";
}

Deno.test("lineChart() draws a one-epoch history as visible points on a widened axis", async () => {
  const svg = await renderSvg(lineChart([
    { x: 1, y: 0.5, series: "a train" },
    { x: 1, y: 0.7, series: "a val" },
  ], { xTitle: "epoch" }));
  const pts = [...markGroup(svg, "symbol").matchAll(/translate\(([\d.]+),([\d.]+)\)/g)];
  assert.equal(pts.length, 2);
  // width 320, domain [0, 2]: epoch 1 in the middle, not on the frame's edge
  for (const p of pts) assert.equal(Number(p[1]), 160);
  assert.match(markGroup(svg, "symbol"), /opacity="1"/);
  assert.match(svg, />1<\/text>/);
  assert.ok(!svg.includes("1.000000"), "no collapsed-domain tick labels");
});

Deno.test("reliabilityChart() shows each bin's count and draws nothing for empty bins", async () => {
  const svg = await renderSvg(reliabilityChart([
    { lo: 0, hi: 1 / 3, count: 3, accuracy: 0, confidence: 0.3 },
    { lo: 1 / 3, hi: 2 / 3, count: 0, accuracy: NaN, confidence: NaN },
    { lo: 2 / 3, hi: 1, count: 12, accuracy: 0.75, confidence: 0.8 },
  ]));
  const bars = markGroup(svg, "rect").match(/aria-roledescription="rect mark"/g) ?? [];
  assert.equal(bars.length, 2, "no bar for the empty bin");
  const counts = [...markGroup(svg, "text").matchAll(/>(\d+)<\/text>/g)].map((m) => m[1]);
  assert.deepEqual(counts, ["3", "12"], "a count over every non-empty bin, accuracy 0 included");
});

Deno.test("predictorScatterChart() names the checkpoints and skips non-finite points", async () => {
  const svg = await renderSvg(predictorScatterChart([
    { x: 1, y: 0.2, name: "none", group: "none" },
    { x: 2, y: 0.4, name: "l2", group: "l2" },
    { x: NaN, y: 0.1, name: "bad", group: "bad" },
  ], { xTitle: "‖J‖_F", yTitle: "PGD" }));
  assert.match(svg, />none<\/text>/);
  assert.match(svg, />l2<\/text>/);
  assert.ok(!svg.includes(">bad<"));
});

/** The text marks of a chart's label layer: position (translate) and text. */
function textMarks(svg: string): { x: number; y: number; text: string }[] {
  return [...markGroup(svg, "text").matchAll(/translate\(([-\d.e]+),([-\d.e]+)\)[^>]*>([^<]*)</g)]
    .map((m) => ({ x: Number(m[1]), y: Number(m[2]), text: m[3] }));
}

Deno.test("predictorScatterChart() labels never overlap; coinciding points share one label", async () => {
  // Twelve runs along a line, 0.1 apart on a 240 px axis: names beside each would collide.
  const pts = Array.from({ length: 12 }, (_, i) => ({
    x: i * 0.1,
    y: 0.5 + 0.001 * (i % 2),
    name: `hard-svb-seed${i}-86dc5d1d5c`,
    group: i < 6 ? "hard-svb" : "none",
  }));
  // Two more exactly on top of the first.
  pts.push({ ...pts[0], name: "dup-a" }, { ...pts[0], name: "dup-b" });
  const svg = await renderSvg(predictorScatterChart(pts, { xTitle: "‖J‖_F", yTitle: "PGD" }));
  const marks = textMarks(svg);
  assert.ok(marks.length >= 2, "some labels drawn");
  // 9 px sans-serif, at most 0.6 em a character, left-aligned, vertically centred (as drawn).
  const box = (
    m: { x: number; y: number; text: string },
  ) => [m.x, m.y - 5, m.x + 0.6 * 9 * m.text.length, m.y + 5];
  for (let i = 0; i < marks.length; i++) {
    for (let j = i + 1; j < marks.length; j++) {
      const [a, b] = [box(marks[i]), box(marks[j])];
      const hit = a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
      assert.ok(!hit, `labels "${marks[i].text}" and "${marks[j].text}" overlap`);
    }
  }
  // Short labels: one per cluster, the coinciding three in one label.
  const short = await renderSvg(predictorScatterChart(
    pts.map((p, i) => ({ ...p, label: String(i + 1) })),
    { xTitle: "‖J‖_F", yTitle: "PGD" },
  ));
  const texts = textMarks(short).map((m) => m.text);
  assert.ok(texts.includes("1,13,14"), `coinciding points share a label: ${texts}`);
  assert.equal(texts.filter((t) => t.split(",").includes("13")).length, 1);
  assert.ok(texts.length >= 8, `most points labelled: ${texts}`);
  // Groups holding several points get a colour legend.
  assert.match(short, /aria-label="Symbol legend/);
});

Deno.test("predictorScatterChart() draws a constant axis around its value, marked constant", async () => {
  const svg = await renderSvg(predictorScatterChart([
    { x: 1, y: 0, name: "a", group: "a" },
    { x: 2, y: 0, name: "b", group: "b" },
    { x: 4, y: 0, name: "c", group: "c" },
  ], { xTitle: "‖J‖_F", yTitle: "gap" }));
  assert.deepEqual(axisLabels(svg, "Y"), ["0 (constant)"]);
  assert.ok(!svg.includes("0.000000"));
  // The points sit on the middle of the plot's height (190 px), not on its frame.
  const ys = [...markGroup(svg, "symbol").matchAll(/translate\(([-\d.]+),([-\d.]+)\)/g)]
    .map((m) => Number(m[2]));
  assert.deepEqual(ys, [95, 95, 95]);
  const acc = await renderSvg(predictorScatterChart([
    { x: 1, y: 0.2, name: "a", group: "a" },
    { x: 1, y: 0.4, name: "b", group: "b" },
  ], { xTitle: "accuracy" }));
  assert.deepEqual(axisLabels(acc, "X"), ["1 (constant)"]);
});

/** The tick labels Vega shows (opacity 1, not those hidden for overlap) on the X or Y axis. */
function axisLabels(svg: string, axis: "X" | "Y"): string[] {
  const at = svg.indexOf(`aria-label="${axis}-axis`);
  assert.ok(at >= 0, `${axis} axis in the SVG`);
  const group = svg.slice(at).match(/<g class="mark-text role-axis-label"[\s\S]*?<\/g>/)![0];
  return [...group.matchAll(/opacity="1">([^<]*)<\/text>/g)].map((m) => m[1]);
}

Deno.test("lineChart() with integerX and histogramChart() counts put ticks on whole numbers only", async () => {
  for (const epochs of [3, 7, 200]) {
    const svg = await renderSvg(lineChart(
      Array.from({ length: epochs }, (_, i) => ({ x: i + 1, y: 1 / (i + 1), series: "a" })),
      { xTitle: "epoch", integerX: true },
    ));
    const ticks = axisLabels(svg, "X");
    assert.ok(ticks.length >= 2 && ticks.length <= 12, `${epochs} epochs: ${ticks}`);
    for (const t of ticks) assert.match(t, /^\d+$/, `${epochs} epochs: tick ${t}`);
  }
  // Without integerX a continuous axis keeps its fractional ticks (ε, say).
  const eps = await renderSvg(
    lineChart([{ x: 0, y: 1, series: "a" }, { x: 1, y: 0, series: "a" }]),
  );
  assert.ok(axisLabels(eps, "X").some((t) => t.includes(".")));
  // Counts of 0 and 1 would get ticks 0, 0.2, … or 0.5 without the integer axis.
  for (const logY of [false, true]) {
    const hist = await renderSvg(
      histogramChart({ edges: [0, 1, 2, 3], counts: [1, 0, 1] }, { logY }),
    );
    const ticks = axisLabels(hist, "Y");
    assert.ok(ticks.length >= 2, `${ticks}`);
    for (const t of ticks) assert.match(t, /^\d+$/, `logY ${logY}: count tick ${t}`);
  }
});

Deno.test("predictorBlocks() numbers long run ids with a key, names short ones, and titles a constant ρ", async () => {
  const runs = ["none-seed0-be255b3552", "none-seed1-07b2c51c5e", "hard-svb-seed0-86dc5d1d5c"];
  const analysis = (names: string[], gap: number[]) =>
    predictorCorrelations(
      names.map((name, i) => ({
        name,
        quantities: { "‖J‖_F": [5, 4, 1.5][i] },
        targets: { gap: gap[i] },
      })),
      { resamples: 50, seed: 0 },
    );
  const page = htmlPage("p", await predictorBlocks(analysis(runs, [0, 0, 0]), { what: "runs" }));
  assert.match(
    page,
    /1: none-seed0-be255b3552 · 2: none-seed1-07b2c51c5e · 3: hard-svb-seed0-86dc5d1d5c/,
  );
  assert.ok(!page.includes(">none-seed0-be255b3552</text>"), "no run id drawn in the plot");
  assert.match(page, />ρ: – \(a constant variable\)</);
  assert.match(page, />0 \(constant\)</);
  const named = htmlPage(
    "p",
    await predictorBlocks(analysis(["none", "l2", "jr"], [0.1, 0.05, 0.02])),
  );
  assert.match(named, />jr<\/text>/);
  assert.ok(!named.includes("1: none"), "no key for short names");
  assert.match(named, />ρ = \+1\.00 \[/);
});

Deno.test("lineChart() keeps one colour per series and draws `dash` groups (train/val) as dashes", async () => {
  const pts = ["a", "b"].flatMap((series) =>
    [1, 2, 3].flatMap((x) => [
      { x, y: x, series, dash: "train" },
      { x, y: x + 1, series, dash: "val" },
    ])
  );
  const svg = await renderSvg(lineChart(pts, { xTitle: "epoch", integerX: true }));
  const lines = [...svg.matchAll(/<path [^>]*aria-roledescription="line mark"[^>]*>/g)]
    .map((m) => m[0]);
  assert.equal(lines.length, 4);
  const stroke = (l: string) => l.match(/stroke="([^"]+)"/)![1];
  assert.equal(new Set(lines.map(stroke)).size, 2, "a colour per series");
  const dashed = lines.filter((l) => /stroke-dasharray="6,3"/.test(l));
  assert.equal(dashed.length, 2, "val dashed");
  assert.equal(new Set(dashed.map(stroke)).size, 2, "one dashed curve per series");
  // The legend shows the dash as a drawn line.
  assert.match(svg, /role-legend-symbol[^>]*><path [^>]*stroke="#555"[^>]*stroke-dasharray="6,3"/);
});
