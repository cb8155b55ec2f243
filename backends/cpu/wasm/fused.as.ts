// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// The fused kernel of the CPU engine: an interpreter of a jit fusion group (backends/program.ts FusedCall)
// that evaluates its expression over chunks of the output (CH elements, a few KiB: the chunk of every live
// node stays in L1), one node at a time, each node one tight (SIMD) pass over its chunk by the very row
// functions of the eager kernels (elementwise.as.ts), so every element gets the float operations of the
// unfused kernels, bit for bit. Inputs are read in place where the chunk is contiguous in them, else
// gathered through their strides into the node's chunk. With a reduction, the rows it reduces are
// produced into scratch a few at a time and reduced by the eager reduceF32 itself (long rows of a sum, max, min
// or argmax in chunks, folded in reduceF32's order).
//
// Program (i32 words, written once by backend.ts): [0] rank R, [1] nodes N, [2] inputs I, [3] CH, [4] reduce
// op (−1: none), [5] outer, [6] red, [7] inner, [8] total elements, [9] rows per reduce batch (0: a row in
// chunks), [10] slots, [11] chunks end at row ends (1/0), then dims[R];
// then per input (4 + R words): address, element bytes, element offset, how (1: read in place, 2: a broadcast
// scalar, filled once, 3: read in place along a row by float32 binary nodes where a chunk is within one row,
// 0: gathered), strides[R];
// then per node (7 words): kind, fn, operands a, b, c, scratch slot (−1: the destination), element bytes.
// Node kinds: 0 input (a: its index), 1 unary float32 (fn: op code), 2 binary float32, 3 binary int32,
// 4 binary bool (fn ≥ 5), 5 where, 6 cast (fn: from·3 + to), 7 logicalNot.
// Scratch: the slots (CH·4 bytes each), then N node addresses, N node steps (1, or a row step), R index words,
// then the reduce rows.
import { binaryRow, binI32, castData, reduceF32, unaryF32 } from "./elementwise.as";

// @ts-ignore: decorator
@inline function word(p: usize, k: i32): i32 {
  return load<i32>(p + (<usize>k << 2));
}

/** Four 0/1 bytes of a lane mask (all ones or zeros per 32-bit lane), stored at out. */
// @ts-ignore: decorator
@inline function storeMask(out: usize, m: v128): void {
  const w = i16x8.narrow_i32x4_s(m, m);
  v128.store32_lane(out, v128.and(i8x16.narrow_i16x8_s(w, w), i8x16.splat(1)), 0);
}

/** Four bytes at p widened to the 32-bit lanes of a vector. */
// @ts-ignore: decorator
@inline function widen(p: usize): v128 {
  return i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(p)));
}

/** A comparison (op codes 7–12) of four lanes, float32 or int32: what cmpScalar or binI32 give, lane-wise. */
// @ts-ignore: decorator
@inline function compare4(op: i32, f: bool, x: v128, y: v128): v128 {
  switch (op) {
    case 7: return f ? f32x4.eq(x, y) : i32x4.eq(x, y);
    case 8: return f ? f32x4.ne(x, y) : i32x4.ne(x, y);
    case 9: return f ? f32x4.lt(x, y) : i32x4.lt_s(x, y);
    case 10: return f ? f32x4.le(x, y) : i32x4.le_s(x, y);
    case 11: return f ? f32x4.gt(x, y) : i32x4.gt_s(x, y);
    default: return f ? f32x4.ge(x, y) : i32x4.ge_s(x, y);
  }
}

/** n float32 elements of a·b (add, sub, mul, div), one loop per op: the eager kernel's SIMD ops, no switch per vector. */
function arith(op: i32, a: usize, b: usize, out: usize, n: i32): i32 {
  let j = 0;
  switch (op) {
    case 0: for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o))); } break;
    case 1: for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(out + o, f32x4.sub(v128.load(a + o), v128.load(b + o))); } break;
    case 2: for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(out + o, f32x4.mul(v128.load(a + o), v128.load(b + o))); } break;
    case 3: for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(out + o, f32x4.div(v128.load(a + o), v128.load(b + o))); } break;
  }
  return j;
}

/** Elements [s, s + n) of the row-major view (dims at `dims`, rank R) of `src` read through `st`, into dst. */
function gather(src: usize, esz: i32, st: usize, dims: usize, R: i32, s: i32, n: i32, dst: usize, idx: usize): void {
  let off = 0, rem = s;
  for (let k = R - 1; k >= 0; k--) {
    const d = word(dims, k), i = rem % d;
    rem /= d;
    store<i32>(idx + (<usize>k << 2), i);
    off += i * word(st, k);
  }
  const last = R - 1, dn = word(dims, last), sl = word(st, last);
  let j = 0;
  while (true) {
    const i = word(idx, last), m = min(dn - i, n - j);
    const from = src + <usize>off * <usize>esz, to = dst + <usize>j * <usize>esz;
    if (sl == 1) memory.copy(to, from, <usize>m * <usize>esz);
    else if (esz == 1) {
      for (let q = 0; q < m; q++) store<u8>(to + <usize>q, load<u8>(from + <usize>(q * sl)));
    } else if (sl == 0) {
      const v = load<u32>(from);
      let q = 0;
      for (const w = i32x4.splat(v); q + 4 <= m; q += 4) v128.store(to + (<usize>q << 2), w);
      for (; q < m; q++) store<u32>(to + (<usize>q << 2), v);
    } else {
      for (let q = 0; q < m; q++) store<u32>(to + (<usize>q << 2), load<u32>(from + (<usize>(q * sl) << 2)));
    }
    j += m;
    if (j >= n) return;
    // The row is done (i + m = dn): back to its start, and on to the next index of the outer axes.
    off -= i * sl;
    store<i32>(idx + (<usize>last << 2), 0);
    for (let ax = last - 1; ax >= 0; ax--) {
      const p = idx + (<usize>ax << 2), i2 = load<i32>(p) + 1, sa = word(st, ax);
      if (i2 < word(dims, ax)) {
        store<i32>(p, i2);
        off += sa;
        break;
      }
      store<i32>(p, 0);
      off -= sa * (i2 - 1);
    }
  }
}

/** n copies of the element at src (esz bytes: 4, or 1 for bool) at dst. */
function splatFill(src: usize, esz: i32, dst: usize, n: i32): void {
  if (esz == 1) {
    memory.fill(dst, load<u8>(src), <usize>n);
    return;
  }
  const v = load<u32>(src), w = i32x4.splat(v);
  let q = 0;
  for (; q + 4 <= n; q += 4) v128.store(dst + (<usize>q << 2), w);
  for (; q < n; q++) store<u32>(dst + (<usize>q << 2), v);
}

/** Evaluates the expression over elements [s, e), the last node writing to dst (its element s first). */
function evalRange(prog: usize, s: i32, e: i32, dst: usize, scratch: usize): void {
  const R = word(prog, 0), N = word(prog, 1), I = word(prog, 2), CH = word(prog, 3), total = word(prog, 8);
  const dims = prog + 48, inputs = dims + (<usize>R << 2), nodes = inputs + (<usize>(I * (4 + R)) << 2);
  const slots = word(prog, 10), cut = word(prog, 11), dn = word(dims, R - 1);
  const ptrs = scratch + <usize>(slots * CH) * 4, steps = ptrs + (<usize>N << 2), idx = steps + (<usize>N << 2);
  for (let c0 = s, n = 0; c0 < e; c0 += n) {
    n = min(CH, e - c0);
    if (cut) n = min(n, dn - c0 % dn); // chunks end at row ends, so a row-broadcast input is one (address, step)
    for (let k = 0; k < N; k++) {
      const node = nodes + <usize>(k * 28);
      const kind = word(node, 0), fn = word(node, 1), slot = word(node, 5), esz = word(node, 6);
      let out: usize = slot < 0 ? dst + <usize>(c0 - s) * <usize>esz : scratch + <usize>(slot * CH) * 4;
      const a: usize = kind ? load<usize>(ptrs + (<usize>word(node, 2) << 2)) : 0;
      const b: usize = kind >= 2 && kind <= 5 ? load<usize>(ptrs + (<usize>word(node, 3) << 2)) : 0;
      switch (kind) {
        case 0: {
          const inp = inputs + <usize>(word(node, 2) * (4 + R) * 4);
          const base = <usize>word(inp, 0) + <usize>word(inp, 2) * <usize>esz;
          const how = word(inp, 3), sl = word(inp, 4 + R - 1);
          store<i32>(steps + (<usize>k << 2), 1);
          if (how == 1 && slot >= 0) out = base + <usize>c0 * <usize>esz; // contiguous: read in place
          else if (how == 2 && slot >= 0) {
            // One element broadcast everywhere: its chunk filled once and kept in its own slot, as long as the
            // longest chunk of this call (not CH: a kernel of a few elements filled 512, one at a time where the
            // kernel's last axis is 1).
            if (c0 == s) splatFill(base, esz, out, min(CH, e - s));
          } else if (how == 3 && slot >= 0 && (cut || c0 % dn + n <= dn)) {
            // Read only by float32 binary nodes, within one row: in place, through the row's step (0 or 1).
            let off = 0, rem = c0;
            for (let q = R - 1; q >= 0; q--) {
              const d = word(dims, q);
              off += (rem % d) * word(inp, 4 + q);
              rem /= d;
            }
            out = base + <usize>off * <usize>esz;
            store<i32>(steps + (<usize>k << 2), sl);
          } else gather(base, esz, inp + 16, dims, R, c0, n, out, idx);
          break;
        }
        case 1: unaryF32(fn, a, out, n); break; // an element's bits never depend on where it sits
        case 2:
        case 3: {
          const ia = load<i32>(steps + (<usize>word(node, 2) << 2)), ib = load<i32>(steps + (<usize>word(node, 3) << 2));
          if (ia != 1 || ib != 1) {
            // An operand read in place along a row (only ever for float32 nodes): the eager row function.
            binaryRow(fn, a, ia, b, ib, out, n);
            store<i32>(steps + (<usize>k << 2), 1);
            break;
          }
          // Comparisons (and int32 add/sub, exact in the reference's float64 too) four lanes at a time.
          let j = kind == 2 && fn <= 3 ? arith(fn, a, b, out, n) : 0;
          if (fn >= 7) {
            for (; j + 4 <= n; j += 4) {
              const o = <usize>j << 2;
              storeMask(out + <usize>j, compare4(fn, kind == 2, v128.load(a + o), v128.load(b + o)));
            }
          } else if (kind == 3 && fn <= 1) {
            for (; j + 4 <= n; j += 4) {
              const o = <usize>j << 2, x = v128.load(a + o), y = v128.load(b + o);
              v128.store(out + o, fn == 0 ? i32x4.add(x, y) : i32x4.sub(x, y));
            }
          }
          if (kind == 2) {
            binaryRow(fn, a + (<usize>j << 2), 1, b + (<usize>j << 2), 1, out + <usize>j * (fn >= 7 ? 1 : 4), n - j);
          } else {
            const oe: usize = fn >= 7 ? 1 : 4;
            for (; j < n; j++) binI32(fn, load<i32>(a + (<usize>j << 2)), load<i32>(b + (<usize>j << 2)), out + <usize>j * oe);
          }
          break;
        }
        case 4:
          for (let j = 0; j < n; j++) {
            const x = load<u8>(a + <usize>j), y = load<u8>(b + <usize>j);
            let r: bool;
            switch (fn) {
              case 5: r = x > y ? x != 0 : y != 0; break;
              case 6: r = x < y ? x != 0 : y != 0; break;
              case 7: r = x == y; break;
              case 8: r = x != y; break;
              case 9: r = x < y; break;
              case 10: r = x <= y; break;
              case 11: r = x > y; break;
              default: r = x >= y;
            }
            store<u8>(out + <usize>j, <u8>r);
          }
          break;
        case 5: {
          const c = load<usize>(ptrs + (<usize>word(node, 4) << 2)); // a: the condition, b if true, c if false
          if (esz == 1) {
            for (let j = 0; j < n; j++) store<u8>(out + <usize>j, load<u8>(a + <usize>j) ? load<u8>(b + <usize>j) : load<u8>(c + <usize>j));
          } else {
            let j = 0;
            for (; j + 4 <= n; j += 4) {
              const o = <usize>j << 2, m = i32x4.ne(widen(a + <usize>j), i32x4.splat(0));
              v128.store(out + o, v128.bitselect(v128.load(b + o), v128.load(c + o), m));
            }
            for (; j < n; j++) {
              const o = <usize>j << 2;
              store<u32>(out + o, load<u8>(a + <usize>j) ? load<u32>(b + o) : load<u32>(c + o));
            }
          }
          break;
        }
        case 6: {
          // bool or int32 → float32 and float32 → bool four lanes at a time (exact, as castData's scalar casts).
          let j = 0;
          if (fn == 6 || fn == 3) {
            for (; j + 4 <= n; j += 4) {
              const v = fn == 6 ? widen(a + <usize>j) : v128.load(a + (<usize>j << 2));
              v128.store(out + (<usize>j << 2), f32x4.convert_i32x4_s(v));
            }
          } else if (fn == 2) {
            for (; j + 4 <= n; j += 4) storeMask(out + <usize>j, f32x4.ne(v128.load(a + (<usize>j << 2)), f32x4.splat(0)));
          }
          const ia: usize = fn < 6 ? 4 : 1, io: usize = fn % 3 == 2 ? 1 : 4;
          castData(a + <usize>j * ia, out + <usize>j * io, n - j, fn / 3, fn % 3);
          break;
        }
        default:
          for (let j = 0; j < n; j++) store<u8>(out + <usize>j, <u8>(load<u8>(a + <usize>j) == 0));
      }
      store<usize>(ptrs + (<usize>k << 2), out);
      if (kind) store<i32>(steps + (<usize>k << 2), 1);
    }
  }
}

/**
 * The fused kernel on elements [s0, s1) of the output (or, with a reduction, its outer rows [s0, s1)): the
 * program at `prog` (see the header), the result at `out`, `scratch` this thread's.
 */
export function fusedF32(prog: usize, out: usize, s0: i32, s1: i32, scratch: usize): void {
  const op = word(prog, 4);
  if (op < 0) {
    const nodes = prog + 48 + (<usize>(word(prog, 0) + word(prog, 2) * (4 + word(prog, 0))) << 2);
    const esz = word(nodes + <usize>((word(prog, 1) - 1) * 28), 6);
    evalRange(prog, s0, s1, out + <usize>s0 * <usize>esz, scratch);
    return;
  }
  // A reduction: a few of its [red, inner] blocks at a time, produced at the end of scratch, then reduced.
  const red = word(prog, 6), inner = word(prog, 7), per = word(prog, 9), block = red * inner;
  const R = word(prog, 0), N = word(prog, 1), CH = word(prog, 3);
  const rows = scratch + <usize>(word(prog, 10) * CH) * 4 + (<usize>(2 * N + R) << 2);
  if (per == 0) {
    // Long rows (inner = 1; sum, max, min, argmax): each in chunks, folded in index order as reduceF32 does.
    for (let o = s0; o < s1; o++) {
      let s: f64 = 0, m: f32 = op == 1 ? -Infinity : Infinity, best: f32 = -Infinity, arg = 0, done = false;
      for (let p0 = 0; p0 < red; p0 += CH) {
        const n = min(CH, red - p0);
        evalRange(prog, o * red + p0, o * red + p0 + n, rows, scratch);
        for (let j = 0; j < n; j++) {
          const v = load<f32>(rows + (<usize>j << 2));
          if (op == 0) s += <f64>v;
          else if (op == 3) {
            if (v > best || (v != v && best == best)) { best = v; arg = p0 + j; }
          } else if (!done) {
            if (v != v) { m = v; done = true; }
            else if (op == 1 ? v > m : v < m) m = v;
          }
        }
      }
      const at = out + (<usize>o << 2);
      if (op == 3) store<i32>(at, arg);
      else store<f32>(at, op == 0 ? <f32>s : m);
    }
    return;
  }
  for (let o = s0; o < s1; o += per) {
    const k = min(per, s1 - o);
    evalRange(prog, o * block, (o + k) * block, rows, scratch);
    reduceF32(op, rows, out + (<usize>(o * inner) << 2), k, red, inner);
  }
}
