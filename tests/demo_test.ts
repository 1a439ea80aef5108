/// <reference lib="dom" />
/**
 * The in-browser demos (demo/, scripts/demo.ts) in headless Chromium (tests/_browser.ts):
 * every page loads with no console error; the toy page trains a given number of epochs and
 * reaches a test accuracy bound; its canvases and charts are not blank and its PNG export is a
 * PNG; on the MNIST page, test image #0 gets the prediction `cli.ts eval` gives on the same
 * checkpoints, and FGSM at ε 0.3 flips exactly the models `cli.ts attack` says it flips. The
 * same with WebGPU turned off, on the WebAssembly backend (threads: the demo server's pages are
 * cross-origin isolated), against `cli.ts --backend wasm`; with neither WebGPU nor WebAssembly
 * SIMD every page says so plainly; with both, the pages offer a switch.
 *
 * REGULA_DEMO_SCREENSHOTS=DIR saves the pages' screenshots there (docs/ holds the README's);
 * otherwise they go to a temporary folder that is removed.
 */
import type { BrowserContext, Page } from "playwright-core";
import { assert } from "./_util.ts";
import { chromiumMissing, launchChromium, SKIP_BROWSER } from "./_browser.ts";
import { buildDemo, MNIST_SAMPLE, mnistSample, serveDemo } from "../scripts/demo.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SHOTS = Deno.env.get("REGULA_DEMO_SCREENSHOTS");
const VIEWPORT = { width: 1500, height: 1200 };

/** Console errors and uncaught exceptions of a page. */
function watch(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console.error: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  return errors;
}

/** Waits for `document.body.dataset.state` to be one of `states`; fails on "error". */
async function waitState(page: Page, states: string[], timeout: number, errors: string[]) {
  await page.waitForFunction(
    // document.body is null while a navigation has not parsed the new page yet.
    (s) =>
      s.includes(document.body?.dataset.state ?? "") || document.body?.dataset.state === "error",
    states,
    { timeout },
  ).catch((e) => assert.fail(`timed out waiting for ${states}: ${e}\n${errors.join("\n")}`));
  const state = await page.evaluate(() => document.body.dataset.state);
  const shown = await page.evaluate(() => document.getElementById("error")?.textContent ?? "");
  assert.notEqual(state, "error", `the page reported: ${shown}\n${errors.join("\n")}`);
}

/** Variance of the luminance of a canvas's pixels (0 for a blank one). */
function canvasVariance(page: Page, selector: string): Promise<number> {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel) as HTMLCanvasElement | null;
    if (!c) return -1;
    const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let s = 0, s2 = 0;
    const n = d.length / 4;
    for (let i = 0; i < d.length; i += 4) {
      const l = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      s += l;
      s2 += l * l;
    }
    return s2 / n - (s / n) ** 2;
  }, selector);
}

async function assertNotBlank(page: Page, selectors: string[]) {
  for (const sel of selectors) {
    const v = await canvasVariance(page, sel);
    assert.ok(v >= 0, `no canvas ${sel} on the page`);
    assert.ok(v > 20, `canvas ${sel} is blank (luminance variance ${v.toFixed(2)})`);
  }
}

async function shot(page: Page, dir: string, name: string) {
  await Deno.mkdir(dir, { recursive: true });
  await page.screenshot({ path: `${dir}/${name}`, fullPage: true });
}

/** Runs `deno run -A cli.ts ...args` in the repository and parses its JSON output. */
async function cliJson(args: string[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(
    out.code,
    0,
    `cli.ts ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`,
  );
  return JSON.parse(text);
}

async function withDemo(
  webgpu: boolean,
  body: (ctx: BrowserContext, url: string, tmp: string) => Promise<void>,
) {
  const missing = await chromiumMissing();
  if (missing) assert.fail(missing);
  const tmp = await Deno.makeTempDir({ prefix: "regula_demo_" });
  const built = await buildDemo({ outdir: `${tmp}/demo` });
  const { server, url } = serveDemo(built.outdir, { port: 0 });
  const ctx = await launchChromium(`${tmp}/profile`, { webgpu, viewport: VIEWPORT });
  try {
    await body(ctx, url, tmp);
  } finally {
    await ctx.close();
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

/** index.html loads, names its backend (matching `label`) and marks the page "ready". */
async function checkIndex(ctx: BrowserContext, url: string, label: RegExp): Promise<Page> {
  const page = await ctx.newPage();
  const errors = watch(page);
  await page.goto(`${url}index.html`);
  await waitState(page, ["ready", "no-backend"], 60_000, errors);
  const backend = await page.textContent("#backend");
  assert.match(backend ?? "", label);
  assert.deepEqual(errors, []);
  return page;
}

/**
 * toy.html trains both configurations `epochs` epochs past 90 % test accuracy; its canvases and
 * charts are drawn and its PNG export is a PNG.
 * @param page a fresh page, not yet navigated
 * @param pageUrl the toy page's URL
 * @param shotFile where the screenshot goes (a file name under `shots`)
 */
async function checkToy(
  page: Page,
  pageUrl: string,
  tmp: string,
  shots: string,
  shotFile: string,
) {
  const errors = watch(page);
  await page.goto(pageUrl);
  await waitState(page, ["ready"], 120_000, errors);
  const epochs = 40;
  await page.fill("#epochs", String(epochs));
  await page.click("#train");
  await waitState(page, ["done"], 400_000, errors);
  for (const key of ["a", "b"]) {
    const got = await page.evaluate((k) => {
      const v = (id: string) => Number(document.getElementById(`${k}-${id}`)?.dataset.value);
      return { epoch: v("epoch"), test: v("test-acc"), train: v("train-acc") };
    }, key);
    assert.equal(got.epoch, epochs, `configuration ${key} trained ${got.epoch} epochs`);
    // Four clusters of spread 0.4 around (±1, ±1): the Bayes error is about 1.2 %.
    assert.ok(
      got.test > 0.9,
      `configuration ${key}: test accuracy ${got.test} after ${epochs} epochs`,
    );
  }
  await page.waitForFunction(() =>
    document.querySelectorAll("#a-chart canvas, #b-chart canvas").length === 2
  );
  await assertNotBlank(page, [
    "#a-map",
    "#b-map",
    "#a-heat",
    "#b-heat",
    "#a-chart canvas",
    "#b-chart canvas",
  ]);
  const download = page.waitForEvent("download");
  await page.click("#export");
  const file = `${tmp}/toy.png`;
  await (await download).saveAs(file);
  const png = await Deno.readFile(file);
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "not a PNG");
  assert.ok(png.length > 20_000, `the exported PNG has only ${png.length} bytes`);
  await shot(page, shots, shotFile);
  assert.deepEqual(errors, []);
}

/**
 * mnist.html: test image #0 gets the prediction `cli.ts eval` gives, FGSM at ε 0.3 flips exactly
 * the models `cli.ts attack` flips, and a "7" drawn with the mouse reads as 7.
 * @param page a fresh page, not yet navigated
 * @param pageUrl the MNIST page's URL
 * @param cliFlags extra flags of the `cli.ts eval` and `cli.ts attack` runs (the backend)
 * @param shotFile where the screenshot goes (a file name under `shots`), or null for none
 */
async function checkMnist(
  page: Page,
  pageUrl: string,
  tmp: string,
  shots: string,
  shotFile: string | null,
  cliFlags: string[] = [],
) {
  const models = ["none", "jacobian", "l2"];
  const errors = watch(page);
  await page.goto(pageUrl);
  await waitState(page, ["ready"], 240_000, errors);
  const label = 7; // MNIST test image #0
  assert.match((await page.textContent("#source")) ?? "", /#0, label 7/);
  for (const m of models) {
    const ckpt = `demo/checkpoints/lenet_${m}.safetensors`;
    const ev = await cliJson(["eval", ckpt, "--limit", "1", "--json", ...cliFlags]);
    assert.equal(ev.accuracy, 1, `cli.ts eval says ${m} misclassifies test image #0`);
    const pred = await page.getAttribute(`#pred-${m}`, "data-class");
    assert.equal(
      Number(pred),
      label,
      `${m}: the page predicts ${pred}, cli.ts eval ${label}`,
    );
  }
  await assertNotBlank(
    page,
    models.flatMap((m) => [
      `#saliency-${m}`,
      `#occlusion-${m}`,
      `#adv-${m}`,
      `#plane-${m}`,
    ]).concat(["#shown", "#probs canvas"]),
  );

  const before = Number(await page.evaluate(() => document.body.dataset.updates));
  await page.selectOption("#attack", "fgsm");
  await page.evaluate(() => {
    const eps = document.getElementById("eps") as HTMLInputElement;
    eps.value = "0.3";
    eps.dispatchEvent(new Event("input"));
  });
  await page.waitForFunction(
    (n) => Number(document.body.dataset.updates) > n && !document.body.dataset.busy,
    before,
    { timeout: 240_000 },
  );
  const flips: Record<string, boolean> = {};
  for (const m of models) {
    const report = await cliJson([
      "attack",
      `demo/checkpoints/lenet_${m}.safetensors`,
      "--attack",
      "fgsm",
      "--eps",
      "0.3",
      "--limit",
      "1",
      "--no-checks",
      "--json",
      "--out",
      `${tmp}/${m}.attack.json`,
      ...cliFlags,
    ]);
    const acc = (report.accuracy as Record<string, number[]>).fgsm[0];
    const eps = await page.getAttribute(`#advpred-${m}`, "data-eps");
    assert.equal(Number(eps), 0.3);
    const adv = Number(await page.getAttribute(`#advpred-${m}`, "data-class"));
    flips[m] = adv !== label;
    assert.equal(
      flips[m],
      acc === 0,
      `${m}: FGSM ε 0.3 gives ${adv} on the page; cli.ts attack's accuracy is ${acc}`,
    );
  }
  assert.ok(flips.none, "FGSM ε 0.3 should flip the unregularized model on test image #0");
  if (shotFile) await shot(page, shots, shotFile);

  // A "7" drawn on the pad with the mouse: a bar, then a diagonal stroke.
  const n = Number(await page.evaluate(() => document.body.dataset.updates));
  const pad = (await page.locator("#pad").boundingBox())!;
  const at = (fx: number, fy: number) =>
    page.mouse.move(pad.x + pad.width * fx, pad.y + pad.height * fy);
  await at(0.25, 0.25);
  await page.mouse.down();
  for (let i = 0; i <= 10; i++) await at(0.25 + 0.05 * i, 0.25);
  for (let i = 0; i <= 12; i++) await at(0.75 - 0.03 * i, 0.25 + 0.05 * i);
  await page.mouse.up();
  await page.waitForFunction(
    (k) => Number(document.body.dataset.updates) > k && !document.body.dataset.busy,
    n,
    { timeout: 240_000 },
  );
  assert.match((await page.textContent("#source")) ?? "", /your drawing/);
  for (const m of models) {
    const pred = await page.getAttribute(`#pred-${m}`, "data-class");
    assert.equal(pred, "7", `${m} reads the drawn 7 as ${pred}`);
  }
  assert.deepEqual(errors, []);
}

Deno.test({
  name: "demo pages run in headless Chromium on WebGPU and agree with the CLI",
  ignore: SKIP_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withDemo(true, async (ctx, url, tmp) => {
      const shots = SHOTS ?? `${tmp}/shots`;

      await t.step("index.html loads and names the WebGPU adapter", async () => {
        await (await checkIndex(ctx, url, /^Running on WebGPU \(/)).close();
      });

      await t.step("toy.html trains both configurations past a test accuracy bound", async () => {
        const page = await ctx.newPage();
        await checkToy(page, `${url}toy.html`, tmp, shots, "demo_toy.png");
        await page.close();
      });

      await t.step("mnist.html predicts as cli.ts eval and flips as cli.ts attack", async () => {
        const page = await ctx.newPage();
        await checkMnist(page, `${url}mnist.html`, tmp, shots, "demo_mnist.png");
        await page.close();
      });
    });
  },
});

/** The WebAssembly backend's label on a page, e.g. "WebAssembly SIMD, 2 threads (...)". */
const WASM_LABEL = /^Running on WebAssembly SIMD, \d+ threads? /;

Deno.test({
  name: "demo pages without WebGPU run on WebAssembly and agree with the CLI; " +
    "without SIMD too they say so plainly",
  ignore: SKIP_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withDemo(false, async (ctx, url, tmp) => {
      const shots = SHOTS ?? `${tmp}/shots`;

      await t.step("index.html runs on Wasm threads (isolated) and offers no switch", async () => {
        const page = await checkIndex(ctx, url, WASM_LABEL);
        const got = await page.evaluate(() => ({
          backend: document.body.dataset.backend,
          threads: Number(document.body.dataset.threads),
          cores: navigator.hardwareConcurrency,
          isolated: crossOriginIsolated,
          text: document.getElementById("backend")!.textContent,
          switch: document.getElementById("backend-switch") !== null,
        }));
        assert.equal(got.backend, "wasm");
        assert.equal(got.isolated, true, "the demo server's pages are cross-origin isolated");
        assert.equal(got.threads, Math.min(8, got.cores), got.text ?? "");
        assert.match(got.text ?? "", / No WebGPU: navigator\.gpu gave no adapter/);
        assert.equal(got.switch, false, "a switch with only one backend");
        await page.close();
      });

      await t.step(
        "toy.html trains both configurations on Wasm past 90 % test accuracy",
        async () => {
          const page = await ctx.newPage();
          await checkToy(page, `${url}toy.html`, tmp, shots, "demo_toy_wasm.png");
          assert.match((await page.textContent("#backend")) ?? "", WASM_LABEL);
          await page.close();
        },
      );

      await t.step(
        "mnist.html on Wasm predicts as cli.ts eval and flips as cli.ts attack",
        async () => {
          const page = await ctx.newPage();
          await checkMnist(page, `${url}mnist.html`, tmp, shots, null, ["--backend", "wasm"]);
          assert.match((await page.textContent("#backend")) ?? "", WASM_LABEL);
          await page.close();
        },
      );

      await t.step("without WebAssembly SIMD as well, every page says so plainly", async () => {
        for (const name of ["index", "toy", "mnist"]) {
          const page = await ctx.newPage();
          const errors = watch(page);
          // An engine without 128-bit SIMD: simdSupported() validates a SIMD module.
          await page.addInitScript(() => {
            WebAssembly.validate = () => false;
          });
          await page.goto(`${url}${name}.html`);
          await page.waitForFunction(() => document.body.dataset.backend === "none", null, {
            timeout: 60_000,
          }).catch(() => assert.fail(`${name}.html did not report the missing backends`));
          const text = (await page.textContent("#backend")) ?? "";
          assert.match(text, /^WebGPU is not available: navigator\.gpu gave no adapter/);
          assert.match(text, /WebAssembly has no 128-bit SIMD/);
          if (name !== "index") assert.equal(await page.isVisible("#app"), false);
          assert.deepEqual(errors, [], `${name}.html`);
          await page.close();
        }
      });
    });
  },
});

Deno.test({
  name: "demo pages with both backends offer a switch, and ?backend=wasm runs on WebAssembly",
  ignore: SKIP_BROWSER,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withDemo(true, async (ctx, url) => {
      const page = await checkIndex(ctx, url, /^Running on WebGPU \(/);
      const errors = watch(page);
      assert.equal(await page.inputValue("#backend-switch"), "webgpu");
      await Promise.all([
        page.waitForURL(/\?backend=wasm$/),
        page.selectOption("#backend-switch", "wasm"),
      ]);
      await waitState(page, ["ready"], 60_000, errors);
      assert.match((await page.textContent("#backend")) ?? "", WASM_LABEL);
      assert.equal(await page.inputValue("#backend-switch"), "wasm");
      assert.equal(
        await page.getAttribute('nav a[href^="toy.html"]', "href"),
        "toy.html?backend=wasm",
      );
      await Promise.all([
        page.waitForURL(/toy\.html\?backend=wasm$/),
        page.click('nav a[href^="toy.html"]'),
      ]);
      await waitState(page, ["ready"], 120_000, errors);
      assert.equal(await page.evaluate(() => document.body.dataset.backend), "wasm");
      assert.deepEqual(errors, []);
      await page.close();
    });
  },
});

Deno.test({
  name: "serveDemo() sends the cross-origin isolation headers and serves only the built folder",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "regula_demo_serve_" });
    await Deno.writeTextFile(`${dir}/index.html`, "<!doctype html><title>x</title>");
    const { server, url } = serveDemo(dir, { port: 0 });
    try {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "<!doctype html><title>x</title>");
      assert.equal(res.headers.get("cross-origin-opener-policy"), "same-origin");
      assert.equal(res.headers.get("cross-origin-embedder-policy"), "require-corp");
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
      for (const path of ["missing.js", "..%2f..%2fetc%2fpasswd"]) {
        const r = await fetch(`${url}${path}`);
        assert.equal(r.status, 404, path);
        await r.body?.cancel();
      }
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("mnistSample() holds the first MNIST test images, then their labels", async () => {
  const b = await mnistSample(3);
  assert.equal(b.length, 3 * 785);
  assert.deepEqual([...b.subarray(3 * 784)], [7, 2, 1]); // MNIST's first three test labels
  const first = b.subarray(0, 784);
  assert.ok(first.some((v) => v === 255) && first.some((v) => v === 0), "not an 8-bit image");
  assert.equal((await mnistSample()).length, MNIST_SAMPLE * 785);
});

Deno.test({
  name: "buildDemo() writes every page, the library, the chart libraries and the checkpoints",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "regula_demo_build_" });
    try {
      const { files } = await buildDemo({ outdir: tmp });
      for (
        const f of [
          "index.html",
          "toy.html",
          "mnist.html",
          "index.js",
          "toy.js",
          "mnist.js",
          "style.css",
          "regula.js",
          "mnist_test.u8",
          "vendor/vega.min.js",
          "vendor/vega-lite.min.js",
          "checkpoints/manifest.json",
          "checkpoints/lenet_none.safetensors",
        ]
      ) assert.ok(files.includes(f), `${f} is missing from ${files.join(", ")}`);
      const manifest = JSON.parse(await Deno.readTextFile(`${tmp}/checkpoints/manifest.json`));
      for (const m of manifest.models) {
        assert.ok(files.includes(`checkpoints/${m.file}`), `${m.file} is not in the build`);
        assert.match(m.command, /^deno run -A cli\.ts train /);
      }
      // The pages share the library: none of them inlines it.
      const toy = await Deno.readTextFile(`${tmp}/toy.js`);
      assert.match(toy, /from "\.\/regula\.js"/);
      assert.doesNotMatch(toy, /@group\(0\)/, "toy.js inlines WGSL: mod.ts was bundled into it");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
