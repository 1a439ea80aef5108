/**
 * `cli.ts eval` and `cli.ts attack` on checkpoints written by PyTorch 1.13 itself, from models
 * written as a PyTorch user writes them (tools/torch_user_checkpoints.py: a tutorial LeNet,
 * DDNet, torchvision's resnet18 with the CIFAR stem (both on 1x32x32 images), an `nn.Sequential` MLP, a bare
 * `nn.Linear`), with plain-string metadata (`{"model": "lenet", "activation": "tanh"}`) or none
 * and `--model`: regula's accuracy (and LeNet's FGSM and PGD figures) equal torch's on the same
 * data, and the loss agrees to float32 accuracy.
 */
import { assert } from "./_util.ts";
import { main } from "../cli.ts";
import { loadDataset } from "../cli/data.ts";
import { encodeSafetensors } from "../src/io/safetensors.ts";

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
const SCRIPT = new URL("../tools/torch_user_checkpoints.py", import.meta.url).pathname;

async function runMain(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err };
}

interface TorchFigures {
  accuracy: number;
  loss: number;
  count: number;
  fgsm?: number[];
  pgd?: number[];
}

/** Writes the inputs, runs the script; returns torch's figures per model. */
async function torchCheckpoints(dir: string): Promise<Record<string, TorchFigures>> {
  const train = await loadDataset("mnist", { split: "train" });
  const test = await loadDataset("mnist", { split: "test" });
  const px = 28 * 28;
  await Deno.writeFile(
    `${dir}/mnist.safetensors`,
    encodeSafetensors({
      xtr: { dtype: "F32", shape: [2000, 1, 28, 28], data: train.x.slice(0, 2000 * px) },
      ytr: { dtype: "I32", shape: [2000], data: train.y.slice(0, 2000) },
      xte: { dtype: "F32", shape: [300, 1, 28, 28], data: test.x.slice(0, 300 * px) },
      yte: { dtype: "I32", shape: [300], data: test.y.slice(0, 300) },
    }),
  );
  const toy = await loadDataset("toy2d", { split: "test" });
  await Deno.writeFile(
    `${dir}/toy.safetensors`,
    encodeSafetensors({
      x: { dtype: "F32", shape: [toy.y.length, 2], data: Float32Array.from(toy.x) },
      y: { dtype: "I32", shape: [toy.y.length], data: Int32Array.from(toy.y) },
    }),
  );
  const { code, stderr } = await new Deno.Command(PYTHON, {
    args: [SCRIPT, dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`${SCRIPT} failed: ${new TextDecoder().decode(stderr)}`);
  return JSON.parse(await Deno.readTextFile(`${dir}/torch.json`));
}

/** `eval --json` of a checkpoint; asserts exit 0. */
async function evalJson(
  args: string[],
): Promise<{ accuracy: number; loss: number; count: number }> {
  const r = await runMain(["eval", ...args, "--json"]);
  assert.equal(r.code, 0, `eval ${args.join(" ")}: ${r.err.join("\n")}`);
  return JSON.parse(r.out[0]);
}

function sameFigures(
  what: string,
  got: { accuracy: number; loss: number; count: number },
  want: TorchFigures,
) {
  assert.equal(got.count, want.count, `${what}: samples`);
  // Accuracy is a count of argmaxes: equal, not close.
  assert.equal(
    got.accuracy,
    want.accuracy,
    `${what}: accuracy regula ${got.accuracy}, torch ${want.accuracy}`,
  );
  assert.ok(
    Math.abs(got.loss - want.loss) <= 1e-5 + 1e-4 * Math.abs(want.loss),
    `${what}: loss regula ${got.loss}, torch ${want.loss}`,
  );
}

Deno.test("cli.ts eval and attack read PyTorch-written checkpoints of every named model", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "regula_torch_user_" });
  try {
    const torch = await torchCheckpoints(dir);
    const gray = ["--data", "idx", "--data-path", `${dir}/idx`];

    await t.step("lenet: metadata {model: lenet, activation: tanh}, no --model", async () => {
      const r = await runMain(["eval", `${dir}/lenet.safetensors`, "--limit", "300", "--json"]);
      assert.equal(r.code, 0, r.err.join("\n"));
      assert.ok(r.err.some((l) => /no dataset recorded; using mnist/.test(l)), r.err.join("\n"));
      assert.ok(r.err.some((l) => /model 'lenet' from the checkpoint's metadata is/.test(l)));
      sameFigures("lenet", JSON.parse(r.out[0]), torch.lenet);
      assert.ok(torch.lenet.accuracy > 0.8, `torch's LeNet trained: ${torch.lenet.accuracy}`);
    });

    await t.step("lenet: FGSM and PGD (--no-random-start --alpha) equal torch's", async () => {
      const common = [`${dir}/lenet.safetensors`, "--limit", "300"];
      const f = await runMain([
        "attack",
        ...common,
        "--eps",
        "0.1,0.2",
        "--attack",
        "fgsm",
        "--no-checks",
        "--out",
        `${dir}/fgsm.json`,
        "--json",
      ]);
      assert.equal(f.code, 0, f.err.join("\n"));
      const fj = JSON.parse(f.out.join("\n"));
      assert.equal(fj.clean, torch.lenet.accuracy);
      assert.deepEqual(fj.accuracy.fgsm, torch.lenet.fgsm, "FGSM accuracy at eps 0.1, 0.2");
      const pgd = [...common, "--eps", "0.05,0.1", "--steps", "10", "--alpha", "0.01"];
      const p = await runMain([
        "attack",
        ...pgd,
        "--attack",
        "pgd",
        "--no-random-start",
        "--no-checks",
        "--out",
        `${dir}/pgd.json`,
        "--json",
      ]);
      assert.equal(p.code, 0, p.err.join("\n"));
      const pj = JSON.parse(p.out.join("\n"));
      assert.deepEqual(pj.accuracy.pgd, torch.lenet.pgd, "PGD accuracy at eps 0.05, 0.1");
      assert.equal(pj.settings.alpha, 0.01);
      assert.equal(pj.settings.randomStart, false);
      assert.equal(pj.settings.steps, 10);
      // A random start moves the figures off torch's deterministic ones: the flag is used.
      const rs = await runMain([
        "attack",
        ...pgd,
        "--attack",
        "pgd",
        "--no-checks",
        "--out",
        `${dir}/pgd_rs.json`,
        "--json",
      ]);
      assert.equal(rs.code, 0, rs.err.join("\n"));
      const rj = JSON.parse(rs.out.join("\n"));
      assert.equal(rj.settings.randomStart, true);
      assert.notDeepEqual(rj.accuracy.pgd, torch.lenet.pgd);
    });

    await t.step("ddnet: no metadata, --model ddnet --normalize MEAN/STD", async () => {
      const got = await evalJson([
        `${dir}/ddnet.safetensors`,
        ...gray,
        "--model",
        "ddnet",
        "--normalize",
        "0.45/0.25",
      ]);
      sameFigures("ddnet", got, torch.ddnet);
    });

    await t.step("resnet18: torchvision's names, metadata {model: ResNet-18}", async () => {
      const got = await evalJson([
        `${dir}/resnet18.safetensors`,
        ...gray,
        "--normalize",
        "none",
        "--limit",
        "16",
      ]);
      sameFigures("resnet18", got, torch.resnet18);
    });

    await t.step("mlp: nn.Sequential keys, metadata {model: mlp, activation: relu}", async () => {
      const r = await runMain(["eval", `${dir}/mlp.safetensors`, "--json"]);
      assert.equal(r.code, 0, r.err.join("\n"));
      assert.ok(r.err.some((l) => /nn\.Sequential indices 1, 3, 5 as fc1\.\.fc3/.test(l)));
      sameFigures("mlp", JSON.parse(r.out[0]), torch.mlp);
    });

    await t.step("mlp: a bare nn.Linear(2, 4, bias=False), --model mlp", async () => {
      const got = await evalJson([
        `${dir}/linear.safetensors`,
        "--model",
        "mlp",
        "--data",
        "toy2d",
      ]);
      sameFigures("linear", got, torch.linear);
    });

    await t.step("report: --model, --alpha and --no-random-start, recorded", async () => {
      const r = await runMain([
        "report",
        `${dir}/lenet.safetensors`,
        "--model",
        "LeNet5",
        "--activation",
        "tanh",
        "--data",
        "mnist",
        "--out",
        `${dir}/r.html`,
        "--limit",
        "32",
        "--jacobian-samples",
        "4",
        "--images",
        "1",
        "--planes-per-image",
        "1",
        "--resolution",
        "8",
        "--show",
        "1",
        "--eps",
        "0.1",
        "--pgd-steps",
        "3",
        "--alpha",
        "0.05",
        "--no-random-start",
        "--pca-samples",
        "0",
        "--json",
      ]);
      assert.equal(r.code, 0, r.err.join("\n"));
      const rows = JSON.parse(r.out[0]);
      assert.deepEqual(rows[0].pgd, { steps: 3, alpha: 0.05, randomStart: false });
      const e = await evalJson([`${dir}/lenet.safetensors`, "--limit", "32"]);
      assert.equal(rows[0].accuracy, e.accuracy);
      assert.match(
        await Deno.readTextFile(`${dir}/r.html`),
        /PGD: 3 steps, step 0\.05, no random start/,
      );
    });

    await t.step("a spec.json file, and --model over the metadata", async () => {
      const spec = `${dir}/lenet_spec.json`;
      await Deno.writeTextFile(
        spec,
        JSON.stringify({
          kind: "lenet",
          activation: "tanh",
          normalize: { mean: [0.1307], std: [0.3081] },
        }),
      );
      const got = await evalJson([
        `${dir}/lenet.safetensors`,
        "--model",
        spec,
        "--data",
        "mnist",
        "--limit",
        "300",
      ]);
      sameFigures("lenet from spec.json", got, torch.lenet);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts eval says in one line what is wrong with a foreign checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "regula_torch_user_err_" });
  try {
    const lenet = `${dir}/lenet.safetensors`;
    const t = (shape: number[]) => ({
      dtype: "F32" as const,
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    });
    const tensors = {
      "conv1.weight": t([6, 1, 5, 5]),
      "conv1.bias": t([6]),
      "conv2.weight": t([16, 6, 5, 5]),
      "conv2.bias": t([16]),
      "fc1.weight": t([120, 400]),
      "fc1.bias": t([120]),
      "fc2.weight": t([84, 120]),
      "fc2.bias": t([84]),
      "fc3.weight": t([10, 84]),
      "fc3.bias": t([10]),
    };
    await Deno.writeFile(lenet, encodeSafetensors(tensors, { model: "lenet", activation: "tanh" }));
    const bare = `${dir}/bare.safetensors`;
    await Deno.writeFile(bare, encodeSafetensors(tensors));
    const renamed = `${dir}/renamed.safetensors`;
    await Deno.writeFile(
      renamed,
      encodeSafetensors(
        Object.fromEntries(Object.entries(tensors).map(([k, v]) => [`features.${k}`, v])),
        { model: "lenet" },
      ),
    );
    const odd = `${dir}/odd.safetensors`;
    await Deno.writeFile(odd, encodeSafetensors(tensors, { model: "lenet", activation: "gelu" }));
    for (
      const [argv, msg] of [
        [
          ["eval", bare],
          /metadata names no model; give --model NAME \(mlp, lenet, lenet-relu, ddnet, resnet18\) or --model spec\.json$/,
        ],
        [
          ["eval", lenet, "--model", "lenett"],
          /^error: --model: unknown model 'lenett' \(did you mean 'lenet'\?\); models: mlp, lenet, lenet-relu, ddnet, resnet18/,
        ],
        [
          ["eval", lenet, "--model", "ddnet", "--data", "mnist"],
          /^error: .*lenet\.safetensors: Checkpoint conv1\.weight has shape \[6,1,5,5\], model expects \[64,1,3,3\] \(and \d+ more mismatch\(es\)\): the tensors do not fit the model 'ddnet' from --model; give the right --model NAME/,
        ],
        [
          ["eval", odd],
          /^error: .*odd\.safetensors: the checkpoint's metadata: unknown activation "gelu"; activations: relu, tanh/,
        ],
        [
          ["eval", lenet, "--model", "resnet18", "--dropout", "0.5", "--data", "mnist"],
          /resnet18' \(from --model\) has no dropout layers/,
        ],
        [
          ["eval", renamed],
          /^error: .*renamed\.safetensors: missing from the checkpoint: conv1\.weight, conv1\.bias, conv2\.weight, conv2\.bias and 6 more; not in the model: features\.conv1\.bias, .* and 6 more: the tensors do not fit .*; rename the state_dict keys/,
        ],
        [["eval", lenet, "--model", `${dir}/none.json`], /No such model spec file/i],
        [
          ["eval", lenet, "--model", '{"kind": "lenet"', "--data", "mnist"],
          /--model not valid JSON/,
        ],
        [
          ["attack", lenet, "--attack", "fgsm", "--alpha", "0.01"],
          /'--alpha' sets the step of pgd/,
        ],
        [
          ["attack", lenet, "--attack", "fgsm", "--no-random-start"],
          /'--no-random-start' applies to/,
        ],
        [["attack", lenet, "--alpha", "0"], /'--alpha' needs a number > 0/],
      ] as const
    ) {
      const r = await runMain([...argv]);
      assert.equal(r.code, 2, `${argv.join(" ")}: ${r.err.join("\n")}`);
      const errors = r.err.filter((l) => l.startsWith("error: "));
      assert.equal(errors.length, 1, `${argv.join(" ")}: ${r.err.join("\n")}`);
      assert.match(errors[0], msg);
      assert.ok(!errors[0].includes("\n"));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
