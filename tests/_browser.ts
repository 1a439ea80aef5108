/**
 * Headless Chromium for the browser tests (tests/browser_test.ts, tests/demo_test.ts), driven by
 * Playwright (`npm:playwright-core`).
 *
 * What makes WebGPU come up in headless Chromium on a machine without a GPU
 * (Debian's chromium 156, checked by hand):
 * - `--enable-unsafe-webgpu` is required (without it requestAdapter() returns
 *   null); Chromium then picks SwiftShader, its own software Vulkan, and
 *   reports it as a fallback adapter ("google / swiftshader"). It does not pick
 *   Mesa's lavapipe. `--enable-features=Vulkan`, `--use-webgpu-adapter=swiftshader`
 *   and `--use-angle=swiftshader` change nothing here.
 * - the page must be a secure context: http://127.0.0.1 is, about:blank is
 *   not (navigator.gpu is undefined there).
 *
 * Chromium is /usr/bin/chromium (Debian: `apt-get install -y chromium`) or
 * $REGULA_CHROMIUM. Without it the tests fail and say how to install it;
 * REGULA_SKIP_BROWSER=1 skips them instead.
 *
 * @module
 */
import { type BrowserContext, chromium } from "playwright-core";

/** True when REGULA_SKIP_BROWSER=1: the browser tests are skipped. */
export const SKIP_BROWSER = Deno.env.get("REGULA_SKIP_BROWSER") === "1";

/** The Chromium binary the tests drive. */
export const CHROMIUM = Deno.env.get("REGULA_CHROMIUM") ?? "/usr/bin/chromium";

/** Flags for headless Chromium with WebGPU on a software adapter (see the module doc). */
export const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** The same flags without WebGPU: `navigator.gpu.requestAdapter()` then returns null. */
export const CHROMIUM_ARGS_NO_WEBGPU = CHROMIUM_ARGS.filter((a) =>
  a !== "--enable-unsafe-webgpu" && a !== "--enable-features=Vulkan"
);

/**
 * Why Chromium cannot be driven, or null when it can.
 * @returns a message saying how to install or point at Chromium, or null
 */
export async function chromiumMissing(): Promise<string | null> {
  try {
    const st = await Deno.stat(CHROMIUM);
    if (st.isFile) return null;
  } catch { /* reported below */ }
  return `Chromium not found at ${CHROMIUM}. Install it (Debian/Ubuntu: apt-get install -y chromium, ` +
    `as .ci/run does), point REGULA_CHROMIUM at a Chromium binary, or set REGULA_SKIP_BROWSER=1 ` +
    `to skip the browser tests.`;
}

/** Options of {@linkcode launchChromium}. */
export interface LaunchOptions {
  /** Enable WebGPU (SwiftShader). Default true. */
  webgpu?: boolean;
  /** Viewport size. Default Playwright's (1280 x 720). */
  viewport?: { width: number; height: number };
}

/**
 * Starts headless Chromium with a fresh profile in `profileDir`; the caller closes the context.
 * @param profileDir an empty directory for the browser profile
 * @param opts WebGPU on or off, viewport
 * @returns the browser context
 */
export function launchChromium(
  profileDir: string,
  opts: LaunchOptions = {},
): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: opts.webgpu === false ? CHROMIUM_ARGS_NO_WEBGPU : CHROMIUM_ARGS,
    timeout: 60_000,
    viewport: opts.viewport,
  });
}
