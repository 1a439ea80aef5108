/**
 * `deno task bench`: every benchmark, each measuring regula against its peers
 * on the same adapter in the same run and printing ratios: matmul, training
 * samples/s (LeNet, DDNet), LeNet/MNIST epoch time, PGD-40 throughput and
 * decision-plane throughput; `wasm`: the WebAssembly CPU backend, training samples/s (LeNet,
 * DDNet) against jax-js's Wasm backend, PyTorch CPU and regula's WebGPU path on this machine, the
 * Jacobian-regularized step, memory over 1000 steps (bench/wasm_train.ts), and GEMM against
 * PyTorch's CPU matmul at the same thread count (bench/wasm_gemm.ts).
 *
 * Flags: `--json` prints every table as JSON at the end;
 * `--only matmul,train,epoch,attacks,planes,wasm` picks benchmarks; the training
 * benchmark's own flags (`--memory-steps 1000`, `--configs lenet64,ddnet64`, `--no-jr`,
 * `--peers tfjs,jax`,
 * `--profile lenet64`: the per-kernel profile of regula's plain and JR steps instead,
 * `--rounds N`) and the epoch benchmark's (`--quick`, `--epoch-steps N`,
 * `--epoch-rounds N`, `--epoch-peers tfjs,jax,torch`) pass through;
 * `--attack-batch 64`, `--attack-rounds 2`, `--plane-resolution 256` and
 * `--plane-rounds 1` size the attack and plane benchmarks; the Wasm benchmark takes
 * `--threads N` (default 2; GEMM runs on 1 and N), `--configs`, `--rounds`, `--steps N` (of the
 * memory run, default 1000), `--wasm-peers jax,torch,webgpu` and `--no-jr`.
 *
 * bench/ has its own deno.json and deno.lock, holding the peers (TF.js, jax-js and their
 * dependencies), so that the library, the command line and the tests never resolve or download
 * them; `deno task bench` runs this file with `--config bench/deno.json`. `--only none` loads
 * every benchmark module and runs nothing (a check that the imports resolve).
 *
 * @module
 */

import { benchMatmul } from "./matmul.ts";
import { benchTrain, profileTrain, trainOptionsFromArgs } from "./train.ts";
import { benchEpoch, epochOptionsFromArgs } from "./epoch.ts";
import { benchAttacks } from "./attacks.ts";
import { benchPlanes } from "./planes.ts";
import { benchWasmGemm } from "./wasm_gemm.ts";
import { benchWasmTrain, wasmTrainOptionsFromArgs } from "./wasm_train.ts";

const args = Deno.args;
const i = args.indexOf("--only");
const ALL = ["matmul", "train", "epoch", "attacks", "planes", "wasm"];
const only = i >= 0 ? args[i + 1].split(",") : ALL;
function numberFlag(name: string, fallback: number): number {
  const j = args.indexOf(name);
  return j >= 0 ? Number(args[j + 1]) : fallback;
}
const results: Record<string, unknown> = {};
if (only.includes("matmul")) results.matmul = await benchMatmul();
const profile = args.indexOf("--profile");
if (only.includes("train")) {
  // `--profile lenet64`: the per-kernel profile of one configuration instead of the benchmark.
  results.train = profile >= 0
    ? await profileTrain(args[profile + 1])
    : await benchTrain(trainOptionsFromArgs(args));
}
if (only.includes("epoch")) results.epoch = await benchEpoch(epochOptionsFromArgs(args));
if (only.includes("attacks")) {
  results.attacks = await benchAttacks({
    batches: [numberFlag("--attack-batch", 64)],
    rounds: numberFlag("--attack-rounds", 2),
  });
}
if (only.includes("planes")) {
  results.planes = await benchPlanes({
    resolution: numberFlag("--plane-resolution", 256),
    rounds: numberFlag("--plane-rounds", 1),
  });
}
if (only.includes("wasm")) {
  const options = wasmTrainOptionsFromArgs(args);
  const threads = options.threads ?? 2;
  results.wasm = {
    train: await benchWasmTrain(options),
    gemm: await benchWasmGemm({ threads: [...new Set([1, threads])] }),
  };
}
if (args.includes("--json")) console.log(JSON.stringify(results, null, 2));
// jax-js's Wasm workers (bench/wasm_train.ts), once started, keep the process alive.
Deno.exit(0);
