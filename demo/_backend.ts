/// <reference lib="dom" />
/**
 * Which backend a demo page computes on, chosen once per page.
 *
 * WebGPU first, when `navigator.gpu` exists and gives an adapter (a secure context, i.e.
 * https:// or http://127.0.0.1, and a browser with WebGPU on); otherwise regula's WebAssembly
 * CPU backend, when the engine has WebAssembly 128-bit SIMD (every current browser). The Wasm
 * backend uses worker threads when the page is cross-origin isolated (the demo server,
 * scripts/demo.ts, sends COOP/COEP) and one thread otherwise (it then says why once in the
 * console). Only with neither does the page show a plain message instead of the app.
 *
 * When both exist, the page offers a switch (`#backend-switch`): it reloads the page with
 * `?backend=wasm` or `?backend=webgpu`, which {@linkcode chooseBackend} honours. A software
 * WebGPU adapter (SwiftShader, as in headless Chromium) still counts as WebGPU here: the page
 * runs on what the browser offers as WebGPU unless asked otherwise.
 *
 * @module
 */

import { type Backend, Runtime, simdSupported, WasmRuntime } from "../mod.ts";

/** The backends a page can run on. */
export type PageBackendKind = "webgpu" | "wasm";

/** A backend the page runs on. */
export interface PageBackend {
  kind: PageBackendKind;
  /** The runtime every model of the page uses. */
  rt: Backend;
  /**
   * What the page shows, e.g. "WebGPU (google / swiftshader, a software adapter)" or
   * "WebAssembly SIMD, 4 threads (the calling thread spin-waits)".
   */
  label: string;
  /** Why WebGPU is not used (null on WebGPU). */
  noWebGpu: string | null;
  /** The other backend when this browser has it too (the switch offers it), else null. */
  other: PageBackendKind | null;
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

/** The URL query parameter that picks the backend. */
const PARAM = "backend";

/**
 * The backend the page's URL asks for (`?backend=wasm|webgpu`), or null.
 * @returns the requested kind, or null when the URL names none (or an unknown one)
 */
export function requestedBackend(): PageBackendKind | null {
  const v = new URLSearchParams(location.search).get(PARAM);
  return v === "wasm" || v === "webgpu" ? v : null;
}

/** Null when WebGPU gives an adapter here, else why not (in words for the page). */
async function webGpuMissing(): Promise<string | null> {
  const gpu = (navigator as unknown as NavigatorGpu).gpu;
  if (!gpu) {
    return globalThis.isSecureContext
      ? "this browser has no WebGPU (navigator.gpu is undefined)"
      : "this page is not a secure context (open it from https:// or http://127.0.0.1), " +
        "so navigator.gpu is undefined";
  }
  const adapter = await gpu.requestAdapter().catch(() => null);
  return adapter
    ? null
    : "navigator.gpu gave no adapter (WebGPU is turned off or the GPU is blocklisted)";
}

/**
 * Picks the backend: WebGPU when an adapter is there, else WebAssembly when the engine has SIMD,
 * else none (with the reason). `prefer` wins when that backend is available.
 * @param prefer the backend asked for (default: the URL's `?backend=`), or null
 * @returns the backend, or why there is none
 */
export async function chooseBackend(
  prefer: PageBackendKind | null = requestedBackend(),
): Promise<PageBackend | NoBackend> {
  const noGpu = await webGpuMissing();
  const wasm = simdSupported();
  if (noGpu === null && (prefer !== "wasm" || !wasm)) {
    const rt = await Runtime.create({ backend: "webgpu" });
    return {
      kind: "webgpu",
      rt,
      label: `WebGPU (${rt.description}${rt.isCpuAdapter ? ", a software adapter" : ""})`,
      noWebGpu: null,
      other: wasm ? "wasm" : null,
    };
  }
  if (wasm) {
    const rt = await Runtime.create({ backend: "wasm" });
    return {
      kind: "wasm",
      rt,
      label: rt.description,
      noWebGpu: noGpu,
      other: noGpu === null ? "webgpu" : null,
    };
  }
  return {
    kind: "none",
    reason: `WebGPU is not available: ${noGpu}. And this browser's WebAssembly has no 128-bit ` +
      `SIMD, which regula's CPU backend needs, so this page cannot run models here. Use a ` +
      `current browser: any recent Chrome, Edge, Firefox or Safari has WebAssembly SIMD, and ` +
      `Chrome or Edge 113+, Safari 26+ or Firefox 141+ on Windows also WebGPU.`,
  };
}

/**
 * Lets the browser handle events and repaint before going on. On WebAssembly every op runs at
 * once and `read()` resolves at once, so a loop of `await`s over ops never gives the page a turn;
 * the toy page calls this between training frames so that its maps and curves update live and
 * Stop is heard.
 * @returns a promise resolved in a later task
 */
export function yieldToPage(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
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

const NAMES: Record<PageBackendKind, string> = { webgpu: "WebGPU", wasm: "WebAssembly" };

/** The switch between the two backends: a select that reloads the page with `?backend=`. */
function backendSwitch(current: PageBackendKind): HTMLElement {
  const label = document.createElement("label");
  label.className = "backend-switch";
  label.append("Backend: ");
  const select = document.createElement("select");
  select.id = "backend-switch";
  for (const kind of ["webgpu", "wasm"] as const) {
    const o = document.createElement("option");
    o.value = kind;
    o.textContent = NAMES[kind];
    o.selected = kind === current;
    select.append(o);
  }
  select.addEventListener("change", () => {
    const url = new URL(location.href);
    url.searchParams.set(PARAM, select.value);
    location.assign(url.href);
  });
  label.append(select);
  return label;
}

/**
 * Chooses the backend and writes it into the page's `#backend` element (class `ok` or
 * `missing`), with the switch when both backends exist; marks `body` with `data-backend`
 * ("webgpu", "wasm" or "none") and, on Wasm, `data-threads`.
 * @returns the backend, or null when there is none (the page then shows only the message)
 */
export async function startBackend(): Promise<PageBackend | null> {
  const el = document.getElementById("backend")!;
  const b = await chooseBackend();
  if (b.kind === "none") {
    el.textContent = b.reason;
    el.className = "backend missing";
    document.body.dataset.backend = "none";
    document.body.dataset.state = "no-backend";
    return null;
  }
  const text = document.createElement("span");
  text.textContent = `Running on ${b.label}.` +
    (b.noWebGpu ? ` No WebGPU: ${b.noWebGpu}.` : "");
  el.replaceChildren(text);
  if (b.other) el.append(" ", backendSwitch(b.kind));
  el.className = "backend ok";
  document.body.dataset.backend = b.kind;
  if (b.rt instanceof WasmRuntime) document.body.dataset.threads = String(b.rt.threads);
  return b;
}
