/**
 * PyTorch on the CPU as a peer of the training benchmarks (bench/wasm_train.ts, bench/train.ts):
 * a tools/torch_train.py process per configuration, driven over stdin so that its rounds
 * interleave with the other implementations'; and {@linkcode Timed}, the round-timed interface
 * the benchmarks time every implementation through.
 *
 * @module
 */

import { timeRound, type TrainConfig, type Trainer } from "./common.ts";
import { libblas } from "../wasm_gemm.ts";

/** An implementation under test, timed in rounds. */
export interface Timed {
  name: string;
  /** Runs `steps` steps and waits for them; ms per step. */
  round(steps: number): Promise<number>;
  loss(): Promise<number>;
  dispose(): Promise<void>;
}

export function fromTrainer(t: Trainer, name = t.name): Timed {
  return {
    name,
    round: (steps) => timeRound(t, steps),
    loss: () => t.loss(),
    dispose: () => Promise.resolve(t.dispose()),
  };
}

/** Lines of a byte stream, one at a time. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  async next(): Promise<string | null> {
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        return line;
      }
      const { value, done } = await this.#reader.read();
      if (done) return null;
      this.#buffer += value;
    }
  }
}

let info = "";

/** PyTorch's BLAS and version, as the last tools/torch_train.py started reported them. */
export function torchInfo(): string {
  return info;
}

/**
 * PyTorch on the CPU at `threads` threads: a tools/torch_train.py process for this configuration,
 * sent one `round N` line per round (it times its own steps). With `jacobian`, its step adds the
 * Jacobian regularizer (λ, one projection; named `pytorch-cpu-Nt-jr`).
 */
export async function torchTimed(
  cfg: TrainConfig,
  threads: number,
  opts: { jacobian?: { lambda: number } } = {},
): Promise<Timed> {
  const script = decodeURIComponent(
    new URL("../../tools/torch_train.py", import.meta.url).pathname,
  );
  const python = Deno.env.get("REGULA_TORCH_PYTHON") ?? "/usr/bin/python3";
  const spec = cfg.model === "ddnet" ? { kind: "ddnet", dropout: 0.5 } : { kind: cfg.model };
  const child = new Deno.Command(python, {
    args: [
      script,
      "--spec",
      JSON.stringify(spec),
      "--batch",
      `${cfg.batch}`,
      "--shape",
      cfg.inputShape.join(","),
      "--classes",
      `${cfg.classes}`,
      "--lr",
      `${cfg.lr}`,
      "--momentum",
      `${cfg.momentum}`,
      "--threads",
      `${threads}`,
      ...(opts.jacobian ? ["--jacobian", `${opts.jacobian.lambda}`] : []),
    ],
    // OpenBLAS (where libblas.so.3 is OpenBLAS) has its own thread pool, which
    // torch.set_num_threads does not size here: pin it to the same count.
    env: { OPENBLAS_NUM_THREADS: `${threads}` },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = new Lines(child.stdout);
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  const fail = async (what: string): Promise<never> => {
    await writer.close().catch(() => {});
    const status = await child.status;
    const err = (await stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`tools/torch_train.py ${what} (exit ${status.code}): ${err}`);
  };
  const reply = async (): Promise<Record<string, unknown>> => {
    const line = await lines.next();
    if (line === null) return await fail("stopped");
    return JSON.parse(line);
  };
  const ready = await reply();
  info = `PyTorch ${ready.torch} (BLAS_INFO=${ready.blas}, libblas.so.3 ${libblas()}, ` +
    `convolutions by oneDNN where torch has it)`;
  if (ready.threads !== threads) info += `; it runs ${ready.threads} threads, not ${threads}`;
  let last = NaN;
  return {
    name: `pytorch-cpu-${threads}t${opts.jacobian ? "-jr" : ""}`,
    async round(steps) {
      await writer.write(encoder.encode(`round ${steps}\n`));
      const r = await reply();
      if (typeof r.ms !== "number") return await fail(`answered ${JSON.stringify(r)}`);
      last = r.loss as number;
      return r.ms;
    },
    loss: () => Promise.resolve(last),
    async dispose() {
      await writer.write(encoder.encode("quit\n")).catch(() => {});
      await writer.close().catch(() => {});
      await child.status;
      await stderr;
    },
  };
}
