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
  assert.deepEqual(kernelBytes(false, true), binaries["kernels_relaxed.wasm"]);
  assert.deepEqual(kernelBytes(true, true), binaries["kernels_relaxed_threads.wasm"]);
});

/** Occurrences of f32x4.relaxed_madd's opcode (0xfd 0x105, LEB128 0x85 0x02) in a module. */
function maddCount(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i + 2 < bytes.length; i++) {
    if (bytes[i] === 0xfd && bytes[i + 1] === 0x85 && bytes[i + 2] === 0x02) n++;
  }
  return n;
}

Deno.test("the relaxed-SIMD modules fuse the GEMM micro-kernel's 12 multiply-adds", () => {
  for (const threads of [false, true]) {
    const relaxed = maddCount(kernelBytes(threads, true));
    const plain = maddCount(kernelBytes(threads, false));
    // The 6 x 8 micro-kernel's twelve (bytes that merely look like the opcode, e.g. inside a
    // v128.const, count in both).
    assert.ok(relaxed - plain >= 12, `relaxed_madd ${relaxed} times, ${plain} in the plain build`);
  }
});

Deno.test("the embedded modules export every kernel and import one (shared) memory", () => {
  for (const [threads, relaxed] of [[false, false], [true, false], [false, true], [true, true]]) {
    const module = new WebAssembly.Module(kernelBytes(threads, relaxed) as Uint8Array<ArrayBuffer>);
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
