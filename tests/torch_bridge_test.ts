/**
 * tools/torch_bridge.py, the PyTorch side of regula's golden tests: the
 * safetensors round trip TS -> Python -> TS, and each op checked against a
 * hand computation in TS or against finite differences of its own forward.
 *
 * Needs PyTorch for /usr/bin/python3 (Debian: `apt-get install python3-torch`);
 * without it every test fails saying so.
 */
import { assert, assertClose, randomArray } from "./_util.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
} from "../src/io/safetensors.ts";

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
const BRIDGE = new URL("../tools/torch_bridge.py", import.meta.url).pathname;

let torchCheck: Promise<void> | null = null;

/** Rejects, with what to install, unless /usr/bin/python3 imports torch and numpy. */
function requireTorch(): Promise<void> {
  torchCheck ??= (async () => {
    let out;
    try {
      out = await new Deno.Command(PYTHON, { args: ["-c", "import numpy, torch"] }).output();
    } catch (e) {
      throw new Error(
        `${PYTHON} cannot be run (${(e as Error).message}): the PyTorch golden tests need ` +
          `Debian's python3 with PyTorch (apt-get install python3-torch)`,
      );
    }
    if (!out.success) {
      const why = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
      throw new Error(
        `${PYTHON} cannot import torch (${why}): install PyTorch for the system Python ` +
          `with apt-get install python3-torch`,
      );
    }
  })();
  return torchCheck;
}

/** One bridge job: input tensors, the spec, and where to put the spec. */
interface Job {
  inputs: Record<string, SafetensorsTensor>;
  spec: Record<string, unknown>;
  /** Put the spec in `__metadata__["spec"]` instead of the job list. */
  inMetadata?: boolean;
  /** Extra input metadata. */
  metadata?: Record<string, string>;
}

/** A job's decoded output and the raw bytes that went in and came out. */
type JobResult = SafetensorsFile & { bytesIn: Uint8Array; bytesOut: Uint8Array };

/**
 * Runs jobs in one tools/torch_bridge.py process (`--jobs`: torch loads once).
 * Returns each job's output, or the Error it reported (`torch_bridge: job i: ...`).
 */
async function bridgeAll(jobs: Job[]): Promise<(JobResult | Error)[]> {
  await requireTorch();
  const dir = await Deno.makeTempDir({ prefix: "regula_bridge_" });
  try {
    const bytesIn = jobs.map((job) =>
      encodeSafetensors(
        job.inputs,
        job.metadata || job.inMetadata
          ? { ...job.metadata, ...(job.inMetadata ? { spec: JSON.stringify(job.spec) } : {}) }
          : undefined,
      )
    );
    const list = await Promise.all(jobs.map(async (job, i) => {
      await Deno.writeFile(`${dir}/in${i}.safetensors`, bytesIn[i]);
      return {
        inputs: `${dir}/in${i}.safetensors`,
        outputs: `${dir}/out${i}.safetensors`,
        ...(job.inMetadata ? {} : { spec: job.spec }),
      };
    }));
    await Deno.writeTextFile(`${dir}/jobs.json`, JSON.stringify(list));
    const out = await new Deno.Command(PYTHON, { args: [BRIDGE, "--jobs", `${dir}/jobs.json`] })
      .output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    const errors = new Map<number, string>();
    for (const line of stderr.split("\n")) {
      const m = line.match(/^torch_bridge: job (\d+): (.*)$/);
      if (m) errors.set(Number(m[1]), `torch_bridge.py exited ${out.code}: ${m[2]}`);
    }
    if (!out.success && (out.code !== 2 || errors.size === 0)) {
      throw new Error(`torch_bridge.py exited ${out.code}:\n${stderr}`);
    }
    return await Promise.all(jobs.map(async (_, i) => {
      if (errors.has(i)) return new Error(errors.get(i));
      const bytesOut = await Deno.readFile(`${dir}/out${i}.safetensors`);
      return { ...decodeSafetensors(bytesOut), bytesIn: bytesIn[i], bytesOut };
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs jobs that must all succeed. */
async function bridge(...jobs: Job[]): Promise<JobResult[]> {
  const results = await bridgeAll(jobs);
  return results.map((r) => {
    if (r instanceof Error) throw r;
    return r;
  });
}

function f64(shape: number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "F64", shape, data: Float64Array.from(data) };
}

function i32(shape: number[], data: number[]): SafetensorsTensor {
  return { dtype: "I32", shape, data: Int32Array.from(data) };
}

/** The elements of a float output as numbers, after checking its shape. */
function values(file: SafetensorsFile, name: string, shape?: number[]): number[] {
  const t = file.tensors[name];
  assert.ok(t, `output "${name}" is missing (have ${Object.keys(file.tensors).join(", ")})`);
  if (shape) assert.deepEqual(t.shape, shape, `${name} shape`);
  assert.ok(t.dtype === "F64" || t.dtype === "F32", `${name} dtype ${t.dtype}`);
  return [...(t.data as Float64Array)];
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Hand-computed linear layer + cross-entropy: logits, loss and gradients. */
function linearCE(
  x: Float64Array,
  w: Float64Array,
  b: Float64Array,
  y: number[],
  dims: { B: number; D: number; C: number },
  smoothing = 0,
) {
  const { B, D, C } = dims;
  const logits = new Float64Array(B * C), dz = new Float64Array(B * C);
  let loss = 0;
  for (let n = 0; n < B; n++) {
    for (let k = 0; k < C; k++) {
      let s = b[k];
      for (let d = 0; d < D; d++) s += x[n * D + d] * w[k * D + d];
      logits[n * C + k] = s;
    }
    const row = logits.subarray(n * C, n * C + C);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, z) => a + Math.exp(z - m), 0));
    for (let k = 0; k < C; k++) {
      // PyTorch label smoothing: target (1 - eps) one-hot + eps / C.
      const q = (k === y[n] ? 1 - smoothing : 0) + smoothing / C;
      loss += -q * (row[k] - lse) / B;
      dz[n * C + k] = (Math.exp(row[k] - lse) - q) / B;
    }
  }
  const dw = new Float64Array(C * D), db = new Float64Array(C), dx = new Float64Array(B * D);
  for (let n = 0; n < B; n++) {
    for (let k = 0; k < C; k++) {
      const g = dz[n * C + k];
      db[k] += g;
      for (let d = 0; d < D; d++) {
        dw[k * D + d] += g * x[n * D + d];
        dx[n * D + d] += g * w[k * D + d];
      }
    }
  }
  return { logits, loss, dw, db, dx };
}

const LINEAR = { layers: [{ type: "linear", name: "fc", in: 4, out: 3 }] };

Deno.test("torch_bridge.py identity round trips TS-encoded bytes exactly", async () => {
  const inputs: Record<string, SafetensorsTensor> = {
    "conv1.weight": { dtype: "F32", shape: [2, 1, 2, 2], data: randomArray(8, 1) },
    "x": f64([2, 3], [0.5, -1, 2, 3, 1e-300, -0]),
    "y": i32([2], [3, -7]),
    "seed": { dtype: "U32", shape: [], data: new Uint32Array([4000000000]) },
    "bn.num_batches_tracked": { dtype: "I64", shape: [], data: new BigInt64Array([12n]) },
    "img": { dtype: "U8", shape: [3], data: new Uint8Array([0, 7, 255]) },
    "none": { dtype: "F32", shape: [0], data: new Float32Array(0) },
  };
  const [out, bare] = await bridge(
    { inputs, spec: { op: "identity" }, inMetadata: true, metadata: { note: "héllo" } },
    { inputs: { x: inputs.x }, spec: { op: "identity" } },
  );
  assert.deepEqual(out.bytesOut, out.bytesIn, "Python re-encodes the file byte for byte");
  assert.deepEqual(bare.bytesOut, bare.bytesIn, "a file without __metadata__ stays without");
  assert.equal(out.metadata.note, "héllo");
  for (const [name, t] of Object.entries(inputs)) {
    assert.equal(out.tensors[name].dtype, t.dtype);
    assert.deepEqual(out.tensors[name].shape, t.shape);
    assert.deepEqual([...out.tensors[name].data], [...t.data], name);
  }
});

Deno.test("torch_bridge.py forward of a linear model matches a hand computation", async () => {
  const dims = { B: 3, D: 4, C: 3 };
  const x = Float64Array.from(randomArray(12, 11)), w = Float64Array.from(randomArray(12, 12));
  const b = Float64Array.from(randomArray(3, 13)), y = [2, 0, 1];
  const inputs = {
    "x": f64([3, 4], x),
    "y": i32([3], y),
    "fc.weight": f64([3, 4], w),
    "fc.bias": f64([3], b),
  };
  const mask = [1, 0, 1, 0, 0, 1, 1, 1, 0];
  const dropModel = { layers: [...LINEAR.layers, { type: "dropout", p: 0.25, name: "d1" }] };
  const noY = { x: inputs.x, "fc.weight": inputs["fc.weight"], "fc.bias": inputs["fc.bias"] };
  const [plain, smooth, f32, dropTrain, dropEval] = await bridge(
    { inputs, spec: { op: "forward", model: LINEAR } },
    { inputs, spec: { op: "forward", model: LINEAR, label_smoothing: 0.1 } },
    { inputs, spec: { op: "forward", model: LINEAR, dtype: "float32" } },
    {
      inputs: { ...noY, "mask.d1": f64([3, 3], mask) },
      spec: { op: "forward", model: dropModel, mode: "train" },
    },
    { inputs: { ...noY, "mask.d1": f64([3, 3], mask) }, spec: { op: "forward", model: dropModel } },
  );
  const tol = { atol: 1e-14, rtol: 1e-12 };
  for (const [out, smoothing] of [[plain, 0], [smooth, 0.1]] as const) {
    const want = linearCE(x, w, b, y, dims, smoothing);
    assertClose(values(out, "logits", [3, 3]), want.logits, { ...tol, what: "logits" });
    assertClose(values(out, "loss", []), [want.loss], { ...tol, what: `loss (eps ${smoothing})` });
    assertClose(values(out, "grad.fc.weight", [3, 4]), want.dw, { ...tol, what: "dW" });
    assertClose(values(out, "grad.fc.bias", [3]), want.db, { ...tol, what: "db" });
    assertClose(values(out, "grad.x", [3, 4]), want.dx, { ...tol, what: "dx" });
    assert.equal(out.metadata.op, "forward");
  }
  const z = linearCE(x, w, b, y, dims).logits;
  assert.equal(f32.tensors.logits.dtype, "F32");
  assertClose(values(f32, "logits"), z, { atol: 1e-6, what: "float32 logits" });
  // Dropout: x * mask / (1 - p) with the given mask in train mode, identity in eval mode.
  assertClose(values(dropTrain, "logits"), z.map((v, i) => v * mask[i] / 0.75), { atol: 1e-14 });
  assertClose(values(dropEval, "logits"), z, { atol: 1e-14 });
});

Deno.test("torch_bridge.py jacobian_penalty of a linear model matches 2 v v^T W", async () => {
  const B = 2, D = 4, C = 3, P = 2;
  const x = Float64Array.from(randomArray(B * D, 31)),
    w = Float64Array.from(randomArray(C * D, 32));
  const b = Float64Array.from(randomArray(C, 33)), y = [1, 2];
  const v = Float64Array.from(randomArray(P * B * C, 34));
  for (let r = 0; r < P * B; r++) {
    const row = v.subarray(r * C, r * C + C);
    const norm = Math.hypot(...row);
    row.forEach((e, k) => row[k] = e / norm);
  }
  // J = W for every sample: R_b = (C/P) sum_mu ||W^T v||^2, d/dW = (C/P) sum_mu 2 v v^T W.
  const perSample = new Float64Array(B), djr = new Float64Array(C * D);
  for (let mu = 0; mu < P; mu++) {
    for (let n = 0; n < B; n++) {
      const vv = v.subarray((mu * B + n) * C, (mu * B + n + 1) * C);
      const u = new Float64Array(D);
      for (let k = 0; k < C; k++) for (let d = 0; d < D; d++) u[d] += vv[k] * w[k * D + d];
      perSample[n] += (C / P) * dot(u, u);
      for (let k = 0; k < C; k++) {
        for (let d = 0; d < D; d++) djr[k * D + d] += (C / P) * 2 * vv[k] * u[d] / B;
      }
    }
  }
  const jr = (perSample[0] + perSample[1]) / B;
  const params = { "fc.weight": f64([C, D], w), "fc.bias": f64([C], b) };
  const lambda = 0.7;
  const [out, exact] = await bridge(
    {
      inputs: { x: f64([B, D], x), y: i32([B], y), v: f64([P, B, C], v), ...params },
      spec: { op: "jacobian_penalty", model: LINEAR, lambda },
    },
    // Exact mode (one-hot v, nproj = C): R = ||W||_F^2 for every sample.
    {
      inputs: { x: f64([B, D], x), ...params },
      spec: { op: "jacobian_penalty", model: LINEAR, nproj: -1 },
    },
  );
  const tol = { atol: 1e-14, rtol: 1e-12 };
  assertClose(values(out, "jr_per_sample", [B]), perSample, { ...tol, what: "R per sample" });
  assertClose(values(out, "jr", []), [jr], { ...tol, what: "jr" });
  assertClose(values(out, "jr_grad.fc.weight", [C, D]), djr, { ...tol, what: "d jr / dW" });
  assertClose(values(out, "jr_grad.fc.bias"), [0, 0, 0], { ...tol, what: "d jr / db" });
  assertClose(values(out, "jr_grad.x"), new Float64Array(B * D), { ...tol, what: "d jr / dx" });
  const ce = linearCE(x, w, b, y, { B, D, C });
  assertClose(values(out, "ce", []), [ce.loss], { ...tol, what: "ce" });
  assertClose(values(out, "loss", []), [ce.loss + lambda / 2 * jr], { ...tol, what: "loss" });
  assertClose(values(out, "grad.fc.weight"), ce.dw.map((g, i) => g + lambda / 2 * djr[i]), {
    ...tol,
    what: "d loss / dW",
  });
  assertClose(values(exact, "jr_per_sample"), [dot(w, w), dot(w, w)], { ...tol, what: "exact R" });
  assertClose(values(exact, "jr_grad.fc.weight"), w.map((e) => 2 * e), {
    ...tol,
    what: "exact dW",
  });
});

Deno.test("torch_bridge.py jacobian_penalty gradients match finite differences", async () => {
  const model = {
    layers: [
      { type: "conv2d", name: "conv1", in: 1, out: 2, kernel: 3, padding: 1 },
      { type: "tanh" },
      { type: "maxpool2d", kernel: 2, stride: 2 },
      { type: "flatten" },
      { type: "linear", name: "fc1", in: 18, out: 5 },
      { type: "softplus" },
      { type: "linear", name: "fc2", in: 5, out: 3 },
    ],
  };
  const B = 2, C = 3, P = 2;
  const shapes: Record<string, number[]> = {
    "x": [B, 1, 6, 6],
    "conv1.weight": [2, 1, 3, 3],
    "conv1.bias": [2],
    "fc1.weight": [5, 18],
    "fc1.bias": [5],
    "fc2.weight": [3, 5],
    "fc2.bias": [3],
  };
  // One random direction over the input and all parameters: the central
  // difference of jr along it must equal <gradient, direction>.
  const h = 1e-5;
  const point = (sign: number) => {
    const inputs: Record<string, SafetensorsTensor> = {
      v: f64([P, B, C], randomArray(P * B * C, 40)),
    };
    Object.entries(shapes).forEach(([name, shape], i) => {
      const n = shape.reduce((a, d) => a * d, 1);
      // Float64Array: a Float32Array would round the perturbation away.
      const p = Float64Array.from(randomArray(n, 41 + i)), d = randomArray(n, 141 + i);
      inputs[name] = f64(shape, p.map((e, j) => e + sign * h * d[j]));
    });
    return { inputs, spec: { op: "jacobian_penalty", model } };
  };
  const [base, plus, minus] = await bridge(point(0), point(1), point(-1));
  let predicted = 0;
  Object.entries(shapes).forEach(([name, shape], i) => {
    const n = shape.reduce((a, d) => a * d, 1);
    predicted += dot(values(base, `jr_grad.${name}`, shape), randomArray(n, 141 + i));
  });
  const fd = (values(plus, "jr")[0] - values(minus, "jr")[0]) / (2 * h);
  assert.ok(Math.abs(predicted) > 1e-3, `directional derivative ${predicted} too small to test`);
  assertClose([fd], [predicted], { atol: 1e-9, rtol: 1e-6, what: "directional derivative of jr" });
});

Deno.test("torch_bridge.py forward builds every layer type; vjp and jvp agree", async () => {
  const model = {
    layers: [
      { type: "normalize", mean: [0.5, 0.25], std: [0.2, 0.3] },
      { type: "conv2d", name: "conv1", in: 2, out: 3, kernel: 3, stride: 1, padding: 1 },
      { type: "batchnorm2d", name: "bn1", channels: 3 },
      { type: "tanh" },
      { type: "maxpool2d", kernel: 2, stride: 2 },
      { type: "conv2d", name: "block.conv2", in: 3, out: 4, kernel: 3, padding: 1, bias: false },
      { type: "leaky_relu", slope: 0.1 },
      { type: "avgpool2d", kernel: 2 },
      { type: "flatten" },
      { type: "linear", name: "fc1", in: 16, out: 8 },
      { type: "relu" },
      { type: "dropout", p: 0.5 },
      { type: "sigmoid" },
      { type: "softplus" },
      { type: "linear", name: "fc2", in: 8, out: 5 },
    ],
  };
  const B = 2, shape = [B, 2, 8, 8], n = B * 128;
  const x = Float64Array.from(randomArray(n, 51, 0, 1));
  const tx = Float64Array.from(randomArray(n, 52)), dy = Float64Array.from(randomArray(B * 5, 53));
  const bn = {
    "bn1.running_mean": f64([3], [0.1, -0.2, 0.3]),
    "bn1.running_var": f64([3], [0.5, 2, 1.5]),
  };
  // init_seed: PyTorch initializes what the inputs lack, identically in every job.
  const spec = { op: "forward", model, init_seed: 7 };
  const h = 1e-6;
  const [base, plus, minus] = await bridge(
    { inputs: { x: f64(shape, x), dy: f64([B, 5], dy), tx: f64(shape, tx), ...bn }, spec },
    { inputs: { x: f64(shape, x.map((e, i) => e + h * tx[i])), ...bn }, spec },
    { inputs: { x: f64(shape, x.map((e, i) => e - h * tx[i])), ...bn }, spec },
  );
  assert.deepEqual(
    Object.keys(base.tensors).filter((k) => k.startsWith("grad.")).sort(),
    [
      "grad.block.conv2.weight",
      "grad.bn1.bias",
      "grad.bn1.weight",
      "grad.conv1.bias",
      "grad.conv1.weight",
      "grad.fc1.bias",
      "grad.fc1.weight",
      "grad.fc2.bias",
      "grad.fc2.weight",
      "grad.x",
    ],
  );
  assert.equal(base.tensors["init.bn1.num_batches_tracked"].dtype, "I64");
  assert.deepEqual([...base.tensors["init.bn1.running_var"].data], [0.5, 2, 1.5]);
  assert.deepEqual(base.tensors["init.fc1.weight"], plus.tensors["init.fc1.weight"]);
  const jvp = values(base, "jvp", [B, 5]);
  // Dot-product test: <dy, J tx> = <J^T dy, tx>.
  assertClose([dot(dy, jvp)], [dot(values(base, "grad.x", shape), tx)], {
    atol: 1e-12,
    rtol: 1e-10,
    what: "<dy, J tx> vs <J^T dy, tx>",
  });
  const lp = values(plus, "logits"), lm = values(minus, "logits");
  assertClose(jvp, lp.map((e, i) => (e - lm[i]) / (2 * h)), {
    atol: 1e-8,
    rtol: 1e-6,
    what: "jvp",
  });
});

Deno.test("torch_bridge.py batchnorm2d in train mode updates running statistics", async () => {
  const B = 3, C = 2, HW = 4;
  const x = Float64Array.from(randomArray(B * C * HW, 61, -2, 3));
  const [out] = await bridge({
    inputs: { x: f64([B, C, 2, 2], x) },
    spec: {
      op: "forward",
      model: { layers: [{ type: "batchnorm2d", name: "bn", channels: C }] },
      mode: "train",
      init_seed: 0,
      return_state: true,
    },
  });
  const y = values(out, "logits", [B, C, 2, 2]);
  const mean = [0, 0], varB = [0, 0];
  const idx = (n: number, c: number, s: number) => (n * C + c) * HW + s;
  for (let c = 0; c < C; c++) {
    for (let n = 0; n < B; n++) for (let s = 0; s < HW; s++) mean[c] += x[idx(n, c, s)] / (B * HW);
    for (let n = 0; n < B; n++) {
      for (let s = 0; s < HW; s++) varB[c] += (x[idx(n, c, s)] - mean[c]) ** 2 / (B * HW);
    }
  }
  const want = [...x].map((e, i) => {
    const c = Math.floor(i / HW) % C;
    return (e - mean[c]) / Math.sqrt(varB[c] + 1e-5);
  });
  assertClose(y, want, { atol: 1e-12, what: "normalized" });
  const m = B * HW;
  assertClose(values(out, "state.bn.running_mean"), mean.map((e) => 0.1 * e), { atol: 1e-14 });
  assertClose(values(out, "state.bn.running_var"), varB.map((e) => 0.9 + 0.1 * e * m / (m - 1)), {
    atol: 1e-14,
  });
  assert.deepEqual([...out.tensors["state.bn.num_batches_tracked"].data], [1n]);
});

Deno.test("torch_bridge.py train_sgd matches hand-written SGD with momentum and penalties", async () => {
  const dims = { B: 3, D: 4, C: 3 }, S = 2, steps = 3;
  const xs = Float64Array.from(randomArray(S * 12, 71)), ys = [0, 2, 1, 1, 1, 0];
  const w = Float64Array.from(randomArray(12, 72)), b = Float64Array.from(randomArray(3, 73));
  const lr = 0.1, momentum = 0.9, wd = 0.01, jrLambda = 0.3;
  const inputs = {
    "x": f64([S, 3, 4], xs),
    "y": i32([S, 3], ys),
    "fc.weight": f64([3, 4], w),
    "fc.bias": f64([3], b),
  };
  const sgd = { op: "train_sgd", model: LINEAR, steps, lr, momentum };
  const masks = Float64Array.from(randomArray(S * 9, 74), (e) => e > 0 ? 1 : 0);
  const dropModel = { layers: [...LINEAR.layers, { type: "dropout", p: 0.5, name: "d1" }] };
  const [out, jr, drop, dropForward] = await bridge(
    { inputs, spec: { ...sgd, weight_decay: wd, no_decay: ["bias"] } },
    // Exact Jacobian penalty of a linear model: R = ||W||_F^2, so it adds jrLambda * W to dW.
    { inputs, spec: { ...sgd, jr_lambda: jrLambda, nproj: -1 } },
    // Per-step dropout masks: the first loss is the train-mode forward with the first mask.
    { inputs: { ...inputs, "mask.d1": f64([S, 3, 3], masks) }, spec: { ...sgd, model: dropModel } },
    {
      inputs: {
        "x": f64([3, 4], xs.subarray(0, 12)),
        "y": i32([3], ys.slice(0, 3)),
        "fc.weight": f64([3, 4], w),
        "fc.bias": f64([3], b),
        "mask.d1": f64([3, 3], masks.subarray(0, 9)),
      },
      spec: { op: "forward", model: dropModel, mode: "train" },
    },
  );
  // torch.optim.SGD: g += wd * p; buf = g (first step) or momentum * buf + g; p -= lr * buf.
  const run = (decay: number, lambda: number) => {
    let wt = w, bt = b;
    const losses: number[] = [], ces: number[] = [];
    let bufW: Float64Array | null = null, bufB: Float64Array | null = null;
    for (let t = 0; t < steps; t++) {
      const i = t % S;
      const r = linearCE(
        xs.subarray(i * 12, i * 12 + 12),
        wt,
        bt,
        ys.slice(i * 3, i * 3 + 3),
        dims,
      );
      ces.push(r.loss);
      losses.push(r.loss + lambda / 2 * dot(wt, wt));
      const gW = r.dw.map((g, j) => g + (decay + lambda) * wt[j]), gB = r.db;
      bufW = bufW ? bufW.map((e, j) => momentum * e + gW[j]) : gW;
      bufB = bufB ? bufB.map((e, j) => momentum * e + gB[j]) : gB;
      wt = wt.map((e, j) => e - lr * bufW![j]);
      bt = bt.map((e, j) => e - lr * bufB![j]);
    }
    return { losses, ces, w: wt, b: bt };
  };
  const tol = { atol: 1e-14, rtol: 1e-12 };
  for (const [res, decay, lambda] of [[out, wd, 0], [jr, 0, jrLambda]] as const) {
    const want = run(decay, lambda);
    const what = `(weight decay ${decay}, jr_lambda ${lambda})`;
    assertClose(values(res, "losses", [steps]), want.losses, { ...tol, what: `losses ${what}` });
    assertClose(values(res, "ce_losses", [steps]), want.ces, { ...tol, what: `ce ${what}` });
    assertClose(values(res, "state.fc.weight", [3, 4]), want.w, { ...tol, what: `W ${what}` });
    assertClose(values(res, "state.fc.bias", [3]), want.b, { ...tol, what: `b ${what}` });
  }
  assertClose(values(drop, "losses", [steps]).slice(0, 1), values(dropForward, "loss"), {
    ...tol,
    what: "first loss with dropout mask",
  });
});

Deno.test("torch_bridge.py reports bad specs and inputs in one clear line", async () => {
  const inputs = {
    "x": f64([1, 4], [1, 2, 3, 4]),
    "fc.weight": f64([3, 4], new Float64Array(12)),
    "fc.bias": f64([3], [0, 0, 0]),
  };
  const bad = (layer: Record<string, unknown>) => ({ op: "forward", model: { layers: [layer] } });
  const cases: [Job, RegExp][] = [
    [{ inputs, spec: { op: "forwards" } }, /unknown op 'forwards'/],
    [{ inputs, spec: bad({ type: "conv3d", name: "c" }) }, /layer 0: unknown type 'conv3d'/],
    [
      { inputs, spec: bad({ type: "linear", name: "fc", in: 4, out: 3, kernal: 2 }) },
      /layer 0 \(linear\): unknown keys \['kernal'\]/,
    ],
    [
      {
        inputs: { ...inputs, "fc.weight": f64([3, 5], new Float64Array(15)) },
        spec: { op: "forward", model: LINEAR },
      },
      /fc.weight has shape \[3, 5\] in the inputs, the model expects \[3, 4\]/,
    ],
    [
      {
        inputs: { x: inputs.x, "fc.weight": inputs["fc.weight"] },
        spec: { op: "forward", model: LINEAR },
      },
      /inputs lack state_dict entries \['fc.bias'\]/,
    ],
    [
      {
        inputs: { ...inputs, "fc.wieght": inputs["fc.bias"] },
        spec: { op: "forward", model: LINEAR },
      },
      /unused input tensors \['fc.wieght'\]/,
    ],
    [
      {
        inputs: { x: inputs.x },
        spec: { ...bad({ type: "linear", name: "fc", in: 5, out: 3 }), init_seed: 0 },
      },
      /layer 0 \(linear fc\) on input \[1, 4\]: mat1 and mat2 shapes cannot be multiplied/,
    ],
    [{ inputs, spec: { op: "forward", model: LINEAR }, inMetadata: false }, /^$/],
  ];
  const results = await bridgeAll(cases.map(([job]) => job));
  results.forEach((r, i) => {
    const pattern = cases[i][1];
    if (pattern.source === "^$") {
      assert.ok(!(r instanceof Error), `job ${i} should succeed beside failing ones: ${r}`);
      return;
    }
    assert.ok(r instanceof Error, `job ${i} should fail with ${pattern}`);
    assert.match(r.message, /torch_bridge.py exited 2: /);
    assert.match(r.message, pattern);
  });
  // Without --jobs, the message is the one line on stderr.
  await requireTorch();
  const dir = await Deno.makeTempDir({ prefix: "regula_bridge_" });
  try {
    await Deno.writeFile(`${dir}/in.safetensors`, encodeSafetensors(inputs));
    const out = await new Deno.Command(PYTHON, {
      args: [BRIDGE, `${dir}/in.safetensors`, `${dir}/out.safetensors`],
    }).output();
    assert.equal(out.code, 2);
    assert.equal(
      new TextDecoder().decode(out.stderr),
      'torch_bridge: no spec: pass --spec/--spec-json or put it in __metadata__["spec"]\n',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
