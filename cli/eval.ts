/**
 * `cli.ts eval <checkpoint>`: loads a checkpoint, rebuilds its model from the
 * spec in its metadata or from `--model` (cli/checkpoint.ts: also a PyTorch
 * `state_dict` with plain-string metadata), and prints loss and accuracy on a
 * dataset (by default the test set of the dataset it was trained on).
 *
 * @module
 */

import type { Command, Io, ParsedArgs } from "./args.ts";
import { UsageError } from "./args.ts";
import {
  datasetName,
  loadCheckpointModel,
  MODEL_FLAGS,
  modelRequest,
  readCheckpoint,
} from "./checkpoint.ts";
import { BACKEND_FLAGS, createBackend } from "./backend.ts";
import type { Sequential } from "../src/layers/sequential.ts";
import { evaluate } from "../src/train/train.ts";
import * as seams from "./_seams.ts";

const evalFlags = {
  ...BACKEND_FLAGS,
  data: { type: "string", help: "Dataset name (default: the one in the checkpoint)." },
  "data-path": { type: "string", help: "Directory holding the dataset's files." },
  split: { type: "string", help: "test, train or val.", default: "test" },
  limit: { type: "number", help: "Evaluate only the first N samples." },
  "batch-size": {
    type: "number",
    help: "Samples per forward pass (default 500, or fewer where the WebAssembly backend's " +
      "memory cap needs it).",
  },
  "per-class": { type: "boolean", help: "Also print the accuracy of each class." },
  json: { type: "boolean", help: "Print one JSON object." },
  ...MODEL_FLAGS,
} as const;

async function runEval({ flags, positionals }: ParsedArgs, io: Io): Promise<number> {
  const path = seams.checkpointArg("eval", positionals);
  const bs = flags["batch-size"] as number | undefined;
  if (bs !== undefined && !(Number.isInteger(bs) && bs >= 1)) {
    throw new UsageError(`Flag '--batch-size' needs a positive integer, got ${bs}`);
  }
  const lim = flags.limit as number | undefined;
  if (lim !== undefined && !(Number.isInteger(lim) && lim >= 1)) {
    throw new UsageError(`Flag '--limit' needs a positive integer, got ${lim}`);
  }
  const split = String(flags.split);
  if (!["test", "train", "val"].includes(split)) {
    throw new UsageError(`Flag '--split' must be test, train or val, got '${split}'`);
  }
  const ck = await readCheckpoint(path);
  const req = await modelRequest(path, ck, flags);
  const meta = ck.metadata as {
    data?: { name?: string; valFraction?: number; limit?: number | null };
    seed?: number;
  };
  const dataName = datasetName(path, ck, req, flags, io.err);
  const data = await seams.loadData(dataName, {
    path: flags["data-path"] as string | undefined,
    // The train and val splits are remade as training made them (same limit, fraction, seed).
    limit: split === "test" ? undefined : meta.data?.limit ?? undefined,
    valFraction: split === "test" ? 0 : meta.data?.valFraction ?? 0,
    seed: meta.seed ?? 0,
  });
  const set = split === "test" ? data.test : split === "val" ? data.val : data.train;
  if (!set) throw new UsageError(`Dataset '${dataName}' has no ${split} split`);
  const rt = await createBackend(flags);
  let model: Sequential | null = null;
  try {
    model = loadCheckpointModel(rt, path, ck, req, set, io.err);
    const limit = flags.limit as number | undefined;
    const r = await evaluate(model, set, { batchSize: bs, perClass: !!flags["per-class"], limit });
    if (flags.json) {
      io.out(JSON.stringify({
        checkpoint: path,
        data: dataName,
        split,
        loss: r.loss,
        accuracy: r.accuracy,
        count: r.count,
        perClassAccuracy: r.perClassAccuracy ?? null,
      }, (_k, v) => typeof v === "number" && !Number.isFinite(v) ? String(v) : v));
    } else {
      io.out(
        `${dataName}/${split}: loss ${r.loss.toFixed(4)}  accuracy ${
          (100 * r.accuracy).toFixed(2)
        }%  (${r.count} samples)`,
      );
      if (r.perClassAccuracy) {
        const names = (set as { classNames?: string[] }).classNames;
        r.perClassAccuracy.forEach((a, c) =>
          io.out(`  ${(names?.[c] ?? String(c)).padEnd(12)} ${(100 * a).toFixed(2)}%`)
        );
      }
    }
    return 0;
  } finally {
    model?.dispose();
    rt.destroy();
  }
}

/** The `eval` subcommand. */
export const evalCommand: Command = {
  summary: "Evaluate a checkpoint: loss and accuracy on a dataset",
  args: "<checkpoint>",
  flags: evalFlags,
  run: runEval,
};
