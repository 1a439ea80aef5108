/**
 * The WebAssembly backend ships as the library does: its esbuild browser
 * bundle (plain and minified) holds the kernels and no Deno API and runs, with
 * worker threads, when imported; src/wasm/mod.ts imported from an http://
 * URL by a fresh Deno (empty cache, no config) loads the embedded .wasm; and mod.ts imported
 * the same way runs a LeNet-5 training step (forward, cross-entropy, backward, SGD:
 * tests/_wasm_chain.ts) on `Runtime.create({ backend: "wasm" })`, equal to the same step run
 * in this process within float32 tolerance.
 */
import { assert } from "./_util.ts";
import { assertSameStep, lenetStep, lenetStepSource, type StepResult } from "./_wasm_chain.ts";
import * as regula from "../mod.ts";
import { bundle } from "../scripts/bundle.ts";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

const RUN = (specifier: string) => `
import { wasmMatmul as matmul, WasmRuntime } from "${specifier}";
const rt = await WasmRuntime.create({ threads: 2 });
const n = 256;
const a = rt.upload(Float32Array.from({ length: n * n }, (_, i) => (i % 7) - 3), [n, n]);
const b = rt.upload(Float32Array.from({ length: n * n }, (_, i) => (i % 5) - 2), [n, n]);
const c = matmul(rt, a, b).toArray();
let want = 0;
for (let p = 0; p < n; p++) want += (((n - 1) * n + p) % 7 - 3) * ((p * n + n - 1) % 5 - 2);
console.log(JSON.stringify({ threads: rt.threads, last: c[n * n - 1], want }));
rt.destroy();
`;

async function runDeno(cwd: string, file: string, extra: string[] = []): Promise<unknown> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", "--no-config", ...extra, file],
    cwd,
    env: { DENO_DIR: join(cwd, "deno_dir"), NO_COLOR: "1" },
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, err);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

for (const minify of [false, true]) {
  Deno.test({
    name: `src/wasm/mod.ts bundles for browsers${
      minify ? " (minified)" : ""
    } and runs on 2 threads`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const tmp = await Deno.makeTempDir({ prefix: "regula_wasm_bundle_" });
      try {
        const r = await bundle({ entry: "src/wasm/mod.ts", outfile: `${tmp}/wasm.js`, minify });
        assert.ok(r.inputs.includes("src/wasm/_binary.ts"), r.inputs.join(", "));
        await Deno.writeTextFile(`${tmp}/main.js`, RUN("./wasm.js"));
        const got = await runDeno(tmp, "main.js") as {
          threads: number;
          last: number;
          want: number;
        };
        assert.deepEqual(got, { threads: 2, last: got.want, want: got.want });
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    },
  });
}

/** Serves the repository's files on 127.0.0.1, recording the paths asked for. */
function serveRepo(requested: string[]): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requested.push(path);
    const file = normalize(join(ROOT, path));
    if (!file.startsWith(ROOT)) return new Response("forbidden", { status: 403 });
    try {
      const type = extname(file) === ".ts" ? "application/typescript" : "text/plain";
      return new Response(await Deno.readFile(file), { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

Deno.test({
  name: "src/wasm/mod.ts imported from an http:// URL loads its embedded kernels in a fresh Deno",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const requested: string[] = [];
    const server = serveRepo(requested);
    const tmp = await Deno.makeTempDir({ prefix: "regula_wasm_url_" });
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      await Deno.writeTextFile(`${tmp}/main.ts`, RUN(`${base}/src/wasm/mod.ts`));
      const got = await runDeno(tmp, "main.ts", ["--reload"]) as {
        threads: number;
        last: number;
        want: number;
      };
      assert.deepEqual(got, { threads: 2, last: got.want, want: got.want });
      assert.ok(requested.includes("/src/wasm/_binary.ts"));
      assert.ok(!requested.some((p) => p.endsWith(".wasm")), requested.join(", "));
    } finally {
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "mod.ts imported from an http:// URL trains a LeNet-5 step on Wasm as this process does",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const want = await lenetStep(regula, 2);
    const requested: string[] = [];
    const server = serveRepo(requested);
    const tmp = await Deno.makeTempDir({ prefix: "regula_wasm_url_mod_" });
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      await Deno.writeTextFile(
        `${tmp}/main.ts`,
        `import * as lib from "${base}/mod.ts";\n` +
          `console.log(JSON.stringify(await ${lenetStepSource}(lib, 2)));\n`,
      );
      const got = await runDeno(tmp, "main.ts", ["--reload"]) as StepResult;
      assert.equal(got.threads, 2, got.description);
      const worst = assertSameStep(got, want, "mod.ts from a URL");
      console.log(`${got.description}; largest difference from this process ${worst}`);
      assert.ok(requested.includes("/mod.ts") && requested.includes("/src/wasm/_binary.ts"));
    } finally {
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
