// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// Vector products of the CPU engine (decode: x·Wᵀ with one row x; matrix·vector), on buffers in the engine's
// one linear memory. Part of the module built by build.ts (entry: engine.as.ts).

/** acc + a·b lane-wise: fused relaxed_madd in the "fma" build (used only where it fuses), else mul then add. */
// @ts-ignore: decorator
@inline export function madd(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Lane sums of two accumulators, then the scalar tail p..K of x·row (the end of every dot product). */
// @ts-ignore: decorator
@inline export function finish(a0: v128, a1: v128, x: usize, row: usize, p: i32, K: i32): f32 {
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
      // Moving pointers and constant offsets: each load is one bounds check, no address arithmetic of its own
      // (Deno's V8 checks every access explicitly: no trap handler). Sixteen at a time, then eight: the same
      // chains in the same order.
      let xp = x, q0 = r0, q1 = r1, q2 = r2, q3 = r3;
      for (; p + 16 <= K8; p += 16, xp += 64, q0 += 64, q1 += 64, q2 += 64, q3 += 64) {
        let x0 = v128.load(xp), x1 = v128.load(xp, 16);
        a00 = madd(a00, x0, v128.load(q0)); a01 = madd(a01, x1, v128.load(q0, 16));
        a10 = madd(a10, x0, v128.load(q1)); a11 = madd(a11, x1, v128.load(q1, 16));
        a20 = madd(a20, x0, v128.load(q2)); a21 = madd(a21, x1, v128.load(q2, 16));
        a30 = madd(a30, x0, v128.load(q3)); a31 = madd(a31, x1, v128.load(q3, 16));
        x0 = v128.load(xp, 32), x1 = v128.load(xp, 48);
        a00 = madd(a00, x0, v128.load(q0, 32)); a01 = madd(a01, x1, v128.load(q0, 48));
        a10 = madd(a10, x0, v128.load(q1, 32)); a11 = madd(a11, x1, v128.load(q1, 48));
        a20 = madd(a20, x0, v128.load(q2, 32)); a21 = madd(a21, x1, v128.load(q2, 48));
        a30 = madd(a30, x0, v128.load(q3, 32)); a31 = madd(a31, x1, v128.load(q3, 48));
      }
      if (p < K8) {
        const x0 = v128.load(xp), x1 = v128.load(xp, 16);
        a00 = madd(a00, x0, v128.load(q0)); a01 = madd(a01, x1, v128.load(q0, 16));
        a10 = madd(a10, x0, v128.load(q1)); a11 = madd(a11, x1, v128.load(q1, 16));
        a20 = madd(a20, x0, v128.load(q2)); a21 = madd(a21, x1, v128.load(q2, 16));
        a30 = madd(a30, x0, v128.load(q3)); a31 = madd(a31, x1, v128.load(q3, 16));
        p += 8;
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

