// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// Vector products of the CPU engine (decode: x·Wᵀ with one row x; matrix·vector), on buffers in the engine's
// one linear memory. Part of the module built by build.ts (entry: engine.as.ts).
import { binaryRow, reduceF32, unaryF32 } from "./elementwise.as";

/** acc + a·b lane-wise: fused relaxed_madd in the "fma" build (used only where it fuses), else mul then add. */
// @ts-ignore: decorator
@inline function madd(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Lane sums of two accumulators, then the scalar tail p..K of x·row (the end of every dot product). */
// @ts-ignore: decorator
@inline function finish(a0: v128, a1: v128, x: usize, row: usize, p: i32, K: i32): f32 {
  const t = f32x4.add(a0, a1);
  let s = (f32x4.extract_lane(t, 0) + f32x4.extract_lane(t, 1)) + (f32x4.extract_lane(t, 2) + f32x4.extract_lane(t, 3));
  for (; p < K; p++) s += load<f32>(x + (<usize>p << 2)) * load<f32>(row + (<usize>p << 2));
  return s;
}

/**
 * Matrix-vector product: out[j] = Σ_p x[p] · W(p, j) for j < N, with W(p, j) = w[j·ldw + p] when transW,
 * else w[p·ldw + j]. float32 accumulation, like matmul.
 *
 * transW (each output a dot product of contiguous rows): four rows at a time share the loads of x; each row
 * keeps two lane accumulators over p in steps of 8 (then one step of 4), summed lanes (0+1)+(2+3), then the
 * scalar tail. A row left over after the blocks of four runs the same sequence alone, so an output's bits
 * do not depend on which rows a call (or a thread) computes. Otherwise 16 (then 4) outputs at a time in
 * registers, p in order, one mul and one add per term like the scalar tail.
 */
export function gemv(x: usize, w: usize, out: usize, K: i32, N: i32, ldw: i32, transW: i32): void {
  const ld = <usize>ldw << 2;
  const z = f32x4.splat(0);
  if (transW) {
    const K8 = K & ~7, K4 = K & ~3;
    let j = 0;
    for (; j + 4 <= N; j += 4) {
      const r0 = w + <usize>j * ld, r1 = r0 + ld, r2 = r1 + ld, r3 = r2 + ld;
      let a00 = z, a01 = z, a10 = z, a11 = z, a20 = z, a21 = z, a30 = z, a31 = z;
      let p = 0;
      for (; p < K8; p += 8) {
        const o = <usize>p << 2;
        const x0 = v128.load(x + o), x1 = v128.load(x + o, 16);
        a00 = madd(a00, x0, v128.load(r0 + o)); a01 = madd(a01, x1, v128.load(r0 + o, 16));
        a10 = madd(a10, x0, v128.load(r1 + o)); a11 = madd(a11, x1, v128.load(r1 + o, 16));
        a20 = madd(a20, x0, v128.load(r2 + o)); a21 = madd(a21, x1, v128.load(r2 + o, 16));
        a30 = madd(a30, x0, v128.load(r3 + o)); a31 = madd(a31, x1, v128.load(r3 + o, 16));
      }
      if (p < K4) {
        const o = <usize>p << 2;
        const x0 = v128.load(x + o);
        a00 = madd(a00, x0, v128.load(r0 + o)); a10 = madd(a10, x0, v128.load(r1 + o));
        a20 = madd(a20, x0, v128.load(r2 + o)); a30 = madd(a30, x0, v128.load(r3 + o));
        p += 4;
      }
      const c = out + (<usize>j << 2);
      if (p == K) {
        // No scalar tail: the four rows' (l0 + l1) + (l2 + l3) lane sums at once, through a 4×4 transpose.
        const t0 = f32x4.add(a00, a01), t1 = f32x4.add(a10, a11), t2 = f32x4.add(a20, a21), t3 = f32x4.add(a30, a31);
        const m0 = i32x4.shuffle(t0, t1, 0, 4, 1, 5), m1 = i32x4.shuffle(t2, t3, 0, 4, 1, 5);
        const m2 = i32x4.shuffle(t0, t1, 2, 6, 3, 7), m3 = i32x4.shuffle(t2, t3, 2, 6, 3, 7);
        const l01 = f32x4.add(i32x4.shuffle(m0, m1, 0, 1, 4, 5), i32x4.shuffle(m0, m1, 2, 3, 6, 7));
        const l23 = f32x4.add(i32x4.shuffle(m2, m3, 0, 1, 4, 5), i32x4.shuffle(m2, m3, 2, 3, 6, 7));
        v128.store(c, f32x4.add(l01, l23));
        continue;
      }
      store<f32>(c, finish(a00, a01, x, r0, p, K));
      store<f32>(c, finish(a10, a11, x, r1, p, K), 4);
      store<f32>(c, finish(a20, a21, x, r2, p, K), 8);
      store<f32>(c, finish(a30, a31, x, r3, p, K), 12);
    }
    for (; j < N; j++) {
      const r0 = w + <usize>j * ld;
      let a00 = z, a01 = z;
      let p = 0;
      for (; p < K8; p += 8) {
        const o = <usize>p << 2;
        a00 = madd(a00, v128.load(x + o), v128.load(r0 + o));
        a01 = madd(a01, v128.load(x + o, 16), v128.load(r0 + o, 16));
      }
      if (p < K4) {
        const o = <usize>p << 2;
        a00 = madd(a00, v128.load(x + o), v128.load(r0 + o));
        p += 4;
      }
      store<f32>(out + (<usize>j << 2), finish(a00, a01, x, r0, p, K));
    }
    return;
  }
  let j = 0;
  for (; j + 16 <= N; j += 16) {
    let a0 = z, a1 = z, a2 = z, a3 = z;
    let col = w + (<usize>j << 2);
    for (let p = 0; p < K; p++, col += ld) {
      const xp = v128.load32_splat(x + (<usize>p << 2));
      a0 = f32x4.add(a0, f32x4.mul(xp, v128.load(col)));
      a1 = f32x4.add(a1, f32x4.mul(xp, v128.load(col, 16)));
      a2 = f32x4.add(a2, f32x4.mul(xp, v128.load(col, 32)));
      a3 = f32x4.add(a3, f32x4.mul(xp, v128.load(col, 48)));
    }
    const o = out + (<usize>j << 2);
    v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
  }
  for (; j + 8 <= N; j += 8) {
    // Two independent chains (each column's sum is the same sequence as below): attention's [S]·[S, 8] products.
    let a0 = z, a1 = z;
    let col = w + (<usize>j << 2);
    for (let p = 0; p < K; p++, col += ld) {
      const xp = v128.load32_splat(x + (<usize>p << 2));
      a0 = f32x4.add(a0, f32x4.mul(xp, v128.load(col)));
      a1 = f32x4.add(a1, f32x4.mul(xp, v128.load(col, 16)));
    }
    const o = out + (<usize>j << 2);
    v128.store(o, a0); v128.store(o, a1, 16);
  }
  for (; j + 4 <= N; j += 4) {
    let a0 = z;
    let col = w + (<usize>j << 2);
    for (let p = 0; p < K; p++, col += ld) a0 = f32x4.add(a0, f32x4.mul(v128.load32_splat(x + (<usize>p << 2)), v128.load(col)));
    v128.store(out + (<usize>j << 2), a0);
  }
  for (; j < N; j++) {
    let s: f32 = 0;
    for (let p = 0; p < K; p++) s += load<f32>(x + (<usize>p << 2)) * load<f32>(w + <usize>p * ld + (<usize>j << 2));
    store<f32>(out + (<usize>j << 2), s);
  }
}

/**
 * `n` gemv calls of one shape (a batched vector product, e.g. attention over heads): call i runs on
 * x + off[3i], w + off[3i+1], out + off[3i+2] (byte offsets, u32, at `off`). Same bits as n calls of gemv.
 */
export function gemvBatch(x: usize, w: usize, out: usize, K: i32, N: i32, ldw: i32, transW: i32, off: usize, n: i32): void {
  let i = 0;
  // Eight outputs per call (attention's probs·V with 8-wide heads): two calls at once, four independent chains.
  if (!transW && N == 8) {
    const ld = <usize>ldw << 2;
    for (; i + 2 <= n; i += 2) {
      const t = off + <usize>(i * 12);
      const x0 = x + <usize>load<u32>(t), x1 = x + <usize>load<u32>(t, 12);
      let c0 = w + <usize>load<u32>(t, 4), c1 = w + <usize>load<u32>(t, 16);
      let a0 = f32x4.splat(0), a1 = a0, b0 = a0, b1 = a0;
      for (let p = 0; p < K; p++, c0 += ld, c1 += ld) {
        const u = v128.load32_splat(x0 + (<usize>p << 2)), v = v128.load32_splat(x1 + (<usize>p << 2));
        a0 = f32x4.add(a0, f32x4.mul(u, v128.load(c0))); a1 = f32x4.add(a1, f32x4.mul(u, v128.load(c0, 16)));
        b0 = f32x4.add(b0, f32x4.mul(v, v128.load(c1))); b1 = f32x4.add(b1, f32x4.mul(v, v128.load(c1, 16)));
      }
      const o0 = out + <usize>load<u32>(t, 8), o1 = out + <usize>load<u32>(t, 20);
      v128.store(o0, a0); v128.store(o0, a1, 16); v128.store(o1, b0); v128.store(o1, b1, 16);
    }
  }
  for (; i < n; i++) {
    const t = off + <usize>(i * 12);
    gemv(x + <usize>load<u32>(t), w + <usize>load<u32>(t, 4), out + <usize>load<u32>(t, 8), K, N, ldw, transW);
  }
}

/** Whether the n floats at p are all finite (x − x is 0 exactly for finite x, NaN for ±∞ and NaN). */
function allFinite(p: usize, n: i32): bool {
  let j = 0, bad = f32x4.splat(0);
  for (; j + 4 <= n; j += 4) {
    const x = v128.load(p + (<usize>j << 2));
    bad = v128.or(bad, f32x4.ne(f32x4.sub(x, x), f32x4.splat(0)));
  }
  if (v128.any_true(bad)) return false;
  for (; j < n; j++) {
    const x = load<f32>(p + (<usize>j << 2));
    if (x - x != 0) return false;
  }
  return true;
}

/**
 * Attention of n query rows (program.ts AttentionCall): row i's byte offsets (q, k, v, out) at desc + 16i.
 * The nine kernels it stands for, in order, each over all n rows of scores at once in `scratch` (n·S + 2n
 * floats), by the functions those kernels run, so the same bits: q·kᵀ (gemv over the rows of k, [S, hd]),
 * × scale, where(mask, ·, fill) with the mask one row for all, max, − max, exp, sum, ÷ sum, then ·v (gemv, v
 * [S, hd]) into out. Only the slots up to the last unmasked one (rounded up to 16) are computed when the fill
 * is −∞ and every row's later v rows are finite: those slots weigh exactly 0 (exp(−∞ − max) = +0), and adding
 * +0 or 0·v changes no sum, so leaving them out changes no bit.
 */
export function attendRows(
  q: usize, k: usize, v: usize, out: usize, hd: i32, S: i32, mask: usize, scale: usize, fill: usize, desc: usize,
  n: i32, scratch: usize,
): void {
  const fillBits = load<u32>(fill), ld = <usize>hd << 2;
  let last = S - 1;
  while (last >= 0 && load<u8>(mask + <usize>last) == 0) last--;
  let t = last >= 0 && reinterpret<f32>(fillBits) == -Infinity ? min(S, (last + 16) & ~15) : S;
  for (let i = 0, prev: usize = -1; i < n && t < S; i++) {
    const vr = v + <usize>load<u32>(desc + (<usize>i << 4), 8);
    if (vr != prev && !allFinite(vr + <usize>t * ld, (S - t) * hd)) t = S;
    prev = vr; // the query rows of one KV head share its v: checked once
  }
  const s = scratch, rows = <usize>n * <usize>t, mx = s + (rows << 2), sum = mx + (<usize>n << 2);
  const rowBytes = <usize>t << 2;
  for (let i = 0; i < n; i++) {
    const d = desc + (<usize>i << 4);
    gemv(q + <usize>load<u32>(d), k + <usize>load<u32>(d, 4), s + <usize>i * rowBytes, hd, t, hd, 1);
  }
  binaryRow(2, s, 1, scale, 0, s, <i32>rows);
  // where(mask, scores, fill): four lanes at a time, the mask widened to lanes (where32's own selection).
  const fillv = i32x4.splat(fillBits);
  for (let i = 0; i < n; i++) {
    const r = s + <usize>i * rowBytes;
    let p = 0;
    for (; p + 4 <= t; p += 4) {
      const m = i32x4.ne(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(mask + <usize>p))), i32x4.splat(0));
      v128.store(r + (<usize>p << 2), v128.bitselect(v128.load(r + (<usize>p << 2)), fillv, m));
    }
    for (; p < t; p++) if (load<u8>(mask + <usize>p) == 0) store<u32>(r + (<usize>p << 2), fillBits);
  }
  reduceF32(1, s, mx, n, t, 1);
  for (let i = 0; i < n; i++) binaryRow(1, s + <usize>i * rowBytes, 1, mx + (<usize>i << 2), 0, s + <usize>i * rowBytes, t);
  unaryF32(1, s, s, <i32>rows);
  reduceF32(0, s, sum, n, t, 1);
  for (let i = 0; i < n; i++) binaryRow(3, s + <usize>i * rowBytes, 1, sum + (<usize>i << 2), 0, s + <usize>i * rowBytes, t);
  for (let i = 0; i < n; i++) {
    const d = desc + (<usize>i << 4);
    gemv(s + <usize>i * rowBytes, v + <usize>load<u32>(d, 8), out + <usize>load<u32>(d, 12), t, hd, hd, 0);
  }
}
