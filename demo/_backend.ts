/// <reference lib="dom" />
/**
 * Which backend a demo page computes on, chosen once per page.
 *
 * Today there is one: WebGPU, when `navigator.gpu` exists and gives an adapter (a secure
 * context, i.e. https:// or http://127.0.0.1, and a browser with WebGPU on). regula's
 * WebAssembly CPU backend does not exist yet; when it does, {@linkcode chooseBackend} is the one
 * place that tries it after WebGPU (see the NOTE below), and the pages already show whatever
 * `label` it returns.
 *
 * @module
 */

import { Runtime } from "../mod.ts";

/** A backend the page can run on. */
export interface Backend {
  kind: "webgpu";
  /** The runtime every model of the page uses. */
  rt: Runtime;
  /** What the page shows, e.g. "WebGPU (google / swiftshader, software adapter)". */
  label: string;
}

/** No backend: why, in words for the page. */
export interface NoBackend {
  kind: "none";
  /** What is missing and what to do. */
  reason: string;
}

interface NavigatorGpu {
  gpu?: { requestAdapter(): Promise<unknown | null> };
}

/**
 * Picks the backend: WebGPU when an adapter is there, else none (with the reason).
 * @returns the backend, or why there is none
 */
export async function chooseBackend(): Promise<Backend | NoBackend> {
  const gpu = (navigator as unknown as NavigatorGpu).gpu;
  let why: string;
  if (!gpu) {
    why = globalThis.isSecureContext
      ? "this browser has no WebGPU (navigator.gpu is undefined)"
      : "this page is not a secure context (open it from https:// or http://127.0.0.1), " +
        "so navigator.gpu is undefined";
  } else {
    const adapter = await gpu.requestAdapter().catch(() => null);
    if (adapter) {
      const rt = await Runtime.create();
      return {
        kind: "webgpu",
        rt,
        label: `WebGPU (${rt.description}${rt.isCpuAdapter ? ", a software adapter" : ""})`,
      };
    }
    why = "navigator.gpu gave no adapter (WebGPU is turned off or the GPU is blocklisted)";
  }
  // NOTE: the WebAssembly backend (src/wasm, not written yet) goes here: try it before giving up.
  return {
    kind: "none",
    reason: `WebGPU is not available: ${why}. regula's WebAssembly backend does not exist yet, ` +
      `so this page cannot run models in this browser. Use a browser with WebGPU (Chrome or ` +
      `Edge 113+, Safari 26+, Firefox 141+ on Windows), or start Chromium with ` +
      `--enable-unsafe-webgpu.`,
  };
}

/**
 * Shows an error in the page's `#error` box and marks the page's state "error".
 * @param e what went wrong
 */
export function showError(e: unknown): void {
  const box = document.getElementById("error")!;
  box.textContent = `Error: ${(e as Error).message ?? e}`;
  box.hidden = false;
  document.body.dataset.state = "error";
}

/**
 * Chooses the backend and writes it into the page's `#backend` element (class `ok` or
 * `missing`).
 * @returns the backend, or null when there is none (the page then shows only the message)
 */
export async function startBackend(): Promise<Backend | null> {
  const el = document.getElementById("backend")!;
  const b = await chooseBackend();
  if (b.kind === "none") {
    el.textContent = b.reason;
    el.className = "backend missing";
    document.body.dataset.backend = "none";
    document.body.dataset.state = "no-backend";
    return null;
  }
  el.textContent = `Running on ${b.label}.`;
  el.className = "backend ok";
  document.body.dataset.backend = b.kind;
  return b;
}
