/**
 * The presets in experiments/: each parses, expands under both budgets into runs whose flags
 * `cli.ts train` accepts, with several seeds; the toy preset covers every regularizer.
 */
import { assert } from "./_util.ts";
import { expandPreset, parsePreset, type Preset } from "../src/sweep/grid.ts";
import { checkTrainFlags } from "../cli/sweep/run.ts";
import { REGULARIZERS } from "../src/regularizers/registry.ts";

const DIR = decodeURIComponent(new URL("../experiments/", import.meta.url).pathname);

async function presets(): Promise<Map<string, Preset>> {
  const out = new Map<string, Preset>();
  for await (const e of Deno.readDir(DIR)) {
    if (e.name.endsWith(".json")) {
      out.set(e.name, parsePreset(JSON.parse(await Deno.readTextFile(DIR + e.name)), e.name));
    }
  }
  return out;
}

Deno.test("experiments/*.json expand under quick and full into runs cli.ts train accepts", async () => {
  const all = await presets();
  for (
    const f of [
      "toy.json",
      "toy_linear.json",
      "mnist_lenet.json",
      "hoffman2019_lenet.json",
      "cifar10_ddnet.json",
      "cifar100_resnet18.json",
    ]
  ) {
    assert.ok(all.has(f), `experiments/${f} is missing`);
  }
  const names = new Set<string>();
  for (const [f, p] of all) {
    assert.ok(!names.has(p.name), `${f}: name ${p.name} used twice`);
    names.add(p.name);
    for (const [budget, minSeeds] of [["quick", 2], ["full", 3]] as const) {
      const runs = await expandPreset(p, { budget });
      for (const r of runs) checkTrainFlags(r);
      const seeds = new Set(runs.map((r) => r.axes.seed));
      assert.ok(seeds.size >= minSeeds, `${f} ${budget}: ${seeds.size} seed(s)`);
      assert.equal(runs.length, Object.keys(p.variants).length * seeds.size, f);
    }
    const quick = await expandPreset(p, { budget: "quick" });
    const full = await expandPreset(p, { budget: "full" });
    assert.ok(
      Number(quick[0].train.epochs) < Number(full[0].train.epochs),
      `${f}: quick trains less`,
    );
    for (const ref of p.reference ?? []) {
      for (const v of Object.keys(ref.values)) assert.ok(v in p.variants, `${f}: reference ${v}`);
    }
  }
});

Deno.test("experiments/toy.json has every regularizer and dropout; MNIST has the seed's variants", async () => {
  const all = await presets();
  const toy = all.get("toy.json")!;
  const used = new Set(
    Object.values(toy.variants).flatMap((v) => (v.train?.reg as string[] | undefined) ?? [])
      .map((s) => s.split(":")[0]),
  );
  for (const r of REGULARIZERS) assert.ok(used.has(r.name), `toy.json lacks ${r.name}`);
  assert.ok(Object.values(toy.variants).some((v) => Number(v.train?.dropout) > 0));
  const mnist = all.get("mnist_lenet.json")!;
  const regs = (v: string) => (mnist.variants[v].train?.reg as string[] | undefined) ?? [];
  assert.deepEqual(regs("none"), []);
  assert.equal(mnist.variants.none.train?.dropout, 0);
  assert.equal(mnist.train.dropout, 0.5);
  assert.deepEqual(regs("l2"), ["l2:lambda=5e-4"]);
  assert.match(regs("jacobian")[0], /^jacobian:lambda=0\.01/);
  assert.match(regs("hard-svb")[0], /^hard-svb:eps=0\.05/);
});
