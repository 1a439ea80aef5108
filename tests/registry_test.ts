import { assert, getBackend } from "./_util.ts";
import { tinyMlp, toyCircle } from "./_train_util.ts";
import { train } from "../src/train/train.ts";
import { singularValuesRef } from "../src/reference/linalg.ts";
import {
  describeRegularizers,
  findRegularizer,
  parseRegularizers,
  parseRegularizerSpec,
  REGULARIZERS,
} from "../src/regularizers/registry.ts";

Deno.test("parseRegularizers() builds regularizers from CLI specs", () => {
  const regs = parseRegularizers([
    "l2:lambda=5e-4",
    "jacobian:lambda=0.01,nproj=1",
    "hard-svb:eps=0.5,every=epoch",
    "input-noise:0.05",
    "weight-noise:sigma=0.02,biases",
  ]);
  assert.deepEqual(regs.map((r) => r.name), [
    "l2",
    "jacobian",
    "hard-svb",
    "input-noise",
    "weight-noise",
  ]);
  assert.deepEqual(regs[0].options, { lambda: 5e-4, biases: false, norms: false });
  assert.deepEqual(regs[1].options, { lambda: 0.01, nproj: 1 });
  assert.deepEqual(regs[2].options, { eps: 0.5, every: "epoch", sweeps: 12 });
  assert.deepEqual(regs[3].options, { sigma: 0.05, clip: false });
  assert.deepEqual(regs[4].options, { sigma: 0.02, biases: true, norms: false });
  const svb = parseRegularizers(["svb:every=600,eps=0.05"])[0];
  assert.deepEqual(svb.options, { eps: 0.05, every: 600, sweeps: 12 });
  for (const r of [...regs, svb]) r.dispose?.();
});

Deno.test("parseRegularizers() table defaults agree with the factories' defaults", () => {
  for (const e of REGULARIZERS) {
    const r = e.create({});
    assert.equal(r.name, e.name, `entry '${e.name}' builds '${r.name}'`);
    for (const [k, o] of Object.entries(e.options)) {
      if (o.default === undefined) continue;
      assert.equal(
        r.options[k],
        o.default,
        `${e.name}.${k}: table ${o.default}, factory ${r.options[k]}`,
      );
    }
    for (const k of Object.keys(r.options)) {
      assert.ok(k in e.options, `${e.name}: factory option '${k}' missing from the table`);
    }
    r.dispose?.();
  }
});

Deno.test("parseRegularizers() rejects unknown names and options, suggesting the nearest", () => {
  assert.throws(
    () => parseRegularizers(["jacobain"]),
    /Unknown regularizer 'jacobain'\. Did you mean 'jacobian'\? Valid: l1, l2,/,
  );
  assert.throws(() => parseRegularizers(["nonsense"]), /Unknown regularizer 'nonsense'\. Valid:/);
  assert.throws(() => parseRegularizers(["dropout:0.5"]), /dropout is part of the model/);
  assert.throws(
    () => parseRegularizers(["l2:lamda=1"]),
    /'l2' has no option 'lamda'\. Did you mean 'lambda'\? Valid: lambda \(number, default 0\.0005\), biases/,
  );
  assert.throws(
    () => parseRegularizers(["l2:lambda=abc"]),
    /'l2' option 'lambda': expected a number, got 'abc'/,
  );
  assert.throws(
    () => parseRegularizers(["hard-svb:every=often"]),
    /expected an integer or 'epoch'/,
  );
  assert.throws(() => parseRegularizers(["jacobian:nproj=1.5"]), /expected an integer/);
  assert.throws(() => parseRegularizers(["l2:lambda=1,lambda=2"]), /given twice/);
  assert.throws(() => parseRegularizers(["l2", "weight-decay:1e-4"]), /'l2' is given twice/);
  assert.throws(() => parseRegularizers(["l2:lambda=-1"]), /lambda must be/);
  assert.throws(() => parseRegularizers([":1"]), /has no name/);
});

Deno.test("findRegularizer() accepts aliases and any case", () => {
  assert.equal(findRegularizer("Elastic").name, "elastic-net");
  assert.equal(findRegularizer("JR").name, "jacobian");
  assert.equal(parseRegularizerSpec("ls:0.2").options.eps, 0.2);
});

Deno.test("describeRegularizers() lists every entry with its options", () => {
  const text = describeRegularizers();
  for (const e of REGULARIZERS) assert.ok(text.includes(`  ${e.name}`), e.name);
  assert.ok(text.includes("every (integer|epoch, default epoch)"));
});

Deno.test("parseRegularizers() output plugs into train() with every hook", async () => {
  const rt = await getBackend();
  const model = tinyMlp(rt, 2, 16, 2, 3);
  const regs = parseRegularizers([
    "l2:1e-3",
    "soft-svb:1e-3",
    "spectral:0.01",
    "hard-svb:every=4",
    "max-norm:c=5",
    "input-noise:sigma=0.01",
    "weight-noise:sigma=0.001",
    "label-smoothing:0.1",
  ]);
  const res = await train(model, { train: toyCircle(64) }, {
    epochs: 2,
    batchSize: 16,
    lr: 0.05,
    seed: 1,
    regularizers: regs,
  });
  assert.equal(res.steps, 8);
  const last = res.history.at(-1)!;
  assert.ok(Number.isFinite(last.trainLoss), `loss ${last.trainLoss}`);
  for (const name of ["l2", "soft-svb", "spectral"]) {
    assert.ok(last.penalties[name] > 0, `${name} penalty ${last.penalties[name]}`);
  }
  // The last step was a hard-SVB step (8 % 4 = 0) and max-norm c = 5 is not binding here.
  const fc1 = model.params().find((p) => p.name === "fc1.weight")!;
  for (const s of singularValuesRef(await fc1.value.read(), 16, 2)) {
    assert.ok(s >= (1 / 1.5) * (1 - 1e-4) && s <= 1.5 * (1 + 1e-4), `σ ${s}`);
  }
  for (const r of regs) r.dispose?.();
  model.dispose();
});
