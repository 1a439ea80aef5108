/**
 * The package's entries (deno.json "exports"): every sub-entry loads and exports what its name
 * promises, and mod.ts exports exactly the union of the sub-entries that it re-exports, plus the
 * self-check, each name bound to the same value.
 */
import { assert } from "./_util.ts";
import denoJson from "../deno.json" with { type: "json" };

const exportsMap = denoJson.exports as Record<string, string>;

/** A few names each sub-entry must export (values, so visible at run time). */
const EXPECTED: Record<string, string[]> = {
  "./backend": ["sizeOf", "fmtShape", "checkShape", "gridFor", "foreignTensorError"],
  "./gpu": ["Runtime", "GpuTensor", "NoAdapterError", "requestGpuDevice", "BufferPool"],
  "./wasm": ["WasmRuntime", "WasmTensor", "simdSupported", "defaultThreads", "wasmMatmul"],
  "./ops": ["matmul", "softmax", "argmax", "axpy", "randomNormal"],
  "./layers": ["Linear", "Conv2d", "Sequential", "Tanh", "BatchNorm", "MaxPool2d"],
  "./models": ["buildModel", "modelSpecFromName", "parseModelSpec", "Model"],
  "./data": ["toy2d", "splitDataset", "Batches", "idxDataset"],
  "./losses": ["softmaxCrossEntropy", "mse", "readLoss"],
  "./train": ["train", "evaluate", "sgd", "adam", "stepDecay", "shouldStop"],
  "./io": ["encodeCheckpoint", "decodeCheckpoint", "encodeSafetensors", "decodeSafetensors"],
  "./regularizers": [
    "l2Penalty",
    "l2Regularizer",
    "jacobianPenalty",
    "jacobianRegularizer",
    "hardSvb",
    "parseRegularizers",
  ],
  "./linalg": ["svd", "clipSingularValues"],
  "./attacks": ["fgsm", "pgd", "pgdL2", "cw", "deepfool", "apgd", "robustness"],
  "./metrics": ["evaluateMetrics", "planeTv", "jacobianFrobenius", "pca", "weightStats"],
  "./plot": ["encodePng", "lineChart", "renderSvg"],
};

/** Sub-entries that mod.ts does not re-export (npm packages a browser bundle does not carry). */
const NOT_IN_MAIN = new Set(["./plot"]);

async function load(path: string): Promise<Record<string, unknown>> {
  return await import(new URL(`../${path}`, import.meta.url).href);
}

Deno.test("deno.json exports every sub-entry, each loading and exporting its names", async () => {
  assert.equal(exportsMap["."], "./mod.ts");
  assert.deepEqual(
    Object.keys(exportsMap).filter((k) => k !== ".").sort(),
    Object.keys(EXPECTED).sort(),
    "a sub-entry in deno.json without expected names here, or the reverse",
  );
  for (const [entry, names] of Object.entries(EXPECTED)) {
    const mod = await load(exportsMap[entry]);
    for (const name of names) {
      assert.ok(mod[name] !== undefined, `${entry} (${exportsMap[entry]}) does not export ${name}`);
    }
  }
});

Deno.test("mod.ts exports the union of its sub-entries and the self-check, nothing else", async () => {
  const main = await load("mod.ts");
  const union = new Map<string, unknown>([
    ["selfCheck", main.selfCheck],
    ["checkNames", main.checkNames],
  ]);
  for (const [entry, path] of Object.entries(exportsMap)) {
    if (entry === "." || NOT_IN_MAIN.has(entry)) continue;
    for (const [name, value] of Object.entries(await load(path))) {
      assert.ok(name in main, `mod.ts is missing ${name} from ${entry}`);
      assert.equal(main[name], value, `mod.ts's ${name} is not ${entry}'s`);
      union.set(name, value);
    }
  }
  assert.ok(typeof main.selfCheck === "function" && typeof main.checkNames === "function");
  const extra = Object.keys(main).filter((name) => !union.has(name));
  assert.deepEqual(extra, [], "mod.ts exports names that no sub-entry has");
});
