// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// The composites of the CPU engine (program.ts CompositeCall: decode attention, RMSNorm, RoPE), each the
// kernels it stands for run by their own functions in one call, so the same bits. Part of the module built by
// build.ts (entry: engine.as.ts).
import { binaryRow, reduceF32, unaryF32 } from "./elementwise.as";
import { finish, gemv, laneSums4, madd } from "./vector.as";

/**
 * Whether the n floats at p are all finite: x·0 is ±0 for finite x and NaN for ±∞ and NaN, so the bits of the products
 * or-ed together have every exponent bit set only if some x was not finite (an or waits one cycle where a sum waits four).
 */
function allFinite(p: usize, n: i32): bool {
  const zero = f32x4.splat(0);
  let j = 0, a = zero, b = zero;
  for (; j + 16 <= n; j += 16) {
    const q = p + (<usize>j << 2);
    a = v128.or(a, v128.or(f32x4.mul(v128.load(q), zero), f32x4.mul(v128.load(q, 16), zero)));
    b = v128.or(b, v128.or(f32x4.mul(v128.load(q, 32), zero), f32x4.mul(v128.load(q, 48), zero)));
  }
  for (; j + 4 <= n; j += 4) a = v128.or(a, f32x4.mul(v128.load(p + (<usize>j << 2)), zero));
  let s: f32 = 0;
  for (; j < n; j++) s += load<f32>(p + (<usize>j << 2)) * 0;
  const e = i32x4.splat(0x7f800000);
  return s == 0 && !v128.any_true(i32x4.eq(v128.and(v128.or(a, b), e), e));
}

/**
 * Attention of n query rows (program.ts CompositeOp "attention"): row i's byte offsets (q, k, v, out) at desc + 16i.
 * The nine kernels it stands for, in order, each over all n rows of scores at once in `scratch` (n·S + 2n
 * floats), by the functions those kernels run, so the same bits: q·kᵀ (gemv over the rows of k, [S, hd]),
 * × scale, where(mask, ·, fill) with the mask one row for all, max, − max, exp, sum, ÷ sum, then ·v (gemv, v
 * [S, hd]) into out. Only the slots up to the last unmasked one are computed when the fill
 * is −∞ and every row's later v rows are finite: those slots weigh exactly 0 (exp(−∞ − max) = +0), and adding
 * +0 or 0·v changes no sum, so leaving them out changes no bit.
 */
export function attendRows(
  q: usize, k: usize, v: usize, out: usize, hd: i32, S: i32, mask: usize, scale: usize, fill: usize, desc: usize,
  n: i32, scratch: usize,
): void {
  const fillBits = load<u32>(fill), ld = <usize>hd << 2;
  let last = S - 1;
  while (last >= 15 && !v128.any_true(v128.load(mask + <usize>(last - 15)))) last -= 16; // sixteen slots at a time
  while (last >= 0 && load<u8>(mask + <usize>last) == 0) last--;
  let t = last >= 0 && reinterpret<f32>(fillBits) == -Infinity ? min(S, last + 1) : S;
  for (let i = 0, prev: usize = -1; i < n && t < S; i++) {
    const vr = v + <usize>load<u32>(desc + (<usize>i << 4), 8);
    if (vr != prev && !allFinite(vr + <usize>t * ld, (S - t) * hd)) t = S;
    prev = vr; // the query rows of one KV head share its v: checked once
  }
  const s = scratch, rows = <usize>n * <usize>t, mx = s + (rows << 2), sum = mx + (<usize>n << 2);
  const rowBytes = <usize>t << 2;
  if (!(hd & 7) && t > 0) {
    let gapless = true, p = 0; // a decode step's prefix: where(mask, ·, fill) leaves every slot computed as it is
    for (; p + 16 <= t && gapless; p += 16) gapless = i8x16.all_true(v128.load(mask + <usize>p));
    for (; p < t && gapless; p++) gapless = load<u8>(mask + <usize>p) != 0;
    if (gapless) {
      attendPrefix(q, k, v, out, hd, scale, desc, n, t, s);
      return;
    }
  }
  for (let i = 0; i < n; i++) {
    const d = desc + (<usize>i << 4);
    gemv(q + <usize>load<u32>(d), k + <usize>load<u32>(d, 4), s + <usize>i * rowBytes, hd, t, hd, 1);
  }
  binaryRow(2, s, 1, scale, 0, s, <i32>rows);
  // where(mask, scores, fill): four lanes at a time, the mask widened to lanes (where32's own selection); nothing
  // to do where every slot computed is unmasked (a decode step's prefix).
  let gaps = false, p0 = 0;
  for (; p0 + 16 <= t && !gaps; p0 += 16) gaps = !i8x16.all_true(v128.load(mask + <usize>p0));
  for (let p = p0; p < t && !gaps; p++) gaps = load<u8>(mask + <usize>p) == 0;
  const fillv = i32x4.splat(fillBits);
  for (let i = 0; i < n && gaps; i++) {
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

/** One slot's q·k as gemv's row (one chain over hd in steps of 4, the lane sum): the scores' slots past the last four. */
// @ts-ignore: decorator
@inline function scoreOf(x: usize, kr: usize, hd: i32): f32 {
  let a0 = f32x4.splat(0);
  for (let c = 0; c < hd; c += 4) a0 = madd(a0, v128.load(x + (<usize>c << 2)), v128.load(kr + (<usize>c << 2)));
  return finish(a0, x, kr, hd, hd);
}

/**
 * A row's max as reduceF32 gives it, stored at `at`, then − max over the row's t scores at r: a number other than ±0 is
 * the same whichever lane found it; NaN or a zero (the first one's sign) by its scalar loop.
 */
// @ts-ignore: decorator
@inline function settleMax(mx: v128, nan: v128, r: usize, t: i32, at: usize): void {
  mx = f32x4.pmax(mx, i32x4.shuffle(mx, mx, 2, 3, 0, 1));
  let m = f32x4.extract_lane(f32x4.pmax(mx, i32x4.shuffle(mx, mx, 1, 0, 3, 2)), 0);
  if (v128.any_true(nan) || m == 0) {
    m = -Infinity;
    for (let j = 0; j < t; j++) {
      const e = load<f32>(r + (<usize>j << 2));
      if (e != e) { m = e; break; }
      if (e > m) m = e;
    }
  }
  store<f32>(at, m);
  binaryRow(1, r, 1, at, 0, r, t);
}

/**
 * attendRows where no slot below t is masked and hd is a multiple of 8 (a decode step): the same operations on the
 * same values, but three passes instead of nine kernels' — per row, q·kᵀ as gemv's rows (one chain each) with × scale and
 * the max folded in; − max, exp and the float64 sums by the kernels' own functions; per row, ÷ sum, then ·v for
 * two rows at once (four add chains, where one row's two wait on each add). Two neighbouring rows on one KV head
 * (grouped-query attention: stories260K's 8 query heads on 4) share each load of k and of v. Scores at s, then
 * maxima and sums.
 */
function attendPrefix(q: usize, k: usize, v: usize, out: usize, hd: i32, scale: usize, desc: usize, n: i32, t: i32, s: usize): void {
  const ld = <usize>hd << 2, rowBytes = <usize>t << 2, mxs = s + <usize>n * rowBytes, sums = mxs + (<usize>n << 2);
  const z = f32x4.splat(0), sc = v128.load32_splat(scale), t4 = t & ~3;
  for (let i = 0; i < n; i++) {
    const d = desc + (<usize>i << 4), x = q + <usize>load<u32>(d), r = s + <usize>i * rowBytes;
    let kr = k + <usize>load<u32>(d, 4), mx = f32x4.splat(-Infinity), nan = z, p = 0;
    const pair = i + 1 < n && load<u32>(d, 4) == load<u32>(d, 20);
    if (pair) {
      // Two query rows on one KV head (grouped-query attention): each load of k serves both; each row's chains as alone.
      const y = q + <usize>load<u32>(d, 16);
      let my = mx, nany = z;
      for (; p < t4; p += 4, kr += ld << 2) {
        let a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z, xp = x, yp = y;
        let q0 = kr, q1 = kr + ld, q2 = q1 + ld, q3 = q2 + ld;
        for (let c = 0; c < hd; c += 8, xp += 32, yp += 32, q0 += 32, q1 += 32, q2 += 32, q3 += 32) {
          const x0 = v128.load(xp), x1 = v128.load(xp, 16), y0 = v128.load(yp), y1 = v128.load(yp, 16);
          let u = v128.load(q0), w = v128.load(q0, 16);
          a0 = madd(madd(a0, x0, u), x1, w); b0 = madd(madd(b0, y0, u), y1, w);
          u = v128.load(q1), w = v128.load(q1, 16);
          a1 = madd(madd(a1, x0, u), x1, w); b1 = madd(madd(b1, y0, u), y1, w);
          u = v128.load(q2), w = v128.load(q2, 16);
          a2 = madd(madd(a2, x0, u), x1, w); b2 = madd(madd(b2, y0, u), y1, w);
          u = v128.load(q3), w = v128.load(q3, 16);
          a3 = madd(madd(a3, x0, u), x1, w); b3 = madd(madd(b3, y0, u), y1, w);
        }
        const sv = f32x4.mul(laneSums4(a0, a1, a2, a3), sc), sw = f32x4.mul(laneSums4(b0, b1, b2, b3), sc);
        v128.store(r + (<usize>p << 2), sv); v128.store(r + rowBytes + (<usize>p << 2), sw);
        mx = f32x4.pmax(mx, sv), nan = v128.or(nan, f32x4.ne(sv, sv));
        my = f32x4.pmax(my, sw), nany = v128.or(nany, f32x4.ne(sw, sw));
      }
      for (let kt = kr, pt = p; pt < t; pt++, kt += ld) {
        const sw = f32x4.splat(scoreOf(y, kt, hd) * load<f32>(scale));
        store<f32>(r + rowBytes + (<usize>pt << 2), f32x4.extract_lane(sw, 0));
        my = f32x4.pmax(my, sw), nany = v128.or(nany, f32x4.ne(sw, sw));
      }
      settleMax(my, nany, r + rowBytes, t, mxs + (<usize>(i + 1) << 2));
    }
    for (; p < t4; p += 4, kr += ld << 2) {
      let a0 = z, a1 = z, a2 = z, a3 = z, xp = x, q0 = kr, q1 = kr + ld, q2 = q1 + ld, q3 = q2 + ld;
      for (let c = 0; c < hd; c += 8, xp += 32, q0 += 32, q1 += 32, q2 += 32, q3 += 32) {
        const x0 = v128.load(xp), x1 = v128.load(xp, 16);
        a0 = madd(madd(a0, x0, v128.load(q0)), x1, v128.load(q0, 16));
        a1 = madd(madd(a1, x0, v128.load(q1)), x1, v128.load(q1, 16));
        a2 = madd(madd(a2, x0, v128.load(q2)), x1, v128.load(q2, 16));
        a3 = madd(madd(a3, x0, v128.load(q3)), x1, v128.load(q3, 16));
      }
      // gemv's lane sums of four rows, then × scale as binaryRow does
      const sv = f32x4.mul(laneSums4(a0, a1, a2, a3), sc);
      v128.store(r + (<usize>p << 2), sv);
      mx = f32x4.pmax(mx, sv);
      nan = v128.or(nan, f32x4.ne(sv, sv));
    }
    for (; p < t; p++, kr += ld) {
      const sv = f32x4.splat(scoreOf(x, kr, hd) * load<f32>(scale));
      store<f32>(r + (<usize>p << 2), f32x4.extract_lane(sv, 0));
      mx = f32x4.pmax(mx, sv);
      nan = v128.or(nan, f32x4.ne(sv, sv));
    }
    settleMax(mx, nan, r, t, mxs + (<usize>i << 2));
    if (pair) i++; // its pair's row is done too
  }
  unaryF32(1, s, s, n * t);
  reduceF32(0, s, sums, n, t, 1);
  for (let i = 0; i < n; i++) {
    const r = s + <usize>i * rowBytes;
    binaryRow(3, r, 1, sums + (<usize>i << 2), 0, r, t);
  }
  // ·v as gemv's [t]·[t, hd] (per column, a0 + p·v in slot order, mul then add), each probability loaded once
  // for four slots and broadcast by a shuffle.
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const d0 = desc + (<usize>i << 4), d1 = d0 + 16, e0 = s + <usize>i * rowBytes, e1 = e0 + rowBytes;
    const o0 = out + <usize>load<u32>(d0, 12), o1 = out + <usize>load<u32>(d1, 12);
    const shared = load<u32>(d0, 8) == load<u32>(d1, 8); // two query rows on one KV head: each load of v serves both
    for (let c = 0; c < hd; c += 8) {
      let c0 = v + <usize>load<u32>(d0, 8) + (<usize>c << 2), c1 = v + <usize>load<u32>(d1, 8) + (<usize>c << 2);
      let a0 = z, a1 = z, b0 = z, b1 = z, p = 0;
      for (; shared && p < t4; p += 4) {
        const u = v128.load(e0 + (<usize>p << 2)), w = v128.load(e1 + (<usize>p << 2));
        let v0 = v128.load(c0), v1 = v128.load(c0, 16), uu = i32x4.shuffle(u, u, 0, 0, 0, 0), ww = i32x4.shuffle(w, w, 0, 0, 0, 0);
        a0 = f32x4.add(a0, f32x4.mul(uu, v0)); a1 = f32x4.add(a1, f32x4.mul(uu, v1));
        b0 = f32x4.add(b0, f32x4.mul(ww, v0)); b1 = f32x4.add(b1, f32x4.mul(ww, v1));
        v0 = v128.load(c0 + ld), v1 = v128.load(c0 + ld, 16), uu = i32x4.shuffle(u, u, 1, 1, 1, 1), ww = i32x4.shuffle(w, w, 1, 1, 1, 1);
        a0 = f32x4.add(a0, f32x4.mul(uu, v0)); a1 = f32x4.add(a1, f32x4.mul(uu, v1));
        b0 = f32x4.add(b0, f32x4.mul(ww, v0)); b1 = f32x4.add(b1, f32x4.mul(ww, v1));
        v0 = v128.load(c0 + 2 * ld), v1 = v128.load(c0 + 2 * ld, 16), uu = i32x4.shuffle(u, u, 2, 2, 2, 2), ww = i32x4.shuffle(w, w, 2, 2, 2, 2);
        a0 = f32x4.add(a0, f32x4.mul(uu, v0)); a1 = f32x4.add(a1, f32x4.mul(uu, v1));
        b0 = f32x4.add(b0, f32x4.mul(ww, v0)); b1 = f32x4.add(b1, f32x4.mul(ww, v1));
        v0 = v128.load(c0 + 3 * ld), v1 = v128.load(c0 + 3 * ld, 16), uu = i32x4.shuffle(u, u, 3, 3, 3, 3), ww = i32x4.shuffle(w, w, 3, 3, 3, 3);
        a0 = f32x4.add(a0, f32x4.mul(uu, v0)); a1 = f32x4.add(a1, f32x4.mul(uu, v1));
        b0 = f32x4.add(b0, f32x4.mul(ww, v0)); b1 = f32x4.add(b1, f32x4.mul(ww, v1));
        c0 += ld << 2, c1 = c0;
      }
      for (; p < t4; p += 4) {
        const u = v128.load(e0 + (<usize>p << 2)), w = v128.load(e1 + (<usize>p << 2));
        let uu = i32x4.shuffle(u, u, 0, 0, 0, 0), ww = i32x4.shuffle(w, w, 0, 0, 0, 0);
        a0 = f32x4.add(a0, f32x4.mul(uu, v128.load(c0))); a1 = f32x4.add(a1, f32x4.mul(uu, v128.load(c0, 16)));
        b0 = f32x4.add(b0, f32x4.mul(ww, v128.load(c1))); b1 = f32x4.add(b1, f32x4.mul(ww, v128.load(c1, 16)));
        c0 += ld, c1 += ld;
        uu = i32x4.shuffle(u, u, 1, 1, 1, 1), ww = i32x4.shuffle(w, w, 1, 1, 1, 1);
        a0 = f32x4.add(a0, f32x4.mul(uu, v128.load(c0))); a1 = f32x4.add(a1, f32x4.mul(uu, v128.load(c0, 16)));
        b0 = f32x4.add(b0, f32x4.mul(ww, v128.load(c1))); b1 = f32x4.add(b1, f32x4.mul(ww, v128.load(c1, 16)));
        c0 += ld, c1 += ld;
        uu = i32x4.shuffle(u, u, 2, 2, 2, 2), ww = i32x4.shuffle(w, w, 2, 2, 2, 2);
        a0 = f32x4.add(a0, f32x4.mul(uu, v128.load(c0))); a1 = f32x4.add(a1, f32x4.mul(uu, v128.load(c0, 16)));
        b0 = f32x4.add(b0, f32x4.mul(ww, v128.load(c1))); b1 = f32x4.add(b1, f32x4.mul(ww, v128.load(c1, 16)));
        c0 += ld, c1 += ld;
        uu = i32x4.shuffle(u, u, 3, 3, 3, 3), ww = i32x4.shuffle(w, w, 3, 3, 3, 3);
        a0 = f32x4.add(a0, f32x4.mul(uu, v128.load(c0))); a1 = f32x4.add(a1, f32x4.mul(uu, v128.load(c0, 16)));
        b0 = f32x4.add(b0, f32x4.mul(ww, v128.load(c1))); b1 = f32x4.add(b1, f32x4.mul(ww, v128.load(c1, 16)));
        c0 += ld, c1 += ld;
      }
      for (; p < t; p++, c0 += ld, c1 += ld) {
        const uu = v128.load32_splat(e0 + (<usize>p << 2)), ww = v128.load32_splat(e1 + (<usize>p << 2));
        a0 = f32x4.add(a0, f32x4.mul(uu, v128.load(c0))); a1 = f32x4.add(a1, f32x4.mul(uu, v128.load(c0, 16)));
        b0 = f32x4.add(b0, f32x4.mul(ww, v128.load(c1))); b1 = f32x4.add(b1, f32x4.mul(ww, v128.load(c1, 16)));
      }
      v128.store(o0 + (<usize>c << 2), a0); v128.store(o0 + (<usize>c << 2), a1, 16);
      v128.store(o1 + (<usize>c << 2), b0); v128.store(o1 + (<usize>c << 2), b1, 16);
    }
  }
  if (i < n) {
    const d = desc + (<usize>i << 4);
    gemv(s + <usize>i * rowBytes, v + <usize>load<u32>(d, 8), out + <usize>load<u32>(d, 12), t, hd, hd, 0);
  }
}

/**
 * RMSNorm of `rows` rows of n floats (program.ts CompositeOp "rmsNorm"): square, the rows' sums (float64, four
 * rows at a time as reduceF32 does), ÷ n, + eps, rsqrt, × x, × weight, by the functions of those kernels;
 * sixteen rows at a time, their squares in `scratch` (16·n + 32 floats).
 */
export function rmsNormRows(x: usize, count: usize, eps: usize, w: usize, out: usize, rows: i32, n: i32, scratch: usize): void {
  const sums = scratch + (<usize>(16 * n) << 2), r = sums + 64;
  for (let r0 = 0; r0 < rows; r0 += 16) {
    const m = min(16, rows - r0), xb = x + (<usize>(r0 * n) << 2), ob = out + (<usize>(r0 * n) << 2);
    unaryF32(11, xb, scratch, m * n);
    reduceF32(0, scratch, sums, m, n, 1);
    binaryRow(3, sums, 1, count, 0, r, m);
    binaryRow(0, r, 1, eps, 0, r, m);
    unaryF32(4, r, r, m);
    for (let i = 0; i < m; i++) {
      const o = <usize>(i * n) << 2;
      binaryRow(2, xb + o, 1, r + (<usize>i << 2), 0, ob + o, n);
      binaryRow(2, ob + o, 1, w, 1, ob + o, n);
    }
  }
}

/**
 * RoPE of `rows` rows of hd floats (program.ts CompositeOp "rope"), one cos and sin row for all:
 * out = x·cos + [−x₂, x₁]·sin, each product rounded, then the sum, as the kernels it stands for.
 */
export function ropeRows(x: usize, cos: usize, sin: usize, out: usize, rows: i32, hd: i32): void {
  const half = hd >> 1, hb = <usize>half << 2;
  for (let i = 0; i < rows; i++) {
    const xr = x + (<usize>(i * hd) << 2), o = out + (<usize>(i * hd) << 2);
    let j = 0;
    for (; j + 4 <= half; j += 4) {
      const q = <usize>j << 2, a = v128.load(xr + q), b = v128.load(xr + q + hb);
      v128.store(o + q, f32x4.add(f32x4.mul(a, v128.load(cos + q)), f32x4.mul(f32x4.neg(b), v128.load(sin + q))));
      v128.store(o + q + hb, f32x4.add(f32x4.mul(b, v128.load(cos + q + hb)), f32x4.mul(a, v128.load(sin + q + hb))));
    }
    for (; j < half; j++) {
      const q = <usize>j << 2, a = load<f32>(xr + q), b = load<f32>(xr + q + hb);
      store<f32>(o + q, a * load<f32>(cos + q) + (-b) * load<f32>(sin + q));
      store<f32>(o + q + hb, b * load<f32>(cos + q + hb) + a * load<f32>(sin + q + hb));
    }
  }
}
