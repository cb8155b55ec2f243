/**
 * The elementwise kernel family: ONE WGSL template, instantiated with an op
 * function (`fn op(x0, x1, …) -> T`) and, per operand, an addressing mode
 * chosen from its strides after adjacent axes are merged: contiguous
 * (`offset + i`), scalar (`offset`), or general (the flat index decomposed
 * over the output shape, with strides read from the params array). unary,
 * binary, where, cast, fill and the strided copy (permute/slice/broadcast)
 * are all this one kernel with different op functions and operands.
 * @module
 */
import type { BinaryOp, UnaryOp } from "../backend.ts";
import type { DType } from "../../core/dtype.ts";
import type { GpuBuffer, KernelHost } from "./engine.ts";
import { contiguous, declare, entry, PRELUDE, wgslType } from "./wgsl.ts";

/** Workgroup size of the elementwise kernels. */
const WG = 256;

/** An operand: a buffer read through strides over the output shape, from `offset`. */
export interface Operand {
  /** The buffer read. */
  buf: GpuBuffer;
  /** Element strides per output axis (0 on broadcast axes). */
  strides: readonly number[];
  /** Element offset of output element 0 (default 0). */
  offset?: number;
}

/**
 * Drops size-1 axes and merges adjacent axes that every operand walks
 * contiguously, so most kernels run at rank 0 or 1.
 */
export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]) {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let k = 0; k < shape.length; k++) {
    if (shape[k] === 1) continue;
    const last = outShape.length - 1;
    if (last >= 0 && strides.every((s, j) => outStrides[j][last] === s[k] * shape[k])) {
      outShape[last] *= shape[k];
      strides.forEach((s, j) => (outStrides[j][last] = s[k]));
    } else {
      outShape.push(shape[k]);
      strides.forEach((s, j) => outStrides[j].push(s[k]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

type Mode = "c" | "s" | "g";

function modeOf(strides: readonly number[], shape: readonly number[]): Mode {
  if (strides.every((s) => s === 0)) return "s";
  const c = contiguous(shape);
  return strides.every((s, i) => s === c[i]) ? "c" : "g";
}

/**
 * Runs `fnSrc` (a WGSL `fn op(...)`) over every element of `outShape`.
 * `extra` words are passed at `P[1..]` for the op to read (e.g. a fill value).
 */
export function elementwise(
  engine: KernelHost,
  fnSrc: string,
  operands: readonly Operand[],
  outShape: readonly number[],
  outDtype: DType,
  extra: readonly number[] = [],
): GpuBuffer {
  let n = 1;
  for (const d of outShape) n *= d;
  const out = engine.alloc(outDtype, n);
  if (n === 0) return out;
  const { shape, strides } = collapse(outShape, operands.map((o) => o.strides));
  const modes = strides.map((s) => modeOf(s, shape));
  const general = modes.includes("g");
  const rank = general ? shape.length : 0;

  // Params: n, extra…, shape (if general), then per operand its offset and (if general) its strides.
  const params: number[] = [n, ...extra];
  const shapeAt = params.length;
  if (general) params.push(...shape);
  const offsetAt: number[] = [], stridesAt: number[] = [];
  operands.forEach((o, j) => {
    offsetAt.push(params.length);
    params.push((o.offset ?? 0) >>> 0);
    stridesAt.push(params.length);
    if (modes[j] === "g") params.push(...strides[j].map((s) => s >>> 0));
  });

  const bindings = [
    ["out", wgslType(outDtype), "w"] as const,
    ...operands.map((o, j) => [`x${j}`, wgslType(o.buf.dtype), "r"] as const),
  ];
  const { src: decl, kinds } = declare(bindings);
  const lines: string[] = [];
  const gs = modes.map((m, j) => (m === "g" ? j : -1)).filter((j) => j >= 0);
  if (general) {
    lines.push("  var r = i;");
    for (const j of gs) lines.push(`  var o${j} = P[${offsetAt[j]}];`);
    for (let k = rank - 1; k >= 0; k--) {
      if (k > 0) {
        lines.push(`  { let d = P[${shapeAt + k}]; let c = r % d; r = r / d;`);
        lines.push(`    ${gs.map((j) => `o${j} += c * P[${stridesAt[j] + k}];`).join(" ")} }`);
      } else lines.push(`  ${gs.map((j) => `o${j} += r * P[${stridesAt[j]}];`).join(" ")}`);
    }
  }
  const args = modes.map((m, j) =>
    m === "g" ? `x${j}[o${j}]` : m === "c" ? `x${j}[P[${offsetAt[j]}] + i]` : `x${j}[P[${offsetAt[j]}]]`
  );
  const src = `${PRELUDE}
${decl}
${fnSrc}
${entry(WG)}
  if (i >= P[0]) { return; }
${lines.join("\n")}
  out[i] = op(${args.join(", ")});
}`;
  engine.run(src, kinds, [out, ...operands.map((o) => o.buf)], params, engine.grid(n, WG));
  return out;
}

// ---------------------------------------------------------------- op functions

/** The body of `fn op(x: T) -> T` for each unary op, per storage type. */
const UNARY_F32: Record<Exclude<UnaryOp, "logicalNot">, string> = {
  neg: "-x",
  exp: "exp(x)",
  log: "log_(x)",
  sqrt: "sqrt(x)",
  rsqrt: "1.0 / sqrt(x)",
  abs: "abs(x)",
  sign: "sign_(x)",
  tanh: "tanh_(x)",
  sigmoid: "sigmoid_(x)",
  silu: "silu_(x)",
  gelu: "gelu_(x)",
  square: "x * x",
  sin: "sin(x)",
  cos: "cos(x)",
};
const UNARY_INT: Partial<Record<UnaryOp, string>> = {
  neg: "-x",
  abs: "abs(x)",
  sign: "select(select(0, -1, x < 0), 1, x > 0)",
  square: "x * x",
};

/** `fn op` converting one storage type to another with the backend's cast semantics. */
export function castExpr(from: DType, to: DType, x: string): string {
  if (from === to) return x;
  if (to === "bool") {
    // NaN → true; −0 → false.
    return from === "float32"
      ? `select(0u, 1u, (bitcast<u32>(${x}) & 0x7fffffffu) != 0u)`
      : `select(0u, 1u, ${x} != 0)`;
  }
  if (to === "int32") return from === "float32" ? `select(i32(${x}), 0, isnan_(${x}))` : `i32(${x})`;
  return `f32(${x})`;
}

/** Elementwise unary op. Inputs of another dtype are converted to `outDtype` first. */
export function unary(engine: KernelHost, op: UnaryOp, x: GpuBuffer, outDtype: DType): GpuBuffer {
  const tx = wgslType(x.dtype), to = wgslType(outDtype);
  let fn: string;
  if (op === "logicalNot") {
    const zero = x.dtype === "float32" ? "(bitcast<u32>(x) & 0x7fffffffu) == 0u || isnan_(x)" : "x == 0";
    fn = `fn op(x: ${tx}) -> u32 { return select(0u, 1u, ${zero}); }`;
  } else if (outDtype === "float32") {
    fn = `fn op(x0: ${tx}) -> f32 { let x = ${castExpr(x.dtype, "float32", "x0")}; return ${UNARY_F32[op]}; }`;
  } else {
    const body = UNARY_INT[op];
    const conv = castExpr(x.dtype, "int32", "x0");
    // Ops only defined on floats (never sent by core for ints) go through f32.
    fn = body
      ? `fn op(x0: ${tx}) -> ${to} { let x = ${conv}; return ${castExpr("int32", outDtype, body)}; }`
      : `fn op(x0: ${tx}) -> ${to} { let x = ${castExpr(x.dtype, "float32", "x0")}; let y = ${UNARY_F32[op]}; return ${
        castExpr("float32", outDtype, "y")
      }; }`;
  }
  return elementwise(engine, fn, [{ buf: x, strides: [1] }], [x.size], outDtype);
}

const COMPARE: Partial<Record<BinaryOp, string>> = {
  equal: "==",
  notEqual: "!=",
  less: "<",
  lessEqual: "<=",
  greater: ">",
  greaterEqual: ">=",
};

/** The body of `fn op(a: T, b: T) -> TO` for a binary op. */
function binaryBody(op: BinaryOp, t: "f32" | "i32" | "u32"): string {
  const cmp = COMPARE[op];
  if (cmp) {
    if (t !== "f32") return `select(0u, 1u, a ${cmp} b)`;
    // Every comparison with NaN is false except notEqual (IEEE), tested by bits so no fast-math can fold it.
    const nan = "isnan_(a) || isnan_(b)";
    return op === "notEqual" ? `select(0u, 1u, (${nan}) || a != b)` : `select(0u, 1u, !(${nan}) && a ${cmp} b)`;
  }
  switch (op) {
    case "add":
      return "a + b";
    case "sub":
      return "a - b";
    case "mul":
      return "a * b";
    case "div":
      return t === "f32" ? "a / b" : `select(a / b, ${t}(0), b == ${t}(0))`;
    case "pow":
      return t === "f32" ? "pow_(a, b)" : `${t}(pow_(f32(a), f32(b)))`;
    case "maximum":
      return t === "f32" ? "max_(a, b)" : "max(a, b)";
    case "minimum":
      return t === "f32" ? "min_(a, b)" : "min(a, b)";
  }
  throw new Error(`webgpu: unknown binary op ${op}`);
}

/** Elementwise binary op on broadcast operands, computed in the operands' dtype. */
export function binary(
  engine: KernelHost,
  op: BinaryOp,
  a: Operand,
  b: Operand,
  outShape: readonly number[],
  outDtype: DType,
): GpuBuffer {
  const ta = wgslType(a.buf.dtype), tb = wgslType(b.buf.dtype);
  // Operands should share a dtype (core promotes); if not, b is converted to a's.
  const bConv = castExpr(b.buf.dtype, a.buf.dtype, "b0");
  const raw = binaryBody(op, ta);
  const isCmp = COMPARE[op] !== undefined;
  const result = isCmp ? raw : castExpr(a.buf.dtype, outDtype, `(${raw})`);
  const fn = `fn op(a: ${ta}, b0: ${tb}) -> ${wgslType(outDtype)} { let b = ${bConv}; return ${result}; }`;
  return elementwise(engine, fn, [a, b], outShape, outDtype);
}

/** out = cond ? a : b with broadcast operands. */
export function where(
  engine: KernelHost,
  c: Operand,
  a: Operand,
  b: Operand,
  outShape: readonly number[],
  dtype: DType,
): GpuBuffer {
  const t = wgslType(dtype), tc = wgslType(c.buf.dtype);
  const cond = castExpr(c.buf.dtype, "bool", "c");
  const fn = `fn op(c: ${tc}, a0: ${wgslType(a.buf.dtype)}, b0: ${wgslType(b.buf.dtype)}) -> ${t} {
  return select(${castExpr(b.buf.dtype, dtype, "b0")}, ${castExpr(a.buf.dtype, dtype, "a0")}, ${cond} != 0u);
}`;
  return elementwise(engine, fn, [c, a, b], outShape, dtype);
}

/** Converts dtype. */
export function cast(engine: KernelHost, x: GpuBuffer, dtype: DType): GpuBuffer {
  const fn = `fn op(x: ${wgslType(x.dtype)}) -> ${wgslType(dtype)} { return ${castExpr(x.dtype, dtype, "x")}; }`;
  return elementwise(engine, fn, [{ buf: x, strides: [1] }], [x.size], dtype);
}

/** A buffer of `size` elements equal to the storage word `word`. */
export function fill(engine: KernelHost, dtype: DType, size: number, word: number): GpuBuffer {
  const t = wgslType(dtype);
  return elementwise(engine, `fn op() -> ${t} { return bitcast<${t}>(P[1]); }`, [], [size], dtype, [word]);
}

/** out[i] = x[offset + Σ idx_k·strides_k]: permute, slice, broadcast. */
export function strided(
  engine: KernelHost,
  x: GpuBuffer,
  outShape: readonly number[],
  strides: readonly number[],
  offset: number,
): GpuBuffer {
  const t = wgslType(x.dtype);
  return elementwise(engine, `fn op(x: ${t}) -> ${t} { return x; }`, [{ buf: x, strides, offset }], outShape, x.dtype);
}
