/** `cli.ts attack`: table, JSON report written atomically, no overwrite without --force. */
import { assert, getBackend } from "./_util.ts";
import { attackCommand } from "../cli/attack.ts";
import { buildModelFromSpec } from "../cli/_seams.ts";
import { encodeCheckpoint } from "../src/io/checkpoint.ts";

function capture(): {
  io: { out(s: string): void; err(s: string): void };
  out: string[];
  err: string[];
} {
  const out: string[] = [], err: string[] = [];
  return { io: { out: (s) => out.push(s), err: (s) => err.push(s) }, out, err };
}

Deno.test("attackCommand() prints a table and writes a JSON report once", async () => {
  const rt = await getBackend();
  const spec = { kind: "lenet", activation: "tanh" };
  const model = await buildModelFromSpec(rt, spec);
  const dir = await Deno.makeTempDir({ prefix: "regula_attack_cli_" });
  try {
    const ckpt = `${dir}/lenet.safetensors`;
    await Deno.writeFile(
      ckpt,
      await encodeCheckpoint(model, { model: spec, data: { name: "mnist" } }),
    );
    const args = [
      ckpt,
      "--attack",
      "fgsm,pgd",
      "--eps",
      "0.1,0.3",
      "--steps",
      "2",
      "--limit",
      "8",
      "--no-checks",
    ];
    const c = capture();
    const code = await attackCommand(args, c.io);
    assert.equal(code, 0, c.err.join("\n"));
    const text = c.out.join("\n");
    assert.match(text, /clean accuracy [\d.]+% on 8 samples/);
    assert.match(text, /^0\.1 .*%.*%.*%$/m);
    assert.match(text, /worst case/);
    const report = JSON.parse(await Deno.readTextFile(`${dir}/lenet.attack.json`));
    assert.deepEqual(report.eps, [0.1, 0.3]);
    assert.equal(report.count, 8);
    assert.equal(report.accuracy.pgd.length, 2);
    for (const i of [0, 1]) assert.ok(report.accuracy.pgd[i] <= report.clean);
    const again = capture();
    assert.equal(await attackCommand(args, again.io), 2);
    assert.match(again.err.join("\n"), /already exists; use --force/);
    const forced = capture();
    assert.equal(await attackCommand([...args, "--force", "--json"], forced.io), 0);
    assert.equal(JSON.parse(forced.out.join("\n")).count, 8);
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("attackCommand() rejects bad flags with exit code 2 and shows --help", async () => {
  const h = capture();
  assert.equal(await attackCommand(["--help"], h.io), 0);
  assert.match(h.out.join("\n"), /--attack/);
  for (
    const [args, msg] of [
      [["x.safetensors", "--attack", "fgsm,bim"], /Unknown attack 'bim'/],
      [["x.safetensors", "--attack", "pgd,cw"], /mix L∞/],
      [["x.safetensors", "--eps", "0.1,abc"], /--eps' needs comma-separated numbers/],
      [[], /needs a checkpoint/],
      [["missing.safetensors"], /missing\.safetensors/],
    ] as [string[], RegExp][]
  ) {
    const c = capture();
    assert.equal(await attackCommand(args, c.io), 2, `${args}: ${c.err}`);
    assert.match(c.err.join("\n"), msg);
  }
});
