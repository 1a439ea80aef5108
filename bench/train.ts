/**
 * Training throughput (samples/s) on this machine's WebGPU adapter, in one run: regula against
 * TensorFlow.js's WebGPU backend and jax-js's `webgpu` device, on the same architectures,
 * batch, optimizer and synthetic data (bench/_peers/):
 *
 * - LeNet-5 (conv 1→6 5×5 pad 2, tanh, max pool 2, conv 6→16 5×5, tanh, max pool 2,
 *   fc 400→120→84→10 with tanh), 1×28×28 inputs, batch 64 and 256;
 * - DDNet (conv 3→64, 64→64 3×3, max pool 2, conv 64→128, 128→128, max pool 2,
 *   fc 3200→256→256→10, ReLU, dropout 0.5 after fc1), 3×32×32 inputs, batch 64.
 *
 * A step is forward, softmax cross-entropy (mean), backward, SGD with momentum 0.9; regula's
 * Jacobian-regularized step ("regula-jr", λ 0.01, one projection, as `train()` runs it) is timed
 * in the same rounds and its step time given relative to the plain one ("regula JR/plain"), as are
 * jax-js's (the same penalty by `vjp` and its own double backprop, in its compiled step; LeNet
 * only: on DDNet its step needs a larger buffer binding than its device allows) and
 * PyTorch's on the CPU (tools/torch_train.py `--jacobian`, autograd double backprop, at
 * `torchThreads` threads): "jax-js JR/plain" and "PyTorch JR/plain". regula
 * records a step into one encoder and submits it once, with the gradient clear fused into the
 * update; nobody reads anything back inside the timed window. TF.js works in its native NHWC
 * layout; jax-js runs one `jit`-compiled value-and-grad + update per step.
 *
 * Timing as bench/matmul.ts: each implementation is warmed up (compilation is not timed), then
 * timed in rounds of back-to-back steps sized to about `roundMs`, each round ending with a wait
 * for all its work; rounds of the implementations are interleaved so background load hits them
 * alike, and the best round counts. The loss before and after is printed as a sanity check
 * (same data and architecture; initial values differ by implementation).
 *
 * Memory: with `memorySteps` (CLI `--memory-steps N`), regula's LeNet b64 is also run for 10
 * steps and then N steps, and `rt.memory()` compared: a training loop must not grow.
 *
 * Run: `deno run -A --config bench/deno.json bench/train.ts [--memory-steps 1000]
 * [--configs lenet64,lenet256,ddnet64]`;
 * `--profile lenet64` instead prints the per-kernel profile of regula's plain and
 * Jacobian-regularized steps ({@linkcode profileTrain}).
 * (or `deno task bench`, which runs it after bench/matmul.ts).
 *
 * @module
 */

import { Runtime } from "../src/gpu/runtime.ts";
import type { Backend } from "../src/backend.ts";
import {
  printTrainTable,
  setJrRatio,
  syntheticData,
  syntheticLabels,
  timeRound,
  type TrainConfig,
  type Trainer,
} from "./_peers/common.ts";
import { byKernel, type ProfileRow } from "../src/gpu/profile.ts";
import { regulaTrainer } from "./_peers/regula.ts";
import { initTfjs, tfjsTrainer } from "./_peers/tfjs.ts";
import { initJax, jaxTrainer } from "./_peers/jax.ts";
import { fromTrainer, type Timed, torchInfo, torchTimed } from "./_peers/torch.ts";

/** A named configuration of {@linkcode benchTrain}. */
export interface TrainCase extends TrainConfig {
  id: string;
}

/** The default configurations. */
export const TRAIN_CASES: TrainCase[] = [
  { id: "lenet64", model: "lenet", batch: 64, inputShape: [1, 28, 28] },
  { id: "lenet256", model: "lenet", batch: 256, inputShape: [1, 28, 28] },
  { id: "ddnet64", model: "ddnet", batch: 64, inputShape: [3, 32, 32] },
].map((c) => ({ ...c, classes: 10, lr: 0.01, momentum: 0.9 }) as TrainCase);

/** Options of {@linkcode benchTrain}. */
export interface BenchTrainOptions {
  /** Configuration ids to run (default all of {@linkcode TRAIN_CASES}). */
  only?: string[];
  /** Timed rounds per implementation and configuration. Default 3 (2 for DDNet). */
  rounds?: number;
  /** Target duration of one round in ms. Default 2000. */
  roundMs?: number;
  /** Steps of the long memory run (0: skip it). Default 0. */
  memorySteps?: number;
  /**
   * Also time regula's Jacobian-regularized step (λ 0.01, one projection) in the same rounds,
   * for the JR/plain step-time ratio. Default true (`--no-jr` turns it off).
   */
  jacobian?: boolean;
  /**
   * Pairs of back-to-back plain and JR rounds behind each JR/plain ratio (the median of the
   * pairs' ratios: bench/_peers/common.ts `pairedRatio`), after the interleaved rounds. Default
   * 5 (2 for DDNet); 0 gives the quotient of the two best rounds instead (`--pairs N`).
   */
  pairs?: number;
  /** Peers to run (default all three; "torch" runs only for the JR/plain ratio). */
  peers?: ("tfjs" | "jax" | "torch")[];
  /** PyTorch's threads (`torch.set_num_threads`). Default 2. */
  torchThreads?: number;
  /** Print tables. Default true. */
  print?: boolean;
  /** Runtime to use; default a new one (destroyed at the end). */
  rt?: Runtime;
}

/** Result row: samples/s per implementation and regula's ratios. */
export type TrainRow = Record<string, string | number | null>;

export { timeRound };

/** What {@linkcode trainMemory} reads from `rt.memory()` at one point. */
export interface MemoryPoint {
  /** Bytes held by live tensors. */
  inUse: number;
  /** Bytes the backend has taken for tensors (the WebGPU pool's buffers, the Wasm heap's span). */
  allocated: number;
  /** Allocations so far that took new memory. */
  created: number;
  /** The size of the WebAssembly memory (Wasm only). */
  wasmMemory?: number;
}

/**
 * Memory of regula's training loop (LeNet, batch 64) after 10 steps and after `steps` more, on
 * either backend.
 * @returns `rt.memory()` at both points
 */
export async function trainMemory(
  rt: Backend,
  steps: number,
): Promise<{ at10: MemoryPoint; atN: MemoryPoint }> {
  const cfg = TRAIN_CASES[0];
  const n = cfg.inputShape.reduce((a, b) => a * b, 1);
  const t = regulaTrainer(rt, cfg, syntheticData(cfg.batch * n, 1), syntheticLabels(64, 10));
  const point = (): MemoryPoint => {
    const m = rt.memory() as ReturnType<Backend["memory"]> & { memoryBytes?: number };
    return {
      inUse: m.inUseBytes,
      allocated: m.allocatedBytes,
      created: m.created,
      ...(m.memoryBytes === undefined ? {} : { wasmMemory: m.memoryBytes }),
    };
  };
  for (let i = 0; i < 10; i++) t.step();
  await t.sync();
  const at10 = point();
  for (let i = 0; i < steps; i++) t.step();
  await t.sync();
  const atN = point();
  t.dispose();
  return { at10, atN };
}

/**
 * Runs the benchmark.
 * @param options configurations, rounds, memory run, printing
 * @returns one row per configuration: samples/s of each implementation, the ratios
 *   regula/TF.js and regula/jax-js, and the losses before and after
 */
export async function benchTrain(options: BenchTrainOptions = {}): Promise<TrainRow[]> {
  const roundMs = options.roundMs ?? 2000;
  const print = options.print ?? true;
  const peers = options.peers ?? ["tfjs", "jax", "torch"];
  const jacobian = options.jacobian ?? true;
  const torchThreads = options.torchThreads ?? 2;
  const rt = options.rt ?? await Runtime.create();
  const tfError = peers.includes("tfjs") ? await initTfjs() : "not run";
  const jaxError = peers.includes("jax") ? await initJax() : "not run";
  if (print) {
    console.log(`adapter: ${rt.description}`);
    if (tfError) console.log(`TF.js: ${tfError}`);
    if (jaxError) console.log(`jax-js: ${jaxError}`);
  }
  const cases = TRAIN_CASES.filter((c) => !options.only || options.only.includes(c.id));
  const rows: TrainRow[] = [];
  for (const cfg of cases) {
    const n = cfg.inputShape.reduce((a, b) => a * b, 1);
    const x = syntheticData(cfg.batch * n, 1);
    const y = syntheticLabels(cfg.batch, cfg.classes);
    const trainers: Trainer[] = [regulaTrainer(rt, cfg, x, y)];
    if (jacobian) {
      trainers.push(regulaTrainer(rt, cfg, x, y, { jacobian: { lambda: 0.01, nproj: 1 } }));
    }
    if (!tfError) trainers.push(tfjsTrainer(cfg, x, y));
    if (!jaxError) trainers.push(jaxTrainer(cfg, x, y));
    // jax-js's Jacobian-regularized DDNet step binds a 200 MiB buffer, over WebGPU's default
    // 128 MiB maxStorageBufferBindingSize that jax-js's device has: the dispatches that need it
    // fail (uncaptured errors) and the step would be timed without them.
    if (!jaxError && jacobian && cfg.model === "lenet") {
      trainers.push(jaxTrainer(cfg, x, y, "webgpu", { jacobian: { lambda: 0.01 } }));
    }
    const impls: Timed[] = trainers.map((t) => fromTrainer(t));
    if (peers.includes("torch") && jacobian) {
      // PyTorch on the CPU, for its own JR/plain ratio (its samples/s are not on this adapter).
      for (const opts of [{}, { jacobian: { lambda: 0.01 } }]) {
        try {
          impls.push(await torchTimed(cfg, torchThreads, opts));
        } catch (e) {
          if (print) console.log(`PyTorch: not run: ${(e as Error).message.split("\n")[0]}`);
          break;
        }
      }
    }
    const rounds = options.rounds ?? (cfg.model === "ddnet" ? 2 : 3);
    const reps = new Map<string, number>();
    const best = new Map<string, number>();
    const loss0 = new Map<string, number>();
    const slow = new Set<string>();
    for (const t of impls) {
      const first = await t.round(1); // compiles
      loss0.set(t.name, await t.loss());
      // A first step slower than a round (DDNet on TF.js) sets one step per round; otherwise a
      // second step, without compilation, sizes the rounds.
      const once = first > roundMs ? first : await t.round(1);
      if (first > 5 * roundMs) slow.add(t.name);
      reps.set(t.name, Math.max(1, Math.min(200, Math.round(roundMs / once))));
      best.set(t.name, Infinity);
    }
    for (let r = 0; r < rounds; r++) {
      for (const t of impls) {
        // One round is enough where a single step takes many rounds' time (TF.js on DDNet: its
        // own variation is far below the gap to the others), which keeps the default run short.
        if (r > 0 && slow.has(t.name)) continue;
        best.set(t.name, Math.min(best.get(t.name)!, await t.round(reps.get(t.name)!)));
      }
    }
    const sps = (name: string) =>
      best.has(name) ? +(cfg.batch * 1000 / best.get(name)!).toFixed(1) : null;
    const row: TrainRow = { config: cfg.id };
    for (const t of impls) row[t.name] = sps(t.name);
    const reg = sps("regula")!;
    const tfj = sps("tfjs-webgpu"), jx = sps("jax-js-webgpu");
    row["regula/tfjs"] = tfj ? +(reg / tfj).toFixed(2) : null;
    row["regula/jax"] = jx ? +(reg / jx).toFixed(2) : null;
    // Step-time ratios of the Jacobian-regularized steps to the plain ones: the median of
    // back-to-back pairs of rounds, and the quotient of the best rounds (samples/s inverted).
    const timing = { impls, reps, slow, pairs: options.pairs ?? (cfg.model === "ddnet" ? 2 : 5) };
    const jrRatio = (plain: string, col: string) => {
      const a = sps(plain), b = sps(`${plain}-jr`);
      return setJrRatio(row, col, plain, a && b ? +(a / b).toFixed(2) : null, timing);
    };
    await jrRatio("regula", "regula JR/plain");
    await jrRatio("jax-js-webgpu", "jax-js JR/plain");
    await jrRatio(`pytorch-cpu-${torchThreads}t`, "PyTorch JR/plain");
    const losses: string[] = [];
    for (const t of impls) {
      losses.push(`${t.name} ${loss0.get(t.name)!.toFixed(3)}->${(await t.loss()).toFixed(3)}`);
    }
    row.loss = losses.join(", ");
    rows.push(row);
    if (print) console.log(JSON.stringify(row));
    for (const t of impls) await t.dispose();
  }
  if (print) {
    if (torchInfo()) console.log(`${torchInfo()}, ${torchThreads} threads (CPU)`);
    console.log("Training samples/s (best of rounds), SGD momentum 0.9, synthetic data:");
    printTrainTable(rows);
  }
  if (options.memorySteps) {
    const m = await trainMemory(rt, options.memorySteps);
    const row: TrainRow = {
      config: `memory lenet64`,
      "inUse after 10": m.at10.inUse,
      [`inUse after 10+${options.memorySteps}`]: m.atN.inUse,
      "allocated after 10": m.at10.allocated,
      [`allocated after 10+${options.memorySteps}`]: m.atN.allocated,
      same: m.at10.inUse === m.atN.inUse && m.at10.allocated === m.atN.allocated ? "yes" : "NO",
    };
    rows.push(row);
    if (print) {
      console.log("regula GPU memory (rt.memory(), bytes), LeNet b64:");
      console.table([row]);
    }
  }
  if (!options.rt) rt.destroy();
  return rows;
}

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Options from command-line flags (`--memory-steps N`, `--configs a,b`, `--rounds N`,
 * `--no-jr`, `--pairs N`, `--peers tfjs,jax,torch`: which peers to run, `--peers none` for regula
 * alone, `--torch-threads N`).
 */
export function trainOptionsFromArgs(args: string[]): BenchTrainOptions {
  const only = argValue(args, "--configs")?.split(",");
  const memorySteps = Number(argValue(args, "--memory-steps") ?? 0);
  const rounds = argValue(args, "--rounds");
  const peers = argValue(args, "--peers")?.split(",").filter((p) =>
    p === "tfjs" || p === "jax" || p === "torch"
  );
  const torchThreads = argValue(args, "--torch-threads");
  const pairs = argValue(args, "--pairs");
  return {
    peers: peers as BenchTrainOptions["peers"],
    only,
    memorySteps,
    rounds: rounds ? Number(rounds) : undefined,
    jacobian: !args.includes("--no-jr"),
    torchThreads: torchThreads ? Number(torchThreads) : undefined,
    pairs: pairs ? Number(pairs) : undefined,
  };
}

/**
 * Per-kernel profile of regula's training step, plain and Jacobian-regularized (λ 0.01, one
 * projection), from a runtime created with `profile: true` (src/gpu/profile.ts): dispatches,
 * workgroups, bound bytes and GPU time (timestamp queries, each dispatch in a pass of its own)
 * per step, averaged over `steps` steps after two warm-up steps; the slowest kernels first.
 * @param id configuration id ("lenet64", ...)
 * @param opts steps to average (default 10 for LeNet, 3 for DDNet), print (default true)
 * @returns per-kernel rows of each variant and their totals per step
 */
export async function profileTrain(
  id: string,
  opts: { steps?: number; print?: boolean } = {},
): Promise<{ variant: string; perStep: ProfileRow[]; total: ProfileRow }[]> {
  const cfg = TRAIN_CASES.find((c) => c.id === id);
  if (!cfg) throw new Error(`profileTrain: unknown configuration '${id}'`);
  const print = opts.print ?? true;
  const steps = opts.steps ?? (cfg.model === "lenet" ? 10 : 3);
  const rt = await Runtime.create({ profile: true });
  const profiler = rt.profiler!;
  const n = cfg.inputShape.reduce((a, b) => a * b, 1);
  const x = syntheticData(cfg.batch * n, 1), y = syntheticLabels(cfg.batch, cfg.classes);
  const out = [];
  if (print) {
    console.log(
      `adapter: ${rt.description}; GPU times ${
        profiler.timed ? "from timestamp queries" : "unavailable (no timestamp-query)"
      }`,
    );
  }
  for (const jacobian of [undefined, { lambda: 0.01, nproj: 1 }]) {
    const t = regulaTrainer(rt, cfg, x, y, { jacobian });
    for (let i = 0; i < 2; i++) t.step();
    await t.sync();
    await profiler.report();
    profiler.reset();
    for (let i = 0; i < steps; i++) t.step();
    await t.sync();
    const rows = await profiler.report();
    t.dispose();
    const per = (r: ProfileRow): ProfileRow => ({
      ...r,
      count: r.count / steps,
      workgroups: r.workgroups / steps,
      bytes: r.bytes / steps,
      gpuMs: r.gpuMs === null ? null : r.gpuMs / steps,
    });
    const perStep = rows.map(per);
    const total = perStep.reduce((a, r) => ({
      ...a,
      count: a.count + r.count,
      workgroups: a.workgroups + r.workgroups,
      bytes: a.bytes + r.bytes,
      gpuMs: a.gpuMs === null || r.gpuMs === null ? a.gpuMs : a.gpuMs + r.gpuMs,
    }), {
      kernel: "total",
      variant: "",
      count: 0,
      workgroups: 0,
      bytes: 0,
      gpuMs: profiler.timed ? 0 : null,
    } as ProfileRow);
    const variant = jacobian ? "jacobian nproj=1" : "plain";
    out.push({ variant, perStep, total });
    if (print) {
      const dispatches = perStep.filter((r) => r.workgroups > 0).reduce((a, r) => a + r.count, 0);
      console.log(
        `${id} ${variant}: per step ${dispatches} dispatches, ${total.count - dispatches} ` +
          `copies/clears, ${(total.bytes / 1e6).toFixed(1)} MB bound` +
          (total.gpuMs !== null ? `, ${total.gpuMs.toFixed(2)} ms GPU time` : ""),
      );
      const table = (list: ProfileRow[]) =>
        list.map((r) => ({
          kernel: r.kernel,
          variant: r.variant,
          "n/step": +r.count.toFixed(2),
          "wg/step": Math.round(r.workgroups),
          "MB/step": +(r.bytes / 1e6).toFixed(2),
          "ms/step": r.gpuMs === null ? null : +r.gpuMs.toFixed(3),
          "%": r.gpuMs === null || !total.gpuMs ? null : +(100 * r.gpuMs / total.gpuMs).toFixed(1),
        }));
      console.log("by kernel:");
      console.table(table(byKernel(perStep)));
      console.log("by kernel variant:");
      console.table(table(perStep));
    }
  }
  if (print && out[0].total.gpuMs && out[1].total.gpuMs) {
    console.log(
      `GPU time JR / plain: ${(out[1].total.gpuMs / out[0].total.gpuMs).toFixed(2)}; ` +
        `dispatches JR / plain: ${(out[1].total.count / out[0].total.count).toFixed(2)}`,
    );
  }
  rt.destroy();
  return out;
}

if (import.meta.main) {
  const profile = argValue(Deno.args, "--profile");
  if (profile) await profileTrain(profile);
  else await benchTrain(trainOptionsFromArgs(Deno.args));
}
