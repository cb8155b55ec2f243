// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file: the micro-kernel keeps one tile row per line.
//
// WebAssembly SIMD float32 GEMM, Goto/BLIS-style. Compiled by `build.ts`
// (AssemblyScript, dev-time only) with the other kernels into one module, `engine_wasm.ts`.
//
// All pointers are byte offsets into the engine's memory (imported; heap.ts
// owns its layout), where the operands already live.
//
//  - Packing: op(A) is packed into MR-row micro-panels (per k: MR values
//    contiguous), op(B) into NR-column micro-panels (per k: NR values
//    contiguous), zero-padded at the ragged edges, so the micro-kernel is a
//    single branch-free loop. transA/transB are absorbed here: contiguous
//    runs are copied with v128 loads, strided ones via 4×4 SIMD transposes.
//  - Micro-kernel: a 4×8 tile of C in 8 f32x4 accumulators; per k, one v128
//    load of A (4 rows, broadcast by shuffles), two of B, 8 multiply-adds.
//    That needs about 13 of the 15 XMM registers V8 allocates (8 acc + 2 B
//    + A + its broadcast + product), so nothing spills. Measured on Zen 4,
//    GFLOP/s at 512³ (plain / fma): 4×8 32 / 44, 5×8 33 / 41, 3×12 – / 39,
//    4×4 – / 27, 8×4 (splat loads) 21 / –; 6×8 fma with splat loads 32.
//    On Sapphire Rapids (Deno 2.9, fma, single thread, min CPU time, the
//    step's shapes and 512³/1024³) 4×8 beat 5×8 (row 4 by splat load) by
//    ~7% and 6×8 by 15–25%, both with splat loads and with shuffles: Deno's
//    V8 checks bounds explicitly before every load (no trap handler; the
//    memory is shared, so its size is reloaded per iteration), so extra A
//    loads cost compare-and-branch uops on the FMA ports, and the shuffle
//    6×8 needs 16 registers and spills an accumulator.
//  - Blocking: KC×NR B micro-panel (12 KiB) stays in L1, the MC×KC packed A
//    block (192 KiB) in L2 with the KC×NC packed B block (1.5 MiB); K is cut
//    into equal blocks of at most KC (kBlock).
//  - Edge tiles are computed into a small staging tile and only their valid
//    corner is stored, so a call writes exactly its M×N block of C (with any
//    row stride): workers can each compute a block of one product in place.
// Built twice (see build.ts): plain SIMD (f32x4.mul + f32x4.add) and "fma"
// (relaxed-simd f32x4.relaxed_madd); `madd` below is the only difference.

export const MR: i32 = 4;
export const NR: i32 = 8;
export const KC: i32 = 384; // the most K of one block: K is cut into ⌈K / KC⌉ blocks of equal size (see kBlock)
export const MC: i32 = 128; // multiple of MR
export const NC: i32 = 1024; // multiple of NR

/**
 * c[M,N] = op(a)[M,K] · op(b)[K,N], every operand with its own leading dimension (in elements), so a
 * worker can run any block of rows or columns of a larger product. `a` holds element (i,p) at
 * a[i·lda + p], or a[p·lda + i] when transA; `b` holds (p,j) at b[p·ldb + j], or b[j·ldb + p] when transB;
 * c[i·ldc + j] is overwritten. `pa` needs MC×KC floats, `pb` KC × roundUp(min(N, NC), NR) floats and
 * `tmp` MR×NR floats (edge tiles are staged there, so nothing outside the M×N block of c is written).
 * Requires M, N, K ≥ 1. Each c element is the same sequence of multiply-adds (K-blocks of kBlock(K) in order)
 * whatever block of c a call computes, so a split between workers does not change any bit.
 */
export function matmul(
  a: usize, b: usize, c: usize, pa: usize, pb: usize, tmp: usize,
  M: i32, K: i32, N: i32, transA: i32, transB: i32, lda: i32, ldb: i32, ldc: i32,
): void {
  const ldcb = <usize>ldc << 2; // row stride of c, bytes
  const kb = kBlock(K);
  for (let jc = 0; jc < N; jc += NC) {
    const nc = min(NC, N - jc);
    for (let pc = 0; pc < K; pc += kb) {
      const kc = min(kb, K - pc);
      const accumulate = pc > 0; // first K-block overwrites C
      packB(b, ldb, transB, pc, kc, jc, nc, pb);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = min(MC, M - ic);
        packA(a, lda, transA, ic, mc, pc, kc, pa);
        // jr outer: one B micro-panel stays in L1 while A streams from L2.
        for (let jr = 0; jr < nc; jr += NR) {
          const nr = min(NR, nc - jr);
          const bp = pb + (<usize>(jr * kc) << 2);
          let cp = c + <usize>ic * ldcb + (<usize>(jc + jr) << 2);
          for (let ir = 0; ir < mc; ir += MR) {
            // Two call sites keep Binaryen from inlining the micro-kernel:
            // as its own small function, V8 tiers it up to TurboFan within
            // the first call instead of after it (wasm has no on-stack
            // replacement), and its register allocation stays simple.
            const ap = pa + (<usize>(ir * kc) << 2);
            const mr = min(MR, mc - ir);
            if (mr == MR && nr == NR) {
              if (accumulate) kernel4x8(ap, bp, kc, cp, ldcb, true);
              else kernel4x8(ap, bp, kc, cp, ldcb, false);
            } else {
              edgeTile(ap, bp, kc, cp, ldcb, accumulate, mr, nr, tmp);
            }
            cp += ldcb * MR;
          }
        }
      }
    }
  }
}

/**
 * The K-block size for a product with inner dimension K: K cut into ⌈K / KC⌉ blocks of equal size (rounded
 * up to a multiple of 8), so no block is a short remainder (K = 288 runs as one block, not 256 + 32: the
 * short block paid a whole pass over C and the packing set-up for an eighth of the work). A function of K
 * alone, so every block of c a call computes sums in the same order.
 */
function kBlock(K: i32): i32 {
  const blocks = (K + KC - 1) / KC;
  return min(KC, (((K + blocks - 1) / blocks) + 7) & ~7);
}

/** A ragged tile (mr < MR or nr < NR): computed in `tmp` (row stride NR), then its valid corner copied. */
function edgeTile(ap: usize, bp: usize, kc: i32, cp: usize, ldcb: usize, accumulate: bool, mr: i32, nr: i32, tmp: usize): void {
  if (accumulate) {
    for (let i = 0; i < MR; i++) {
      for (let j = 0; j < NR; j++) {
        const t = tmp + (<usize>(i * NR + j) << 2);
        store<f32>(t, i < mr && j < nr ? load<f32>(cp + <usize>i * ldcb + (<usize>j << 2)) : 0);
      }
    }
    kernel4x8(ap, bp, kc, tmp, <usize>NR << 2, true);
  } else kernel4x8(ap, bp, kc, tmp, <usize>NR << 2, false);
  for (let i = 0; i < mr; i++) {
    for (let j = 0; j < nr; j++) {
      store<f32>(cp + <usize>i * ldcb + (<usize>j << 2), load<f32>(tmp + (<usize>(i * NR + j) << 2)));
    }
  }
}

/** Stores the transpose of the 4×4 block with rows r0..r3 as 4 vectors `stride` bytes apart. */
function storeTransposed(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, stride: usize): void {
  const t0 = f32x4.shuffle(r0, r1, 0, 4, 1, 5); // r0[0] r1[0] r0[1] r1[1]
  const t1 = f32x4.shuffle(r0, r1, 2, 6, 3, 7); // r0[2] r1[2] r0[3] r1[3]
  const t2 = f32x4.shuffle(r2, r3, 0, 4, 1, 5);
  const t3 = f32x4.shuffle(r2, r3, 2, 6, 3, 7);
  v128.store(dst, f32x4.shuffle(t0, t2, 0, 1, 4, 5)); // column 0
  v128.store(dst + stride, f32x4.shuffle(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, f32x4.shuffle(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, f32x4.shuffle(t1, t3, 2, 3, 6, 7));
}

/**
 * Packs op(A)[ic:ic+mc, pc:pc+kc] into MR-row micro-panels: panel r holds,
 * for each p, the MR values op(A)[ic+r*MR .. +MR, pc+p] contiguously (16
 * bytes per p). Rows past the edge are zero.
 */
function packA(
  a: usize, lda: i32, transA: i32,
  ic: i32, mc: i32, pc: i32, kc: i32, dst: usize,
): void {
  for (let i0 = 0; i0 < mc; i0 += MR, dst += <usize>kc << 4) {
    const i = ic + i0;
    const rows = min(MR, mc - i0);
    if (transA) {
      // A stored [K,M]: for fixed p the MR values are contiguous.
      let s = a + ((<usize>pc * lda + i) << 2);
      const ld = <usize>lda << 2;
      if (rows == MR) {
        for (let p = 0, q = dst; p < kc; p++, q += 16, s += ld) v128.store(q, v128.load(s));
      } else {
        for (let p = 0, q = dst; p < kc; p++, q += 16, s += ld) {
          for (let r = 0; r < MR; r++) store<f32>(q + (r << 2), r < rows ? load<f32>(s + (r << 2)) : 0);
        }
      }
    } else {
      // A stored [M,K]: each row is contiguous in p; transpose 4×4 blocks.
      const ld = <usize>lda << 2;
      const s = a + ((<usize>i * lda + pc) << 2);
      let p = 0;
      if (rows == MR) {
        for (; p + 3 < kc; p += 4) {
          const sp = s + (<usize>p << 2);
          storeTransposed(
            v128.load(sp), v128.load(sp + ld), v128.load(sp + 2 * ld), v128.load(sp + 3 * ld),
            dst + (<usize>p << 4), 16,
          );
        }
      }
      for (; p < kc; p++) {
        const q = dst + (<usize>p << 4);
        for (let r = 0; r < MR; r++) {
          store<f32>(q + (r << 2), r < rows ? load<f32>(s + <usize>r * ld + (<usize>p << 2)) : 0);
        }
      }
    }
  }
}

/**
 * Packs op(B)[pc:pc+kc, jc:jc+nc] into NR-column micro-panels: panel c holds,
 * for each p, the NR values op(B)[pc+p, jc+c*NR .. +NR] contiguously (32
 * bytes per p). Columns past the edge are zero (stale garbage could be
 * NaN or denormal, which is slow).
 */
function packB(
  b: usize, ldb: i32, transB: i32,
  pc: i32, kc: i32, jc: i32, nc: i32, dst: usize,
): void {
  for (let j0 = 0; j0 < nc; j0 += NR, dst += <usize>kc << 5) {
    const j = jc + j0;
    const cols = min(NR, nc - j0);
    if (!transB) {
      // B stored [K,N]: for fixed p the NR values are contiguous.
      let s = b + ((<usize>pc * ldb + j) << 2);
      const ld = <usize>ldb << 2;
      if (cols == NR) {
        for (let p = 0, q = dst; p < kc; p++, q += 32, s += ld) {
          v128.store(q, v128.load(s));
          v128.store(q, v128.load(s, 16), 16);
        }
      } else {
        for (let p = 0, q = dst; p < kc; p++, q += 32, s += ld) {
          for (let c = 0; c < NR; c++) store<f32>(q + (c << 2), c < cols ? load<f32>(s + (c << 2)) : 0);
        }
      }
    } else {
      // B stored [N,K]: each column of op(B) is contiguous in p; two 4×4
      // transposes per 4 values of p.
      const ld = <usize>ldb << 2;
      const s = b + ((<usize>j * ldb + pc) << 2);
      let p = 0;
      if (cols == NR) {
        for (; p + 3 < kc; p += 4) {
          const sp = s + (<usize>p << 2);
          const q = dst + (<usize>p << 5);
          storeTransposed(
            v128.load(sp), v128.load(sp + ld), v128.load(sp + 2 * ld), v128.load(sp + 3 * ld),
            q, 32,
          );
          const sp4 = sp + 4 * ld;
          storeTransposed(
            v128.load(sp4), v128.load(sp4 + ld), v128.load(sp4 + 2 * ld), v128.load(sp4 + 3 * ld),
            q + 16, 32,
          );
        }
      }
      for (; p < kc; p++) {
        const q = dst + (<usize>p << 5);
        for (let c = 0; c < NR; c++) {
          store<f32>(q + (c << 2), c < cols ? load<f32>(s + <usize>c * ld + (<usize>p << 2)) : 0);
        }
      }
    }
  }
}

/**
 * acc + a·b, lane-wise. The "fma" build (--enable relaxed-simd) uses
 * relaxed_madd, a single fused instruction where the CPU has FMA; the loader
 * uses that build only after checking that it really fuses (see kernel.ts),
 * so its results are the exactly-rounded fused ones. The plain build does
 * mul then add (two roundings) and is bit-identical on every engine.
 */
function madd(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/**
 * 4×8 micro-kernel: C[4,8] (+)= Σ_p pa[4p + i] · pb[8p + j] over kc steps;
 * c is the tile's top-left corner, ldc the row stride in bytes. Overwrites
 * C unless `accumulate`. Per k: one v128 load of the 4 A values, broadcast
 * to each lane by shuffles (measured ~20% faster in V8 than four
 * v128.load32_splat), two v128 loads of B, 8 madds. Not unrolled: Binaryen
 * interleaves unrolled steps, which then spill (measured 13–43% slower).
 */
function kernel4x8(pa: usize, pb: usize, kc: i32, c: usize, ldc: usize, accumulate: bool): void {
  const z = f32x4.splat(0);
  let c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
  for (let p = 0; p < kc; p++) {
    const av = v128.load(pa);
    const b0 = v128.load(pb), b1 = v128.load(pb, 16);
    let a = i32x4.shuffle(av, av, 0, 0, 0, 0);
    c00 = madd(c00, a, b0); c01 = madd(c01, a, b1);
    a = i32x4.shuffle(av, av, 1, 1, 1, 1);
    c10 = madd(c10, a, b0); c11 = madd(c11, a, b1);
    a = i32x4.shuffle(av, av, 2, 2, 2, 2);
    c20 = madd(c20, a, b0); c21 = madd(c21, a, b1);
    a = i32x4.shuffle(av, av, 3, 3, 3, 3);
    c30 = madd(c30, a, b0); c31 = madd(c31, a, b1);
    pa += 16; pb += 32;
  }
  const c1 = c + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
  if (accumulate) {
    c00 = f32x4.add(c00, v128.load(c)); c01 = f32x4.add(c01, v128.load(c, 16));
    c10 = f32x4.add(c10, v128.load(c1)); c11 = f32x4.add(c11, v128.load(c1, 16));
    c20 = f32x4.add(c20, v128.load(c2)); c21 = f32x4.add(c21, v128.load(c2, 16));
    c30 = f32x4.add(c30, v128.load(c3)); c31 = f32x4.add(c31, v128.load(c3, 16));
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(c1, c10); v128.store(c1, c11, 16);
  v128.store(c2, c20); v128.store(c2, c21, 16);
  v128.store(c3, c30); v128.store(c3, c31, 16);
}
