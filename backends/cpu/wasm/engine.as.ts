// @ts-nocheck: AssemblyScript source, not Deno TypeScript.
// deno-lint-ignore-file
//
// The CPU engine's one WebAssembly module: every kernel, on buffers in one imported linear memory
// (backends/cpu/heap.ts owns its layout). Built by build.ts; loaded by engine.ts.
export { KC, matmul, MC, MR, NC, NR } from "./matmul.as";
export {
  binaryF32,
  binaryI32,
  castData,
  heapBase,
  randomF32,
  reduceF32,
  strided32,
  unaryF32,
  where32,
} from "./elementwise.as";
export { gemv, gemvBatch } from "./vector.as";
export { attendRows, rmsNormRows, ropeRows } from "./composite.as";
export { fusedF32 } from "./fused.as";
export { copyRows, fillData, gatherRows, scatterAddRows } from "./data.as";
export { runCalls, runParts, serve } from "./program.as";
