/**
 * `cli.ts info`: both backends (the WebGPU adapter and its limits, the WebAssembly engine and its
 * threads), which one `--backend auto` picks, and the kernel self-check on each.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import type { Command, Io } from "./args.ts";
import { UsageError } from "./args.ts";
import { isSoftwareAdapter, Runtime } from "../src/gpu/runtime.ts";
import { NoAdapterError } from "../src/gpu/device.ts";
import { WasmRuntime } from "../src/wasm/runtime.ts";
import { simdSupported } from "../src/wasm/module.ts";
import type { Backend } from "../src/backend.ts";
import { type CheckResult, selfCheck } from "../src/selfcheck.ts";

/** The limits worth knowing when sizing models and batches. */
const KEY_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
] as const;

const WHICH = ["all", "auto", "webgpu", "wasm"];

function fmtCheck(r: CheckResult, width: number): string {
  const dots = `${r.name} `.padEnd(width + 4, ".");
  if (!r.ok) return `  ${dots} FAILED: ${r.detail}`;
  const err = r.maxError === 0 ? "0" : r.maxError.toExponential(1);
  return `  ${dots} ok (max err ${err}, ${Math.round(r.ms)} ms)`;
}

/** What info found out about one backend. */
interface BackendInfo {
  available: boolean;
  /** Why not, when unavailable. */
  reason?: string;
  description?: string;
  details: Record<string, unknown>;
  checks: CheckResult[];
}

async function probe(
  kind: "webgpu" | "wasm",
  threads: number | undefined,
): Promise<{ rt: Backend | null; info: BackendInfo }> {
  try {
    if (kind === "webgpu") {
      const rt = await Runtime.create();
      const limits: Record<string, number> = {};
      for (const k of KEY_LIMITS) limits[k] = rt.device.limits[k];
      return {
        rt,
        info: {
          available: true,
          description: rt.description,
          details: {
            isFallbackAdapter: rt.isFallback,
            software: isSoftwareAdapter(rt.description, rt.isFallback),
            limits,
          },
          checks: [],
        },
      };
    }
    const rt = await WasmRuntime.create({ threads, warn: false });
    return {
      rt,
      info: {
        available: true,
        description: rt.description,
        details: {
          threads: rt.threads,
          threadsNote: rt.threadsNote,
          simd: true,
          relaxedSimd: rt.relaxedSimd,
        },
        checks: [],
      },
    };
  } catch (e) {
    if (kind === "webgpu" && !(e instanceof NoAdapterError)) throw e;
    return {
      rt: null,
      info: { available: false, reason: (e as Error).message, details: {}, checks: [] },
    };
  }
}

/** The backend `--backend auto` picks, by the rule of `Runtime.create` (src/gpu/runtime.ts). */
function autoPick(gpu: BackendInfo): { pick: "webgpu" | "wasm" | "none"; why: string } {
  if (gpu.available && !gpu.details.software) {
    return { pick: "webgpu", why: "a hardware GPU adapter" };
  }
  if (simdSupported()) {
    return {
      pick: "wasm",
      why: gpu.available
        ? "only a software WebGPU adapter, which the WebAssembly backend outruns on the same cores"
        : "no WebGPU adapter",
    };
  }
  return gpu.available
    ? { pick: "webgpu", why: "a software adapter, and no WebAssembly SIMD" }
    : { pick: "none", why: "no WebGPU adapter and no WebAssembly SIMD" };
}

/** `cli.ts info`. */
export const infoCommand: Command = {
  summary:
    "Show both backends (WebGPU adapter and limits, WebAssembly threads) and self-check them",
  flags: {
    json: { type: "boolean", help: "Print one JSON object instead of text." },
    "skip-checks": { type: "boolean", help: "Only describe the backends; run no kernel." },
    only: { type: "string", help: "Run only the checks whose name starts with this (comma list)." },
    backend: {
      type: "string",
      default: "all",
      metavar: "all|auto|webgpu|wasm",
      help: "Which backends to self-check: all that are available, the one auto picks, or one.",
    },
    threads: {
      type: "number",
      metavar: "n",
      help: "Threads of the WebAssembly backend (default: the logical cores, at most 8).",
    },
  },
  async run({ flags }, io: Io) {
    const which = String(flags.backend);
    if (!WHICH.includes(which)) {
      throw new UsageError(`Unknown backend '${which}' for '--backend': use ${WHICH.join(", ")}`);
    }
    const threads = flags.threads as number | undefined;
    if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
      throw new UsageError(`Flag '--threads' must be a positive integer, got ${threads}`);
    }
    const only = typeof flags.only === "string"
      ? flags.only.split(",").map((s) => s.trim())
      : undefined;
    const gpu = await probe("webgpu", threads);
    const wasm = await probe("wasm", threads);
    const auto = autoPick(gpu.info);
    const wanted = which === "all" ? ["webgpu", "wasm"] : which === "auto" ? [auto.pick] : [which];
    const found = { webgpu: gpu, wasm } as const;
    let failed = 0, passed = 0;
    try {
      for (const kind of ["webgpu", "wasm"] as const) {
        const { rt, info } = found[kind];
        if (!wanted.includes(kind)) continue;
        if (!rt) {
          // Asked for by name (or the only one auto could pick): its absence is the failure.
          if (which !== "all") throw new Error(info.reason);
          continue;
        }
        if (!flags["skip-checks"]) info.checks = await selfCheck(rt, { only });
        const bad = info.checks.filter((c) => !c.ok).length;
        failed += bad;
        passed += info.checks.length - bad;
      }
    } finally {
      gpu.rt?.destroy();
      wasm.rt?.destroy();
    }
    if (flags.json) {
      const one = (i: BackendInfo) => ({
        available: i.available,
        ...(i.available ? { description: i.description } : { reason: i.reason }),
        ...i.details,
        checks: i.checks,
      });
      io.out(JSON.stringify(
        {
          version: denoJson.version,
          runtime: `deno ${Deno.version.deno}`,
          auto: auto.pick,
          backends: { webgpu: one(gpu.info), wasm: one(wasm.info) },
          passed,
          failed,
        },
        (_k, v) => typeof v === "number" && !Number.isFinite(v) ? String(v) : v,
        2,
      ));
      return failed ? 1 : 0;
    }
    io.out(`regula ${denoJson.version} (deno ${Deno.version.deno})`);
    const g = gpu.info;
    if (g.available) {
      io.out(
        `webgpu    ${g.description}${
          g.details.software ? " (software adapter: correct but slow)" : ""
        }`,
      );
      io.out("  limits");
      const limits = g.details.limits as Record<string, number>;
      for (const [k, v] of Object.entries(limits)) io.out(`    ${k.padEnd(36)} ${v}`);
    } else {
      io.out(`webgpu    none: ${g.reason}`);
    }
    const w = wasm.info;
    io.out(`wasm      ${w.available ? w.description : `unavailable: ${w.reason}`}`);
    if (w.available) {
      io.out(
        w.details.relaxedSimd
          ? "    relaxed SIMD: yes (GEMM and convolution multiply-adds fused: f32x4.relaxed_madd)"
          : "    relaxed SIMD: no (plain 128-bit SIMD kernels: a multiply and an add)",
      );
    }
    io.out(`auto      ${auto.pick} (${auto.why})`);
    for (const kind of ["webgpu", "wasm"] as const) {
      const checks = found[kind].info.checks;
      if (!checks.length) continue;
      io.out(`self-check on ${kind}`);
      const width = Math.max(...checks.map((c) => c.name.length));
      for (const c of checks) io.out(fmtCheck(c, width));
      const bad = checks.filter((c) => !c.ok).length;
      io.out(`${checks.length - bad}/${checks.length} checks passed on ${kind}`);
    }
    return failed ? 1 : 0;
  },
};
