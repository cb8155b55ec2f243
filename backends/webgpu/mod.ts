/**
 * Registers the WebGPU backend under the name "webgpu". Importing this module
 * only registers an async factory: nothing touches `navigator.gpu` until
 * `await setBackend("webgpu")`, which throws a clear Error (suggesting
 * `setBackend("cpu")`) where there is no adapter. `createWebGpuBackend`
 * makes a backend directly, e.g. with a stand-in `gpu` object in tests.
 * @module
 */
import { registerBackend } from "../../core/runtime.ts";
import { createWebGpuBackend, type WebGpuOptions } from "./device.ts";
import { WebGpuBackend } from "./backend.ts";

export { createWebGpuBackend, WebGpuBackend, type WebGpuOptions };
registerBackend("webgpu", () => createWebGpuBackend());
