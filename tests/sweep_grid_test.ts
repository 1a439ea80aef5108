/**
 * Sweep grids, run ids, Slurm array ranges, the t-distribution CI and the results table (no GPU).
 */
import { createHash } from "node:crypto";
import { assert } from "./_util.ts";
import {
  arrayRanges,
  expandPreset,
  parseGridOverride,
  parsePreset,
  type Preset,
  trainArgv,
} from "../src/sweep/grid.ts";
import { meanCi, studentTCdf, studentTQuantile } from "../src/sweep/stats.ts";
import { buildTable, formatCell, tableCsv, tableMarkdown } from "../src/sweep/table.ts";

const PRESET: Preset = parsePreset({
  name: "demo",
  train: { model: "mlp", data: "toy2d", epochs: 50, lr: 0.1, reg: ["l1"] },
  variants: {
    none: { train: { reg: [] } },
    l2: { train: { reg: ["l2:lambda=5e-4"], lr: 0.05 } },
  },
  grid: { seed: [0, 1, 2] },
  eval: { attack: false, jacobianSamples: 100 },
  budgets: {
    quick: { train: { epochs: 2 }, grid: { seed: [0, 1] }, eval: { jacobianSamples: 10 } },
    full: {},
  },
}, "demo.json");

Deno.test("expandPreset() crosses variants with the grid, budget and variant over the base", async () => {
  const runs = await expandPreset(PRESET, {
    budget: "quick",
    grid: [parseGridOverride("lr=0.1,0.01")],
  });
  assert.equal(runs.length, 2 * 2 * 2);
  assert.deepEqual(runs.map((r) => r.index), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(runs.map((r) => `${r.variant}:${r.axes.seed}:${r.axes.lr}`), [
    "none:0:0.1",
    "none:0:0.01",
    "none:1:0.1",
    "none:1:0.01",
    "l2:0:0.1",
    "l2:0:0.01",
    "l2:1:0.1",
    "l2:1:0.01",
  ]);
  // budget over base, variant over budget, grid point over all
  assert.equal(runs[0].train.epochs, 2);
  assert.deepEqual(runs[0].train.reg, []);
  assert.deepEqual(runs[4].train.reg, ["l2:lambda=5e-4"]);
  assert.equal(runs[5].train.lr, 0.01, "the grid's lr replaces the variant's");
  assert.equal(runs[0].train.seed, 0);
  assert.equal(runs[0].eval.jacobianSamples, 10);
  assert.equal(runs[0].eval.attack, false);
  const full = await expandPreset(PRESET, { budget: "full" });
  assert.equal(full.length, 6);
  assert.equal(full[0].train.epochs, 50);
  const picked = await expandPreset(PRESET, {
    budget: "full",
    grid: [parseGridOverride("variant=l2"), parseGridOverride("seed=7")],
  });
  assert.deepEqual(picked.map((r) => [r.variant, r.axes.seed]), [["l2", 7]]);
});

Deno.test("expandPreset() rejects an unknown budget or variant, naming the known ones", async () => {
  await assert.rejects(
    expandPreset(PRESET, { budget: "medium" }),
    /no budget 'medium'.*quick, full/,
  );
  await assert.rejects(
    expandPreset(PRESET, { budget: "quick", grid: [parseGridOverride("variant=l3")] }),
    /no variant 'l3'.*none, l2/,
  );
  await assert.rejects(
    expandPreset(PRESET, { budget: "quick", grid: [parseGridOverride("seed=1,1")] }),
    /same configuration/,
  );
  assert.throws(() => parseGridOverride("seed"), /key=v1,v2/);
  assert.throws(() => parseGridOverride("seed=1,,2"), /key=v1,v2/);
  assert.deepEqual(parseGridOverride("augment=true,false").values, [true, false]);
  assert.deepEqual(parseGridOverride("model=mlp,1e-3").values, ["mlp", 0.001]);
  assert.throws(
    () =>
      parsePreset({ name: "a b", train: {}, variants: { x: {} }, budgets: { q: {} } }, "p.json"),
    /p\.json: "name"/,
  );
  assert.throws(
    () => parsePreset({ name: "a", train: {}, variants: {}, budgets: { q: {} } }, "p.json"),
    /"variants"/,
  );
});

Deno.test("expandPreset() ids: readable prefix and SHA-256 of the canonical configuration", async () => {
  const [run] = await expandPreset(PRESET, {
    budget: "quick",
    grid: [parseGridOverride("variant=l2")],
  });
  const config = { preset: "demo", variant: "l2", train: run.train, eval: run.eval };
  // The hash as node:crypto computes it over the sorted-key JSON (an independent SHA-256).
  const sorted = JSON.stringify(
    config,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
        : v,
  );
  const hex = createHash("sha256").update(sorted).digest("hex").slice(0, 10);
  assert.equal(run.id, `l2-seed0-${hex}`);
  // Stable: the same configuration with keys in another order gives the same id.
  const shuffled = parsePreset({
    budgets: {
      full: {},
      quick: { eval: { jacobianSamples: 10 }, grid: { seed: [0, 1] }, train: { epochs: 2 } },
    },
    eval: { jacobianSamples: 100, attack: false },
    grid: { seed: [0, 1, 2] },
    variants: {
      l2: { train: { lr: 0.05, reg: ["l2:lambda=5e-4"] } },
      none: { train: { reg: [] } },
    },
    train: { reg: ["l1"], lr: 0.1, epochs: 50, data: "toy2d", model: "mlp" },
    name: "demo",
  }, "x.json");
  const again = await expandPreset(shuffled, {
    budget: "quick",
    grid: [parseGridOverride("variant=l2")],
  });
  assert.equal(again[0].id, run.id);
  // Any change to the configuration changes the id; the readable part stays.
  const changed = structuredClone(PRESET);
  changed.eval = { ...changed.eval, jacobianSamples: 101 };
  const other = await expandPreset(changed, {
    budget: "full",
    grid: [parseGridOverride("variant=l2")],
  });
  const base = await expandPreset(PRESET, {
    budget: "full",
    grid: [parseGridOverride("variant=l2")],
  });
  assert.notEqual(other[0].id, base[0].id);
  assert.equal(other[0].id.slice(0, 9), base[0].id.slice(0, 9));
  assert.match(base[0].id, /^l2-seed0-[0-9a-f]{10}$/);
});

Deno.test("trainArgv() writes cli.ts train flags; arrayRanges() compresses indices", () => {
  assert.deepEqual(
    trainArgv({
      model: { kind: "mlp", hidden: [] },
      epochs: 2,
      reg: ["l1", "l2"],
      augment: true,
      test: false,
    }),
    [
      "--model",
      '{"kind":"mlp","hidden":[]}',
      "--epochs",
      "2",
      "--reg",
      "l1",
      "--reg",
      "l2",
      "--augment",
      "--no-test",
    ],
  );
  assert.equal(arrayRanges([0, 1, 2, 3]), "0-3");
  assert.equal(arrayRanges([7, 0, 1, 2, 5, 8]), "0-2,5,7-8");
  assert.equal(arrayRanges([4]), "4");
});

Deno.test("studentTQuantile() matches the published t table", () => {
  // NIST/SEMATECH e-Handbook, Table 1.3.6.7.2 (upper critical values), α = 0.025.
  const table: [number, number][] = [[1, 12.706], [2, 4.303], [3, 3.182], [4, 2.776], [9, 2.262], [
    29,
    2.045,
  ], [100, 1.984]];
  for (const [df, t] of table) {
    const got = studentTQuantile(0.975, df);
    assert.ok(Math.abs(got - t) < 6e-4, `df ${df}: ${got} vs ${t}`);
    assert.ok(Math.abs(studentTCdf(got, df) - 0.975) < 1e-12);
  }
  // df = 1 is the Cauchy distribution: exact quantile tan(π (p − ½)).
  assert.ok(Math.abs(studentTQuantile(0.975, 1) - Math.tan(Math.PI * 0.475)) < 1e-9);
  assert.ok(Math.abs(studentTQuantile(0.025, 4) + studentTQuantile(0.975, 4)) < 1e-12);
});

Deno.test("meanCi() is mean ± t·s/√n, computed by hand", () => {
  // values 0.90, 0.92, 0.97: mean 0.93, deviations -0.03, -0.01, 0.04, s² = 0.0026/2 = 0.0013
  const c = meanCi([0.9, 0.92, 0.97]);
  assert.ok(Math.abs(c.mean - 0.93) < 1e-12);
  assert.ok(Math.abs(c.std - Math.sqrt(0.0013)) < 1e-12);
  assert.ok(Math.abs(c.half - 4.302652729749464 * Math.sqrt(0.0013) / Math.sqrt(3)) < 1e-9);
  const one = meanCi([5]);
  assert.equal(one.mean, 5);
  assert.ok(Number.isNaN(one.half));
  assert.equal(formatCell("ece", one), "5.000");
  assert.equal(formatCell("testAccuracy", c), "93.00 ± 8.96");
  assert.equal(formatCell("ece", meanCi([])), "–");
});

Deno.test("buildTable() groups by everything but the seed and lists runs without a result", () => {
  const planned = [0, 1, 2].flatMap((seed) => [
    { variant: "none", axes: { seed, lr: 0.1 } },
    { variant: "l2", axes: { seed, lr: 0.1 } },
  ]);
  const results = [
    {
      id: "a",
      variant: "none",
      axes: { seed: 0, lr: 0.1 },
      metrics: { testAccuracy: 0.9, "fgsm@0.1": 0.5, "pgd@0.1": 0.2, "fgsm@0.05": 0.7 },
    },
    {
      id: "b",
      variant: "none",
      axes: { seed: 1, lr: 0.1 },
      metrics: { testAccuracy: 0.92, "fgsm@0.1": 0.6, "pgd@0.1": 0.3, "fgsm@0.05": 0.8 },
    },
    {
      id: "c",
      variant: "l2",
      axes: { seed: 0, lr: 0.1 },
      metrics: { testAccuracy: 0.95, "fgsm@0.1": 0.7, "pgd@0.1": 0.4, "fgsm@0.05": 0.9 },
    },
  ];
  const t = buildTable({
    preset: "demo",
    budget: "quick",
    planned,
    results,
    problems: [{
      id: "d",
      variant: "l2",
      axes: { seed: 1, lr: 0.1 },
      status: "failed",
      error: "boom\nstack",
      attempts: 2,
    }],
  });
  assert.deepEqual(t.columns, ["testAccuracy", "fgsm@0.05", "fgsm@0.1", "pgd@0.1"]);
  assert.deepEqual(t.rows.map((r) => [r.label, r.done, r.planned]), [["none lr=0.1", 2, 3], [
    "l2 lr=0.1",
    1,
    3,
  ]]);
  const none = t.rows[0].cells.testAccuracy;
  assert.ok(Math.abs(none.mean - 0.91) < 1e-12);
  assert.ok(Math.abs(none.half - 12.706204736174707 * Math.sqrt(0.0002) / Math.sqrt(2)) < 1e-9);
  const md = tableMarkdown(t);
  assert.match(md, /\| none lr=0\.1 \| 2\/3 /);
  assert.match(md, /FGSM ε=0\.05 \(%\)/);
  assert.match(md, /- d: failed after 2 attempt\(s\) — boom\n?/);
  assert.doesNotMatch(md, /stack/);
  const csv = tableCsv(t).trim().split("\n");
  assert.equal(csv.length, 3);
  assert.ok(
    csv[0].startsWith("preset,budget,variant,lr,done,planned,testAccuracy_mean,testAccuracy_ci95"),
  );
  const cells = csv[2].split(",");
  assert.deepEqual(cells.slice(0, 7), ["demo", "quick", "l2", "0.1", "1", "3", "0.95"]);
  assert.equal(cells[7], "", "a single seed has no interval");
});
