/**
 * TensorFlow.js (WebGPU backend) peer of bench/train.ts: the same LeNet-5 / DDNet, written with
 * TF.js ops in its native NHWC layout (HWIO filters), trained with `tf.train.momentum` on
 * `tf.losses.softmaxCrossEntropy`. DDNet uses `tf.dropout(0.5)` after the ReLUs of fc1 and fc2, as regula.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-webgpu";
import { type TrainConfig, type Trainer, uniformInit } from "./common.ts";

/** Switches TF.js to its WebGPU backend; returns an error message or null. */
export async function initTfjs(): Promise<string | null> {
  try {
    if (!(await tf.setBackend("webgpu"))) return "tf.setBackend('webgpu') returned false";
    await tf.ready();
    return null;
  } catch (e) {
    return `TF.js WebGPU backend failed: ${(e as Error).message}`;
  }
}

/**
 * @param cfg configuration
 * @param x (B, C, H, W) data (transposed to NHWC here)
 * @param y (B,) labels
 */
export function tfjsTrainer(cfg: TrainConfig, x: Float32Array, y: Int32Array): Trainer {
  const [c, h, w] = cfg.inputShape;
  const B = cfg.batch;
  const vars: tf.Variable[] = [];
  let seed = 100;
  const conv = (cin: number, cout: number, k: number) => {
    const fan = cin * k * k;
    vars.push(
      tf.variable(tf.tensor4d(uniformInit(k * k * cin * cout, fan, seed++), [k, k, cin, cout])),
    );
    vars.push(tf.variable(tf.tensor1d(uniformInit(cout, fan, seed++))));
    return [vars[vars.length - 2], vars[vars.length - 1]] as const;
  };
  const fc = (i: number, o: number) => {
    vars.push(tf.variable(tf.tensor2d(uniformInit(i * o, i, seed++), [i, o])));
    vars.push(tf.variable(tf.tensor1d(uniformInit(o, i, seed++))));
    return [vars[vars.length - 2], vars[vars.length - 1]] as const;
  };
  let forward: (x: tf.Tensor4D) => tf.Tensor2D;
  if (cfg.model === "lenet") {
    const c1 = conv(c, 6, 5), c2 = conv(6, 16, 5);
    const f1 = fc(400, 120), f2 = fc(120, 84), f3 = fc(84, cfg.classes);
    forward = (x) => {
      let a = tf.tanh(tf.add(tf.conv2d(x, c1[0] as tf.Tensor4D, 1, 2), c1[1])) as tf.Tensor4D;
      a = tf.maxPool(a, 2, 2, "valid");
      a = tf.tanh(tf.add(tf.conv2d(a, c2[0] as tf.Tensor4D, 1, "valid"), c2[1])) as tf.Tensor4D;
      a = tf.maxPool(a, 2, 2, "valid");
      // NCHW flatten order, as the other implementations.
      let z = tf.reshape(tf.transpose(a, [0, 3, 1, 2]), [B, 400]) as tf.Tensor2D;
      z = tf.tanh(tf.add(tf.matMul(z, f1[0]), f1[1]));
      z = tf.tanh(tf.add(tf.matMul(z, f2[0]), f2[1]));
      return tf.add(tf.matMul(z, f3[0]), f3[1]);
    };
  } else {
    const c1 = conv(c, 64, 3), c2 = conv(64, 64, 3), c3 = conv(64, 128, 3), c4 = conv(128, 128, 3);
    const f1 = fc(3200, 256), f2 = fc(256, 256), f3 = fc(256, cfg.classes);
    const cr = (a: tf.Tensor4D, p: readonly [tf.Variable, tf.Variable]) =>
      tf.relu(tf.add(tf.conv2d(a, p[0] as tf.Tensor4D, 1, "valid"), p[1])) as tf.Tensor4D;
    forward = (x) => {
      let a = tf.maxPool(cr(cr(x, c1), c2), 2, 2, "valid");
      a = tf.maxPool(cr(cr(a, c3), c4), 2, 2, "valid");
      let z = tf.reshape(tf.transpose(a, [0, 3, 1, 2]), [B, 3200]) as tf.Tensor2D;
      z = tf.dropout(tf.relu(tf.add(tf.matMul(z, f1[0]), f1[1])), 0.5) as tf.Tensor2D;
      z = tf.dropout(tf.relu(tf.add(tf.matMul(z, f2[0]), f2[1])), 0.5) as tf.Tensor2D;
      return tf.add(tf.matMul(z, f3[0]), f3[1]);
    };
  }
  const toX = (x: Float32Array) =>
    tf.tidy(() => tf.transpose(tf.tensor4d(x, [B, c, h, w]), [0, 2, 3, 1])) as tf.Tensor4D;
  const toY = (y: Int32Array) => tf.tidy(() => tf.oneHot(tf.tensor1d(y, "int32"), cfg.classes));
  let xs = toX(x), ys = toY(y);
  const opt = tf.train.momentum(cfg.lr, cfg.momentum);
  let cost: tf.Scalar | null = null;
  return {
    name: "tfjs-webgpu",
    feed(x, y) {
      xs.dispose();
      ys.dispose();
      xs = toX(x);
      ys = toY(y);
    },
    step() {
      cost?.dispose();
      cost = opt.minimize(() => tf.losses.softmaxCrossEntropy(ys, forward(xs)), true, vars);
    },
    // Reading one value waits for all work queued before it (see bench/matmul.ts).
    async sync() {
      if (cost) await cost.data();
    },
    async loss() {
      return cost ? (await cost.data())[0] : NaN;
    },
    dispose() {
      cost?.dispose();
      opt.dispose();
      for (const v of vars) v.dispose();
      xs.dispose();
      ys.dispose();
    },
  };
}
