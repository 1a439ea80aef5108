/**
 * jax-js peer of bench/train.ts (its `webgpu` device) and bench/wasm_train.ts (its `wasm`
 * device: WebAssembly, one worker per thread, see bench/_peers/jax_workers.ts): the same
 * LeNet-5 / DDNet in NCHW as a pure
 * function of a parameter tree, and one `jit`-compiled step = `valueAndGrad` of the mean
 * softmax cross-entropy plus the SGD-with-momentum update (torch's form, `buf = m·buf + g`,
 * `p -= lr·buf`), so each step is one compiled program. Max pooling 2×2 / 2 is a reshape and a
 * max over the window axes. DDNet's dropout (0.5, after the ReLUs of fc1 and fc2) draws
 * its masks with `random.bernoulli` from two keys passed in per step.
 *
 * With `jacobian`, the loss adds the Jacobian regularizer as regula's `jacobian` (Hoffman et al.
 * 2019, one projection): `λ/2 · mean_b C ‖v_bᵀ J_b‖²`, v_b a fresh unit vector per sample and
 * step (`random.normal`, normalized), `v_bᵀ J_b` by `vjp` of the forward at the batch; its
 * gradient is jax-js's own double backprop, in the same compiled step.
 *
 * jax-js arrays are reference counted: every call consumes its arguments (`.ref` keeps one).
 *
 * @module
 */

import { jaxWasmWorkers, restoreHardwareConcurrency } from "./jax_workers.ts";
import {
  blockUntilReady,
  defaultDevice,
  init,
  jit,
  lax,
  nn,
  numpy as np,
  random,
  tree,
  valueAndGrad,
  vjp,
} from "@jax-js/jax";
import { type TrainConfig, type Trainer, uniformInit } from "./common.ts";

restoreHardwareConcurrency();

export { jaxWasmWorkers };

/** The jax-js devices the benchmarks run on. */
export type JaxDevice = "webgpu" | "wasm";

type Params = Record<string, np.Array>;

/** Starts jax-js's WebGPU device and makes it the default; returns an error message or null. */
export async function initJax(): Promise<string | null> {
  try {
    const devices = await init("webgpu");
    if (!devices.includes("webgpu")) return "jax-js: no webgpu device";
    defaultDevice("webgpu");
    return null;
  } catch (e) {
    return `jax-js WebGPU failed: ${(e as Error).message}`;
  }
}

/**
 * Starts jax-js's Wasm device (always there where WebAssembly is; its worker pool was sized when
 * the module loaded: {@linkcode jaxWasmWorkers}); returns an error message or null.
 */
export async function initJaxWasm(): Promise<string | null> {
  try {
    const devices = await init("wasm");
    return devices.includes("wasm") ? null : "jax-js: no wasm device";
  } catch (e) {
    return `jax-js Wasm failed: ${(e as Error).message}`;
  }
}

function pool2(x: np.Array): np.Array {
  const [n, c, h, w] = x.shape;
  return x.reshape([n, c, h / 2, 2, w / 2, 2]).max([3, 5]);
}

/**
 * @param cfg configuration
 * @param x (B, C, H, W) data
 * @param y (B,) labels
 * @param device where the arrays live and the compiled step runs (default "webgpu"); every
 *   array the trainer makes is made with this device as jax-js's default, which is restored after
 * @param opts `jacobian`: a Jacobian-regularized step (λ; one projection)
 */
export function jaxTrainer(
  cfg: TrainConfig,
  x: Float32Array<ArrayBuffer>,
  y: Int32Array,
  device: JaxDevice = "webgpu",
  opts: { jacobian?: { lambda: number } } = {},
): Trainer {
  const on = <T>(f: () => T): T => {
    const previous = defaultDevice();
    defaultDevice(device);
    try {
      return f();
    } finally {
      defaultDevice(previous);
    }
  };
  return on(() => jaxTrainerOn(cfg, x, y, device, on, opts.jacobian?.lambda ?? null));
}

function jaxTrainerOn(
  cfg: TrainConfig,
  x: Float32Array<ArrayBuffer>,
  y: Int32Array,
  device: JaxDevice,
  on: <T>(f: () => T) => T,
  lambda: number | null,
): Trainer {
  const B = cfg.batch;
  const [c, h, w] = cfg.inputShape;
  const params: Params = {};
  let seed = 200;
  const conv = (name: string, cin: number, cout: number, k: number) => {
    const fan = cin * k * k;
    params[`${name}w`] = np.array(uniformInit(cout * fan, fan, seed++)).reshape([cout, cin, k, k]);
    params[`${name}b`] = np.array(uniformInit(cout, fan, seed++)).reshape([1, cout, 1, 1]);
  };
  const fc = (name: string, i: number, o: number) => {
    params[`${name}w`] = np.array(uniformInit(i * o, i, seed++)).reshape([i, o]);
    params[`${name}b`] = np.array(uniformInit(o, i, seed++));
  };
  const lenet = cfg.model === "lenet";
  if (lenet) {
    conv("c1", c, 6, 5);
    conv("c2", 6, 16, 5);
    fc("f1", 400, 120);
    fc("f2", 120, 84);
    fc("f3", 84, cfg.classes);
  } else {
    conv("c1", c, 64, 3);
    conv("c2", 64, 64, 3);
    conv("c3", 64, 128, 3);
    conv("c4", 128, 128, 3);
    fc("f1", 3200, 256);
    fc("f2", 256, 256);
    fc("f3", 256, cfg.classes);
  }
  const dense = (p: Params, n: string, a: np.Array) => np.matmul(a, p[`${n}w`]).add(p[`${n}b`]);
  const cv = (p: Params, n: string, a: np.Array, pad: number) =>
    lax.conv(a, p[`${n}w`], [1, 1], [[pad, pad], [pad, pad]]).add(p[`${n}b`]);
  const forward = (p: Params, a: np.Array, keys: np.Array[]): np.Array => {
    if (lenet) {
      a = pool2(np.tanh(cv(p, "c1", a, 2)));
      a = pool2(np.tanh(cv(p, "c2", a, 0)));
      a = a.reshape([B, 400]);
      a = np.tanh(dense(p, "f1", a));
      a = np.tanh(dense(p, "f2", a));
      for (const k of keys) k.dispose();
      return dense(p, "f3", a);
    }
    a = nn.relu(cv(p, "c2", nn.relu(cv(p, "c1", a, 0)), 0));
    a = pool2(a);
    a = pool2(nn.relu(cv(p, "c4", nn.relu(cv(p, "c3", a, 0)), 0)));
    a = a.reshape([B, 3200]);
    const [k1, k2] = keys;
    const drop = (v: np.Array, k: np.Array) =>
      v.mul(random.bernoulli(k, 0.5, [B, 256]).astype(np.float32)).mul(2);
    a = drop(nn.relu(dense(p, "f1", a)), k1);
    a = drop(nn.relu(dense(p, "f2", a)), k2);
    return dense(p, "f3", a);
  };
  const lossFn = (p: Params, xb: np.Array, yb: np.Array, keys: np.Array[]) =>
    nn.logSoftmax(forward(p, xb, keys), -1).mul(yb).sum().mul(-1 / B);
  const jrLoss = (p: Params, xb: np.Array, yb: np.Array, keys: np.Array[]) => {
    const [logits, vjpFn] = vjp((xi: np.Array) => forward(p, xi, keys.slice(0, 2)), [xb]);
    const g = random.normal(keys[2], [B, cfg.classes]);
    const v = g.ref.div(np.sqrt(g.ref.mul(g).sum(-1, { keepdims: true })));
    const [u] = vjpFn(v) as np.Array[];
    vjpFn.dispose();
    const ce = nn.logSoftmax(logits, -1).mul(yb).sum().mul(-1 / B);
    return ce.add(u.ref.mul(u).sum().mul(lambda! / 2 * cfg.classes / B));
  };
  const lr = cfg.lr, mom = cfg.momentum;
  const step = jit((p: Params, m: Params, xb: np.Array, yb: np.Array, keys: np.Array[]) => {
    const [l, g] = lambda === null
      ? valueAndGrad(lossFn)(tree.ref(p), xb, yb, keys)
      : valueAndGrad(jrLoss)(tree.ref(p), xb, yb, keys);
    const m2 = tree.map((mi: np.Array, gi: np.Array) => mi.mul(mom).add(gi), m, g) as Params;
    const p2 = tree.map((pi: np.Array, mi: np.Array) => pi.sub(mi.mul(lr)), p, tree.ref(m2));
    return [l, p2, m2];
  });
  let p: Params = params;
  let m = tree.map((a: np.Array) => np.zerosLike(a.ref), p) as Params;
  const toX = (x: Float32Array<ArrayBuffer>) => np.array(x).reshape([B, c, h, w]);
  const toY = (y: Int32Array) => {
    const onehot = new Float32Array(B * cfg.classes);
    y.forEach((label, i) => onehot[i * cfg.classes + label] = 1);
    return np.array(onehot).reshape([B, cfg.classes]);
  };
  let xs = toX(x), ys = toY(y);
  let last: np.Array | null = null;
  let t = 0;
  return {
    name: `jax-js-${device}${lambda === null ? "" : "-jr"}`,
    feed(x, y) {
      xs.dispose();
      ys.dispose();
      xs = on(() => toX(x));
      ys = on(() => toY(y));
    },
    step() {
      last?.dispose();
      const [l, p2, m2] = on(() =>
        step(
          p,
          m,
          xs.ref,
          ys.ref,
          lambda === null
            ? [random.key(2 * t), random.key(2 * t++ + 1)]
            : [random.key(3 * t), random.key(3 * t + 1), random.key(3 * t++ + 2)],
        )
      ) as unknown as [
        np.Array,
        Params,
        Params,
      ];
      last = l;
      p = p2;
      m = m2;
    },
    async sync() {
      await blockUntilReady([p, m]);
    },
    async loss() {
      return last ? (await last.ref.data())[0] : NaN;
    },
    dispose() {
      last?.dispose();
      tree.dispose(p);
      tree.dispose(m);
      xs.dispose();
      ys.dispose();
      step.dispose();
    },
  };
}
