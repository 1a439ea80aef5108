/**
 * Bundles mod.ts into one ES module for browsers: `deno task bundle` writes
 * dist/regula.js (and its source map).
 *
 * The WGSL shaders are imported as `import src from "../../shaders/x.wgsl"
 * with { type: "text" }`; esbuild's "text" loader inlines them as strings, so
 * the bundle fetches nothing at run time. The build fails if any Deno API
 * would end up in the bundle, since browsers have none.
 *
 * @module
 */

import * as esbuild from "esbuild";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
// The browser-safe npm packages the library imports: loading them here puts them in Deno's cache,
// and import.meta.resolve then gives the file esbuild inlines.
// deno-lint-ignore no-import-prefix
import "npm:wgpu-matrix@3.4.2";

/** Options of {@linkcode bundle}. */
export interface BundleOptions {
  /** Output file. Default: dist/regula.js in the repository. */
  outfile?: string;
  /** Minify. Default false (readable stack traces in the browser). */
  minify?: boolean;
  /** Entry module. Default: mod.ts (tests pass others). */
  entry?: string;
}

/** What {@linkcode bundle} wrote. */
export interface BundleResult {
  outfile: string;
  bytes: number;
  /** Repository-relative source files in the bundle. */
  inputs: string[];
}

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Matches a use of the Deno namespace (`Deno.env`, `Deno["env"]`, `globalThis.Deno`). */
const DENO_API = /\bDeno\s*(\.|\[)|globalThis\s*\.\s*Deno\b/;

/**
 * npm packages the library may import with a full `npm:` specifier (so that a URL import of
 * mod.ts resolves them without an import map): pure ES modules with no Node or Deno APIs,
 * inlined into the bundle from Deno's cache.
 */
const BROWSER_NPM: Record<string, string> = {
  "npm:wgpu-matrix@3.4.2": fileURLToPath(import.meta.resolve("npm:wgpu-matrix@3.4.2")),
};

/**
 * `npm:` (other than {@linkcode BROWSER_NPM}), `jsr:` and `node:` specifiers have no meaning in a
 * browser: fail naming the importer.
 */
const denoSpecifierGuard: esbuild.Plugin = {
  name: "regula-deno-specifier-guard",
  setup(build) {
    build.onResolve(
      { filter: /^npm:/ },
      (args) => args.path in BROWSER_NPM ? { path: BROWSER_NPM[args.path] } : undefined,
    );
    build.onResolve({ filter: /^(npm|jsr|node):/ }, (args) => ({
      errors: [{
        text: `${args.path} (imported by ${args.importer}) cannot go into the browser bundle: ` +
          `keep library code free of ${args.path.split(":")[0]}: imports`,
      }],
    }));
  },
};

/**
 * Builds the browser bundle.
 * @param options output path and minification
 * @returns where it was written and its size
 * @throws Error when esbuild fails or a Deno API is found in the output
 */
export async function bundle(options: BundleOptions = {}): Promise<BundleResult> {
  const outfile = options.outfile ?? `${ROOT}dist/regula.js`;
  try {
    const result = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: [options.entry ?? "mod.ts"],
      outfile,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      loader: { ".wgsl": "text" },
      sourcemap: "linked",
      minify: options.minify ?? false,
      metafile: true,
      write: false,
      logLevel: "silent",
      plugins: [denoSpecifierGuard],
      banner: { js: `// regula ${denoJson.version}: browser bundle of mod.ts (scripts/bundle.ts)` },
    });
    const js = result.outputFiles.find((f) => f.path.endsWith(".js"));
    if (!js) throw new Error("bundle: esbuild produced no .js output");
    const inputs = Object.keys(result.metafile.inputs);
    if (DENO_API.test(js.text)) {
      const offenders: string[] = [];
      for (const input of inputs) {
        const src = await Deno.readTextFile(`${ROOT}${input}`).catch(() => "");
        if (DENO_API.test(stripComments(src))) offenders.push(input);
      }
      throw new Error(
        `bundle: a Deno API would end up in the browser bundle (from ${
          offenders.join(", ") || "an unknown input"
        }); keep Deno.* in cli.ts, scripts/ and tests/`,
      );
    }
    await Deno.mkdir(dirname(outfile), { recursive: true });
    for (const f of result.outputFiles) await Deno.writeFile(f.path, f.contents);
    return { outfile, bytes: js.contents.byteLength, inputs };
  } finally {
    await esbuild.stop();
  }
}

function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:])\/\/[^\n]*/g, "$1");
}

if (import.meta.main) {
  try {
    const r = await bundle({ minify: Deno.args.includes("--minify") });
    console.log(
      `wrote ${r.outfile.replace(ROOT, "")} (${(r.bytes / 1024).toFixed(1)} KiB, ` +
        `${r.inputs.length} inputs, ${r.inputs.filter((i) => i.endsWith(".wgsl")).length} shaders)`,
    );
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
