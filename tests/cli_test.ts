/**
 * The command line: flag parsing, usage errors (one line, exit 2), `info`
 * output in text and JSON, and the no-adapter path (exit 1, no stack trace).
 */
import { assert } from "./_util.ts";
import { main, parseFlags, UsageError } from "../cli.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function runMain(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
  return { code, out, err };
}

async function runCli(args: string[], env: Record<string, string> = {}) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr) };
}

Deno.test("parseFlags() reads --a b, --a=b, -x, --no-x, -- and defaults", () => {
  const spec = {
    json: { type: "boolean", short: "j", help: "" },
    steps: { type: "number", default: 10, help: "" },
    out: { type: "string", help: "" },
  } as const;
  assert.deepEqual(parseFlags([], spec, "t"), {
    flags: { json: false, steps: 10 },
    positionals: [],
  });
  assert.deepEqual(
    parseFlags(["-j", "--steps", "5", "--out=a=b", "x", "--", "--json"], spec, "t"),
    {
      flags: { json: true, steps: 5, out: "a=b" },
      positionals: ["x", "--json"],
    },
  );
  assert.equal(parseFlags(["--json", "--no-json"], spec, "t").flags.json, false);
  assert.equal(parseFlags(["--steps=-3"], spec, "t").flags.steps, -3);
  for (
    const [argv, msg] of [
      [["--bogus"], /Unknown flag '--bogus' for 't'/],
      [["-q"], /Unknown flag '-q'/],
      [["--steps"], /'--steps' needs a value/],
      [["--steps", "ten"], /'--steps' needs a number, got 'ten'/],
      [["--json=maybe"], /'--json' takes no value/],
      [["--no-steps"], /Unknown flag '--no-steps'/],
    ] as const
  ) {
    assert.throws(() => parseFlags(argv, spec, "t"), (e: Error) => {
      assert.ok(e instanceof UsageError, `${argv}: ${e}`);
      assert.match(e.message, msg);
      return true;
    });
  }
});

Deno.test("main() reports usage errors in one line with exit code 2", async () => {
  for (
    const [argv, msg] of [
      [["frobnicate"], /^error: Unknown command 'frobnicate'; commands: info/],
      [["--frobnicate"], /^error: Unknown flag '--frobnicate'/],
      [["info", "--bogus"], /^error: Unknown flag '--bogus' for 'cli.ts info'/],
      [["info", "extra"], /^error: 'cli.ts info' takes no arguments/],
      [["help", "nope"], /^error: Unknown command 'nope'/],
    ] as const
  ) {
    const r = await runMain([...argv]);
    assert.equal(r.code, 2, `${argv.join(" ")}`);
    assert.deepEqual(r.out, []);
    assert.equal(r.err.length, 1, `${argv.join(" ")}: ${r.err.join("\n")}`);
    assert.match(r.err[0], msg);
    assert.ok(!r.err[0].includes("\n"));
  }
  const none = await runMain([]);
  assert.equal(none.code, 2);
  assert.match(none.out.join("\n"), /Commands:\n {2}info/);
});

Deno.test("main() --help lists commands and a command's flags", async () => {
  const top = await runMain(["--help"]);
  assert.equal(top.code, 0);
  assert.match(top.out.join("\n"), /Usage: deno run -A cli.ts <command>/);
  const info = await runMain(["info", "--help"]);
  assert.equal(info.code, 0);
  const text = info.out.join("\n");
  for (
    const flag of [
      "--json",
      "--skip-checks",
      "--only <string>",
      "--backend <all|auto|",
      "-h, --help",
    ]
  ) {
    assert.ok(text.includes(flag), `info --help lacks ${flag}:\n${text}`);
  }
  assert.deepEqual((await runMain(["help", "info"])).out, info.out);
  assert.match((await runMain(["--version"])).out[0], /^regula \d+\.\d+\.\d+$/);
});

Deno.test("cli.ts info prints both backends, auto's pick and passing self-checks", async () => {
  const r = await runCli(["info", "--only", "upload,unary"]);
  assert.equal(r.code, 0, r.err + r.out);
  assert.match(r.out, /^webgpu {4}\S.*$/m);
  assert.match(r.out, /maxStorageBufferBindingSize +\d+/);
  assert.match(r.out, /^wasm {6}WebAssembly SIMD, \d+ threads?/m);
  assert.match(r.out, /^auto {6}(wasm|webgpu) \(.+\)$/m);
  assert.match(r.out, /^ {2}\S.* \.+ ok \(max err [0-9.e+-]+, \d+ ms\)$/m);
  assert.match(r.out, /^(\d+)\/\1 checks passed on webgpu$/m);
  assert.match(r.out, /^(\d+)\/\1 checks passed on wasm$/m);
});

Deno.test("cli.ts info --json is one JSON object", async () => {
  const r = await runCli(["info", "--json", "--only", "upload", "--threads", "1"]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  const { webgpu, wasm } = j.backends;
  assert.equal(webgpu.available, true);
  assert.equal(typeof webgpu.description, "string");
  assert.equal(typeof webgpu.isFallbackAdapter, "boolean");
  assert.ok(webgpu.limits.maxBufferSize > 0);
  assert.equal(wasm.available, true);
  assert.equal(wasm.threads, 1);
  assert.equal(j.auto, webgpu.software ? "wasm" : "webgpu");
  for (const b of [webgpu, wasm]) {
    assert.equal(b.checks.length, 1);
    assert.equal(b.checks[0].ok, true);
  }
  assert.equal(j.passed, 2);
  assert.equal(j.failed, 0);
});

Deno.test("cli.ts info without an adapter: the Wasm backend alone, or a clear error for webgpu", async () => {
  // wgpu reads DENO_WEBGPU_BACKEND; no DirectX 12 on Linux means no adapter.
  if (Deno.build.os === "windows") return;
  const none = { DENO_WEBGPU_BACKEND: "dx12" };
  const r = await runCli(["info", "--only", "upload"], none);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^webgpu {4}none: No WebGPU adapter: .*mesa-vulkan-drivers/m);
  assert.match(r.out, /^auto {6}wasm \(no WebGPU adapter\)$/m);
  assert.match(r.out, /^1\/1 checks passed on wasm$/m);
  const g = await runCli(["info", "--backend", "webgpu"], none);
  assert.equal(g.code, 1, g.out + g.err);
  assert.match(g.err, /^error: No WebGPU adapter: .*mesa-vulkan-drivers/);
  assert.doesNotMatch(g.err, /\bat .*\.ts:\d+/);
  assert.equal(g.out, "");
});
