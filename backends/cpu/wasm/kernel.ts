// The WebAssembly SIMD matmul kernel (matmul.as.ts, part of the engine module loaded by engine.ts).
//
// Two entry points: `matmulAt` runs on operands already in the engine's heap
// (what the cpu backend does, in place), and `tryMatmulF32Wasm` takes typed
// arrays anywhere, copying them into heap blocks and C out (the TypeScript
// dispatcher `matmulF32`, the benchmark ladder and the tests use it). Which
// build runs ("fma" only where relaxed_madd really fuses, else "simd") is
// decided in engine.ts.

import type { MatmulF32Args, MatmulF32Fn } from "../matmul_args.ts";
import { type Engine, engine, engineBuild, wasmSimdSupported } from "./engine.ts";

export { wasmSimdSupported };

/** Which build of the WebAssembly kernel: plain mul+add, or fused relaxed_madd. */
export type WasmMatmulVariant = "simd" | "fma";

/**
 * Which WebAssembly build `tryMatmulF32Wasm` (and so `matmulF32`) runs here,
 * or null where WebAssembly SIMD is unavailable. Loads it on first call.
 */
export function wasmMatmulVariant(): WasmMatmulVariant | null {
  return engine()?.variant ?? null;
}

/** Whether a WebAssembly kernel (any build) can run here. */
export function wasmMatmulAvailable(): boolean {
  return engine() !== null;
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/** Packing scratch of one thread: packed A block, packed B panel, and an edge tile at the end of it. */
export interface PackScratch {
  ptr: number;
  bytes: number;
}

/** The main thread's packing scratch. */
export const mainScratch: PackScratch = { ptr: -1, bytes: 0 };

/** Scratch bytes one matmul call with these sizes needs (packed A block, packed B panel, edge tile). */
export function packBytes(e: Engine, K: number, N: number): number {
  return e.MC * e.KC * 4 + Math.min(K, e.KC) * roundUp(Math.min(N, e.NC), e.NR) * 4 + e.MR * e.NR * 4;
}

/** Makes `s` at least `bytes` long (reallocating from the heap); false when the heap is full. */
export function ensureScratch(e: Engine, s: PackScratch, bytes: number): boolean {
  if (s.bytes >= bytes) return true;
  if (s.ptr >= 0) e.heap.release(s.ptr, s.bytes);
  s.ptr = e.heap.alloc(bytes);
  s.bytes = s.ptr < 0 ? 0 : bytes;
  return s.ptr >= 0;
}

/**
 * c = op(A)·op(B) on heap addresses (bytes): A [M,K] (or [K,M] when transA), B [K,N] (or [N,K]), C [M,N],
 * each with its leading dimension in elements (defaults: contiguous). Writes exactly the M×N block of c.
 * Requires M, N, K ≥ 1. Returns false (nothing written) if the packing scratch cannot be had.
 */
export function matmulAt(
  e: Engine,
  a: number,
  b: number,
  c: number,
  M: number,
  K: number,
  N: number,
  transA: boolean,
  transB: boolean,
  lda = transA ? M : K,
  ldb = transB ? K : N,
  ldc = N,
  scratch: PackScratch = mainScratch,
): boolean {
  if (!ensureScratch(e, scratch, packBytes(e, K, N))) return false;
  const x = matmulArgs(e, scratch, a, b, c, M, K, N, transA, transB, lda, ldb, ldc);
  e.x.matmul(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13]);
  return true;
}

/** Arguments of the module's `matmul` for one call with `scratch` (at least `packBytes(e, K, N)` long). */
export function matmulArgs(
  e: Engine,
  scratch: PackScratch,
  a: number,
  b: number,
  c: number,
  M: number,
  K: number,
  N: number,
  transA: boolean,
  transB: boolean,
  lda: number,
  ldb: number,
  ldc: number,
): number[] {
  const pa = scratch.ptr, pb = pa + e.MC * e.KC * 4;
  const tmp = pb + Math.min(K, e.KC) * roundUp(Math.min(N, e.NC), e.NR) * 4;
  return [a, b, c, pa, pb, tmp, M, K, N, transA ? 1 : 0, transB ? 1 : 0, lda, ldb, ldc];
}

/**
 * out[M,N] = op(A)[M,K] · op(B)[K,N] on the WebAssembly kernel ("fma" build
 * where available, else "simd"; see {@link wasmMatmulVariant}); same contract
 * as `matmulF32` (A is [M,K], or [K,M] when transA; B is [K,N], or [N,K]
 * when transB; element offsets; `out` overwritten). Accumulates in float32.
 * Returns false, having written nothing, when no build can run (no SIMD) or
 * the operands do not fit in wasm32 memory; the caller then falls back to
 * the TypeScript kernel.
 */
export function tryMatmulF32Wasm(...args: MatmulF32Args): boolean {
  const e = engine();
  return e !== null && run(e, ...args);
}

/** Runs one product on build `e`, copying operands into the heap and the result out; false if they do not fit. */
function run(e: Engine, ...[a, aOff, b, bOff, out, outOff, M, K, N, transA, transB]: MatmulF32Args): boolean {
  if (M <= 0 || N <= 0) return true;
  if (K <= 0) {
    out.fill(0, outOff, outOff + M * N);
    return true;
  }
  const h = e.heap;
  const aBytes = M * K * 4, bBytes = K * N * 4, cBytes = M * N * 4;
  const pa = h.alloc(aBytes), pb = h.alloc(bBytes), pc = h.alloc(cBytes);
  try {
    if (pa < 0 || pb < 0 || pc < 0) return false;
    const heap = h.f32;
    heap.set(a.subarray(aOff, aOff + M * K), pa >>> 2);
    heap.set(b.subarray(bOff, bOff + K * N), pb >>> 2);
    if (!matmulAt(e, pa, pb, pc, M, K, N, transA, transB)) return false;
    out.set(h.f32.subarray(pc >>> 2, (pc >>> 2) + M * N), outOff);
    return true;
  } finally {
    if (pa >= 0) h.release(pa, aBytes);
    if (pb >= 0) h.release(pb, bBytes);
    if (pc >= 0) h.release(pc, cBytes);
  }
}

/**
 * {@link tryMatmulF32Wasm} that throws when the WebAssembly kernel cannot
 * run. Used by the benchmark ladder and tests; `matmulF32` dispatches.
 */
export function matmulF32Wasm(...args: MatmulF32Args): void {
  if (!tryMatmulF32Wasm(...args)) throw new Error("WebAssembly SIMD matmul kernel unavailable for this call");
}

/**
 * One specific build, for the benchmark ladder and tests; null where it is
 * unavailable (for "fma": no relaxed-simd, or its madd does not fuse).
 */
export function wasmMatmulBuild(variant: WasmMatmulVariant): MatmulF32Fn | null {
  const e = engineBuild(variant);
  if (e === null) return null;
  return (...args) => {
    if (!run(e, ...args)) {
      throw new Error(`WebAssembly ${variant} matmul: operands do not fit in wasm32 memory`);
    }
  };
}
