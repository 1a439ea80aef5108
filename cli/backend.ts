/**
 * `--backend` and `--threads`, the flags every command that computes takes, and the one place the
 * CLI creates its {@linkcode Backend}.
 *
 * @module
 */

import { type FlagSpec, type ParsedArgs, UsageError } from "./args.ts";
import { type BackendChoice, Runtime } from "../src/gpu/runtime.ts";
import type { Backend } from "../src/backend.ts";

/** The backends `--backend` accepts. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ["auto", "webgpu", "wasm"];

/**
 * The default of `--backend`: the environment variable `REGULA_BACKEND` when it is set (the
 * test suite sets it for each of its two passes), else "auto".
 */
function defaultBackend(): string {
  try {
    return Deno.env.get("REGULA_BACKEND") || "auto";
  } catch {
    return "auto"; // no --allow-env
  }
}

/** `--backend` and `--threads`. */
export const BACKEND_FLAGS: Record<string, FlagSpec> = {
  backend: {
    type: "string",
    default: defaultBackend(),
    metavar: "auto|webgpu|wasm",
    help: "Where to compute: auto (a hardware GPU if there is one, else the WebAssembly CPU " +
      "backend), webgpu (any WebGPU adapter, software ones included) or wasm. Default: " +
      "$REGULA_BACKEND, else auto.",
  },
  threads: {
    type: "number",
    metavar: "n",
    help: "Threads of the WebAssembly backend (default: the logical cores, at most 8).",
  },
};

/**
 * Checks `--backend` and `--threads` without creating anything.
 * @param flags parsed flags of a command with {@linkcode BACKEND_FLAGS}
 * @returns the backend choice and thread count
 * @throws UsageError naming the bad value and the accepted ones
 */
export function backendFlags(
  flags: ParsedArgs["flags"],
): { backend: BackendChoice; threads: number | undefined } {
  const backend = String(flags.backend ?? defaultBackend());
  if (!(BACKEND_CHOICES as readonly string[]).includes(backend)) {
    throw new UsageError(
      `Unknown backend '${backend}' for '--backend' (or $REGULA_BACKEND): use ` +
        `${BACKEND_CHOICES.join(", ")}`,
    );
  }
  const threads = flags.threads as number | undefined;
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new UsageError(`Flag '--threads' must be a positive integer, got ${threads}`);
  }
  return { backend: backend as BackendChoice, threads };
}

/**
 * Creates the backend the flags ask for.
 * @param flags parsed flags of a command with {@linkcode BACKEND_FLAGS}
 * @returns the backend; the caller destroys it
 */
export function createBackend(flags: ParsedArgs["flags"]): Promise<Backend> {
  return Runtime.create(backendFlags(flags));
}
