// Single-threaded float32 GEMM: `matmulF32` dispatches between a WebAssembly
// SIMD kernel (./wasm/, ~5× faster) and the plain-TypeScript kernel below,
// which is the fallback where WebAssembly SIMD is unavailable and is kept
// for tiny products, where the fixed cost of a wasm call dominates.
//
// The TypeScript kernel (Goto/BLIS-style). JS has no SIMD and no FMA, so
// speed comes from doing nothing but scalar mul/add in the hot loop:
//  - a 4×4 tile of C lives in 16 local variables for the whole K loop;
//  - A and B are packed into contiguous Float64Array micro-panels, so the
//    inner loop does 8 sequential loads per 16 multiply-adds, with no
//    float32→float64 conversion; the loop runs on one shared panel index
//    (both panels advance by 4 per step) instead of a counter plus two
//    pointers, which measured ~15% faster;
//  - K/M/N blocking keeps a B micro-panel (KC×4) in L1 and the packed A
//    block (MC×KC) in L2.
// Packing also absorbs transA/transB and ragged edges (zero padding), so the
// microkernel is one branch-free loop. Larger tiles (4×8, 8×8) measured
// slower: V8 has ~15 usable FP registers and the accumulators spill.

import { tryMatmulF32Wasm } from "./wasm/kernel.ts";
import type { MatmulF32Args } from "./matmul_args.ts";

/**
 * Smallest M·N·K sent to the WebAssembly kernel. A wasm call costs ~0.2 µs
 * fixed (copies in and out, packing, the call); measured on Zen 4 / Deno
 * 2.9.6 the TS kernel still wins at 4×4×4 (0.11 vs 0.23 µs) and 4×8×4, the
 * two break even around M·N·K ≈ 128–256, and wasm is 1.2–1.8× faster from
 * 8×8×8 up, 3.6× at 16³ and 4.8× from 64³ on.
 */
export const WASM_MIN_MNK = 256;

/**
 * out[M,N] = op(A)[M,K] · op(B)[K,N], float32, single-threaded.
 *
 * A is stored row-major as [M,K], or [K,M] when `transA`; B as [K,N], or
 * [N,K] when `transB`. Offsets are element offsets into the arrays (for
 * batched calls). `out` is row-major [M,N] starting at `outOff`; it is
 * overwritten, not accumulated. K = 0 yields zeros.
 *
 * Runs the WebAssembly SIMD kernel (float32 accumulation; fused multiply-add
 * where the engine provides it, see `wasmMatmulVariant`) when M·N·K ≥
 * {@link WASM_MIN_MNK} and neither M nor N is 1; otherwise, or where wasm
 * SIMD is unavailable, the TypeScript kernel {@link matmulF32Ts}. Each is
 * deterministic, but they round differently, so the exact bits depend on
 * the shape (and, for the wasm kernel, on whether the machine fuses).
 */
export function matmulF32(...args: MatmulF32Args): void {
  const [, , , , , , M, K, N] = args;
  // Vectors (M or N = 1) stay in TS: rowTimesMatrix streams B once, while
  // the wasm path would copy and pack it first, for no measurable gain.
  if (M > 1 && N > 1 && K > 0 && M * N * K >= WASM_MIN_MNK && tryMatmulF32Wasm(...args)) return;
  matmulF32Ts(...args);
}

/** Rows (MR) and columns (NR) of C per microkernel tile. */
const MR = 4;
const NR = 4;
/** K-block: a packed B micro-panel (KC×NR doubles = 8 KiB) stays in L1. */
const KC = 256;
/** M-block: the packed A block (MC×KC doubles = 256 KiB) stays in L2. */
const MC = 128;
/** N-block: bounds the packed B block (KC×NC doubles = 4 MiB) and scratch. */
const NC = 2048;

// Grow-only scratch shared across calls (single-threaded, so no contention).
// Float64 so the hot loop reads doubles directly.
let packA = new Float64Array(0);
let packB = new Float64Array(0);
/** Staging tile for edge tiles that do not fit entirely inside `out`. */
const edge = new Float32Array(MR * NR);

/**
 * The plain-TypeScript kernel behind {@link matmulF32} (same contract).
 * Transposes are folded into the packing of small panels; no transposed
 * copy is materialised. Products are accumulated in float64 within each
 * K-block of 256. Always available; used for small products and as the
 * fallback.
 */
export function matmulF32Ts(...[a, aOff, b, bOff, out, outOff, M, K, N, transA, transB]: MatmulF32Args): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    out.fill(0, outOff, outOff + M * N);
    return;
  }
  // Vector cases: packing would cost as much as the product itself, and the
  // 4-row tile would waste 3/4 of the work. out[M,1] has the same layout as
  // out[1,M] = op(B)ᵀ · op(A)ᵀ, so N = 1 reduces to M = 1.
  if (M === 1) return rowTimesMatrix(a, aOff, b, bOff, out, outOff, K, N, transB);
  if (N === 1) return rowTimesMatrix(b, bOff, a, aOff, out, outOff, K, M, !transA);

  const kc0 = Math.min(K, KC);
  const needB = kc0 * roundUp(Math.min(N, NC), NR);
  if (packB.length < needB) packB = new Float64Array(needB);
  const needA = kc0 * roundUp(Math.min(M, MC), MR);
  if (packA.length < needA) packA = new Float64Array(needA);

  for (let jc = 0; jc < N; jc += NC) {
    const nc = Math.min(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = Math.min(KC, K - pc);
      // First K-block overwrites C; later ones accumulate into it.
      const accumulate = pc > 0;
      packBBlock(b, bOff, K, N, transB, pc, kc, jc, nc);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = Math.min(MC, M - ic);
        packABlock(a, aOff, M, K, transA, ic, mc, pc, kc);
        // jr outer: one B micro-panel stays hot in L1 while A streams from L2.
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = Math.min(NR, nc - jr);
          for (let ir = 0; ir < mc; ir += MR) {
            const mr = Math.min(MR, mc - ir);
            const o = outOff + (ic + ir) * N + jc + jr;
            if (mr === MR && nr === NR) {
              kernel4x4(ir * kc, jr * kc, kc, out, o, N, accumulate);
            } else {
              kernel4x4(ir * kc, jr * kc, kc, edge, 0, NR, false);
              storeEdge(out, o, N, mr, nr, accumulate);
            }
          }
        }
      }
    }
  }
}

function roundUp(x: number, m: number): number {
  return Math.ceil(x / m) * m;
}

/**
 * out[0,:] = x[1,K] · op(B)[K,N], with float64 accumulation. `x` is
 * contiguous (a [1,K] row and a [K,1] column are the same in memory).
 */
function rowTimesMatrix(
  x: Float32Array,
  xOff: number,
  b: Float32Array,
  bOff: number,
  out: Float32Array,
  outOff: number,
  K: number,
  N: number,
  transB: boolean,
): void {
  if (transB) {
    // B stored [N,K]: each output is a contiguous dot product.
    for (let j = 0; j < N; j++) {
      const bo = bOff + j * K;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0; // 4 chains hide add latency
      let p = 0;
      for (; p + 3 < K; p += 4) {
        s0 += x[xOff + p] * b[bo + p];
        s1 += x[xOff + p + 1] * b[bo + p + 1];
        s2 += x[xOff + p + 2] * b[bo + p + 2];
        s3 += x[xOff + p + 3] * b[bo + p + 3];
      }
      for (; p < K; p++) s0 += x[xOff + p] * b[bo + p];
      out[outOff + j] = s0 + s1 + s2 + s3;
    }
    return;
  }
  // B stored [K,N]: axpy over contiguous rows of B into a float64 row.
  if (packB.length < N) packB = new Float64Array(N);
  const acc = packB;
  acc.fill(0, 0, N);
  for (let p = 0; p < K; p++) {
    const xp = x[xOff + p];
    const bo = bOff + p * N;
    for (let j = 0; j < N; j++) acc[j] += xp * b[bo + j];
  }
  for (let j = 0; j < N; j++) out[outOff + j] = acc[j];
}

/**
 * Packs op(A)[ic:ic+mc, pc:pc+kc] into MR-row micro-panels: panel r holds,
 * for each p, the MR values A[ic+r*MR .. +MR, pc+p] contiguously. Rows past
 * the edge are zero-filled so the kernel needs no bounds logic.
 */
function packABlock(
  a: Float32Array,
  aOff: number,
  M: number,
  K: number,
  transA: boolean,
  ic: number,
  mc: number,
  pc: number,
  kc: number,
): void {
  const dst = packA;
  for (let i0 = 0, d = 0; i0 < mc; i0 += MR, d += MR * kc) {
    const rows = Math.min(MR, mc - i0);
    for (let r = 0; r < MR; r++) {
      let q = d + r;
      if (r >= rows) {
        for (let p = 0; p < kc; p++, q += MR) dst[q] = 0;
      } else if (transA) {
        // A stored [K,M]: element (i,p) at p*M + i.
        let s = aOff + pc * M + ic + i0 + r;
        for (let p = 0; p < kc; p++, q += MR, s += M) dst[q] = a[s];
      } else {
        let s = aOff + (ic + i0 + r) * K + pc;
        for (let p = 0; p < kc; p++, q += MR) dst[q] = a[s++];
      }
    }
  }
}

/**
 * Packs op(B)[pc:pc+kc, jc:jc+nc] into NR-column micro-panels: panel c holds,
 * for each p, the NR values B[pc+p, jc+c*NR .. +NR] contiguously. Columns
 * past the edge are zero-filled (their results are discarded, but stale
 * garbage could be denormal/NaN, which is slow on x86).
 */
function packBBlock(
  b: Float32Array,
  bOff: number,
  K: number,
  N: number,
  transB: boolean,
  pc: number,
  kc: number,
  jc: number,
  nc: number,
): void {
  const dst = packB;
  for (let j0 = 0, d = 0; j0 < nc; j0 += NR, d += NR * kc) {
    const cols = Math.min(NR, nc - j0);
    for (let c = 0; c < NR; c++) {
      let q = d + c;
      if (c >= cols) {
        for (let p = 0; p < kc; p++, q += NR) dst[q] = 0;
      } else if (transB) {
        // B stored [N,K]: element (p,j) at j*K + p.
        let s = bOff + (jc + j0 + c) * K + pc;
        for (let p = 0; p < kc; p++, q += NR) dst[q] = b[s++];
      } else {
        let s = bOff + pc * N + jc + j0 + c;
        for (let p = 0; p < kc; p++, q += NR, s += N) dst[q] = b[s];
      }
    }
  }
}

/** Copies the staged edge tile into the valid mr×nr corner of `out`. */
function storeEdge(
  out: Float32Array,
  o: number,
  ldo: number,
  mr: number,
  nr: number,
  accumulate: boolean,
): void {
  for (let i = 0; i < mr; i++) {
    for (let j = 0; j < nr; j++) {
      const v = edge[i * NR + j];
      out[o + i * ldo + j] = accumulate ? out[o + i * ldo + j] + v : v;
    }
  }
}

/**
 * 4×4 microkernel: C[4,4] (+)= Σ_p packA[ao + 4p + i] · packB[bo + 4p + j].
 * Both panels step by 4, so one index `q` (and a constant delta) addresses
 * both; this keeps V8's register pressure low enough to avoid most spills.
 */
// deno-fmt-ignore
function kernel4x4(
  ao: number, bo: number, kc: number,
  c: Float32Array, co: number, ldc: number, accumulate: boolean,
): void {
  const pa = packA, pb = packB;
  const d = bo - ao;
  const end = ao + kc * 4;
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let q = ao; q < end; q += 4) {
    const a0 = pa[q], a1 = pa[q + 1], a2 = pa[q + 2], a3 = pa[q + 3];
    const b0 = pb[q + d], b1 = pb[q + d + 1], b2 = pb[q + d + 2], b3 = pb[q + d + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
  }
  const r0 = co, r1 = co + ldc, r2 = co + 2 * ldc, r3 = co + 3 * ldc;
  if (accumulate) {
    c00 += c[r0]; c01 += c[r0 + 1]; c02 += c[r0 + 2]; c03 += c[r0 + 3];
    c10 += c[r1]; c11 += c[r1 + 1]; c12 += c[r1 + 2]; c13 += c[r1 + 3];
    c20 += c[r2]; c21 += c[r2 + 1]; c22 += c[r2 + 2]; c23 += c[r2 + 3];
    c30 += c[r3]; c31 += c[r3 + 1]; c32 += c[r3 + 2]; c33 += c[r3 + 3];
  }
  c[r0] = c00; c[r0 + 1] = c01; c[r0 + 2] = c02; c[r0 + 3] = c03;
  c[r1] = c10; c[r1 + 1] = c11; c[r1 + 2] = c12; c[r1 + 3] = c13;
  c[r2] = c20; c[r2 + 1] = c21; c[r2 + 2] = c22; c[r2 + 3] = c23;
  c[r3] = c30; c[r3 + 1] = c31; c[r3 + 2] = c32; c[r3 + 3] = c33;
}
