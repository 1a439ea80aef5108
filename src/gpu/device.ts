/**
 * Adapter and device acquisition that works the same in Deno (wgpu) and in
 * browsers (`navigator.gpu`). Nothing here is Deno-only.
 *
 * @module
 */

/** Options for {@linkcode requestGpuDevice}. */
export interface DeviceOptions {
  /** Adapter preference passed to `requestAdapter`. */
  powerPreference?: GPUPowerPreference;
  /** Accept a fallback (software) adapter. Default true: CI has no GPU. */
  allowFallback?: boolean;
  /**
   * Limits to ask for. Each is clamped to what the adapter offers, so asking
   * for "as much as possible" is safe. Default: the larger buffer and
   * workgroup limits the kernels can use.
   */
  limits?: Record<string, number>;
}

/** What {@linkcode requestGpuDevice} found. */
export interface GpuDeviceInfo {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** Human-readable adapter description ("llvmpipe (LLVM 15.0.6, 256 bits)"). */
  description: string;
  isFallback: boolean;
}

const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
];

/** Thrown when no WebGPU adapter can be had; its message says how to get one. */
export class NoAdapterError extends Error {
  constructor(tried: string) {
    super(
      `No WebGPU adapter: ${tried}. To get one: install a GPU driver; on Linux without a GPU ` +
        `install Mesa's software Vulkan driver (apt-get install -y mesa-vulkan-drivers); in a ` +
        `browser use a WebGPU-enabled one (Chrome 113+, or Chromium with --enable-unsafe-webgpu).`,
    );
    this.name = "NoAdapterError";
  }
}

/**
 * Requests a WebGPU adapter and device, clamping every requested limit to the
 * adapter's own so that the request cannot fail for asking too much.
 *
 * @param options adapter preference and limits
 * @returns the device, its adapter and a description
 * @throws NoAdapterError when WebGPU or an adapter is missing
 * @example
 * ```ts
 * const { device, description } = await requestGpuDevice();
 * console.log(description);
 * ```
 */
export async function requestGpuDevice(options: DeviceOptions = {}): Promise<GpuDeviceInfo> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new NoAdapterError("navigator.gpu is not defined in this runtime");
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference });
  } catch (e) {
    throw new NoAdapterError(`navigator.gpu.requestAdapter() threw: ${(e as Error).message}`);
  }
  if (!adapter) throw new NoAdapterError("navigator.gpu.requestAdapter() returned null");
  // deno-lint-ignore no-explicit-any
  const info = (adapter as any).info ?? {};
  // deno-lint-ignore no-explicit-any
  const isFallback = Boolean(info.isFallbackAdapter ?? (adapter as any).isFallbackAdapter);
  if (isFallback && options.allowFallback === false) {
    throw new NoAdapterError(
      "only a fallback (software) adapter was found and allowFallback is false",
    );
  }
  const requiredLimits: Record<string, number> = {};
  const wanted = options.limits ?? {};
  const names = new Set([...WANTED_LIMITS, ...Object.keys(wanted)]);
  for (const name of names) {
    // deno-lint-ignore no-explicit-any
    const have = (adapter.limits as any)[name] as number | undefined;
    if (have === undefined) continue;
    requiredLimits[name] = wanted[name] === undefined ? have : Math.min(wanted[name], have);
  }
  const features: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) features.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  const description = [info.description, info.vendor, info.architecture, info.device]
    // wgpu reports numeric PCI ids as vendor and device ("65541", "0"): they tell a reader nothing.
    .filter((s: unknown) =>
      typeof s === "string" && s.length > 0 && !/^(\d+|0x[0-9a-f]+)$/i.test(s)
    )
    .join(" / ") || "unknown adapter";
  return { device, adapter, description, isFallback };
}
