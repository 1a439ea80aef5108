/**
 * Checkpoints against PyTorch 1.13 (tools/torch_checkpoint_check.py): a checkpoint written here
 * loads into the torch.nn twin (tools/torch_models.py) with `load_state_dict(strict=True)` and
 * gives the same logits; a torch state_dict (with BatchNorm statistics and its int64 counter)
 * loads here and comes back.
 */
import { assert, assertClose, getBackend, randomArray } from "./_util.ts";
import { tinyMlp } from "./_train_util.ts";
import { decodeCheckpoint, encodeCheckpoint, loadStateDict } from "../src/io/checkpoint.ts";
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.ts";
import { buildModel } from "../cli/_seams.ts";

/** Runs tools/torch_checkpoint_check.py; returns its outputs (or throws with its stderr). */
async function torchLogits(ck: Uint8Array, x: Float32Array, shape: number[]) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/ck.safetensors`, ck);
    await Deno.writeFile(
      `${dir}/in.safetensors`,
      encodeSafetensors({ x: { dtype: "F32", shape, data: x } }),
    );
    const { code, stderr } = await new Deno.Command(
      Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3",
      {
        args: [
          new URL("../tools/torch_checkpoint_check.py", import.meta.url).pathname,
          `${dir}/ck.safetensors`,
          `${dir}/in.safetensors`,
          `${dir}/out.safetensors`,
        ],
        stdout: "piped",
        stderr: "piped",
      },
    ).output();
    if (code !== 0) throw new Error(new TextDecoder().decode(stderr));
    return decodeSafetensors(await Deno.readFile(`${dir}/out.safetensors`)).tensors;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("encodeCheckpoint() output loads into the torch.nn model with the same logits", async () => {
  const rt = await getBackend();
  const cases = [
    {
      model: tinyMlp(rt, 2, 8, 3),
      spec: { kind: "mlp", inputs: 2, hidden: [8], classes: 3, activation: "relu" },
      shape: [5, 2],
    },
    {
      ...(await buildModel(rt, "lenet", { sampleShape: [1, 28, 28], classes: 10 } as never, 3)),
      shape: [3, 1, 28, 28],
    },
  ];
  for (const { model, spec, shape } of cases) {
    model.eval();
    const n = shape.reduce((a, b) => a * b, 1);
    const xs = randomArray(n, 11, 0, 1);
    const x = rt.upload(xs, shape);
    const want = await model.forward(x).read();
    const got = await torchLogits(await encodeCheckpoint(model, { model: spec }), xs, shape);
    assertClose(got.logits.data as Float32Array, want, {
      atol: 1e-5,
      rtol: 1e-4,
      what: `${spec.kind} logits`,
    });
    x.dispose();
    model.dispose();
  }
});

/** A checkpoint of the torch twin of `spec` with PyTorch's own init (BatchNorm stats set). */
async function torchInit(spec: unknown, seed: number): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir();
  try {
    const { code, stderr } = await new Deno.Command(
      Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3",
      {
        args: [
          new URL("../tools/torch_checkpoint_check.py", import.meta.url).pathname,
          "--init",
          JSON.stringify(spec),
          String(seed),
          `${dir}/init.safetensors`,
        ],
        stdout: "piped",
        stderr: "piped",
      },
    ).output();
    if (code !== 0) throw new Error(new TextDecoder().decode(stderr));
    return await Deno.readFile(`${dir}/init.safetensors`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadStateDict() takes a torch ResNet-18 state_dict and gives it back", async () => {
  const rt = await getBackend();
  const { model, spec } = await buildModel(
    rt,
    "resnet18",
    { sampleShape: [3, 32, 32], classes: 10 } as never,
    1,
  );
  // torch -> regula: PyTorch's init and BatchNorm statistics, same eval logits.
  const fromTorch = decodeCheckpoint(await torchInit(spec, 4));
  assert.equal(fromTorch.tensors["bn1.num_batches_tracked"].dtype, "I64");
  loadStateDict(model, fromTorch.tensors);
  const shape = [2, 3, 32, 32];
  const xs = randomArray(2 * 3 * 32 * 32, 12, 0, 1);
  const x = rt.upload(xs, shape);
  model.eval();
  const want = await model.forward(x).read();
  const torchSays = await torchLogits(await encodeCheckpoint(model, { model: spec }), xs, shape);
  assertClose(torchSays.logits.data as Float32Array, want, {
    atol: 1e-4,
    rtol: 1e-3,
    what: "logits",
  });
  // regula -> torch: after one train-mode forward the statistics and counter moved on.
  model.train();
  model.forward(x);
  model.eval();
  const want2 = await model.forward(x).read();
  const back = await torchLogits(await encodeCheckpoint(model, { model: spec }), xs, shape);
  assertClose(back.logits.data as Float32Array, want2, { atol: 1e-4, rtol: 1e-3, what: "logits" });
  assert.deepEqual(Array.from(back["state.bn1.num_batches_tracked"].data as BigInt64Array), [2n]);
  const m0 = fromTorch.tensors["bn1.running_mean"].data as Float32Array;
  const m1 = back["state.bn1.running_mean"].data as Float32Array;
  assert.notDeepEqual(m1, m0);
  x.dispose();
  model.dispose();
});
