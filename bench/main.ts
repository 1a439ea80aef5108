/**
 * `deno task bench`: every benchmark, each measuring regula against its peers
 * on the same adapter in the same run and printing ratios. Training, attack
 * and decision-plane benchmarks join this list with their issues.
 *
 * Flags: `--json` prints every table as JSON at the end; `--only matmul,train`
 * picks benchmarks; the training benchmark's own flags (`--memory-steps 1000`,
 * `--configs lenet64,ddnet64`, `--rounds N`) pass through.
 *
 * @module
 */

import { benchMatmul } from "./matmul.ts";
import { benchTrain, trainOptionsFromArgs } from "./train.ts";
import { benchEpoch, epochOptionsFromArgs } from "./epoch.ts";

const args = Deno.args;
const i = args.indexOf("--only");
const only = i >= 0 ? args[i + 1].split(",") : ["matmul", "train", "epoch"];
const results: Record<string, unknown> = {};
if (only.includes("matmul")) results.matmul = await benchMatmul();
if (only.includes("train")) results.train = await benchTrain(trainOptionsFromArgs(args));
if (only.includes("epoch")) results.epoch = await benchEpoch(epochOptionsFromArgs(args));
if (args.includes("--json")) console.log(JSON.stringify(results, null, 2));
