/**
 * The committed WebAssembly kernels (src/wasm/_binary.ts) are what
 * `deno task build:wasm` makes from wasm/assembly/ with the pinned compiler:
 * a fresh in-memory build must give the same file, byte for byte.
 */
import { assert } from "./_util.ts";
import { buildWasm, WASM_TARGETS } from "../scripts/build_wasm.ts";
import { kernelBytes, kernelNames } from "../src/wasm/module.ts";

const COMMITTED = new URL("../src/wasm/_binary.ts", import.meta.url);

Deno.test("build:wasm rebuilds src/wasm/_binary.ts byte for byte", async () => {
  const { binaries, source } = await buildWasm();
  const committed = await Deno.readTextFile(COMMITTED);
  assert.ok(
    committed === source,
    "src/wasm/_binary.ts is stale: it differs from a fresh build of wasm/assembly/; run " +
      "`deno task build:wasm` and commit the result",
  );
  assert.deepEqual(Object.keys(binaries), WASM_TARGETS.map((t) => t.file));
  assert.deepEqual(kernelBytes(false), binaries["kernels.wasm"]);
  assert.deepEqual(kernelBytes(true), binaries["kernels_threads.wasm"]);
});

Deno.test("the embedded modules export every kernel and import one (shared) memory", () => {
  for (const threads of [false, true]) {
    const module = new WebAssembly.Module(kernelBytes(threads) as Uint8Array<ArrayBuffer>);
    const exports = WebAssembly.Module.exports(module).map((e) => e.name).sort();
    // Every export is a function (no memory, globals or tables leak out), the GEMM's among them.
    assert.deepEqual(kernelNames(module), exports);
    for (const name of ["sgemm", "biasAdd", "sumRows", "heapBase", "scratchBytes"]) {
      assert.ok(exports.includes(name), `${name} is not exported`);
    }
    assert.deepEqual(WebAssembly.Module.imports(module), [
      { module: "env", name: "memory", kind: "memory" },
    ]);
  }
  // A plain memory cannot back the threads variant, nor a shared one the other.
  const plain = new WebAssembly.Memory({ initial: 1, maximum: 16 });
  const shared = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  const compile = (t: boolean) => new WebAssembly.Module(kernelBytes(t) as Uint8Array<ArrayBuffer>);
  assert.throws(() => new WebAssembly.Instance(compile(true), { env: { memory: plain } }));
  assert.throws(() => new WebAssembly.Instance(compile(false), { env: { memory: shared } }));
});
