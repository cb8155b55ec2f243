/**
 * knot: a small, pure-functional tensor library for Deno with reverse-mode
 * autodiff over parameter trees, built for parameter-efficient fine-tuning
 * research: Llama models from safetensors, and LoRA, VeRA and Tied-LoRA as
 * composable transforms of parameter trees.
 *
 * The top level holds tensors and their ops, the function transforms
 * (`grad`, `valueAndGrad`, `vjp`, `checkGrad`, `jit`), memory (`scope`, `dispose`)
 * and the backend choice. Everything else is a namespace, as in JAX and
 * Optax: {@link nn}, {@link random}, {@link tree}, {@link llama},
 * {@link peft}, {@link optim}. File formats and training (which read and
 * write files) have their own entries, `@knot/knot/io` and
 * `@knot/knot/train`; the browser build is `@knot/knot/web`.
 *
 * @example
 * ```ts
 * import { grad, square, sum, tensor } from "./mod.ts";
 * const g = grad((w) => sum(square(w)))(tensor([1, 2, 3]));
 * console.log(await g.data()); // Float32Array [2, 4, 6]
 * ```
 * @module
 */
import "./backends/cpu/mod.ts";
import "./backends/webgpu/mod.ts";

// Tensors and their ops.
export { Tensor } from "./core/tensor.ts";
export type { NestedArray } from "./core/tensor.ts";
export type { DType, FileDType, TypedArray } from "./core/dtype.ts";
export type { Shape } from "./core/shape.ts";
export { arange, eye, full, ones, onesLike, tensor, type TensorData, zeros, zerosLike } from "./core/ops/creation.ts";
export type { TensorLike } from "./core/ops/_util.ts";
export {
  abs,
  add,
  cast,
  cos,
  div,
  equal,
  exp,
  greater,
  greaterEqual,
  less,
  lessEqual,
  log,
  logicalAnd,
  logicalNot,
  logicalOr,
  maximum,
  minimum,
  mul,
  neg,
  notEqual,
  pow,
  rsqrt,
  sign,
  sin,
  sqrt,
  square,
  sub,
  tanh,
  where,
} from "./core/ops/elementwise.ts";
export { argmax, type Axes, max, mean, min, type ReduceOptions, sum } from "./core/ops/reduce.ts";
export {
  broadcastTo,
  concat,
  copy,
  expandDims,
  pad,
  permute,
  reshape,
  scatterAdd,
  slice,
  split,
  squeeze,
  stack,
  take,
  transpose,
} from "./core/ops/movement.ts";
export { matmul, type MatmulOptions } from "./core/ops/matmul.ts";

// Function transforms.
export { grad, stopGradient, valueAndGrad, vjp } from "./autodiff/grad.ts";
export type {
  Argnums,
  AuxOf,
  Differentiable,
  GradFn,
  GradOf,
  GradOptions,
  GradsAt,
  ValueAndGradFn,
} from "./autodiff/grad.ts";
export { customVjp, noGrad } from "./autodiff/custom.ts";
export { checkGrad } from "./autodiff/check.ts";
export { jit, type JitOptions, type Jitted } from "./jit/jit.ts";
export type { CheckGradOptions, CheckGradReport } from "./autodiff/check.ts";

// Memory and backends.
export { dispose, keep, liveBuffers, scope } from "./core/scope.ts";
export { setAllocationLimit } from "./core/alloc.ts"; // returns the previous limit: no getter needed
export { getBackend, listBackends, setBackend } from "./core/runtime.ts";

// Namespaces.
export * as nn from "./core/nn.ts";
export * as random from "./core/random.ts";
export * as tree from "./core/tree.ts";
export type { Tree, Where } from "./core/tree.ts";
export * as llama from "./llama/mod.ts";
export * as peft from "./peft/mod.ts";
export * as optim from "./optim/mod.ts";
