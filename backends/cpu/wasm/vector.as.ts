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

/** The lane sum (l0 + l1) + (l2 + l3) of a row's accumulator, then the scalar tail p..K of x·row (the end of every dot product). */
// @ts-ignore: decorator
@inline export function finish(a: v128, x: usize, row: usize, p: i32, K: i32): f32 {
  let s = (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
  for (; p < K; p++) s += load<f32>(x + (<usize>p << 2)) * load<f32>(row + (<usize>p << 2));
  return s;
}

/** Four rows' lane sums (l0 + l1) + (l2 + l3) at once, through a 4×4 transpose (rows with no scalar tail). */
// @ts-ignore: decorator
@inline export function laneSums4(t0: v128, t1: v128, t2: v128, t3: v128): v128 {
  const m0 = i32x4.shuffle(t0, t1, 0, 4, 1, 5), m1 = i32x4.shuffle(t2, t3, 0, 4, 1, 5);
  const m2 = i32x4.shuffle(t0, t1, 2, 6, 3, 7), m3 = i32x4.shuffle(t2, t3, 2, 6, 3, 7);
  const l01 = f32x4.add(i32x4.shuffle(m0, m1, 0, 1, 4, 5), i32x4.shuffle(m0, m1, 2, 3, 6, 7));
  const l23 = f32x4.add(i32x4.shuffle(m2, m3, 0, 1, 4, 5), i32x4.shuffle(m2, m3, 2, 3, 6, 7));
  return f32x4.add(l01, l23);
}

/**
 * gemv's rows (x·Wᵀ) eight at a time, N/8 rows apart (gemv's transW 1); returns the rows done. Each row the same one
 * chain as gemv's.
 */
function rowsApart8(x: usize, w: usize, out: usize, K: i32, N: i32, ld: usize): i32 {
  const z = f32x4.splat(0), K4 = K & ~3, K16 = K & ~15, x16 = x + (<usize>K16 << 2), x4 = x + (<usize>K4 << 2);
  // Eight rows at a time share each load of x (one x load per eight W loads: every load is bounds-checked,
  // Deno installs no trap handler); moving pointers with constant offsets, so a load is one compare and
  // branch with no address arithmetic of its own. The eight rows are N/8 rows apart: eight long streams
  // through memory, where eight neighbouring rows (a jump of one row between loads) defeat the hardware
  // prefetcher of some cores (Zen 4, a C probe over the 15M shape's 35 MiB classifier: 8.6 → 21 GB/s).
  const s = N >> 3, step = <usize>s * ld, cs = <usize>s << 2;
  for (let j = 0; j < s; j++) {
    let q0 = w + <usize>j * ld, q1 = q0 + step, q2 = q1 + step, q3 = q2 + step, q4 = q3 + step, q5 = q4 + step;
    let q6 = q5 + step, q7 = q6 + step, a0 = z, a1 = z, a2 = z, a3 = z, a4 = z, a5 = z, a6 = z, a7 = z, xp = x;
    // The loop ends on x's pointer (no counter of its own: one register fewer, where V8 spills).
    for (; xp < x16; xp += 64, q0 += 64, q1 += 64, q2 += 64, q3 += 64, q4 += 64, q5 += 64, q6 += 64, q7 += 64) {
      let v = v128.load(xp);
      a0 = madd(a0, v, v128.load(q0)); a1 = madd(a1, v, v128.load(q1)); a2 = madd(a2, v, v128.load(q2)); a3 = madd(a3, v, v128.load(q3));
      a4 = madd(a4, v, v128.load(q4)); a5 = madd(a5, v, v128.load(q5)); a6 = madd(a6, v, v128.load(q6)); a7 = madd(a7, v, v128.load(q7));
      v = v128.load(xp, 16);
      a0 = madd(a0, v, v128.load(q0, 16)); a1 = madd(a1, v, v128.load(q1, 16)); a2 = madd(a2, v, v128.load(q2, 16)); a3 = madd(a3, v, v128.load(q3, 16));
      a4 = madd(a4, v, v128.load(q4, 16)); a5 = madd(a5, v, v128.load(q5, 16)); a6 = madd(a6, v, v128.load(q6, 16)); a7 = madd(a7, v, v128.load(q7, 16));
      v = v128.load(xp, 32);
      a0 = madd(a0, v, v128.load(q0, 32)); a1 = madd(a1, v, v128.load(q1, 32)); a2 = madd(a2, v, v128.load(q2, 32)); a3 = madd(a3, v, v128.load(q3, 32));
      a4 = madd(a4, v, v128.load(q4, 32)); a5 = madd(a5, v, v128.load(q5, 32)); a6 = madd(a6, v, v128.load(q6, 32)); a7 = madd(a7, v, v128.load(q7, 32));
      v = v128.load(xp, 48);
      a0 = madd(a0, v, v128.load(q0, 48)); a1 = madd(a1, v, v128.load(q1, 48)); a2 = madd(a2, v, v128.load(q2, 48)); a3 = madd(a3, v, v128.load(q3, 48));
      a4 = madd(a4, v, v128.load(q4, 48)); a5 = madd(a5, v, v128.load(q5, 48)); a6 = madd(a6, v, v128.load(q6, 48)); a7 = madd(a7, v, v128.load(q7, 48));
    }
    for (; xp < x4; xp += 16, q0 += 16, q1 += 16, q2 += 16, q3 += 16, q4 += 16, q5 += 16, q6 += 16, q7 += 16) {
      const v = v128.load(xp);
      a0 = madd(a0, v, v128.load(q0)); a1 = madd(a1, v, v128.load(q1)); a2 = madd(a2, v, v128.load(q2)); a3 = madd(a3, v, v128.load(q3));
      a4 = madd(a4, v, v128.load(q4)); a5 = madd(a5, v, v128.load(q5)); a6 = madd(a6, v, v128.load(q6)); a7 = madd(a7, v, v128.load(q7));
    }
    const c = out + (<usize>j << 2), p = K4;
    if (p == K) {
      const l = laneSums4(a0, a1, a2, a3), h = laneSums4(a4, a5, a6, a7);
      store<f32>(c, f32x4.extract_lane(l, 0)); store<f32>(c + cs, f32x4.extract_lane(l, 1));
      store<f32>(c + 2 * cs, f32x4.extract_lane(l, 2)); store<f32>(c + 3 * cs, f32x4.extract_lane(l, 3));
      store<f32>(c + 4 * cs, f32x4.extract_lane(h, 0)); store<f32>(c + 5 * cs, f32x4.extract_lane(h, 1));
      store<f32>(c + 6 * cs, f32x4.extract_lane(h, 2)); store<f32>(c + 7 * cs, f32x4.extract_lane(h, 3));
      continue;
    }
    const r0 = w + <usize>j * ld;
    store<f32>(c, finish(a0, x, r0, p, K)); store<f32>(c + cs, finish(a1, x, r0 + step, p, K));
    store<f32>(c + 2 * cs, finish(a2, x, r0 + 2 * step, p, K)); store<f32>(c + 3 * cs, finish(a3, x, r0 + 3 * step, p, K));
    store<f32>(c + 4 * cs, finish(a4, x, r0 + 4 * step, p, K)); store<f32>(c + 5 * cs, finish(a5, x, r0 + 5 * step, p, K));
    store<f32>(c + 6 * cs, finish(a6, x, r0 + 6 * step, p, K)); store<f32>(c + 7 * cs, finish(a7, x, r0 + 7 * step, p, K));
  }
  return s << 3;
}

/**
 * gemv's rows (x·Wᵀ) four at a time, rows j, j + s, j + 2s, j + 3s for j0 ≤ j < j1 (s = N/4 for all of a gemv's N),
 * for weights streamed from memory (gemv's transW 2 and 3, and a lane's claims): four
 * streams keep more of the hardware prefetcher's pace than eight (Zen 4, a C probe over 35 MiB of 288-wide rows:
 * 26–32 GB/s on one thread against 23–27, 47–52 on two against 44–48), where eight rows sharing each load of x
 * issue fewer instructions for weights in cache. Each row the same one chain as gemv's.
 */
function rowsApart4(x: usize, w: usize, out: usize, K: i32, j0: i32, j1: i32, s: i32, ld: usize): void {
  const z = f32x4.splat(0), K4 = K & ~3, K16 = K & ~15, x16 = x + (<usize>K16 << 2), x4 = x + (<usize>K4 << 2);
  const step = <usize>s * ld, cs = <usize>s << 2;
  for (let j = j0; j < j1; j++) {
    let q0 = w + <usize>j * ld, q1 = q0 + step, q2 = q1 + step, q3 = q2 + step, a0 = z, a1 = z, a2 = z, a3 = z, xp = x;
    for (; xp < x16; xp += 64, q0 += 64, q1 += 64, q2 += 64, q3 += 64) {
      let v = v128.load(xp);
      a0 = madd(a0, v, v128.load(q0)); a1 = madd(a1, v, v128.load(q1)); a2 = madd(a2, v, v128.load(q2)); a3 = madd(a3, v, v128.load(q3));
      v = v128.load(xp, 16);
      a0 = madd(a0, v, v128.load(q0, 16)); a1 = madd(a1, v, v128.load(q1, 16)); a2 = madd(a2, v, v128.load(q2, 16)); a3 = madd(a3, v, v128.load(q3, 16));
      v = v128.load(xp, 32);
      a0 = madd(a0, v, v128.load(q0, 32)); a1 = madd(a1, v, v128.load(q1, 32)); a2 = madd(a2, v, v128.load(q2, 32)); a3 = madd(a3, v, v128.load(q3, 32));
      v = v128.load(xp, 48);
      a0 = madd(a0, v, v128.load(q0, 48)); a1 = madd(a1, v, v128.load(q1, 48)); a2 = madd(a2, v, v128.load(q2, 48)); a3 = madd(a3, v, v128.load(q3, 48));
    }
    for (; xp < x4; xp += 16, q0 += 16, q1 += 16, q2 += 16, q3 += 16) {
      const v = v128.load(xp);
      a0 = madd(a0, v, v128.load(q0)); a1 = madd(a1, v, v128.load(q1)); a2 = madd(a2, v, v128.load(q2)); a3 = madd(a3, v, v128.load(q3));
    }
    // finish, not laneSums4: the same sums, and four rows of a long stream leave no time to save.
    const c = out + (<usize>j << 2), r0 = w + <usize>j * ld;
    store<f32>(c, finish(a0, x, r0, K4, K)); store<f32>(c + cs, finish(a1, x, r0 + step, K4, K));
    store<f32>(c + 2 * cs, finish(a2, x, r0 + 2 * step, K4, K)); store<f32>(c + 3 * cs, finish(a3, x, r0 + 3 * step, K4, K));
  }
}

/**
 * Matrix-vector product: out[j] = Σ_p x[p] · W(p, j) for j < N, with W(p, j) = w[j·ldw + p] when transW,
 * else w[p·ldw + j]. float32 accumulation, like matmul.
 *
 * transW 1 (each output a dot product of contiguous rows): eight rows at a time share the loads of x (four, for
 * weights streamed from memory: transW 2 and 3, rowsApart4); each row keeps one lane accumulator over p in steps of 4,
 * summed lanes (0+1)+(2+3), then the scalar tail. A row left over after the groups runs the same sequence alone,
 * so an output's bits do not depend on which rows a call (or a thread) computes, nor on the group. transW 0: 16
 * (then 4) outputs at a time in registers, p in order, one mul and one add per term like the scalar tail.
 */
export function gemv(x: usize, w: usize, out: usize, K: i32, N: i32, ldw: i32, transW: i32): void {
  const ld = <usize>ldw << 2, z = f32x4.splat(0);
  if (transW) {
    // The rows left over: each the same chain alone (one accumulator over p in steps of 4, the lane sum, the
    // scalar tail), so an output's bits do not depend on which rows a call (or a thread) computes. transW 3 (a
    // lane: gemvLane) called whole is transW 2.
    let j = N & ~3;
    if (transW >= 2) rowsApart4(x, w, out, K, 0, N >> 2, N >> 2, ld);
    else j = rowsApart8(x, w, out, K, N, ld);
    oneRows(x, w, out, K, j, N, ld);
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

/** Rows j0..j1 of x·Wᵀ one at a time: each the one chain of every gemv row (the rows left over after the groups). */
function oneRows(x: usize, w: usize, out: usize, K: i32, j0: i32, j1: i32, ld: usize): void {
  const K4 = K & ~3;
  for (let j = j0; j < j1; j++) {
    const r0 = w + <usize>j * ld;
    let a0 = f32x4.splat(0), p = 0;
    for (; p < K4; p += 4) a0 = madd(a0, v128.load(x + (<usize>p << 2)), v128.load(r0 + (<usize>p << 2)));
    store<f32>(out + (<usize>j << 2), finish(a0, x, r0, p, K));
  }
}

/** Groups of four rows one claim on a lane takes (8 × 4 rows of the 15M shape's 288 floats: 36 KiB, ~2 µs). */
const LANE_CLAIM = 8;
/** Byte offset in a lane's part of its claim word: groups left [front, back), front in the low half (i64). */
const LANE_WORD = 32;

/**
 * A lane of a streamed vector product split across threads (gemv's arguments at `part`, transW 3: a part of a
 * table in runParts): its thread takes its groups of four rows (rowsApart4's, over the lane's N) from the front
 * in claims of LANE_CLAIM, while a thread that has finished its own lanes takes them from the back (stealLanes).
 * So the threads end a product within a claim of each other, each streaming its lane from the front in one
 * pass, where parts claimed whole ended up to a part apart (2026-12-01, the 15M shape's decode: one thread
 * streaming while the other waited 11.5% of perf samples paired in time). Each row the one chain of every gemv
 * row: same bits.
 */
export function gemvLane(part: usize): void {
  const x = <usize>load<i32>(part), w = <usize>load<i32>(part, 4), out = <usize>load<i32>(part, 8);
  const K = load<i32>(part, 12), N = load<i32>(part, 16), ldw = load<i32>(part, 20);
  if (!ASC_FEATURE_THREADS) return gemv(x, w, out, K, N, ldw, 2);
  // A fresh claim word: the last run left it empty (or, after a trap, part-taken: a thief may then compute rows
  // this lane computes again, with the same bits).
  atomic.store<i64>(part + LANE_WORD, <i64>(N >> 2) << 32);
  oneRows(x, w, out, K, N & ~3, N, <usize>ldw << 2);
  for (;;) {
    const v = atomic.load<i64>(part + LANE_WORD), f = <i32>v, b = <i32>(v >>> 32);
    if (f >= b) return;
    const e = min(f + LANE_CLAIM, b);
    if (atomic.cmpxchg<i64>(part + LANE_WORD, v, (<i64>b << 32) | <i64><u32>e) != v) continue;
    laneGroups(part, f, e);
  }
}

/** Groups j0..j1 of the lane at `part`: rowsApart4 over the lane's N, with gemv's arguments in the part. */
function laneGroups(part: usize, j0: i32, j1: i32): void {
  const x = <usize>load<i32>(part), w = <usize>load<i32>(part, 4), out = <usize>load<i32>(part, 8);
  rowsApart4(x, w, out, load<i32>(part, 12), j0, j1, load<i32>(part, 16) >> 2, <usize>load<i32>(part, 20) << 2);
}

/**
 * After the last lane of a table is taken (runParts): takes claims from the back of the lane with the most
 * groups left until none has any. Parts that are not lanes (gemv's other transW) are passed over.
 */
export function stealLanes(table: usize, total: i32): void {
  if (!ASC_FEATURE_THREADS) return;
  for (;;) {
    let best: usize = 0, most = 0, seen: i64 = 0;
    for (let i = 0; i < total; i++) {
      const part = table + (<usize>i << 6);
      if (load<i32>(part, 24) != 3) continue;
      const v = atomic.load<i64>(part + LANE_WORD), left = <i32>(v >>> 32) - <i32>v;
      if (left > most) most = left, best = part, seen = v;
    }
    if (most <= 0) return;
    const f = <i32>seen, b = <i32>(seen >>> 32), nb = max(f, b - LANE_CLAIM);
    if (atomic.cmpxchg<i64>(best + LANE_WORD, seen, (<i64>nb << 32) | <i64><u32>f) != seen) continue;
    laneGroups(best, nb, b);
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

