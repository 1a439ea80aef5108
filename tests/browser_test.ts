/**
 * Browser parity: the bundle (scripts/bundle.ts) runs the self-check in
 * headless Chromium on WebGPU, and its results must match the same checks run
 * here in Deno.
 *
 * Chromium is launched by tests/_browser.ts (flags, how WebGPU comes up on
 * SwiftShader, REGULA_CHROMIUM, REGULA_SKIP_BROWSER).
 */
import { assert, getRuntime } from "./_util.ts";
import { CHROMIUM_ARGS, chromiumMissing, SKIP_BROWSER, withChromiumPage } from "./_browser.ts";
import { bundle } from "../scripts/bundle.ts";
import { type CheckResult, selfCheck } from "../src/selfcheck.ts";

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>regula self-check</title>
<script type="module">
  import * as regula from "/regula.js";
  window.regula = regula;
  window.regulaReady = true;
</script>`;

interface PageResult {
  adapter: string;
  isFallback: boolean;
  checks: CheckResult[];
}

/**
 * Index of the first sampled value where two passing runs of a check disagree
 * by more than twice its tolerance (each is within tolerance of the same
 * float64 reference), or -1.
 */
function firstDisagreement(a: CheckResult, b: CheckResult): number {
  if (a.sample.length !== b.sample.length) return 0;
  return a.sample.findIndex((x, i) => {
    const y = b.sample[i];
    if (Number.isNaN(x) && Number.isNaN(y)) return false;
    return !(Math.abs(x - y) <= 2 * (a.atol + a.rtol * Math.max(Math.abs(x), Math.abs(y))));
  });
}

Deno.test({
  name: "selfCheck() in headless Chromium passes and matches Deno",
  ignore: SKIP_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const missing = await chromiumMissing();
    if (missing) assert.fail(missing);

    const tmp = await Deno.makeTempDir({ prefix: "regula_browser_" });
    const built = await bundle({ outfile: `${tmp}/regula.js` });
    const js = await Deno.readFile(built.outfile);
    await Deno.remove(tmp, { recursive: true });
    const serve = (req: Request) => {
      const path = new URL(req.url).pathname;
      if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
      if (path === "/regula.js") {
        return new Response(js, { headers: { "content-type": "text/javascript" } });
      }
      if (path === "/favicon.ico") return new Response(null, { status: 204 });
      return new Response("not found", { status: 404 });
    };
    await withChromiumPage(serve, async (page, logs) => {
      await page.waitForFunction(() => "regulaReady" in globalThis, null, { timeout: 30_000 })
        .catch(() => assert.fail(`the bundle did not load in Chromium:\n${logs.join("\n")}`));

      const hasAdapter = await page.evaluate(async () =>
        // deno-lint-ignore no-explicit-any
        Boolean(await (navigator as any).gpu?.requestAdapter())
      );
      assert.ok(
        hasAdapter,
        `navigator.gpu gave no adapter in Chromium with ${CHROMIUM_ARGS.join(" ")}`,
      );

      const inBrowser: PageResult = await page.evaluate(async () => {
        // deno-lint-ignore no-explicit-any
        const regula = (globalThis as any).regula;
        const rt = await regula.Runtime.create();
        const checks = await regula.selfCheck(rt);
        const out = { adapter: rt.description, isFallback: rt.isFallback, checks };
        rt.destroy();
        return out;
      });
      const inDeno = await selfCheck(await getRuntime());

      const report = (r: CheckResult) => `${r.name}: ${r.ok ? "ok" : "FAILED"} ${r.detail}`;
      const bad = inBrowser.checks.filter((r) => !r.ok);
      assert.equal(
        bad.length,
        0,
        `in Chromium (${inBrowser.adapter}):\n${bad.map(report).join("\n")}\n${logs.join("\n")}`,
      );
      assert.deepEqual(inBrowser.checks.map((r) => r.name), inDeno.map((r) => r.name));
      for (let i = 0; i < inDeno.length; i++) {
        const b = inBrowser.checks[i], d = inDeno[i];
        assert.ok(d.ok, `in Deno: ${report(d)}`);
        const at = firstDisagreement(d, b);
        assert.equal(
          at,
          -1,
          `${d.name}: sample ${at} is ${b.sample[at]} in Chromium, ${d.sample[at]} in Deno`,
        );
        assert.equal(b.count, d.count, `${d.name}: number of values compared`);
      }
    });
  },
});

Deno.test("bundle() refuses code that uses a Deno API", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "regula_bundle_" });
  try {
    await Deno.writeTextFile(`${tmp}/bad.ts`, `export const home = Deno.env.get("HOME");\n`);
    await assert.rejects(
      () => bundle({ entry: `${tmp}/bad.ts`, outfile: `${tmp}/out.js` }),
      /a Deno API would end up in the browser bundle \(from .*bad\.ts\)/,
    );
    await assert.rejects(() => Deno.stat(`${tmp}/out.js`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("bundle() inlines the WGSL shaders and leaves no Deno API in mod.ts's bundle", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "regula_bundle_" });
  try {
    const r = await bundle({ outfile: `${tmp}/regula.js` });
    const js = await Deno.readTextFile(r.outfile);
    const shaders = r.inputs.filter((i) => i.endsWith(".wgsl"));
    assert.ok(shaders.length > 0, "no .wgsl file was bundled");
    for (const s of shaders) {
      // A plain-ASCII line survives esbuild's string escaping unchanged.
      const src = await Deno.readTextFile(new URL(`../${s}`, import.meta.url));
      const line = src.split("\n").find((l) => /^[ -~]{20,}$/.test(l) && !/["'`\\$]/.test(l));
      assert.ok(line && js.includes(line), `${s} is not inlined`);
    }
    assert.doesNotMatch(js, /\bDeno\s*[.[]/);
    assert.doesNotMatch(js, /\bfetch\(/, "the bundle should not fetch shaders at run time");
    const mod = await import(`file://${r.outfile}`);
    const names = ["Runtime", "GpuTensor", "WasmRuntime", "WasmTensor", "requestGpuDevice"];
    for (const name of [...names, "NoAdapterError", "selfCheck"]) {
      assert.ok(name in mod, `bundle does not export ${name}`);
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "every shaders/*.wgsl compiles in headless Chromium (Tint), not only in Deno (naga)",
  ignore: SKIP_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Tint is stricter than naga: it rejects a constant NaN, infinity or literal above FLT_MAX,
    // and takes a struct of builtins holding local_invocation_index as non-uniform.
    const dir = new URL("../shaders/", import.meta.url);
    const sources: Record<string, string> = {};
    for await (const e of Deno.readDir(dir)) {
      if (e.name.endsWith(".wgsl")) sources[e.name] = await Deno.readTextFile(new URL(e.name, dir));
    }
    assert.ok(Object.keys(sources).length > 0, "no shader found");
    const blank = () =>
      new Response("<!doctype html><title>regula shaders</title>", {
        headers: { "content-type": "text/html" },
      });
    const errors = await withChromiumPage(blank, (page) =>
      page.evaluate(async (sources) => {
        // deno-lint-ignore no-explicit-any
        const adapter = await (navigator as any).gpu?.requestAdapter();
        if (!adapter) return ["navigator.gpu gave no adapter"];
        const device = await adapter.requestDevice();
        const out: string[] = [];
        for (const [name, code] of Object.entries(sources)) {
          const info = await device.createShaderModule({ code }).getCompilationInfo();
          for (const m of info.messages) {
            if (m.type === "error") out.push(`${name}:${m.lineNum}: ${m.message}`);
          }
        }
        device.destroy();
        return out;
      }, sources));
    assert.deepEqual(errors, [], `Tint rejects:\n${errors.join("\n")}`);
  },
});
