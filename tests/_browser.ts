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
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { assert } from "./_util.ts";

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

/**
 * Serves `handler` on 127.0.0.1, opens its "/" in headless Chromium (a fresh profile) and runs
 * `fn` on the page, with the page's console and errors collected in `logs`; then closes both.
 * Fails (with how to install Chromium) when Chromium is missing.
 */
export async function withChromiumPage<T>(
  handler: (req: Request) => Response,
  fn: (page: Page, logs: string[]) => Promise<T>,
  opts: LaunchOptions = {},
): Promise<T> {
  const missing = await chromiumMissing();
  if (missing) assert.fail(missing);
  const tmp = await Deno.makeTempDir({ prefix: "regula_chromium_" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  const logs: string[] = [];
  try {
    const context = await launchChromium(`${tmp}/profile`, opts);
    try {
      const page = await context.newPage();
      page.on("console", (m) => logs.push(`console.${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
      await page.goto(`http://127.0.0.1:${server.addr.port}/`);
      return await fn(page, logs);
    } finally {
      await context.close();
    }
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}
