/**
 * `cli.ts train --label-noise p --trajectory-every N` end to end: the checkpoint's metadata
 * records the label noise, the memorisation curve and the per-layer trajectories, and
 * `cli.ts report` draws them; bad values exit 2 with one line.
 */
import { assert, backendUnderTest } from "./_util.ts";
import { main } from "../cli.ts";
import { decodeCheckpoint } from "../src/io/checkpoint.ts";
import type { EpochRecord } from "../src/train/train.ts";

async function runMain(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err };
}

const TOY = ["--model", "mlp", "--data", "toy2d", "--epochs", "3", "--batch-size", "32"];
const backend = ["--backend", backendUnderTest()];

Deno.test("cli.ts train --label-noise records the noise, memorisation and trajectories", async () => {
  const dir = await Deno.makeTempDir();
  const ck = `${dir}/noisy.safetensors`;
  try {
    const r = await runMain([
      "train",
      ...TOY,
      ...backend,
      "--label-noise",
      "0.25",
      "--trajectory-every",
      "2",
      "--seed",
      "4",
      "--out",
      ck,
      "-q",
    ]);
    assert.equal(r.code, 0, r.err.join("\n"));
    const meta = decodeCheckpoint(await Deno.readFile(ck)).metadata as {
      data: { train: number; labelNoise: Record<string, unknown> };
      history: { epochs: EpochRecord[] };
      optimizer: { trajectoryEvery: number };
    };
    const n = meta.data.train; // 461 of toy2d's 512 after the 10 % validation split
    assert.equal(meta.data.labelNoise.fraction, 0.25);
    assert.equal(meta.data.labelNoise.seed, 4);
    assert.equal(meta.data.labelNoise.corrupted, Math.round(0.25 * n));
    assert.equal(meta.optimizer.trajectoryEvery, 2);
    const epochs = meta.history.epochs;
    assert.equal(epochs.length, 3);
    for (const e of epochs) {
      assert.ok(e.memorization!.noisyAccuracy <= 1 && e.testAccuracy! > 0.5);
      assert.ok(e.trajectory!.steps.every((s) => s % 2 === 0));
      assert.deepEqual(Object.keys(e.trajectory!.layers), ["fc1", "fc2", "fc3"]);
    }
    // 461 samples: 15 steps per epoch, 45 in all; every second one sampled.
    assert.equal(epochs.reduce((a, e) => a + e.trajectory!.steps.length, 0), 23);
    const rep = await runMain([
      "report",
      ck,
      ...backend,
      "--out",
      `${dir}/r.html`,
      "--limit",
      "64",
      "--images",
      "1",
      "--planes-per-image",
      "1",
      "--resolution",
      "8",
      "--attack",
      "none",
      "--pca-samples",
      "0",
    ]);
    assert.equal(rep.code, 0, rep.err.join("\n"));
    const html = await Deno.readTextFile(`${dir}/r.html`);
    assert.match(html, /Memorisation \(randomized labels\)/);
    assert.match(html, /label noise p = 0\.25/);
    assert.match(html, /Trajectories/);
    assert.match(html, /‖θ − θ₀‖ per layer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts train rejects bad --label-noise and --trajectory-every in one line", async () => {
  for (
    const [argv, msg] of [
      [["--label-noise", "1.5"], /^error: Flag '--label-noise' must be in \[0, 1\], got 1\.5$/],
      [["--label-noise", "-0.1"], /must be in \[0, 1\]/],
      [["--trajectory-every", "-1"], /'--trajectory-every' needs an integer >= 0, got -1$/],
      [["--trajectory-every", "2.5"], /needs an integer >= 0, got 2\.5$/],
    ] as const
  ) {
    const r = await runMain(["train", ...TOY, ...argv]);
    assert.equal(r.code, 2, `${argv.join(" ")}: ${r.err.join("\n")}`);
    assert.equal(r.err.length, 1);
    assert.match(r.err[0], msg);
  }
});
