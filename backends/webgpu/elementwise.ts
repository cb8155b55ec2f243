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

// ---------------------------------------------------------------- op expressions
// One table of WGSL per op, shared by the single-op kernels below and the fused kernels (fused.ts): each op is
// statements `let y = …;` over named operands (helper lets are `y` + a suffix), so a fused node computes exactly
// what the kernel it replaces computes.

/** The expression of each unary op on f32 `x`. */
const UNARY_F32: Record<Exclude<UnaryOp, "logicalNot">, (x: string) => string> = {
  neg: (x) => `-${x}`,
  exp: (x) => `exp(${x})`,
  log: (x) => `log_(${x})`,
  sqrt: (x) => `sqrt(${x})`,
  rsqrt: (x) => `1.0 / sqrt(${x})`,
  abs: (x) => `abs(${x})`,
  sign: (x) => `sign_(${x})`,
  tanh: (x) => `tanh_(${x})`,
  sigmoid: (x) => `sigmoid_(${x})`,
  silu: (x) => `silu_(${x})`,
  gelu: (x) => `gelu_(${x})`,
  square: (x) => `${x} * ${x}`,
  sin: (x) => `sin(${x})`,
  cos: (x) => `cos(${x})`,
};
/** Unary ops with an i32 form (the rest go through f32). */
const UNARY_INT: Partial<Record<UnaryOp, (x: string) => string>> = {
  neg: (x) => `-${x}`,
  abs: (x) => `abs(${x})`,
  sign: (x) => `select(select(0, -1, ${x} < 0), 1, ${x} > 0)`,
  square: (x) => `${x} * ${x}`,
};

/** The expression converting `x` from one storage type to another with the backend's cast semantics. */
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

/** `let y = op(x)`: x of dtype `from` (converted first where the op needs), y of dtype `to`. */
export function unaryLets(op: UnaryOp, from: DType, to: DType, x: string, y: string): string {
  if (op === "logicalNot") {
    const zero = from === "float32" ? `(bitcast<u32>(${x}) & 0x7fffffffu) == 0u || isnan_(${x})` : `${x} == 0`;
    return `let ${y} = select(0u, 1u, ${zero});`;
  }
  const int = to === "float32" ? undefined : UNARY_INT[op];
  // Ops only defined on floats (never sent by core for ints) go through f32.
  const via: DType = int ? "int32" : "float32";
  const body = int ? int(`${y}x`) : UNARY_F32[op](`${y}x`);
  return `let ${y}x = ${castExpr(from, via, x)}; let ${y} = ${castExpr(via, to, body)};`;
}

const COMPARE: Partial<Record<BinaryOp, string>> = {
  equal: "==",
  notEqual: "!=",
  less: "<",
  lessEqual: "<=",
  greater: ">",
  greaterEqual: ">=",
};

/** The expression of binary `op` on operands `a`, `b` of storage type `t`. */
function binaryExpr(op: BinaryOp, t: "f32" | "i32" | "u32", a: string, b: string): string {
  const cmp = COMPARE[op];
  if (cmp) {
    if (t !== "f32") return `select(0u, 1u, ${a} ${cmp} ${b})`;
    // Every comparison with NaN is false except notEqual (IEEE), tested by bits so no fast-math can fold it.
    const nan = `isnan_(${a}) || isnan_(${b})`;
    return op === "notEqual"
      ? `select(0u, 1u, (${nan}) || ${a} != ${b})`
      : `select(0u, 1u, !(${nan}) && ${a} ${cmp} ${b})`;
  }
  switch (op) {
    case "add":
      return `${a} + ${b}`;
    case "sub":
      return `${a} - ${b}`;
    case "mul":
      return `${a} * ${b}`;
    case "div":
      return t === "f32" ? `${a} / ${b}` : `select(${a} / ${b}, ${t}(0), ${b} == ${t}(0))`;
    case "pow":
      return t === "f32" ? `pow_(${a}, ${b})` : `${t}(pow_(f32(${a}), f32(${b})))`;
    case "maximum":
      return t === "f32" ? `max_(${a}, ${b})` : `max(${a}, ${b})`;
    case "minimum":
      return t === "f32" ? `min_(${a}, ${b})` : `min(${a}, ${b})`;
  }
  throw new Error(`webgpu: unknown binary op ${op}`);
}

/** `let y = a op b`, computed in a's dtype `ta` (b converted to it; core promotes, so they agree), y of `to`. */
export function binaryLets(op: BinaryOp, ta: DType, tb: DType, to: DType, a: string, b: string, y: string): string {
  const raw = binaryExpr(op, wgslType(ta), a, `${y}b`);
  const result = COMPARE[op] !== undefined ? raw : castExpr(ta, to, `(${raw})`);
  return `let ${y}b = ${castExpr(tb, ta, b)}; let ${y} = ${result};`;
}

/** `let y = c ? a : b` with every operand converted to `to` (c to bool). */
export function whereLets(tc: DType, ta: DType, tb: DType, to: DType, c: string, a: string, b: string, y: string) {
  return `let ${y} = select(${castExpr(tb, to, b)}, ${castExpr(ta, to, a)}, ${castExpr(tc, "bool", c)} != 0u);`;
}

// ---------------------------------------------------------------- single-op kernels

/** `fn op(x0, …) -> T` over operands of `types` whose body is `lets` defining `y`. */
function opFn(types: readonly DType[], out: DType, lets: string): string {
  const args = types.map((t, j) => `x${j}: ${wgslType(t)}`).join(", ");
  return `fn op(${args}) -> ${wgslType(out)} { ${lets} return y; }`;
}

/** Elementwise unary op. Inputs of another dtype are converted to `outDtype` first. */
export function unary(engine: KernelHost, op: UnaryOp, x: GpuBuffer, outDtype: DType): GpuBuffer {
  const fn = opFn([x.dtype], outDtype, unaryLets(op, x.dtype, outDtype, "x0", "y"));
  return elementwise(engine, fn, [{ buf: x, strides: [1] }], [x.size], outDtype);
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
  const ta = a.buf.dtype, tb = b.buf.dtype;
  const fn = opFn([ta, tb], outDtype, binaryLets(op, ta, tb, outDtype, "x0", "x1", "y"));
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
  const types = [c.buf.dtype, a.buf.dtype, b.buf.dtype];
  const fn = opFn(types, dtype, whereLets(types[0], types[1], types[2], dtype, "x0", "x1", "x2", "y"));
  return elementwise(engine, fn, [c, a, b], outShape, dtype);
}

/** Converts dtype. */
export function cast(engine: KernelHost, x: GpuBuffer, dtype: DType): GpuBuffer {
  const fn = opFn([x.dtype], dtype, `let y = ${castExpr(x.dtype, dtype, "x0")};`);
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
