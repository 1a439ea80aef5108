/**
 * Shared by the tests of the penalties on the function (jacobian, determinant, gradient_norm,
 * confidence): models built from tools/torch_bridge.py's layer descriptions (so the PyTorch twin
 * has the same state_dict names), seeded weights, and tools/torch_jacobian.py jobs.
 */
import type { Backend } from "../src/backend.ts";
import type { Tensor } from "../src/backend.ts";
import type { Layer } from "../src/layers/layer.ts";
import { Sequential } from "../src/layers/sequential.ts";
import { Linear } from "../src/layers/linear.ts";
import { Conv2d } from "../src/layers/conv2d.ts";
import { Activation, type ActivationKind } from "../src/layers/activation.ts";
import { AvgPool2d, MaxPool2d } from "../src/layers/pool.ts";
import { Dropout } from "../src/layers/dropout.ts";
import { Flatten } from "../src/layers/flatten.ts";
import { Normalize } from "../src/layers/normalize.ts";
import { BatchNorm } from "../src/layers/batchnorm.ts";
import { BasicBlock } from "../src/layers/residual.ts";
import { GroupNorm, LayerNorm } from "../src/layers/layernorm.ts";
import { WeightNorm } from "../src/layers/weight_norm.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  type SafetensorsTensor,
} from "../src/io/safetensors.ts";
import { randomArray } from "./_util.ts";
import type { RefLayer } from "../src/reference/jacobian.ts";

/** One layer in tools/torch_bridge.py's format. */
export type LayerDesc = Record<string, unknown> & { type: string; name?: string };

/** MLP 2 -> 8 -> 8 -> 4 with tanh (the toy problem's MLP). */
export const MLP_TANH: LayerDesc[] = [
  { type: "linear", name: "fc1", in: 2, out: 8 },
  { type: "tanh" },
  { type: "linear", name: "fc2", in: 8, out: 8 },
  { type: "tanh" },
  { type: "linear", name: "fc3", in: 8, out: 4 },
];

/**
 * A small ResNet: stem conv + BatchNorm, an identity-shortcut block, a projection-shortcut block (stride 2,
 * 4 -> 6 channels), then a softplus so that an injection (σ'' ≠ 0) travels back through both
 * branch points.
 */
export const TINY_RESNET: LayerDesc[] = [
  { type: "conv2d", name: "conv1", in: 2, out: 4, kernel: 3, padding: 1, bias: false },
  { type: "batchnorm2d", name: "bn1", channels: 4 },
  { type: "relu" },
  { type: "basic_block", name: "layer1.0", in: 4, out: 4 },
  { type: "basic_block", name: "layer2.0", in: 4, out: 6, stride: 2 },
  { type: "softplus" },
  { type: "avgpool2d", kernel: 3 },
  { type: "flatten" },
  { type: "linear", name: "fc", in: 6, out: 3 },
];

/** LeNet-5 as in SEED-NOTES (28x28x1, tanh or relu, dropout after fc1 and fc2). */
export function lenet(act: "tanh" | "relu", dropout: number | null): LayerDesc[] {
  const drop = (name: string): LayerDesc[] =>
    dropout === null ? [] : [{ type: "dropout", p: dropout, name }];
  return [
    { type: "normalize", mean: [0.1307], std: [0.3081] },
    { type: "conv2d", name: "conv1", in: 1, out: 6, kernel: 5, padding: 2 },
    { type: act },
    { type: "maxpool2d", kernel: 2 },
    { type: "conv2d", name: "conv2", in: 6, out: 16, kernel: 5 },
    { type: act },
    { type: "maxpool2d", kernel: 2 },
    { type: "flatten" },
    { type: "linear", name: "fc1", in: 400, out: 120 },
    { type: act },
    ...drop("drop1"),
    { type: "linear", name: "fc2", in: 120, out: 84 },
    { type: act },
    ...drop("drop2"),
    { type: "linear", name: "fc3", in: 84, out: 10 },
  ];
}

/** DDNet (CIFAR-10, SEED-NOTES): 4 ReLU convs, 2 pools, 3 fc with dropout. */
export function ddnet(dropout: number | null): LayerDesc[] {
  const drop = (name: string): LayerDesc[] =>
    dropout === null ? [] : [{ type: "dropout", p: dropout, name }];
  return [
    { type: "normalize", mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    { type: "conv2d", name: "conv1", in: 3, out: 64, kernel: 3 },
    { type: "relu" },
    { type: "conv2d", name: "conv2", in: 64, out: 64, kernel: 3 },
    { type: "relu" },
    { type: "maxpool2d", kernel: 2 },
    { type: "conv2d", name: "conv3", in: 64, out: 128, kernel: 3 },
    { type: "relu" },
    { type: "conv2d", name: "conv4", in: 128, out: 128, kernel: 3 },
    { type: "relu" },
    { type: "maxpool2d", kernel: 2 },
    { type: "flatten" },
    { type: "linear", name: "fc1", in: 3200, out: 256 },
    { type: "relu" },
    ...drop("drop1"),
    { type: "linear", name: "fc2", in: 256, out: 256 },
    { type: "relu" },
    ...drop("drop2"),
    { type: "linear", name: "fc3", in: 256, out: 10 },
  ];
}

/** The regula twin of a torch_bridge layer list, as one Sequential named "". */
export function buildModel(rt: Backend, descs: LayerDesc[]): Sequential {
  const layers: Layer[] = descs.map((d, i): Layer => {
    const name = d.name ?? String(i);
    const n = (k: string) => d[k] as number;
    switch (d.type) {
      case "linear":
      case "conv2d": {
        const l = d.type === "linear"
          ? new Linear(rt, name, n("in"), n("out"), { bias: (d.bias as boolean) ?? true })
          : new Conv2d(rt, name, n("in"), n("out"), n("kernel"), {
            stride: (d.stride as number) ?? 1,
            padding: (d.padding as number) ?? 0,
            bias: (d.bias as boolean) ?? true,
          });
        return d.weight_norm ? new WeightNorm(rt, l) : l;
      }
      case "maxpool2d":
        return new MaxPool2d(rt, name, n("kernel"), {
          stride: (d.stride as number) ?? n("kernel"),
          padding: (d.padding as number) ?? 0,
        });
      case "avgpool2d":
        return new AvgPool2d(rt, name, n("kernel"), {
          stride: (d.stride as number) ?? n("kernel"),
          padding: (d.padding as number) ?? 0,
        });
      case "dropout":
        return new Dropout(rt, name, (d.p as number) ?? 0.5, { seed: 7 });
      case "flatten":
        return new Flatten(name);
      case "normalize":
        return new Normalize(rt, name, d.mean as number[], d.std as number[]);
      case "batchnorm2d":
      case "batchnorm1d":
        return new BatchNorm(rt, name, n("channels"), { dims: d.type === "batchnorm2d" ? 2 : 1 });
      case "layernorm":
        return new LayerNorm(rt, name, d.shape as number[], {
          eps: (d.eps as number) ?? 1e-5,
          elementwiseAffine: (d.affine as boolean) ?? true,
        });
      case "groupnorm":
        return new GroupNorm(rt, name, n("groups"), n("channels"), {
          eps: (d.eps as number) ?? 1e-5,
          affine: (d.affine as boolean) ?? true,
        });
      case "basic_block":
        return new BasicBlock(rt, name, n("in"), n("out"), { stride: (d.stride as number) ?? 1 });
      case "tanh":
      case "relu":
      case "sigmoid":
      case "softplus":
      case "leaky_relu":
        return new Activation(rt, name, d.type as ActivationKind);
      default:
        throw new Error(`buildModel: unknown layer type ${d.type}`);
    }
  });
  return new Sequential(rt, "", layers);
}

/**
 * Fills every parameter with seeded uniform values in ±sqrt(3 / fan_in)·gain (weights; biases
 * ±0.1), BatchNorm running stats with something non-trivial. @returns the values written
 */
export function initParams(
  rt: Backend,
  model: Sequential,
  seed: number,
  gain = 1,
): Map<string, Float32Array> {
  const vals = new Map<string, Float32Array>();
  let s = seed;
  for (const p of model.params()) {
    const n = p.value.size;
    if (p.value.dtype !== "f32") continue;
    let data: Float32Array;
    if (p.name.endsWith("running_var")) data = randomArray(n, s++, 0.5, 2);
    else if (p.name.endsWith("running_mean")) data = randomArray(n, s++, -0.3, 0.3);
    else if (p.kind === "weight" && p.value.shape.length >= 2) {
      const fanIn = n / p.value.shape[0];
      const a = gain * Math.sqrt(3 / fanIn);
      data = randomArray(n, s++, -a, a);
    } else if (p.kind === "weight") data = randomArray(n, s++, 0.5, 1.5);
    else data = randomArray(n, s++, -0.1, 0.1);
    rt.write(p.value, data);
    vals.set(p.name, data);
  }
  return vals;
}

/** The parameter gradients read back, by name. */
export async function readGrads(model: Sequential): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const p of model.params()) {
    if (p.grad) out.set(p.name, (await p.grad.read()) as Float32Array);
  }
  return out;
}

/** `max|got - want| / max|want|` (the norm-wise relative error the goldens report). */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} vs ${want.length}`);
  let e = 0, m = 0;
  for (let i = 0; i < got.length; i++) {
    e = Math.max(e, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return m === 0 ? e : e / m;
}

/** One tools/torch_jacobian.py job. */
export interface TorchJob {
  spec: Record<string, unknown>;
  inputs: Record<string, SafetensorsTensor>;
}

const PYTHON = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";

/** Runs jobs through tools/torch_jacobian.py; @returns each job's outputs as float64 arrays */
export async function torchJacobian(
  jobs: TorchJob[],
): Promise<Record<string, { shape: number[]; data: Float64Array }>[]> {
  const dir = await Deno.makeTempDir({ prefix: "regula_jr_" });
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
    const script = new URL("../tools/torch_jacobian.py", import.meta.url).pathname;
    const out = await new Deno.Command(PYTHON, { args: [script, "--jobs", `${dir}/jobs.json`] })
      .output();
    if (!out.success) {
      throw new Error(
        `torch_jacobian.py exited ${out.code} (needs PyTorch for ${PYTHON}: ` +
          `apt-get install python3-torch):\n${new TextDecoder().decode(out.stderr)}`,
      );
    }
    return await Promise.all(jobs.map(async (_, i) => {
      const f = decodeSafetensors(await Deno.readFile(`${dir}/out${i}.safetensors`));
      const r: Record<string, { shape: number[]; data: Float64Array }> = {};
      for (const [k, t] of Object.entries(f.tensors)) {
        r[k] = { shape: [...t.shape], data: Float64Array.from(t.data as ArrayLike<number>) };
      }
      return r;
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** An f64 safetensors entry. */
export function f64(shape: readonly number[], data: ArrayLike<number>): SafetensorsTensor {
  return { dtype: "F64", shape: [...shape], data: Float64Array.from(data) };
}

/** The model's parameters (and BatchNorm buffers) as torch inputs. */
export async function stateInputs(model: Sequential): Promise<Record<string, SafetensorsTensor>> {
  const r: Record<string, SafetensorsTensor> = {};
  for (const p of model.params()) {
    if (p.value.dtype === "f32") r[p.name] = f64(p.value.shape, await p.value.read());
    else r[p.name] = { dtype: "I64", shape: [], data: new BigInt64Array(1) };
  }
  return r;
}

/** Dropout keep masks (0/1) of the model's last training forward, as torch inputs. */
export async function maskInputs(model: Sequential): Promise<Record<string, SafetensorsTensor>> {
  const r: Record<string, SafetensorsTensor> = {};
  const leaves = (m: Layer): Layer[] => m instanceof Sequential ? m.layers.flatMap(leaves) : [m];
  for (const l of leaves(model)) {
    if (l instanceof Dropout && l.mask) {
      const m = await l.mask.read();
      r[`mask.${l.name}`] = f64(l.mask.shape, Array.from(m, (v) => (v > 0 ? 1 : 0)));
    }
  }
  return r;
}

/** Uploads f32 data as a tensor. */
export function upload(rt: Backend, data: ArrayLike<number>, shape: number[]): Tensor {
  return rt.upload(Float32Array.from(data), shape);
}

/**
 * The smallest relative gap `(max - second) / |max|` between the two largest values of any
 * window of the model's non-overlapping max-pools on `x`. Float32 and float64 may pick different
 * argmaxes where it is below ~1e-6 (a real discontinuity of the gradient, not an error), so the
 * golden tests pick inputs where it is not.
 */
export async function minPoolGap(model: Sequential, x: Tensor): Promise<number> {
  let h = x, gap = Infinity;
  const leaves = (m: Layer): Layer[] => m instanceof Sequential ? m.layers.flatMap(leaves) : [m];
  for (const l of leaves(model)) {
    if (l instanceof MaxPool2d && l.kernelSize.join() === l.stride.join()) {
      const [b, c, hh, ww] = h.shape;
      const [kh, kw] = l.kernelSize;
      const v = await h.read();
      for (let p = 0; p < b * c; p++) {
        for (let oy = 0; oy + kh <= hh; oy += kh) {
          for (let ox = 0; ox + kw <= ww; ox += kw) {
            let m1 = -Infinity, m2 = -Infinity;
            for (let dy = 0; dy < kh; dy++) {
              for (let dx = 0; dx < kw; dx++) {
                const q = v[(p * hh + oy + dy) * ww + ox + dx];
                if (q > m1) [m1, m2] = [q, m1];
                else if (q > m2) m2 = q;
              }
            }
            if (m1 !== 0) gap = Math.min(gap, (m1 - m2) / Math.abs(m1));
          }
        }
      }
    }
    h = l.forward(h);
  }
  return gap;
}

/**
 * The float64 reference chain of a model of Linear layers and activations, with the model's
 * current weights (for finite differences).
 */
export async function refLayers(model: Sequential, descs: LayerDesc[]): Promise<RefLayer[]> {
  const out: RefLayer[] = [];
  for (const [i, d] of descs.entries()) {
    if (d.type === "linear") {
      const ps = model.layers[i].params();
      out.push({
        kind: "linear",
        in: d.in as number,
        out: d.out as number,
        w: Float64Array.from(await ps[0].value.read()),
        b: Float64Array.from(await ps[1].value.read()),
      });
    } else out.push({ kind: d.type as "tanh" });
  }
  return out;
}

/**
 * Asserts that the GPU gradient of every Linear weight and bias matches central differences
 * (h = 1e-6) of the float64 penalty `f` over the reference chain `ref` (perturbed in place).
 */
export function assertFiniteDifferenceGrads(
  ref: RefLayer[],
  descs: LayerDesc[],
  grads: Map<string, Float32Array>,
  f: () => number,
): void {
  const h = 1e-6;
  for (const [li, l] of ref.entries()) {
    if (l.kind !== "linear") continue;
    for (const [what, arr] of [["weight", l.w], ["bias", l.b!]] as const) {
      const fd = new Float64Array(arr.length);
      for (let i = 0; i < arr.length; i++) {
        const a = arr[i];
        arr[i] = a + h;
        const up = f();
        arr[i] = a - h;
        const dn = f();
        arr[i] = a;
        fd[i] = (up - dn) / (2 * h);
      }
      const name = `${descs[li].name}.${what}`;
      const e = relErr(grads.get(name)!, fd);
      if (!(e < 1e-4)) {
        throw new Error(`${name}: relative error ${e.toExponential(2)} vs finite differences`);
      }
    }
  }
}
