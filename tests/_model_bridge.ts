/**
 * Shared by the model tests (residual, models, golden_train): runs tools/torch_bridge.py jobs
 * (PyTorch 1.13 through /usr/bin/python3, or REGULA_TORCH_PYTHON) in one process and returns
 * their outputs as float64 arrays; and puts a model's parameters into bridge inputs.
 */
import { decodeSafetensors, encodeSafetensors } from "../src/io/safetensors.ts";
import type { SafetensorsTensor } from "../src/io/safetensors.ts";
import type { Param } from "../src/layers/layer.ts";
import type { Backend } from "../src/backend.ts";
import type { Tensor } from "../src/backend.ts";
import { assert } from "./_util.ts";

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";

/** One tools/torch_bridge.py job. */
export interface BridgeJob {
  spec: Record<string, unknown>;
  inputs: Record<string, SafetensorsTensor>;
}

/** A bridge output. */
export type BridgeOutput = Record<string, { shape: number[]; data: Float64Array }>;

/** Runs the jobs in one process; throws with the bridge's stderr if any job failed. */
export async function torchBridge(jobs: BridgeJob[]): Promise<BridgeOutput[]> {
  const dir = await Deno.makeTempDir({ prefix: "regula_models_" });
  try {
    const list = await Promise.all(jobs.map(async (job, i) => {
      await Deno.writeFile(`${dir}/in${i}.safetensors`, encodeSafetensors(job.inputs));
      return {
        inputs: `${dir}/in${i}.safetensors`,
        outputs: `${dir}/out${i}.safetensors`,
        spec: job.spec,
      };
    }));
    await Deno.writeTextFile(`${dir}/jobs.json`, JSON.stringify(list));
    const script = new URL("../tools/torch_bridge.py", import.meta.url).pathname;
    const out = await new Deno.Command(PYTHON, { args: [script, "--jobs", `${dir}/jobs.json`] })
      .output();
    if (!out.success) {
      throw new Error(
        `torch_bridge.py exited ${out.code} (needs PyTorch for ${PYTHON}: ` +
          `apt-get install python3-torch):\n${new TextDecoder().decode(out.stderr)}`,
      );
    }
    return await Promise.all(jobs.map(async (_, i) => {
      const f = decodeSafetensors(await Deno.readFile(`${dir}/out${i}.safetensors`));
      const r: BridgeOutput = {};
      for (const [k, t] of Object.entries(f.tensors)) {
        const data = t.dtype === "I64"
          ? Float64Array.from(t.data, Number)
          : Float64Array.from(t.data as ArrayLike<number>);
        r[k] = { shape: [...t.shape], data };
      }
      return r;
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An F64 safetensors entry. */
export function f64(shape: readonly number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "F64", shape: [...shape], data: Float64Array.from(data) };
}

/** An I32 safetensors entry (labels). */
export function i32(shape: readonly number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "I32", shape: [...shape], data: Int32Array.from(data) };
}

/**
 * Parameters and buffers as bridge inputs (F64; `num_batches_tracked` as a 0-d I64, as
 * PyTorch stores it).
 */
export async function paramInputs(
  params: readonly Param[],
): Promise<Record<string, SafetensorsTensor>> {
  const r: Record<string, SafetensorsTensor> = {};
  for (const p of params) {
    if (p.value.dtype === "f32") r[p.name] = f64(p.value.shape, await p.value.read());
    else {
      const [n] = await p.value.read();
      r[p.name] = { dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(n)) };
    }
  }
  return r;
}

/** `max|got - want| / max|want|`. */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let e = 0, m = 0;
  for (let i = 0; i < got.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return m === 0 ? e : e / m;
}

/** Uploads f32 data. */
export function upload(rt: Backend, data: ArrayLike<number>, shape: readonly number[]): Tensor {
  return rt.upload(Float32Array.from(data), shape);
}

/**
 * Writes seeded values into every f32 parameter: weights ±√(3/fan_in)·gain, others small.
 * @returns the values written, by name
 */
export function randomizeParams(
  rt: Backend,
  params: readonly Param[],
  seed: number,
  random: (n: number, seed: number, lo: number, hi: number) => Float32Array,
  gain = 1,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let s = seed;
  for (const p of params) {
    if (p.value.dtype !== "f32") continue;
    const n = p.value.size;
    let data: Float32Array;
    if (p.name.endsWith("running_var")) data = random(n, s++, 0.5, 2);
    else if (p.name.endsWith("running_mean")) data = random(n, s++, -0.3, 0.3);
    else if (p.kind === "weight" && p.value.shape.length >= 2) {
      const a = gain * Math.sqrt(3 / (n / p.value.shape[0]));
      data = random(n, s++, -a, a);
    } else if (p.kind === "weight") data = random(n, s++, 0.5, 1.5);
    else data = random(n, s++, -0.1, 0.1);
    rt.write(p.value, data);
    out.set(p.name, data);
  }
  return out;
}

/** What a layer test measured in regula for one case of a bridge "forward" job. */
export interface LayerPass {
  y: ArrayLike<number>;
  dx: ArrayLike<number>;
  jvp: ArrayLike<number>;
  /** Parameter gradients by parameter name. */
  grads: Map<string, ArrayLike<number>>;
}

/**
 * Asserts a layer's output, input gradient, jvp and parameter gradients against the bridge's
 * "forward" result for the same case, each within `tol` relative error ({@linkcode relErr}).
 */
export function assertLayerPass(what: string, o: LayerPass, w: BridgeOutput, tol: number): void {
  const checks: [string, ArrayLike<number>, ArrayLike<number>][] = [
    ["y", o.y, w.logits.data],
    ["dx", o.dx, w["grad.x"].data],
    ["jvp", o.jvp, w.jvp.data],
    ...[...o.grads].map(([k, g]): [string, ArrayLike<number>, ArrayLike<number>] => [
      k,
      g,
      w[`grad.${k}`].data,
    ]),
  ];
  for (const [name, got, ref] of checks) {
    const e = relErr(got, ref);
    assert.ok(e < tol, `${what}: ${name} relative error ${e.toExponential(2)}`);
  }
}
