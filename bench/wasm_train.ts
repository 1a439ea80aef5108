/**
 * Training throughput (samples/s) of regula's WebAssembly CPU backend against the CPU peers on
 * this machine, in one run: regula on `Runtime.create({ backend: "wasm", threads })`, against
 *
 * - jax-js's `wasm` device (its worker pool sized to the same thread count,
 *   bench/_peers/jax_workers.ts), one `jit`-compiled step as on WebGPU (bench/_peers/jax.ts);
 * - PyTorch on the CPU (tools/torch_train.py, Debian's /usr/bin/python3 with torch 1.13, or
 *   `REGULA_TORCH_PYTHON`) at the same thread count (`torch.set_num_threads`), and for reference
 *   on one thread; the process is driven over stdin so that its rounds interleave with the others;
 * - regula's own WebGPU path on this machine's adapter (on a machine without a GPU: the software
 *   adapter, lavapipe/llvmpipe, on the same cores), the choice `--backend auto` makes.
 *
 * The models, data, loss and optimizer are bench/train.ts's ({@linkcode TRAIN_CASES}: LeNet-5
 * at batch 64 and 256, DDNet at 64; synthetic data; softmax cross-entropy; SGD with momentum
 * 0.9), and regula's step is the same code on both backends (bench/_peers/regula.ts). regula's
 * Jacobian-regularized step (λ 0.01, one projection, as `train()` runs it) is timed on Wasm in the
 * same rounds for the LeNet configurations ("JR/plain": its step time over the plain step's), and
 * so is PyTorch's at the same thread count (tools/torch_train.py `--jacobian`, autograd double
 * backprop: "PyTorch JR/plain").
 *
 * Timing as bench/train.ts: each implementation is warmed up (compilation is not timed), then
 * timed in rounds of back-to-back steps sized to about `roundMs`, the rounds of the
 * implementations interleaved; the best round counts. An implementation whose step takes over 5
 * rounds' time (jax-js on DDNet) is timed in one round of one step, and where its first step takes
 * over a minute, no further step is spent on sizing the rounds. The loss of each
 * implementation before and after is printed as a sanity check.
 *
 * Memory: regula's LeNet b64 on Wasm runs 10 steps and then `memorySteps` more (default 1000), and
 * `rt.memory()` is compared: bytes in tensors, the heap's span, the size of the WebAssembly memory
 * and the count of heap blocks that took new memory.
 *
 * An implementation that fails (a kernel without a WebAssembly twin, no WebGPU adapter, no
 * PyTorch) is reported with its error and left out; the others still run.
 *
 * Run: `deno run -A --config bench/deno.json bench/wasm_train.ts [--threads 2] [--rounds N]
 * [--configs lenet64,lenet256,ddnet64] [--steps 1000] [--wasm-peers jax,torch,webgpu] [--json]`
 * (or `deno task bench --only wasm`, which also runs bench/wasm_gemm.ts).
 *
 * @module
 */

import { Runtime } from "../src/gpu/runtime.ts";
import type { Backend } from "../src/backend.ts";
import { printTrainTable, setJrRatio, syntheticData, syntheticLabels } from "./_peers/common.ts";
import { regulaTrainer } from "./_peers/regula.ts";
import { initJaxWasm, jaxTrainer, jaxWasmWorkers } from "./_peers/jax.ts";
import { TRAIN_CASES, trainMemory } from "./train.ts";
import { fromTrainer, type Timed, torchInfo, torchTimed } from "./_peers/torch.ts";

/** The peers of {@linkcode benchWasmTrain}. */
export type WasmPeer = "jax" | "torch" | "webgpu";

/** Options of {@linkcode benchWasmTrain}. */
export interface BenchWasmTrainOptions {
  /** Threads of regula's Wasm backend, jax-js's Wasm workers and PyTorch. Default 2. */
  threads?: number;
  /** Configuration ids to run (default all of {@linkcode TRAIN_CASES}). */
  only?: string[];
  /** Timed rounds per implementation and configuration. Default 3 (2 for DDNet). */
  rounds?: number;
  /** Target duration of one round in ms. Default 2000. */
  roundMs?: number;
  /** Steps of the memory run after its first 10 (0: skip it). Default 1000. */
  memorySteps?: number;
  /** Time regula's Jacobian-regularized step on the LeNet configurations. Default true. */
  jacobian?: boolean;
  /**
   * Pairs of back-to-back plain and JR rounds behind each JR/plain ratio (the median of the
   * pairs' ratios: bench/_peers/common.ts `pairedRatio`), after the interleaved rounds. Default
   * 5; 0 gives the quotient of the two best rounds instead (`--pairs N`).
   */
  pairs?: number;
  /** Peers to run. Default all three. */
  peers?: WasmPeer[];
  /** PyTorch's thread counts. Default `[threads, 1]` (one entry when `threads` is 1). */
  torchThreads?: number[];
  /** Print tables. Default true. */
  print?: boolean;
}

/** Result row: samples/s per implementation and regula's ratios. */
export type WasmTrainRow = Record<string, string | number | null>;

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/**
 * Runs the benchmark.
 * @param options thread count, configurations, rounds, peers, memory run, printing
 * @returns one row per configuration (samples/s of each implementation, regula's ratios and the
 *   losses) and, with `memorySteps`, a memory row
 */
export async function benchWasmTrain(
  options: BenchWasmTrainOptions = {},
): Promise<WasmTrainRow[]> {
  const threads = options.threads ?? 2;
  const roundMs = options.roundMs ?? 2000;
  const print = options.print ?? true;
  const peers = options.peers ?? ["jax", "torch", "webgpu"];
  const torchThreads = options.torchThreads ?? [...new Set([threads, 1])];
  const memorySteps = options.memorySteps ?? 1000;
  const log = (s: string) => print && console.log(s);
  const load = () => Deno.loadavg().map((v) => v.toFixed(2)).join(", ");
  log(`load average (1, 5, 15 min) at the start: ${load()}`);
  const wasm = await Runtime.create({ backend: "wasm", threads });
  log(`regula Wasm: ${wasm.description}`);
  let gpu: Backend | null = null;
  if (peers.includes("webgpu")) {
    try {
      gpu = await Runtime.create({ backend: "webgpu" });
      log(`regula WebGPU: ${gpu.description}${gpu.isCpuAdapter ? " (software adapter)" : ""}`);
    } catch (e) {
      log(`regula WebGPU: not run: ${errorText(e)}`);
    }
  }
  const jaxError = peers.includes("jax") ? await initJaxWasm() : "not run";
  log(`jax-js Wasm: ${jaxError ?? `${jaxWasmWorkers} workers`}`);
  const cases = TRAIN_CASES.filter((c) => !options.only || options.only.includes(c.id));
  const rows: WasmTrainRow[] = [];
  const errors = new Map<string, string>();
  for (const cfg of cases) {
    const n = cfg.inputShape.reduce((a, b) => a * b, 1);
    const x = syntheticData(cfg.batch * n, 1);
    const y = syntheticLabels(cfg.batch, cfg.classes);
    const makers: [string, () => Promise<Timed>][] = [
      [
        "regula-wasm",
        () => Promise.resolve(fromTrainer(regulaTrainer(wasm, cfg, x, y), "regula-wasm")),
      ],
    ];
    if ((options.jacobian ?? true) && cfg.model === "lenet") {
      const jacobian = { lambda: 0.01, nproj: 1 };
      makers.push([
        "regula-wasm-jr",
        () =>
          Promise.resolve(
            fromTrainer(regulaTrainer(wasm, cfg, x, y, { jacobian }), "regula-wasm-jr"),
          ),
      ]);
    }
    if (gpu) {
      const g = gpu;
      makers.push([
        "regula-webgpu",
        () => Promise.resolve(fromTrainer(regulaTrainer(g, cfg, x, y), "regula-webgpu")),
      ]);
    }
    if (!jaxError) {
      makers.push([
        "jax-js-wasm",
        () => Promise.resolve(fromTrainer(jaxTrainer(cfg, x, y, "wasm"))),
      ]);
    }
    if (peers.includes("torch")) {
      for (const th of torchThreads) makers.push([`pytorch-cpu-${th}t`, () => torchTimed(cfg, th)]);
      if ((options.jacobian ?? true) && cfg.model === "lenet") {
        const jacobian = { lambda: 0.01 };
        makers.push([`pytorch-cpu-${threads}t-jr`, () => torchTimed(cfg, threads, { jacobian })]);
      }
    }
    const impls: Timed[] = [];
    const reps = new Map<string, number>();
    const best = new Map<string, number>();
    const loss0 = new Map<string, number>();
    const slow = new Set<string>();
    for (const [name, make] of makers) {
      let t: Timed | null = null;
      try {
        t = await make();
        const first = await t.round(1); // compiles
        loss0.set(name, await t.loss());
        // A second step, without compilation, sizes the rounds, unless the first took over a
        // minute (jax-js on DDNet), where its own variation is far below the gaps measured.
        const once = first > 60_000 ? first : await t.round(1);
        if (once > 5 * roundMs) slow.add(name);
        reps.set(name, Math.max(1, Math.min(200, Math.round(roundMs / once))));
        best.set(name, Infinity);
        impls.push(t);
        log(`${cfg.id} ${name}: first step ${first.toFixed(1)} ms, then ${once.toFixed(1)} ms`);
      } catch (e) {
        errors.set(`${cfg.id} ${name}`, errorText(e));
        log(`${cfg.id} ${name}: failed: ${errorText(e)}`);
        await t?.dispose().catch(() => {});
      }
    }
    const rounds = options.rounds ?? (cfg.model === "ddnet" ? 2 : 3);
    for (let r = 0; r < rounds; r++) {
      for (const t of impls) {
        if (r > 0 && slow.has(t.name)) continue;
        best.set(t.name, Math.min(best.get(t.name)!, await t.round(reps.get(t.name)!)));
      }
    }
    const sps = (name: string) =>
      best.has(name) ? +(cfg.batch * 1000 / best.get(name)!).toFixed(1) : null;
    const ratio = (a: number | null, b: number | null) => a && b ? +(a / b).toFixed(2) : null;
    const row: WasmTrainRow = { config: cfg.id, threads };
    for (const [name] of makers) row[name] = sps(name);
    const reg = sps("regula-wasm");
    row["wasm/jax"] = ratio(reg, sps("jax-js-wasm"));
    row[`wasm/pytorch-${threads}t`] = ratio(reg, sps(`pytorch-cpu-${threads}t`));
    if (threads !== 1 && torchThreads.includes(1)) {
      row["wasm/pytorch-1t"] = ratio(reg, sps("pytorch-cpu-1t"));
    }
    row["wasm/webgpu"] = ratio(reg, sps("regula-webgpu"));
    // Step-time ratios of the Jacobian-regularized steps to the plain ones: the median of
    // back-to-back pairs of rounds, and the quotient of the best rounds (samples/s inverted).
    const timing = { impls, reps, slow, pairs: options.pairs ?? 5 };
    const jrRatio = (plain: string, col: string) =>
      setJrRatio(row, col, plain, ratio(sps(plain), sps(`${plain}-jr`)), timing);
    await jrRatio("regula-wasm", "JR/plain");
    await jrRatio(`pytorch-cpu-${threads}t`, "PyTorch JR/plain");
    const losses: string[] = [];
    for (const t of impls) {
      losses.push(`${t.name} ${loss0.get(t.name)!.toFixed(3)}->${(await t.loss()).toFixed(3)}`);
    }
    row.loss = losses.join(", ");
    rows.push(row);
    log(JSON.stringify(row));
    for (const t of impls) await t.dispose();
  }
  if (print && rows.length > 0) {
    if (torchInfo()) console.log(torchInfo());
    console.log(
      `Training samples/s (best of rounds) on ${threads} thread(s), SGD momentum 0.9, synthetic ` +
        `data; regula Wasm against jax-js Wasm, PyTorch CPU and regula WebGPU:`,
    );
    printTrainTable(rows);
    for (const [what, e] of errors) console.log(`not measured: ${what}: ${e}`);
  }
  log(`load average (1, 5, 15 min) after the training rounds: ${load()}`);
  if (memorySteps > 0) {
    try {
      const { at10, atN } = await trainMemory(wasm, memorySteps);
      const after = `after 10+${memorySteps}`;
      const row: WasmTrainRow = {
        config: "memory lenet64",
        "inUse after 10": at10.inUse,
        [`inUse ${after}`]: atN.inUse,
        "heap after 10": at10.allocated,
        [`heap ${after}`]: atN.allocated,
        "Wasm memory after 10": at10.wasmMemory ?? null,
        [`Wasm memory ${after}`]: atN.wasmMemory ?? null,
        "new blocks": atN.created - at10.created,
        same: at10.inUse === atN.inUse && at10.allocated === atN.allocated &&
            at10.wasmMemory === atN.wasmMemory && at10.created === atN.created
          ? "yes"
          : "NO",
      };
      rows.push(row);
      if (print) {
        console.log(
          "regula Wasm memory (rt.memory(): bytes in tensors, the heap's span, the WebAssembly " +
            "memory, heap blocks created in between), LeNet b64:",
        );
        console.table([row]);
      }
    } catch (e) {
      rows.push({ config: "memory lenet64", error: errorText(e) });
      log(`memory run not measured: ${errorText(e)}`);
    }
  }
  wasm.destroy();
  gpu?.destroy();
  return rows;
}

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/**
 * Options from command-line flags: `--threads N`, `--configs a,b`, `--rounds N`, `--steps N` (of
 * the memory run), `--wasm-peers jax,torch,webgpu`, `--no-jr`, `--pairs N`.
 */
export function wasmTrainOptionsFromArgs(args: string[]): BenchWasmTrainOptions {
  const num = (flag: string) => {
    const v = argValue(args, flag);
    return v === undefined ? undefined : Number(v);
  };
  return {
    threads: num("--threads"),
    only: argValue(args, "--configs")?.split(","),
    rounds: num("--rounds"),
    memorySteps: num("--steps"),
    peers: argValue(args, "--wasm-peers")?.split(",") as WasmPeer[] | undefined,
    jacobian: !args.includes("--no-jr"),
    pairs: num("--pairs"),
  };
}

if (import.meta.main) {
  const rows = await benchWasmTrain(wasmTrainOptionsFromArgs(Deno.args));
  if (Deno.args.includes("--json")) console.log(JSON.stringify(rows, null, 2));
  // jax-js's Wasm workers, once started, keep the process alive.
  Deno.exit(0);
}
