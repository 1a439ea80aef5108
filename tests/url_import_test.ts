/**
 * `import { ... } from "<url>/mod.ts"` works: the repository is served over
 * HTTP on 127.0.0.1 and a fresh Deno process (empty DENO_DIR, `--reload`, so
 * nothing is cached) imports mod.ts from it, runs an op that loads its WGSL
 * (matmul) through `import ... with { type: "text" }` over HTTP, and prints
 * the result.
 */
import { assert } from "./_util.ts";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Content types as a TypeScript-aware server sends them. */
const TYPED: Record<string, string> = {
  ".ts": "application/typescript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wgsl": "text/plain; charset=utf-8",
};

/** Everything as text/plain, as raw.githubusercontent.com serves files. */
const PLAIN: Record<string, string> = {
  ".ts": "text/plain; charset=utf-8",
  ".json": "text/plain; charset=utf-8",
  ".wgsl": "text/plain; charset=utf-8",
};

/** Serves files under ROOT; records every path asked for. */
function serveRepo(
  requested: string[],
  types: Record<string, string>,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requested.push(path);
    const file = normalize(join(ROOT, path));
    if (!file.startsWith(ROOT)) return new Response("forbidden", { status: 403 });
    try {
      const body = await Deno.readFile(file);
      const type = types[extname(file)] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

const SCRIPT = (base: string) => `
import { matmul, Runtime } from "${base}/mod.ts";
const rt = await Runtime.create();
const x = rt.upload(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]); // (B, in)
const w = rt.upload(new Float32Array([1, 0, -1, 0, 1, 2]), [2, 3]); // (out, in)
const bias = rt.upload(new Float32Array([0.5, -0.5]), [2]);
const y = matmul(rt, x, w, { transB: true, bias, activation: "relu" }); // relu(x wᵀ + b)
console.log(JSON.stringify({ y: Array.from(await y.read()), adapter: rt.description }));
for (const t of [x, w, bias, y]) t.dispose();
rt.destroy();
`;

for (const [how, types] of [["typed", TYPED], ["text/plain", PLAIN]] as const) {
  Deno.test({
    name:
      `mod.ts imported from an http:// URL (${how} content types) runs a WGSL kernel in a fresh Deno`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const requested: string[] = [];
      const server = serveRepo(requested, types);
      const tmp = await Deno.makeTempDir({ prefix: "regula_url_" });
      try {
        const base = `http://127.0.0.1:${server.addr.port}`;
        await Deno.writeTextFile(join(tmp, "main.ts"), SCRIPT(base));
        const cmd = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "--reload", "--no-lock", "--no-config", "main.ts"],
          cwd: tmp,
          env: { DENO_DIR: join(tmp, "deno_dir"), NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        });
        const { code, stdout, stderr } = await cmd.output();
        const out = new TextDecoder().decode(stdout);
        const err = new TextDecoder().decode(stderr);
        assert.equal(code, 0, `deno run exited ${code}:\n${err}\n${out}`);
        const result = JSON.parse(out.trim().split("\n").at(-1)!);
        // x wᵀ = [[1-3, 2+6], [4-6, 5+12]] = [[-2, 8], [-2, 17]]; + bias; relu
        assert.deepEqual(result.y, [0, 7.5, 0, 16.5]);
        assert.ok(requested.includes("/mod.ts"));
        const shaders = requested.filter((p) => p.endsWith(".wgsl"));
        assert.ok(shaders.length > 0, `no .wgsl was fetched over HTTP: ${requested.join(", ")}`);
      } finally {
        await server.shutdown();
        await Deno.remove(tmp, { recursive: true });
      }
    },
  });
}
