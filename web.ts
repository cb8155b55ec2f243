/**
 * knot for the browser: the entry that `deno task bundle` builds into
 * `dist/knot.js`. The same API as mod.ts minus everything that needs the file
 * system or `Deno.*` (loading and saving by path, checkpoints, the training
 * loop, tasks, progress bars). Checkpoints come in as bytes instead:
 * {@link parseSafetensors}, {@link llamaFromBytes}, `new Tokenizer(json, config)`,
 * and adapters go out as bytes with {@link adapterToBytes}.
 *
 * Re-exports only (plus the two imports that register the backends).
 * @example
 * ```ts ignore
 * import { setBackend, llamaFromBytes, Tokenizer } from "./dist/knot.js";
 * await setBackend("webgpu");
 * const bytes = new Uint8Array(await (await fetch("model.safetensors")).arrayBuffer());
 * const { config, params } = llamaFromBytes(await (await fetch("config.json")).json(), bytes);
 * ```
 * @module
 */
import "./backends/cpu/mod.ts";
import "./backends/webgpu/mod.ts";

// Tensors, ops, memory, randomness, autodiff, trees.
export { Tensor } from "./core/tensor.ts";
export type { NestedArray } from "./core/tensor.ts";
export type { DType, FileDType, TypedArray } from "./core/dtype.ts";
export type { Shape } from "./core/shape.ts";
export { getBackend, listBackends, registerBackend, setBackend } from "./core/runtime.ts";
export { dispose, keep, liveBuffers, scope } from "./core/scope.ts";
export { allocationLimit, setAllocationLimit } from "./core/alloc.ts";
export * from "./core/ops/index.ts";
export { bernoulli, foldIn, kaimingUniform, Key, key, normal, splitKey, uniform } from "./core/random.ts";
export { split } from "./core/split.ts";
export * as tree from "./core/tree.ts";
export type { Tree, Where } from "./core/tree.ts";
export { grad, stopGradient, valueAndGrad, vjp } from "./autodiff/grad.ts";
export type { GradOptions, GradTree } from "./autodiff/grad.ts";
export { customVjp, noGrad } from "./autodiff/custom.ts";
export { checkGrad } from "./autodiff/check.ts";
export type { CheckGradOptions, CheckGradReport } from "./autodiff/check.ts";

// Backends.
export type { Backend, BackendBuffer } from "./backends/backend.ts";
export { CpuBackend } from "./backends/cpu/mod.ts";
export { createWebGpuBackend, WebGpuBackend, type WebGpuOptions } from "./backends/webgpu/mod.ts";

// Models, PEFT plans, optimizers.
export * from "./nn/mod.ts";
export * from "./peft/mod.ts";
export * from "./optim/mod.ts";

// Training: batches, the LM loss, the step (the loop and checkpoints write files: not here), SVG charts.
export * from "./train/batch.ts";
export * from "./train/loss.ts";
export * from "./train/step.ts";
export { type ChartOptions, lineChart, type Series, smooth } from "./train/plot.ts";

// I/O on bytes: safetensors in memory, HF Llama and adapters as bytes, tokenizers from parsed JSON.
export {
  DTYPE_SIZES,
  encodeSafetensors,
  MAX_HEADER_BYTES,
  parseSafetensors,
  type RawTensor,
  rawToTensor,
  type SaveOptions,
  serializeSafetensors,
  type TensorInfo,
} from "./io/safetensors.ts";
export {
  type HfLoadOptions,
  hfTensorMap,
  llamaFromBytes,
  type LoadedLlama,
  parseHfConfig,
  toHfConfig,
} from "./io/hf.ts";
export { type AdapterBytes, type AdapterJson, adapterToBytes, type BaseModelInfo } from "./io/adapter.ts";
export { type EncodeOptions, Tokenizer } from "./io/tokenizer.ts";
