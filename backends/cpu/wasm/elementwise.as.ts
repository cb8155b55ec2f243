// @ts-nocheck: AssemblyScript source (v128/f32x4/usize builtins), not Deno TypeScript.
// deno-lint-ignore-file
// deno-fmt-ignore-file
//
// Elementwise, where, strided-copy and reduction kernels of the CPU engine, on buffers that live in the
// engine's one linear memory (backends/cpu/heap.ts): every pointer is a byte offset into it, nothing is
// copied in or out. Compiled with matmul.as.ts into one module by build.ts (entry: engine.as.ts).
//
// Broadcast operands arrive as a descriptor written by engine.ts at `desc`: i32 dims[rank], then each
// operand's element strides[rank] (0 on broadcast axes). The caller has already merged contiguous axes
// (so the innermost row is as long as possible) and the output is contiguous. The walker below visits
// the rows of the innermost axis in order; each row is one tight loop (SIMD where the operands are
// contiguous or a broadcast scalar along the row).
//
// Numerics mirror the TypeScript reference (backends/cpu/kernels.ts): transcendental functions are
// evaluated in float64 and rounded once to float32; sums accumulate in float64. So results are
// deterministic and differ from the reference by at most the last bit of a float64 library function.

// ---------------------------------------------------------------- op codes (engine.ts mirrors these)
// binary:  0 add 1 sub 2 mul 3 div 4 pow 5 maximum 6 minimum
//          7 equal 8 notEqual 9 less 10 lessEqual 11 greater 12 greaterEqual (bool out)
// unary:   0 neg 1 exp 2 log 3 sqrt 4 rsqrt 5 abs 6 sign 7 tanh 8 sigmoid 9 silu 10 gelu 11 square 12 sin 13 cos
// reduce:  0 sum 1 max 2 min 3 argmax 4 logsumexp

const GELU_C: f64 = 0.7978845608028654; // sqrt(2/pi)

// @ts-ignore: decorator
@inline function binScalar(op: i32, x: f32, y: f32): f32 {
  switch (op) {
    case 0: return x + y;
    case 1: return x - y;
    case 2: return x * y;
    case 3: return x / y;
    case 4: return <f32>Math.pow(<f64>x, <f64>y);
    case 5: return x != x || y != y ? NaN : (x > y ? x : y);
    default: return x != x || y != y ? NaN : (x < y ? x : y);
  }
}

// @ts-ignore: decorator
@inline function binVec(op: i32, x: v128, y: v128): v128 {
  switch (op) {
    case 0: return f32x4.add(x, y);
    case 1: return f32x4.sub(x, y);
    case 2: return f32x4.mul(x, y);
    case 3: return f32x4.div(x, y);
    // As binScalar (and the reference): NaN if either is NaN, else the first operand only where strictly
    // greater (less), so max(+0, −0) is −0 on every path (f32x4.max would give +0 here and −0 in a row's tail).
    case 5: return v128.bitselect(f32x4.splat(NaN), v128.bitselect(x, y, f32x4.gt(x, y)), v128.or(f32x4.ne(x, x), f32x4.ne(y, y)));
    default: return v128.bitselect(f32x4.splat(NaN), v128.bitselect(x, y, f32x4.lt(x, y)), v128.or(f32x4.ne(x, x), f32x4.ne(y, y)));
  }
}

// @ts-ignore: decorator
@inline function cmpScalar(op: i32, x: f32, y: f32): u8 {
  switch (op) {
    case 7: return <u8>(x == y);
    case 8: return <u8>(x != y);
    case 9: return <u8>(x < y);
    case 10: return <u8>(x <= y);
    case 11: return <u8>(x > y);
    default: return <u8>(x >= y);
  }
}

/** One row of a float32 binary op: out[j] = a[j·ia] op b[j·ib] (ia, ib element strides). */
export function binaryRow(op: i32, a: usize, ia: i32, b: usize, ib: i32, out: usize, n: i32): void {
  // One copy of the vector loops per op (op a constant in each, so binVec's switch folds away): a switch per
  // vector inside one shared loop cost ~7 cycles a vector (measured: add of 4,096 floats 2.4 µs).
  switch (op) {
    case 0: vectorRow(0, a, ia, b, ib, out, n); return;
    case 1: vectorRow(1, a, ia, b, ib, out, n); return;
    case 2: vectorRow(2, a, ia, b, ib, out, n); return;
    case 3: vectorRow(3, a, ia, b, ib, out, n); return;
    case 5: vectorRow(5, a, ia, b, ib, out, n); return;
    case 6: vectorRow(6, a, ia, b, ib, out, n); return;
  }
  if (op >= 7) {
    for (let j = 0; j < n; j++) {
      store<u8>(out + <usize>j, cmpScalar(op, load<f32>(a + (<usize>(j * ia) << 2)), load<f32>(b + (<usize>(j * ib) << 2))));
    }
    return;
  }
  scalarRow(op, a, ia, b, ib, out, 0, n);
}

/** Elements j0 … n − 1 of a row by binScalar. */
// @ts-ignore: decorator
@inline function scalarRow(op: i32, a: usize, ia: i32, b: usize, ib: i32, out: usize, j0: i32, n: i32): void {
  for (let j = j0; j < n; j++) {
    store<f32>(out + (<usize>j << 2), binScalar(op, load<f32>(a + (<usize>(j * ia) << 2)), load<f32>(b + (<usize>(j * ib) << 2))));
  }
}

/** A row of a vector op (0–3, 5, 6; a constant where inlined): contiguous or broadcast operands by lanes, the rest by binScalar. */
// @ts-ignore: decorator
@inline function vectorRow(op: i32, a: usize, ia: i32, b: usize, ib: i32, out: usize, n: i32): void {
  let j = 0;
  if (ia == 1 && ib == 1) {
    for (; j + 8 <= n; j += 8) {
      const o = <usize>j << 2;
      v128.store(out + o, binVec(op, v128.load(a + o), v128.load(b + o)));
      v128.store(out + o, binVec(op, v128.load(a + o, 16), v128.load(b + o, 16)), 16);
    }
    for (; j + 4 <= n; j += 4) {
      const o = <usize>j << 2;
      v128.store(out + o, binVec(op, v128.load(a + o), v128.load(b + o)));
    }
  } else if (ia == 1 && ib == 0) {
    const y = v128.load32_splat(b);
    for (; j + 8 <= n; j += 8) {
      const o = <usize>j << 2;
      v128.store(out + o, binVec(op, v128.load(a + o), y));
      v128.store(out + o, binVec(op, v128.load(a + o, 16), y), 16);
    }
  } else if (ia == 0 && ib == 1) {
    const x = v128.load32_splat(a);
    for (; j + 8 <= n; j += 8) {
      const o = <usize>j << 2;
      v128.store(out + o, binVec(op, x, v128.load(b + o)));
      v128.store(out + o, binVec(op, x, v128.load(b + o, 16)), 16);
    }
  }
  scalarRow(op, a, ia, b, ib, out, j, n);
}

// @ts-ignore: decorator
@inline function advance(desc: usize, idx: usize, axes: i32): i32 {
  // The multi-index at idx over axes 0 … axes−1 (dims at desc) moves on by one: the axis that moved, or −1 at the end.
  for (let ax = axes - 1; ax >= 0; ax--) {
    const p = idx + (<usize>ax << 2), i = load<i32>(p) + 1;
    if (i < load<i32>(desc + (<usize>ax << 2))) {
      store<i32>(p, i);
      return ax;
    }
    store<i32>(p, 0);
  }
  return -1;
}

// @ts-ignore: decorator
@inline function step(desc: usize, s: i32, ax: i32, axes: i32): i32 {
  // What that move adds to an operand's offset (its strides at word s of desc): one along axis ax, and each later
  // axis back from its last index to 0.
  let d = load<i32>(desc + (<usize>(s + ax) << 2));
  for (let k = ax + 1; k < axes; k++) d -= load<i32>(desc + (<usize>(s + k) << 2)) * (load<i32>(desc + (<usize>k << 2)) - 1);
  return d;
}

/**
 * out = a op b over a broadcast view: `rank` ≥ 1 axes, descriptor at `desc` (dims, strides of a, of b).
 * out is float32, or bool (one byte) for the comparisons.
 */
export function binaryF32(op: i32, a: usize, b: usize, out: usize, desc: usize, rank: i32): void {
  const last = rank - 1;
  const n = load<i32>(desc + (<usize>last << 2));
  const ia = load<i32>(desc + (<usize>(rank + last) << 2));
  const ib = load<i32>(desc + (<usize>(2 * rank + last) << 2));
  const idx = desc + (<usize>(3 * rank) << 2); // scratch multi-index after the descriptor
  for (let k = 0; k < last; k++) store<i32>(idx + (<usize>k << 2), 0);
  const esz: usize = op >= 7 ? 1 : 4;
  let oa = 0, ob = 0, o: usize = out;
  while (true) {
    binaryRow(op, a + (<usize>oa << 2), ia, b + (<usize>ob << 2), ib, o, n);
    o += <usize>n * esz;
    const ax = advance(desc, idx, last);
    if (ax < 0) return;
    oa += step(desc, rank, ax, last); ob += step(desc, 2 * rank, ax, last);
  }
}

// @ts-ignore: decorator
@inline function toInt32(v: f64): i32 {
  // ECMAScript ToInt32 (what storing a number into an Int32Array does): truncate, then wrap modulo 2³².
  if (!(v == v) || v == Infinity || v == -Infinity) return 0;
  const t = Math.trunc(v);
  if (t >= -2147483648.0 && t < 2147483648.0) return <i32>t;
  return <i32><i64>(t % 4294967296.0);
}

// @ts-ignore: decorator
@inline export function binI32(op: i32, x: i32, y: i32, out: usize): void {
  // As the reference: the op on float64 values, then stored (int32 ToInt32, or a 0/1 byte for comparisons).
  const a = <f64>x, b = <f64>y;
  switch (op) {
    case 0: store<i32>(out, toInt32(a + b)); return;
    case 1: store<i32>(out, toInt32(a - b)); return;
    case 2: store<i32>(out, toInt32(a * b)); return;
    case 3: store<i32>(out, toInt32(a / b)); return;
    case 4: store<i32>(out, toInt32(Math.pow(a, b))); return;
    case 5: store<i32>(out, x > y ? x : y); return;
    case 6: store<i32>(out, x < y ? x : y); return;
    case 7: store<u8>(out, <u8>(x == y)); return;
    case 8: store<u8>(out, <u8>(x != y)); return;
    case 9: store<u8>(out, <u8>(x < y)); return;
    case 10: store<u8>(out, <u8>(x <= y)); return;
    case 11: store<u8>(out, <u8>(x > y)); return;
    default: store<u8>(out, <u8>(x >= y));
  }
}

/** binaryF32 for int32 operands (same op codes and descriptor): int32 out, or bool for the comparisons. */
export function binaryI32(op: i32, a: usize, b: usize, out: usize, desc: usize, rank: i32): void {
  const last = rank - 1;
  const n = load<i32>(desc + (<usize>last << 2));
  const ia = load<i32>(desc + (<usize>(rank + last) << 2));
  const ib = load<i32>(desc + (<usize>(2 * rank + last) << 2));
  const idx = desc + (<usize>(3 * rank) << 2);
  for (let k = 0; k < last; k++) store<i32>(idx + (<usize>k << 2), 0);
  const esz: usize = op >= 7 ? 1 : 4;
  let oa = 0, ob = 0, o: usize = out;
  while (true) {
    const pa = a + (<usize>oa << 2), pb = b + (<usize>ob << 2);
    for (let j = 0; j < n; j++) {
      binI32(op, load<i32>(pa + (<usize>(j * ia) << 2)), load<i32>(pb + (<usize>(j * ib) << 2)), o + <usize>j * esz);
    }
    o += <usize>n * esz;
    const ax = advance(desc, idx, last);
    if (ax < 0) return;
    oa += step(desc, rank, ax, last); ob += step(desc, 2 * rank, ax, last);
  }
}

/**
 * Converts n elements between dtypes (codes 0 float32, 1 int32, 2 bool) exactly as the reference does:
 * float → int32 truncates then wraps as ECMAScript's ToInt32 (NaN → 0), int32 → float32 rounds to
 * nearest, anything → bool is x != 0 (NaN → true).
 */
export function castData(x: usize, out: usize, n: i32, from: i32, to: i32): void {
  if (from == to) {
    memory.copy(out, x, <usize>n << (to == 2 ? 0 : 2));
    return;
  }
  for (let i = 0; i < n; i++) {
    const xi = x + (<usize>i << (from == 2 ? 0 : 2));
    if (to == 2) {
      store<u8>(out + <usize>i, from == 0 ? <u8>(load<f32>(xi) != 0) : <u8>(load<i32>(xi) != 0));
      continue;
    }
    const o = out + (<usize>i << 2);
    if (to == 1) store<i32>(o, from == 0 ? toInt32(<f64>load<f32>(xi)) : <i32>load<u8>(xi));
    else store<f32>(o, from == 1 ? <f32>load<i32>(xi) : <f32>load<u8>(xi));
  }
}

/** Copies a row of n 32-bit elements from src (element stride ia) to the contiguous dst: where32's selected rows. */
@inline function copyRow(dst: usize, src: usize, n: i32, ia: i32): void {
  if (ia == 1) memory.copy(dst, src, <usize>n << 2);
  else {
    for (let j = 0; j < n; j++) store<u32>(dst + (<usize>j << 2), load<u32>(src + (<usize>(j * ia) << 2)));
  }
}

/** out = cond ? a : b for 32-bit elements (float32 or int32 bits), cond one byte; descriptor: dims, sc, sa, sb. */
export function where32(c: usize, a: usize, b: usize, out: usize, desc: usize, rank: i32): void {
  const last = rank - 1;
  const n = load<i32>(desc + (<usize>last << 2));
  const ic = load<i32>(desc + (<usize>(rank + last) << 2));
  const ia = load<i32>(desc + (<usize>(2 * rank + last) << 2));
  const ib = load<i32>(desc + (<usize>(3 * rank + last) << 2));
  if (out == b && ic == 0 && ib == 1 && rank >= 2 && load<i32>(desc + (<usize>(4 * rank - 2) << 2)) == n) {
    whereRowsInPlace(c, a, out, desc, rank);
    return;
  }
  const idx = desc + (<usize>(4 * rank) << 2);
  for (let k = 0; k < last; k++) store<i32>(idx + (<usize>k << 2), 0);
  let oc = 0, oa = 0, ob = 0, o: usize = out;
  while (true) {
    if (ic == 0) {
      // One condition for the whole row (a mask broadcast along it, e.g. a KV-cache write): copy the row.
      const useA = load<u8>(c + <usize>oc) != 0;
      const src = useA ? a + (<usize>oa << 2) : b + (<usize>ob << 2), is = useA ? ia : ib;
      if (is == 1) memory.copy(o, src, <usize>n << 2);
      else {
        for (let j = 0; j < n; j++) store<u32>(o + (<usize>j << 2), load<u32>(src + (<usize>(j * is) << 2)));
      }
    } else if (ic == 1 && ia == 1 && (ib == 0 || ib == 1)) {
      // A contiguous condition (attention's mask over a row of scores): four lanes selected at once, bit for bit.
      const pa = a + (<usize>oa << 2), pb = b + (<usize>ob << 2), pc = c + <usize>oc;
      const splatB = i32x4.splat(load<i32>(pb));
      let j = 0;
      for (; j + 4 <= n; j += 4) {
        const m = i32x4.ne(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(v128.load32_zero(pc + <usize>j))), i32x4.splat(0));
        const vb = ib == 1 ? v128.load(pb + (<usize>j << 2)) : splatB;
        v128.store(o + (<usize>j << 2), v128.bitselect(v128.load(pa + (<usize>j << 2)), vb, m));
      }
      for (; j < n; j++) {
        store<u32>(o + (<usize>j << 2), load<u8>(pc + <usize>j) ? load<u32>(pa + (<usize>j << 2)) : load<u32>(pb + (<usize>(j * ib) << 2)));
      }
    } else {
      for (let j = 0; j < n; j++) {
        const v = load<u8>(c + <usize>(oc + j * ic)) ? load<u32>(a + (<usize>(oa + j * ia) << 2)) : load<u32>(b + (<usize>(ob + j * ib) << 2));
        store<u32>(o + (<usize>j << 2), v);
      }
    }
    o += <usize>n << 2;
    const ax = advance(desc, idx, last);
    if (ax < 0) return;
    oc += step(desc, rank, ax, last); oa += step(desc, 2 * rank, ax, last); ob += step(desc, 3 * rank, ax, last);
  }
}

/**
 * where32 writing over its own `b` (a compiled program lets a KV-cache write reuse the donated cache; b is
 * then contiguous) with the condition constant along rows: only the rows whose condition holds are written,
 * so the cost is one byte per row, not a copy of the whole tensor.
 */
function whereRowsInPlace(c: usize, a: usize, out: usize, desc: usize, rank: i32): void {
  const last = rank - 1, mid = rank - 2;
  const n = load<i32>(desc + (<usize>last << 2)), m = load<i32>(desc + (<usize>mid << 2));
  const ia = load<i32>(desc + (<usize>(2 * rank + last) << 2));
  const rc = load<i32>(desc + (<usize>(rank + mid) << 2)), ra = load<i32>(desc + (<usize>(2 * rank + mid) << 2));
  const idx = desc + (<usize>(4 * rank) << 2);
  let sameRows = true; // the condition does not change along the outer axes (one position for every head)
  for (let k = 0; k < mid; k++) if (load<i32>(desc + (<usize>(rank + k) << 2)) != 0) sameRows = false;
  if (sameRows) {
    // Find the rows to write once (sixteen condition bytes at a time where they are contiguous), then write
    // each of them under every outer index: the same rows written with the same values as below.
    for (let r = 0; r < m; r++) {
      if (rc == 1 && r + 16 <= m && !v128.any_true(v128.load(c + <usize>r))) { r += 15; continue; }
      if (load<u8>(c + <usize>(r * rc)) == 0) continue;
      for (let k = 0; k < mid; k++) store<i32>(idx + (<usize>k << 2), 0);
      let oa = 0, o: usize = out;
      while (true) {
        copyRow(o + (<usize>(r * n) << 2), a + (<usize>(oa + r * ra) << 2), n, ia);
        o += <usize>(m * n) << 2;
        const ax = advance(desc, idx, mid);
        if (ax < 0) break;
        oa += step(desc, 2 * rank, ax, mid);
      }
    }
    return;
  }
  for (let k = 0; k < mid; k++) store<i32>(idx + (<usize>k << 2), 0);
  let oc = 0, oa = 0, o: usize = out;
  while (true) {
    for (let r = 0; r < m; r++) {
      if (load<u8>(c + <usize>(oc + r * rc)) == 0) continue;
      copyRow(o + (<usize>(r * n) << 2), a + (<usize>(oa + r * ra) << 2), n, ia);
    }
    o += <usize>(m * n) << 2;
    const ax = advance(desc, idx, mid);
    if (ax < 0) return;
    oc += step(desc, rank, ax, mid); oa += step(desc, 2 * rank, ax, mid);
  }
}

/** out[i] = x[offset + Σ idx_k·stride_k] for 32-bit elements; descriptor: dims, strides of x. */
export function strided32(x: usize, out: usize, desc: usize, rank: i32): void {
  const last = rank - 1;
  const n = load<i32>(desc + (<usize>last << 2));
  const ix = load<i32>(desc + (<usize>(rank + last) << 2));
  const idx = desc + (<usize>(2 * rank) << 2);
  for (let k = 0; k < last; k++) store<i32>(idx + (<usize>k << 2), 0);
  let ox = 0, o: usize = out;
  while (true) {
    const src = x + (<usize>ox << 2);
    if (ix == 1) memory.copy(o, src, <usize>n << 2);
    else if (ix == 0) {
      const v = load<u32>(src);
      for (let j = 0; j < n; j++) store<u32>(o + (<usize>j << 2), v);
    } else {
      for (let j = 0; j < n; j++) store<u32>(o + (<usize>j << 2), load<u32>(src + (<usize>(j * ix) << 2)));
    }
    o += <usize>n << 2;
    const ax = advance(desc, idx, last);
    if (ax < 0) return;
    ox += step(desc, rank, ax, last);
  }
}

// @ts-ignore: decorator
@inline export function unaryScalar(op: i32, x: f32): f32 {
  const d = <f64>x;
  switch (op) {
    case 0: return -x;
    case 1: case 8: case 9: return f32x4.extract_lane(expLike4(op, f32x4.splat(x)), 0); // as the SIMD loop
    case 2: return <f32>Math.log(d);
    case 3: return <f32>Math.sqrt(d);
    case 4: return <f32>(1 / Math.sqrt(d));
    case 5: return Mathf.abs(x);
    case 6: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 7: return <f32>Math.tanh(d);
    case 10: return <f32>(0.5 * d * (1 + Math.tanh(GELU_C * (d + 0.044715 * d * d * d))));
    case 11: return x * x;
    case 12: return <f32>Math.sin(d);
    default: return <f32>Math.cos(d);
  }
}

// exp on four float32 lanes (Cephes' expf): x = k·ln2 + r with |r| ≤ ln2/2 (ln 2 split in two, the first part
// with 9 significant bits so k·C1 is exact), exp(r) ≈ 1 + r + r²·P(r) with P of degree 5, times 2^k applied in two
// halves so every result from 2^-149 to past 2^128 is rounded once (subnormals included). Within one ulp of the
// correctly rounded exp (4M random float32 arguments in [-105, 90]: 7% one ulp off, none more). x is clamped to
// [-104, 89]: below, exp rounds to 0 in float32; above, to +∞. NaN stays NaN. Four lanes of float32 instead of two
// of float64 (the float64 version this replaced ran an 11th-degree series): the vocabulary head's softmax and
// log-sum-exp are exp-bound.
const LOG2E_F: f32 = 1.44269504088896341;
const EXP_C1: f32 = 0.693359375;
const EXP_C2: f32 = -2.12194440e-4;
const EXP_MAGIC: f32 = 12582912.0; // 1.5·2²³: k + this holds the integer k in its low mantissa bits

/**
 * expf4's 13 constants (and two more) as vectors in static memory, for loops to load once into locals (`ek`): V8 rebuilds a
 * v128 constant at every use inside a loop (three instructions each), and Binaryen folds constant locals back
 * into their uses; a load from memory it cannot fold. With wasm's min/max (NaN- and ±0-exact, five or six
 * instructions each on x86) replaced by pmin/pmax and the float-to-int conversion by the magic-number add,
 * a vector of exp took 2.4× fewer instructions, with the same bits (see expf4). The last two (±126, the bounds
 * on k where 2^k is a normal float) are for the loops' shortcut (expNormal4).
 */
const EXP_K: usize = memory.data<f32>([
  -104.0, -104.0, -104.0, -104.0, 89.0, 89.0, 89.0, 89.0,
  LOG2E_F, LOG2E_F, LOG2E_F, LOG2E_F, EXP_C1, EXP_C1, EXP_C1, EXP_C1, EXP_C2, EXP_C2, EXP_C2, EXP_C2,
  1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4, 1.9875691500e-4,
  1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3, 1.3981999507e-3,
  8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3, 8.3334519073e-3,
  4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2, 4.1665795894e-2,
  1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1, 1.6666665459e-1,
  5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1, 5.0000001201e-1,
  1.0, 1.0, 1.0, 1.0, EXP_MAGIC, EXP_MAGIC, EXP_MAGIC, EXP_MAGIC,
  126.0, 126.0, 126.0, 126.0, -126.0, -126.0, -126.0, -126.0,
], 16);
/** f32x4.abs's mask and the sign bit, to load once like EXP_K (V8 rebuilds such constants at every use). */
const ABS_MASK: usize = memory.data<u32>([0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff], 16);
const SIGN_MASK: usize = memory.data<u32>([0x80000000, 0x80000000, 0x80000000, 0x80000000], 16);
/** float64 1.0 in both lanes, loaded once like EXP_K (V8 rebuilt it three times per vector of sigmoid). */
const ONE_F64: usize = memory.data<f64>([1.0, 1.0], 16);

/** Constant `i` of expf4 (see EXP_K). */
// @ts-ignore: decorator
@inline function ek(i: i32): v128 {
  return v128.load(EXP_K + (<usize>i << 4));
}

/** exp(r) ≈ 1 + r + r²·P(r) with r = x − k·ln2 (ln 2 in two parts): the polynomial of expf4k and expNormal4. */
// @ts-ignore: decorator
@inline function expPoly4(
  x: v128, k: v128, c1: v128, c2: v128, p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128,
): v128 {
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, c1)), f32x4.mul(k, c2));
  let p = f32x4.add(f32x4.mul(p0, r), p1);
  p = f32x4.add(f32x4.mul(p, r), p2);
  p = f32x4.add(f32x4.mul(p, r), p3);
  p = f32x4.add(f32x4.mul(p, r), p4);
  p = f32x4.add(f32x4.mul(p, r), p5);
  const y = f32x4.add(f32x4.add(f32x4.mul(p, f32x4.mul(r, r)), r), one);
  return y;
}

/**
 * exp of four lanes with its constants k0..k12 (EXP_K, loaded by the caller). Clamping by pmax/pmin gives
 * what max/min gave: x itself inside [-104, 89] (±0 included), the bound outside, and NaN stays NaN (pmax(x, c)
 * is x when x < c is false). k is an integer in [-151, 129], so k + 1.5·2²³ holds it exactly in its low bits:
 * the integer is those bits less the magic's, as trunc_sat gave (for NaN it is garbage, but y is NaN then and
 * so is the product). (k1 + 127) << 23 is k1 << 23 plus the bits of 1.0.
 */
// @ts-ignore: decorator
@inline function expf4k(
  x0: v128, lo: v128, hi: v128, l2e: v128, c1: v128, c2: v128,
  p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128, magic: v128,
): v128 {
  const x = f32x4.pmin(f32x4.pmax(x0, lo), hi);
  const k = f32x4.nearest(f32x4.mul(x, l2e));
  const y = expPoly4(x, k, c1, c2, p0, p1, p2, p3, p4, p5, one);
  const ki = i32x4.sub(f32x4.add(k, magic), magic);
  const k1 = i32x4.shr_s(ki, 1);
  const s1 = i32x4.add(i32x4.shl(k1, 23), one);
  const s2 = i32x4.add(i32x4.shl(i32x4.sub(ki, k1), 23), one);
  return f32x4.mul(f32x4.mul(y, s1), s2);
}

// exp of four lanes, its constants loaded at the call (for tails and scalars; loops hoist them: expf4k).
// @ts-ignore: decorator
@inline function expf4(x0: v128): v128 {
  return expf4k(x0, ek(0), ek(1), ek(2), ek(3), ek(4), ek(5), ek(6), ek(7), ek(8), ek(9), ek(10), ek(11), ek(12));
}

/**
 * exp, sigmoid or silu of four float32 lanes given exp of x (op 1) or of −|x| (8, 9): sigmoid and silu by the
 * reference's formulas in float64 around e = exp(−|x|) (x ≥ 0 or NaN: 1/(1+e), x/(1+e); x < 0: e/(1+e),
 * x·e/(1+e)).
 */
// @ts-ignore: decorator
@inline function fromExp4(op: i32, v: v128, e: v128): v128 {
  if (op == 1) return e;
  return sigmoidLike4(op, v, e, f64x2.splat(1.0));
}

/** fromExp4 for sigmoid (op 8) or silu (9), float64 1.0 given (`one`: see ONE_F64). */
// @ts-ignore: decorator
@inline function sigmoidLike4(op: i32, v: v128, e: v128, one: v128): v128 {
  const vl = f64x2.promote_low_f32x4(v);
  const lo = sigmoidLike2(op, vl, f64x2.promote_low_f32x4(e), f64x2.lt(vl, f64x2.splat(0.0)), one);
  const vh = f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1));
  const hi = sigmoidLike2(op, vh, f64x2.promote_low_f32x4(i32x4.shuffle(e, e, 2, 3, 0, 1)), f64x2.lt(vh, f64x2.splat(0.0)), one);
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** The argument whose exp fromExp4 needs: x for exp, −|x| for sigmoid and silu. */
// @ts-ignore: decorator
@inline function expArg4(op: i32, v: v128): v128 {
  return op == 1 ? v : f32x4.neg(f32x4.abs(v));
}

/**
 * exp, sigmoid or silu of four float32 lanes: exp by expf4; sigmoid and silu by the reference's formulas in
 * float64 around e = exp(−|x|) (see fromExp4).
 */
// @ts-ignore: decorator
@inline export function expLike4(op: i32, v: v128): v128 {
  return fromExp4(op, v, expf4(expArg4(op, v)));
}

/** sigmoid (op 8) or silu (9) of two float64 lanes x given e = exp(−|x|) and the lanes where x < 0. */
// @ts-ignore: decorator
@inline function sigmoidLike2(op: i32, x: v128, e: v128, neg: v128, one: v128): v128 {
  // One division per lane: the numerator is chosen first (the quotient each lane would have selected).
  const den = f64x2.add(one, e);
  if (op == 8) return f64x2.div(v128.bitselect(e, one, neg), den);
  return f64x2.div(v128.bitselect(f64x2.mul(x, e), x, neg), den);
}

/**
 * expf4k of x given k = nearest(x·log2e) in [-126, 126] and kb = k + magic (so x is inside expf4k's clamp, which
 * leaves it as it is): 2^k is then a normal float, and y·2^k is the one rounding of the same exact product that
 * y·2^k1·2^(k−k1) rounds (y·2^k1 is exact), so one multiply gives expf4k's bits. kb << 23 is k << 23 (the
 * magic's bits shifted by 23 vanish), plus the bits of 1.0 makes 2^k.
 */
// @ts-ignore: decorator
@inline function expNormal4(
  x: v128, k: v128, kb: v128, c1: v128, c2: v128, p0: v128, p1: v128, p2: v128, p3: v128, p4: v128, p5: v128, one: v128,
): v128 {
  const y = expPoly4(x, k, c1, c2, p0, p1, p2, p3, p4, p5, one);
  return f32x4.mul(y, i32x4.add(i32x4.shl(kb, 23), one));
}

/**
 * x·log2e + magic (its bits are the magic's plus k). For |x·log2e| < 2^22 this is the sum rounded to an integer,
 * ties to even (the magic is even), so less the magic it is nearest(x·log2e), with one instruction fewer than
 * roundps and then the add (6% on exp); it differs only in giving +0 for −0, which changes no bit of r (x ± 0).
 * Larger or NaN: k is out of [-126, 126] and the caller takes expf4.
 */
// @ts-ignore: decorator
@inline function expMagic4(x: v128, l2e: v128, magic: v128): v128 {
  return f32x4.add(f32x4.mul(x, l2e), magic);
}

/**
 * exp of the first n & ~3 of n contiguous floats (expf4k's bits); returns how many it wrote. One loop per op
 * instead of one for three (V8 tests the op inside a loop it does not unswitch, and computed −|x| for exp
 * only to discard it), eight lanes per pass, and where all eight have |k| ≤ 126 (|x| < 87.7: nearly always)
 * neither clamp nor the two-step 2^k (expNormal4): about half the instructions per vector.
 */
function expRun(x: usize, out: usize, n: i32): i32 {
  const l2e = ek(2), c1 = ek(3), c2 = ek(4), p0 = ek(5), p1 = ek(6), p2 = ek(7), p3 = ek(8), p4 = ek(9);
  const p5 = ek(10), one = ek(11), magic = ek(12), kmax = ek(13), abs = v128.load(ABS_MASK);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const p = x + (<usize>j << 2), q = out + (<usize>j << 2);
    const a = v128.load(p), b = v128.load(p, 16);
    const ma = expMagic4(a, l2e, magic), mb = expMagic4(b, l2e, magic);
    const ka = f32x4.sub(ma, magic), kb = f32x4.sub(mb, magic);
    // |k| ≤ 126 in all eight lanes (NaN is not): the larger |k| of each pair of lanes, compared as integers.
    if (i32x4.bitmask(f32x4.le(i32x4.max_s(v128.and(ka, abs), v128.and(kb, abs)), kmax)) == 15) {
      v128.store(q, expNormal4(a, ka, ma, c1, c2, p0, p1, p2, p3, p4, p5, one));
      v128.store(q, expNormal4(b, kb, mb, c1, c2, p0, p1, p2, p3, p4, p5, one), 16);
      continue;
    }
    // Eight lanes below −104 (−∞: a softmax over masked positions) are exactly +0, as expf4k gives.
    const lo = ek(0);
    if (i32x4.bitmask(v128.and(f32x4.lt(a, lo), f32x4.lt(b, lo))) == 15) {
      v128.store(q, f32x4.splat(0));
      v128.store(q, f32x4.splat(0), 16);
      continue;
    }
    v128.store(q, expf4(a));
    v128.store(q, expf4(b), 16);
  }
  if (j + 4 <= n) {
    const o = <usize>j << 2;
    v128.store(out + o, expf4(v128.load(x + o)));
    j += 4;
  }
  return j;
}

/**
 * sigmoid (op 8) or silu (9) of the first n & ~3 of n contiguous floats (fromExp4's bits); returns how many.
 * exp(−|x|) as in expRun, eight lanes per pass (1.12x over four): −|x| ≤ 0, so k ≥ −126 is all expNormal4
 * needs.
 */
// @ts-ignore: decorator
@inline function sigmoidLikeRun(op: i32, x: usize, out: usize, n: i32): i32 {
  const l2e = ek(2), c1 = ek(3), c2 = ek(4), p0 = ek(5), p1 = ek(6), p2 = ek(7), p3 = ek(8), p4 = ek(9);
  const p5 = ek(10), one = ek(11), magic = ek(12), kmin = ek(14);
  const sign = v128.load(SIGN_MASK), one64 = v128.load(ONE_F64);
  let j = 0;
  for (; j + 8 <= n; j += 8) {
    const o = <usize>j << 2;
    const v = v128.load(x + o), w = v128.load(x + o, 16);
    const a = v128.or(v, sign), b = v128.or(w, sign); // −|x|: the bits of neg(abs(x))
    const ma = expMagic4(a, l2e, magic), mb = expMagic4(b, l2e, magic);
    const ka = f32x4.sub(ma, magic), kb = f32x4.sub(mb, magic);
    let ea: v128, eb: v128;
    if (i32x4.bitmask(v128.and(f32x4.ge(ka, kmin), f32x4.ge(kb, kmin))) == 15) {
      ea = expNormal4(a, ka, ma, c1, c2, p0, p1, p2, p3, p4, p5, one);
      eb = expNormal4(b, kb, mb, c1, c2, p0, p1, p2, p3, p4, p5, one);
    } else {
      ea = expf4(a);
      eb = expf4(b);
    }
    v128.store(out + o, sigmoidLike4(op, v, ea, one64));
    v128.store(out + o, sigmoidLike4(op, w, eb, one64), 16);
  }
  if (j + 4 <= n) {
    const o = <usize>j << 2;
    const v = v128.load(x + o);
    v128.store(out + o, sigmoidLike4(op, v, expf4(v128.or(v, sign)), one64));
    j += 4;
  }
  return j;
}

function sigmoidRun(x: usize, out: usize, n: i32): i32 {
  return sigmoidLikeRun(8, x, out, n);
}

function siluRun(x: usize, out: usize, n: i32): i32 {
  return sigmoidLikeRun(9, x, out, n);
}

/** out[i] = op(x[i]) over n contiguous float32 elements. */
/** Four lanes at a time of neg (0), sqrt (3), abs (5) or square (11; a constant where inlined): the elements done. */
// @ts-ignore: decorator
@inline function lanesRow(op: i32, x: usize, out: usize, n: i32): i32 {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2, v = v128.load(x + o);
    v128.store(out + o, op == 0 ? f32x4.neg(v) : op == 3 ? f32x4.sqrt(v) : op == 5 ? f32x4.abs(v) : f32x4.mul(v, v));
  }
  return j;
}

export function unaryF32(op: i32, x: usize, out: usize, n: i32): void {
  let j = 0;
  if (op == 1 || op == 8 || op == 9) {
    // Every element by expLike4's formulas (each op its own loop, below), the last few as lanes of a vector
    // too: an element's bits never depend on its position (how a kernel is split into parts or chunks).
    if (op == 1) j = expRun(x, out, n);
    else if (op == 8) j = sigmoidRun(x, out, n);
    else j = siluRun(x, out, n);
    if (j < n) {
      const m = n - j, o = <usize>j << 2;
      let v = f32x4.splat(load<f32>(x + o));
      if (m > 1) v = f32x4.replace_lane(v, 1, load<f32>(x + o + 4));
      if (m > 2) v = f32x4.replace_lane(v, 2, load<f32>(x + o + 8));
      const r = expLike4(op, v);
      store<f32>(out + o, f32x4.extract_lane(r, 0));
      if (m > 1) store<f32>(out + o + 4, f32x4.extract_lane(r, 1));
      if (m > 2) store<f32>(out + o + 8, f32x4.extract_lane(r, 2));
    }
    return;
  }
  // Exactly rounded in float32 already (sqrt is correctly rounded in both widths), so SIMD is bit-identical;
  // one loop per op (a test per vector inside a shared loop costs more than the op).
  if (op == 0) j = lanesRow(0, x, out, n);
  else if (op == 3) j = lanesRow(3, x, out, n);
  else if (op == 5) j = lanesRow(5, x, out, n);
  else if (op == 11) j = lanesRow(11, x, out, n);
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(out + o, unaryScalar(op, load<f32>(x + o)));
  }
}

/**
 * Reduces the middle axis of x viewed as [outer, red, inner] (float32; argmax writes int32). Sums in float64,
 * in index order per output element (so the bits do not depend on how outputs are split between workers).
 */
export function reduceF32(op: i32, x: usize, out: usize, outer: i32, red: i32, inner: i32): void {
  if (op == 4 && inner == 1) {
    for (let o = 0; o < outer; o++) store<f32>(out + (<usize>o << 2), logsumexpRow(x + (<usize>o * <usize>red << 2), red));
    return;
  }
  const rowBytes = <usize>inner << 2;
  let o0 = 0;
  if (op == 0 && inner == 1) {
    // Sums of contiguous rows, four rows at a time: four independent float64 chains (each row's adds in the
    // same order as alone, so the same bits), instead of one chain waiting on each add.
    const rb = <usize>red << 2;
    for (; o0 + 4 <= outer; o0 += 4) {
      const x0 = x + <usize>o0 * rb, x1 = x0 + rb, x2 = x1 + rb, x3 = x2 + rb;
      let s0: f64 = 0, s1: f64 = 0, s2: f64 = 0, s3: f64 = 0;
      for (let p = 0; p < red; p++) {
        const q = <usize>p << 2;
        s0 += <f64>load<f32>(x0 + q); s1 += <f64>load<f32>(x1 + q);
        s2 += <f64>load<f32>(x2 + q); s3 += <f64>load<f32>(x3 + q);
      }
      const w = out + (<usize>o0 << 2);
      store<f32>(w, <f32>s0); store<f32>(w, <f32>s1, 4); store<f32>(w, <f32>s2, 8); store<f32>(w, <f32>s3, 12);
    }
  }
  for (let o = o0; o < outer; o++) {
    const base = x + <usize>o * <usize>red * rowBytes;
    for (let i = 0; i < inner; i++) {
      const start = base + (<usize>i << 2);
      let r: f64 = 0;
      switch (op) {
        case 0: {
          let s: f64 = 0;
          for (let p = 0; p < red; p++) s += <f64>load<f32>(start + <usize>p * rowBytes);
          r = s;
          break;
        }
        case 1: case 2: {
          if (inner == 1 && red >= 8) {
            // Four lanes at a time: the same value whenever it is a number other than ±0 (equal numbers have
            // equal bits); a NaN or a zero (whose sign is the first one met) is settled by the loop below.
            const v = simdMinMax(op, start, red);
            if (v == v && v != 0) { r = v; break; }
          }
          let m: f32 = op == 1 ? -Infinity : Infinity;
          for (let p = 0; p < red; p++) {
            const v = load<f32>(start + <usize>p * rowBytes);
            if (v != v) { m = v; break; }
            if (op == 1 ? v > m : v < m) m = v;
          }
          r = m;
          break;
        }
        case 3: {
          let best: f32 = -Infinity, arg = 0;
          if (inner == 1 && red >= 8) {
            // The maximum four lanes at a time, then the first element equal to it: the first index of the
            // maximum whenever no element is NaN (a NaN is settled by the loop below, like a row of fewer than 8).
            const m = simdMinMax(1, start, red);
            if (m == m) {
              store<i32>(out + (<usize>o << 2), firstEqual(start, red, m));
              continue;
            }
          }
          for (let p = 0; p < red; p++) {
            const v = load<f32>(start + <usize>p * rowBytes);
            if (v > best || (v != v && best == best)) { best = v; arg = p; }
          }
          store<i32>(out + (<usize>(o * inner + i) << 2), arg);
          continue;
        }
        default: {
          let m: f32 = -Infinity;
          for (let p = 0; p < red; p++) {
            const v = load<f32>(start + <usize>p * rowBytes);
            if (v != v) { m = v; break; }
            if (v > m) m = v;
          }
          if (m == -Infinity || m != m) { r = m; break; }
          const md = <f64>m;
          let s: f64 = 0;
          for (let p = 0; p < red; p++) s += Math.exp(<f64>load<f32>(start + <usize>p * rowBytes) - md);
          r = md + Math.log(s);
        }
      }
      store<f32>(out + (<usize>(o * inner + i) << 2), <f32>r);
    }
  }
}

/** max (op 1) or min (op 2) of n ≥ 8 contiguous floats with f32x4.max/min (any NaN gives NaN). */
function simdMinMax(op: i32, x: usize, n: i32): f32 {
  if (ASC_FEATURE_RELAXED_SIMD) return relaxedMinMax(op, x, n);
  // Four independent accumulators: the NaN-propagating max is a chain of several instructions.
  let a = v128.load(x), b = a, c = a, d = v128.load(x, 16), j = 8;
  for (; j + 16 <= n; j += 16) {
    const p = x + (<usize>j << 2);
    if (op == 1) {
      a = f32x4.max(a, v128.load(p)); b = f32x4.max(b, v128.load(p, 16));
      c = f32x4.max(c, v128.load(p, 32)); d = f32x4.max(d, v128.load(p, 48));
    } else {
      a = f32x4.min(a, v128.load(p)); b = f32x4.min(b, v128.load(p, 16));
      c = f32x4.min(c, v128.load(p, 32)); d = f32x4.min(d, v128.load(p, 48));
    }
  }
  for (; j + 4 <= n; j += 4) {
    const v = v128.load(x + (<usize>j << 2));
    b = op == 1 ? f32x4.max(b, v) : f32x4.min(b, v);
  }
  for (; j < n; j++) {
    const v = f32x4.splat(load<f32>(x + (<usize>j << 2)));
    a = op == 1 ? f32x4.max(a, v) : f32x4.min(a, v);
  }
  a = op == 1 ? f32x4.max(f32x4.max(a, b), f32x4.max(c, d)) : f32x4.min(f32x4.min(a, b), f32x4.min(c, d));
  b = op == 1 ? f32x4.max(a, i32x4.shuffle(a, a, 2, 3, 0, 1)) : f32x4.min(a, i32x4.shuffle(a, a, 2, 3, 0, 1));
  c = op == 1 ? f32x4.max(b, i32x4.shuffle(b, b, 1, 0, 3, 2)) : f32x4.min(b, i32x4.shuffle(b, b, 1, 0, 3, 2));
  return f32x4.extract_lane(c, 0);
}

/**
 * simdMinMax by relaxed min/max (one instruction each, where the exact ones take several): the same value
 * whenever it is a number other than ±0 (the extreme of numbers does not depend on which operand a tie or a
 * zero's sign came from); any NaN, tracked beside it, returns NaN, so the caller settles NaN and zero as before.
 */
function relaxedMinMax(op: i32, x: usize, n: i32): f32 {
  let a = v128.load(x), b = v128.load(x, 16), nan = v128.or(f32x4.ne(a, a), f32x4.ne(b, b)), j = 8;
  for (; j + 8 <= n; j += 8) {
    const p = x + (<usize>j << 2), u = v128.load(p), v = v128.load(p, 16);
    nan = v128.or(nan, v128.or(f32x4.ne(u, u), f32x4.ne(v, v)));
    if (op == 1) { a = f32x4.relaxed_max(a, u); b = f32x4.relaxed_max(b, v); }
    else { a = f32x4.relaxed_min(a, u); b = f32x4.relaxed_min(b, v); }
  }
  let m = op == 1 ? f32x4.relaxed_max(a, b) : f32x4.relaxed_min(a, b);
  let r = op == 1 ? max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)))
    : min(min(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), min(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
  for (; j < n; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    if (v != v) return v;
    r = op == 1 ? max(r, v) : min(r, v);
  }
  return v128.any_true(nan) ? NaN : r;
}

/** The first index p < n with x[p] == m (m a number found among them; −0 == +0), four lanes at a time. */
function firstEqual(x: usize, n: i32, m: f32): i32 {
  const mv = f32x4.splat(m);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    if (v128.any_true(f32x4.eq(v128.load(x + (<usize>j << 2)), mv))) break;
  }
  for (; j < n; j++) if (load<f32>(x + (<usize>j << 2)) == m) return j;
  return 0;
}

/**
 * logsumexp of n contiguous floats: the maximum m (NaN if any is NaN), then m + log Σ exp(x − m), x − m and its
 * exp (expf4) in float32, the sum in float64, four lanes at a time (lane sums added in a fixed order at the end).
 */
function logsumexpRow(x: usize, n: i32): f32 {
  let j = 0;
  let mv = f32x4.splat(-Infinity), mb = mv, mc = mv, md4 = mv;
  // Four independent chains (the NaN-propagating max is several instructions, one chain took a third of the
  // row's time): the maximum of numbers does not depend on the order (+0 is above −0), and a NaN comes out as
  // one NaN whatever the order (0xffc00000 from NaNs of either sign and any payload, measured).
  for (; j + 16 <= n; j += 16) {
    const p = x + (<usize>j << 2);
    mv = f32x4.max(mv, v128.load(p)); mb = f32x4.max(mb, v128.load(p, 16));
    mc = f32x4.max(mc, v128.load(p, 32)); md4 = f32x4.max(md4, v128.load(p, 48));
  }
  mv = f32x4.max(f32x4.max(mv, mb), f32x4.max(mc, md4));
  for (; j + 4 <= n; j += 4) mv = f32x4.max(mv, v128.load(x + (<usize>j << 2)));
  let m = max(max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
  for (; j < n; j++) m = max(m, load<f32>(x + (<usize>j << 2))); // wasm max propagates NaN
  if (m == -Infinity || m != m) return m;
  const md = <f64>m, m4 = f32x4.splat(m);
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0);
  j = 0;
  // Eight lanes per pass, by expNormal4 where all eight x − m ≤ 0 have k ≥ −126 (as in sigmoidLikeRun); the
  // lane sums take their terms in the same order as four lanes per pass did.
  const l2e = ek(2), c1 = ek(3), c2 = ek(4), p0 = ek(5), p1 = ek(6), p2 = ek(7), p3 = ek(8), p4 = ek(9);
  const p5 = ek(10), one = ek(11), magic = ek(12), kmin = ek(14);
  for (; j + 8 <= n; j += 8) {
    const p = x + (<usize>j << 2);
    const a = f32x4.sub(v128.load(p), m4), b = f32x4.sub(v128.load(p, 16), m4);
    const ma = expMagic4(a, l2e, magic), mb = expMagic4(b, l2e, magic);
    const ka = f32x4.sub(ma, magic), kb = f32x4.sub(mb, magic);
    let ea: v128, eb: v128;
    if (i32x4.bitmask(v128.and(f32x4.ge(ka, kmin), f32x4.ge(kb, kmin))) == 15) {
      ea = expNormal4(a, ka, ma, c1, c2, p0, p1, p2, p3, p4, p5, one);
      eb = expNormal4(b, kb, mb, c1, c2, p0, p1, p2, p3, p4, p5, one);
    } else {
      ea = expf4(a);
      eb = expf4(b);
    }
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(ea));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i32x4.shuffle(ea, ea, 2, 3, 0, 1)));
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(eb));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i32x4.shuffle(eb, eb, 2, 3, 0, 1)));
  }
  if (j + 4 <= n) {
    const e = expf4(f32x4.sub(v128.load(x + (<usize>j << 2)), m4));
    s0 = f64x2.add(s0, f64x2.promote_low_f32x4(e));
    s1 = f64x2.add(s1, f64x2.promote_low_f32x4(i32x4.shuffle(e, e, 2, 3, 0, 1)));
    j += 4;
  }
  const t = f64x2.add(s0, s1);
  let s = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
  for (; j < n; j++) s += <f64>f32x4.extract_lane(expf4(f32x4.splat(load<f32>(x + (<usize>j << 2)) - m)), 0);
  return <f32>(md + Math.log(s));
}

// @ts-ignore: decorator
@inline function rotl4(x: v128, r: i32): v128 {
  return v128.or(i32x4.shl(x, r), i32x4.shr_u(x, 32 - r));
}

/**
 * threefry2x32 (20 rounds, as in JAX and core/threefry.ts) of the counters (0, c) for the four c in `c`,
 * under key (k0, k1); writes the two output words of each lane to x0 and x1 (16 bytes each).
 */
// @ts-ignore: decorator
@inline function threefry4(k0: u32, k1: u32, c: v128, x: usize): void {
  const k2 = 0x1bd11bda ^ k0 ^ k1;
  const ks0 = i32x4.splat(k0), ks1 = i32x4.splat(k1), ks2 = i32x4.splat(k2);
  let x0 = ks0;
  let x1 = i32x4.add(c, ks1);
  for (let block = 0; block < 5; block++) {
    const odd = block & 1;
    x0 = i32x4.add(x0, x1); x1 = v128.xor(rotl4(x1, odd ? 17 : 13), x0);
    x0 = i32x4.add(x0, x1); x1 = v128.xor(rotl4(x1, odd ? 29 : 15), x0);
    x0 = i32x4.add(x0, x1); x1 = v128.xor(rotl4(x1, odd ? 16 : 26), x0);
    x0 = i32x4.add(x0, x1); x1 = v128.xor(rotl4(x1, odd ? 24 : 6), x0);
    const s = block + 1;
    const a = s % 3 == 0 ? ks0 : s % 3 == 1 ? ks1 : ks2;
    const b = (s + 1) % 3 == 0 ? ks0 : (s + 1) % 3 == 1 ? ks1 : ks2;
    x0 = i32x4.add(x0, a);
    x1 = i32x4.add(i32x4.add(x1, b), i32x4.splat(s));
  }
  v128.store(x, x0);
  v128.store(x, x1, 16);
}

/**
 * out[i − start] for i in [start, start + n): uniform (kind 0) or normal (kind 1) floats from the bits of
 * threefry2x32(key, (0, i)), mapped exactly as core/threefry.ts does (Box–Muller in float64). `tmp` is
 * 32 bytes of scratch.
 */
export function randomF32(kind: i32, k0: u32, k1: u32, start: u32, out: usize, n: i32, tmp: usize): void {
  for (let j = 0; j < n; j += 4) {
    const c = <u32>start + <u32>j;
    const cv = i32x4.add(i32x4.splat(c), i32x4(0, 1, 2, 3));
    threefry4(k0, k1, cv, tmp);
    const m = min(4, n - j);
    for (let l = 0; l < m; l++) {
      const b0 = load<u32>(tmp + (<usize>l << 2)), b1 = load<u32>(tmp + 16 + (<usize>l << 2));
      let v: f64;
      const u0 = <f64>(b0 >>> 9) * 1.1920928955078125e-7;
      if (kind == 0) v = u0;
      else {
        const u2 = <f64>(b1 >>> 9) * 1.1920928955078125e-7;
        v = Math.sqrt(-2 * Math.log(1 - u0)) * Math.cos(2 * Math.PI * u2);
      }
      store<f32>(out + (<usize>(j + l) << 2), <f32>v);
    }
  }
}

/** Address where the heap may begin: past this module's static data. */
export function heapBase(): usize {
  return __heap_base;
}
