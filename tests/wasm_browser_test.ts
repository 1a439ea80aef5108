/**
 * The WebAssembly backend in headless Chromium with WebGPU off (no
 * `--enable-unsafe-webgpu`): the esbuild bundle of src/wasm/mod.ts runs a GEMM
 * on a cross-origin-isolated page (COOP/COEP headers: SharedArrayBuffer, two
 * threads, the page's main thread spin-waiting since it may not block) and on
 * a plain page (no SharedArrayBuffer: one thread, said once in the console,
 * no error). Chromium as in tests/browser_test.ts; REGULA_SKIP_BROWSER=1 skips.
 */
import { chromium } from "playwright-core";
import { assert, assertClose, randomArray } from "./_util.ts";
import { bundle } from "../scripts/bundle.ts";
import { matmulRef } from "../src/reference/matmul.ts";

const SKIP = Deno.env.get("REGULA_SKIP_BROWSER") === "1";
const CHROMIUM = Deno.env.get("REGULA_CHROMIUM") ?? "/usr/bin/chromium";
const ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-sync",
];

const PAGE = `<!doctype html>
<meta charset="utf-8">
<script type="module">
  import * as wasm from "/wasm.js";
  window.wasm = wasm;
  window.ready = true;
</script>`;

interface PageResult {
  isolated: boolean;
  hasGpu: boolean;
  threads: number;
  description: string;
  c: number[];
}

Deno.test({
  name: "WasmRuntime in Chromium without WebGPU: 2 threads when isolated, 1 thread otherwise",
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    try {
      await Deno.stat(CHROMIUM);
    } catch {
      assert.fail(
        `Chromium not found at ${CHROMIUM}: apt-get install -y chromium, REGULA_CHROMIUM, or ` +
          `REGULA_SKIP_BROWSER=1`,
      );
    }
    const tmp = await Deno.makeTempDir({ prefix: "regula_wasm_browser_" });
    const built = await bundle({ entry: "src/wasm/mod.ts", outfile: `${tmp}/wasm.js` });
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
      if (url.pathname === "/wasm.js") {
        return new Response(js, { headers: { "content-type": "text/javascript", ...extra } });
      }
      return new Response(null, { status: 404 });
    });
    const context = await chromium.launchPersistentContext(`${tmp}/profile`, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      timeout: 60_000,
    });
    const [m, k, n] = [70, 300, 45];
    const a = Array.from(randomArray(m * k, 1)), b = Array.from(randomArray(k * n, 2));
    const want = matmulRef(a, [m, k], b, [k, n]).data;
    try {
      for (const isolated of [true, false]) {
        const logs: string[] = [];
        const page = await context.newPage();
        page.on("console", (msg) => logs.push(`${msg.type()}: ${msg.text()}`));
        page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
        await page.goto(`http://127.0.0.1:${server.addr.port}/${isolated ? "?isolated" : ""}`);
        await page.waitForFunction(() => "ready" in globalThis, null, { timeout: 30_000 })
          .catch(() => assert.fail(`the bundle did not load in Chromium:\n${logs.join("\n")}`));
        const got: PageResult = await page.evaluate(async ([a, b, m, k, n]) => {
          // deno-lint-ignore no-explicit-any
          const { WasmRuntime, matmul } = (globalThis as any).wasm;
          const rt = await WasmRuntime.create({ threads: 2 });
          const ta = rt.upload(new Float32Array(a as number[]), [m, k]);
          const tb = rt.upload(new Float32Array(b as number[]), [k, n]);
          // Two runtimes: the one-thread note must still be printed once only.
          const again = await WasmRuntime.create({ threads: 2 });
          again.destroy();
          const c = Array.from(matmul(rt, ta, tb).toArray() as Float32Array);
          const out = {
            isolated:
              (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
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
        const notes = logs.filter((l) => l.includes("regula's CPU backend runs on"));
        if (isolated) {
          assert.equal(got.threads, 2, `${what}: ${got.description}\n${logs.join("\n")}`);
          assert.match(got.description, /2 threads \(the calling thread spin-waits\)/);
          assert.deepEqual(notes, []);
        } else {
          assert.equal(got.threads, 1, what);
          assert.equal(notes.length, 1, `${what}: the note once\n${logs.join("\n")}`);
          assert.match(notes[0], /^warning: .*1 thread instead of 2: SharedArrayBuffer/);
        }
        assert.deepEqual(logs.filter((l) => l.startsWith("pageerror")), []);
        await page.close();
      }
    } finally {
      await context.close();
      await server.shutdown();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
