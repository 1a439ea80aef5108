/**
 * The WebAssembly backend in headless Chromium with WebGPU off (no
 * `--enable-unsafe-webgpu`), on a cross-origin-isolated page (COOP/COEP headers:
 * SharedArrayBuffer, two threads, the page's main thread spin-waiting since it
 * may not block) and on a plain page (no SharedArrayBuffer: one thread, said
 * once in the console, no error):
 * - the esbuild bundle of src/wasm/mod.ts runs a GEMM;
 * - the library's bundle (mod.ts, as `deno task bundle` writes it) runs a LeNet-5 training step
 *   (forward, cross-entropy, backward, SGD: tests/_wasm_chain.ts) on
 *   `Runtime.create({ backend: "wasm" })`, equal to the same step run here within float32
 *   tolerance.
 *
 * Chromium as in tests/_browser.ts; REGULA_SKIP_BROWSER=1 skips.
 */
import type { Page } from "playwright-core";
import { assert, assertClose, randomArray } from "./_util.ts";
import { chromiumMissing, launchChromium, SKIP_BROWSER } from "./_browser.ts";
import { assertSameStep, lenetStep, lenetStepSource, type StepResult } from "./_wasm_chain.ts";
import { bundle } from "../scripts/bundle.ts";
import { matmulRef } from "../src/reference/matmul.ts";
import * as regula from "../mod.ts";

/** A page that imports the bundle at `/lib.js` as `window.lib`. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="module">
  import * as lib from "/lib.js";
  window.lib = lib;
  window.ready = true;
</script>`;

/** The one-thread note the backend prints once per module instance. */
const NOTE = "regula's CPU backend runs on";

/**
 * Bundles `entry` as /lib.js, serves it on 127.0.0.1 (cross-origin isolated under `?isolated`)
 * and runs `fn` on a fresh page of headless Chromium without WebGPU, first isolated, then not,
 * with the page's console collected in `logs`.
 */
async function onPages(
  entry: string,
  fn: (page: Page, isolated: boolean, logs: string[]) => Promise<void>,
) {
  const missing = await chromiumMissing();
  if (missing) assert.fail(missing);
  const tmp = await Deno.makeTempDir({ prefix: "regula_wasm_browser_" });
  const built = await bundle({ entry, outfile: `${tmp}/lib.js` });
  const js = await Deno.readFile(built.outfile);
  const isolation = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    const extra = url.searchParams.has("isolated") ? isolation : {};
    if (url.pathname === "/") {
      return new Response(PAGE, { headers: { "content-type": "text/html", ...extra } });
    }
    if (url.pathname === "/lib.js") {
      return new Response(js, { headers: { "content-type": "text/javascript", ...extra } });
    }
    return new Response(null, { status: 404 });
  });
  const context = await launchChromium(`${tmp}/profile`, { webgpu: false });
  try {
    for (const isolated of [true, false]) {
      const logs: string[] = [];
      const page = await context.newPage();
      page.on("console", (msg) => logs.push(`${msg.type()}: ${msg.text()}`));
      page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
      await page.goto(`http://127.0.0.1:${server.addr.port}/${isolated ? "?isolated" : ""}`);
      await page.waitForFunction(() => "ready" in globalThis, null, { timeout: 30_000 })
        .catch(() => assert.fail(`the bundle did not load in Chromium:\n${logs.join("\n")}`));
      await fn(page, isolated, logs);
      assert.deepEqual(logs.filter((l) => l.startsWith("pageerror")), []);
      await page.close();
    }
  } finally {
    await context.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

interface PageResult {
  isolated: boolean;
  hasGpu: boolean;
  threads: number;
  description: string;
  c: number[];
}

Deno.test({
  name: "WasmRuntime in Chromium without WebGPU: 2 threads when isolated, 1 thread otherwise",
  ignore: SKIP_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const [m, k, n] = [70, 300, 45];
    const a = Array.from(randomArray(m * k, 1)), b = Array.from(randomArray(k * n, 2));
    const want = matmulRef(a, [m, k], b, [k, n]).data;
    await onPages("src/wasm/mod.ts", async (page, isolated, logs) => {
      const got: PageResult = await page.evaluate(async ([a, b, m, k, n]) => {
        // deno-lint-ignore no-explicit-any
        const { WasmRuntime, wasmMatmul: matmul } = (globalThis as any).lib;
        const rt = await WasmRuntime.create({ threads: 2 });
        const ta = rt.upload(new Float32Array(a as number[]), [m, k]);
        const tb = rt.upload(new Float32Array(b as number[]), [k, n]);
        // Two runtimes: the one-thread note must still be printed once only.
        const again = await WasmRuntime.create({ threads: 2 });
        again.destroy();
        const c = Array.from(matmul(rt, ta, tb).toArray() as Float32Array);
        const out = {
          isolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
          // deno-lint-ignore no-explicit-any
          hasGpu: Boolean(await (navigator as any).gpu?.requestAdapter()),
          threads: rt.threads,
          description: rt.description,
          c,
        };
        rt.destroy();
        return out;
      }, [a, b, m, k, n] as const);
      const what = `Chromium, ${isolated ? "" : "not "}cross-origin isolated`;
      assert.equal(got.isolated, isolated, what);
      assert.equal(got.hasGpu, false, `${what}: WebGPU should be off`);
      assertClose(got.c, want, { atol: 2e-4, rtol: 1e-4, what });
      const notes = logs.filter((l) => l.includes(NOTE));
      if (isolated) {
        assert.equal(got.threads, 2, `${what}: ${got.description}\n${logs.join("\n")}`);
        assert.match(got.description, /2 threads \(the calling thread spin-waits\)/);
        assert.deepEqual(notes, []);
      } else {
        assert.equal(got.threads, 1, what);
        assert.equal(notes.length, 1, `${what}: the note once\n${logs.join("\n")}`);
        assert.match(notes[0], /^warning: .*1 thread instead of 2: SharedArrayBuffer/);
      }
    });
  },
});

Deno.test({
  name: "the mod.ts bundle in Chromium without WebGPU trains a LeNet-5 step on Wasm as Deno does " +
    "(2 threads isolated, 1 thread otherwise)",
  ignore: SKIP_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const want = await lenetStep(regula, 2);
    assert.equal(want.threads, 2, want.description);
    await onPages("mod.ts", async (page, isolated, logs) => {
      const what = `mod.ts bundle in Chromium, ${isolated ? "" : "not "}cross-origin isolated`;
      // A first runtime (destroyed at once): the one-thread note must still come once only.
      const first = await page.evaluate(async () => {
        // deno-lint-ignore no-explicit-any
        const { Runtime } = (globalThis as any).lib;
        const rt = await Runtime.create({ backend: "wasm", threads: 2 });
        const d = rt.description as string;
        rt.destroy();
        return d;
      });
      const got: StepResult = await page.evaluate(
        `${lenetStepSource}(globalThis.lib, 2)`,
      );
      const worst = assertSameStep(got, want, what);
      console.log(`${what}: ${got.description}; largest difference from Deno ${worst}`);
      const notes = logs.filter((l) => l.includes(NOTE));
      if (isolated) {
        assert.equal(got.threads, 2, `${what}: ${got.description}\n${logs.join("\n")}`);
        assert.match(first, /^WebAssembly SIMD, 2 threads/);
        assert.deepEqual(notes, []);
      } else {
        assert.equal(got.threads, 1, what);
        assert.match(got.description, /^WebAssembly SIMD, 1 thread; /);
        assert.equal(notes.length, 1, `${what}: the note once\n${logs.join("\n")}`);
      }
    });
  },
});
