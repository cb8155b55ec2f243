/**
 * knot: a small, pure-functional tensor library for Deno with reverse-mode
 * autodiff over parameter trees, built for parameter-efficient fine-tuning
 * research: Llama models from safetensors, and LoRA, VeRA and Tied-LoRA as
 * composable transforms of parameter trees.
 *
 * @example
 * ```ts
 * import { grad, sum, square, tensor } from "./mod.ts";
 * const g = grad((w) => sum(square(w)))(tensor([1, 2, 3]));
 * console.log(await g.data()); // Float32Array [2, 4, 6]
 * ```
 * @module
 */
import "./backends/cpu/mod.ts";
import "./backends/webgpu/mod.ts";

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
export type { Backend, BackendBuffer } from "./backends/backend.ts";

// Models, file formats, fine-tuning plans, optimizers and training.
export * from "./nn/mod.ts";
export * from "./io/mod.ts";
export * from "./peft/mod.ts";
export * from "./optim/mod.ts";
export * from "./train/mod.ts";
