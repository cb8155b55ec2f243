/**
 * Acquiring a WebGPU device for the backend: adapter, device with the
 * adapter's own limits (so large buffers are allowed where the adapter allows
 * them), and clear Errors when there is no WebGPU at all.
 * @module
 */
import { CPU_HINT, Engine, type EngineLimits } from "./engine.ts";
import { WebGpuBackend } from "./backend.ts";

/** Options of {@link createWebGpuBackend}. */
export interface WebGpuOptions {
  /**
   * The GPU object to use instead of `navigator.gpu` (tests pass `undefined`
   * or a stub whose `requestAdapter()` resolves to null to simulate a machine
   * without WebGPU). When the key is absent, `navigator.gpu` is used.
   */
  gpu?: GPU | undefined;
  /** Passed to `requestAdapter`. */
  powerPreference?: GPUPowerPreference;
}

/** The adapter limits the backend reads; all are requested from the device as the adapter reports them. */
const LIMITS: readonly (keyof EngineLimits)[] = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "minStorageBufferOffsetAlignment",
  "maxComputeWorkgroupsPerDimension",
  "maxComputeWorkgroupStorageSize",
  "maxStorageBuffersPerShaderStage",
];

/** Creates a WebGPU backend on the first adapter; throws a clear Error when WebGPU is unavailable. */
export async function createWebGpuBackend(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const gpu: GPU | undefined = "gpu" in opts ? opts.gpu : (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) {
    throw new Error(`webgpu: WebGPU is not available here (navigator.gpu is undefined); ${CPU_HINT}`);
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter(opts.powerPreference ? { powerPreference: opts.powerPreference } : undefined);
  } catch (e) {
    throw new Error(`webgpu: requesting a GPU adapter failed (${e instanceof Error ? e.message : e}); ${CPU_HINT}`);
  }
  if (!adapter) {
    throw new Error(
      `webgpu: no WebGPU adapter was found on this machine (requestAdapter() returned null); ${CPU_HINT}`,
    );
  }
  // Ask for the adapter's limits: the defaults (128 MiB bindings, 256 MiB buffers) may be lower.
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[k];
    if (typeof v === "number") requiredLimits[k] = v;
  }
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits });
  } catch (e) {
    throw new Error(`webgpu: requesting a GPU device failed (${e instanceof Error ? e.message : e}); ${CPU_HINT}`);
  }
  // Release the device when the program (or test worker) ends, before the runtime tears down its GPU state.
  // (This did not stop the occasional crash at the exit of `deno test` with WebGPU; see the README, Development.)
  globalThis.addEventListener?.("unload", () => {
    try {
      device.destroy();
    } catch { /* already gone */ }
  });
  const limits = {} as EngineLimits;
  for (const k of LIMITS) limits[k] = (device.limits as unknown as Record<string, number>)[k];
  const backend = new WebGpuBackend(new Engine(device, limits));
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  backend.description = info ? (info.description || info.vendor || "unknown adapter") : "unknown adapter";
  return backend;
}
