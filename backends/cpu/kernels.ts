/**
 * CPU kernels over typed arrays: elementwise (with broadcast strides),
 * reductions, strided copies, padding, concatenation, gather/scatter and
 * random bits. The reference every other backend is tested against.
 * @module
 */
import type { BinaryOp, ReduceOp, UnaryOp } from "../backend.ts";
import type { TypedArray } from "../../core/dtype.ts";
import { stridesOf } from "../../core/shape.ts";
import { bitsToNormal, bitsToUniform, threefry2x32 } from "../../core/threefry.ts";

const GELU_C = Math.sqrt(2 / Math.PI);

/** Scalar definitions of the unary ops (the WebGPU backend mirrors these). */
export const UNARY: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  tanh: Math.tanh,
  sigmoid: (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
  silu: (x) => (x >= 0 ? x / (1 + Math.exp(-x)) : (x * Math.exp(x)) / (1 + Math.exp(x))),
  gelu: (x) => 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x))),
  square: (x) => x * x,
  sin: Math.sin,
  cos: Math.cos,
  logicalNot: (x) => (x ? 0 : 1),
};

/** Scalar definitions of the binary ops. */
export const BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: (a, b) => (a !== a || b !== b ? NaN : a > b ? a : b),
  minimum: (a, b) => (a !== a || b !== b ? NaN : a < b ? a : b),
  equal: (a, b) => +(a === b),
  notEqual: (a, b) => +(a !== b),
  less: (a, b) => +(a < b),
  lessEqual: (a, b) => +(a <= b),
  greater: (a, b) => +(a > b),
  greaterEqual: (a, b) => +(a >= b),
};

export function unary(op: UnaryOp, x: TypedArray, out: TypedArray): void {
  const f = UNARY[op];
  const n = x.length;
  switch (op) {
    case "neg":
      for (let i = 0; i < n; i++) out[i] = -x[i];
      return;
    case "square":
      for (let i = 0; i < n; i++) out[i] = x[i] * x[i];
      return;
    case "exp":
      for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]);
      return;
    default:
      for (let i = 0; i < n; i++) out[i] = f(x[i]);
  }
}

/** True if `strides` are the contiguous strides of `shape` (ignoring size-1 axes). */
function isContiguous(strides: readonly number[], shape: readonly number[]): boolean {
  const c = stridesOf(shape);
  return strides.every((s, i) => shape[i] === 1 || s === c[i]);
}

function isScalar(strides: readonly number[]): boolean {
  return strides.every((s) => s === 0);
}

/**
 * Merges adjacent axes that every operand (and the contiguous output) walks
 * contiguously, and drops size-1 axes, so rows get as long as possible: a
 * [B, H, T, 8] ⊙ [T, 8] broadcast becomes rows of T·8, not of 8.
 */
export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): [number[], number[][]] {
  const outStrides = stridesOf(shape);
  const keep = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  const dims: number[] = [];
  const st: number[][] = [...strides.map(() => [] as number[]), []];
  const all = [...strides, outStrides];
  for (const i of keep) {
    const last = dims.length - 1;
    if (last >= 0 && all.every((s, k) => st[k][last] === s[i] * shape[i])) {
      dims[last] *= shape[i];
      all.forEach((s, k) => (st[k][last] = s[i]));
    } else {
      dims.push(shape[i]);
      all.forEach((s, k) => st[k].push(s[i]));
    }
  }
  st.pop();
  return [dims, st];
}

/**
 * Calls `row(outStart, offsets, n, innerStrides)` for each row of the
 * innermost axis: the shared walker behind every strided kernel.
 */
function walkRows(
  fullShape: readonly number[],
  fullStrides: readonly (readonly number[])[],
  bases: readonly number[],
  row: (outStart: number, offsets: number[], n: number, inner: number[]) => void,
): void {
  const [shape, strides] = coalesce(fullShape, fullStrides);
  const rank = shape.length;
  if (rank === 0) {
    row(0, [...bases], 1, strides.map(() => 0));
    return;
  }
  const inner = strides.map((s) => s[rank - 1]);
  const n = shape[rank - 1];
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  if (n === 0 || rows === 0) return;
  const idx = new Array<number>(rank - 1).fill(0);
  const offsets = [...bases];
  for (let r = 0; r < rows; r++) {
    row(r * n, offsets, n, inner);
    // Advance the multi-index of the outer axes, updating each operand's offset.
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]++;
      for (let k = 0; k < strides.length; k++) offsets[k] += strides[k][ax];
      if (idx[ax] < shape[ax]) break;
      for (let k = 0; k < strides.length; k++) offsets[k] -= strides[k][ax] * shape[ax];
      idx[ax] = 0;
    }
  }
}

export function binary(
  op: BinaryOp,
  a: TypedArray,
  sa: readonly number[],
  b: TypedArray,
  sb: readonly number[],
  shape: readonly number[],
  out: TypedArray,
): void {
  const f = BINARY[op];
  const n = out.length;
  const ca = isContiguous(sa, shape), cb = isContiguous(sb, shape);
  if (ca && cb) {
    switch (op) {
      case "add":
        for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
        return;
      case "sub":
        for (let i = 0; i < n; i++) out[i] = a[i] - b[i];
        return;
      case "mul":
        for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
        return;
      default:
        for (let i = 0; i < n; i++) out[i] = f(a[i], b[i]);
        return;
    }
  }
  if (ca && isScalar(sb)) {
    const y = b[0];
    switch (op) {
      case "add":
        for (let i = 0; i < n; i++) out[i] = a[i] + y;
        return;
      case "mul":
        for (let i = 0; i < n; i++) out[i] = a[i] * y;
        return;
      default:
        for (let i = 0; i < n; i++) out[i] = f(a[i], y);
        return;
    }
  }
  walkRows(shape, [sa, sb], [0, 0], (o, [oa, ob], len, [ia, ib]) => {
    if (op === "mul") { for (let j = 0; j < len; j++) out[o + j] = a[oa + j * ia] * b[ob + j * ib]; }
    else if (op === "add") { for (let j = 0; j < len; j++) out[o + j] = a[oa + j * ia] + b[ob + j * ib]; }
    else for (let j = 0; j < len; j++) out[o + j] = f(a[oa + j * ia], b[ob + j * ib]);
  });
}

export function where(
  c: TypedArray,
  sc: readonly number[],
  a: TypedArray,
  sa: readonly number[],
  b: TypedArray,
  sb: readonly number[],
  shape: readonly number[],
  out: TypedArray,
): void {
  walkRows(shape, [sc, sa, sb], [0, 0, 0], (o, [oc, oa, ob], len, [ic, ia, ib]) => {
    for (let j = 0; j < len; j++) out[o + j] = c[oc + j * ic] ? a[oa + j * ia] : b[ob + j * ib];
  });
}

export function strided(
  x: TypedArray,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  out: TypedArray,
): void {
  walkRows(shape, [strides], [offset], (o, [ox], len, [inner]) => {
    if (inner === 1) out.set(x.subarray(ox, ox + len), o);
    else for (let j = 0; j < len; j++) out[o + j] = x[ox + j * inner];
  });
}

export function pad(
  x: TypedArray,
  shape: readonly number[],
  before: readonly number[],
  after: readonly number[],
  value: number,
  out: TypedArray,
): void {
  out.fill(value);
  const outShape = shape.map((d, i) => d + before[i] + after[i]);
  const os = stridesOf(outShape);
  const base = before.reduce((acc, b, i) => acc + b * os[i], 0);
  // Walk the input rows and write each at its place in the output.
  walkRows(shape, [os], [base], (o, [oo], len, [step]) => {
    if (step === 1) out.set(x.subarray(o, o + len), oo);
    else for (let j = 0; j < len; j++) out[oo + j * step] = x[o + j];
  });
}

export function concat(xs: readonly TypedArray[], outer: number, widths: readonly number[], out: TypedArray): void {
  const total = widths.reduce((a, b) => a + b, 0);
  let col = 0;
  xs.forEach((x, k) => {
    const w = widths[k];
    for (let o = 0; o < outer; o++) out.set(x.subarray(o * w, o * w + w), o * total + col);
    col += w;
  });
}

export function reduce(op: ReduceOp, x: TypedArray, outer: number, red: number, inner: number, out: TypedArray): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      // Element r of this reduction sits at start + r * inner.
      const start = o * red * inner + i;
      const end = start + red * inner;
      let acc: number;
      switch (op) {
        case "sum":
          acc = 0;
          for (let p = start; p < end; p += inner) acc += x[p];
          break;
        case "max":
          acc = -Infinity;
          for (let p = start; p < end; p += inner) {
            const v = x[p];
            if (v > acc || v !== v) acc = v;
            if (acc !== acc) break;
          }
          break;
        case "min":
          acc = Infinity;
          for (let p = start; p < end; p += inner) {
            const v = x[p];
            if (v < acc || v !== v) acc = v;
            if (acc !== acc) break;
          }
          break;
        case "argmax": {
          // First index of the maximum; a NaN counts as the maximum.
          let best = -Infinity;
          acc = 0;
          for (let r = 0, p = start; p < end; r++, p += inner) {
            const v = x[p];
            if (v > best || (v !== v && best === best)) {
              best = v;
              acc = r;
            }
          }
          break;
        }
        case "logsumexp": {
          let m = -Infinity;
          for (let p = start; p < end; p += inner) m = Math.max(m, x[p]);
          if (m === -Infinity || m !== m) {
            acc = m;
            break;
          }
          let s = 0;
          for (let p = start; p < end; p += inner) s += Math.exp(x[p] - m);
          acc = m + Math.log(s);
          break;
        }
      }
      out[o * inner + i] = acc;
    }
  }
}

function checkIndex(op: string, v: number, rows: number, i: number): void {
  if (v < 0 || v >= rows) throw new Error(`${op}: index ${v} at position ${i} is out of range [0, ${rows})`);
}

export function gather(table: TypedArray, rows: number, rowSize: number, idx: Int32Array, out: TypedArray): void {
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    checkIndex("take", r, rows, i);
    out.set(table.subarray(r * rowSize, r * rowSize + rowSize), i * rowSize);
  }
}

export function scatterAdd(idx: Int32Array, upd: Float32Array, rows: number, rowSize: number, out: Float32Array): void {
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    checkIndex("scatterAdd", r, rows, i);
    const o = r * rowSize, u = i * rowSize;
    for (let j = 0; j < rowSize; j++) out[o + j] += upd[u + j];
  }
}

export function random(kind: "uniform" | "normal", k0: number, k1: number, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    const [x0, x1] = threefry2x32(k0, k1, 0, i);
    out[i] = kind === "uniform" ? bitsToUniform(x0) : bitsToNormal(x0, x1);
  }
}
