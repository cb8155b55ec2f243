// The CPU matmul "ladder": each rung is one idea on top of the previous one.
// All versions share the production signature (no transposes needed here, so
// v0..v2 support only transA = transB = false and throw otherwise):
//   out[M,N] = A[M,K] · B[K,N], row-major, element offsets.
//
//   v0..v2  below: loop order and cache blocking in plain TypeScript;
//   v3      the packed, 4×4 register-blocked TypeScript kernel (production
//           fallback, backends/cpu/matmul.ts);
//   v4      the same blocking in WebAssembly SIMD (f32x4, 4×8 tile of
//           accumulators, f32x4.mul + f32x4.add; backends/cpu/wasm/);
//   v5      v4 with relaxed-simd f32x4.relaxed_madd (fused multiply-add):
//           null where the engine lacks it or does not fuse.
// `matmulF32` runs v5 (else v4) for all but tiny products, v3 for those.

import type { MatmulF32Args, MatmulF32Fn } from "../../backends/cpu/matmul_args.ts";
import { wasmMatmulBuild } from "../../backends/cpu/wasm/kernel.ts";

/** v3: packed panels, 4×4 register tile, float64 accumulation (plain TypeScript). */
export { matmulF32Ts as v3Packed } from "../../backends/cpu/matmul.ts";
/** What the CPU backend calls: dispatches between v3 and v5/v4 by size. */
export { matmulF32 as production } from "../../backends/cpu/matmul.ts";
/** v4: WebAssembly SIMD, plain mul + add; null where wasm SIMD is unavailable. */
export const v4WasmSimd: MatmulF32Fn | null = wasmMatmulBuild("simd");
/** v5: v4 with fused relaxed_madd; null where unavailable or not fused. */
export const v5WasmFma: MatmulF32Fn | null = wasmMatmulBuild("fma");

function noTrans(transA: boolean, transB: boolean): void {
  if (transA || transB) throw new Error("ladder rungs v0..v2 support no transposes");
}

/** v0: textbook i-j-k dot products; the inner loop strides B by N (cache-hostile). */
export function v0Naive(...[a, aOff, b, bOff, out, outOff, M, K, N, transA, transB]: MatmulF32Args): void {
  noTrans(transA, transB);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let p = 0; p < K; p++) s += a[aOff + i * K + p] * b[bOff + p * N + j];
      out[outOff + i * N + j] = s;
    }
  }
}

/** v1: i-k-j order; the inner loop streams a row of B and a row of C (unit stride). */
export function v1Ikj(...[a, aOff, b, bOff, out, outOff, M, K, N, transA, transB]: MatmulF32Args): void {
  noTrans(transA, transB);
  out.fill(0, outOff, outOff + M * N);
  for (let i = 0; i < M; i++) {
    const o = outOff + i * N;
    for (let p = 0; p < K; p++) {
      const aip = a[aOff + i * K + p];
      const bo = bOff + p * N;
      for (let j = 0; j < N; j++) out[o + j] += aip * b[bo + j];
    }
  }
}

const BK = 128;
const BJ = 256;

/**
 * v2: i-k-j with K and N blocked so the touched BK×BJ tile of B (128 KiB)
 * stays in L2 and the BJ-wide strip of the C row stays in L1 while it is
 * re-used BK times.
 */
export function v2Blocked(...[a, aOff, b, bOff, out, outOff, M, K, N, transA, transB]: MatmulF32Args): void {
  noTrans(transA, transB);
  out.fill(0, outOff, outOff + M * N);
  for (let j0 = 0; j0 < N; j0 += BJ) {
    const j1 = Math.min(N, j0 + BJ);
    for (let p0 = 0; p0 < K; p0 += BK) {
      const p1 = Math.min(K, p0 + BK);
      for (let i = 0; i < M; i++) {
        const o = outOff + i * N;
        for (let p = p0; p < p1; p++) {
          const aip = a[aOff + i * K + p];
          const bo = bOff + p * N;
          for (let j = j0; j < j1; j++) out[o + j] += aip * b[bo + j];
        }
      }
    }
  }
}
