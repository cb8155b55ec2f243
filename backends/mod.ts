/**
 * For backend authors and for choosing one explicitly, `@knot/knot/backends`:
 * the narrow {@link Backend} interface, {@link registerBackend}, and the two
 * backends knot ships (CPU: TypeScript + Wasm SIMD; WebGPU). Using knot needs
 * none of this: mod.ts registers both and `setBackend(name)` picks one.
 * @module
 */
export type { Backend, BackendBuffer, BinaryOp, MatmulSpec, ReduceOp, StridedInput, UnaryOp } from "./backend.ts";
export type {
  CompiledProgram,
  CompositeCall,
  CompositeOp,
  FusedCall,
  FusedInput,
  FusedNode,
  KernelCall,
  Program,
  Step,
  StridedValue,
  ValueId,
  ValueInfo,
} from "./program.ts";
export { type BackendFactory, registerBackend } from "../core/runtime.ts";
export { CpuBackend, cpuThreads, cpuWorkerJobs, cpuWorkersReady, setCpuThreads } from "./cpu/mod.ts";
export { createWebGpuBackend, WebGpuBackend, type WebGpuOptions } from "./webgpu/mod.ts";
export type {
  CheckLog as WebGpuCheckLog,
  Engine as WebGpuEngine,
  EngineLimits as WebGpuEngineLimits,
  GpuBuffer,
  KernelHost as WebGpuKernelHost,
  RawBinding as WebGpuBinding,
  Slot as WebGpuSlot,
} from "./webgpu/engine.ts";
export type { WebGpuProgram } from "./webgpu/program.ts";
export type { OutputPlacement as WebGpuOutputPlacement } from "./webgpu/plan.ts";
